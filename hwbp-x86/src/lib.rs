//! hwbp backend for the x86 debug registers DR0–DR7 (x86 and x86_64).
//!
//! The same layout as every hwbp arch crate:
//!
//! | concept | here |
//! |---|---|
//! | the [`hwbp_core::Arch`] implementation | [`backend::X86Backend`] |
//! | what the #DB handler hands in | [`exception::X86Exception`] |
//! | validation and encoding (pure, host-usable) | [`encode::Encoder`] |
//! | software model of the hardware (feature `model`) | `model` (`Model`, `ModelRegs`) |
//!
//! - [`Dr7`], [`Dr6`]: typed register values (Intel SDM vol. 3, §18.2).
//! - [`Encoder`]: validation (the core's generic rules, then the x86 ones) and
//!   encoding of generic [`hwbp_core::BreakpointAttr`] requests, including
//!   splitting a region into the fewest naturally aligned pieces
//!   ([`hwbp_core::region`]). Usable anywhere, for example by a ptrace
//!   implementation.
//! - [`X86Backend`]: over [`Cpu`](regs) it drives the real registers
//!   (ring 0); over `model::ModelRegs` it drives the software model of the
//!   debug hardware, so the same code is tested on the host.
//! - [`RegisterImage`], [`Encoder::import`]: raw DR0–DR3/DR7 images in and out,
//!   losslessly.
//!
//! See `README.md` for the rules and how they are verified.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
mod display;
pub mod dr6;
pub mod dr7;
pub mod encode;
pub mod exception;
pub mod image;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod regs;
pub mod slot;

pub use backend::X86Backend;
pub use dr6::Dr6;
pub use dr7::{Condition, Dr7, Size, SlotEnable};
pub use encode::{Encoder, Mode, RegionPolicy, SLOTS};
pub use exception::X86Exception;
pub use image::{Imported, ImportedSlot, RegisterImage};
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub use regs::Cpu;
pub use regs::{DebugReg, DebugRegs};
pub use slot::DrSlot;
