//! SH-4A User Break Controller registers (SH7780/SH7785/SH7724 layout).
//!
//! Per channel `n`: CBR (match condition), CRR (match operation), CAR (match
//! address), CAMR (match address mask) at `0xFF20_0000 + 0x20 * n`; shared:
//! CCMFR (channel match flags) at `0xFF20_0600` and CBCR (break control) at
//! `0xFF20_0620`. All are 32-bit registers. Sources: the SH7780/SH7785
//! hardware manuals, section "User Break Controller (UBC)", register
//! descriptions of CBR0/CRR0/CAR0/CAMR0/CCMFR/CBCR; Linux
//! `arch/sh/kernel/cpu/sh4a/ubc.c` for the addresses and the init sequence.
//! Channel 1 also has data-match registers (CDR1/CDMR1/CETR1 at +0x10..+0x18)
//! which this crate never enables.

use crate::slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};

/// Base of the UBC register block (CBR0).
pub const UBC_BASE: u32 = 0xFF20_0000;
/// Distance between the register groups of two channels.
pub const CHANNEL_STRIDE: u32 = 0x20;
/// Channel match flag register.
pub const CCMFR: u32 = 0xFF20_0600;
/// Break control register.
pub const CBCR: u32 = 0xFF20_0620;

/// Address of CBR`n` (match condition setting register).
pub const fn cbr(n: u8) -> u32 {
    UBC_BASE + CHANNEL_STRIDE * n as u32
}
/// Address of CRR`n` (match operation setting register).
pub const fn crr(n: u8) -> u32 {
    cbr(n) + 0x4
}
/// Address of CAR`n` (match address setting register).
pub const fn car(n: u8) -> u32 {
    cbr(n) + 0x8
}
/// Address of CAMR`n` (match address mask setting register).
pub const fn camr(n: u8) -> u32 {
    cbr(n) + 0xC
}

// The four registers of a channel fit in its stride, the groups of all 16
// channels (MAX_SLOTS) end before CCMFR, and CBR's single-bit flags are
// implemented bits.
static_assertions::const_assert!(camr(0) + 4 <= cbr(1));
static_assertions::const_assert!(cbr(hwbp_core::MAX_SLOTS as u8 - 1) + CHANNEL_STRIDE <= CCMFR);
static_assertions::const_assert_eq!(CbrFlags::all().bits() & !Cbr::IMPLEMENTED, 0);

/// CBR.ID — instruction fetch / operand access select (bits 5:4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdSelect {
    /// 00 or 11: instruction fetch or operand access cycles.
    Either,
    /// 01: instruction fetch cycles.
    Fetch,
    /// 10: operand access cycles.
    Operand,
}

/// CBR.RW — bus command select (bits 2:1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RwSelect {
    /// 00 or 11: read or write cycles.
    Either,
    /// 01: read cycles.
    Read,
    /// 10: write cycles.
    Write,
}

/// Match condition setting register CBR`n`.
///
/// Layout (SH7785 manual, CBR0 bit table): 31 MFE, 30 AIE, 29:24 MFI,
/// 23:16 AIV, 15 reserved (DBE on channel 1), 14:12 SZ, 11:8 reserved
/// (ETBE at bit 11 on channel 1), 7:6 CD, 5:4 ID, 3 reserved, 2:1 RW, 0 CE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cbr(pub u32);

bitflags::bitflags! {
    /// The single-bit fields of CBR.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct CbrFlags: u32 {
        /// Channel enable.
        const CE = 1 << 0;
        /// ASID enable: compare the ASID with AIV.
        const AIE = 1 << 30;
        /// Match flag enable: only match while CCMFR bit MFI is set
        /// (sequential conditions).
        const MFE = 1 << 31;
    }
}

impl Cbr {
    const RW_SHIFT: u32 = 1;
    const ID_SHIFT: u32 = 4;
    const CD_SHIFT: u32 = 6;
    const SZ_SHIFT: u32 = 12;
    const AIV_SHIFT: u32 = 16;
    const MFI_SHIFT: u32 = 24;
    /// Bits that are implemented on every channel (everything except the
    /// reserved bits 15, 11:8 and 3, which read as 0).
    pub const IMPLEMENTED: u32 = 0xFFFF_70F7;

    /// The single-bit flags.
    pub const fn flags(self) -> CbrFlags {
        CbrFlags::from_bits_truncate(self.0)
    }
    /// Channel enabled (CE).
    pub const fn enabled(self) -> bool {
        self.0 & CbrFlags::CE.bits() != 0
    }
    /// With CE set or cleared.
    #[must_use]
    pub const fn with_enabled(self, on: bool) -> Self {
        if on {
            Cbr(self.0 | CbrFlags::CE.bits())
        } else {
            Cbr(self.0 & !CbrFlags::CE.bits())
        }
    }
    /// CBR.RW.
    pub const fn rw(self) -> RwSelect {
        match (self.0 >> Self::RW_SHIFT) & 3 {
            1 => RwSelect::Read,
            2 => RwSelect::Write,
            _ => RwSelect::Either,
        }
    }
    /// CBR.ID.
    pub const fn id(self) -> IdSelect {
        match (self.0 >> Self::ID_SHIFT) & 3 {
            1 => IdSelect::Fetch,
            2 => IdSelect::Operand,
            _ => IdSelect::Either,
        }
    }
    /// CBR.CD bus select (00 = operand bus; other values reserved).
    pub const fn cd(self) -> u32 {
        (self.0 >> Self::CD_SHIFT) & 3
    }
    /// CBR.SZ, or `None` for a reserved value.
    pub const fn size(self) -> Option<OperandSize> {
        OperandSize::from_bits((self.0 >> Self::SZ_SHIFT) & 7)
    }
    /// CBR.AIV, the ASID compared when AIE is set.
    pub const fn aiv(self) -> u8 {
        ((self.0 >> Self::AIV_SHIFT) & 0xFF) as u8
    }
    /// The ASID condition: `Some(AIV)` when AIE is set.
    pub const fn asid(self) -> Option<u8> {
        if self.0 & CbrFlags::AIE.bits() != 0 {
            Some(self.aiv())
        } else {
            None
        }
    }
    /// CBR.MFI, the CCMFR flag that gates this channel when MFE is set.
    pub const fn mfi(self) -> u8 {
        ((self.0 >> Self::MFI_SHIFT) & 0x3F) as u8
    }

    /// Build a CBR value from its fields (CD = operand bus, MFE = 0).
    pub const fn build(
        enabled: bool,
        id: IdSelect,
        rw: RwSelect,
        size: OperandSize,
        asid: Option<u8>,
    ) -> Self {
        let id_bits = match id {
            IdSelect::Either => 3,
            IdSelect::Fetch => 1,
            IdSelect::Operand => 2,
        };
        let rw_bits = match rw {
            RwSelect::Either => 3,
            RwSelect::Read => 1,
            RwSelect::Write => 2,
        };
        let mut v = (id_bits << Self::ID_SHIFT)
            | (rw_bits << Self::RW_SHIFT)
            | (size.bits() << Self::SZ_SHIFT);
        if let Some(a) = asid {
            v |= CbrFlags::AIE.bits() | ((a as u32) << Self::AIV_SHIFT);
        }
        if enabled {
            v |= CbrFlags::CE.bits();
        }
        Cbr(v)
    }
}

bitflags::bitflags! {
    /// Match operation setting register CRR`n`.
    ///
    /// Bit 13 is reserved, reads as 1 and must be written as 1 (SH7785
    /// manual, CRR0 bit table: initial value H'0000 2000).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Crr: u32 {
        /// Break enable: request a user break exception on a match (with BIE
        /// clear only the match flag is set).
        const BIE = 1 << 0;
        /// PC break select: 0 = break before, 1 = after the instruction
        /// executes (instruction fetch conditions only).
        const PCB = 1 << 1;
        /// Reserved, always 1.
        const RESERVED_ONE = 1 << 13;
    }
}

impl Crr {
    /// The break timing selected by PCB.
    pub const fn timing(self) -> BreakTiming {
        if self.contains(Crr::PCB) {
            BreakTiming::After
        } else {
            BreakTiming::Before
        }
    }
    /// BIE set, reserved bit set, PCB from `timing`.
    pub const fn for_timing(timing: BreakTiming) -> Self {
        match timing {
            BreakTiming::Before => Crr::BIE.union(Crr::RESERVED_ONE),
            BreakTiming::After => Crr::BIE.union(Crr::RESERVED_ONE).union(Crr::PCB),
        }
    }
}

bitflags::bitflags! {
    /// Channel match flag register CCMFR: bit `n` (MFn) is set by hardware
    /// when channel `n`'s condition matches, and cleared by writing 0 (writing
    /// 1 leaves it unchanged).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Ccmfr: u32 {
        /// Channel 0 matched.
        const MF0 = 1 << 0;
        /// Channel 1 matched.
        const MF1 = 1 << 1;
        // Parts with more channels report them in the next bits.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// Break control register CBCR.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Cbcr: u32 {
        /// User break debugging support: 1 = the break vectors to DBR instead
        /// of VBR + 0x100. This crate leaves it 0.
        const UBDE = 1 << 0;
    }
}

/// The four registers of one SH-4A channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelRegs {
    /// Match condition.
    pub cbr: Cbr,
    /// Match operation (raw CRR bits).
    pub crr: u32,
    /// Match address.
    pub car: u32,
    /// Match address mask: 1 = the CAR bit is not compared.
    pub camr: u32,
}

impl ChannelRegs {
    /// Register values for a slot. A disabled slot gives CBR = CAR = CAMR = 0
    /// (as Linux's `sh4a_ubc_disable`), with CRR kept valid.
    pub const fn from_slot(s: &UbcSlot) -> Self {
        if !s.enabled {
            return ChannelRegs {
                cbr: Cbr(0),
                crr: Crr::for_timing(BreakTiming::After).bits(),
                car: 0,
                camr: 0,
            };
        }
        let id = match s.cycle {
            CycleSelect::Fetch => IdSelect::Fetch,
            CycleSelect::Operand => IdSelect::Operand,
        };
        let rw = match s.rw {
            BusCommand::Read => RwSelect::Read,
            BusCommand::Write => RwSelect::Write,
            BusCommand::ReadWrite => RwSelect::Either,
        };
        ChannelRegs {
            cbr: Cbr::build(true, id, rw, s.size, s.asid),
            crr: Crr::for_timing(s.timing).bits(),
            car: s.addr,
            camr: s.mask,
        }
    }

    /// Read the registers back as a slot (`None` when CBR holds a reserved
    /// size or a condition this crate never writes, e.g. MFE).
    pub fn to_slot(&self) -> Option<UbcSlot> {
        if !self.cbr.enabled() {
            return Some(UbcSlot::DISABLED);
        }
        if self.cbr.flags().contains(CbrFlags::MFE) || self.cbr.cd() != 0 {
            return None;
        }
        let cycle = match self.cbr.id() {
            IdSelect::Fetch => CycleSelect::Fetch,
            IdSelect::Operand => CycleSelect::Operand,
            IdSelect::Either => return None,
        };
        let rw = match self.cbr.rw() {
            RwSelect::Read => BusCommand::Read,
            RwSelect::Write => BusCommand::Write,
            RwSelect::Either => BusCommand::ReadWrite,
        };
        Some(UbcSlot {
            enabled: true,
            cycle,
            rw,
            size: self.cbr.size()?,
            timing: Crr::from_bits_retain(self.crr).timing(),
            addr: self.car,
            mask: self.camr,
            asid: self.cbr.asid(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_sh7780_map() {
        assert_eq!(cbr(0), 0xFF20_0000);
        assert_eq!(crr(0), 0xFF20_0004);
        assert_eq!(car(1), 0xFF20_0028);
        assert_eq!(camr(1), 0xFF20_002C);
        assert_eq!(cbr(3), 0xFF20_0060);
    }

    #[test]
    fn linux_constants_agree() {
        // Linux arch/sh/include/asm/hw_breakpoint.h: READ = 1<<1, WRITE = 1<<2,
        // LEN_1 = 1<<12, LEN_2 = 1<<13, LEN_4 = 3<<12, LEN_8 = 1<<14.
        let r = Cbr::build(
            true,
            IdSelect::Operand,
            RwSelect::Read,
            OperandSize::Byte,
            None,
        );
        assert_eq!(r.0 & 0b110, 1 << 1);
        assert_eq!(r.0 & (7 << 12), 1 << 12);
        let w = Cbr::build(
            true,
            IdSelect::Operand,
            RwSelect::Write,
            OperandSize::Quad,
            None,
        );
        assert_eq!(w.0 & 0b110, 1 << 2);
        assert_eq!(w.0 & (7 << 12), 1 << 14);
        assert_eq!(
            Cbr::build(
                false,
                IdSelect::Fetch,
                RwSelect::Read,
                OperandSize::Long,
                None
            )
            .0 & 1,
            0
        );
        assert_eq!(Crr::for_timing(BreakTiming::After).bits(), 0x2003);
    }

    #[test]
    fn slot_round_trips() {
        let s = UbcSlot {
            enabled: true,
            cycle: CycleSelect::Operand,
            rw: BusCommand::Write,
            size: OperandSize::Long,
            timing: BreakTiming::Before,
            addr: 0x8c00_1000,
            mask: 0xFF,
            asid: Some(0x42),
        };
        let r = ChannelRegs::from_slot(&s);
        assert_eq!(r.cbr.asid(), Some(0x42));
        assert_eq!(r.cbr.0 & Cbr::IMPLEMENTED, r.cbr.0);
        assert_eq!(r.to_slot(), Some(s));
        assert_eq!(
            ChannelRegs::from_slot(&UbcSlot::DISABLED).to_slot(),
            Some(UbcSlot::DISABLED)
        );
        let bad = ChannelRegs {
            cbr: Cbr(1 | (5 << 12) | (2 << 4)),
            ..r
        };
        assert_eq!(bad.to_slot(), None);
    }
}
