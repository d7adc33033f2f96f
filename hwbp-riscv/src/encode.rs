//! Validation and encoding of generic requests into trigger images (pure,
//! usable on a host).
//!
//! # Region policy: exact, NAPOT where the hardware has it, else split
//!
//! A data region `[addr, addr + len)` is covered *exactly* by naturally
//! aligned power-of-two blocks, taken greedily from `addr` (each block the
//! largest that is aligned at the current address, fits in what is left and
//! is no larger than the NAPOT limit). A block of one byte is a trigger with
//! `match` = 0 (equal) on that byte; a larger one is a trigger with `match` =
//! 1 (NAPOT), used only where discovery saw `match` = 1 stick in every pool
//! trigger and the block is within `maskmax` (`mcontrol`) or `maskmax6`
//! (`mcontrol6`). Without NAPOT every byte is its own trigger: a 4-byte
//! region has weight 4, and a region needing more triggers than the pool
//! has is refused with [`Error::RangeTooLarge`]. No trigger ever matches a
//! byte outside the region, so there are no false hits to filter.
//!
//! The triggers compare addresses (`select` = 0) with any access size
//! (`size` = 0). The specification requires the access's lowest address
//! among the compare values and *recommends* every accessed byte: on a hart
//! that compares only the lowest address, an access that starts below a
//! block and runs into it is not caught (the software model,
//! `model::Model` with the feature `model`, compares every byte, as
//! recommended).
//!
//! # Privilege mapping
//!
//! RISC-V has three modes and the generic request two: *kernel* is S-mode
//! and M-mode (the privileged modes: an S-mode kernel, or M-mode firmware),
//! *user* is U-mode. `exclude_kernel` clears `m` and `s`, `exclude_user`
//! clears `u`; a mode the pool's triggers do not implement (`s` on an
//! M/U-only hart) is left clear. A request left with no mode is refused with
//! [`Error::UnsupportedAccess`]. `vs`/`vu` (`mcontrol6`) are always 0.
//!
//! Instruction breakpoints: one trigger, `execute` with `match` = 0 on the
//! instruction's address, which must be 2-byte aligned (`IALIGN` = 16 with
//! the C extension); the length is that of the instruction (1 — the generic
//! default —, 2 or 4).

use crate::discover::Triggers;
use crate::tdata::{napot_tdata2, Match, MatchType, Modes, Xlen};
use heapless::Vec;
use hwbp_core::{Access, AddressSpace, BpType, BreakpointAttr, Encoding, Error, Piece, MAX_SLOTS};

/// One trigger's image: `tdata1` and `tdata2`. The default (both 0) is the
/// disabled slot; the backend writes the pool type's disabled image
/// ([`crate::discover::disabled`]) for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RiscvSlot {
    /// The `tdata1` value.
    pub tdata1: u64,
    /// The `tdata2` value.
    pub tdata2: u64,
}

/// A Linux-like default split for [`AddressSpace`]: on RV64, the upper half
/// (bit 63 set: Sv39/Sv48/Sv57 kernel addresses are sign-extended).
pub const RV64_KERNEL_BASE: u64 = 1 << 63;
/// On RV32, Linux's default `PAGE_OFFSET` (`0xC000_0000`).
pub const RV32_KERNEL_BASE: u64 = 0xC000_0000;

/// Validates requests and encodes them for a pool of triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encoder {
    /// The hart's XLEN.
    pub xlen: Xlen,
    /// The type every trigger of the pool is written with.
    pub kind: MatchType,
    /// Triggers in the pool.
    pub slots: u8,
    /// Modes every trigger supports.
    pub modes: Modes,
    /// log2 of the largest NAPOT block (0: none).
    pub napot_max: u8,
    /// First kernel address (see [`AddressSpace`]).
    pub kernel_base: u64,
}

impl Encoder {
    /// The encoder for discovered triggers.
    pub fn new(t: &Triggers, kernel_base: u64) -> Self {
        Encoder {
            xlen: t.xlen,
            kind: t.kind,
            slots: t.pool.len() as u8,
            modes: t.modes,
            napot_max: t.napot_max,
            kernel_base,
        }
    }

    /// The default kernel base for `xlen`.
    pub const fn default_kernel_base(xlen: Xlen) -> u64 {
        match xlen {
            Xlen::Rv32 => RV32_KERNEL_BASE,
            Xlen::Rv64 => RV64_KERNEL_BASE,
        }
    }

    /// User or kernel space (the region does not wrap).
    pub fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        let last = addr.saturating_add(len.saturating_sub(1));
        if last >= self.kernel_base {
            AddressSpace::Kernel
        } else {
            AddressSpace::User
        }
    }

    /// The modes a request triggers in (see the module documentation).
    pub fn modes_for(&self, attr: &BreakpointAttr) -> Result<Modes, Error> {
        let want = Modes {
            m: !attr.exclude_kernel,
            s: !attr.exclude_kernel,
            u: !attr.exclude_user,
        };
        let m = want.and(self.modes);
        if m.is_empty() {
            Err(Error::UnsupportedAccess)
        } else {
            Ok(m)
        }
    }

    /// The NAPOT blocks covering `[addr, addr + len)`: `(base, log2 size)`,
    /// or the number needed when it is more than the pool has.
    pub fn blocks(&self, addr: u64, len: u64) -> Result<Vec<(u64, u32), MAX_SLOTS>, u64> {
        let mut out = Vec::new();
        let mut cur = u128::from(addr);
        let end = u128::from(addr) + u128::from(len);
        let mut count = 0u64;
        while cur < end {
            let left = end - cur;
            let align = if cur == 0 { 127 } else { cur.trailing_zeros() };
            let fit = 127 - left.leading_zeros();
            let k = align.min(fit).min(u32::from(self.napot_max));
            count += 1;
            if count <= u64::from(self.slots) {
                // Bounded by `slots` ≤ MAX_SLOTS.
                let _ = out.push((cur as u64, k));
            }
            cur += 1u128 << k;
            if count > u64::from(u8::MAX) {
                break;
            }
        }
        if count > u64::from(self.slots) {
            Err(count)
        } else {
            Ok(out)
        }
    }

    /// Validate `attr` (the core's generic rules,
    /// [`BreakpointAttr::validate_request`] with
    /// [`Encoder::address_space`], then the RISC-V ones) and encode it.
    ///
    /// Errors: the generic ones first, in the core's order
    /// ([`Error::NoAccess`], [`Error::ExecWithData`], [`Error::ZeroLength`],
    /// [`Error::AddressOverflow`], [`Error::ExcludesEverything`],
    /// [`Error::ZeroSamplePeriod`], then [`Error::KernelAddress`] for a
    /// user-only request naming a kernel address); then those of
    /// [`Encoder::encode_validated`].
    pub fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<RiscvSlot>, Error> {
        attr.validate_request(None, |a, l| self.address_space(a, l))?;
        self.encode_validated(attr)
    }

    /// [`Encoder::encode`] for a request that already passed the core's
    /// generic rules ([`BreakpointAttr::validate_request`], which the
    /// manager checks before [`hwbp_core::Arch::encode`]): only the RISC-V
    /// rules are checked. Never panics; a request that breaks the generic
    /// rules is refused with some error.
    ///
    /// Errors: [`Error::AddressOverflow`] for a region beyond the XLEN
    /// address space; [`Error::UnsupportedAccess`] when no mode is left (or
    /// the access kind is none of execute, read, write, read-write);
    /// [`Error::Misaligned`] for an odd instruction address;
    /// [`Error::UnsupportedLength`] for an instruction breakpoint of another
    /// length than 1, 2 or 4; [`Error::RangeTooLarge`] when the region
    /// needs more triggers than the pool has.
    pub fn encode_validated(&self, attr: &BreakpointAttr) -> Result<Encoding<RiscvSlot>, Error> {
        let access = attr.access;
        let exec = access == Access::EXEC;
        if !exec && (access.is_empty() || !Access::RW.contains(access)) {
            return Err(Error::UnsupportedAccess);
        }
        let last = attr.last_byte().ok_or(if attr.len == 0 {
            Error::ZeroLength
        } else {
            Error::AddressOverflow
        })?;
        if last > self.xlen.mask() {
            return Err(Error::AddressOverflow);
        }
        let modes = self.modes_for(attr)?;
        let mut pieces = Vec::new();
        if exec {
            if !attr.addr.is_multiple_of(2) {
                return Err(Error::Misaligned {
                    addr: attr.addr,
                    align: 2,
                });
            }
            if !matches!(attr.len, 1 | 2 | 4) {
                return Err(Error::UnsupportedLength { len: attr.len });
            }
            let m = Match {
                kind: self.kind,
                execute: true,
                load: false,
                store: false,
                modes,
                napot: false,
            };
            let _ = pieces.push(Piece {
                slot: RiscvSlot {
                    tdata1: m.tdata1(self.xlen),
                    tdata2: attr.addr,
                },
                hw_addr: attr.addr,
                hw_len: attr.len,
            });
            return Ok(Encoding {
                ty: BpType::Inst,
                pieces,
            });
        }
        let blocks = self
            .blocks(attr.addr, attr.len)
            .map_err(|n| Error::RangeTooLarge {
                weight: n.min(u64::from(u8::MAX)) as u8,
                slots: self.slots,
            })?;
        for (base, k) in blocks {
            let m = Match {
                kind: self.kind,
                execute: false,
                load: access.contains(Access::READ),
                store: access.contains(Access::WRITE),
                modes,
                napot: k > 0,
            };
            let tdata2 = if k == 0 { base } else { napot_tdata2(base, k) };
            let _ = pieces.push(Piece {
                slot: RiscvSlot {
                    tdata1: m.tdata1(self.xlen),
                    tdata2,
                },
                hw_addr: base,
                hw_len: 1 << k,
            });
        }
        Ok(Encoding {
            ty: BpType::Data,
            pieces,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(napot_max: u8, slots: u8) -> Encoder {
        Encoder {
            xlen: Xlen::Rv64,
            kind: MatchType::Mcontrol6,
            slots,
            modes: Modes::ALL,
            napot_max,
            kernel_base: RV64_KERNEL_BASE,
        }
    }

    #[test]
    fn without_napot_every_byte_is_a_trigger() {
        let e = enc(0, 4);
        let w = e
            .encode(&BreakpointAttr::watch(0x1001, 3, Access::WRITE))
            .unwrap();
        let bytes: std::vec::Vec<_> = w.pieces.iter().map(|p| (p.hw_addr, p.hw_len)).collect();
        assert_eq!(bytes, [(0x1001, 1), (0x1002, 1), (0x1003, 1)]);
        assert_eq!(
            e.encode(&BreakpointAttr::watch(0x1000, 8, Access::WRITE)),
            Err(Error::RangeTooLarge {
                weight: 8,
                slots: 4
            })
        );
    }

    #[test]
    fn napot_blocks_are_aligned_and_exact() {
        let e = enc(3, 8);
        let w = e
            .encode(&BreakpointAttr::watch(0x1006, 12, Access::RW))
            .unwrap();
        let blocks: std::vec::Vec<_> = w.pieces.iter().map(|p| (p.hw_addr, p.hw_len)).collect();
        // 0x1006..0x1012: 2 at 0x1006, 8 at 0x1008, 2 at 0x1010.
        assert_eq!(blocks, [(0x1006, 2), (0x1008, 8), (0x1010, 2)]);
        assert_eq!(w.pieces[1].slot.tdata2, 0x100b);
    }

    #[test]
    fn privilege_bits_follow_the_excludes() {
        let e = enc(0, 2);
        let user = e
            .encode(&BreakpointAttr::exec(0x1000).exclude_kernel(true))
            .unwrap();
        assert_eq!(
            Modes::of(user.pieces[0].slot.tdata1),
            Modes {
                m: false,
                s: false,
                u: true
            }
        );
        let kernel = e
            .encode(&BreakpointAttr::exec(0x1000).exclude_user(true))
            .unwrap();
        assert_eq!(
            Modes::of(kernel.pieces[0].slot.tdata1),
            Modes {
                m: true,
                s: true,
                u: false
            }
        );
        // A hart with M and U only: a kernel request is M only; with no U,
        // a user-only request has no mode left.
        let mu = Encoder {
            modes: Modes {
                m: true,
                s: false,
                u: false,
            },
            ..e
        };
        assert_eq!(
            mu.encode(&BreakpointAttr::exec(0x1000).exclude_kernel(true)),
            Err(Error::UnsupportedAccess)
        );
    }

    #[test]
    fn bad_input() {
        let e = enc(0, 2);
        assert_eq!(
            e.encode(&BreakpointAttr::exec(0x1001)),
            Err(Error::Misaligned {
                addr: 0x1001,
                align: 2
            })
        );
        assert_eq!(
            e.encode(&BreakpointAttr::watch(0x1000, 3, Access::EXEC)),
            Err(Error::UnsupportedLength { len: 3 })
        );
        let rv32 = Encoder {
            xlen: Xlen::Rv32,
            kernel_base: RV32_KERNEL_BASE,
            ..e
        };
        assert_eq!(
            rv32.encode(&BreakpointAttr::watch(0x1_0000_0000, 1, Access::READ)),
            Err(Error::AddressOverflow)
        );
        assert_eq!(
            rv32.encode(&BreakpointAttr::watch(0xC000_0000, 1, Access::READ).user_only()),
            Err(Error::KernelAddress)
        );
    }
}
