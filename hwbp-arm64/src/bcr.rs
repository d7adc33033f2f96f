//! `DBGBCR<n>` — breakpoint control register (AArch64 `DBGBCR<n>_EL1`, AArch32
//! `DBGBCR<n>`; same layout for the fields used here, Arm ARM DDI 0487 register descriptions).
//!
//! ```text
//!  28..24  23..20  19..16  15..14  13   8..5  2..1  0
//!   MASK     BT     LBN     SSC    HMC   BAS   PMC   E
//! ```
//! `MASK` exists only in AArch32 (v7) and is left zero.

use crate::ctrl::CTRL_E;

/// Which privilege levels a breakpoint or watchpoint fires in (`PMC`/`PAC`
/// with `HMC` = 0 and `SSC` = 0b00: EL1/PL1 and EL0/PL0 only, never EL2/EL3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Privilege {
    /// `0b00`: reserved; never matches in this crate's model.
    Reserved,
    /// `0b01`: EL1 (kernel) only.
    Kernel,
    /// `0b10`: EL0 (user) only.
    User,
    /// `0b11`: EL0 and EL1.
    Both,
}

impl Privilege {
    /// Decode the 2-bit field.
    pub const fn from_bits(v: u32) -> Self {
        match v & 3 {
            0 => Privilege::Reserved,
            1 => Privilege::Kernel,
            2 => Privilege::User,
            _ => Privilege::Both,
        }
    }

    /// Encode into the 2-bit field.
    pub const fn bits(self) -> u32 {
        match self {
            Privilege::Reserved => 0,
            Privilege::Kernel => 1,
            Privilege::User => 2,
            Privilege::Both => 3,
        }
    }

    /// From the generic exclusion flags (both set is refused by the core before
    /// it gets here; it maps to `Reserved`).
    pub const fn from_excludes(exclude_user: bool, exclude_kernel: bool) -> Self {
        match (exclude_user, exclude_kernel) {
            (false, false) => Privilege::Both,
            (true, false) => Privilege::Kernel,
            (false, true) => Privilege::User,
            (true, true) => Privilege::Reserved,
        }
    }

    /// Whether the field allows a match at this exception level, with
    /// `HMC` = 0 (never EL2).
    pub const fn matches(self, el: El) -> bool {
        matches!(
            (self, el),
            (Privilege::Both, El::El0 | El::El1)
                | (Privilege::Kernel, El::El1)
                | (Privilege::User, El::El0)
        )
    }
}

/// The exception level (privilege level) of an access or fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum El {
    /// EL0 / PL0 (user).
    El0,
    /// EL1 / PL1 (kernel).
    El1,
    /// EL2 (hypervisor): `PMC`/`PAC` alone never select it, only `HMC`
    /// does ([`crate::el2::fires_at`]).
    El2,
}

/// Breakpoint type (`BT`, bits \[23:20\]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakpointType {
    /// `0b0000`: unlinked instruction address match.
    AddressMatch,
    /// `0b0100`: unlinked instruction address mismatch (AArch32 only; used for
    /// single-stepping on Armv7, not implemented by QEMU 7.2).
    AddressMismatch,
    /// Any other type (context, VMID, linked…): never written by this crate.
    Other(u8),
}

impl BreakpointType {
    /// Decode the 4-bit field.
    pub const fn from_bits(v: u32) -> Self {
        match v & 0xF {
            0 => BreakpointType::AddressMatch,
            4 => BreakpointType::AddressMismatch,
            other => BreakpointType::Other(other as u8),
        }
    }

    /// Encode into the 4-bit field.
    pub const fn bits(self) -> u32 {
        match self {
            BreakpointType::AddressMatch => 0,
            BreakpointType::AddressMismatch => 4,
            BreakpointType::Other(v) => (v & 0xF) as u32,
        }
    }
}

/// A typed breakpoint control register value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Bcr(pub u32);

ctrl_fields!(Bcr);

impl Bcr {
    /// An enabled unlinked address-match breakpoint with the given byte
    /// selection (`BAS`, 4 bits) and privilege filter; `HMC`, `SSC` and `LBN`
    /// are zero.
    pub const fn address_match(bas: u8, pmc: Privilege) -> Self {
        Bcr(CTRL_E | ((bas as u32 & 0xF) << 5) | (pmc.bits() << 1))
    }

    /// Privilege filter (`PMC`).
    pub const fn pmc(self) -> Privilege {
        Privilege::from_bits(self.0 >> 1)
    }

    /// Byte address select (`BAS`, 4 bits: halfwords of the word at `BVR`).
    pub const fn bas(self) -> u8 {
        ((self.0 >> 5) & 0xF) as u8
    }

    /// Breakpoint type (`BT`).
    pub const fn bt(self) -> BreakpointType {
        BreakpointType::from_bits(self.0 >> 20)
    }

    /// The same value with another breakpoint type.
    #[must_use]
    pub const fn with_bt(self, bt: BreakpointType) -> Self {
        Bcr((self.0 & !(0xF << 20)) | (bt.bits() << 20))
    }

    /// AArch32 address range mask (`MASK`, bits \[28:24\]).
    pub const fn mask(self) -> u8 {
        ((self.0 >> 24) & 0x1F) as u8
    }
}

/// Whether a control value has HMC (13) and SSC (15:14) clear: the plain,
/// non-secure-state-filtered form this crate writes.
pub(crate) fn plain_unlinked(ctrl: u32) -> bool {
    ctrl & (0b111 << 13) == 0
}

/// Whether an address-match breakpoint on `bvr` with byte select `bas`
/// matches the instruction at `pc` (A32/T32 halfwords; A64 uses the first).
fn address_match(bvr: u64, bas: u8, pc: u64) -> bool {
    if bvr & !3 != pc & !3 {
        return false;
    }
    let half = if pc & 2 == 0 { 0b0011 } else { 0b1100 };
    bas & half != 0
}

impl Bcr {
    /// Whether this breakpoint, programmed with value `bvr`, matches an
    /// instruction fetched at `pc` at some exception level: enabled, plain
    /// and unlinked, and an address match on `pc` (or, for a mismatch
    /// breakpoint, not on it). The privilege filter (`PMC`) is not applied.
    /// The backend uses it to tell whether a breakpoint debug event it was
    /// not told about (an unconfirmed one) can be its own.
    pub fn matches_pc(self, bvr: u64, pc: u64) -> bool {
        if !self.enabled() || !plain_unlinked(self.0) {
            return false;
        }
        match self.bt() {
            BreakpointType::AddressMatch => address_match(bvr, self.bas(), pc),
            BreakpointType::AddressMismatch => !address_match(bvr, self.bas(), pc),
            BreakpointType::Other(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        for pmc in [Privilege::Kernel, Privilege::User, Privilege::Both] {
            for bas in [0b0011u8, 0b1100, 0b1111] {
                let b = Bcr::address_match(bas, pmc);
                assert!(b.enabled());
                assert_eq!(b.pmc(), pmc);
                assert_eq!(b.bas(), bas);
                assert_eq!(b.bt(), BreakpointType::AddressMatch);
                assert!(!b.hmc());
                assert_eq!((b.ssc(), b.lbn(), b.mask()), (0, 0, 0));
                assert!(!b.with_enabled(false).enabled());
                assert_eq!(b.with_enabled(false).with_enabled(true), b);
                let m = b.with_bt(BreakpointType::AddressMismatch);
                assert_eq!(m.bt(), BreakpointType::AddressMismatch);
                assert_eq!((m.bas(), m.pmc()), (bas, pmc));
            }
        }
    }

    #[test]
    fn privilege_semantics() {
        assert!(Privilege::from_excludes(false, false).matches(El::El0));
        assert!(Privilege::from_excludes(false, false).matches(El::El1));
        assert!(!Privilege::from_excludes(false, true).matches(El::El1));
        assert!(Privilege::from_excludes(false, true).matches(El::El0));
        assert!(!Privilege::from_excludes(true, false).matches(El::El0));
        assert!(Privilege::from_excludes(true, false).matches(El::El1));
        assert!(!Privilege::Reserved.matches(El::El0) && !Privilege::Reserved.matches(El::El1));
    }
}
