//! hwbp backend for the SuperH User Break Controller (UBC).
//!
//! * [`variant`]: which UBC the running part has (SH-4 channels A/B, or
//!   SH-4A channels 0..n), found at run time from PVR/PRR or by a probe.
//! * [`sh4a`], [`sh4`]: the registers of each layout, with typed fields.
//! * [`encode`]: generic requests → [`UbcSlot`] channel settings (pure).
//! * [`decode`]: the user break exception and its match flags.
//! * [`backend`]: [`ShBackend`], the [`hwbp_core::Arch`] implementation over a
//!   [`UbcBus`], and its per-CPU state [`ShCpuState`].
//! * [`exception`]: [`ShException`], what the exception handler hands in.
//! * `model` (feature `model`): an in-memory register file and a
//!   behavioural UBC model for host verification (no Rust compiler targets
//!   SuperH). No backend code path uses it.
//!
//! Every channel serves instruction and data breakpoints alike, so the slot
//! counts are [`hwbp_core::SlotCounts::Shared`] with the channel count of
//! the identified part.
//!
//! # Example (on the host, against the register-file model)
//!
//! ```
//! use hwbp_core::{Access, Arch, BreakpointAttr, Fired, Image, Pool};
//! use hwbp_sh::model::{BusCycle, RegisterFile};
//! use hwbp_sh::{identify, Part, ShBackend, ShCpuState, ShException};
//!
//! // An SH7785 (PVR 0x1030_0700) as the in-memory register file sees it.
//! let pvr = 0x1030_0700;
//! let regs = RegisterFile::new(identify(pvr, 0)?, pvr, 0);
//! // SAFETY: the bus is the in-memory register file, owned here.
//! let ubc = unsafe { ShBackend::new(&regs) };
//! let counts = ubc.discover()?; // what Hwbp::init does
//! assert_eq!(ubc.variant().part, Part::Sh7785);
//! // The per-CPU state the manager would keep.
//! let cpu0 = ShCpuState::new();
//! ubc.init_cpu(0, &cpu0)?;
//!
//! // Watch writes to a longword; the core would normally do this part.
//! let enc = ubc.encode(&BreakpointAttr::watch(0x0c00_1000, 4, Access::WRITE))?;
//! let mut want = Image::empty(counts);
//! want.pools[0][0] = enc.pieces[0].slot;
//! ubc.install(0, &cpu0, &Image::empty(counts), &want);
//!
//! // The UBC model sees a longword store there and raises a user break.
//! let out = regs.cycle(BusCycle::Write { pc: 0x8c00_0100, addr: 0x0c00_1000, size: 4 }, 0);
//! assert!(out.brk);
//! let d = ubc.decode(0, &cpu0, &ShException::user_break(out.spc));
//! assert_eq!(d.fired, Fired::Slots { pool: Pool(0), mask: 1 });
//! # Ok::<(), hwbp_core::Error>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod bus;
pub mod decode;
mod display;
pub mod encode;
pub mod exception;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod sh4;
pub mod sh4a;
pub mod slot;
pub mod variant;

pub use backend::{ShBackend, ShCpuState};
pub use bus::{Mmio, UbcBus};
pub use encode::{Encoder, RangePolicy, SizePolicy};
pub use exception::ShException;
pub use slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};
pub use variant::{discover, identify, probe, Layout, Part, Variant};
