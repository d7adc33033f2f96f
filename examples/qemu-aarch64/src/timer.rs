//! A periodic scheduler tick on CPU 0 for multiplexing flexible breakpoints:
//! the EL1 virtual timer (PPI 11 = INTID 27 on QEMU's virt board) through the
//! GICv2 (distributor at 0x0800_0000, CPU interface at 0x0801_0000), whose
//! interrupt handler calls `Manager::rotate(0)`, as a kernel's tick would.

use core::sync::atomic::{AtomicU64, Ordering};

use board_kit::{fatal, Ticker};

use crate::HWBP;

const GICD: usize = 0x0800_0000;
const GICC: usize = 0x0801_0000;
const GICD_CTLR: usize = 0x000;
const GICD_ISENABLER0: usize = 0x100;
const GICD_ICENABLER0: usize = 0x180;
const GICC_CTLR: usize = 0x000;
const GICC_PMR: usize = 0x004;
const GICC_IAR: usize = 0x00c;
const GICC_EOIR: usize = 0x010;
/// The EL1 virtual timer's interrupt on the virt board.
const VTIMER_INTID: u32 = 27;
/// Spurious interrupt id.
const SPURIOUS: u32 = 1023;

/// Ticks delivered so far.
static TICKS: Ticker = Ticker::new();
/// Timer period in counter cycles.
static PERIOD: AtomicU64 = AtomicU64::new(0);

fn write(addr: usize, v: u32) {
    // SAFETY: a GICv2 register of QEMU's virt board, mapped as device memory;
    // only CPU 0 uses the GIC, from this module.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn read(addr: usize) -> u32 {
    // SAFETY: as for `write`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn arm_timer(cycles: u64) {
    // SAFETY: the EL1 virtual timer is CPU 0's own, used only here; a
    // TVAL write (re)starts the countdown, CTL = ENABLE (IMASK clear).
    unsafe {
        core::arch::asm!(
            "msr cntv_tval_el0, {t}",
            "msr cntv_ctl_el0, {c}",
            "isb",
            t = in(reg) cycles, c = in(reg) 1u64,
            options(nostack)
        );
    }
}

/// Ticks delivered so far.
pub fn ticks() -> u64 {
    TICKS.ticks()
}

/// Start ticking every `hz`-th of a second on CPU 0 and unmask IRQs.
pub fn start(hz: u64) {
    let freq: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack)) };
    if freq == 0 {
        fatal!("CNTFRQ_EL0 is 0: no generic timer frequency");
    }
    PERIOD.store(freq / hz, Ordering::SeqCst);
    write(GICD + GICD_CTLR, 1);
    write(GICD + GICD_ISENABLER0, 1 << VTIMER_INTID);
    write(GICC + GICC_PMR, 0xff);
    write(GICC + GICC_CTLR, 1);
    arm_timer(freq / hz);
    // SAFETY: unmasks IRQs on CPU 0; the vector table sends them to `irq`.
    unsafe { core::arch::asm!("msr daifclr, #2", "isb", options(nostack)) };
}

/// Stop the tick and mask IRQs again.
pub fn stop() {
    // SAFETY: masks IRQs on CPU 0 and disables its virtual timer.
    unsafe {
        core::arch::asm!(
            "msr daifset, #2",
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nostack)
        );
    }
    write(GICD + GICD_ICENABLER0, 1 << VTIMER_INTID);
}

/// The IRQ handler (vector "current EL with SP_ELx, IRQ").
pub fn irq() {
    let iar = read(GICC + GICC_IAR);
    let id = iar & 0x3ff;
    if id == SPURIOUS {
        return;
    }
    if id != VTIMER_INTID {
        fatal!("unexpected interrupt {}", id);
    }
    TICKS.tick(|| HWBP.rotate(0));
    arm_timer(PERIOD.load(Ordering::SeqCst));
    write(GICC + GICC_EOIR, iar);
}
