//! Splitting a watched region into the fewest watchpoint registers.
//!
//! One watchpoint register covers either
//! * any bytes of one naturally aligned *granule* (a doubleword; a word on
//!   AArch32 cores whose `BAS` only has 4 usable bits), selected by `BAS`, or
//! * a naturally aligned power-of-two block of 8 bytes to 2 GiB, with `MASK`
//!   = log2(size) low address bits ignored and `BAS` all ones (Arm ARM, watchpoint address masking:
//!   any other `BAS` with a `MASK` is CONSTRAINED UNPREDICTABLE).
//!
//! A region is covered *exactly* (no byte outside it is watched) by walking it
//! from the bottom and taking, at each position, the largest naturally aligned
//! block that fits, or the rest of the current granule. An exact cover must
//! use one `BAS` piece for a partial granule at each end, and the aligned middle
//! decomposes uniquely into the fewest aligned power-of-two blocks, so the walk
//! is optimal.

use heapless::Vec;
use hwbp_core::{Error, MAX_SLOTS};

/// Largest `MASK` value: 2^31 bytes = 2 GiB.
pub const MAX_MASK_BITS: u32 = 31;

/// One watchpoint register's worth of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Chunk {
    /// Bytes of one granule: `WVR` = `base` (granule aligned), `BAS` = `bas`.
    Bas {
        /// Granule-aligned address written to `WVR`.
        base: u64,
        /// Byte select, bit `i` = byte `base + i`.
        bas: u8,
    },
    /// A naturally aligned block of `1 << bits` bytes at `base`.
    Mask {
        /// Block address, aligned to its size.
        base: u64,
        /// log2 of the block size, 3..=31.
        bits: u8,
    },
}

impl Chunk {
    /// The bytes the hardware matches: (first byte, length), for the chunks
    /// [`plan`] returns.
    ///
    /// Total for any value: a `Bas` with `bas` = 0 matches nothing (length 0
    /// at `base`); for a `Bas` with holes the length spans the first to the
    /// last selected byte; the first byte wraps at the top of the address
    /// space; a `Mask` with `bits` of 64 or more has its length saturated at
    /// `u64::MAX`.
    pub fn hw_range(self) -> (u64, u64) {
        match self {
            Chunk::Bas { base, bas: 0 } => (base, 0),
            Chunk::Bas { base, bas } => {
                // bas != 0: leading + trailing zeros <= 7.
                let first = bas.trailing_zeros();
                let len = 8u32.saturating_sub(bas.leading_zeros() + first);
                (base.wrapping_add(u64::from(first)), u64::from(len))
            }
            Chunk::Mask { base, bits } => {
                (base, 1u64.checked_shl(u32::from(bits)).unwrap_or(u64::MAX))
            }
        }
    }
}

/// The pieces of an exact cover, or the typed reason it cannot be built.
///
/// `granule` is 8 (doubleword `BAS`) or 4 (word `BAS`); `slots` is the number of
/// watchpoint registers available. Refuses with [`Error::RangeTooLarge`]
/// (carrying the weight the cover needs, saturated at 255) when the cover needs
/// more than `slots` registers.
pub fn plan(addr: u64, len: u64, granule: u64, slots: u8) -> Result<Vec<Chunk, MAX_SLOTS>, Error> {
    if len == 0 {
        return Err(Error::ZeroLength);
    }
    let granule = if granule == 4 { 4u128 } else { 8u128 };
    let g_bits = granule.trailing_zeros();
    let end = u128::from(addr) + u128::from(len);
    if end > 1u128 << 64 {
        return Err(Error::AddressOverflow);
    }
    let limit = usize::from(slots).min(MAX_SLOTS);
    let mut out: Vec<Chunk, MAX_SLOTS> = Vec::new();
    let mut weight: u128 = 0;
    let mut p = u128::from(addr);
    while p < end {
        let rem = end - p;
        // Largest naturally aligned power of two at p that fits.
        let align_bits = p.trailing_zeros().min(64);
        let fit_bits = 127 - rem.leading_zeros(); // floor(log2(rem))
        let k = align_bits.min(fit_bits).min(MAX_MASK_BITS);
        if k == MAX_MASK_BITS {
            // A run of whole 2 GiB blocks: count them without walking each one
            // (a region can hold 2^33 of them).
            let n = rem >> MAX_MASK_BITS;
            let mut i = 0u128;
            while i < n && out.len() < limit {
                let base = (p + (i << MAX_MASK_BITS)) as u64;
                out.push(Chunk::Mask {
                    base,
                    bits: MAX_MASK_BITS as u8,
                })
                .ok();
                i += 1;
            }
            weight += n;
            p += n << MAX_MASK_BITS;
            continue;
        }
        let (chunk, step) = if k > g_bits {
            (
                Chunk::Mask {
                    base: p as u64,
                    bits: k as u8,
                },
                1u128 << k,
            )
        } else {
            let base = p & !(granule - 1);
            let stop = end.min(base + granule);
            let n = stop - p;
            let off = p - base;
            let bas = (((1u32 << n) - 1) << off) as u8;
            (
                Chunk::Bas {
                    base: base as u64,
                    bas,
                },
                n,
            )
        };
        if out.len() < limit {
            out.push(chunk).ok();
        }
        weight += 1;
        p += step;
    }
    if weight > limit as u128 {
        return Err(Error::RangeTooLarge {
            weight: weight.min(255) as u8,
            slots,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(chunks: &[Chunk]) -> std::vec::Vec<(u64, u64)> {
        chunks.iter().map(|c| c.hw_range()).collect()
    }

    #[test]
    fn decision_table() {
        use Chunk::*;
        // (addr, len, granule, slots) -> expected pieces or error.
        type Row = (u64, u64, u64, u8, Result<&'static [Chunk], Error>);
        let table: &[Row] = &[
            // 1..8 bytes inside one doubleword: one BAS register.
            (
                0x1000,
                1,
                8,
                4,
                Ok(&[Bas {
                    base: 0x1000,
                    bas: 0x01,
                }]),
            ),
            (
                0x1003,
                2,
                8,
                4,
                Ok(&[Bas {
                    base: 0x1000,
                    bas: 0x18,
                }]),
            ),
            (
                0x1004,
                4,
                8,
                4,
                Ok(&[Bas {
                    base: 0x1000,
                    bas: 0xF0,
                }]),
            ),
            (
                0x1000,
                8,
                8,
                4,
                Ok(&[Bas {
                    base: 0x1000,
                    bas: 0xFF,
                }]),
            ),
            (
                0x1007,
                1,
                8,
                1,
                Ok(&[Bas {
                    base: 0x1000,
                    bas: 0x80,
                }]),
            ),
            // Naturally aligned power of two >= 16: one MASK register.
            (
                0x1000,
                16,
                8,
                1,
                Ok(&[Mask {
                    base: 0x1000,
                    bits: 4,
                }]),
            ),
            (
                0x1000,
                0x1000,
                8,
                1,
                Ok(&[Mask {
                    base: 0x1000,
                    bits: 12,
                }]),
            ),
            (
                0x8000_0000,
                0x8000_0000,
                8,
                1,
                Ok(&[Mask {
                    base: 0x8000_0000,
                    bits: 31,
                }]),
            ),
            // Straddling a doubleword boundary: split in two.
            (
                0x1006,
                4,
                8,
                4,
                Ok(&[
                    Bas {
                        base: 0x1000,
                        bas: 0xC0,
                    },
                    Bas {
                        base: 0x1008,
                        bas: 0x03,
                    },
                ]),
            ),
            // 8 bytes, misaligned by 4: two BAS halves.
            (
                0x1004,
                8,
                8,
                2,
                Ok(&[
                    Bas {
                        base: 0x1000,
                        bas: 0xF0,
                    },
                    Bas {
                        base: 0x1008,
                        bas: 0x0F,
                    },
                ]),
            ),
            // 24 bytes aligned to 8: a 8-byte BAS and a 16-byte MASK.
            (
                0x1008,
                24,
                8,
                4,
                Ok(&[
                    Bas {
                        base: 0x1008,
                        bas: 0xFF,
                    },
                    Mask {
                        base: 0x1010,
                        bits: 4,
                    },
                ]),
            ),
            // Unaligned head and tail around a masked middle.
            (
                0x1003,
                0x20,
                8,
                4,
                Ok(&[
                    Bas {
                        base: 0x1000,
                        bas: 0xF8,
                    },
                    Bas {
                        base: 0x1008,
                        bas: 0xFF,
                    },
                    Mask {
                        base: 0x1010,
                        bits: 4,
                    },
                    Bas {
                        base: 0x1020,
                        bas: 0x07,
                    },
                ]),
            ),
            // Does not fit: the weight is reported.
            (
                0x1003,
                0x20,
                8,
                3,
                Err(Error::RangeTooLarge {
                    weight: 4,
                    slots: 3,
                }),
            ),
            (
                0x1006,
                4,
                8,
                1,
                Err(Error::RangeTooLarge {
                    weight: 2,
                    slots: 1,
                }),
            ),
            // 4 GiB aligned: two 2 GiB masks.
            (
                0,
                0x1_0000_0000,
                8,
                2,
                Ok(&[
                    Mask { base: 0, bits: 31 },
                    Mask {
                        base: 0x8000_0000,
                        bits: 31,
                    },
                ]),
            ),
            (
                0,
                0x1_0000_0000,
                8,
                1,
                Err(Error::RangeTooLarge {
                    weight: 2,
                    slots: 1,
                }),
            ),
            // Huge regions saturate the reported weight.
            (
                0x1,
                u64::MAX - 1,
                8,
                16,
                Err(Error::RangeTooLarge {
                    weight: 255,
                    slots: 16,
                }),
            ),
            // Word granule (AArch32 cores with a 4-bit BAS).
            (
                0x1004,
                4,
                4,
                1,
                Ok(&[Bas {
                    base: 0x1004,
                    bas: 0x0F,
                }]),
            ),
            (
                0x1006,
                4,
                4,
                1,
                Err(Error::RangeTooLarge {
                    weight: 2,
                    slots: 1,
                }),
            ),
            (
                0x1000,
                8,
                4,
                1,
                Ok(&[Mask {
                    base: 0x1000,
                    bits: 3,
                }]),
            ),
        ];
        for &(addr, len, g, slots, ref want) in table {
            let got = plan(addr, len, g, slots);
            match want {
                Ok(pieces) => assert_eq!(
                    got.as_deref(),
                    Ok(*pieces),
                    "{addr:#x}+{len:#x} g{g} s{slots}"
                ),
                Err(e) => assert_eq!(got, Err(*e), "{addr:#x}+{len:#x} g{g} s{slots}"),
            }
        }
    }

    #[test]
    fn exact_cover_small_regions() {
        // Every region up to 80 bytes at every offset in a 64-byte window: the
        // pieces tile the region exactly, in order, without overlap.
        for addr in 0x1000u64..0x1040 {
            for len in 1u64..=80 {
                for g in [4, 8] {
                    let chunks = plan(addr, len, g, 16).unwrap();
                    let mut next = addr;
                    for (a, l) in covered(&chunks) {
                        assert_eq!(a, next, "{addr:#x}+{len}");
                        next = a + l;
                    }
                    assert_eq!(next, addr + len);
                }
            }
        }
    }

    #[test]
    fn hw_range_edges() {
        assert_eq!(
            Chunk::Bas {
                base: 0x1000,
                bas: 0
            }
            .hw_range(),
            (0x1000, 0)
        );
        assert_eq!(
            Chunk::Bas {
                base: u64::MAX,
                bas: 0x80
            }
            .hw_range(),
            (6, 1)
        );
        assert_eq!(Chunk::Bas { base: 0, bas: 0x81 }.hw_range(), (0, 8));
        assert_eq!(Chunk::Mask { base: 0, bits: 63 }.hw_range(), (0, 1 << 63));
        assert_eq!(Chunk::Mask { base: 0, bits: 64 }.hw_range(), (0, u64::MAX));
        assert_eq!(Chunk::Mask { base: 0, bits: 255 }.hw_range(), (0, u64::MAX));
    }

    #[test]
    fn top_of_address_space() {
        assert_eq!(
            plan(u64::MAX - 7, 8, 8, 1),
            Ok(Vec::from_slice(&[Chunk::Bas {
                base: u64::MAX - 7,
                bas: 0xFF
            }])
            .unwrap())
        );
        assert_eq!(plan(u64::MAX, 2, 8, 1), Err(Error::AddressOverflow));
        assert_eq!(plan(0, 0, 8, 1), Err(Error::ZeroLength));
    }
}
