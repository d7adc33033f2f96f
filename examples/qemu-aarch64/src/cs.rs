//! A `critical-section` implementation for two CPUs: IRQs masked on this CPU
//! plus a spin lock owned by one CPU at a time. Re-entrant on the owning CPU,
//! so a debug exception handler may print while its CPU holds the lock.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::cpu_id;

/// Owner: 0 = free, else CPU number + 1.
static OWNER: AtomicU64 = AtomicU64::new(0);

struct TwoCpuLock;
critical_section::set_impl!(TwoCpuLock);

const NESTED: u64 = 1 << 63;
const DAIF_I: u64 = 1 << 7;
const DAIF_F: u64 = 1 << 6;

// SAFETY: acquire masks IRQs on the calling CPU and takes a lock that only one
// CPU holds at a time; nested acquires on the owning CPU return a token that
// release recognises and leaves the lock held. Only IRQ masking (DAIF.I/F) is
// touched, never the debug mask.
unsafe impl critical_section::Impl for TwoCpuLock {
    unsafe fn acquire() -> u64 {
        let daif: u64;
        // SAFETY: reading DAIF and masking IRQ/FIQ at EL1 has no other effect.
        unsafe {
            core::arch::asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nomem, nostack));
        }
        let me = u64::from(cpu_id()) + 1;
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
        // Unmask IRQ and FIQ only where they were unmasked at acquire; the
        // debug mask (PSTATE.D) is left as it is now, since the hwbp-arm64
        // enable sequence clears it inside the critical section.
        if token & DAIF_I == 0 {
            // SAFETY: unmasking IRQs at EL1 restores the state of acquire.
            unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack)) };
        }
        if token & DAIF_F == 0 {
            // SAFETY: unmasking FIQs at EL1 restores the state of acquire.
            unsafe { core::arch::asm!("msr daifclr, #1", options(nomem, nostack)) };
        }
    }
}
