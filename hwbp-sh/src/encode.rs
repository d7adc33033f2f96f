//! Validation and encoding of generic requests into UBC channel settings.
//!
//! Pure: usable on the host, by a debugger that only wants to know whether a
//! request fits, and by [`crate::ShBackend`].
//!
//! # Rules
//!
//! * Addresses are 32-bit: a region must end at or below `0x1_0000_0000`
//!   ([`Error::AddressOverflow`]).
//! * Instruction breakpoints: the address must be even (SuperH instructions
//!   are 16-bit), [`Error::Misaligned`] otherwise; length 1 or 2 is one
//!   instruction, longer regions are instruction ranges (below).
//! * Data watchpoints of length 1, 2, 4 or 8 must be aligned to their length
//!   ([`Error::Misaligned`]). With [`SizePolicy::OperandSize`] (the default,
//!   as Linux does) the length goes into the operand-size field, so only
//!   accesses of exactly that size to that address match. With
//!   [`SizePolicy::AnySize`] the size is left out of the condition and the
//!   low address bits are masked, so every access that touches the region
//!   matches (SH-4A only for lengths 2/4/8: SH-4's BAMR cannot mask 1–3
//!   bits, [`Error::UnsupportedLength`]).
//! * Other regions: an aligned power-of-two region is one channel with the
//!   address mask register (CAMR on SH-4A: any size; BAMR on SH-4: 1 KiB,
//!   4 KiB, 64 KiB, 1 MiB). Anything else follows the [`RangePolicy`]:
//!   split into aligned blocks, one channel each ([`Error::RangeTooLarge`]
//!   when that needs more channels than the part has), cover with one
//!   larger block (the pieces report what the hardware really matches, so
//!   the core filters hits outside the request when it knows the address),
//!   or refuse ([`Error::UnsupportedLength`]).
//! * A request that excludes the kernel may not name addresses outside
//!   P0/U0 ([`Error::KernelAddress`]).

use crate::slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};
use crate::variant::Variant;
use hwbp_core::{Access, AddressSpace, BpType, BreakpointAttr, Encoding, Error, Piece, MAX_SLOTS};

/// One past the last address of the 32-bit address space.
const ADDR_END: u64 = 1 << 32;
/// First address outside P0/U0 (the user-accessible 2 GiB).
pub const USER_END: u64 = 0x8000_0000;

/// How data watchpoints of length 1/2/4/8 use the operand-size field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SizePolicy {
    /// The length is the operand size condition (Linux's encoding): only
    /// accesses of exactly that size at that address match.
    #[default]
    OperandSize,
    /// No size condition; the low address bits are masked, so every access
    /// touching the region matches.
    AnySize,
}

/// What to do with a region that is not a length-1/2/4/8 aligned unit and not
/// an aligned power-of-two block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RangePolicy {
    /// Split into maximal aligned blocks, one channel each (weight = pieces).
    #[default]
    Split,
    /// One channel on the smallest maskable aligned block that contains the
    /// region (weight 1; hits outside the region are left to the core).
    Cover,
    /// Refuse with [`Error::UnsupportedLength`].
    Refuse,
}

/// The encoder for one UBC variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encoder {
    variant: Variant,
    size: SizePolicy,
    range: RangePolicy,
    timing: BreakTiming,
}

impl Encoder {
    /// An encoder with the default policies: operand-size lengths, split
    /// ranges, instruction breaks before execution.
    pub const fn new(variant: Variant) -> Self {
        Encoder {
            variant,
            size: SizePolicy::OperandSize,
            range: RangePolicy::Split,
            timing: BreakTiming::Before,
        }
    }

    /// Use `size` for data lengths 1/2/4/8.
    #[must_use]
    pub const fn size_policy(mut self, size: SizePolicy) -> Self {
        self.size = size;
        self
    }

    /// Use `range` for other regions.
    #[must_use]
    pub const fn range_policy(mut self, range: RangePolicy) -> Self {
        self.range = range;
        self
    }

    /// Break before or after an instruction breakpoint's instruction executes.
    #[must_use]
    pub const fn exec_timing(mut self, timing: BreakTiming) -> Self {
        self.timing = timing;
        self
    }

    /// The variant encoded for.
    pub const fn variant(&self) -> Variant {
        self.variant
    }

    /// P0/U0 (`0x0000_0000..0x8000_0000`) is user space; P1–P4 are
    /// privileged-only.
    pub fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        match addr.checked_add(len) {
            Some(end) if end <= USER_END => AddressSpace::User,
            _ => AddressSpace::Kernel,
        }
    }

    /// Validate `attr` (the core's generic rules,
    /// [`BreakpointAttr::validate_request`], then the UBC's) and encode it.
    pub fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<UbcSlot>, Error> {
        attr.validate_request(None, |a, l| self.address_space(a, l))?;
        self.encode_validated(attr)
    }

    /// [`Encoder::encode`] for a request that already passed the core's
    /// generic rules ([`BreakpointAttr::validate_request`], which the manager
    /// checks before [`hwbp_core::Arch::encode`]): only the UBC's rules are
    /// checked. Never panics; a request that breaks the generic rules is
    /// refused with some error.
    pub fn encode_validated(&self, attr: &BreakpointAttr) -> Result<Encoding<UbcSlot>, Error> {
        let (cycle, rw) = classify(attr.access)?;
        let (addr, len) = (attr.addr, attr.len);
        if len == 0 {
            return Err(Error::UnsupportedLength { len });
        }
        // The UBC compares 32-bit addresses.
        let end = addr.checked_add(len).ok_or(Error::AddressOverflow)?;
        if end > ADDR_END {
            return Err(Error::AddressOverflow);
        }
        let base = UbcSlot {
            enabled: true,
            cycle,
            rw,
            size: OperandSize::Any,
            timing: if cycle == CycleSelect::Fetch {
                self.timing
            } else {
                BreakTiming::Before
            },
            addr: 0,
            mask: 0,
            asid: None,
        };
        let ty = if cycle == CycleSelect::Fetch {
            BpType::Inst
        } else {
            BpType::Data
        };
        let mut enc = Encoding {
            ty,
            pieces: heapless::Vec::new(),
        };

        if cycle == CycleSelect::Fetch {
            if addr % 2 != 0 {
                return Err(Error::Misaligned { addr, align: 2 });
            }
            // An instruction fetch is a word access: A0 is never compared.
            // Round the end up to a whole instruction; ADDR_END is even, so
            // this stays inside the address space.
            let end = (addr + len.max(2) + 1) & !1;
            self.range(&mut enc, base, addr, end, 1)?;
            return Ok(enc);
        }

        if let Some(sz) = OperandSize::from_len(len) {
            if addr % len != 0 {
                return Err(Error::Misaligned { addr, align: len });
            }
            let slot = match self.size {
                SizePolicy::OperandSize => UbcSlot {
                    size: sz,
                    addr: addr as u32,
                    ..base
                },
                SizePolicy::AnySize => {
                    let k = len.trailing_zeros();
                    if !self.variant.supports_low_mask(k) {
                        return Err(Error::UnsupportedLength { len });
                    }
                    UbcSlot {
                        addr: addr as u32,
                        mask: (len - 1) as u32,
                        ..base
                    }
                }
            };
            push(&mut enc, slot, addr, len)?;
            return Ok(enc);
        }
        self.range(&mut enc, base, addr, end, 0)?;
        Ok(enc)
    }

    /// Encode `[addr, end)` with masked blocks. `min_k`: address bits the
    /// cycle never compares (1 for instruction fetches).
    fn range(
        &self,
        enc: &mut Encoding<UbcSlot>,
        base: UbcSlot,
        addr: u64,
        end: u64,
        min_k: u32,
    ) -> Result<(), Error> {
        let len = end - addr;
        let maskable = |k: u32| k <= min_k || self.variant.supports_low_mask(k);
        let block = |at: u64, k: u32| UbcSlot {
            addr: at as u32,
            mask: if k <= min_k {
                0
            } else {
                ((1u64 << k) - 1) as u32
            },
            ..base
        };
        // An aligned power-of-two block the mask register can express: exact.
        if len.is_power_of_two() && addr.is_multiple_of(len) && maskable(len.trailing_zeros()) {
            return push(enc, block(addr, len.trailing_zeros()), addr, len);
        }
        match self.range {
            RangePolicy::Refuse => Err(Error::UnsupportedLength { len }),
            RangePolicy::Cover => {
                // The smallest maskable aligned block containing the region; a
                // block of the whole 4 GiB is not a watchpoint.
                let mut k = 64 - (len - 1).leading_zeros();
                while k < 32 {
                    let at = addr & !((1u64 << k) - 1);
                    if maskable(k) && at + (1u64 << k) >= end {
                        return push(enc, block(at, k), at, 1u64 << k);
                    }
                    k += 1;
                }
                Err(Error::UnsupportedLength { len })
            }
            RangePolicy::Split => {
                let slots = self.variant.channels;
                let weight = split(addr, end, &maskable, |_, _| Ok(()))?;
                if weight > u32::from(slots) {
                    return Err(Error::RangeTooLarge {
                        weight: weight.min(u32::from(u8::MAX)) as u8,
                        slots,
                    });
                }
                split(addr, end, &maskable, |at, k| {
                    push(enc, block(at, k), at, 1u64 << k)
                })?;
                Ok(())
            }
        }
    }
}

/// Walk `[addr, end)` in maximal maskable aligned blocks, calling `f(start,
/// log2 size)` for each; returns the number of blocks.
fn split(
    addr: u64,
    end: u64,
    maskable: &dyn Fn(u32) -> bool,
    mut f: impl FnMut(u64, u32) -> Result<(), Error>,
) -> Result<u32, Error> {
    let mut at = addr;
    let mut count: u32 = 0;
    while at < end {
        let mut k = at.trailing_zeros().min(32);
        while k > 0 && (at + (1u64 << k) > end || !maskable(k)) {
            k -= 1;
        }
        f(at, k)?;
        count = count.saturating_add(1);
        at += 1u64 << k;
    }
    Ok(count)
}

fn push(
    enc: &mut Encoding<UbcSlot>,
    slot: UbcSlot,
    hw_addr: u64,
    hw_len: u64,
) -> Result<(), Error> {
    enc.pieces
        .push(Piece {
            slot,
            hw_addr,
            hw_len,
        })
        .map_err(|_| Error::RangeTooLarge {
            weight: u8::MAX,
            slots: MAX_SLOTS as u8,
        })
}

fn classify(access: Access) -> Result<(CycleSelect, BusCommand), Error> {
    if access == Access::EXEC {
        Ok((CycleSelect::Fetch, BusCommand::Read))
    } else if access == Access::READ {
        Ok((CycleSelect::Operand, BusCommand::Read))
    } else if access == Access::WRITE {
        Ok((CycleSelect::Operand, BusCommand::Write))
    } else if access == Access::RW {
        Ok((CycleSelect::Operand, BusCommand::ReadWrite))
    } else {
        // The core refuses such a request first, with the precise generic
        // reason (`BreakpointAttr::validate_request`).
        Err(Error::NoAccess)
    }
}
