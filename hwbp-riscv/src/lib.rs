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
//! | The [`hwbp_core::Arch`] implementation and the step-over | [`backend`] |
//! | Software model of the trigger module | [`model`] |
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
//! use hwbp_core::{Hwbp, Resume};
//! use hwbp_riscv::{csr::Machine, Privilege, Riscv, RiscvException, RV64_KERNEL_BASE};
//!
//! // One hart, 8 events, 2 tasks. SAFETY: M-mode, nothing else touches the
//! // trigger CSRs or mtvec.
//! static HWBP: Hwbp<Riscv<Machine, 1>, (), 1, 8, 2> =
//!     Hwbp::new(Riscv::new(unsafe { Machine::new() }, RV64_KERNEL_BASE), ());
//!
//! fn boot() -> Result<(), hwbp_core::Error> {
//!     HWBP.arch().probe()?; // tselect walk, tinfo, WARL probing
//!     HWBP.init(1)?;
//!     HWBP.cpu_online(0) // every trigger disabled
//! }
//!
//! // From the trap handler when mcause == 3: `insn` is the instruction at
//! // mepc (its first halfword in the low bits; both for a 32-bit one), `x`
//! // the saved registers, `mpp` mstatus.MPP. Returns whether the exception
//! // is someone else's (an `ebreak`).
//! fn on_breakpoint(mepc: u64, mtval: u64, mpp: u64, insn: u32, x: [u64; 32]) -> bool {
//!     let raw = RiscvException { mcause: 3, mepc, mtval, prev: Privilege::from_mpp(mpp), insn, x };
//!     // Every outcome of ours is Resume::Return: mret to mepc.
//!     HWBP.handle_exception(0, &raw) == Resume::NotOurs
//! }
//! # boot().ok(); on_breakpoint(0, 0, 3, 0, [0; 32]);
//! ```
//!
//! # Host use
//!
//! [`Encoder`] validates and encodes without hardware, and
//! [`Riscv`]`<`[`model::Model`]`, N>` runs the whole backend against the
//! software model.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod csr;
pub mod discover;
pub mod encode;
pub mod insn;
pub mod model;
pub mod tdata;

pub use backend::Riscv;
pub use csr::{Machine, TriggerCsrs};
pub use discover::{TriggerInfo, Triggers};
pub use encode::{Encoder, RiscvSlot, RV32_KERNEL_BASE, RV64_KERNEL_BASE};
pub use tdata::{MatchType, Modes, Privilege, Xlen};

/// The state of a breakpoint exception (`mcause` = 3) the trap handler
/// hands to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RiscvException {
    /// `mcause` (3 for a breakpoint; anything else is not ours).
    pub mcause: u64,
    /// `mepc`: the instruction the trigger fired before.
    pub mepc: u64,
    /// `mtval`: the address, where the hart reports it (0 allowed).
    pub mtval: u64,
    /// The mode the exception was taken from (`mstatus.MPP`).
    pub prev: Privilege,
    /// The instruction at `mepc`: its first 16-bit parcel in bits 15:0 and,
    /// for a 32-bit instruction, the second in bits 31:16.
    pub insn: u32,
    /// `x0`–`x31` as they were at the exception (`x[0]` is ignored).
    pub x: [u64; 32],
}
