//! hwbp backend for the x86 debug registers DR0–DR7 (x86 and x86_64).
//!
//! - [`Dr7`], [`Dr6`]: typed register values (Intel SDM vol. 3, §18.2).
//! - [`Encoder`]: pure validation and encoding of generic
//!   [`hwbp_core::BreakpointAttr`] requests, including splitting a region into
//!   the fewest naturally aligned pieces ([`region`]). Usable anywhere, for
//!   example by a ptrace implementation.
//! - [`X86`]: the [`hwbp_core::Arch`] implementation. Over [`Cpu`] it drives the
//!   real registers (ring 0); over [`ModelRegs`] it drives the software
//!   [`Model`] of the debug hardware, so the same code is tested on the host.
//! - [`RegisterImage`], [`Encoder::import`]: raw DR0–DR3/DR7 images in and out,
//!   losslessly.
//!
//! See `README.md` for the rules and how they are verified.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod dr6;
pub mod dr7;
pub mod encode;
pub mod image;
pub mod model;
pub mod model_regs;
pub mod region;
pub mod regs;
pub mod slot;

pub use backend::{DebugException, X86};
pub use dr6::Dr6;
pub use dr7::{Condition, Dr7, Size, SlotEnable};
pub use encode::{Encoder, Mode, RegionPolicy, SLOTS};
pub use image::{Imported, ImportedSlot, RegisterImage};
pub use model::{AccessKind, CpuAccess, Model};
pub use model_regs::{ModelRegs, RegWrite};
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub use regs::Cpu;
pub use regs::{DebugReg, DebugRegs};
pub use slot::DrSlot;
