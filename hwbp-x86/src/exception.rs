//! [`X86Exception`]: what the embedder's #DB handler hands to the backend.

/// What the embedder's #DB handler hands to
/// [`Manager::handle_exception`](hwbp_core::Manager::handle_exception) (and so to
/// [`Arch::decode`](hwbp_core::Arch::decode)).
///
/// Read DR6 first thing in the handler (before anything can take another #DB)
/// — with [`X86Backend::read_dr6`](crate::X86Backend::read_dr6) or directly —
/// and pass it here with the saved instruction pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct X86Exception {
    /// DR6 as read from the hardware (raw, active-low bits not yet flipped).
    pub dr6: u64,
    /// The saved RIP/EIP: for an instruction breakpoint (a fault) the address of
    /// the instruction that did not run yet; for a data breakpoint (a trap) the
    /// instruction after the one that accessed the data.
    pub ip: u64,
}
