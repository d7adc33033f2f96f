//! One debug-register slot: an address register (DR0–DR3) and its DR7 fields.

use crate::dr7::{Condition, Dr7, Size, SlotEnable};

/// The contents of one breakpoint slot: DRn plus slot n's fields in DR7.
///
/// This is the [`hwbp_core::Arch::Slot`] type of the x86 backend. The default
/// value (address 0, execute, one byte, no enable bit) is the disabled slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DrSlot {
    /// The linear address in DRn (or the I/O port for [`Condition::Io`]).
    pub addr: u64,
    /// The `R/Wn` field.
    pub condition: Condition,
    /// The `LENn` field.
    pub size: Size,
    /// The `Ln`/`Gn` bits; empty means the slot is disabled.
    pub enable: SlotEnable,
}

impl DrSlot {
    /// The disabled slot.
    pub const DISABLED: DrSlot = DrSlot {
        addr: 0,
        condition: Condition::Execute,
        size: Size::One,
        enable: SlotEnable::empty(),
    };

    /// Whether either enable bit is set.
    pub const fn is_enabled(&self) -> bool {
        !self.enable.is_empty()
    }

    /// Read slot `n` out of an address and a DR7 value.
    pub const fn from_regs(addr: u64, dr7: Dr7, n: usize) -> Self {
        DrSlot {
            addr,
            condition: dr7.condition(n),
            size: dr7.size(n),
            enable: dr7.enable(n),
        }
    }

    /// Put this slot's fields into `dr7` as slot `n` (the address goes to DRn
    /// separately).
    pub fn apply(&self, dr7: &mut Dr7, n: usize) {
        dr7.set_enable(n, self.enable);
        dr7.set_condition(n, self.condition);
        dr7.set_size(n, self.size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_disabled_and_applies_to_zero_fields() {
        assert_eq!(DrSlot::default(), DrSlot::DISABLED);
        assert!(!DrSlot::default().is_enabled());
        let mut d = Dr7::from_raw(0xffff_00ff | Dr7::GE);
        for n in 0..4 {
            DrSlot::DISABLED.apply(&mut d, n);
        }
        assert_eq!(d.raw(), Dr7::GE);
    }

    #[test]
    fn from_regs_inverts_apply() {
        let s = DrSlot {
            addr: 0x1234,
            condition: Condition::Write,
            size: Size::Two,
            enable: SlotEnable::LOCAL | SlotEnable::GLOBAL,
        };
        let mut d = Dr7::default();
        s.apply(&mut d, 3);
        assert_eq!(DrSlot::from_regs(0x1234, d, 3), s);
        assert_eq!(DrSlot::from_regs(0, d, 2), DrSlot::DISABLED);
    }
}
