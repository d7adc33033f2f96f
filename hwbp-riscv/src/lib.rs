//! hwbp backend for RISC-V debug triggers (Sdtrig, RISC-V Debug
//! Specification 1.0), RV32 and RV64, from M-mode.
//!
//! # What is here
//!
//! | Concept | Module |
//! |---|---|
//! | Trigger CSR access (`tselect`, `tinfo`, `tdata1`, `tdata2`) | [`csr`] |
//! | Typed `tdata1` layouts (`mcontrol`, `mcontrol6`) | [`tdata`] |
//! | Run-time trigger discovery (`tselect` walk, `tinfo`, WARL probing) | [`discover`] |
//! | Validation, encoding, region policy, privilege mapping ([`Encoder`], pure) | [`encode`] |
//! | Load/store/AMO/compressed decoding, next-PC computation | [`insn`] |
//! | The [`hwbp_core::Arch`] implementation ([`RiscvBackend`]), its per-hart state ([`RiscvCpuState`]) and the step-over | [`backend`] |
//! | What the trap handler hands in ([`RiscvException`]) | [`exception`] |
//! | Software model of the trigger module (feature `model`) | `model` |
//!
//! RISC-V triggers fire *before* the instruction or access, with
//! `mcause` = 3 and, on some harts (QEMU), `mtval` = 0: the backend finds
//! the trigger from hit bits where the hardware has them, else from `mepc`
//! and the decoded instruction, and steps over the hit by reprogramming the
//! trigger that fired as an execute trigger on the next instruction (see
//! [`backend`]).
//!
//! # Entry points for M-mode firmware
//!
//! ```no_run
//! use hwbp_core::{Manager, Resume};
//! use hwbp_riscv::{Machine, Privilege, RiscvBackend, RiscvException, RV64_KERNEL_BASE};
//!
//! // One hart, 8 events, 2 tasks. SAFETY: M-mode, nothing else touches the
//! // trigger CSRs or mtvec.
//! static HWBP: Manager<RiscvBackend<Machine>, (), 1, 8, 2> =
//!     Manager::new(RiscvBackend::new(unsafe { Machine::new() }, RV64_KERNEL_BASE), ());
//!
//! fn boot() -> Result<(), hwbp_core::Error> {
//!     HWBP.init(1)?; // discovery: tselect walk, tinfo, WARL probing
//!     HWBP.cpu_online(0) // every trigger disabled
//! }
//!
//! // From the trap handler when mcause == 3: `insn` is the instruction at
//! // mepc (its first halfword in the low bits; both for a 32-bit one), `x`
//! // the saved registers, `mpp` mstatus.MPP. Returns whether the exception
//! // is someone else's (an `ebreak`).
//! fn on_breakpoint(mepc: u64, mtval: u64, mpp: u64, insn: u32, x: [u64; 32]) -> bool {
//!     let raw = RiscvException { mcause: 3, mepc, mtval, prev: Privilege::from_mpp(mpp), insn, x };
//!     // Every outcome of ours is Resume::RETURN: mret to mepc.
//!     !HWBP.handle_exception(0, &raw).is_ours()
//! }
//!
//! // After an mret/sret hit (no step trigger could be armed), once the
//! // firmware is past it: re-arm the triggers the step-over disabled.
//! fn after_xret() -> Result<bool, hwbp_core::Error> {
//!     Ok(HWBP.arch().complete_step(HWBP.backend_cpu(0)?))
//! }
//! # boot().ok(); on_breakpoint(0, 0, 3, 0, [0; 32]); after_xret().ok();
//! ```
//!
//! The step-over state lives per hart in a [`RiscvCpuState`], which the
//! manager keeps (one per CPU, `CPUS` written once, in the manager's type)
//! and hands out with `Manager::backend_cpu`.
//!
//! # Host use
//!
//! [`Encoder`] validates and encodes without hardware, and
//! `RiscvBackend<model::Model>` (feature `model`) runs the whole backend
//! against the software model.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod csr;
pub mod discover;
pub mod encode;
pub mod exception;
pub mod insn;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod tdata;

pub use backend::{RiscvBackend, RiscvCpuState};
pub use csr::{Machine, TriggerCsrs};
pub use discover::{TriggerInfo, Triggers};
pub use encode::{Encoder, RiscvSlot, RV32_KERNEL_BASE, RV64_KERNEL_BASE};
pub use exception::RiscvException;
pub use tdata::{MatchType, Modes, Privilege, Xlen};
