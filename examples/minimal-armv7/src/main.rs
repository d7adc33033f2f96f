//! The smallest Armv7-A kernel (PL1, monitor debug mode) that uses hwbp: the
//! AArch32 part of hwbp-arm64's porting guide, built and linked for
//! `armv7a-none-eabi` by `cargo xtask test`. Not a board example (nothing
//! runs it): each piece is what a kernel of its own needs, and the QEMU
//! board `examples/qemu-armv7` runs the same pieces for real.
//!
//! 1. A critical-section implementation that excludes other CPUs, nests on
//!    its own CPU (debug events arrive as aborts, which `cpsid if` does not
//!    mask), and masks IRQ and FIQ only.
//! 2. The manager in a `static`, stepping with a mismatch breakpoint.
//! 3. The prefetch and data abort vectors: debug events (FSR 0b00010) to
//!    `handle_exception`, return to the instruction, the next handler when
//!    `pass_on`.
//! 4. `sync` on every CPU a change names: here, or by an IPI there.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};

use hwbp_arm64::{Aarch32Backend, Aarch32Exception, AbortKind, StepMethod};
use hwbp_core::{Access, BreakpointAttr, CpuSet, Manager, Sample, Target};

/// CPUs this kernel runs on (MPIDR.Aff0 = 0..CPUS).
const CPUS: u16 = 2;

/// The calling CPU's number: MPIDR.Aff0 on this (flat) machine.
fn cpu_id() -> u16 {
    let mpidr: u32;
    // SAFETY: reading MPIDR at PL1 has no side effect.
    unsafe { asm!("mrc p15, 0, {}, c0, c0, 5", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u16
}

// ---------------------------------------------------------------------------
// 1. The critical section.

/// CPSR.I and CPSR.F.
const CPSR_I: u32 = 1 << 7;
const CPSR_F: u32 = 1 << 6;
/// Marks a nested acquire in the restore state (CPSR.N, which release does
/// not restore).
const NESTED: u32 = 1 << 31;

/// The CPU holding the lock: 0 = free, else CPU number + 1.
static OWNER: AtomicU32 = AtomicU32::new(0);

struct KernelCs;
critical_section::set_impl!(KernelCs);

// SAFETY: acquire masks IRQ and FIQ on the calling CPU and takes a lock that
// one CPU holds at a time, so no other context (interrupt or CPU) can be
// inside a critical section with it. A nested acquire on the owning CPU (a
// debug abort calling into the manager) returns a token with NESTED set and
// keeps the lock. Release unmasks only what acquire found unmasked. No
// `nomem`: the section is a compiler barrier too.
unsafe impl critical_section::Impl for KernelCs {
    unsafe fn acquire() -> u32 {
        let cpsr: u32;
        // SAFETY: reads CPSR and masks IRQ and FIQ at PL1.
        unsafe { asm!("mrs {}, cpsr", "cpsid if", out(reg) cpsr, options(nostack)) };
        let cpsr = cpsr & !NESTED;
        let me = u32::from(cpu_id()) + 1;
        if OWNER.load(Ordering::Relaxed) == me {
            return cpsr | NESTED;
        }
        while OWNER
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        cpsr
    }

    unsafe fn release(token: u32) {
        if token & NESTED == 0 {
            OWNER.store(0, Ordering::Release);
        }
        if token & CPSR_I == 0 {
            // SAFETY: IRQs were unmasked at acquire.
            unsafe { asm!("cpsie i", options(nostack)) };
        }
        if token & CPSR_F == 0 {
            // SAFETY: FIQs were unmasked at acquire.
            unsafe { asm!("cpsie f", options(nostack)) };
        }
    }
}

// ---------------------------------------------------------------------------
// 2. The manager.

/// Hits delivered to [`on_hit`].
static HITS: AtomicU32 = AtomicU32::new(0);

fn on_hit(_: &Sample) {
    HITS.fetch_add(1, Ordering::Relaxed);
}

/// The manager: two CPUs, up to 16 breakpoints, 4 tasks with pinned
/// breakpoints.
// SAFETY: this kernel runs at PL1 and nothing else (no external debugger)
// uses the debug registers. Mismatch stepping reserves the last breakpoint
// register and steps user (PL0) code only, so kernel breakpoints are refused;
// `StepMethod::Manual` is the alternative (see hwbp-arm64's guide).
static HWBP: Manager<Aarch32Backend, fn(&Sample), { CPUS as usize }, 16, 4> = Manager::new(
    unsafe { Aarch32Backend::aarch32(StepMethod::Mismatch) },
    on_hit,
);

/// Boot CPU, with its stacks and the vector table installed (`_start`).
#[no_mangle]
extern "C" fn kernel_main() -> ! {
    // Discovery (DBGDIDR), then this CPU's enable sequence (OS lock,
    // DBGDSCRext.MDBGen, every slot cleared); the other CPUs call
    // `cpu_online` with their own number when they start.
    if HWBP.init(CPUS).is_err() || HWBP.cpu_online(cpu_id()).is_err() {
        halt();
    }
    // A user-space word (below the default 3G/1G split), watched for stores
    // by user code on every CPU.
    let attr = BreakpointAttr::watch(0x1000_0000, 4, Access::WRITE)
        .target(Target::AllCpus)
        .user_only();
    if let Ok(reg) = HWBP.register(&attr) {
        apply(reg.sync);
    }
    halt()
}

// ---------------------------------------------------------------------------
// 3. The abort handlers.

/// What the abort stubs save: the SPSR, a pad, r0-r3, r12 and the address of
/// the instruction that aborted (LR adjusted by the stub).
#[repr(C)]
struct Frame {
    spsr: u32,
    pad: u32,
    r: [u32; 5],
    pc: u32,
}

/// FSR status 0b00010: a debug event (breakpoint, watchpoint, mismatch step).
fn is_debug_event(fsr: u32) -> bool {
    (fsr & 0xf) | ((fsr >> 6) & 0x10) == 0b00010
}

/// Hand a debug abort to the manager. The stub returns to `frame.pc`: the
/// instruction runs again, now with the fired slots disabled and the
/// mismatch breakpoint armed when the Resume asked for a step-over
/// (`Action::SingleStep`, nothing to set in the saved state on AArch32);
/// the mismatch breakpoint's own prefetch abort ends the step.
fn debug_abort(frame: &mut Frame, kind: AbortKind, fsr: u32, far: u32) {
    let dscr: u32;
    // SAFETY: DBGDSCRext is readable at PL1 (MRC p14, 0, Rt, c0, c2, 2).
    unsafe { asm!("mrc p14, 0, {}, c0, c2, 2", out(reg) dscr, options(nomem, nostack)) };
    let raw = Aarch32Exception {
        kind,
        fsr,
        far,
        dscr,
        pc: frame.pc,
        // DFSR.WnR is UNKNOWN for watchpoints; decoding the instruction at
        // pc would tell.
        write: None,
        thumb: frame.spsr & (1 << 5) != 0,
    };
    let resume = HWBP.handle_exception(cpu_id(), &raw);
    if resume.pass_on {
        // Someone else's too (a debugger's BKPT or registers): hand it on.
        // This kernel has no debugger.
        halt();
    }
}

#[no_mangle]
extern "C" fn data_abort(frame: &mut Frame) {
    let (dfsr, dfar): (u32, u32);
    // SAFETY: DFSR and DFAR are readable at PL1.
    unsafe {
        asm!("mrc p15, 0, {}, c5, c0, 0", out(reg) dfsr, options(nomem, nostack));
        asm!("mrc p15, 0, {}, c6, c0, 0", out(reg) dfar, options(nomem, nostack));
    }
    if !is_debug_event(dfsr) {
        halt(); // this kernel has no other data abort
    }
    debug_abort(frame, AbortKind::Data, dfsr, dfar);
}

#[no_mangle]
extern "C" fn prefetch_abort(frame: &mut Frame) {
    let (ifsr, ifar): (u32, u32);
    // SAFETY: IFSR and IFAR are readable at PL1.
    unsafe {
        asm!("mrc p15, 0, {}, c5, c0, 1", out(reg) ifsr, options(nomem, nostack));
        asm!("mrc p15, 0, {}, c6, c0, 2", out(reg) ifar, options(nomem, nostack));
    }
    if !is_debug_event(ifsr) {
        halt();
    }
    debug_abort(frame, AbortKind::Prefetch, ifsr, ifar);
}

// The vector table (VBAR) and the two abort stubs (Abort mode, own stack):
// LR_abt is the aborted instruction + 8 (data) or + 4 (prefetch); the stub
// stores that instruction's address as Frame::pc, calls the Rust handler
// (8-byte aligned stack), and returns to Frame::pc with CPSR = SPSR_abt.
global_asm!(
    ".section .text.vectors, \"ax\"",
    ".arm",
    ".balign 32",
    ".global hwbp_vectors",
    "hwbp_vectors:",
    "b .", // reset
    "b .", // undefined
    "b .", // SVC
    "b pabt_stub",
    "b dabt_stub",
    "b .",
    "b .", // IRQ (a real kernel: the IPI of `apply`)
    "b .", // FIQ
    "dabt_stub:",
    "sub lr, lr, #8",
    "push {{r0-r3, r12, lr}}",
    "mrs r0, spsr",
    "push {{r0, r1}}",
    "mov r0, sp",
    "bl data_abort",
    "b abort_return",
    "pabt_stub:",
    "sub lr, lr, #4",
    "push {{r0-r3, r12, lr}}",
    "mrs r0, spsr",
    "push {{r0, r1}}",
    "mov r0, sp",
    "bl prefetch_abort",
    "abort_return:",
    "pop {{r0, r1}}",
    "msr spsr_cxsf, r0",
    "pop {{r0-r3, r12, lr}}",
    "movs pc, lr",
);

// ---------------------------------------------------------------------------
// 4. Resync after a change.

/// SGI number of the resync IPI.
const SGI_SYNC: u32 = 1;

/// The GIC distributor's GICD_SGIR (this machine's address).
const GICD_SGIR: usize = 0x0800_0f00;

/// Run `sync` on every CPU `set` names: on this one directly, on the others
/// through an IPI whose handler calls [`ipi_sync`] there (only a CPU writes
/// its own debug registers). A caller that must know the breakpoint is armed
/// everywhere waits for the IPIs to be handled.
fn apply(set: CpuSet) {
    let me = cpu_id();
    for cpu in set.iter() {
        if cpu == me {
            let _ = HWBP.sync(cpu);
        } else {
            // GICv2: SGI_SYNC to the CPU interface `cpu` (target list).
            let sgir = (1u32 << (16 + cpu)) | SGI_SYNC;
            // SAFETY: GICD_SGIR is device memory mapped at this address;
            // writing it only raises the SGI.
            unsafe { (GICD_SGIR as *mut u32).write_volatile(sgir) };
        }
    }
}

/// The resync IPI's handler (called from the IRQ vector once the GIC has
/// acknowledged SGI_SYNC): this CPU's registers follow the manager.
#[no_mangle]
extern "C" fn ipi_sync() {
    let _ = HWBP.sync(cpu_id());
}

// ---------------------------------------------------------------------------
// Boot and the rest.

#[repr(C, align(8))]
struct Stack([u8; 16 * 1024]);

/// The boot CPU's SVC and Abort stacks (the other CPUs park in `_start`).
#[no_mangle]
static mut SVC_STACK: Stack = Stack([0; 16 * 1024]);
#[no_mangle]
static mut ABT_STACK: Stack = Stack([0; 16 * 1024]);

// Entered in SVC mode at PL1: the boot CPU sets the Abort and SVC stacks and
// VBAR and calls kernel_main; the others wait (a real kernel starts them,
// and each calls `HWBP.cpu_online(its number)`).
global_asm!(
    ".section .text._start, \"ax\"",
    ".arm",
    ".global _start",
    "_start:",
    "mrc p15, 0, r0, c0, c0, 5",
    "ands r0, r0, #0xff",
    "bne 2f",
    "cps #0x17", // Abort mode
    "ldr sp, =ABT_STACK + 16384",
    "cps #0x13", // SVC mode
    "ldr sp, =SVC_STACK + 16384",
    "ldr r0, =hwbp_vectors",
    "mcr p15, 0, r0, c12, c0, 0", // VBAR
    "isb",
    "bl kernel_main",
    "2: wfe",
    "b 2b",
);

fn halt() -> ! {
    loop {
        // SAFETY: waits for an event; no other effect.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    halt()
}
