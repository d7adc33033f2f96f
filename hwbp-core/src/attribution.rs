//! Which slot fired, when the hardware reports only an address.
//!
//! Arm reports neither the watchpoint number (before FEAT_Debugv8p9) nor a
//! precise address: `FAR` may be any address the instruction accessed (a
//! `STP` of 16 bytes, `DC ZVA` of a whole block). Linux's
//! `arch/arm64/kernel/hw_breakpoint.c` therefore takes every enabled
//! watchpoint of the right access kind, reports those whose range contains
//! the address, and if there is none, the one closest to it.
//!
//! [`match_address`] is that rule, refined with the hardware ranges of split
//! and masked regions: a hit inside a slot's hardware range but outside the
//! user's region is filtered (stray) instead of being attributed by distance.
//! It is the one implementation: [`Manager::handle_exception`] feeds the same
//! rule slot by slot for [`Fired::ByAddress`] (reading a slot's region only
//! when its hardware range contains the address; see `Rule` for when that
//! can differ), and embedders without the manager may call it.
//!
//! [`Manager::handle_exception`]: crate::Manager::handle_exception
//! [`Fired::ByAddress`]: crate::Fired::ByAddress

use crate::Access;

/// One occupied slot as the rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Candidate {
    /// Slot number.
    pub slot: u8,
    /// The user's region: first byte and length.
    pub region: (u64, u64),
    /// The bytes the hardware matches for this slot: first byte and length.
    pub hw: (u64, u64),
    /// Access kinds the slot's breakpoint triggers on.
    pub access: Access,
}

/// The outcome of matching one reported address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Match {
    /// These slots' regions contain the address (bit `n` = slot `n`).
    Exact(u32),
    /// No region contains the address, but a slot's hardware range does
    /// (BAS/MASK or split over-coverage): nothing fired that the user asked
    /// for. Count it as stray.
    Filtered,
    /// No region or hardware range contains the address; this slot's
    /// hardware range is the closest one (ties: the lowest slot).
    Closest(u8),
    /// No slot of the access kind is occupied.
    NoCandidate,
}

/// Distance from `addr` to the byte range `[start, start + len)`; 0 inside it.
#[inline]
pub fn distance(addr: u64, start: u64, len: u64) -> u64 {
    let last = start.saturating_add(len.saturating_sub(1));
    if addr < start {
        start - addr
    } else {
        addr.saturating_sub(last)
    }
}

/// Match a reported address against the occupied slots.
///
/// `access` is what the exception reports (`READ` or `WRITE`; empty when
/// unknown, which disables the access-kind filter). Candidates numbered 32
/// or more are ignored (no hardware has that many slots of a kind).
#[inline]
pub fn match_address(
    candidates: impl IntoIterator<Item = Candidate>,
    addr: u64,
    access: Access,
) -> Match {
    let mut rule = Rule::new(addr, access);
    for c in candidates {
        if rule.wants(c.slot, c.access) {
            let class = if contains(c.region, addr) {
                Class::Exact
            } else {
                rule.outside_region(c.hw)
            };
            rule.add(c.slot, class);
        }
    }
    rule.finish()
}

/// How one candidate stands against the reported address.
#[derive(Clone, Copy)]
pub(crate) enum Class {
    /// Its region contains the address.
    Exact,
    /// Its hardware range does, its region does not.
    Filtered,
    /// Neither does; its hardware range is this far away.
    Away(u64),
}

/// [`match_address`]'s rule as an accumulator, so that the exception path
/// can feed it slot by slot and read a slot's region only when its hardware
/// range contains the address; a slot whose hardware range does not is
/// classed by distance even if its region contains the address.
///
/// That gives [`match_address`]'s outcome whenever the hardware ranges of an
/// event's pieces on the CPU together cover its region (what
/// [`Arch::encode`](crate::Arch::encode) must return; every backend in this
/// repository does: exact power-of-two pieces, Arm `BAS`/`MASK` exact covers
/// and instruction words, SH masked blocks that contain the region): then a
/// region containing the address has a piece that does too, so the event is
/// still in the exact set (only the mask may name fewer of its slots, and
/// delivery is per event). It can differ after
/// [`Manager::modify`](crate::Manager::modify) on a CPU not synced since: the
/// region is the new one at once, the hardware ranges are the old ones until the sync, and a
/// slot is then judged by what its register watches: a hit its register did
/// not catch is not credited to it (as a backend that names the slot would
/// not credit it), where [`match_address`] with the new region would.
pub(crate) struct Rule {
    addr: u64,
    access: Access,
    exact: u32,
    filtered: bool,
    closest: Option<(u64, u8)>,
}

impl Rule {
    #[inline]
    pub(crate) const fn new(addr: u64, access: Access) -> Self {
        Rule {
            addr,
            access,
            exact: 0,
            filtered: false,
            closest: None,
        }
    }

    /// Whether a slot numbered `slot` whose breakpoint triggers on `kind`
    /// takes part.
    #[inline]
    pub(crate) fn wants(&self, slot: u8, kind: Access) -> bool {
        slot < 32 && (self.access.is_empty() || kind.intersects(self.access))
    }

    /// The class of a slot whose region does not contain the address.
    #[inline]
    pub(crate) fn outside_region(&self, hw: (u64, u64)) -> Class {
        if contains(hw, self.addr) {
            Class::Filtered
        } else {
            Class::Away(distance(self.addr, hw.0, hw.1))
        }
    }

    /// Count one slot (which [`Rule::wants`]).
    #[inline]
    pub(crate) fn add(&mut self, slot: u8, class: Class) {
        match class {
            Class::Exact => self.exact |= 1 << (slot & 31),
            Class::Filtered => self.filtered = true,
            Class::Away(d) => {
                if self
                    .closest
                    .is_none_or(|(bd, bs)| d < bd || (d == bd && slot < bs))
                {
                    self.closest = Some((d, slot));
                }
            }
        }
    }

    /// The outcome.
    #[inline]
    pub(crate) fn finish(self) -> Match {
        if self.exact != 0 {
            Match::Exact(self.exact)
        } else if self.filtered {
            Match::Filtered
        } else if let Some((_, s)) = self.closest {
            Match::Closest(s)
        } else {
            Match::NoCandidate
        }
    }
}

/// Whether `addr` lies in `[start, start + len)`.
#[inline]
pub(crate) fn contains((start, len): (u64, u64), addr: u64) -> bool {
    addr >= start && addr - start < len
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
        assert_eq!(match_address(c, 0x1005, Access::WRITE), Match::Exact(0b011));
        assert_eq!(match_address(c, 0x2003, Access::READ), Match::Exact(0b100));
    }

    #[test]
    fn imprecise_far_goes_to_the_closest() {
        // An STP of 16 bytes at 0x0ff0 touches 0x1000 but reports FAR = 0x0ff0.
        let c = [
            wp(0, 0x1000, 4, Access::WRITE),
            wp(1, 0x3000, 4, Access::WRITE),
        ];
        assert_eq!(match_address(c, 0x0ff0, Access::WRITE), Match::Closest(0));
        // DC ZVA of a 64-byte block reports its start.
        assert_eq!(match_address(c, 0x2fc0, Access::WRITE), Match::Closest(1));
        // Tie: lowest slot.
        let t = [
            wp(3, 0x1000, 4, Access::WRITE),
            wp(1, 0x1007, 4, Access::WRITE),
        ];
        assert_eq!(match_address(t, 0x1005, Access::WRITE), Match::Closest(1));
    }

    #[test]
    fn access_kind_filters() {
        let c = [
            wp(0, 0x1000, 4, Access::READ),
            wp(1, 0x1000, 4, Access::WRITE),
        ];
        assert_eq!(match_address(c, 0x1000, Access::READ), Match::Exact(0b01));
        assert_eq!(match_address(c, 0x1000, Access::WRITE), Match::Exact(0b10));
        assert_eq!(
            match_address(c, 0x1000, Access::empty()),
            Match::Exact(0b11)
        );
        let r = [wp(0, 0x1000, 4, Access::READ)];
        assert_eq!(match_address(r, 0x1000, Access::WRITE), Match::NoCandidate);
        assert_eq!(match_address([], 0x1000, Access::WRITE), Match::NoCandidate);
    }

    #[test]
    fn over_coverage_is_filtered() {
        // A 3-byte region at 0x1001 covered by a masked 16-byte block: a hit
        // inside the hardware range, outside the region.
        let c = [Candidate {
            slot: 0,
            region: (0x1001, 3),
            hw: (0x1000, 16),
            access: Access::RW,
        }];
        assert_eq!(match_address(c, 0x100c, Access::READ), Match::Filtered);
        assert_eq!(match_address(c, 0x1002, Access::READ), Match::Exact(1));
        assert_eq!(match_address(c, 0x2000, Access::READ), Match::Closest(0));
    }

    #[test]
    fn distances() {
        assert_eq!(distance(5, 8, 4), 3);
        assert_eq!(distance(9, 8, 4), 0);
        assert_eq!(distance(13, 8, 4), 2);
        assert_eq!(distance(u64::MAX, u64::MAX - 1, 8), 0);
    }

    proptest::proptest! {
        /// The rule on arbitrary candidates (hardware ranges that may
        /// over-cover the region, slot numbers beyond 31): exact slots first,
        /// then filtered, then the closest hardware range (ties to the lowest
        /// slot), and nothing when no slot has the access kind.
        #[test]
        #[cfg_attr(miri, ignore = "proptest persists failures under the working directory, which Miri's isolation refuses; runs natively")]
        fn match_address_obeys_its_rule(
            cands in proptest::collection::vec(
                (proptest::prop_oneof![3 => 0u8..16, 1 => proptest::prelude::any::<u8>()],
                 0x1ff0u64..0x2050, 0u64..24, 0u64..8, 0u64..8, 0u8..8),
                0..8,
            ),
            addr in proptest::prop_oneof![3 => 0x1ff0u64..0x2060, 1 => proptest::prelude::any::<u64>()],
            access in proptest::prop_oneof![
                proptest::strategy::Just(Access::empty()),
                proptest::strategy::Just(Access::READ),
                proptest::strategy::Just(Access::WRITE),
                proptest::strategy::Just(Access::RW),
            ],
        ) {
            let cands: Vec<Candidate> = cands
                .into_iter()
                .map(|(slot, start, len, below, above, acc)| Candidate {
                    slot,
                    region: (start, len),
                    hw: (start.saturating_sub(below), len.saturating_add(below + above)),
                    access: Access::from_bits_retain(acc),
                })
                .collect();
            let kind_ok: Vec<&Candidate> = cands
                .iter()
                .filter(|c| c.slot < 32 && (access.is_empty() || c.access.intersects(access)))
                .collect();
            let inside = |(start, len): (u64, u64)| {
                u128::from(addr) >= u128::from(start)
                    && u128::from(addr) < u128::from(start) + u128::from(len)
            };
            let dist = |(start, len): (u64, u64)| {
                let last = (u128::from(start) + u128::from(len.max(1)) - 1).min(u128::from(u64::MAX));
                let a = u128::from(addr);
                if a < u128::from(start) { u128::from(start) - a } else { a.saturating_sub(last) }
            };
            let exact: u32 = kind_ok
                .iter()
                .filter(|c| inside(c.region))
                .fold(0, |m, c| m | 1u32 << c.slot);
            let in_hw_only = kind_ok.iter().any(|c| !inside(c.region) && inside(c.hw));
            match match_address(cands.iter().copied(), addr, access) {
                Match::Exact(mask) => proptest::prop_assert!(mask != 0 && mask == exact),
                Match::Filtered => {
                    proptest::prop_assert_eq!(exact, 0);
                    proptest::prop_assert!(in_hw_only);
                }
                Match::NoCandidate => proptest::prop_assert!(kind_ok.is_empty()),
                Match::Closest(s) => {
                    proptest::prop_assert_eq!(exact, 0);
                    proptest::prop_assert!(!in_hw_only);
                    let best = kind_ok.iter().map(|c| (dist(c.hw), c.slot)).min();
                    let mine = kind_ok.iter().filter(|c| c.slot == s).map(|c| (dist(c.hw), c.slot)).min();
                    proptest::prop_assert!(mine.is_some());
                    proptest::prop_assert_eq!(mine, best);
                }
            }
        }
    }
}
