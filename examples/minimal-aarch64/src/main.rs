//! The smallest AArch64 kernel (EL1) that uses hwbp: what hwbp-arm64's
//! porting guide describes, built and linked for `aarch64-unknown-none` by
//! `cargo xtask test`. Not a board example (nothing runs it): each piece is
//! what a kernel of its own needs, and the QEMU board `examples/qemu-aarch64`
//! runs the same pieces for real.
//!
//! 1. A critical-section implementation that excludes other CPUs, nests on
//!    its own CPU, and masks IRQ and FIQ only — never the debug mask
//!    (`PSTATE.D`), which `cpu_online` clears inside a critical section.
//! 2. The manager in a `static`.
//! 3. The exception vector: EC 0x30..=0x35 to `handle_exception`, then the
//!    `Resume`: `SPSR_EL1.SS` for a step-over, the next handler when
//!    `pass_on`.
//! 4. `sync` on every CPU a change names: here, or by an IPI there.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hwbp_arm64::backend::aarch64::SPSR_SS;
use hwbp_arm64::{Aarch64Backend, Aarch64Exception};
use hwbp_core::{Access, Action, BreakpointAttr, CpuSet, Manager, Sample, Target};

/// CPUs this kernel runs on (MPIDR_EL1.Aff0 = 0..CPUS).
const CPUS: u16 = 2;

/// The calling CPU's number: MPIDR_EL1.Aff0 on this (flat) machine.
fn cpu_id() -> u16 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 at EL1 has no side effect.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u16
}

// ---------------------------------------------------------------------------
// 1. The critical section.

/// Marks a nested acquire in the restore state (DAIF uses bits 6..=9).
const NESTED: u64 = 1 << 63;
const DAIF_I: u64 = 1 << 7;
const DAIF_F: u64 = 1 << 6;

/// The CPU holding the lock: 0 = free, else CPU number + 1.
static OWNER: AtomicU32 = AtomicU32::new(0);

struct KernelCs;
critical_section::set_impl!(KernelCs);

// SAFETY: acquire masks IRQ and FIQ on the calling CPU and takes a lock that
// one CPU holds at a time, so no other context (interrupt or CPU) can be
// inside a critical section with it. A nested acquire on the owning CPU (a
// debug exception, which IRQ masking does not mask, calling into the manager)
// returns a token with NESTED set and keeps the lock. Release unmasks only
// what acquire found unmasked, and never touches PSTATE.D. No `nomem` on the
// asm: the section is a compiler barrier too.
unsafe impl critical_section::Impl for KernelCs {
    unsafe fn acquire() -> u64 {
        let daif: u64;
        // SAFETY: reading DAIF and masking IRQ and FIQ (daifset #3) at EL1.
        unsafe { asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nostack)) };
        let me = u32::from(cpu_id()) + 1;
        if OWNER.load(Ordering::Relaxed) == me {
            return daif | NESTED;
        }
        while OWNER
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        daif
    }

    unsafe fn release(token: u64) {
        if token & NESTED == 0 {
            OWNER.store(0, Ordering::Release);
        }
        if token & DAIF_I == 0 {
            // SAFETY: IRQs were unmasked at acquire.
            unsafe { asm!("msr daifclr, #2", options(nostack)) };
        }
        if token & DAIF_F == 0 {
            // SAFETY: FIQs were unmasked at acquire.
            unsafe { asm!("msr daifclr, #1", options(nostack)) };
        }
    }
}

// ---------------------------------------------------------------------------
// 2. The manager.

/// Hits delivered to [`on_hit`].
static HITS: AtomicU64 = AtomicU64::new(0);

fn on_hit(_: &Sample) {
    HITS.fetch_add(1, Ordering::Relaxed);
}

/// The manager: two CPUs, up to 16 breakpoints, 4 tasks with pinned
/// breakpoints.
// SAFETY: this kernel runs at EL1 and nothing else uses the debug registers.
static HWBP: Manager<Aarch64Backend, fn(&Sample), { CPUS as usize }, 16, 4> =
    Manager::new(unsafe { Aarch64Backend::aarch64() }, on_hit);

/// What the breakpoint watches.
static WATCHED: AtomicU64 = AtomicU64::new(0);

/// Boot CPU, with a stack and the vector table installed (`_start`).
#[no_mangle]
extern "C" fn kernel_main() -> ! {
    // Discovery (ID_AA64DFR0_EL1), then this CPU's enable sequence; the
    // other CPUs call `cpu_online` with their own number when they start.
    if HWBP.init(CPUS).is_err() || HWBP.cpu_online(cpu_id()).is_err() {
        halt();
    }
    let attr =
        BreakpointAttr::watch(WATCHED.as_ptr() as u64, 8, Access::WRITE).target(Target::AllCpus);
    if let Ok(reg) = HWBP.register(&attr) {
        apply(reg.sync);
    }
    WATCHED.store(1, Ordering::Relaxed); // a hit: on_hit runs
    halt()
}

// ---------------------------------------------------------------------------
// 3. The debug exception.

/// What the vector stub saves and restores around [`sync_exception`].
#[repr(C)]
struct Frame {
    elr: u64,
    spsr: u64,
    esr: u64,
    far: u64,
}

/// Synchronous exception from EL1 or EL0. Debug exceptions (ESR_EL1.EC
/// 0x30..=0x35: breakpoint, software step, watchpoint, from a lower or the
/// same EL) go to the manager; the Resume says what the CPU must do.
#[no_mangle]
extern "C" fn sync_exception(frame: &mut Frame) {
    let ec = frame.esr >> 26;
    if !(0x30..=0x35).contains(&ec) {
        halt(); // this kernel has no other synchronous exception
    }
    let raw = Aarch64Exception {
        esr: frame.esr,
        far: frame.far,
        elr: frame.elr,
    };
    let resume = HWBP.handle_exception(cpu_id(), &raw);
    match resume.action {
        Action::Return => {}
        // Step-over: the backend disabled the fired slots and set
        // MDSCR_EL1.SS; with SPSR_EL1.SS the instruction runs once, and the
        // software-step exception that follows (EC 0x32/0x33) comes back
        // here and re-enables them.
        Action::SingleStep => frame.spsr |= SPSR_SS,
        // x86 only.
        Action::SetResumeFlag => {}
    }
    if resume.pass_on {
        // Someone else's too (a debugger's BRK, step or registers): hand it
        // on. This kernel has no debugger.
        halt();
    }
}

// The vector table (VBAR_EL1): 16 entries of 0x80 bytes. Synchronous
// exceptions from the current EL (SP_ELx) and from EL0 (AArch64) go to the
// stub, which saves the registers the Rust function may clobber and the
// Frame, calls `sync_exception`, writes back ELR/SPSR (SPSR.SS may have been
// set) and returns with ERET. PSTATE.D is set on entry, so no debug
// exception nests.
global_asm!(
    ".section .text.vectors, \"ax\"",
    ".balign 2048",
    ".global hwbp_vectors",
    "hwbp_vectors:",
    "b .",
    ".balign 0x80", // current EL, SP0: sync
    "b .",
    ".balign 0x80", // IRQ
    "b .",
    ".balign 0x80", // FIQ
    "b .",
    ".balign 0x80", // SError
    "b sync_stub",
    ".balign 0x80", // current EL, SPx: sync
    "b .",
    ".balign 0x80", // IRQ (a real kernel: the IPI of `apply`)
    "b .",
    ".balign 0x80", // FIQ
    "b .",
    ".balign 0x80", // SError
    "b sync_stub",
    ".balign 0x80", // lower EL, AArch64: sync
    "b .",
    ".balign 0x80",
    "b .",
    ".balign 0x80",
    "b .",
    ".balign 0x80",
    "b .",
    ".balign 0x80", // lower EL, AArch32
    "b .",
    ".balign 0x80",
    "b .",
    ".balign 0x80",
    "b .",
    ".balign 0x80",
    "sync_stub:",
    "sub sp, sp, #208",
    "stp x0, x1, [sp, #0]",
    "stp x2, x3, [sp, #16]",
    "stp x4, x5, [sp, #32]",
    "stp x6, x7, [sp, #48]",
    "stp x8, x9, [sp, #64]",
    "stp x10, x11, [sp, #80]",
    "stp x12, x13, [sp, #96]",
    "stp x14, x15, [sp, #112]",
    "stp x16, x17, [sp, #128]",
    "stp x18, x29, [sp, #144]",
    "str x30, [sp, #160]",
    "mrs x0, elr_el1",
    "mrs x1, spsr_el1",
    "stp x0, x1, [sp, #176]",
    "mrs x0, esr_el1",
    "mrs x1, far_el1",
    "stp x0, x1, [sp, #192]",
    "add x0, sp, #176",
    "bl sync_exception",
    "ldp x0, x1, [sp, #176]",
    "msr elr_el1, x0",
    "msr spsr_el1, x1",
    "ldp x0, x1, [sp, #0]",
    "ldp x2, x3, [sp, #16]",
    "ldp x4, x5, [sp, #32]",
    "ldp x6, x7, [sp, #48]",
    "ldp x8, x9, [sp, #64]",
    "ldp x10, x11, [sp, #80]",
    "ldp x12, x13, [sp, #96]",
    "ldp x14, x15, [sp, #112]",
    "ldp x16, x17, [sp, #128]",
    "ldp x18, x29, [sp, #144]",
    "ldr x30, [sp, #160]",
    "add sp, sp, #208",
    "eret",
);

// ---------------------------------------------------------------------------
// 4. Resync after a change.

/// SGI number of the resync IPI.
const SGI_SYNC: u64 = 1;

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
            // GICv3: SGI to the CPU with Aff0 = cpu in this cluster.
            let sgi = (SGI_SYNC << 24) | (1 << cpu);
            // SAFETY: writing ICC_SGI1R_EL1 at EL1 only raises the SGI.
            unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) sgi, options(nostack)) };
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

#[repr(C, align(16))]
struct Stack([u8; 64 * 1024]);

/// The boot CPU's stack (the other CPUs park in `_start`).
#[no_mangle]
static mut BOOT_STACK: Stack = Stack([0; 64 * 1024]);

// Entered at EL1 with the MMU off: the boot CPU sets its stack and VBAR_EL1
// and calls kernel_main; the others wait (a real kernel starts them with
// PSCI CPU_ON, and each calls `HWBP.cpu_online(its number)`).
global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "mrs x0, mpidr_el1",
    "and x0, x0, #0xff",
    "cbnz x0, 2f",
    "adrp x1, BOOT_STACK",
    "add x1, x1, :lo12:BOOT_STACK",
    "add x1, x1, #16, lsl #12",
    "mov sp, x1",
    "adrp x2, hwbp_vectors",
    "add x2, x2, :lo12:hwbp_vectors",
    "msr vbar_el1, x2",
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
