//! Human-readable register dumps: `Display` for [`UbcSlot`] (and its field
//! types), every field decoded, addresses and masks in hex.
//!
//! ```
//! use hwbp_sh::slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};
//!
//! let slot = UbcSlot {
//!     enabled: true,
//!     cycle: CycleSelect::Operand,
//!     rw: BusCommand::Write,
//!     size: OperandSize::Long,
//!     timing: BreakTiming::Before,
//!     addr: 0x8c00_1000,
//!     mask: 0x3,
//!     asid: Some(7),
//! };
//! assert_eq!(
//!     slot.to_string(),
//!     "on addr=0x8c001000 mask=0x3 cycle=operand rw=write size=4 timing=before asid=7"
//! );
//! ```

use core::fmt;

use crate::slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};

/// `operand` or `fetch`.
impl fmt::Display for CycleSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CycleSelect::Operand => "operand",
            CycleSelect::Fetch => "fetch",
        })
    }
}

/// `read`, `write` or `read-write`.
impl fmt::Display for BusCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BusCommand::Read => "read",
            BusCommand::Write => "write",
            BusCommand::ReadWrite => "read-write",
        })
    }
}

/// `any`, or the number of bytes.
impl fmt::Display for OperandSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes() {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("any"),
        }
    }
}

/// `before` or `after` (execution).
impl fmt::Display for BreakTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakTiming::Before => "before",
            BreakTiming::After => "after",
        })
    }
}

/// `on|off addr=0x.. mask=0x.. cycle=.. rw=.. size=.. timing=.. asid=..|any`.
impl fmt::Display for UbcSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} addr={:#x} mask={:#x} cycle={} rw={} size={} timing={} asid=",
            if self.enabled { "on" } else { "off" },
            self.addr,
            self.mask,
            self.cycle,
            self.rw,
            self.size,
            self.timing
        )?;
        match self.asid {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("any"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hwbp_core::{Image, SlotCounts};

    #[test]
    fn every_field_is_decoded() {
        let fetch = UbcSlot {
            enabled: true,
            cycle: CycleSelect::Fetch,
            rw: BusCommand::Read,
            size: OperandSize::Any,
            timing: BreakTiming::After,
            addr: 0xa000_0100,
            mask: 0,
            asid: None,
        };
        assert_eq!(
            fetch.to_string(),
            "on addr=0xa0000100 mask=0x0 cycle=fetch rw=read size=any timing=after asid=any"
        );
        let quad = UbcSlot {
            size: OperandSize::Quad,
            rw: BusCommand::ReadWrite,
            cycle: CycleSelect::Operand,
            mask: 0xfff,
            asid: Some(255),
            ..fetch
        };
        assert_eq!(
            quad.to_string(),
            "on addr=0xa0000100 mask=0xfff cycle=operand rw=read-write size=8 timing=after asid=255"
        );
    }

    #[test]
    fn core_image_of_two_channels() {
        let mut image = Image::<UbcSlot>::empty(SlotCounts::Shared(2));
        image.pools[0][1] = UbcSlot {
            enabled: true,
            rw: BusCommand::Write,
            size: OperandSize::Word,
            addr: 0x8c00_0002,
            ..UbcSlot::DISABLED
        };
        assert_eq!(
            image.to_string(),
            "pool 0 slot 0: off addr=0x0 mask=0x0 cycle=operand rw=read-write size=any timing=before asid=any\n\
             pool 0 slot 1: on addr=0x8c000002 mask=0x0 cycle=operand rw=write size=2 timing=before asid=any"
        );
    }
}
