//! The user break exception: what the trap handler hands in, and how match
//! flags become the channels that fired.
//!
//! The UBC does not report the data address of an operand break, only that a
//! channel's condition matched (CCMFR.MFn on SH-4A, BRCR.CMFA/CMFB on SH-4)
//! and the PC saved in SPC. An embedder that decodes the instruction at SPC
//! can pass the data address in [`ShException::data_addr`](crate::ShException::data_addr).

use crate::slot::UbcSlot;
use crate::{sh4, sh4a};
use hwbp_core::{Access, Fired, Pool};

/// Channels flagged in an SH-4A CCMFR value.
pub const fn sh4a_flags(ccmfr: u32) -> u32 {
    ccmfr
}

/// The CCMFR value that clears the flags in `mask`: the value read with those
/// bits cleared, as Linux's `sh4a_ubc_clear_triggered_mask` does (the
/// reserved bits read as 0 and must be written as 0; a flag is cleared by a
/// written 0). No flag can be set between the read and the write because
/// every channel is disabled while the flags are handled.
pub const fn sh4a_clear(ccmfr: u32, mask: u32) -> u32 {
    ccmfr & !mask
}

/// Channels flagged in an SH-4 BRCR value (bit 0 = A, bit 1 = B).
pub const fn sh4_flags(brcr: u16) -> u32 {
    let b = sh4::Brcr::from_bits_retain(brcr);
    (b.contains(sh4::Brcr::CMFA) as u32) | ((b.contains(sh4::Brcr::CMFB) as u32) << 1)
}

/// The BRCR value that clears the flags in `mask` and writes every other bit
/// back as read (Linux's `sh4_ubc_clear_triggered_mask`).
pub const fn sh4_clear(brcr: u16, mask: u32) -> u16 {
    let mut v = brcr;
    if mask & 1 != 0 {
        v &= !sh4::Brcr::CMFA.bits();
    }
    if mask & 2 != 0 {
        v &= !sh4::Brcr::CMFB.bits();
    }
    v
}

/// The channels that really fired: flagged, existing and enabled at the
/// time. Flags of disabled or missing channels are stale or stray.
pub const fn fired_mask(flags: u32, enabled: u32, channel_mask: u32) -> u32 {
    flags & enabled & channel_mask
}

/// Report a fired mask the way the core expects: the shared pool 0.
pub const fn fired(mask: u32) -> Fired {
    if mask == 0 {
        Fired::None
    } else {
        Fired::Slots {
            pool: Pool(0),
            mask,
        }
    }
}

/// The access kind to report: the kind of the fired channels when they agree,
/// empty when unknown.
pub fn reported_access(slots: impl Iterator<Item = UbcSlot>) -> Access {
    let mut acc: Option<Access> = None;
    for s in slots {
        let a = s.access();
        acc = match acc {
            None => Some(a),
            Some(prev) if prev == a => Some(a),
            Some(_) => return Access::empty(),
        };
    }
    acc.unwrap_or(Access::empty())
}

/// Whether a CBR value has its channel enabled (SH-4A).
pub const fn sh4a_enabled(cbr: u32) -> bool {
    sh4a::Cbr(cbr).enabled()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_clearing() {
        assert_eq!(sh4_flags(0x8000), 1);
        assert_eq!(sh4_flags(0x4000), 2);
        assert_eq!(sh4_flags(0xC400), 3);
        assert_eq!(sh4_flags(0x0440), 0);
        // Clearing A keeps B and the PCB bits as read.
        let v = sh4_clear(0xC440, 1);
        assert_eq!(v, 0x4440);
        assert_eq!(sh4_clear(0x0440, 3), 0x0440);
        assert_eq!(sh4a_clear(0b11, 0b10), 0b01);
        assert_eq!(sh4a_clear(0b01, 0b01), 0);
        assert_eq!(fired_mask(0b111, 0b011, 0b011), 0b011);
        assert_eq!(fired_mask(0b100, 0b111, 0b011), 0);
        assert_eq!(fired(0), Fired::None);
        assert_eq!(
            fired(2),
            Fired::Slots {
                pool: Pool(0),
                mask: 2
            }
        );
    }
}
