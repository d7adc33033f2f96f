//! Identities of managers and constraint tables, so that a [`crate::Handle`]
//! or a [`crate::table::Claim`] is refused by every manager or table but the
//! one that issued it.
//!
//! A 32-bit counter (not 64-bit: the core must build for targets without
//! 64-bit atomics, such as `thumbv7em` and `riscv32imac`). It is taken once
//! per manager ([`crate::Manager::init`]) and once per table, so it wraps only
//! after 2³² of them have been created in one program; 0 is never issued.

use core::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A fresh non-zero identity.
pub(crate) fn next() -> u32 {
    loop {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}
