//! Human-readable register dumps: `Display` for [`Bcr`], [`Wcr`] and
//! [`ArmSlot`] (and the field types), every field decoded, addresses in hex.
//!
//! An [`ArmSlot`] does not record which bank it belongs to (its pool in the
//! image does: breakpoints are pool 0, watchpoints pool 1). Its `Display`
//! decodes the control word as a `DBGWCR` when `LSC` (bits 4:3) is non-zero,
//! which only a watchpoint has (those bits are RES0 in `DBGBCR`), and as a
//! `DBGBCR` otherwise; [`ArmSlot::display`] takes the bank explicitly.
//!
//! ```
//! use hwbp_arm64::encode::ArmSlot;
//! use hwbp_arm64::Bank;
//!
//! // What `image(cpu)` used to show as `ArmSlot { value: 4194304, ctrl: 487 }`.
//! let bp = ArmSlot { value: 0x40_0000, ctrl: 0x1e7 };
//! assert_eq!(
//!     bp.to_string(),
//!     "BVR=0x400000 BCR=0x1e7: E=1 PMC=el0+el1 BAS=0b1111 HMC=0 SSC=0b00 LBN=0 BT=address-match MASK=0"
//! );
//! let wp = ArmSlot { value: 0x8_1000, ctrl: 0x1ff5 };
//! assert_eq!(
//!     wp.display(Bank::Watchpoint).to_string(),
//!     "WVR=0x81000 WCR=0x1ff5: E=1 PAC=el0 LSC=store BAS=0b11111111 HMC=0 SSC=0b00 LBN=0 WT=unlinked MASK=0"
//! );
//! ```

use core::fmt;

use crate::backend::Bank;
use crate::bcr::{Bcr, BreakpointType, Privilege};
use crate::encode::ArmSlot;
use crate::wcr::{LoadStore, Wcr};

/// `reserved`, `el1`, `el0` or `el0+el1`.
impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Privilege::Reserved => "reserved",
            Privilege::Kernel => "el1",
            Privilege::User => "el0",
            Privilege::Both => "el0+el1",
        })
    }
}

/// `reserved`, `load`, `store` or `load+store`.
impl fmt::Display for LoadStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoadStore::Reserved => "reserved",
            LoadStore::Load => "load",
            LoadStore::Store => "store",
            LoadStore::Both => "load+store",
        })
    }
}

/// `address-match`, `address-mismatch` or `0bNNNN` for the other types.
impl fmt::Display for BreakpointType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakpointType::AddressMatch => f.write_str("address-match"),
            BreakpointType::AddressMismatch => f.write_str("address-mismatch"),
            BreakpointType::Other(v) => write!(f, "{v:#06b}"),
        }
    }
}

/// Bits of `DBGBCR` outside its fields (RES0).
const BCR_RES0: u32 = !0x1fff_e1e7;
/// Bits of `DBGWCR` outside its fields (RES0).
const WCR_RES0: u32 = !0x1f1f_ffff;

/// Every field; set RES0 bits, if any, at the end.
impl fmt::Display for Bcr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "E={} PMC={} BAS={:#06b} HMC={} SSC={:#04b} LBN={} BT={} MASK={}",
            u8::from(self.enabled()),
            self.pmc(),
            self.bas(),
            u8::from(self.hmc()),
            self.ssc(),
            self.lbn(),
            self.bt(),
            self.mask()
        )?;
        res0(f, self.0 & BCR_RES0)
    }
}

/// Every field; set RES0 bits, if any, at the end.
impl fmt::Display for Wcr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "E={} PAC={} LSC={} BAS={:#010b} HMC={} SSC={:#04b} LBN={} WT={} MASK={}",
            u8::from(self.enabled()),
            self.pac(),
            self.lsc(),
            self.bas(),
            u8::from(self.hmc()),
            self.ssc(),
            self.lbn(),
            if self.linked() { "linked" } else { "unlinked" },
            self.mask()
        )?;
        res0(f, self.0 & WCR_RES0)
    }
}

fn res0(f: &mut fmt::Formatter<'_>, bits: u32) -> fmt::Result {
    if bits != 0 {
        write!(f, " RES0={bits:#x}")?;
    }
    Ok(())
}

/// An [`ArmSlot`] shown as a register of a known bank
/// ([`ArmSlot::display`]).
#[derive(Clone, Copy, Debug)]
pub struct SlotDisplay {
    slot: ArmSlot,
    bank: Bank,
}

impl fmt::Display for SlotDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ArmSlot { value, ctrl } = self.slot;
        match self.bank {
            Bank::Breakpoint => write!(f, "BVR={value:#x} BCR={ctrl:#x}: {}", Bcr(ctrl)),
            Bank::Watchpoint => write!(f, "WVR={value:#x} WCR={ctrl:#x}: {}", Wcr(ctrl)),
        }
    }
}

impl ArmSlot {
    /// The slot shown as a register pair of `bank`: the value register in
    /// hex, the control register in hex and decoded field by field.
    pub const fn display(self, bank: Bank) -> SlotDisplay {
        SlotDisplay { slot: self, bank }
    }

    /// The bank the control word belongs to, as far as it tells: a
    /// watchpoint when `LSC` is non-zero (RES0 in `DBGBCR`).
    const fn likely_bank(self) -> Bank {
        if matches!(Wcr(self.ctrl).lsc(), LoadStore::Reserved) {
            Bank::Breakpoint
        } else {
            Bank::Watchpoint
        }
    }
}

/// As [`ArmSlot::display`], with the bank inferred from the control word: a
/// `DBGWCR` when `LSC` (bits 4:3) is non-zero, which only a watchpoint has
/// (those bits are RES0 in `DBGBCR`), else a `DBGBCR`.
impl fmt::Display for ArmSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display(self.likely_bank()).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hwbp_core::{Image, SlotCounts};

    #[test]
    fn breakpoint_fields_decoded() {
        // AArch32 mismatch breakpoint at PL0, linked to nothing, HMC and SSC
        // set, a MASK, and a stray RES0 bit.
        let ctrl = 1
            | (2 << 1)
            | (0b0011 << 5)
            | (1 << 13)
            | (0b10 << 14)
            | (3 << 16)
            | (4 << 20)
            | (5 << 24)
            | (1 << 30);
        let b = Bcr(ctrl);
        assert_eq!(
            b.to_string(),
            "E=1 PMC=el0 BAS=0b0011 HMC=1 SSC=0b10 LBN=3 BT=address-mismatch MASK=5 RES0=0x40000000"
        );
        assert_eq!(
            Bcr(0x9 << 20).to_string(),
            "E=0 PMC=reserved BAS=0b0000 HMC=0 SSC=0b00 LBN=0 BT=0b1001 MASK=0"
        );
    }

    #[test]
    fn watchpoint_fields_decoded() {
        let w = Wcr::new(0b0011_0000, 0, LoadStore::Both, Privilege::Kernel);
        assert_eq!(
            w.to_string(),
            "E=1 PAC=el1 LSC=load+store BAS=0b00110000 HMC=0 SSC=0b00 LBN=0 WT=unlinked MASK=0"
        );
        let masked = Wcr::new(0xff, 12, LoadStore::Load, Privilege::Both).with_enabled(false);
        assert_eq!(
            Wcr(masked.0 | 1 << 20).to_string(),
            "E=0 PAC=el0+el1 LSC=load BAS=0b11111111 HMC=0 SSC=0b00 LBN=0 WT=linked MASK=12"
        );
    }

    #[test]
    fn slot_bank_is_inferred_or_given() {
        let wp = ArmSlot {
            value: 0xffff_0000_1234_5000,
            ctrl: Wcr::new(0x0f, 0, LoadStore::Store, Privilege::Both).0,
        };
        assert!(wp
            .to_string()
            .starts_with("WVR=0xffff000012345000 WCR=0x1f7: E=1 PAC=el0+el1 LSC=store"));
        let off = ArmSlot::default();
        assert_eq!(
            off.to_string(),
            "BVR=0x0 BCR=0x0: E=0 PMC=reserved BAS=0b0000 HMC=0 SSC=0b00 LBN=0 BT=address-match MASK=0"
        );
        assert!(off
            .display(Bank::Watchpoint)
            .to_string()
            .starts_with("WVR=0x0 WCR=0x0: E=0 PAC=reserved LSC=reserved"));
    }

    #[test]
    fn core_image_lists_both_pools() {
        let mut image = Image::<ArmSlot>::empty(SlotCounts::Separate { inst: 1, data: 1 });
        image.pools[0][0] = ArmSlot {
            value: 0x40_0000,
            ctrl: Bcr::address_match(0xf, Privilege::Both).0,
        };
        image.pools[1][0] = ArmSlot {
            value: 0x8_0000,
            ctrl: Wcr::new(0xf0, 0, LoadStore::Load, Privilege::User).0,
        };
        assert_eq!(
            image.to_string(),
            "pool 0 slot 0: BVR=0x400000 BCR=0x1e7: E=1 PMC=el0+el1 BAS=0b1111 HMC=0 SSC=0b00 LBN=0 BT=address-match MASK=0\n\
             pool 1 slot 0: WVR=0x80000 WCR=0x1e0d: E=1 PAC=el0 LSC=load BAS=0b11110000 HMC=0 SSC=0b00 LBN=0 WT=unlinked MASK=0"
        );
    }
}
