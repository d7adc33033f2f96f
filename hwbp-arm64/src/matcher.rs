//! Which watchpoint fired, when the hardware does not say.
//!
//! Arm does not always report the watchpoint number (`ESR_ELx.WPTV` may be 0
//! from FEAT_Debugv8p2 until FEAT_Debugv8p9 makes it 1; before v8.2 there is
//! no such field), nor a precise address: `FAR` may be any address the instruction accessed (a
//! `STP` of 16 bytes, `DC ZVA` of a whole block). Linux's
//! `arch/arm64/kernel/hw_breakpoint.c` therefore takes every enabled
//! watchpoint of the right access kind, reports those whose range contains the
//! address, and if there is none, the one closest to it.
//!
//! This module is that rule as a pure function for tests and for embedders
//! without hwbp-core. **hwbp-core implements the same rule** for
//! [`Fired::ByAddress`](hwbp_core::Fired::ByAddress), refined with the
//! hardware ranges of split and masked regions: a hit inside a piece's
//! hardware range but outside the user's region is filtered as stray instead
//! of being attributed by distance.

use hwbp_core::Access;

/// One occupied watchpoint (or breakpoint) slot as the matcher sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Candidate {
    /// Slot number.
    pub slot: u8,
    /// The user's region: first byte and length.
    pub region: (u64, u64),
    /// The bytes the hardware matches for this slot: first byte and length.
    pub hw: (u64, u64),
    /// Access kinds the slot triggers on.
    pub access: Access,
}

/// The outcome of matching one exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Match {
    /// These slots' regions contain the address (bit `n` = slot `n`).
    Exact(u32),
    /// No region contains the address; this slot is the closest one.
    Closest(u8),
    /// Nothing to report: the address is inside a slot's hardware range but
    /// outside the user's region (BAS/MASK over-coverage), or no slot of the
    /// access kind is enabled. Count it as stray.
    Stray,
}

fn contains((start, len): (u64, u64), addr: u64) -> bool {
    addr >= start && addr - start < len
}

fn distance((start, len): (u64, u64), addr: u64) -> u64 {
    let last = start.saturating_add(len.saturating_sub(1));
    if addr < start {
        start - addr
    } else {
        addr.saturating_sub(last)
    }
}

/// Match a reported address against the candidates.
///
/// `access` is what the exception reports (`READ` or `WRITE`; empty when
/// unknown, which disables the access-kind filter). Ties in distance go to the
/// lowest slot.
pub fn match_address(candidates: &[Candidate], addr: u64, access: Access) -> Match {
    let kind_ok = |c: &&Candidate| access.is_empty() || c.access.intersects(access);
    let mut exact = 0u32;
    let mut in_hw = false;
    let mut best: Option<(u64, u8)> = None;
    for c in candidates.iter().filter(kind_ok) {
        if contains(c.region, addr) {
            exact |= 1u32.checked_shl(u32::from(c.slot)).unwrap_or(0);
        } else if contains(c.hw, addr) {
            in_hw = true;
        }
        let d = distance(c.region, addr);
        let better = match best {
            None => true,
            Some((bd, bs)) => d < bd || (d == bd && c.slot < bs),
        };
        if better {
            best = Some((d, c.slot));
        }
    }
    if exact != 0 {
        Match::Exact(exact)
    } else if in_hw {
        Match::Stray
    } else {
        best.map_or(Match::Stray, |(_, s)| Match::Closest(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wp(slot: u8, start: u64, len: u64, access: Access) -> Candidate {
        Candidate {
            slot,
            region: (start, len),
            hw: (start, len),
            access,
        }
    }

    #[test]
    fn exact_before_closest() {
        let c = [
            wp(0, 0x1000, 8, Access::RW),
            wp(1, 0x1004, 4, Access::RW),
            wp(2, 0x2000, 4, Access::RW),
        ];
        assert_eq!(
            match_address(&c, 0x1005, Access::WRITE),
            Match::Exact(0b011)
        );
        assert_eq!(match_address(&c, 0x2003, Access::READ), Match::Exact(0b100));
    }

    #[test]
    fn imprecise_far_goes_to_the_closest() {
        // An STP of 16 bytes at 0x0ff0 touches 0x1000 but reports FAR = 0x0ff0.
        let c = [
            wp(0, 0x1000, 4, Access::WRITE),
            wp(1, 0x3000, 4, Access::WRITE),
        ];
        assert_eq!(match_address(&c, 0x0ff0, Access::WRITE), Match::Closest(0));
        // DC ZVA of a 64-byte block reports its start.
        assert_eq!(match_address(&c, 0x2fc0, Access::WRITE), Match::Closest(1));
        // Tie: lowest slot.
        let t = [
            wp(3, 0x1000, 4, Access::WRITE),
            wp(1, 0x1007, 4, Access::WRITE),
        ];
        assert_eq!(match_address(&t, 0x1005, Access::WRITE), Match::Closest(1));
    }

    #[test]
    fn access_kind_filters() {
        let c = [
            wp(0, 0x1000, 4, Access::READ),
            wp(1, 0x1000, 4, Access::WRITE),
        ];
        assert_eq!(match_address(&c, 0x1000, Access::READ), Match::Exact(0b01));
        assert_eq!(match_address(&c, 0x1000, Access::WRITE), Match::Exact(0b10));
        assert_eq!(
            match_address(&c, 0x1000, Access::empty()),
            Match::Exact(0b11)
        );
        let r = [wp(0, 0x1000, 4, Access::READ)];
        assert_eq!(match_address(&r, 0x1000, Access::WRITE), Match::Stray);
        assert_eq!(match_address(&[], 0x1000, Access::WRITE), Match::Stray);
    }

    #[test]
    fn over_coverage_is_stray() {
        // A 3-byte region at 0x1001 covered by a masked 16-byte block would
        // never be built by the encoder, but a caller-built MASK region shows
        // the rule: a hit inside the hardware range, outside the region.
        let c = [Candidate {
            slot: 0,
            region: (0x1001, 3),
            hw: (0x1000, 16),
            access: Access::RW,
        }];
        assert_eq!(match_address(&c, 0x100c, Access::READ), Match::Stray);
        assert_eq!(match_address(&c, 0x1002, Access::READ), Match::Exact(1));
        assert_eq!(match_address(&c, 0x2000, Access::READ), Match::Closest(0));
    }
}
