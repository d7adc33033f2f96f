//! DR6, the debug status register (Intel SDM vol. 3, §18.2.3).
//!
//! Two bits are active low: `RTM` (bit 16) reads 0 when a #DB happened inside
//! an RTM transaction, and `BLD` (bit 11) reads 0 when a bus lock was detected.
//! The reserved bits 4–10 and 17–31 read as 1 (bit 12 reads as 0). [`Dr6`] flips all of these
//! on the way in ([`Dr6::from_raw`]) so that every flag means "this happened"
//! and a quiet DR6 is empty — the same normalisation Linux applies with
//! `DR6_ACTIVE_LOW` in `arch/x86/kernel/traps.c`.
//!
//! The processor never clears DR6 by itself (only B0–B3 may be replaced by a
//! later #DB), so the handler must write [`Dr6::QUIET`] back after reading it.

bitflags::bitflags! {
    /// Debug status, normalised so that a set flag means the condition occurred.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Dr6: u32 {
        /// Slot 0's condition was met.
        const B0 = 1 << 0;
        /// Slot 1's condition was met.
        const B1 = 1 << 1;
        /// Slot 2's condition was met.
        const B2 = 1 << 2;
        /// Slot 3's condition was met.
        const B3 = 1 << 3;
        /// A bus lock was detected (raw bit 11 is active low).
        const BLD = 1 << 11;
        /// Debug-register access detected while DR7.GD was set (a fault).
        const BD = 1 << 13;
        /// Single step (RFLAGS.TF) trap.
        const BS = 1 << 14;
        /// Task switch to a task with the TSS T flag set.
        const BT = 1 << 15;
        /// The #DB happened inside an RTM transaction (raw bit 16 is active low).
        const RTM = 1 << 16;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Dr6 {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "Dr6({=u32:#x})", self.bits())
    }
}

// B0-B3 are active high (only the reserved bits, BLD and RTM are flipped),
// and both active-low flags are in the flipped set.
static_assertions::const_assert_eq!(Dr6::ACTIVE_LOW & Dr6::TRAP_BITS.bits() as u64, 0);
static_assertions::const_assert_eq!(
    Dr6::ACTIVE_LOW & (Dr6::BLD.bits() | Dr6::RTM.bits()) as u64,
    (Dr6::BLD.bits() | Dr6::RTM.bits()) as u64
);

impl Dr6 {
    /// Raw bits that read as 1 when nothing is pending: the reserved-one bits
    /// and the two active-low flags.
    pub const ACTIVE_LOW: u64 = 0xffff_0ff0;
    /// The raw value that means "nothing pending"; write it to clear DR6.
    pub const QUIET: u64 = Self::ACTIVE_LOW;
    /// The four breakpoint-condition bits.
    pub const TRAP_BITS: Self = Self::B0.union(Self::B1).union(Self::B2).union(Self::B3);

    /// Normalise a raw DR6 value. Bits 63:32 and unknown bits are dropped.
    pub const fn from_raw(raw: u64) -> Self {
        Self::from_bits_truncate((raw ^ Self::ACTIVE_LOW) as u32)
    }

    /// The raw register value these flags correspond to (reserved bits at
    /// their read-as-one value).
    pub const fn to_raw(self) -> u64 {
        (self.bits() as u64) ^ Self::ACTIVE_LOW
    }

    /// The breakpoint-condition bits as a mask, bit `n` = slot `n`.
    pub const fn slots(self) -> u8 {
        (self.bits() & 0xf) as u8
    }

    /// The flag for slot `n` (taken modulo 4).
    pub const fn slot(n: usize) -> Self {
        Self::from_bits_truncate(1 << (n % 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_register_is_empty() {
        assert_eq!(Dr6::from_raw(Dr6::QUIET), Dr6::empty());
        assert_eq!(Dr6::empty().to_raw(), Dr6::QUIET);
    }

    #[test]
    fn value_measured_on_this_host() {
        // A write watchpoint in slot 0 hit through ptrace on the build host.
        let d = Dr6::from_raw(0xffff_0ff1);
        assert_eq!(d, Dr6::B0);
        assert_eq!(d.slots(), 0b0001);
    }

    #[test]
    fn active_low_bits() {
        // RTM bit clear in the raw value means "inside a transaction".
        assert!(Dr6::from_raw(0xfffe_0ff0).contains(Dr6::RTM));
        // BLD bit clear means "bus lock detected".
        assert!(Dr6::from_raw(0xffff_07f0).contains(Dr6::BLD));
        // Single step and two slots.
        let d = Dr6::from_raw(0xffff_4ff6);
        assert_eq!(d, Dr6::BS | Dr6::B1 | Dr6::B2);
        assert_eq!(d.to_raw(), 0xffff_4ff6);
    }

    #[test]
    fn round_trip_known_bits() {
        for bits in [0u32, 0xf, 1 << 13, 1 << 14, 1 << 15, 1 << 16, 1 << 11] {
            let d = Dr6::from_bits_truncate(bits);
            assert_eq!(Dr6::from_raw(d.to_raw()), d);
        }
    }
}
