//! Validation and encoding of a generic request into Arm debug registers.
//!
//! [`Encoder`] is pure: it runs on the host and is what other crates (for
//! example `hwbp-linux` on arm64) call to validate requests the way the real
//! backend would.

use crate::bcr::{Bcr, Privilege};
use crate::el2::Level;
use crate::region::{self, Chunk};
use crate::wcr::{LoadStore, Wcr};
use heapless::Vec;
use hwbp_core::{
    Access, AddressSpace, BpType, BreakpointAttr, Encoding, Error, Piece, SlotCounts, MAX_SLOTS,
};

/// One Arm debug register pair: the value register (`DBGBVR`/`DBGWVR`) and
/// the control register (`DBGBCR`/`DBGWCR`). The pool (breakpoint or
/// watchpoint) is implied by where the slot sits in the image.
///
/// The default, all zero, has `E` = 0: a disabled slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ArmSlot {
    /// `DBGBVR<n>` or `DBGWVR<n>` (an address).
    pub value: u64,
    /// `DBGBCR<n>` or `DBGWCR<n>`.
    pub ctrl: u32,
}

impl ArmSlot {
    /// Whether the control register has `E` set.
    pub const fn enabled(self) -> bool {
        self.ctrl & 1 != 0
    }
}

/// Which execution state's debug registers are encoded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Flavour {
    /// AArch64 (`DBGB*_EL1`, `DBGW*_EL1`): 49-bit sign-extended virtual
    /// addresses, user/kernel split by address bit 55 (TTBR0 vs TTBR1).
    Aarch64,
    /// AArch32 / Armv7 (CP14 `DBGB*`, `DBGW*`): 32-bit addresses.
    Aarch32 {
        /// First kernel address. Linux's default `PAGE_OFFSET` for a 3G/1G
        /// split is `0xC000_0000`; firmware with no user space may use
        /// anything.
        kernel_base: u32,
        /// `true`: `DBGWCR.BAS` has 8 usable bits (doubleword granule, all
        /// Armv8 cores and most v7.1 cores, QEMU). `false`: 4 bits (word
        /// granule, some Armv7 cores).
        wide_bas: bool,
    },
}

/// Linux's default AArch32 user/kernel split (`CONFIG_VMSPLIT_3G`).
pub const AARCH32_KERNEL_BASE: u32 = 0xC000_0000;

/// Validates [`BreakpointAttr`]s against Arm's rules and encodes them.
///
/// Rules (beyond the generic ones of [`BreakpointAttr::validate_request`],
/// which include the kernel-address rule with [`Encoder::address_space`]):
/// * **Instruction breakpoints** (`Access::EXEC`): the address must be 4-byte
///   aligned on AArch64 ([`Error::Misaligned`] `align: 4`) and 2-byte aligned
///   on AArch32 (`align: 2`). A length of 2 means one T32 (Thumb) halfword
///   (`BAS` = `0b0011` or `0b1100`, 2-byte aligned; on AArch64 this is only
///   for the EL0 code of AArch32 tasks, as Linux's compat breakpoints, so it
///   must be user-only (`exclude_kernel`), else [`Error::UnsupportedLength`]:
///   EL1 code is always A64, for which any `BAS` other than `0b1111` is
///   CONSTRAINED UNPREDICTABLE); any other length covers
///   the whole word from the address (`BAS` = `0b1111`, which matches an A32
///   instruction and either T32 halfword; the hardware range in the
///   [`Piece`] says so, and the core filters a hit on the other halfword).
///   A region longer than one word takes one register per word it touches.
/// * **Watchpoints** (`READ`, `WRITE`, `READ|WRITE` → `LSC` load, store, both):
///   1..=8 bytes inside one naturally aligned doubleword → one register with
///   `BAS`; a naturally aligned power of two from 16 bytes to 2 GiB → one
///   register with `MASK`; anything else → the fewest registers that cover the
///   region exactly (see [`region`]), refused with
///   [`Error::RangeTooLarge`] when that is more than the CPU has.
/// * `PMC`/`PAC`: `exclude_kernel` → EL0 only, `exclude_user` → EL1 only,
///   neither → both. A request with `exclude_kernel` that names a kernel
///   address is refused with [`Error::KernelAddress`].
/// * Addresses: AArch64 addresses must be representable in `DBGxVR`
///   (bits \[63:49\] a copy of bit 48; strip pointer tags first), AArch32
///   regions must end below 4 GiB; otherwise [`Error::AddressOverflow`].
///
/// Every [`Piece`] carries the bytes the hardware really matches
/// (`hw_addr`, `hw_len`).
///
/// ```
/// use hwbp_arm64::Encoder;
/// use hwbp_core::{Access, BreakpointAttr, Error};
/// let enc = Encoder::aarch64(6, 4);
/// let e = enc.encode(&BreakpointAttr::watch(0x1006, 4, Access::WRITE)).unwrap();
/// assert_eq!(e.weight(), 2); // straddles a doubleword boundary
/// let big = BreakpointAttr::watch(0x4000, 0x1000, Access::RW);
/// assert_eq!(enc.encode(&big).unwrap().weight(), 1); // one MASK register
/// assert_eq!(
///     enc.encode(&BreakpointAttr::exec(0x1002)),
///     Err(Error::Misaligned { addr: 0x1002, align: 4 })
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encoder {
    flavour: Flavour,
    inst: u8,
    data: u8,
    level: Level,
}

impl Encoder {
    /// An AArch64 encoder for a CPU with `inst` breakpoint and `data`
    /// watchpoint registers (clamped to 16).
    pub const fn aarch64(inst: u8, data: u8) -> Self {
        Self::new(Flavour::Aarch64, inst, data)
    }

    /// An AArch32 encoder (kernel at [`AARCH32_KERNEL_BASE`], 8-bit `BAS`).
    pub const fn aarch32(inst: u8, data: u8) -> Self {
        Self::new(
            Flavour::Aarch32 {
                kernel_base: AARCH32_KERNEL_BASE,
                wide_bas: true,
            },
            inst,
            data,
        )
    }

    /// An encoder for any flavour.
    pub const fn new(flavour: Flavour, inst: u8, data: u8) -> Self {
        let max = MAX_SLOTS as u8;
        Encoder {
            flavour,
            inst: if inst > max { max } else { inst },
            data: if data > max { max } else { data },
            level: Level::El1,
        }
    }

    /// The same encoder for code running at `level`: at EL2 the `HMC`, `SSC`
    /// and `PMC`/`PAC` fields follow [`crate::el2`]'s table (`exclude_user`
    /// is EL2 only, `exclude_kernel` the lower levels).
    #[must_use]
    pub const fn at_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The exception level the encodings are for.
    pub const fn level(&self) -> Level {
        self.level
    }

    /// The flavour.
    pub const fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// The register pools this encoder allocates from.
    pub const fn slot_counts(&self) -> SlotCounts {
        SlotCounts::Separate {
            inst: self.inst,
            data: self.data,
        }
    }

    /// Classify `len` bytes at `addr` as user or kernel space.
    ///
    /// AArch64: kernel (TTBR1) addresses have bit 55 set (bit 55 selects the
    /// translation table even when the top byte is ignored); a region that
    /// touches any such byte is kernel. AArch32: at or above `kernel_base`, or
    /// beyond 4 GiB.
    pub fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        let last = addr.saturating_add(len.saturating_sub(1));
        let kernel = match self.flavour {
            Flavour::Aarch64 => (addr >> 55) & 1 == 1 || (addr >> 55) != (last >> 55),
            Flavour::Aarch32 { kernel_base, .. } => last >= u64::from(kernel_base),
        };
        if kernel {
            AddressSpace::Kernel
        } else {
            AddressSpace::User
        }
    }

    fn check_address(&self, addr: u64, last: u64) -> Result<(), Error> {
        let ok = match self.flavour {
            // DBGxVR holds VA[48:2]; bits [63:49] are a sign extension of bit 48.
            Flavour::Aarch64 => {
                let canon = |a: u64| (((a << 15) as i64) >> 15) as u64 == a;
                canon(addr) && canon(last) && (addr >> 63) == (last >> 63)
            }
            Flavour::Aarch32 { .. } => last <= u64::from(u32::MAX),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::AddressOverflow)
        }
    }

    /// Validate a request (the core's generic rules,
    /// [`BreakpointAttr::validate_request`], then the Arm ones) and encode it.
    pub fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<ArmSlot>, Error> {
        attr.validate_request(None, |a, l| self.address_space(a, l))?;
        self.encode_validated(attr)
    }

    /// [`Encoder::encode`] for a request that already passed the core's
    /// generic rules ([`BreakpointAttr::validate_request`], which the manager
    /// checks before [`hwbp_core::Arch::encode`]): only the Arm rules are
    /// checked. Never panics; a request that breaks the generic rules is
    /// refused with some error.
    pub fn encode_validated(&self, attr: &BreakpointAttr) -> Result<Encoding<ArmSlot>, Error> {
        let last = attr.last_byte().ok_or(Error::AddressOverflow)?;
        self.check_address(attr.addr, last)?;
        let privilege = Privilege::from_excludes(attr.exclude_user, attr.exclude_kernel);
        match attr.bp_type() {
            BpType::Inst => self.encode_exec(attr, privilege),
            BpType::Data => self.encode_watch(attr, privilege),
        }
    }

    /// The level fields of `ctrl` for this encoder's level (unchanged at EL1).
    fn level_fields(&self, ctrl: u32, attr: &BreakpointAttr) -> u32 {
        match self.level {
            Level::El1 => ctrl,
            level => level.apply(ctrl, attr.exclude_user, attr.exclude_kernel),
        }
    }

    fn encode_exec(
        &self,
        attr: &BreakpointAttr,
        pmc: Privilege,
    ) -> Result<Encoding<ArmSlot>, Error> {
        // A length of 2 names one T32 halfword: on AArch32, and on AArch64
        // for the EL0 code of AArch32 (compat) tasks, whose breakpoints use
        // BAS 0b0011/0b1100 too.
        let thumb_halfword = attr.len == 2;
        if thumb_halfword && self.flavour == Flavour::Aarch64 && !attr.exclude_kernel {
            // EL1 is always A64: a halfword BAS there is CONSTRAINED
            // UNPREDICTABLE (Linux arm64 forces length 4 outside compat).
            return Err(Error::UnsupportedLength { len: 2 });
        }
        let align = match self.flavour {
            Flavour::Aarch64 if !thumb_halfword => 4,
            _ => 2,
        };
        if !attr.addr.is_multiple_of(align) {
            return Err(Error::Misaligned {
                addr: attr.addr,
                align,
            });
        }
        let end = u128::from(attr.addr) + u128::from(attr.len);
        let first_word = u128::from(attr.addr & !3);
        // Words touched, rounded up.
        let words = (end - first_word).div_ceil(4);
        if words > u128::from(self.inst) {
            return Err(Error::RangeTooLarge {
                weight: words.min(255) as u8,
                slots: self.inst,
            });
        }
        let mut pieces = Vec::new();
        let mut w = first_word;
        while w < end {
            let word = w as u64;
            let (bas, hw_addr, hw_len) = if thumb_halfword {
                if attr.addr & 2 == 0 {
                    (0b0011, word, 2)
                } else {
                    (0b1100, word + 2, 2)
                }
            } else if u128::from(attr.addr) <= w {
                (0b1111, word, 4)
            } else {
                // The region starts on the second halfword of this word (T32).
                (0b1100, word + 2, 2)
            };
            let ctrl = Bcr::address_match(bas, pmc).0;
            let slot = ArmSlot {
                value: word,
                ctrl: self.level_fields(ctrl, attr),
            };
            pieces
                .push(Piece {
                    slot,
                    hw_addr,
                    hw_len,
                })
                .map_err(|_| Error::RangeTooLarge {
                    weight: words.min(255) as u8,
                    slots: self.inst,
                })?;
            w += 4;
            if thumb_halfword {
                break;
            }
        }
        Ok(Encoding {
            ty: BpType::Inst,
            pieces,
        })
    }

    fn encode_watch(
        &self,
        attr: &BreakpointAttr,
        pac: Privilege,
    ) -> Result<Encoding<ArmSlot>, Error> {
        let lsc = if attr.access == Access::READ {
            LoadStore::Load
        } else if attr.access == Access::WRITE {
            LoadStore::Store
        } else if attr.access == Access::RW {
            LoadStore::Both
        } else {
            return Err(Error::UnsupportedAccess);
        };
        let granule = match self.flavour {
            Flavour::Aarch32 {
                wide_bas: false, ..
            } => 4,
            _ => 8,
        };
        let full_bas: u8 = if granule == 4 { 0x0F } else { 0xFF };
        let chunks = region::plan(attr.addr, attr.len, granule, self.data)?;
        let mut pieces = Vec::new();
        for c in chunks {
            let (hw_addr, hw_len) = c.hw_range();
            let slot = match c {
                Chunk::Bas { base, bas } => ArmSlot {
                    value: base,
                    ctrl: self.level_fields(Wcr::new(bas, 0, lsc, pac).0, attr),
                },
                Chunk::Mask { base, bits } => ArmSlot {
                    value: base,
                    ctrl: self.level_fields(Wcr::new(full_bas, bits, lsc, pac).0, attr),
                },
            };
            // Cannot fail: plan() returns at most MAX_SLOTS chunks.
            pieces
                .push(Piece {
                    slot,
                    hw_addr,
                    hw_len,
                })
                .ok();
        }
        Ok(Encoding {
            ty: BpType::Data,
            pieces,
        })
    }
}
