//! The scheduler tick a board's timer interrupt drives: count it and rotate
//! the flexible breakpoints, as a kernel's tick would.

use core::fmt::Debug;
// usize: riscv32imac has no 64-bit atomics.
use core::sync::atomic::{AtomicUsize, Ordering};

/// Timer interrupts counted so far.
pub struct Ticker {
    ticks: AtomicUsize,
}

impl Ticker {
    /// No ticks yet.
    pub const fn new() -> Self {
        Ticker {
            ticks: AtomicUsize::new(0),
        }
    }

    /// From the timer interrupt: count a tick and run `rotate` (the
    /// manager's `Manager::rotate` for this CPU); a failed rotation is fatal.
    pub fn tick<E: Debug>(&self, rotate: impl FnOnce() -> Result<(), E>) {
        self.ticks.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = rotate() {
            crate::fatal!("rotate from the timer interrupt failed: {:?}", e);
        }
    }

    /// Ticks counted so far.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::SeqCst) as u64
    }
}

impl Default for Ticker {
    fn default() -> Self {
        Self::new()
    }
}
