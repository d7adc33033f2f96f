//! # hwbp-core — share a CPU's hardware breakpoint and watchpoint registers
//!
//! A kernel, hypervisor, RTOS, gdb stub or bare-metal firmware has a handful of
//! debug registers (4 on x86, 2–16 of each kind on Arm, 1–2 channels on SuperH)
//! and many would-be users. This crate is the architecture-independent layer that
//! shares them safely, the way Linux's `hw_breakpoint` layer does inside Linux:
//!
//! * [`BreakpointAttr`]: the generic request (address, length, R/W/RW/X, CPU /
//!   all CPUs / task, pinned or flexible, sample period, inherit, …).
//! * [`ConstraintTable`]: refuses what cannot always fit, counting register
//!   *weights* per CPU and per pool (instruction and data pools are separate
//!   exactly when the hardware's are), sized from slot counts discovered at
//!   run time. Its cost never depends on the number of tasks.
//! * [`Manager`]: the event lifecycle (register, enable, disable, modify, fork,
//!   exit, unregister, hotplug, debugger reservations) and per-CPU scheduling
//!   onto physical slots (pinned first, flexible round-robin with
//!   [`Manager::rotate`]), writing only registers that change.
//! * [`Manager::handle_exception`]: lock-free, allocation-free dispatch from the
//!   debug exception to the breakpoint's [`Handler`], with stray filtering.
//! * [`Arch`]: what a CPU family's backend provides (`hwbp-x86`, `hwbp-arm64`,
//!   `hwbp-sh`): discovery ([`Arch::discover`], run by [`Manager::init`]),
//!   encoding, per-CPU init, install, decode, with its per-CPU state
//!   ([`Arch::CpuState`]) kept by the manager; and [`mock::Mock`], a
//!   software backend for host tests.
//! * What every backend shares: the generic request rules
//!   ([`BreakpointAttr::validate_request`]), the power-of-two region
//!   splitter ([`region`]), the address-match rule for hardware that reports
//!   only an address ([`attribution`]), and [`HardwareError`] for hardware
//!   that cannot be used.
//!
//! ## Who calls what
//!
//! | when | call |
//! |---|---|
//! | boot | [`Manager::init`] once, then [`Manager::cpu_online`] on each CPU |
//! | any context but the debug exception | register / modify / enable / disable / unregister / fork / exit / reserve, then [`Manager::sync`] on each CPU of the returned [`CpuSet`] |
//! | context switch, on the switching CPU | [`Manager::sched_out`] then [`Manager::sched_in`] |
//! | periodic tick (flexible breakpoints) | [`Manager::rotate`] |
//! | debug exception | [`Manager::handle_exception`], then do what the [`Resume`] says: its [`Action`], and hand the exception on when [`Resume::pass_on`] is set |
//! | before freeing what a handler uses, outside handlers | [`Manager::wait_quiesced`] (or poll [`Manager::quiesced`] / [`Manager::all_quiesced`]) after the unregister |
//!
//! Unregistering ([`Manager::unregister`], [`Manager::exit`]) hides a breakpoint
//! at once and never waits for a handler ("hide now, reclaim later"): no
//! delivery starts for it afterwards, its storage is reused only once no
//! delivery is in flight, and a handler may unregister any breakpoint, its
//! own included. A handler that had already started on another CPU may still
//! be running when the unregister returns; [`Manager::wait_quiesced`] waits for
//! it (never from a handler).
//!
//! The core never writes another CPU's registers: changes that concern other
//! CPUs come back as a [`CpuSet`] for the embedder to resync there (an IPI in a
//! kernel).
//!
//! ## Where the code lives
//!
//! Each file owns one concern; the manager's methods are spread over several
//! `impl Manager` blocks so that each sits with what it owns.
//!
//! | file | owns |
//! |---|---|
//! | `manager.rs` | the [`Manager`] struct, its locked state, and the lifecycle API (init, hotplug, register … unregister, fork / exit, reservations, quiescence, queries); [`CpuSet`], [`Registered`], [`Reservation`] |
//! | `handle.rs` | [`Handle`]: storage index, 64-bit generation, manager identity |
//! | `id.rs` | the identity counter for managers and constraint tables |
//! | `storage.rs` | event storage: entries, the lowest free entry, retiring and reclaim ("hide now, reclaim later"), handle lookup |
//! | `lists.rs` | the index structures over storage: intrusive per-CPU / all-CPU / per-task event lists, the retiring list, the free set, the task maps |
//! | `sched.rs` | scheduling: the slot plan and `reschedule`, [`Times`] accounting, with [`Manager::sched_in`] / [`Manager::sched_out`] / [`Manager::sync`] / [`Manager::rotate`] |
//! | `dispatch.rs` | the exception path: [`Manager::handle_exception`], [`Sample`], [`Handler`], and the lock-free cells and slot maps it reads (loom-checked) |
//! | [`table`] | the constraint table (what can always fit); `table/map.rs`: its fixed open-addressing map of tasks and (task, CPU) pairs |
//! | [`attr`] | the generic request and its rules |
//! | [`attribution`] | the address-match rule for address-only hardware |
//! | [`region`] | the power-of-two region splitter |
//! | [`arch`] | the backend contract |
//! | [`mock`] | the software backend for host tests |
//! | [`error`] | [`Error`] and [`HardwareError`] |
//!
//! Dependencies point one way: `manager` builds on `storage`, `sched`,
//! `dispatch`, `handle` and the leaf modules (`table`, `attr`, `arch`,
//! `attribution`, `region`, `error`, `id`), which never name the manager.
//! `storage` and `sched` use `dispatch`'s lock-free cells (to publish, hide
//! and tag what dispatch reads); `storage` uses `sched`'s [`Times`]. The
//! only references back to `manager` are the `impl Manager` blocks in
//! `storage`, `sched`, `dispatch` (and `mock`'s test helper), which need the
//! manager's struct, its locked state and its small helpers (CPU index
//! check, affected CPUs).
//!
//! ## What things cost
//!
//! Costs follow the breakpoints that exist, not the `CPUS` / `EVENTS` /
//! `TASKS` capacities. Every live breakpoint sits in one list threaded
//! through event storage: its CPU's (`Target::Cpu`), the all-CPU one, or its
//! task's (found through a map keyed by [`TaskId`]), each split pinned /
//! flexible and kept in storage order. So:
//!
//! * [`Manager::sched_in`], [`Manager::sync`], [`Manager::rotate`] walk only
//!   the breakpoints that may run on that CPU in that context (the CPU's,
//!   the all-CPU ones, the running task's); [`Manager::sched_out`] and
//!   [`Manager::handle_exception`] cost O(slots). Planning streams those
//!   lists (flexible rotation starts at the CPU's cursor in the eligible
//!   flexible ones): at most `2 × MAX_SLOTS` breakpoints are ever selected,
//!   and nothing on the stack grows with a capacity. An unchanged image
//!   writes no register; otherwise the backend writes only what changed.
//! * [`Manager::fork`] walks the parent's breakpoints (reserve the copies,
//!   give the reservations back on a refusal, then store the copies);
//!   [`Manager::exit`] walks the task's. Both account a task's pinned
//!   requests of one pool and target as one batch: one table check and
//!   update for the lot, not one per breakpoint.
//! * Registering takes the lowest free entry in O(log `EVENTS`) plus its
//!   place in its list (O(1) when it is the highest there, the usual case)
//!   plus the constraint table's check; unregistering is O(1) plus the
//!   table; reclaiming walks only the entries still retiring.
//! * The [`CpuSet`] a mutation returns is computed in O(1): a task's CPU is
//!   kept up to date by `sched_in` / `sched_out`.
//!
//! Memory: per CPU, the scheduling state, the image and the slot map; per
//! event, its entry, its cell and a few index words (including two map
//! buckets per entry for the task heads). Nothing per event or per task
//! grows with the CPU count.
//!
//! ## Example (runs on the host with the mock backend)
//!
//! ```
//! use core::sync::atomic::{AtomicU64, Ordering};
//! use hwbp_core::mock::{Mock, MockConfig};
//! use hwbp_core::{Access, BreakpointAttr, Error, Manager, Sample, Target};
//!
//! static LAST: AtomicU64 = AtomicU64::new(0);
//! fn on_hit(s: &Sample) { LAST.store(s.addr, Ordering::Relaxed); }
//!
//! // 1 CPU, up to 8 breakpoints, up to 4 tasks with pinned breakpoints
//! // (the defaults are 1 CPU, 64 breakpoints, 64 tasks: `Manager<Mock>`).
//! static HW: Manager<Mock, fn(&Sample), 1, 8, 4> =
//!     Manager::new(Mock::new(MockConfig::X86_LIKE), on_hit);
//!
//! HW.init(1)?;
//! HW.cpu_online(0)?;
//! let reg = HW.register(&BreakpointAttr::watch(0x1000, 4, Access::WRITE).target(Target::Cpu(0)))?;
//! for cpu in reg.sync.iter() { HW.sync(cpu)?; }
//!
//! // A 2-byte store into the watched word traps; a read does not.
//! HW.access(0, 0x1002, 2, Access::WRITE, 0x40_0000);
//! HW.access(0, 0x1000, 4, Access::READ, 0x40_0004);
//! assert_eq!(HW.hits(reg.handle)?, 1);
//! assert_eq!(LAST.load(Ordering::Relaxed), 0x1002);
//!
//! // Four registers, one in use: a 32-byte region needs four more and is
//! // refused; one needing more than the hardware has is refused as too large.
//! let big = BreakpointAttr::watch(0x2000, 32, Access::RW);
//! assert_eq!(HW.register(&big).unwrap_err(), Error::NoSlot { cpu: 0 });
//! let odd = BreakpointAttr::watch(0x2001, 14, Access::RW); // 1+2+4+4+2+1 bytes
//! assert_eq!(HW.register(&odd).unwrap_err(), Error::RangeTooLarge { weight: 6, slots: 4 });
//! assert_eq!(HW.len(), 1);
//! # Ok::<(), Error>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

pub mod arch;
pub mod atomic;
pub mod attr;
pub mod attribution;
mod dispatch;
pub mod error;
mod handle;
mod id;
mod lists;
mod manager;
pub mod mock;
pub mod region;
mod sched;
mod storage;
pub mod table;

pub use arch::{
    Action, AddressSpace, Arch, Decoded, Encoding, Fired, Image, Piece, Pool, Resume, SlotCounts,
    MAX_SLOTS,
};
pub use attr::{Access, BpType, BreakpointAttr, Target, TaskId};
pub use dispatch::{CpuCounters, Handler, Sample};
pub use error::{Error, HardwareError};
pub use handle::Handle;
pub use manager::{CpuSet, Manager, Registered, Reservation};
pub use sched::Times;
pub use table::{Claim, ConstraintTable, Demand};

/// The `heapless` crate this crate's public API uses ([`Encoding::pieces`],
/// [`Image::pools`]): name its types through this re-export so the versions
/// always agree.
pub use heapless;

/// This crate's README examples, compiled and run as doc tests so they
/// cannot rot (inside the package, so they run on the packaged crate too).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
