//! Real debug registers through Linux ptrace, shared by
//! `tests/ptrace_linux.rs` and `examples/ptrace.rs`.
//!
//! A forked child stops itself, the parent computes the DR0–DR3/DR7 image with
//! hwbp-x86 and installs it through [`PtraceRegs`] — a [`DebugRegs`]
//! implementation whose registers are the child's `u_debugreg[]`, reached with
//! `PTRACE_PEEKUSER`/`PTRACE_POKEUSER` — so the crate's own `install` and
//! `decode` run against the kernel and the real CPU (here, through the
//! hypervisor). Every refusal is an `Err` with the reason, never a skip.
#![allow(dead_code)]

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use hwbp_core::{Arch, BreakpointAttr, Decoded, Image, SlotCounts};
use hwbp_x86::{DebugReg, DebugRegs, DrSlot, Encoder, Mode, X86Backend, X86CpuState, X86Exception};

/// `offsetof(struct user, u_debugreg)` on x86_64 Linux.
pub const U_DEBUGREG: usize = 848;
const _: () = assert!(core::mem::offset_of!(libc::user, u_debugreg) == U_DEBUGREG);
const RIP: usize =
    core::mem::offset_of!(libc::user, regs) + core::mem::offset_of!(libc::user_regs_struct, rip);

/// Data the child touches; the parent watches it at the same addresses (the
/// child is a fork of this process).
#[repr(C, align(64))]
pub struct Targets {
    /// Written by [`Action::Write`].
    pub a: AtomicU64,
    /// Read by [`Action::Read`].
    pub b: AtomicU64,
    /// Written at `c + 13` (one byte) by [`Action::WriteByte`].
    pub c: [AtomicU64; 2],
}

/// The watched variables.
pub static DATA: Targets = Targets {
    a: AtomicU64::new(0),
    b: AtomicU64::new(7),
    c: [AtomicU64::new(0), AtomicU64::new(0)],
};

/// The value [`Action::Write`] stores.
pub const WRITTEN: u64 = 0x1234_5678_9abc_def0;

/// The function [`Action::Call`] executes.
#[inline(never)]
pub extern "C" fn probe(x: u64) -> u64 {
    black_box(x).wrapping_mul(3)
}

/// What the child does once continued.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// Store [`WRITTEN`] into `DATA.a`.
    Write,
    /// Load `DATA.b`.
    Read,
    /// Call [`probe`].
    Call,
    /// Store one byte at `&DATA.c + 13`.
    WriteByte,
}

impl Action {
    fn run(self) {
        match self {
            Action::Write => DATA.a.store(black_box(WRITTEN), Ordering::Relaxed),
            Action::Read => {
                black_box(DATA.b.load(Ordering::Relaxed));
            }
            Action::Call => {
                let f: extern "C" fn(u64) -> u64 = black_box(probe);
                black_box(f(5));
            }
            Action::WriteByte => {
                let p = (DATA.c.as_ptr() as *const u8).wrapping_add(13);
                // SAFETY: byte 13 of the 16-byte `c` array; a volatile store of
                // one byte into memory we own (the array is only read through
                // atomics by the parent's copy, never concurrently here).
                unsafe { core::ptr::write_volatile(p as *mut u8, 0xab) };
            }
        }
    }
}

fn errno() -> String {
    std::io::Error::last_os_error().to_string()
}

/// A traced child, killed when dropped.
pub struct Child {
    /// Its pid.
    pub pid: libc::pid_t,
}

/// How the child stopped.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    /// The stop signal.
    pub signal: i32,
    /// `si_code` of the signal.
    pub si_code: i32,
    /// The child's saved RIP.
    pub rip: u64,
}

impl Child {
    /// Fork a child that requests tracing, stops with SIGSTOP and, when
    /// continued, does `action` and exits 0.
    pub fn spawn(action: Action) -> Result<Child, String> {
        // SAFETY: the child only calls async-signal-safe functions (ptrace,
        // raise, _exit) and touches atomics; it never returns into the test
        // harness.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork failed: {}", errno()));
        }
        if pid == 0 {
            // SAFETY: plain system calls in the child.
            unsafe {
                if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                    libc::_exit(101);
                }
                libc::raise(libc::SIGSTOP);
                action.run();
                libc::_exit(0);
            }
        }
        let child = Child { pid };
        let mut status = 0;
        // SAFETY: waiting for our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err(format!("waitpid failed: {}", errno()));
        }
        if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGSTOP {
            return Err(format!(
                "child did not stop with SIGSTOP (status {status:#x}); PTRACE_TRACEME refused?"
            ));
        }
        Ok(child)
    }

    /// Continue the child and wait for its next stop.
    pub fn cont(&self) -> Result<Stop, String> {
        // SAFETY: ptrace on our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_CONT, self.pid, 0, 0) } != 0 {
            return Err(format!("PTRACE_CONT failed: {}", errno()));
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        if unsafe { libc::waitpid(self.pid, &mut status, 0) } != self.pid {
            return Err(format!("waitpid failed: {}", errno()));
        }
        if libc::WIFEXITED(status) {
            return Err(format!(
                "child ran to completion (exit {}) without a debug trap: the breakpoint did not fire",
                libc::WEXITSTATUS(status)
            ));
        }
        if !libc::WIFSTOPPED(status) {
            return Err(format!(
                "child neither stopped nor exited: status {status:#x}"
            ));
        }
        // SAFETY: zeroed siginfo_t is a valid out-buffer for PTRACE_GETSIGINFO.
        let mut si: libc::siginfo_t = unsafe { core::mem::zeroed() };
        // SAFETY: ptrace on our stopped tracee with a valid buffer.
        if unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, self.pid, 0, &mut si) } != 0 {
            return Err(format!("PTRACE_GETSIGINFO failed: {}", errno()));
        }
        Ok(Stop {
            signal: libc::WSTOPSIG(status),
            si_code: si.si_code,
            rip: self.peek_user(RIP)?,
        })
    }

    fn peek(&self, req: libc::c_uint, addr: usize) -> Result<u64, String> {
        // SAFETY: errno is thread-local; PEEK* report errors only through it.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: ptrace on our stopped tracee.
        let v = unsafe { libc::ptrace(req, self.pid, addr, 0) };
        // SAFETY: as above.
        if v == -1 && unsafe { *libc::__errno_location() } != 0 {
            return Err(format!(
                "PTRACE_PEEK{{USER,DATA}} at {addr:#x} failed: {}",
                errno()
            ));
        }
        Ok(v as u64)
    }

    /// Read a word of the child's `struct user`.
    pub fn peek_user(&self, offset: usize) -> Result<u64, String> {
        self.peek(libc::PTRACE_PEEKUSER, offset)
    }

    /// Read a word of the child's memory.
    pub fn peek_data(&self, addr: u64) -> Result<u64, String> {
        self.peek(libc::PTRACE_PEEKDATA, addr as usize)
    }

    /// Write a word of the child's `struct user`.
    pub fn poke_user(&self, offset: usize, value: u64) -> Result<(), String> {
        // SAFETY: ptrace on our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_POKEUSER, self.pid, offset, value as usize) } != 0 {
            return Err(format!(
                "PTRACE_POKEUSER at {offset} (u_debugreg[{}]) = {value:#x} failed: {}",
                offset.wrapping_sub(U_DEBUGREG) / 8,
                errno()
            ));
        }
        Ok(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}

/// The child's debug registers as seen through ptrace. Errors are kept (the
/// trait has no error path) and reported by [`PtraceRegs::check`].
pub struct PtraceRegs<'a> {
    child: &'a Child,
    error: RefCell<Option<String>>,
}

impl<'a> PtraceRegs<'a> {
    /// The registers of `child`.
    pub fn new(child: &'a Child) -> Self {
        PtraceRegs {
            child,
            error: RefCell::new(None),
        }
    }

    /// The first error since the last check.
    pub fn check(&self) -> Result<(), String> {
        match self.error.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn offset(reg: DebugReg) -> usize {
        let n = match reg {
            DebugReg::Dr6 => 6,
            DebugReg::Dr7 => 7,
            r => r.index(),
        };
        U_DEBUGREG + 8 * n
    }

    fn keep(&self, e: String) {
        self.error.borrow_mut().get_or_insert(e);
    }
}

impl DebugRegs for PtraceRegs<'_> {
    fn read(&self, _cpu: u16, reg: DebugReg) -> u64 {
        self.child.peek_user(Self::offset(reg)).unwrap_or_else(|e| {
            self.keep(e);
            0
        })
    }

    unsafe fn write(&self, _cpu: u16, reg: DebugReg, value: u64) {
        if let Err(e) = self.child.poke_user(Self::offset(reg), value) {
            self.keep(e);
        }
    }
}

/// One breakpoint hit on the real CPU.
#[derive(Debug)]
pub struct Hit {
    /// How the child stopped.
    pub stop: Stop,
    /// DR6 as read back with PTRACE_PEEKUSER.
    pub dr6: u64,
    /// DR7 as installed.
    pub dr7: u64,
    /// What hwbp-x86 made of it.
    pub decoded: Decoded,
    /// `DATA.a` in the child at the stop.
    pub data_a: u64,
    /// The slots installed.
    pub slots: [DrSlot; 4],
}

/// Encode `attrs` (on behalf of user space) into consecutive slots, install
/// them in a fresh child, let it do `action`, and decode the stop.
pub fn run(action: Action, attrs: &[BreakpointAttr]) -> Result<Hit, String> {
    let enc = Encoder::new(Mode::Bits64);
    let mut desired = Image::empty(SlotCounts::Shared(4));
    let mut n = 0;
    for attr in attrs {
        let e = enc
            .encode(&attr.user_only())
            .map_err(|e| format!("hwbp-x86 refused {attr:?}: {e}"))?;
        for p in &e.pieces {
            let slot = desired.pools[0]
                .get_mut(n)
                .ok_or_else(|| "more than 4 slots requested".to_string())?;
            *slot = p.slot;
            n += 1;
        }
    }
    let child = Child::spawn(action)?;
    let regs = PtraceRegs::new(&child);
    let x86 = X86Backend::with_regs(enc, &regs);
    let state = X86CpuState::new();
    x86.install(0, &state, &Image::empty(SlotCounts::Shared(4)), &desired);
    regs.check()
        .map_err(|e| format!("installing the debug registers through ptrace: {e}"))?;
    let dr7 = x86.read_image(0).dr7;
    regs.check()?;
    let stop = child.cont()?;
    let dr6 = x86.read_dr6(0);
    regs.check().map_err(|e| format!("reading DR6 back: {e}"))?;
    let decoded = x86.decode(0, &state, &X86Exception { dr6, ip: stop.rip });
    regs.check()
        .map_err(|e| format!("acknowledging DR6: {e}"))?;
    let data_a = child.peek_data(DATA.a.as_ptr() as u64)?;
    let mut slots = [DrSlot::DISABLED; 4];
    for (i, s) in slots.iter_mut().enumerate() {
        *s = desired.pools[0].get(i).copied().unwrap_or_default();
    }
    Ok(Hit {
        stop,
        dr6,
        dr7,
        decoded,
        data_a,
        slots,
    })
}

/// Address of `DATA.a`.
pub fn addr_a() -> u64 {
    DATA.a.as_ptr() as u64
}

/// Address of `DATA.b`.
pub fn addr_b() -> u64 {
    DATA.b.as_ptr() as u64
}

/// Address of `DATA.c`.
pub fn addr_c() -> u64 {
    DATA.c.as_ptr() as u64
}

/// Address of [`probe`].
pub fn addr_probe() -> u64 {
    probe as extern "C" fn(u64) -> u64 as usize as u64
}
