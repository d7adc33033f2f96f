//! Splitting a region into naturally aligned power-of-two pieces, one debug
//! register each.
//!
//! Hardware whose registers watch 1, 2, 4 or 8 bytes at an address aligned to
//! that length (x86 DR0–DR3, SDM §18.2.5; the mock backend) covers a region of
//! any other shape exactly with several registers. The cover is exact — no
//! piece watches a byte outside the region — because such hardware names the
//! register that fired but not the accessed address: a stray hit on a padding
//! byte could not be told apart from a real one afterwards.
//!
//! Taking, at each step, the largest allowed power of two that is aligned at
//! the current address and fits in what is left gives the fewest pieces: any
//! exact cover must split at every point where the address changes alignment
//! class, and the greedy cover splits nowhere else.

/// The pieces of a region, lowest address first: `(address, length)` pairs.
#[derive(Clone, Debug)]
pub struct Pieces {
    addr: u64,
    remaining: u64,
    max: u64,
}

impl Pieces {
    /// The pieces of `len` bytes at `addr`, each at most `max` bytes (`max` is
    /// rounded down to a power of two, and at least 1).
    pub fn new(addr: u64, len: u64, max: u64) -> Self {
        let max = if max == 0 {
            1
        } else {
            1u64 << (63 - max.leading_zeros())
        };
        Pieces {
            addr,
            remaining: len,
            max,
        }
    }
}

impl Iterator for Pieces {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.remaining == 0 {
            return None;
        }
        let mut size = self.max;
        while size > 1 && (!self.addr.is_multiple_of(size) || size > self.remaining) {
            size /= 2;
        }
        let piece = (self.addr, size);
        self.addr = self.addr.wrapping_add(size);
        self.remaining -= size;
        Some(piece)
    }
}

/// How many pieces [`Pieces`] yields, computed without walking the aligned
/// middle of the region (so it is cheap even for huge lengths).
pub fn weight(addr: u64, len: u64, max: u64) -> u64 {
    let mut it = Pieces::new(addr, len, max);
    let max = it.max;
    let mut w = 0u64;
    // Head: until the address is aligned to `max` (at most log2(max) pieces).
    while it.remaining > 0 && !it.addr.is_multiple_of(max) {
        it.next();
        w += 1;
    }
    // Middle: whole `max`-sized pieces.
    let whole = it.remaining / max;
    w = w.saturating_add(whole);
    it.addr = it.addr.wrapping_add(whole.wrapping_mul(max));
    it.remaining %= max;
    // Tail: at most log2(max) pieces.
    w.saturating_add(it.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (addr, len, max) -> expected pieces, worked out by hand.
    type Case = (u64, u64, u64, &'static [(u64, u64)]);
    const TABLE: &[Case] = &[
        (0x1000, 1, 8, &[(0x1000, 1)]),
        (0x1000, 8, 8, &[(0x1000, 8)]),
        (0x1000, 8, 4, &[(0x1000, 4), (0x1004, 4)]),
        (0x1001, 1, 8, &[(0x1001, 1)]),
        (0x1001, 2, 8, &[(0x1001, 1), (0x1002, 1)]),
        (0x1001, 7, 8, &[(0x1001, 1), (0x1002, 2), (0x1004, 4)]),
        (0x1002, 4, 8, &[(0x1002, 2), (0x1004, 2)]),
        (0x1003, 4, 8, &[(0x1003, 1), (0x1004, 2), (0x1006, 1)]),
        (0x1004, 8, 8, &[(0x1004, 4), (0x1008, 4)]),
        (0x1000, 16, 8, &[(0x1000, 8), (0x1008, 8)]),
        (0x1000, 3, 8, &[(0x1000, 2), (0x1002, 1)]),
        (0x1000, 6, 8, &[(0x1000, 4), (0x1004, 2)]),
        // Crossing a page boundary.
        (0x1ffe, 4, 8, &[(0x1ffe, 2), (0x2000, 2)]),
        (0x1ffc, 8, 8, &[(0x1ffc, 4), (0x2000, 4)]),
        (0x1fff, 2, 8, &[(0x1fff, 1), (0x2000, 1)]),
        (
            0x1ff9,
            8,
            8,
            &[(0x1ff9, 1), (0x1ffa, 2), (0x1ffc, 4), (0x2000, 1)],
        ),
        // The very end of the address space.
        (u64::MAX, 1, 8, &[(u64::MAX, 1)]),
        (u64::MAX - 7, 8, 8, &[(u64::MAX - 7, 8)]),
        (0xffff_fffe, 2, 4, &[(0xffff_fffe, 2)]),
    ];

    #[test]
    fn table() {
        for &(addr, len, max, want) in TABLE {
            let got: heapless::Vec<(u64, u64), 16> = Pieces::new(addr, len, max).collect();
            assert_eq!(got.as_slice(), want, "addr {addr:#x} len {len} max {max}");
            assert_eq!(
                weight(addr, len, max),
                want.len() as u64,
                "weight of {addr:#x}+{len}"
            );
        }
    }

    #[test]
    fn huge_region_weight_without_walking() {
        assert_eq!(weight(0, 1 << 40, 8), 1 << 37);
        // Head 1+2+4 bytes, then 2^64 - 8 bytes in whole 8-byte pieces.
        assert_eq!(weight(1, u64::MAX, 8), 3 + (u64::MAX - 7) / 8);
        assert_eq!(weight(1, 12, 8), 5);
    }

    /// Brute force: the fewest aligned pieces covering exactly [addr, addr+len).
    fn fewest(addr: u64, len: u64, max: u64) -> u64 {
        // Dynamic programme over offsets.
        let n = len as usize;
        let mut best = vec![u64::MAX; n + 1];
        best[0] = 0;
        for i in 0..n {
            if best[i] == u64::MAX {
                continue;
            }
            let mut s = 1;
            while s <= max {
                let a = addr + i as u64;
                if a.is_multiple_of(s) && i + s as usize <= n {
                    best[i + s as usize] = best[i + s as usize].min(best[i] + 1);
                }
                s *= 2;
            }
        }
        best[n]
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore = "proptest persists failures under the working directory, which Miri's isolation refuses; runs natively")]
        fn pieces_are_an_exact_minimal_aligned_cover(addr in 0u64..1 << 20, len in 1u64..64, big in any::<bool>()) {
            let max = if big { 8 } else { 4 };
            let mut next = addr;
            let mut count = 0;
            for (a, s) in Pieces::new(addr, len, max) {
                prop_assert_eq!(a, next);
                prop_assert!(s.is_power_of_two() && s <= max);
                prop_assert_eq!(a % s, 0);
                next = a + s;
                count += 1;
            }
            prop_assert_eq!(next, addr + len);
            prop_assert_eq!(count, fewest(addr, len, max));
            prop_assert_eq!(weight(addr, len, max), count);
        }
    }
}
