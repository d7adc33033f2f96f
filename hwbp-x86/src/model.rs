//! A software model of the x86 debug hardware, for host tests.
//!
//! Given DR0–DR3, DR7 and one access, [`Model`] says which B bits DR6 would
//! show and whether a #DB is raised. What it models (Intel SDM vol. 3,
//! §18.2.4–18.2.5, §18.3.1):
//!
//! - A data slot (R/W `01` write, `11` read or write) watches the LEN bytes at
//!   DRn with its low address bits masked off (`DRn & !(len - 1)`); an access of
//!   any size that overlaps one of those bytes meets the condition. `01` ignores
//!   reads; neither ignores the kind of instruction doing the access.
//! - An execute slot (R/W `00`) meets its condition when an instruction whose
//!   *first byte* is at DRn is fetched, unless RFLAGS.RF is set. LEN must be
//!   `00`; other LEN values are undefined and modelled as never matching.
//! - R/W `10` watches I/O ports (overlap, like data) only when CR4.DE is set;
//!   otherwise it is undefined and modelled as never matching. LEN `10` (8
//!   bytes) in 32-bit mode is undefined and modelled as never matching.
//! - A #DB is raised only if an *enabled* slot (Ln or Gn) meets its condition.
//!   The SDM says B0–B3 "may or may not be set" for slots that are not enabled
//!   but whose condition is met; QEMU's TCG sets them for instruction slots
//!   (`check_hw_breakpoints` in `target/i386/tcg/bpt_helper.c`). The model sets
//!   them when [`Model::report_disabled`] is true (the default, the harsher
//!   case), so decoders are tested against it; a decoder must only trust the
//!   bits of enabled slots.
//! - Addresses are compared modulo 2^32 in 32-bit mode.

pub mod regs;

pub use regs::{ModelRegs, RegWrite};

use crate::dr6::Dr6;
use crate::dr7::{Condition, Dr7, Size};
use crate::encode::Mode;
use crate::slot::DrSlot;

/// What a CPU access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AccessKind {
    /// A data load.
    Read,
    /// A data store.
    Write,
    /// Fetch of the instruction starting at the address.
    Fetch {
        /// RFLAGS.RF is set: instruction breakpoints are suppressed for this
        /// instruction.
        resume_flag: bool,
    },
    /// An I/O port read (`in`).
    IoRead,
    /// An I/O port write (`out`).
    IoWrite,
}

/// One access by the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CpuAccess {
    /// Linear address (or I/O port).
    pub addr: u64,
    /// Bytes accessed (the instruction length for a fetch; only its first byte
    /// matters).
    pub size: u64,
    /// What the access does.
    pub kind: AccessKind,
}

impl CpuAccess {
    /// A data load of `size` bytes.
    pub const fn read(addr: u64, size: u64) -> Self {
        CpuAccess {
            addr,
            size,
            kind: AccessKind::Read,
        }
    }

    /// A data store of `size` bytes.
    pub const fn write(addr: u64, size: u64) -> Self {
        CpuAccess {
            addr,
            size,
            kind: AccessKind::Write,
        }
    }

    /// Execution of the instruction at `addr` with RF clear.
    pub const fn fetch(addr: u64) -> Self {
        CpuAccess {
            addr,
            size: 1,
            kind: AccessKind::Fetch { resume_flag: false },
        }
    }
}

/// The debug hardware of one CPU, as far as breakpoint matching goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Model {
    /// Processor mode (address width, whether LEN `10` is defined).
    pub mode: Mode,
    /// CR4.DE: R/W `10` means I/O breakpoints.
    pub cr4_de: bool,
    /// Set B bits of slots that are not enabled but whose condition is met,
    /// whenever an enabled slot raises the #DB.
    pub report_disabled: bool,
}

impl Model {
    /// A model for `mode` with CR4.DE clear and disabled-slot reporting on.
    pub const fn new(mode: Mode) -> Self {
        Model {
            mode,
            cr4_de: false,
            report_disabled: true,
        }
    }

    fn mask_addr(&self, a: u64) -> u64 {
        match self.mode {
            Mode::Bits32 => a & 0xffff_ffff,
            Mode::Bits64 => a,
        }
    }

    /// Whether `slot`'s condition is met by `access`, ignoring its enable bits.
    pub fn condition_met(&self, slot: &DrSlot, access: &CpuAccess) -> bool {
        if access.size == 0 {
            return false;
        }
        let overlaps = |len: u64| {
            let base = self.mask_addr(slot.addr) & !(len - 1);
            let last = base.saturating_add(len - 1);
            let a = self.mask_addr(access.addr);
            let a_last = a.saturating_add(access.size - 1);
            a <= last && base <= a_last
        };
        if slot.size == Size::Eight && !self.mode.allows(Size::Eight) {
            return false;
        }
        let len = slot.size.bytes();
        match (slot.condition, access.kind) {
            (Condition::Execute, AccessKind::Fetch { resume_flag }) => {
                slot.size == Size::One
                    && !resume_flag
                    && self.mask_addr(slot.addr) == self.mask_addr(access.addr)
            }
            (Condition::Write, AccessKind::Write) => overlaps(len),
            (Condition::ReadWrite, AccessKind::Read | AccessKind::Write) => overlaps(len),
            (Condition::Io, AccessKind::IoRead | AccessKind::IoWrite) => {
                self.cr4_de && overlaps(len)
            }
            _ => false,
        }
    }

    /// Run `access` against the registers: `None` if no #DB is raised, else the
    /// DR6 B bits the hardware reports for it.
    pub fn access(&self, addr: &[u64; 4], dr7: Dr7, access: &CpuAccess) -> Option<Dr6> {
        let mut enabled_hit = false;
        let mut bits = Dr6::empty();
        for (n, &a) in addr.iter().enumerate() {
            let slot = DrSlot::from_regs(a, dr7, n);
            if !self.condition_met(&slot, access) {
                continue;
            }
            if slot.is_enabled() {
                enabled_hit = true;
                bits |= Dr6::slot(n);
            } else if self.report_disabled {
                bits |= Dr6::slot(n);
            }
        }
        enabled_hit.then_some(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dr7::SlotEnable;

    fn regs(slots: &[(usize, DrSlot)]) -> ([u64; 4], Dr7) {
        let mut addr = [0; 4];
        let mut dr7 = Dr7::from_raw(Dr7::RESERVED_ONE);
        for &(n, s) in slots {
            addr[n] = s.addr;
            s.apply(&mut dr7, n);
        }
        (addr, dr7)
    }

    fn slot(addr: u64, condition: Condition, size: Size) -> DrSlot {
        DrSlot {
            addr,
            condition,
            size,
            enable: SlotEnable::GLOBAL,
        }
    }

    #[test]
    fn len_masks_low_address_bits() {
        // DR0 = 0x1003 with LEN 4 watches 0x1000..0x1004 (SDM §18.2.5).
        let (a, d) = regs(&[(0, slot(0x1003, Condition::Write, Size::Four))]);
        let m = Model::new(Mode::Bits64);
        assert_eq!(m.access(&a, d, &CpuAccess::write(0x1000, 1)), Some(Dr6::B0));
        assert_eq!(m.access(&a, d, &CpuAccess::write(0x1004, 1)), None);
        // An 8-byte store starting below still overlaps.
        assert_eq!(m.access(&a, d, &CpuAccess::write(0xffc, 8)), Some(Dr6::B0));
        assert_eq!(m.access(&a, d, &CpuAccess::write(0xff8, 8)), None);
    }

    #[test]
    fn write_slot_ignores_reads_rw_slot_does_not() {
        let (a, d) = regs(&[
            (0, slot(0x2000, Condition::Write, Size::Eight)),
            (1, slot(0x2000, Condition::ReadWrite, Size::Eight)),
        ]);
        let m = Model::new(Mode::Bits64);
        assert_eq!(m.access(&a, d, &CpuAccess::read(0x2004, 4)), Some(Dr6::B1));
        assert_eq!(
            m.access(&a, d, &CpuAccess::write(0x2007, 1)),
            Some(Dr6::B0 | Dr6::B1)
        );
        // A fetch of the watched bytes is not a data access.
        assert_eq!(m.access(&a, d, &CpuAccess::fetch(0x2000)), None);
    }

    #[test]
    fn execute_matches_first_byte_only_and_honours_rf() {
        let (a, d) = regs(&[(2, slot(0x400000, Condition::Execute, Size::One))]);
        let m = Model::new(Mode::Bits64);
        assert_eq!(m.access(&a, d, &CpuAccess::fetch(0x400000)), Some(Dr6::B2));
        // An instruction starting one byte earlier covers 0x400000 but does not
        // start there.
        let long = CpuAccess {
            addr: 0x3fffff,
            size: 5,
            kind: AccessKind::Fetch { resume_flag: false },
        };
        assert_eq!(m.access(&a, d, &long), None);
        let rf = CpuAccess {
            kind: AccessKind::Fetch { resume_flag: true },
            ..CpuAccess::fetch(0x400000)
        };
        assert_eq!(m.access(&a, d, &rf), None);
        // Data accesses to the instruction do not match.
        assert_eq!(m.access(&a, d, &CpuAccess::read(0x400000, 1)), None);
    }

    #[test]
    fn disabled_slots_may_report_but_never_raise() {
        let mut off = slot(0x3000, Condition::ReadWrite, Size::Four);
        off.enable = SlotEnable::empty();
        let (a, d) = regs(&[(0, off), (3, slot(0x3000, Condition::Write, Size::One))]);
        let mut m = Model::new(Mode::Bits64);
        // Only the disabled slot matches a read: no #DB at all.
        assert_eq!(m.access(&a, d, &CpuAccess::read(0x3000, 1)), None);
        // The enabled slot raises the #DB; the disabled one's bit comes along.
        assert_eq!(
            m.access(&a, d, &CpuAccess::write(0x3000, 1)),
            Some(Dr6::B0 | Dr6::B3)
        );
        m.report_disabled = false;
        assert_eq!(m.access(&a, d, &CpuAccess::write(0x3000, 1)), Some(Dr6::B3));
    }

    #[test]
    fn undefined_encodings_never_match() {
        let m = Model::new(Mode::Bits32);
        let (a, d) = regs(&[(0, slot(0x1000, Condition::Write, Size::Eight))]);
        assert_eq!(m.access(&a, d, &CpuAccess::write(0x1000, 1)), None);
        let (a, d) = regs(&[(0, slot(0x1000, Condition::Execute, Size::Two))]);
        assert_eq!(m.access(&a, d, &CpuAccess::fetch(0x1000)), None);
        let io = CpuAccess {
            addr: 0x3f8,
            size: 1,
            kind: AccessKind::IoWrite,
        };
        let (a, d) = regs(&[(1, slot(0x3f8, Condition::Io, Size::One))]);
        assert_eq!(m.access(&a, d, &io), None);
        let de = Model { cr4_de: true, ..m };
        assert_eq!(de.access(&a, d, &io), Some(Dr6::B1));
    }

    #[test]
    fn addresses_wrap_at_32_bits_in_32_bit_mode() {
        let m = Model::new(Mode::Bits32);
        let (a, d) = regs(&[(0, slot(0xffff_fffc, Condition::Write, Size::Four))]);
        assert_eq!(
            m.access(&a, d, &CpuAccess::write(0x1_ffff_fffe, 1)),
            Some(Dr6::B0)
        );
    }

    proptest::proptest! {
        /// Overlap, restated byte by byte: a data slot's condition is met iff
        /// some accessed byte has the slot's address with the low LEN bits
        /// cleared.
        #[test]
        fn overlap_is_bytewise(
            slot_addr in 0u64..64, s in 0u8..4, rw in proptest::prelude::any::<bool>(),
            a in 0u64..80, size in 1u64..17, write in proptest::prelude::any::<bool>(),
        ) {
            let m = Model::new(Mode::Bits64);
            let size_f = Size::from_bits(s);
            let sl = slot(slot_addr, if rw { Condition::ReadWrite } else { Condition::Write }, size_f);
            let acc = if write { CpuAccess::write(a, size) } else { CpuAccess::read(a, size) };
            let len = size_f.bytes();
            let bytewise = (a..a + size).any(|b| b & !(len - 1) == slot_addr & !(len - 1));
            proptest::prop_assert_eq!(m.condition_met(&sl, &acc), bytewise && (write || rw));
        }
    }
}
