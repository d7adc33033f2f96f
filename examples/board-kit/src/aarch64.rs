//! What the AArch64 boards share at EL1: IRQ masking for the kit's critical
//! section, the CPU number, leaving QEMU and writing its console through
//! semihosting.

const DAIF_I: u64 = 1 << 7;
const DAIF_F: u64 = 1 << 6;

/// Mask IRQ and FIQ on the calling CPU and return the previous DAIF (bits
/// 6-9; bit 63 clear). The debug mask (`PSTATE.D`) is not touched.
///
/// # Safety
///
/// Called at EL1, paired with [`restore_irqs`] (a [`Board::mask_irqs`](crate::Board::mask_irqs)).
pub unsafe fn mask_irqs() -> u64 {
    let daif: u64;
    // SAFETY: reading DAIF and masking IRQ/FIQ at EL1 has no other effect.
    unsafe {
        core::arch::asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nomem, nostack));
    }
    daif
}

/// Unmask IRQ and FIQ only where they were unmasked in `previous` (a
/// [`mask_irqs`] result); the debug mask is left as it is now, since the
/// hwbp-arm64 enable sequence clears it inside a critical section.
///
/// # Safety
///
/// `previous` comes from the matching [`mask_irqs`] on this CPU.
pub unsafe fn restore_irqs(previous: u64) {
    if previous & DAIF_I == 0 {
        // SAFETY: unmasking IRQs at EL1 restores the state of acquire.
        unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack)) };
    }
    if previous & DAIF_F == 0 {
        // SAFETY: unmasking FIQs at EL1 restores the state of acquire.
        unsafe { core::arch::asm!("msr daifclr, #1", options(nomem, nostack)) };
    }
}

/// This CPU's number: `MPIDR_EL1.Aff0`.
pub fn cpu_id() -> u16 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 at EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u16
}

/// A semihosting call (`hlt #0xf000`): operation `op`, parameter `arg`.
fn semihost(op: u64, arg: u64) {
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting call; QEMU runs with
    // -semihosting and reads only what `arg` points at for `op`. Without
    // -semihosting the HLT is UNDEFINED and the board's vectors report it.
    unsafe { core::arch::asm!("hlt #0xf000", inout("x0") op => _, in("x1") arg, options(nostack)) };
}

/// Leave QEMU through semihosting SYS_EXIT (ADP_Stopped_ApplicationExit),
/// with exit code 0 or 1.
pub fn semihosting_exit(success: bool) -> ! {
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, u64::from(!success)];
    semihost(SYS_EXIT, block.as_ptr() as u64);
    // Without -semihosting this is not reached; if it is, park the CPU.
    loop {
        core::hint::spin_loop();
    }
}

/// Write one byte to QEMU's semihosting console (SYS_WRITEC), which QEMU
/// prints on its standard output.
pub fn semihosting_putc(byte: u8) {
    const SYS_WRITEC: u64 = 0x03;
    let c = byte;
    semihost(SYS_WRITEC, &c as *const u8 as u64);
}

/// Spin until `done()` holds, or stop the run after 10 seconds (of the
/// generic timer's counter) naming `what`: a firmware that hangs would leave
/// QEMU running, so every cross-CPU or interrupt wait is bounded.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let (freq, start): (u64, u64);
    // SAFETY: reading CNTFRQ_EL0 and CNTVCT_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) start, options(nomem, nostack));
    }
    while !done() {
        let now: u64;
        // SAFETY: as above.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) now, options(nomem, nostack))
        };
        if now.wrapping_sub(start) > 10 * freq.max(1) {
            crate::fatal!("timed out after 10 s waiting for {}", what);
        }
        core::hint::spin_loop();
    }
}
