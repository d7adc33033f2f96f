//! What the embedder's trap handler hands to the backend
//! ([`hwbp_core::Arch::Exception`]): [`RiscvException`].

use crate::tdata::Privilege;

/// `mcause` of a breakpoint exception (triggers with `action` 0 and
/// `ebreak`).
pub const MCAUSE_BREAKPOINT: u64 = 3;

/// The state of a breakpoint exception (`mcause` = 3) the trap handler
/// hands to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RiscvException {
    /// `mcause` ([`MCAUSE_BREAKPOINT`] for a breakpoint; anything else is
    /// not ours).
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
