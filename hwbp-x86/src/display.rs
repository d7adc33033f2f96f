//! Human-readable register dumps: `Display` for [`DrSlot`], [`Dr7`] and
//! [`RegisterImage`] (and the field types), every field decoded, addresses
//! in hex.
//!
//! ```
//! use hwbp_x86::dr7::{Condition, Size, SlotEnable};
//! use hwbp_x86::image::RegisterImage;
//! use hwbp_x86::slot::DrSlot;
//! use hwbp_x86::dr7::Dr7;
//!
//! let slot = DrSlot { addr: 0x1000, condition: Condition::Write, size: Size::Four, enable: SlotEnable::GLOBAL };
//! assert_eq!(slot.to_string(), "addr=0x1000 rw=write len=4 enable=global");
//! let image = RegisterImage::from_slots(&[slot], Dr7::default());
//! assert_eq!(
//!     image.to_string(),
//!     "DR0: addr=0x1000 rw=write len=4 enable=global\n\
//!      DR1: addr=0x0 rw=execute len=1 enable=off\n\
//!      DR2: addr=0x0 rw=execute len=1 enable=off\n\
//!      DR3: addr=0x0 rw=execute len=1 enable=off\n\
//!      DR7: 0xd0002 LE=0 GE=0 RTM=0 GD=0 \
//!      | 0: L=0 G=1 RW=write LEN=4 | 1: L=0 G=0 RW=execute LEN=1 \
//!      | 2: L=0 G=0 RW=execute LEN=1 | 3: L=0 G=0 RW=execute LEN=1"
//! );
//! ```

use core::fmt;

use crate::dr7::{Condition, Dr7, Size, SlotEnable};
use crate::image::RegisterImage;
use crate::slot::DrSlot;

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Condition::Execute => "execute",
            Condition::Write => "write",
            Condition::Io => "io",
            Condition::ReadWrite => "read-write",
        })
    }
}

/// The number of bytes.
impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.bytes())
    }
}

/// `off`, `local`, `global` or `local+global`.
impl fmt::Display for SlotEnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.contains(SlotEnable::LOCAL);
        let global = self.contains(SlotEnable::GLOBAL);
        f.write_str(match (local, global) {
            (false, false) => "off",
            (true, false) => "local",
            (false, true) => "global",
            (true, true) => "local+global",
        })
    }
}

/// `addr=0x1000 rw=write len=4 enable=global`.
impl fmt::Display for DrSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "addr={:#x} rw={} len={} enable={}",
            self.addr, self.condition, self.size, self.enable
        )
    }
}

/// The raw value in hex, the control bits, then each slot's fields.
impl fmt::Display for Dr7 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = self.raw();
        let bit = |mask: u64| u8::from(raw & mask != 0);
        write!(
            f,
            "{raw:#x} LE={} GE={} RTM={} GD={}",
            bit(Dr7::LE),
            bit(Dr7::GE),
            bit(Dr7::RTM),
            bit(Dr7::GD)
        )?;
        for n in 0..Dr7::SLOTS {
            let e = self.enable(n);
            write!(
                f,
                " | {n}: L={} G={} RW={} LEN={}",
                u8::from(e.contains(SlotEnable::LOCAL)),
                u8::from(e.contains(SlotEnable::GLOBAL)),
                self.condition(n),
                self.size(n)
            )?;
        }
        Ok(())
    }
}

/// One line per register: DR0–DR3 as slots, then DR7.
impl fmt::Display for RegisterImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dr7 = Dr7::from_raw(self.dr7);
        for (n, &addr) in self.addr.iter().enumerate() {
            writeln!(f, "DR{n}: {}", DrSlot::from_regs(addr, dr7, n))?;
        }
        write!(f, "DR7: {dr7}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hwbp_core::{Image, Pool, SlotCounts};

    #[test]
    fn slot_fields_are_all_decoded_with_the_address_in_hex() {
        let s = DrSlot {
            addr: 0xffff_8000_0000_1238,
            condition: Condition::ReadWrite,
            size: Size::Eight,
            enable: SlotEnable::LOCAL | SlotEnable::GLOBAL,
        };
        assert_eq!(
            s.to_string(),
            "addr=0xffff800000001238 rw=read-write len=8 enable=local+global"
        );
        let io = DrSlot {
            addr: 0x3f8,
            condition: Condition::Io,
            size: Size::Two,
            enable: SlotEnable::LOCAL,
        };
        assert_eq!(io.to_string(), "addr=0x3f8 rw=io len=2 enable=local");
        assert_eq!(
            DrSlot::DISABLED.to_string(),
            "addr=0x0 rw=execute len=1 enable=off"
        );
    }

    #[test]
    fn dr7_shows_control_bits_and_every_slot() {
        let mut d = Dr7::from_raw(Dr7::RESERVED_ONE | Dr7::GD | Dr7::RTM);
        d.set_enable(3, SlotEnable::LOCAL);
        d.set_condition(3, Condition::Write);
        d.set_size(3, Size::Two);
        d.update_exact();
        assert_eq!(
            d.to_string(),
            "0x50002d40 LE=1 GE=0 RTM=1 GD=1 | 0: L=0 G=0 RW=execute LEN=1 \
             | 1: L=0 G=0 RW=execute LEN=1 | 2: L=0 G=0 RW=execute LEN=1 \
             | 3: L=1 G=0 RW=write LEN=2"
        );
    }

    #[test]
    fn register_image_of_a_core_image() {
        let mut image = Image::<DrSlot>::empty(SlotCounts::Shared(4));
        image.pools[Pool(0).index()][1] = DrSlot {
            addr: 0x7fff_0010,
            condition: Condition::Execute,
            size: Size::One,
            enable: SlotEnable::GLOBAL,
        };
        let text = RegisterImage::from_image(&image).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "DR0: addr=0x0 rw=execute len=1 enable=off");
        assert_eq!(
            lines[1],
            "DR1: addr=0x7fff0010 rw=execute len=1 enable=global"
        );
        assert!(lines[4].starts_with("DR7: 0x208 LE=0 GE=1 RTM=0 GD=0 | 0: L=0 G=0"));
        // The core's image prints the same slots, one line each.
        assert_eq!(
            image.to_string(),
            "pool 0 slot 0: addr=0x0 rw=execute len=1 enable=off\n\
             pool 0 slot 1: addr=0x7fff0010 rw=execute len=1 enable=global\n\
             pool 0 slot 2: addr=0x0 rw=execute len=1 enable=off\n\
             pool 0 slot 3: addr=0x0 rw=execute len=1 enable=off"
        );
    }
}
