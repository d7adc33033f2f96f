//! The `critical-section` implementation of every board: interrupts masked
//! on the calling CPU through the board's [`Board::mask_irqs`], and, on a
//! board with several CPUs, a lock owned by one CPU at a time.
//!
//! Re-entrant on the owning CPU (a nested acquire returns a token with
//! [`NESTED`] set and leaves the lock held), so an exception handler that is
//! not masked (a debug exception) may print or record while its CPU is inside
//! a critical section. Only what the board's mask covers is masked: on Arm
//! that is IRQ and FIQ, never the debug mask (PSTATE.D), which hwbp-arm64's
//! enable sequence changes inside a critical section.
//!
//! [`Board::mask_irqs`]: crate::Board::mask_irqs

use core::sync::atomic::{AtomicU32, Ordering};

use crate::hooks;

/// The bit of a restore token that marks a nested acquire.
pub const NESTED: u64 = 1 << 63;

/// Owner of the lock between CPUs: 0 = free, else CPU number + 1.
static OWNER: AtomicU32 = AtomicU32::new(0);

struct BoardIrqs;
critical_section::set_impl!(BoardIrqs);

// SAFETY: acquire masks interrupts on the calling CPU (the board's
// `mask_irqs` contract: every interrupt that could take a critical section)
// and, with more than one CPU, takes a lock only one CPU holds at a time;
// on one CPU masking alone excludes every other context. Nested acquires on
// the owning CPU return a token release recognises and leave the lock held.
// Release unmasks only what was unmasked at acquire.
unsafe impl critical_section::Impl for BoardIrqs {
    unsafe fn acquire() -> u64 {
        // SAFETY: paired with `restore_irqs` in release.
        let previous = unsafe { hooks::mask_irqs() };
        if hooks::cpus() <= 1 {
            return previous;
        }
        let me = u32::from(hooks::cpu_id()) + 1;
        if OWNER.load(Ordering::Relaxed) == me {
            return previous | NESTED;
        }
        while OWNER
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        previous
    }

    unsafe fn release(token: u64) {
        if hooks::cpus() > 1 && token & NESTED == 0 {
            OWNER.store(0, Ordering::Release);
        }
        // SAFETY: the token came from acquire on this CPU.
        unsafe { hooks::restore_irqs(token & !NESTED) };
    }
}
