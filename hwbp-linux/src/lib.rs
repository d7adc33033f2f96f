//! hwbp on Linux user space: watch your own memory with the CPU's debug
//! registers through `perf_event_open`, with a handler that runs synchronously
//! in the thread that made the access.
//!
//! ```
//! # #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
//! # fn main() -> Result<(), hwbp_linux::Error> {
//! use hwbp_core::{Access, BreakpointAttr};
//! use hwbp_linux::{current_thread, Breakpoint, Hit};
//!
//! static mut WATCHED: u32 = 0;
//! fn on_hit(hit: &Hit) {
//!     // Signal context: async-signal-safe work only.
//!     let _ = (hit.addr, hit.tid);
//! }
//! let attr = BreakpointAttr::watch(&raw const WATCHED as u64, 4, Access::WRITE)
//!     .target(current_thread())
//!     .inherit(true); // and every thread/child spawned from here on
//! let bp = Breakpoint::with_handler(&attr, on_hit)?;
//! unsafe { (&raw mut WATCHED).write_volatile(7) }; // on_hit runs before the next line
//! assert_eq!(bp.count()?, 1);
//! # Ok(()) }
//! # #[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
//! # fn main() {}
//! ```
//!
//! * Requests are the generic [`hwbp_core::BreakpointAttr`], checked before the
//!   system call by the architecture's encoder plus Linux's perf rules
//!   ([`rules`]), so mistakes come back as [`Error::Invalid`] with a
//!   [`hwbp_core::Error`]; refusals by the kernel come back as the other
//!   [`Error`] variants, never as a bare errno.
//! * Targets: a thread (`Target::Task`), with `inherit` the threads and processes
//!   it creates afterwards ("per-process" in Linux's sense), every existing
//!   thread ([`Breakpoint::open_process`]), or a CPU (root / CAP_PERFMON).
//! * Delivery: perf `sigtrap` (Linux ≥ 5.13) makes the kernel send SIGTRAP with
//!   `si_code == TRAP_PERF` to the thread that hit, before it runs another user
//!   instruction. One process-wide handler ([`signal`]) finds the breakpoint by
//!   the cookie in `si_perf_data`, counts the sample and calls the user's
//!   `fn(&Hit)`; other SIGTRAPs go to the handler that was there before.
//!
//! The implementation is Linux-only (x86_64 and aarch64); elsewhere only the
//! platform-independent parts ([`Error`], [`abi`], [`rules`]) are built.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod error;
pub mod record;
pub mod rules;

pub use error::Error;

// Items only built on the supported Linux targets.
cfg_if::cfg_if! {
    if #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))] {
        mod breakpoint;
        mod sampled;
        pub mod signal;
        #[cfg(feature = "symbols")]
        pub mod symbols;
        mod sys;

        pub use breakpoint::{current_thread, thread, Breakpoint, Delivery};
        pub use record::{Record, Sample};
        pub use sampled::{KernelHits, SampleOptions, SampledBreakpoint, Totals, Wakeup};
        pub use signal::{Hit, HitFn};
    }
}

/// Identifies a breakpoint in [`Hit`]s: the `sig_data`
/// cookie it was opened with. A [`Delivery::CountOnly`] breakpoint, which has
/// no cookie, gets an id of another form that never equals a cookie; ids of
/// breakpoints open at the same time are distinct (a count-only id comes back
/// only after 2^48 later count-only opens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u64);
