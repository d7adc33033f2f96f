//! SH-4 (SH7750/SH7750S/SH7750R/SH7751/SH7751R) User Break Controller
//! registers: two channels, A and B.
//!
//! Sources: SH7750 Series hardware manual section 20 "User Break Controller
//! (UBC)" (§20.2 register descriptions, §20.3.5 operand access cycle break),
//! which gives the addresses, bit positions and widths. They agree with the
//! SH-4 UBC headers of 2.6-era Linux: `arch/sh/include/cpu-sh4/cpu/ubc.h`
//! (addresses) and `arch/sh/include/asm/ubc.h` (bit positions), named
//! `include/asm-sh/cpu-sh4/ubc.h` and `include/asm-sh/ubc.h` before 2.6.28.
//! Mainline Linux drives only the SH-4A UBC (`arch/sh/kernel/cpu/sh4a/ubc.c`)
//! and has no SH-4 one. Register widths: BAR 32, BAMR 8, BBR 16, BASR 8,
//! BDRB/BDMRB 32, BRCR 16 bits.

use crate::slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};

/// Break address register A (32-bit).
pub const BARA: u32 = 0xFF20_0000;
/// Break address mask register A (8-bit).
pub const BAMRA: u32 = 0xFF20_0004;
/// Break bus cycle register A (16-bit).
pub const BBRA: u32 = 0xFF20_0008;
/// Break ASID register A (8-bit).
pub const BASRA: u32 = 0xFF00_0014;
/// Break address register B (32-bit).
pub const BARB: u32 = 0xFF20_000C;
/// Break address mask register B (8-bit).
pub const BAMRB: u32 = 0xFF20_0010;
/// Break bus cycle register B (16-bit).
pub const BBRB: u32 = 0xFF20_0014;
/// Break ASID register B (8-bit).
pub const BASRB: u32 = 0xFF00_0018;
/// Break data register B (32-bit; data-value conditions, never enabled here).
pub const BDRB: u32 = 0xFF20_0018;
/// Break data mask register B (32-bit).
pub const BDMRB: u32 = 0xFF20_001C;
/// Break control register (16-bit).
pub const BRCR: u32 = 0xFF20_0020;

/// One of the two SH-4 channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Channel {
    /// Channel A (slot 0).
    A,
    /// Channel B (slot 1).
    B,
}

impl Channel {
    /// The channel for slot index `n` (0 = A, 1 = B).
    pub const fn from_index(n: u8) -> Option<Self> {
        match n {
            0 => Some(Channel::A),
            1 => Some(Channel::B),
            _ => None,
        }
    }
    /// Break address register.
    pub const fn bar(self) -> u32 {
        match self {
            Channel::A => BARA,
            Channel::B => BARB,
        }
    }
    /// Break address mask register.
    pub const fn bamr(self) -> u32 {
        match self {
            Channel::A => BAMRA,
            Channel::B => BAMRB,
        }
    }
    /// Break bus cycle register.
    pub const fn bbr(self) -> u32 {
        match self {
            Channel::A => BBRA,
            Channel::B => BBRB,
        }
    }
    /// Break ASID register.
    pub const fn basr(self) -> u32 {
        match self {
            Channel::A => BASRA,
            Channel::B => BASRB,
        }
    }
    /// The BRCR condition match flag of this channel.
    pub const fn cmf(self) -> Brcr {
        match self {
            Channel::A => Brcr::CMFA,
            Channel::B => Brcr::CMFB,
        }
    }
    /// The BRCR PC-break-select bit of this channel.
    pub const fn pcb(self) -> Brcr {
        match self {
            Channel::A => Brcr::PCBA,
            Channel::B => Brcr::PCBB,
        }
    }
}

/// BAMR.BAM — which low address bits are not compared (bits 3, 1, 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddressMask {
    /// 0b000: all address bits compared.
    None,
    /// 0b001: low 10 bits masked.
    Low10,
    /// 0b010: low 12 bits masked.
    Low12,
    /// 0b011: all bits masked (every address matches).
    All,
    /// 0b100 (bit 3): low 16 bits masked.
    Low16,
    /// 0b101 (bits 3 and 0): low 20 bits masked.
    Low20,
}

impl AddressMask {
    /// The register bits (bit 3 = BAM2, bits 1:0 = BAM1:0).
    pub const fn bits(self) -> u8 {
        match self {
            AddressMask::None => 0x0,
            AddressMask::Low10 => 0x1,
            AddressMask::Low12 => 0x2,
            AddressMask::All => 0x3,
            AddressMask::Low16 => 0x8,
            AddressMask::Low20 => 0x9,
        }
    }
    /// Decode BAMR's mask bits; `None` for the reserved combinations.
    pub const fn from_bits(bamr: u8) -> Option<Self> {
        match bamr & 0x0B {
            0x0 => Some(AddressMask::None),
            0x1 => Some(AddressMask::Low10),
            0x2 => Some(AddressMask::Low12),
            0x3 => Some(AddressMask::All),
            0x8 => Some(AddressMask::Low16),
            0x9 => Some(AddressMask::Low20),
            _ => None,
        }
    }
    /// The address bits that are not compared.
    pub const fn ignored(self) -> u32 {
        match self {
            AddressMask::None => 0,
            AddressMask::Low10 => 0x3FF,
            AddressMask::Low12 => 0xFFF,
            AddressMask::All => 0xFFFF_FFFF,
            AddressMask::Low16 => 0xFFFF,
            AddressMask::Low20 => 0xF_FFFF,
        }
    }
    /// The mask that ignores exactly `ignored` (which must be one of the
    /// supported runs of low bits).
    pub const fn from_ignored(ignored: u32) -> Option<Self> {
        match ignored {
            0 => Some(AddressMask::None),
            0x3FF => Some(AddressMask::Low10),
            0xFFF => Some(AddressMask::Low12),
            0xFFFF => Some(AddressMask::Low16),
            0xF_FFFF => Some(AddressMask::Low20),
            0xFFFF_FFFF => Some(AddressMask::All),
            _ => None,
        }
    }
}

/// Break address mask register BAMRA/BAMRB (8-bit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Bamr(pub u8);

impl Bamr {
    /// BASM: 1 = the ASID is not compared.
    pub const BASM: u8 = 1 << 2;

    /// Build from a mask and an ASID condition.
    pub const fn new(mask: AddressMask, asid_compared: bool) -> Self {
        Bamr(mask.bits() | if asid_compared { 0 } else { Self::BASM })
    }
    /// The address mask, `None` if reserved.
    pub const fn mask(self) -> Option<AddressMask> {
        AddressMask::from_bits(self.0)
    }
    /// Whether the ASID in BASR is part of the condition.
    pub const fn asid_compared(self) -> bool {
        self.0 & Self::BASM == 0
    }
}

/// BBR.ID — instruction access / operand access select (bits 5:4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BbrId {
    /// 00: no break (the channel is off).
    Off,
    /// 01: instruction access.
    Fetch,
    /// 10: operand access.
    Operand,
    /// 11: instruction or operand access.
    Either,
}

/// BBR.RW — read/write select (bits 3:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BbrRw {
    /// 00: no break (the channel is off).
    Off,
    /// 01: read cycles.
    Read,
    /// 10: write cycles.
    Write,
    /// 11: read or write cycles.
    Either,
}

/// Break bus cycle register BBRA/BBRB (16-bit).
///
/// Layout (SH7750 manual §20.2.4): 6 SZ2, 5:4 ID, 3:2 RW, 1:0 SZ1:SZ0. A
/// channel whose ID or RW field is 00 never breaks, so writing 0 disables it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Bbr(pub u16);

impl Bbr {
    /// Implemented bits (the rest read as 0).
    pub const IMPLEMENTED: u16 = 0x7F;

    /// BBR.ID.
    pub const fn id(self) -> BbrId {
        match (self.0 >> 4) & 3 {
            0 => BbrId::Off,
            1 => BbrId::Fetch,
            2 => BbrId::Operand,
            _ => BbrId::Either,
        }
    }
    /// BBR.RW.
    pub const fn rw(self) -> BbrRw {
        match (self.0 >> 2) & 3 {
            0 => BbrRw::Off,
            1 => BbrRw::Read,
            2 => BbrRw::Write,
            _ => BbrRw::Either,
        }
    }
    /// BBR.SZ (SZ2 at bit 6, SZ1:0 at bits 1:0), `None` if reserved.
    pub const fn size(self) -> Option<OperandSize> {
        let bits = (((self.0 >> 6) & 1) << 2) | (self.0 & 3);
        OperandSize::from_bits(bits as u32)
    }
    /// Whether the channel can break at all (ID and RW both non-zero).
    pub const fn enabled(self) -> bool {
        !matches!(self.id(), BbrId::Off) && !matches!(self.rw(), BbrRw::Off)
    }
    /// Build from fields.
    pub const fn build(id: BbrId, rw: BbrRw, size: OperandSize) -> Self {
        let id_bits: u16 = match id {
            BbrId::Off => 0,
            BbrId::Fetch => 1,
            BbrId::Operand => 2,
            BbrId::Either => 3,
        };
        let rw_bits: u16 = match rw {
            BbrRw::Off => 0,
            BbrRw::Read => 1,
            BbrRw::Write => 2,
            BbrRw::Either => 3,
        };
        let sz = size.bits() as u16;
        Bbr((((sz >> 2) & 1) << 6) | (id_bits << 4) | (rw_bits << 2) | (sz & 3))
    }
}

bitflags::bitflags! {
    /// Break control register BRCR (16-bit; SH7750 manual §20.2.9).
    ///
    /// CMFA/CMFB are set by hardware on a match and cleared by writing 0
    /// (writing 1 leaves them unchanged).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Brcr: u16 {
        /// Condition match flag A.
        const CMFA = 1 << 15;
        /// Condition match flag B.
        const CMFB = 1 << 14;
        /// PC break select A: 0 = before, 1 = after instruction execution.
        const PCBA = 1 << 10;
        /// Data break enable B: include BDRB/BDMRB in channel B's condition.
        const DBEB = 1 << 7;
        /// PC break select B.
        const PCBB = 1 << 6;
        /// Sequence condition: channel A then channel B.
        const SEQ = 1 << 3;
        /// User break debug enable: vector to DBR instead of VBR + 0x100.
        const UBDE = 1 << 0;
    }
}

/// The registers of one SH-4 channel (BRCR's PCB bit included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelRegs {
    /// Break address.
    pub bar: u32,
    /// Address/ASID mask.
    pub bamr: Bamr,
    /// Bus cycle condition.
    pub bbr: Bbr,
    /// ASID.
    pub basr: u8,
    /// BRCR.PCBA/PCBB: break after execution.
    pub pcb_after: bool,
}

impl ChannelRegs {
    /// Register values for a slot; `None` if its mask is not one BAMR can
    /// express (the encoder never produces such a slot for SH-4).
    pub const fn from_slot(s: &UbcSlot) -> Option<Self> {
        if !s.enabled {
            return Some(ChannelRegs {
                bar: 0,
                bamr: Bamr::new(AddressMask::None, false),
                bbr: Bbr(0),
                basr: 0,
                pcb_after: false,
            });
        }
        let mask = match AddressMask::from_ignored(s.mask) {
            Some(m) => m,
            None => return None,
        };
        let id = match s.cycle {
            CycleSelect::Fetch => BbrId::Fetch,
            CycleSelect::Operand => BbrId::Operand,
        };
        let rw = match s.rw {
            BusCommand::Read => BbrRw::Read,
            BusCommand::Write => BbrRw::Write,
            BusCommand::ReadWrite => BbrRw::Either,
        };
        let (asid_compared, basr) = match s.asid {
            Some(a) => (true, a),
            None => (false, 0),
        };
        Some(ChannelRegs {
            bar: s.addr,
            bamr: Bamr::new(mask, asid_compared),
            bbr: Bbr::build(id, rw, s.size),
            basr,
            pcb_after: matches!(s.timing, BreakTiming::After),
        })
    }

    /// Read the registers back as a slot (`None` for reserved encodings or
    /// conditions this crate never writes).
    pub fn to_slot(&self) -> Option<UbcSlot> {
        if !self.bbr.enabled() {
            return Some(UbcSlot::DISABLED);
        }
        let cycle = match self.bbr.id() {
            BbrId::Fetch => CycleSelect::Fetch,
            BbrId::Operand => CycleSelect::Operand,
            BbrId::Either | BbrId::Off => return None,
        };
        let rw = match self.bbr.rw() {
            BbrRw::Read => BusCommand::Read,
            BbrRw::Write => BusCommand::Write,
            BbrRw::Either => BusCommand::ReadWrite,
            BbrRw::Off => return None,
        };
        Some(UbcSlot {
            enabled: true,
            cycle,
            rw,
            size: self.bbr.size()?,
            timing: if self.pcb_after {
                BreakTiming::After
            } else {
                BreakTiming::Before
            },
            addr: self.bar,
            mask: self.bamr.mask()?.ignored(),
            asid: if self.bamr.asid_compared() {
                Some(self.basr)
            } else {
                None
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_constants_agree() {
        // Linux arch/sh/include/asm/ubc.h (2.6 era; include/asm-sh/ubc.h
        // before 2.6.28): BBR_INST = 1<<4, BBR_DATA = 2<<4,
        // BBR_READ = 1<<2, BBR_WRITE = 2<<2, BBR_LONG = 3, BBR_QUAD = 1<<6.
        assert_eq!(
            Bbr::build(BbrId::Fetch, BbrRw::Read, OperandSize::Any).0,
            (1 << 4) | (1 << 2)
        );
        assert_eq!(
            Bbr::build(BbrId::Operand, BbrRw::Write, OperandSize::Long).0,
            (2 << 4) | (2 << 2) | 3
        );
        assert_eq!(
            Bbr::build(BbrId::Operand, BbrRw::Read, OperandSize::Quad).0,
            (2 << 4) | (1 << 2) | (1 << 6)
        );
        assert_eq!(Bamr::new(AddressMask::None, false).0, 1 << 2);
        assert_eq!(AddressMask::Low16.bits(), 0x8);
        assert_eq!(AddressMask::Low20.bits(), 0x9);
        assert_eq!(Brcr::PCBA.bits(), 1 << 10);
    }

    #[test]
    fn fields_round_trip() {
        for sz in [
            OperandSize::Any,
            OperandSize::Byte,
            OperandSize::Word,
            OperandSize::Long,
            OperandSize::Quad,
        ] {
            let b = Bbr::build(BbrId::Operand, BbrRw::Either, sz);
            assert_eq!(b.size(), Some(sz));
            assert_eq!(b.0 & Bbr::IMPLEMENTED, b.0);
            assert!(b.enabled());
        }
        assert!(!Bbr::build(BbrId::Off, BbrRw::Read, OperandSize::Any).enabled());
        assert!(!Bbr::build(BbrId::Fetch, BbrRw::Off, OperandSize::Any).enabled());
        for m in [
            AddressMask::None,
            AddressMask::Low10,
            AddressMask::Low12,
            AddressMask::Low16,
            AddressMask::Low20,
            AddressMask::All,
        ] {
            assert_eq!(AddressMask::from_bits(m.bits()), Some(m));
            assert_eq!(AddressMask::from_ignored(m.ignored()), Some(m));
        }
        assert_eq!(AddressMask::from_bits(0xA), None);
    }

    #[test]
    fn slot_round_trips_and_unrepresentable_masks_are_refused() {
        let s = UbcSlot {
            enabled: true,
            cycle: CycleSelect::Fetch,
            rw: BusCommand::Read,
            size: OperandSize::Any,
            timing: BreakTiming::After,
            addr: 0x8c01_0000,
            mask: 0xFFFF,
            asid: Some(7),
        };
        let r = ChannelRegs::from_slot(&s).unwrap();
        assert!(r.pcb_after);
        assert!(r.bamr.asid_compared());
        assert_eq!(r.to_slot(), Some(s));
        assert_eq!(ChannelRegs::from_slot(&UbcSlot { mask: 0xFF, ..s }), None);
    }
}
