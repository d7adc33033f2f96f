//! hwbp backend for the Arm debug registers: AArch64 (`DBGB*_EL1`,
//! `DBGW*_EL1`) and AArch32 / Armv7 (CP14 `DBGB*`, `DBGW*`).
//!
//! # What is here
//!
//! | Concept | Module |
//! |---|---|
//! | Slot discovery (`ID_AA64DFR0_EL1`, `DBGDIDR`) | [`id`] |
//! | Typed control registers | [`bcr`], [`wcr`] |
//! | Validation and encoding ([`Encoder`], pure, host-usable) | [`encode`], [`region`] |
//! | Exception decoding (`ESR_ELx`; `IFSR`/`DFSR`/`DBGDSCR.MOE`) | [`esr`], [`aarch32`], [`event`] |
//! | Watchpoint attribution (exact first, else closest) | [`matcher`] |
//! | Step-over state machine | [`step`] |
//! | Software model of the hardware | [`model`] |
//! | The [`hwbp_core::Arch`] implementation and register access | [`backend`] |
//!
//! # Entry points for firmware and kernels
//!
//! **AArch64** (EL1):
//! ```ignore
//! use hwbp_arm64::{Aarch64, Aarch64Exception};
//! // One backend for up to 4 CPUs, in a static.
//! static ARCH: Aarch64<4> = unsafe { Aarch64::aarch64() }; // SAFETY: EL1, sole owner
//! // On each CPU, early (debug exception vector installed):
//! ARCH.init_cpu(cpu)?; // discovers counts, unlocks, sets MDSCR_EL1.MDE|KDE,
//!                      // clears PSTATE.D, clears every slot
//! // In the synchronous exception vector, for EC 0x30..=0x35:
//! let raw = Aarch64Exception { esr, far, elr };
//! match hwbp.handle_exception(cpu, &raw) {          // or ARCH.decode(cpu, &raw)
//!     Resume::SingleStep => saved_spsr |= 1 << 21,  // SPSR_EL1.SS
//!     Resume::NotOurs => { /* BRK, foreign step: next handler */ }
//!     _ => {}
//! }
//! ```
//!
//! **AArch32 / Armv7** (PL1, monitor debug mode):
//! ```ignore
//! use hwbp_arm64::{Aarch32, Aarch32Exception, AbortKind, StepMethod};
//! // StepMethod::Mismatch on hardware; Manual on QEMU 7.2 (no mismatch
//! // breakpoints): then call ARCH.complete_step(cpu) once the instruction ran.
//! static ARCH: Aarch32<2> = unsafe { Aarch32::aarch32(StepMethod::Manual) };
//! ARCH.init_cpu(cpu)?;   // DBGDIDR, OS lock, DBGVCR = 0, DBGDSCRext.MDBGen
//! // Prefetch abort handler: pc = LR_abt - 4; data abort: pc = LR_abt - 8.
//! let raw = Aarch32Exception { kind: AbortKind::Data, fsr: dfsr, far: dfar, dscr, pc };
//! ```
//! `dscr` is `DBGDSCRext` (`MRC p14, 0, Rt, c0, c2, 2`) read in the handler.
//!
//! The step-over state lives in the backend, per CPU (index = CPU number,
//! `CPUS` fixed at compile time), in atomics touched only by their own CPU.
//!
//! # Host use
//!
//! [`Encoder`] validates and encodes without hardware (`hwbp-linux` uses it on
//! arm64), and [`Arm`]`<`[`model::Model`]`, N>` runs the whole backend against
//! the software model.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod aarch32;
pub mod backend;
pub mod bcr;
pub mod encode;
pub mod esr;
pub mod event;
pub mod id;
pub mod matcher;
pub mod model;
pub mod region;
pub mod step;
pub mod wcr;

pub use aarch32::{AbortKind, Aarch32Exception};
pub use backend::aarch32::{Aarch32, Aarch32Regs};
pub use backend::aarch64::{Aarch64, Aarch64Regs};
pub use backend::{Arm, Bank, DebugRegs, StepMethod};
pub use encode::{ArmSlot, Encoder, Flavour, AARCH32_KERNEL_BASE};
pub use esr::Aarch64Exception;
pub use event::DebugEvent;
pub use id::{DebugArch, DebugVer, Dbgdidr, IdAa64Dfr0};
