//! [`ShException`]: what the embedder's exception handler hands to the
//! backend.

use crate::variant::USER_BREAK_EXPEVT;

/// The state the embedder's exception handler passes to
/// [`hwbp_core::Arch::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShException {
    /// EXPEVT at entry (the user break is `0x1E0`; anything else is not ours).
    pub expevt: u32,
    /// SPC at entry: the instruction for a before-execution break, the next
    /// instruction otherwise.
    pub spc: u32,
    /// The operand address, if the embedder decoded it from the instruction.
    pub data_addr: Option<u32>,
}

impl ShException {
    /// A user break exception with SPC `spc`.
    pub const fn user_break(spc: u32) -> Self {
        ShException {
            expevt: USER_BREAK_EXPEVT,
            spc,
            data_addr: None,
        }
    }

    /// Whether EXPEVT says this is a user break.
    pub const fn is_user_break(&self) -> bool {
        self.expevt == USER_BREAK_EXPEVT
    }
}
