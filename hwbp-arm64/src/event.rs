//! What a debug exception means, independent of how it was reported.

/// A debug exception, classified from the raw syndrome registers by
/// [`Aarch64Exception::event`](crate::Aarch64Exception::event) or
/// [`Aarch32Exception::event`](crate::Aarch32Exception::event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DebugEvent {
    /// A hardware breakpoint matched the instruction at `pc` (not executed yet).
    Breakpoint {
        /// Address of the instruction.
        pc: u64,
        /// The syndrome identified the event only by its abort kind (AArch32
        /// with no `DBGDSCR.MOE`): the backend confirms it against the
        /// enabled breakpoint registers before claiming it.
        unconfirmed: bool,
    },
    /// A watchpoint matched a data access of the instruction at `pc` (the
    /// access did not happen yet).
    Watchpoint {
        /// The reported data address: any address the instruction accessed
        /// (Arm ARM: imprecise for multi-register and cache
        /// maintenance instructions), not necessarily inside the watched
        /// region. `None` when the syndrome says it is not valid
        /// (`ESR_ELx.FnV`).
        addr: Option<u64>,
        /// Address of the instruction.
        pc: u64,
        /// `Some(true)` for a store, `Some(false)` for a load (AArch64
        /// `ESR_ELx.WnR`); `None` when the syndrome does not say (AArch32,
        /// see [`Aarch32Exception::write`](crate::Aarch32Exception::write)).
        write: Option<bool>,
        /// The watchpoint number, when the hardware reports it
        /// (`ESR_ELx.WPTV`/`WPT`: from FEAT_Debugv8p2, always with
        /// FEAT_Debugv8p9); `None` otherwise.
        slot: Option<u8>,
    },
    /// A software step completed (`MDSCR_EL1.SS`), or on AArch32 the
    /// mismatch breakpoint used for stepping fired.
    Step {
        /// Address of the next instruction.
        pc: u64,
        /// Whether an instruction was stepped. `false` when the syndrome
        /// says none was (AArch64 `ESR_ELx.ISV` clear: the step exception
        /// was taken from the active-pending state, at the start of an
        /// exception handler that unmasked debug exceptions while a step
        /// was armed); always `true` for the AArch32 mismatch step.
        stepped: bool,
    },
    /// A software breakpoint instruction (`BRK`, `BKPT`): never the breakpoint
    /// layer's.
    SoftwareBreakpoint {
        /// Address of the instruction.
        pc: u64,
        /// The immediate of the instruction, when reported.
        comment: u16,
    },
    /// Any other exception (not a debug event).
    Other,
}
