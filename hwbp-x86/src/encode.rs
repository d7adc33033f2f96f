//! Validation and encoding of generic requests into DR0–DR3/DR7 slots.
//!
//! [`Encoder`] is pure: it touches no register and runs anywhere, so the same
//! rules serve the ring-0 backend ([`crate::X86Backend`]), a ptrace implementation
//! (`hwbp-linux`, the host example) and host tests.
//!
//! # Rules (Intel SDM vol. 3, §18.2.4–18.2.5)
//!
//! | request                                   | result                          |
//! |-------------------------------------------|---------------------------------|
//! | read-only watch                           | [`Error::UnsupportedAccess`]: x86 only has write and read-write |
//! | execute with length ≠ 1                   | [`Error::UnsupportedLength`]: LEN must be `00` |
//! | data, [`RegionPolicy::Single`], length not 1/2/4/8 (8 only in 64-bit mode) | [`Error::UnsupportedLength`] |
//! | data, [`RegionPolicy::Single`], address not a multiple of the length | [`Error::Misaligned`] |
//! | data, [`RegionPolicy::Split`], more pieces than the 4 slots | [`Error::RangeTooLarge`] |
//! | region beyond the address width (32-bit mode: 4 GiB) or wrapping | [`Error::AddressOverflow`] |
//! | `exclude_kernel` and any byte in kernel space ([`Encoder::address_space`]) | [`Error::KernelAddress`] (the core's rule) |
//! | empty access, execute mixed with data, length 0, … | the core's generic rules ([`BreakpointAttr::validate_request`]), checked first |
//!
//! Kernel space is everything at or above [`Encoder::user_limit`]: by default
//! the start of the upper canonical half, `0x0000_8000_0000_0000`, in 64-bit
//! mode (non-canonical addresses count as kernel: no user access can reach
//! them), and `0xC000_0000` in 32-bit mode, Linux's default 3 GiB/1 GiB
//! split (`PAGE_OFFSET`). Linux itself refuses from `TASK_SIZE_MAX`, one page
//! lower in 64-bit mode; set the limit with [`Encoder::with_user_limit`] to
//! match another kernel's layout (or 5-level paging, `1 << 56`).
//!
//! The hardware does not filter by privilege level: `exclude_user` and
//! `exclude_kernel` select the address check above but the slot fires in
//! every ring (Linux's x86 backend behaves the same).

use hwbp_core::{Access, AddressSpace, BpType, BreakpointAttr, Encoding, Error, Piece};

use crate::dr7::{Condition, Size, SlotEnable};
use crate::slot::DrSlot;
use hwbp_core::region::{weight, Pieces};

/// Number of address slots (DR0–DR3).
pub const SLOTS: u8 = 4;

/// The processor mode the breakpoints are used in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// 32-bit (protected) mode: 32-bit addresses, no 8-byte length.
    Bits32,
    /// 64-bit (IA-32e) mode: 64-bit addresses, 8-byte length available.
    Bits64,
}

impl Mode {
    /// The mode this crate is compiled for (`Bits64` on hosts that are not x86).
    pub const NATIVE: Mode = if cfg!(target_arch = "x86") {
        Mode::Bits32
    } else {
        Mode::Bits64
    };

    /// Largest length one slot can watch.
    pub const fn max_len(self) -> u64 {
        match self {
            Mode::Bits32 => 4,
            Mode::Bits64 => 8,
        }
    }

    /// Highest linear address.
    pub const fn max_addr(self) -> u64 {
        match self {
            Mode::Bits32 => u32::MAX as u64,
            Mode::Bits64 => u64::MAX,
        }
    }

    /// Whether a slot may use this length field in this mode.
    pub const fn allows(self, size: Size) -> bool {
        !matches!((self, size), (Mode::Bits32, Size::Eight))
    }
}

/// How data regions that one slot cannot watch are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegionPolicy {
    /// Cover the region exactly with the fewest naturally aligned 1/2/4/8-byte
    /// pieces, one slot each; refuse it when it needs more than the 4 slots.
    Split,
    /// One slot only: the length must be 1, 2, 4 or 8 and the address a multiple
    /// of it (Linux `perf_event_open` and ptrace semantics).
    Single,
}

/// Validates generic requests and encodes them into debug-register slots.
///
/// ```
/// use hwbp_core::{Access, BreakpointAttr, Error};
/// use hwbp_x86::{Encoder, Mode};
///
/// let enc = Encoder::new(Mode::Bits64);
/// // 6 bytes at 0x1003 need three slots: 1 byte at 0x1003, 4 at 0x1004, 1 at 0x1008.
/// let e = enc.encode(&BreakpointAttr::watch(0x1003, 6, Access::WRITE)).unwrap();
/// assert_eq!(e.weight(), 3);
/// assert_eq!(
///     enc.encode(&BreakpointAttr::watch(0x1000, 4, Access::READ)),
///     Err(Error::UnsupportedAccess)
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encoder {
    mode: Mode,
    io_breakpoints: bool,
    policy: RegionPolicy,
    user_limit: u64,
    enable: SlotEnable,
}

impl Encoder {
    /// An encoder for `mode` that splits regions, refuses I/O breakpoints
    /// (CR4.DE clear), uses global enables and the default user/kernel split.
    pub const fn new(mode: Mode) -> Self {
        Encoder {
            mode,
            io_breakpoints: false,
            policy: RegionPolicy::Split,
            user_limit: match mode {
                Mode::Bits32 => 0xc000_0000,
                Mode::Bits64 => 1 << 47,
            },
            enable: SlotEnable::GLOBAL,
        }
    }

    /// Declare whether CR4.DE is set, which makes R/W = `10` mean I/O
    /// breakpoints (otherwise that encoding is undefined and refused in
    /// register images).
    #[must_use]
    pub const fn with_io_breakpoints(mut self, cr4_de: bool) -> Self {
        self.io_breakpoints = cr4_de;
        self
    }

    /// Choose how regions are handled.
    #[must_use]
    pub const fn with_policy(mut self, policy: RegionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Set the first address of kernel space.
    #[must_use]
    pub const fn with_user_limit(mut self, limit: u64) -> Self {
        self.user_limit = limit;
        self
    }

    /// Choose the enable bits the encoded slots carry (global by default, as
    /// Linux does; local enables are cleared by hardware task switches).
    /// An empty set is replaced by global.
    #[must_use]
    pub const fn with_enable(mut self, enable: SlotEnable) -> Self {
        self.enable = if enable.is_empty() {
            SlotEnable::GLOBAL
        } else {
            enable
        };
        self
    }

    /// The processor mode.
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether I/O breakpoints are allowed (CR4.DE).
    pub const fn io_breakpoints(&self) -> bool {
        self.io_breakpoints
    }

    /// The region policy.
    pub const fn policy(&self) -> RegionPolicy {
        self.policy
    }

    /// The first address of kernel space.
    pub const fn user_limit(&self) -> u64 {
        self.user_limit
    }

    /// The enable bits of encoded slots.
    pub const fn enable(&self) -> SlotEnable {
        self.enable
    }

    /// Classify `len` bytes at `addr`: user space only if every byte lies below
    /// [`Encoder::user_limit`] (and within the address width).
    pub fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        let last = addr.saturating_add(len.saturating_sub(1));
        if addr < self.user_limit && last < self.user_limit && last <= self.mode.max_addr() {
            AddressSpace::User
        } else {
            AddressSpace::Kernel
        }
    }

    /// The x86 rules that do not depend on the region shape. The generic
    /// rules are the core's ([`BreakpointAttr::validate_request`]).
    fn check_arch(&self, attr: &BreakpointAttr) -> Result<(), Error> {
        if attr.access == Access::READ {
            // SDM §18.2.4: R/W offers execute, write, I/O and read-write only.
            return Err(Error::UnsupportedAccess);
        }
        match attr.last_byte() {
            Some(last) if last <= self.mode.max_addr() => {}
            _ => return Err(Error::AddressOverflow),
        }
        if attr.access == Access::EXEC && attr.len != 1 {
            // SDM §18.2.5: instruction breakpoints must use LEN = 00.
            return Err(Error::UnsupportedLength { len: attr.len });
        }
        Ok(())
    }

    /// The core's generic rules, with this encoder's address layout.
    fn check_generic(&self, attr: &BreakpointAttr) -> Result<(), Error> {
        attr.validate_request(None, |a, l| self.address_space(a, l))
    }

    fn condition(access: Access) -> Condition {
        if access == Access::EXEC {
            Condition::Execute
        } else if access == Access::WRITE {
            Condition::Write
        } else {
            Condition::ReadWrite
        }
    }

    /// Validate `attr` and encode it for exactly one slot, whatever the policy:
    /// the length must be one the LEN field can express in this mode, and the
    /// address naturally aligned.
    pub fn encode_slot(&self, attr: &BreakpointAttr) -> Result<DrSlot, Error> {
        self.check_generic(attr)?;
        self.encode_slot_validated(attr)
    }

    fn encode_slot_validated(&self, attr: &BreakpointAttr) -> Result<DrSlot, Error> {
        self.check_arch(attr)?;
        let size = match Size::from_bytes(attr.len) {
            Some(s) if self.mode.allows(s) => s,
            _ => return Err(Error::UnsupportedLength { len: attr.len }),
        };
        if attr.addr.checked_rem(attr.len) != Some(0) {
            return Err(Error::Misaligned {
                addr: attr.addr,
                align: attr.len,
            });
        }
        Ok(DrSlot {
            addr: attr.addr,
            condition: Self::condition(attr.access),
            size,
            enable: self.enable,
        })
    }

    /// Validate `attr` (the core's generic rules, then the x86 ones) and
    /// encode it into one slot per piece (the weight).
    pub fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<DrSlot>, Error> {
        self.check_generic(attr)?;
        self.encode_validated(attr)
    }

    /// [`Encoder::encode`] for a request that already passed the core's
    /// generic rules ([`BreakpointAttr::validate_request`], which the manager
    /// checks before [`hwbp_core::Arch::encode`]): only the x86 rules are
    /// checked. Never panics; a request that breaks the generic rules is
    /// refused with some error.
    pub fn encode_validated(&self, attr: &BreakpointAttr) -> Result<Encoding<DrSlot>, Error> {
        self.check_arch(attr)?;
        let mut pieces = heapless::Vec::new();
        let ty = attr.bp_type();
        if ty == BpType::Inst || self.policy == RegionPolicy::Single {
            let slot = self.encode_slot_validated(attr)?;
            // Cannot fail: the vector holds 16.
            let _ = pieces.push(Piece {
                slot,
                hw_addr: attr.addr,
                hw_len: attr.len,
            });
            return Ok(Encoding { ty, pieces });
        }
        let max = self.mode.max_len();
        let w = weight(attr.addr, attr.len, max);
        if w > u64::from(SLOTS) {
            return Err(Error::RangeTooLarge {
                weight: u8::try_from(w).unwrap_or(u8::MAX),
                slots: SLOTS,
            });
        }
        let condition = Self::condition(attr.access);
        for (addr, len) in Pieces::new(attr.addr, attr.len, max) {
            let Some(size) = Size::from_bytes(len) else {
                // Pieces only yields 1, 2, 4 or 8.
                return Err(Error::UnsupportedLength { len });
            };
            let slot = DrSlot {
                addr,
                condition,
                size,
                enable: self.enable,
            };
            if pieces
                .push(Piece {
                    slot,
                    hw_addr: addr,
                    hw_len: len,
                })
                .is_err()
            {
                return Err(Error::RangeTooLarge {
                    weight: u8::try_from(w).unwrap_or(u8::MAX),
                    slots: SLOTS,
                });
            }
        }
        Ok(Encoding { ty, pieces })
    }
}

impl Default for Encoder {
    /// [`Encoder::new`] for the mode this crate is compiled for.
    fn default() -> Self {
        Encoder::new(Mode::NATIVE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dr6::Dr6;
    use crate::dr7::Dr7;
    use crate::model::{AccessKind, CpuAccess, Model};
    use proptest::prelude::*;

    /// Put an encoding's pieces into slots 0.. and return the registers.
    fn load(e: &Encoding<DrSlot>) -> ([u64; 4], Dr7) {
        let mut addr = [0; 4];
        let mut dr7 = Dr7::from_raw(Dr7::RESERVED_ONE);
        for (n, p) in e.pieces.iter().enumerate() {
            addr[n] = p.slot.addr;
            p.slot.apply(&mut dr7, n);
        }
        dr7.update_exact();
        (addr, dr7)
    }

    fn fires(mode: Mode, e: &Encoding<DrSlot>, a: CpuAccess) -> bool {
        let (addr, dr7) = load(e);
        Model::new(mode).access(&addr, dr7, &a).is_some()
    }

    /// Check by meaning: every byte of the region triggers on the accesses the
    /// request names and on nothing else; the bytes around it never trigger.
    fn check_region(mode: Mode, attr: &BreakpointAttr) {
        let e = Encoder::new(mode).encode(attr).unwrap();
        let reads = attr.access.contains(Access::READ);
        for off in 0..attr.len {
            let a = attr.addr + off;
            assert!(
                fires(mode, &e, CpuAccess::write(a, 1)),
                "write {a:#x} of {attr:?}"
            );
            assert_eq!(fires(mode, &e, CpuAccess::read(a, 1)), reads, "read {a:#x}");
            assert!(!fires(mode, &e, CpuAccess::fetch(a)), "fetch {a:#x}");
        }
        if let Some(before) = attr.addr.checked_sub(1) {
            assert!(
                !fires(mode, &e, CpuAccess::write(before, 1)),
                "byte before {attr:?}"
            );
        }
        if let Some(after) = attr.addr.checked_add(attr.len) {
            assert!(
                !fires(mode, &e, CpuAccess::write(after, 1)),
                "byte after {attr:?}"
            );
        }
        // A wide access straddling the start overlaps the region.
        if attr.addr >= 4 {
            assert!(fires(mode, &e, CpuAccess::write(attr.addr - 3, 4)));
        }
    }

    #[test]
    fn every_single_slot_encoding_against_the_model() {
        for mode in [Mode::Bits32, Mode::Bits64] {
            for len in [1, 2, 4, 8] {
                if len > mode.max_len() {
                    continue;
                }
                for access in [Access::WRITE, Access::RW] {
                    let attr = BreakpointAttr::watch(0x10_0000 + 8 * len, len, access);
                    let e = Encoder::new(mode).encode(&attr).unwrap();
                    assert_eq!(e.weight(), 1, "{attr:?}");
                    assert_eq!(e.ty, BpType::Data);
                    check_region(mode, &attr);
                }
            }
            // Execute: only a fetch of exactly that address, not data accesses,
            // not a fetch one byte off, not with RF set.
            let x = BreakpointAttr::exec(0x40_1003);
            let e = Encoder::new(mode).encode(&x).unwrap();
            assert_eq!((e.weight(), e.ty), (1, BpType::Inst));
            assert!(fires(mode, &e, CpuAccess::fetch(0x40_1003)));
            assert!(!fires(mode, &e, CpuAccess::fetch(0x40_1002)));
            assert!(!fires(mode, &e, CpuAccess::fetch(0x40_1004)));
            assert!(!fires(mode, &e, CpuAccess::read(0x40_1003, 1)));
            assert!(!fires(mode, &e, CpuAccess::write(0x40_1003, 1)));
            let rf = CpuAccess {
                kind: AccessKind::Fetch { resume_flag: true },
                ..CpuAccess::fetch(0x40_1003)
            };
            assert!(!fires(mode, &e, rf));
        }
    }

    #[test]
    fn split_regions_against_the_model() {
        // (addr, len, mode, expected weight)
        let table: &[(u64, u64, Mode, u8)] = &[
            (0x1001, 2, Mode::Bits64, 2),
            (0x1001, 7, Mode::Bits64, 3),
            (0x1003, 6, Mode::Bits64, 3),
            (0x1000, 16, Mode::Bits64, 2),
            (0x1000, 32, Mode::Bits64, 4),
            (0x1004, 12, Mode::Bits64, 2),
            (0x1000, 8, Mode::Bits32, 2),
            (0x1000, 16, Mode::Bits32, 4),
            (0x1002, 8, Mode::Bits32, 3),
            // Cross-page.
            (0x1ffe, 4, Mode::Bits64, 2),
            (0x1ffc, 8, Mode::Bits64, 2),
            (0x1fff, 2, Mode::Bits32, 2),
            (0x7fff_ffff_effc, 8, Mode::Bits64, 2),
        ];
        for &(addr, len, mode, w) in table {
            for access in [Access::WRITE, Access::RW] {
                let attr = BreakpointAttr::watch(addr, len, access);
                let e = Encoder::new(mode).encode(&attr).unwrap();
                assert_eq!(e.weight(), w, "{attr:?} in {mode:?}");
                for p in &e.pieces {
                    assert_eq!((p.hw_addr, p.hw_len), (p.slot.addr, p.slot.size.bytes()));
                    assert_eq!(p.hw_addr % p.hw_len, 0);
                }
                check_region(mode, &attr);
            }
        }
    }

    #[test]
    fn validation_errors() {
        let e64 = Encoder::new(Mode::Bits64);
        let e32 = Encoder::new(Mode::Bits32);
        let single = e64.with_policy(RegionPolicy::Single);
        let w = |addr, len| BreakpointAttr::watch(addr, len, Access::WRITE);
        // Read-only watch is impossible on x86.
        assert_eq!(
            e64.encode(&BreakpointAttr::watch(0x1000, 4, Access::READ)),
            Err(Error::UnsupportedAccess)
        );
        // Instruction breakpoints are length 1.
        for len in [2, 4, 8] {
            assert_eq!(
                e64.encode(&BreakpointAttr::exec(0x1000).len(len)),
                Err(Error::UnsupportedLength { len })
            );
        }
        // Single-slot policy: natural alignment, lengths the LEN field has.
        assert_eq!(
            single.encode(&w(0x1002, 4)),
            Err(Error::Misaligned {
                addr: 0x1002,
                align: 4
            })
        );
        assert_eq!(
            single.encode(&w(0x1004, 8)),
            Err(Error::Misaligned {
                addr: 0x1004,
                align: 8
            })
        );
        assert_eq!(
            single.encode(&w(0x1001, 2)),
            Err(Error::Misaligned {
                addr: 0x1001,
                align: 2
            })
        );
        assert_eq!(
            single.encode(&w(0x1000, 3)),
            Err(Error::UnsupportedLength { len: 3 })
        );
        assert_eq!(
            single.encode(&w(0x1000, 16)),
            Err(Error::UnsupportedLength { len: 16 })
        );
        assert_eq!(
            e32.with_policy(RegionPolicy::Single).encode(&w(0x1000, 8)),
            Err(Error::UnsupportedLength { len: 8 })
        );
        assert!(single.encode(&w(0x1008, 8)).is_ok());
        // Splitting: more pieces than the 4 slots.
        assert_eq!(
            e64.encode(&w(0x1000, 40)),
            Err(Error::RangeTooLarge {
                weight: 5,
                slots: 4
            })
        );
        assert_eq!(
            e64.encode(&w(0x1001, 31)),
            Err(Error::RangeTooLarge {
                weight: 6,
                slots: 4
            })
        );
        assert_eq!(
            e32.encode(&w(0x1000, 20)),
            Err(Error::RangeTooLarge {
                weight: 5,
                slots: 4
            })
        );
        assert_eq!(
            e64.encode(&w(0, 1 << 40)),
            Err(Error::RangeTooLarge {
                weight: u8::MAX,
                slots: 4
            })
        );
        // Address width and wrap.
        assert_eq!(e64.encode(&w(u64::MAX - 2, 4)), Err(Error::AddressOverflow));
        assert_eq!(e32.encode(&w(0xffff_fffe, 4)), Err(Error::AddressOverflow));
        assert_eq!(
            e32.encode(&w(0x1_0000_0000, 1)),
            Err(Error::AddressOverflow)
        );
        assert!(e32.encode(&w(0xffff_fffc, 4)).is_ok());
        // Kernel addresses for user requests: x86_64 canonical halves.
        let user = |addr, len| w(addr, len).user_only();
        assert!(e64.encode(&user(0x7fff_ffff_fff8, 8)).is_ok());
        assert_eq!(
            e64.encode(&user(0x7fff_ffff_fffc, 8)),
            Err(Error::KernelAddress)
        );
        assert_eq!(
            e64.encode(&user(0xffff_8000_0000_0000, 8)),
            Err(Error::KernelAddress)
        );
        // Non-canonical addresses count as kernel.
        assert_eq!(
            e64.encode(&user(0x0000_8000_0000_0000, 1)),
            Err(Error::KernelAddress)
        );
        assert_eq!(
            e64.encode(&BreakpointAttr::exec(0xffff_ffff_8100_0000).user_only()),
            Err(Error::KernelAddress)
        );
        // Kernel requests may name kernel addresses.
        assert!(e64.encode(&w(0xffff_ffff_8100_0000, 8)).is_ok());
        // 32-bit: the Linux 3G/1G split by default, configurable.
        assert!(e32.encode(&user(0xbfff_fffc, 4)).is_ok());
        assert_eq!(e32.encode(&user(0xc000_0000, 4)), Err(Error::KernelAddress));
        assert!(e32
            .with_user_limit(1 << 32)
            .encode(&user(0xc000_0000, 4))
            .is_ok());
        // Generic rules are also enforced, so callers outside the core are safe.
        assert_eq!(e64.encode(&w(0x1000, 0)), Err(Error::ZeroLength));
        assert_eq!(
            e64.encode(&BreakpointAttr::watch(0x1000, 1, Access::empty())),
            Err(Error::NoAccess)
        );
        assert_eq!(
            e64.encode(&BreakpointAttr::watch(
                0x1000,
                1,
                Access::EXEC | Access::WRITE
            )),
            Err(Error::ExecWithData)
        );
    }

    #[test]
    fn address_space_classification() {
        let e64 = Encoder::new(Mode::Bits64);
        assert_eq!(e64.address_space(0, 1), AddressSpace::User);
        assert_eq!(e64.address_space(0x7fff_ffff_ffff, 1), AddressSpace::User);
        assert_eq!(e64.address_space(0x7fff_ffff_ffff, 2), AddressSpace::Kernel);
        assert_eq!(e64.address_space(u64::MAX, 1), AddressSpace::Kernel);
        let e32 = Encoder::new(Mode::Bits32);
        assert_eq!(e32.address_space(0xbfff_ffff, 1), AddressSpace::User);
        assert_eq!(e32.address_space(0xc000_0000, 1), AddressSpace::Kernel);
    }

    #[test]
    fn enable_bits_follow_the_encoder() {
        let e = Encoder::new(Mode::Bits64).with_enable(SlotEnable::LOCAL);
        let enc = e
            .encode(&BreakpointAttr::watch(0x1000, 4, Access::WRITE))
            .unwrap();
        assert_eq!(enc.pieces[0].slot.enable, SlotEnable::LOCAL);
        let (_, dr7) = load(&enc);
        assert_eq!(dr7.raw() & (Dr7::LE | Dr7::GE), Dr7::LE);
        assert_eq!(
            Encoder::new(Mode::Bits64)
                .with_enable(SlotEnable::empty())
                .enable(),
            SlotEnable::GLOBAL
        );
    }

    fn any_attr() -> impl Strategy<Value = BreakpointAttr> {
        (
            prop_oneof![
                any::<u64>(),
                0u64..0x1_0000,
                (0u64..64).prop_map(|s| 1u64 << s)
            ],
            prop_oneof![0u64..70, any::<u64>()],
            0u8..8,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(addr, len, acc, xk, xu)| {
                BreakpointAttr::watch(addr, len, Access::WRITE)
                    .access(Access::from_bits_retain(acc))
                    .exclude_kernel(xk)
                    .exclude_user(xu)
            })
    }

    proptest! {
        /// The encoder never panics; whatever it accepts fires, by the model,
        /// exactly on the requested bytes' edges.
        #[test]
        fn encoder_total_and_sound(attr in any_attr(), big in any::<bool>(), split in any::<bool>()) {
            let mode = if big { Mode::Bits64 } else { Mode::Bits32 };
            let policy = if split { RegionPolicy::Split } else { RegionPolicy::Single };
            let enc = Encoder::new(mode).with_policy(policy);
            if let Ok(e) = enc.encode(&attr) {
                prop_assert!(e.weight() >= 1 && e.weight() <= SLOTS);
                let mut next = attr.addr;
                for p in &e.pieces {
                    prop_assert_eq!(p.hw_addr, next);
                    next = next.wrapping_add(p.hw_len);
                }
                prop_assert_eq!(next, attr.addr.wrapping_add(attr.len));
                let m = Model::new(mode);
                let (addr, dr7) = load(&e);
                let probe = if attr.access == Access::EXEC {
                    CpuAccess::fetch(attr.addr)
                } else {
                    CpuAccess::write(attr.addr + attr.len - 1, 1)
                };
                prop_assert!(m.access(&addr, dr7, &probe).is_some());
                prop_assert_eq!(m.access(&addr, dr7, &probe).map(|d| d & !Dr6::TRAP_BITS), Some(Dr6::empty()));
                if attr.access != Access::EXEC {
                    // The first byte fires, the neighbours do not.
                    prop_assert!(m.access(&addr, dr7, &CpuAccess::write(attr.addr, 1)).is_some());
                    if let Some(before) = attr.addr.checked_sub(1) {
                        prop_assert!(m.access(&addr, dr7, &CpuAccess::write(before, 1)).is_none());
                    }
                    if let Some(after) = attr.addr.checked_add(attr.len).filter(|&a| a <= mode.max_addr()) {
                        prop_assert!(m.access(&addr, dr7, &CpuAccess::write(after, 1)).is_none());
                    }
                    prop_assert_eq!(
                        m.access(&addr, dr7, &CpuAccess::read(attr.addr, 1)).is_some(),
                        attr.access.contains(Access::READ)
                    );
                }
                if attr.exclude_kernel {
                    prop_assert_eq!(enc.address_space(attr.addr, attr.len), AddressSpace::User);
                }
            }
        }
    }
}
