//! DR7, the debug control register (Intel SDM vol. 3, §18.2.4).
//!
//! Layout, per slot `n` in 0..4:
//!
//! | bits            | field | meaning                                         |
//! |-----------------|-------|-------------------------------------------------|
//! | `2n`            | `Ln`  | local enable (cleared by hardware task switches)|
//! | `2n + 1`        | `Gn`  | global enable                                   |
//! | `16 + 4n ..+2`  | `R/Wn`| condition: execute, write, I/O, read-write      |
//! | `18 + 4n ..+2`  | `LENn`| length: 1, 2, 8 (64-bit mode only), 4 bytes     |
//!
//! plus `LE` (bit 8), `GE` (bit 9), `RTM` (bit 11) and `GD` (bit 13). Bit 10 is
//! reserved and reads as 1; bits 12, 14, 15 are reserved and read as 0; bits
//! 63:32 are reserved in 64-bit mode and writing 1 to them raises #GP.
//!
//! [`Dr7`] wraps the raw value: every setter touches only its own field, so
//! reserved bits read from the hardware are written back unchanged.

bitflags::bitflags! {
    /// The two enable bits of one slot, shifted down to bits 0 and 1.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct SlotEnable: u8 {
        /// `Ln`: enabled for the current task; a hardware task switch clears it.
        const LOCAL = 1 << 0;
        /// `Gn`: enabled for all tasks.
        const GLOBAL = 1 << 1;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for SlotEnable {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "SlotEnable({=u8:#x})", self.bits())
    }
}

/// The `R/Wn` field: which accesses a slot breaks on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Condition {
    /// `00`: instruction execution (a fault, before the instruction runs).
    #[default]
    Execute,
    /// `01`: data writes.
    Write,
    /// `10`: I/O reads or writes; defined only when CR4.DE is set (undefined
    /// otherwise).
    Io,
    /// `11`: data reads or writes (instruction fetches excluded).
    ReadWrite,
}

impl Condition {
    /// Decode the two-bit field (only the low two bits of `bits` are used).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b00 => Condition::Execute,
            0b01 => Condition::Write,
            0b10 => Condition::Io,
            _ => Condition::ReadWrite,
        }
    }

    /// The two-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            Condition::Execute => 0b00,
            Condition::Write => 0b01,
            Condition::Io => 0b10,
            Condition::ReadWrite => 0b11,
        }
    }
}

/// The `LENn` field: how many bytes a slot watches.
///
/// The encoding is not monotonic: `10` means 8 bytes, and only in 64-bit mode
/// (in 32-bit mode it is undefined).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Size {
    /// `00`: one byte; the only length allowed for instruction breakpoints.
    #[default]
    One,
    /// `01`: two bytes.
    Two,
    /// `10`: eight bytes (64-bit mode only).
    Eight,
    /// `11`: four bytes.
    Four,
}

impl Size {
    /// Decode the two-bit field (only the low two bits of `bits` are used).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b00 => Size::One,
            0b01 => Size::Two,
            0b10 => Size::Eight,
            _ => Size::Four,
        }
    }

    /// The two-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            Size::One => 0b00,
            Size::Two => 0b01,
            Size::Eight => 0b10,
            Size::Four => 0b11,
        }
    }

    /// Number of bytes watched.
    pub const fn bytes(self) -> u64 {
        match self {
            Size::One => 1,
            Size::Two => 2,
            Size::Four => 4,
            Size::Eight => 8,
        }
    }

    /// The field for a length in bytes, if the field can express it.
    pub const fn from_bytes(len: u64) -> Option<Self> {
        match len {
            1 => Some(Size::One),
            2 => Some(Size::Two),
            4 => Some(Size::Four),
            8 => Some(Size::Eight),
            _ => None,
        }
    }
}

/// A DR7 value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dr7(u64);

impl core::fmt::Debug for Dr7 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Dr7({:#x})", self.0)
    }
}

impl Dr7 {
    /// Number of breakpoint slots DR7 controls.
    pub const SLOTS: usize = 4;
    /// `LE`, local exact breakpoint enable (ignored since the P6 family; the SDM
    /// still recommends setting it together with local enables).
    pub const LE: u64 = 1 << 8;
    /// `GE`, global exact breakpoint enable (same remark as [`Dr7::LE`]).
    pub const GE: u64 = 1 << 9;
    /// Reserved bit 10, reads as 1.
    pub const RESERVED_ONE: u64 = 1 << 10;
    /// `RTM`, advanced debugging of transactional regions.
    pub const RTM: u64 = 1 << 11;
    /// `GD`, general detect: any MOV to or from a debug register raises #DB.
    pub const GD: u64 = 1 << 13;
    /// Every bit that belongs to a slot (enables, R/W, LEN).
    pub const SLOT_BITS: u64 = 0xffff_00ff;
    /// Bits that the architecture reserves (must be written as read; bits 63:32
    /// must be 0 in 64-bit mode).
    pub const RESERVED: u64 = !0xffff_ffff | (1 << 10) | (1 << 12) | (1 << 14) | (1 << 15);

    /// Wrap a raw value.
    pub const fn from_raw(raw: u64) -> Self {
        Dr7(raw)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    const fn enable_shift(slot: usize) -> u32 {
        (slot as u32 % 4) * 2
    }

    const fn rw_shift(slot: usize) -> u32 {
        16 + (slot as u32 % 4) * 4
    }

    const fn len_shift(slot: usize) -> u32 {
        18 + (slot as u32 % 4) * 4
    }

    /// The enable bits of `slot` (taken modulo 4).
    pub const fn enable(self, slot: usize) -> SlotEnable {
        SlotEnable::from_bits_truncate((self.0 >> Self::enable_shift(slot)) as u8 & 0b11)
    }

    /// Whether `slot` has its local or global enable set.
    pub const fn enabled(self, slot: usize) -> bool {
        !self.enable(slot).is_empty()
    }

    /// Set the enable bits of `slot` (taken modulo 4).
    pub fn set_enable(&mut self, slot: usize, enable: SlotEnable) {
        let sh = Self::enable_shift(slot);
        self.0 = (self.0 & !(0b11 << sh)) | (u64::from(enable.bits()) << sh);
    }

    /// The condition of `slot` (taken modulo 4).
    pub const fn condition(self, slot: usize) -> Condition {
        Condition::from_bits((self.0 >> Self::rw_shift(slot)) as u8)
    }

    /// Set the condition of `slot` (taken modulo 4).
    pub fn set_condition(&mut self, slot: usize, cond: Condition) {
        let sh = Self::rw_shift(slot);
        self.0 = (self.0 & !(0b11 << sh)) | (u64::from(cond.bits()) << sh);
    }

    /// The length field of `slot` (taken modulo 4).
    pub const fn size(self, slot: usize) -> Size {
        Size::from_bits((self.0 >> Self::len_shift(slot)) as u8)
    }

    /// Set the length field of `slot` (taken modulo 4).
    pub fn set_size(&mut self, slot: usize, size: Size) {
        let sh = Self::len_shift(slot);
        self.0 = (self.0 & !(0b11 << sh)) | (u64::from(size.bits()) << sh);
    }

    /// Bit mask of the slots that are enabled (bit `n` = slot `n`).
    pub const fn enabled_mask(self) -> u8 {
        let mut m = 0;
        let mut n = 0;
        while n < Self::SLOTS {
            if self.enabled(n) {
                m |= 1 << n;
            }
            n += 1;
        }
        m
    }

    /// The value with every slot field (enables, R/W, LEN) cleared: what is left
    /// are the control and reserved bits.
    pub const fn control(self) -> Self {
        Dr7(self.0 & !Self::SLOT_BITS)
    }

    /// Set or clear `LE` and `GE` to match the slots that use local and global
    /// enables, as the SDM recommends for exact breakpoint reporting.
    pub fn update_exact(&mut self) {
        let mut local = false;
        let mut global = false;
        for n in 0..Self::SLOTS {
            let e = self.enable(n);
            local |= e.contains(SlotEnable::LOCAL);
            global |= e.contains(SlotEnable::GLOBAL);
        }
        self.0 &= !(Self::LE | Self::GE);
        if local {
            self.0 |= Self::LE;
        }
        if global {
            self.0 |= Self::GE;
        }
    }
}

// The slot fields (enables at 0..8, R/W and LEN at 16..32) are disjoint
// from the control bits and from the reserved bits, so setting a slot never
// touches either; the last slot's LEN field ends at bit 32.
static_assertions::const_assert_eq!(Dr7::SLOT_BITS & (Dr7::LE | Dr7::GE | Dr7::RTM | Dr7::GD), 0);
static_assertions::const_assert_eq!(Dr7::SLOT_BITS & Dr7::RESERVED, 0);
static_assertions::const_assert_eq!(Dr7::len_shift(Dr7::SLOTS - 1) + 2, 32);
static_assertions::const_assert_eq!(Dr7::enable_shift(Dr7::SLOTS - 1) + 2, 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_independent_and_preserve_reserved_bits() {
        // Start from a value with every reserved and control bit set.
        let base = Dr7::RESERVED | Dr7::LE | Dr7::GE | Dr7::RTM | Dr7::GD;
        let mut d = Dr7::from_raw(base);
        d.set_enable(2, SlotEnable::GLOBAL);
        d.set_condition(2, Condition::ReadWrite);
        d.set_size(2, Size::Eight);
        assert_eq!(d.enable(2), SlotEnable::GLOBAL);
        assert_eq!(d.condition(2), Condition::ReadWrite);
        assert_eq!(d.size(2), Size::Eight);
        for other in [0, 1, 3] {
            assert!(!d.enabled(other));
            assert_eq!(d.condition(other), Condition::Execute);
            assert_eq!(d.size(other), Size::One);
        }
        assert_eq!(d.control().raw(), base);
        assert_eq!(d.enabled_mask(), 0b0100);
        d.set_enable(2, SlotEnable::empty());
        d.set_condition(2, Condition::Execute);
        d.set_size(2, Size::One);
        assert_eq!(d.raw(), base);
    }

    #[test]
    fn field_codes_round_trip() {
        for b in 0..4u8 {
            assert_eq!(Condition::from_bits(b).bits(), b);
            assert_eq!(Size::from_bits(b).bits(), b);
            let s = Size::from_bits(b);
            assert_eq!(Size::from_bytes(s.bytes()), Some(s));
        }
        assert_eq!(Size::from_bytes(3), None);
        assert_eq!(Size::from_bytes(16), None);
    }

    #[test]
    fn exact_bits_follow_enables() {
        let mut d = Dr7::default();
        d.set_enable(0, SlotEnable::LOCAL);
        d.set_enable(3, SlotEnable::GLOBAL);
        d.update_exact();
        assert_eq!(d.raw() & (Dr7::LE | Dr7::GE), Dr7::LE | Dr7::GE);
        d.set_enable(0, SlotEnable::empty());
        d.update_exact();
        assert_eq!(d.raw() & (Dr7::LE | Dr7::GE), Dr7::GE);
    }
}
