//! The 64-bit atomic hwbp uses, on every target: [`AtomicU64`].
//!
//! Cortex-M (`thumbv7em-none-eabihf`) and 32-bit RISC-V
//! (`riscv32imac-unknown-none-elf`) have 32-bit atomics only, and the
//! dispatcher keeps 64-bit hit counts, sample periods and addresses (the
//! backends, a 64-bit program counter or packed variant). On those targets
//! [`AtomicU64`] is [`CsAtomicU64`], a value in a [`critical_section::Mutex`]:
//! they are single-core microcontrollers whose critical section masks
//! interrupts, so an exception handler cannot preempt an update half-way. A
//! lock-based fallback (such as `portable-atomic`'s global spinlocks on
//! targets that have a 32-bit compare-and-swap) would deadlock when the debug
//! exception interrupts the lock holder on the same CPU; a critical section
//! nests instead. Everywhere else [`AtomicU64`] is
//! [`core::sync::atomic::AtomicU64`].

use core::cell::Cell;
use core::fmt;
use core::sync::atomic::Ordering;

use critical_section::Mutex;

cfg_if::cfg_if! {
    if #[cfg(target_has_atomic = "64")] {
        /// A 64-bit atomic: core's, as this target has 64-bit atomics.
        pub type AtomicU64 = core::sync::atomic::AtomicU64;
    } else {
        /// A 64-bit atomic: [`CsAtomicU64`], as this target has no 64-bit
        /// atomics.
        pub type AtomicU64 = CsAtomicU64;
    }
}

/// A `u64` read and written inside critical sections, with the part of
/// [`core::sync::atomic::AtomicU64`]'s interface hwbp uses.
///
/// Every operation is one critical section, which is a full barrier, so the
/// [`Ordering`] arguments (kept so that code is the same on every target)
/// are always honoured.
pub struct CsAtomicU64(Mutex<Cell<u64>>);

impl CsAtomicU64 {
    /// A new atomic holding `v`.
    pub const fn new(v: u64) -> Self {
        CsAtomicU64(Mutex::new(Cell::new(v)))
    }

    /// The value.
    pub fn load(&self, _: Ordering) -> u64 {
        critical_section::with(|cs| self.0.borrow(cs).get())
    }

    /// Replace the value.
    pub fn store(&self, v: u64, _: Ordering) {
        critical_section::with(|cs| self.0.borrow(cs).set(v));
    }

    /// Wrapping add; returns the previous value, like the native one.
    pub fn fetch_add(&self, v: u64, _: Ordering) -> u64 {
        critical_section::with(|cs| {
            let cell = self.0.borrow(cs);
            let old = cell.get();
            cell.set(old.wrapping_add(v));
            old
        })
    }
}

impl fmt::Debug for CsAtomicU64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.load(Ordering::Relaxed), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback behaves like the native atomic the dispatcher uses on
    /// other targets: previous value returned, wrapping at 2^64, all 64 bits
    /// kept.
    #[test]
    fn behaves_like_the_native_atomic() {
        let native = core::sync::atomic::AtomicU64::new(u64::MAX - 1);
        let fallback = CsAtomicU64::new(u64::MAX - 1);
        for _ in 0..3 {
            assert_eq!(
                fallback.fetch_add(1, Ordering::Relaxed),
                native.fetch_add(1, Ordering::Relaxed)
            );
        }
        assert_eq!(fallback.load(Ordering::Relaxed), 1);
        fallback.store(0x1234_5678_9abc_def0, Ordering::Relaxed);
        assert_eq!(fallback.load(Ordering::Relaxed), 0x1234_5678_9abc_def0);
        assert_eq!(format!("{fallback:?}"), "1311768467463790320");
    }

    /// Increments from several threads are never lost.
    #[test]
    fn concurrent_increments_are_all_counted() {
        static COUNT: CsAtomicU64 = CsAtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        COUNT.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(COUNT.load(Ordering::Relaxed), 4000);
    }
}
