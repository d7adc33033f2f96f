//! `DBGWCR<n>` — watchpoint control register (AArch64 `DBGWCR<n>_EL1`, AArch32
//! `DBGWCR<n>`; Arm ARM DDI 0487 register descriptions).
//!
//! ```text
//!  28..24  20  19..16  15..14  13   12..5  4..3  2..1  0
//!   MASK   WT   LBN     SSC    HMC   BAS    LSC   PAC   E
//! ```

use crate::bcr::Privilege;
use crate::ctrl::CTRL_E;

/// Which data accesses a watchpoint fires on (`LSC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LoadStore {
    /// `0b00`: reserved; never matches in this crate's model.
    Reserved,
    /// `0b01`: loads.
    Load,
    /// `0b10`: stores.
    Store,
    /// `0b11`: loads and stores.
    Both,
}

impl LoadStore {
    /// Decode the 2-bit field.
    pub const fn from_bits(v: u32) -> Self {
        match v & 3 {
            0 => LoadStore::Reserved,
            1 => LoadStore::Load,
            2 => LoadStore::Store,
            _ => LoadStore::Both,
        }
    }

    /// Encode into the 2-bit field.
    pub const fn bits(self) -> u32 {
        match self {
            LoadStore::Reserved => 0,
            LoadStore::Load => 1,
            LoadStore::Store => 2,
            LoadStore::Both => 3,
        }
    }

    /// Whether an access (store if `write`) matches the field.
    pub const fn matches(self, write: bool) -> bool {
        matches!(
            (self, write),
            (LoadStore::Both, _) | (LoadStore::Load, false) | (LoadStore::Store, true)
        )
    }
}

/// A typed watchpoint control register value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Wcr(pub u32);

ctrl_fields!(Wcr);

impl Wcr {
    const WT: u32 = 1 << 20;

    /// An enabled unlinked watchpoint: byte selection `bas` (within the
    /// doubleword at `WVR`), `mask` (0, or 3..=31 to ignore that many low
    /// address bits), access kinds and privilege filter.
    pub const fn new(bas: u8, mask: u8, lsc: LoadStore, pac: Privilege) -> Self {
        Wcr(CTRL_E
            | ((mask as u32 & 0x1F) << 24)
            | ((bas as u32) << 5)
            | (lsc.bits() << 3)
            | (pac.bits() << 1))
    }

    /// Privilege filter (`PAC`).
    pub const fn pac(self) -> Privilege {
        Privilege::from_bits(self.0 >> 1)
    }

    /// Load/store control (`LSC`).
    pub const fn lsc(self) -> LoadStore {
        LoadStore::from_bits(self.0 >> 3)
    }

    /// Byte address select (`BAS`, 8 bits).
    pub const fn bas(self) -> u8 {
        ((self.0 >> 5) & 0xFF) as u8
    }

    /// Watchpoint type (`WT`): `true` = linked (never written by this crate).
    pub const fn linked(self) -> bool {
        self.0 & Self::WT != 0
    }

    /// Address mask (`MASK`): number of low address bits ignored (0 = none;
    /// 1 and 2 are reserved).
    pub const fn mask(self) -> u8 {
        ((self.0 >> 24) & 0x1F) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        for lsc in [LoadStore::Load, LoadStore::Store, LoadStore::Both] {
            for pac in [Privilege::Kernel, Privilege::User, Privilege::Both] {
                for (bas, mask) in [(0x01u8, 0u8), (0xF0, 0), (0xFF, 3), (0xFF, 31)] {
                    let w = Wcr::new(bas, mask, lsc, pac);
                    assert!(w.enabled());
                    assert_eq!((w.bas(), w.mask(), w.lsc(), w.pac()), (bas, mask, lsc, pac));
                    assert!(!w.hmc() && !w.linked());
                    assert_eq!((w.ssc(), w.lbn()), (0, 0));
                    assert_eq!(w.with_enabled(false).with_enabled(true), w);
                    assert!(!w.with_enabled(false).enabled());
                }
            }
        }
    }

    #[test]
    fn lsc_semantics() {
        assert!(LoadStore::Load.matches(false) && !LoadStore::Load.matches(true));
        assert!(!LoadStore::Store.matches(false) && LoadStore::Store.matches(true));
        assert!(LoadStore::Both.matches(false) && LoadStore::Both.matches(true));
        assert!(!LoadStore::Reserved.matches(false) && !LoadStore::Reserved.matches(true));
    }
}
