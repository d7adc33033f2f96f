//! hwbp-core — share a CPU's hardware breakpoint and watchpoint registers.
//!
//! Placeholder crate root; the manager lands in the next commit.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod arch;
pub mod attr;
pub mod error;

pub use arch::{
    AddressSpace, Arch, Decoded, Encoding, Fired, Image, Piece, Pool, Resume, SlotCounts, MAX_SLOTS,
};
pub use attr::{Access, BpType, BreakpointAttr, Target, TaskId};
pub use error::Error;
