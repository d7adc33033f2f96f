//! hwbp backend for the SuperH User Break Controller (UBC).
//!
//! * [`variant`]: which UBC the running part has (SH-4 channels A/B, or
//!   SH-4A channels 0..n), found at run time from PVR/PRR or by a probe.
//! * [`sh4a`], [`sh4`]: the registers of each layout, with typed fields.
//! * [`encode`]: generic requests → [`UbcSlot`] channel settings (pure).
//! * [`decode`]: the user break exception and its match flags.
//! * [`mmio`]: [`UbcBackend`], the [`hwbp_core::Arch`] implementation over a
//!   [`UbcBus`].
//! * [`model`]: an in-memory register file and a behavioural UBC model for
//!   host verification (no Rust compiler targets SuperH).
//!
//! Every channel serves instruction and data breakpoints alike, so the slot
//! counts are [`hwbp_core::SlotCounts::Shared`] with the channel count of
//! the identified part.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bus;
pub mod decode;
pub mod encode;
pub mod mmio;
pub mod model;
pub mod sh4;
pub mod sh4a;
pub mod slot;
pub mod variant;

pub use bus::{Mmio, UbcBus};
pub use decode::UbcException;
pub use encode::{Encoder, RangePolicy, SizePolicy};
pub use mmio::UbcBackend;
pub use slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};
pub use variant::{discover, identify, probe, Layout, Part, Variant};
