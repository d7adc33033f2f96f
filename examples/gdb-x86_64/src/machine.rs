//! What the shared gdb session (`gdb-common/session.rs`) needs from this
//! board: the manager and the adapter, registers from the saved frame,
//! memory bounds, COM1, and how to resume (RFLAGS.TF).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use gdbstub_arch::x86::reg::X86_64CoreRegs;
use hwbp_core::Manager;
use hwbp_gdbstub::{GdbBreakpoints, HitLatch};
use hwbp_x86::{Cpu, DebugReg, DebugRegs, Dr7, X86Backend};

pub use crate::idt::Frame;
use crate::serial::inb;

/// The target description GDB gets.
pub type GdbArch = gdbstub_arch::x86::X86_64_SSE;

/// Hits of the manager's breakpoints, for the stub.
pub static LATCH: HitLatch<1> = HitLatch::new();

/// The manager: hwbp-x86's real backend, 1 CPU, 16 breakpoints, 2 tasks
/// (unused).
// SAFETY (of `X86Backend::new`): CPL 0, DR7.GD clear; the only other DR7
// writes are the #DB handler's clear-and-restore below, which puts back
// exactly what the backend had written.
pub static HWBP: Manager<X86Backend<Cpu>, &'static HitLatch<1>, 1, 16, 2> =
    Manager::new(unsafe { X86Backend::new() }, &LATCH);

/// GDB's hardware breakpoints and watchpoints: pinned, on the CPU.
pub static BPS: GdbBreakpoints<'static, X86Backend<Cpu>, &'static HitLatch<1>, 1, 16, 2, 16> =
    GdbBreakpoints::new(&HWBP);

/// DR7 as it was when the #DB was taken.
static SAVED_DR7: AtomicU64 = AtomicU64::new(0);

/// #DB entry: save DR7 and clear it.
pub fn save_and_clear_dr7() {
    let regs = HWBP.arch().regs();
    SAVED_DR7.store(regs.read(0, DebugReg::Dr7), Ordering::SeqCst);
    // SAFETY: disabling every slot for the handler's duration; GD stays
    // clear and `restore_dr7` writes back exactly the saved value before
    // the backend installs anything again.
    unsafe { regs.write(0, DebugReg::Dr7, Dr7::RESERVED_ONE) };
}

/// Before returning from #DB: put DR7 back.
pub fn restore_dr7() {
    // SAFETY: the value the backend had installed (saved on entry).
    unsafe {
        HWBP.arch()
            .regs()
            .write(0, DebugReg::Dr7, SAVED_DR7.load(Ordering::SeqCst))
    };
}

/// RAM on `-m 64M` (identity-mapped by the boot code).
const RAM: core::ops::Range<u64> = 0x1000..0x400_0000;

/// Whether GDB may read or write `len` bytes at `addr`.
pub fn memory_ok(addr: u64, len: usize) -> bool {
    addr.checked_add(len as u64)
        .is_some_and(|end| addr >= RAM.start && end <= RAM.end)
}

pub fn read_registers(f: &Frame, regs: &mut X86_64CoreRegs) {
    regs.regs = [
        f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.rsp, f.r8, f.r9, f.r10, f.r11, f.r12,
        f.r13, f.r14, f.r15,
    ];
    regs.rip = f.rip;
    regs.eflags = f.rflags as u32;
    regs.segments.cs = f.cs as u32;
    regs.segments.ss = f.ss as u32;
}

pub fn write_registers(f: &mut Frame, regs: &X86_64CoreRegs) {
    // RSP, segments and the FPU state stay as they are.
    let r = &regs.regs;
    (f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp) = (r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
    (f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15) =
        (r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    f.rip = regs.rip;
    f.rflags = (f.rflags & !0xffff_ffff) | u64::from(regs.eflags);
}

const COM1: u16 = 0x3F8;

pub fn serial_write(byte: u8) {
    crate::serial::put(byte)
}

pub fn serial_read() -> u8 {
    // SAFETY: polling LSR.DR then reading RBR is the UART's receive protocol.
    unsafe {
        while inb(COM1 + 5) & 1 == 0 {
            core::hint::spin_loop();
        }
        inb(COM1)
    }
}

/// GDB asked for a single step the last time it resumed.
static STEPPING: AtomicBool = AtomicBool::new(false);

/// Whether the program is being single-stepped for GDB.
pub fn stepping() -> bool {
    STEPPING.load(Ordering::SeqCst)
}

/// GDB resumes the program (a single step if `step`): put DR7 back, then
/// bring GDB's breakpoint changes to the registers, and set or clear TF.
pub fn resume(frame: &mut Frame, step: bool) {
    restore_dr7();
    for cpu in BPS.take_sync() {
        if let Err(e) = BPS.sync(cpu) {
            board_kit::fatal!("sync({}) failed: {:?}", cpu, e);
        }
    }
    if step {
        frame.rflags |= crate::RFLAGS_TF;
    } else {
        frame.rflags &= !crate::RFLAGS_TF;
    }
    STEPPING.store(step, Ordering::SeqCst);
}
