//! The variant-neutral contents of one UBC channel.
//!
//! Both UBC generations this crate drives (SH-4 channels A/B and SH-4A
//! channels 0..n) compare the same things: an address with a mask, the kind
//! of bus cycle (instruction fetch or operand access), read/write, an optional
//! operand size, an optional ASID, and for instruction fetches whether to
//! break before or after the instruction executes. [`UbcSlot`] holds exactly
//! that; [`crate::sh4`] and [`crate::sh4a`] turn it into register values.

use hwbp_core::Access;

/// Which bus cycle a channel watches (CBR.ID on SH-4A, BBR.ID on SH-4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CycleSelect {
    /// Operand (data) access cycles.
    #[default]
    Operand,
    /// Instruction fetch cycles.
    Fetch,
}

/// Which bus command a channel watches (CBR.RW on SH-4A, BBR.RW on SH-4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BusCommand {
    /// Read cycles only (instruction fetches are reads).
    Read,
    /// Write cycles only.
    Write,
    /// Read or write cycles.
    #[default]
    ReadWrite,
}

/// Operand size condition (CBR.SZ on SH-4A, BBR.SZ on SH-4; the encoding
/// 000/001/010/011/100 is the same on both).
///
/// When a size is given, only operand accesses of exactly that size match and
/// the address is compared from bit log2(size) up (SH7750 hardware manual
/// §20.3.5 item 1; SH7780/SH7785 UBC "operand access cycle break").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum OperandSize {
    /// Size is not part of the condition (000): any access size matches, and
    /// the address is compared from bit log2(access size) up.
    #[default]
    Any = 0,
    /// Byte accesses only (001).
    Byte = 1,
    /// Word (2-byte) accesses only (010).
    Word = 2,
    /// Longword (4-byte) accesses only (011).
    Long = 3,
    /// Quadword (8-byte) accesses only (100).
    Quad = 4,
}

impl OperandSize {
    /// Decode the 3-bit field; `None` for the reserved values 101–111.
    pub const fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            0 => Some(Self::Any),
            1 => Some(Self::Byte),
            2 => Some(Self::Word),
            3 => Some(Self::Long),
            4 => Some(Self::Quad),
            _ => None,
        }
    }

    /// The 3-bit field value.
    pub const fn bits(self) -> u32 {
        self as u32
    }

    /// The size for a length in bytes (1, 2, 4 or 8).
    pub const fn from_len(len: u64) -> Option<Self> {
        match len {
            1 => Some(Self::Byte),
            2 => Some(Self::Word),
            4 => Some(Self::Long),
            8 => Some(Self::Quad),
            _ => None,
        }
    }

    /// Bytes of the size, or `None` for [`OperandSize::Any`].
    pub const fn bytes(self) -> Option<u32> {
        match self {
            Self::Any => None,
            Self::Byte => Some(1),
            Self::Word => Some(2),
            Self::Long => Some(4),
            Self::Quad => Some(8),
        }
    }
}

/// When an instruction-fetch break is taken (CRR.PCB on SH-4A, BRCR.PCBA/PCBB
/// on SH-4; 0 = before, 1 = after execution).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakTiming {
    /// Break before the instruction executes; SPC is the instruction's address.
    #[default]
    Before,
    /// Break after the instruction executes; SPC is the next instruction.
    After,
}

/// The contents of one UBC channel, independent of the register layout.
///
/// `UbcSlot::default()` is the disabled channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UbcSlot {
    /// The channel takes part in matching.
    pub enabled: bool,
    /// Instruction fetch or operand access.
    pub cycle: CycleSelect,
    /// Read, write or both.
    pub rw: BusCommand,
    /// Operand size condition.
    pub size: OperandSize,
    /// Before or after execution (instruction fetches only).
    pub timing: BreakTiming,
    /// Match address.
    pub addr: u32,
    /// Address bits that are *not* compared (1 = ignored), always a
    /// contiguous run of low bits in what the encoder produces.
    pub mask: u32,
    /// Only match while this ASID is current (`None`: any ASID).
    pub asid: Option<u8>,
}

impl UbcSlot {
    /// The disabled channel.
    pub const DISABLED: UbcSlot = UbcSlot {
        enabled: false,
        cycle: CycleSelect::Operand,
        rw: BusCommand::ReadWrite,
        size: OperandSize::Any,
        timing: BreakTiming::Before,
        addr: 0,
        mask: 0,
        asid: None,
    };

    /// Restrict the channel to one ASID (address-space identifier), for a
    /// breakpoint that follows one user process.
    #[must_use]
    pub const fn with_asid(mut self, asid: Option<u8>) -> Self {
        self.asid = asid;
        self
    }

    /// The generic access kind this channel triggers on.
    pub fn access(&self) -> Access {
        match (self.cycle, self.rw) {
            (CycleSelect::Fetch, _) => Access::EXEC,
            (CycleSelect::Operand, BusCommand::Read) => Access::READ,
            (CycleSelect::Operand, BusCommand::Write) => Access::WRITE,
            (CycleSelect::Operand, BusCommand::ReadWrite) => Access::RW,
        }
    }

    /// Whether this is an instruction break taken before execution, which
    /// needs a step-over before the instruction can run.
    pub fn breaks_before_fetch(&self) -> bool {
        self.enabled && self.cycle == CycleSelect::Fetch && self.timing == BreakTiming::Before
    }
}
