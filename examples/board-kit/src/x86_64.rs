//! What the x86_64 boards share at CPL 0: interrupt masking (RFLAGS.IF) for
//! the kit's critical section.

/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;

/// Clear RFLAGS.IF and return the previous RFLAGS (bit 63 is reserved, 0).
///
/// # Safety
///
/// Called at CPL 0, paired with [`restore_irqs`] (a [`Board::mask_irqs`](crate::Board::mask_irqs)).
pub unsafe fn mask_irqs() -> u64 {
    let flags: u64;
    // SAFETY: reading RFLAGS and clearing IF at CPL 0 has no other effect.
    unsafe { core::arch::asm!("pushfq", "pop {}", "cli", out(reg) flags, options(nomem)) };
    flags
}

/// Re-enable interrupts only if they were enabled in `previous` (a
/// [`mask_irqs`] result).
///
/// # Safety
///
/// `previous` comes from the matching [`mask_irqs`] on this CPU.
pub unsafe fn restore_irqs(previous: u64) {
    if previous & RFLAGS_IF != 0 {
        // SAFETY: interrupts were enabled when the outermost section began.
        unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    }
}
