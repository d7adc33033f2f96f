//! The board check of the embedder contract for exceptions taken during a
//! step-over (issue 16): a watchpoint hit's step-over is interrupted by an
//! IRQ before the store runs, and the IRQ handler runs with debug exceptions
//! unmasked. The handler follows the contract (`ArmBackend::suspend_step`
//! on entry, `restore_step` before `ERET`, as Linux clears and restores
//! `MDSCR_EL1.SS` around kernel entry), so the store is stepped once, after
//! the handler, and counted once. (Without it, the step exception would be
//! taken inside the handler with no instruction stepped; hwbp-arm64 answers
//! that `NOT_OURS` and keeps the step-over, which the debug handler here
//! would report as a failure.)
//!
//! The IRQ: the EL1 virtual timer (INTID 27) through the GICv2, made to fire
//! at once from the debug handler when the watchpoint hits.

use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use board_kit::{check, fatal, must};
use hwbp_core::{Access, BreakpointAttr, Sample, Target};

use crate::machine::HWBP;

/// The watched word.
#[no_mangle]
static mut IRQ_WATCHED: u64 = 0;

const GICD: usize = 0x0800_0000;
const GICC: usize = 0x0801_0000;
const VTIMER_INTID: u32 = 27;

/// The check is running: a hit on IRQ_WATCHED raises the IRQ.
static ARMED: AtomicBool = AtomicBool::new(false);
/// IRQs taken, and those taken while the step-over was pending.
static IRQS: AtomicU32 = AtomicU32::new(0);
static IRQS_IN_STEP_OVER: AtomicU32 = AtomicU32::new(0);
/// Hits delivered on the watched word.
static HITS: AtomicU32 = AtomicU32::new(0);

fn gic(reg: usize, v: u32) {
    // SAFETY: a GICv2 register of QEMU's virt board (device memory); only
    // CPU 0 uses the GIC, from this module.
    unsafe { core::ptr::write_volatile(reg as *mut u32, v) }
}

fn timer(ctl: u64, tval: u64) {
    // SAFETY: CPU 0's own EL1 virtual timer, used only here.
    unsafe {
        core::arch::asm!("msr cntv_tval_el0, {t}", "msr cntv_ctl_el0, {c}", "isb",
            t = in(reg) tval, c = in(reg) ctl, options(nostack));
    }
}

/// A sample of the manager's, from the debug handler: on the check's word,
/// make the IRQ pending now, so it is taken when the handler returns, before
/// the store is stepped.
pub fn on_sample(s: &Sample) {
    if ARMED.load(Ordering::SeqCst) && s.addr == addr_of_mut!(IRQ_WATCHED) as u64 {
        HITS.fetch_add(1, Ordering::SeqCst);
        timer(1, 0);
    }
}

/// The IRQ handler (vector 5, CPU 0), following the contract.
pub fn irq() {
    let arm = HWBP.arch();
    let suspended = arm.suspend_step();
    IRQS.fetch_add(1, Ordering::SeqCst);
    if must!(HWBP.backend_cpu(0)).step_over().pending && suspended.was_armed() {
        IRQS_IN_STEP_OVER.fetch_add(1, Ordering::SeqCst);
    }
    // The hazard: the rest of the handler runs with debug exceptions
    // unmasked (PSTATE.D clear).
    // SAFETY: unmasking then masking debug exceptions at EL1.
    unsafe { core::arch::asm!("msr daifclr, #8", "isb", options(nostack)) };
    // SAFETY: GICC_IAR/EOIR of the GICv2 (device memory), CPU 0 only.
    let iar = unsafe { core::ptr::read_volatile((GICC + 0x0c) as *const u32) };
    timer(0, 0);
    gic(GICC + 0x10, iar);
    // SAFETY: as above.
    unsafe { core::arch::asm!("msr daifset, #8", "isb", options(nostack)) };
    arm.restore_step(suspended);
}

/// Run the check (CPU 0, before the GDB session).
pub fn run() {
    gic(GICD, 1);
    gic(GICD + 0x100, 1 << VTIMER_INTID);
    gic(GICC + 0x04, 0xff);
    gic(GICC, 1);
    let attr = BreakpointAttr::watch(addr_of_mut!(IRQ_WATCHED) as u64, 8, Access::WRITE)
        .target(Target::Cpu(0));
    let reg = must!(HWBP.register(&attr));
    must!(HWBP.sync(0));
    ARMED.store(true, Ordering::SeqCst);
    // SAFETY: IRQs unmasked only around the store; vector 5 sends them to
    // `irq`. The store is the watched access.
    unsafe {
        core::arch::asm!("msr daifclr, #2", "isb", options(nostack));
        core::ptr::write_volatile(addr_of_mut!(IRQ_WATCHED), 7);
        core::arch::asm!("msr daifset, #2", "isb", options(nostack));
    }
    ARMED.store(false, Ordering::SeqCst);
    let counted = must!(HWBP.hits(reg.handle));
    let set = must!(HWBP.unregister(reg.handle));
    if set.contains(0) {
        must!(HWBP.sync(0));
    }
    gic(GICD + 0x180, 1 << VTIMER_INTID);
    check!(
        IRQS.load(Ordering::SeqCst) == 1 && IRQS_IN_STEP_OVER.load(Ordering::SeqCst) == 1,
        "an IRQ was taken during the watchpoint's step-over, before the store ran"
    );
    check!(
        HITS.load(Ordering::SeqCst) == 1 && counted == 1,
        "its handler unmasked debug exceptions with the step suspended: the store was stepped once and counted once"
    );
    // SAFETY: a plain read of the word the check wrote.
    let v = unsafe { core::ptr::read_volatile(addr_of_mut!(IRQ_WATCHED)) };
    check!(v == 7, "the store completed (IRQ_WATCHED = {})", v);
    if must!(HWBP.backend_cpu(0)).step_over().pending {
        fatal!("a step-over is still pending after the check");
    }
}
