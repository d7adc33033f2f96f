//! Raw register images: the ptrace / hypervisor shortcut.
//!
//! A ptrace implementation (`PTRACE_POKEUSER` of `u_debugreg`) or a hypervisor
//! (`KVM_SET_GUEST_DEBUG`-style) is handed DR0–DR3 and DR7 as numbers.
//! [`Encoder::import`] turns such an image into validated generic requests,
//! one per enabled slot, and keeps everything it read so that
//! [`Imported::export`] gives back exactly the same image: no detour through
//! the generic form loses a bit.
//!
//! Refused images:
//!
//! | image                                                | error |
//! |------------------------------------------------------|-------|
//! | DR7 bits 63:32 set, or reserved-zero bits 12, 14, 15 | [`HardwareError::InvalidImage`](hwbp_core::HardwareError::InvalidImage) |
//! | an address beyond 32 bits in 32-bit mode             | [`HardwareError::InvalidImage`](hwbp_core::HardwareError::InvalidImage) |
//! | enabled slot with LEN `10` in 32-bit mode (undefined) | [`HardwareError::InvalidImage`](hwbp_core::HardwareError::InvalidImage) |
//! | enabled slot with R/W `10` and CR4.DE clear (undefined) | [`HardwareError::InvalidImage`](hwbp_core::HardwareError::InvalidImage) |
//! | enabled slot with R/W `10` and CR4.DE set: an I/O breakpoint, which has no generic form | [`Error::UnsupportedAccess`] |
//! | enabled execute slot with LEN ≠ `00`                 | [`Error::UnsupportedLength`] |
//! | enabled data slot whose address is not a multiple of its length (the hardware would silently watch the aligned bytes instead) | [`Error::Misaligned`] |
//! | enabled slot on a kernel address, template `exclude_kernel` | [`Error::KernelAddress`] |
//!
//! Disabled slots are kept verbatim whatever their fields say: they are inert.
//! DR7's control bits (LE, GE, GD, RTM, bit 10) are kept in
//! [`Imported::control`]; whether to honour GD or RTM is the caller's policy.

use hwbp_core::{Access, BreakpointAttr, Error, Image, Pool};

use crate::dr7::{Condition, Dr7, Size};
use crate::encode::{Encoder, Mode, RegionPolicy};
use crate::slot::DrSlot;

/// DR0–DR3 and DR7 as raw numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegisterImage {
    /// DR0–DR3.
    pub addr: [u64; 4],
    /// DR7.
    pub dr7: u64,
}

impl RegisterImage {
    /// Build an image from slots (at most 4 are used) and the control bits of
    /// DR7 (its slot fields are overwritten).
    pub fn from_slots(slots: &[DrSlot], control: Dr7) -> Self {
        let mut dr7 = control.control();
        let mut addr = [0; 4];
        for (n, (s, a)) in slots.iter().zip(addr.iter_mut()).enumerate() {
            *a = s.addr;
            s.apply(&mut dr7, n);
        }
        RegisterImage {
            addr,
            dr7: dr7.raw(),
        }
    }

    /// Export the slots of an [`Image`] as the core keeps it (pool 0), with
    /// `LE`/`GE` set to match the enables.
    pub fn from_image(image: &Image<DrSlot>) -> Self {
        let mut slots = [DrSlot::DISABLED; 4];
        for (n, s) in slots.iter_mut().enumerate() {
            *s = image.get(Pool(0), n).unwrap_or_default();
        }
        let mut img = Self::from_slots(&slots, Dr7::default());
        let mut dr7 = Dr7::from_raw(img.dr7);
        dr7.update_exact();
        img.dr7 = dr7.raw();
        img
    }

    /// The four slots the image describes.
    pub fn slots(&self) -> [DrSlot; 4] {
        let dr7 = Dr7::from_raw(self.dr7);
        let mut out = [DrSlot::DISABLED; 4];
        for (n, (s, &a)) in out.iter_mut().zip(self.addr.iter()).enumerate() {
            *s = DrSlot::from_regs(a, dr7, n);
        }
        out
    }
}

/// One slot of an imported image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImportedSlot {
    /// The slot exactly as read.
    pub slot: DrSlot,
    /// The validated generic request, for an enabled slot.
    pub request: Option<BreakpointAttr>,
}

/// A validated register image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Imported {
    /// Per slot, what was read and what it means.
    pub slots: [ImportedSlot; 4],
    /// DR7 without its slot fields: LE, GE, GD, RTM and bit 10 as read.
    pub control: Dr7,
}

impl Imported {
    /// The image this was imported from, bit for bit.
    pub fn export(&self) -> RegisterImage {
        let slots = self.slots.map(|s| s.slot);
        RegisterImage::from_slots(&slots, self.control)
    }

    /// The generic requests of the enabled slots, with their slot numbers.
    pub fn requests(&self) -> impl Iterator<Item = (usize, BreakpointAttr)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(n, s)| s.request.map(|r| (n, r)))
    }
}

impl Encoder {
    /// Validate a raw image and turn each enabled slot into a generic request.
    ///
    /// `template` supplies everything the registers do not say (target, pinned,
    /// sample period, exclude flags…); its address, length, access and
    /// `disabled` are replaced per slot. With `template.exclude_kernel` set,
    /// kernel addresses are refused, as a ptrace implementation must.
    pub fn import(
        &self,
        image: &RegisterImage,
        template: &BreakpointAttr,
    ) -> Result<Imported, Error> {
        let reserved_zero = !0xffff_ffffu64 | (1 << 12) | (1 << 14) | (1 << 15);
        if image.dr7 & reserved_zero != 0 {
            return Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage));
        }
        if self.mode() == Mode::Bits32 && image.addr.iter().any(|&a| a > u64::from(u32::MAX)) {
            return Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage));
        }
        let dr7 = Dr7::from_raw(image.dr7);
        let single = self.with_policy(RegionPolicy::Single);
        let mut slots = [ImportedSlot {
            slot: DrSlot::DISABLED,
            request: None,
        }; 4];
        for (n, (out, &addr)) in slots.iter_mut().zip(image.addr.iter()).enumerate() {
            let slot = DrSlot::from_regs(addr, dr7, n);
            out.slot = slot;
            if !slot.is_enabled() {
                continue;
            }
            if !self.mode().allows(slot.size) {
                return Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage));
            }
            let access = match slot.condition {
                Condition::Execute => {
                    if slot.size != Size::One {
                        return Err(Error::UnsupportedLength {
                            len: slot.size.bytes(),
                        });
                    }
                    Access::EXEC
                }
                Condition::Write => Access::WRITE,
                Condition::ReadWrite => Access::RW,
                Condition::Io if self.io_breakpoints() => return Err(Error::UnsupportedAccess),
                Condition::Io => {
                    return Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage))
                }
            };
            let request = (*template)
                .addr(addr)
                .len(slot.size.bytes())
                .access(access)
                .disabled(false);
            // The same rules as for requests made directly: alignment, address
            // width, kernel addresses.
            let encoded = single.encode_slot(&request)?;
            // Re-encoding the request must give back the slot's fields, or the
            // generic form would not describe what the hardware does.
            if (encoded.addr, encoded.condition, encoded.size)
                != (slot.addr, slot.condition, slot.size)
            {
                return Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage));
            }
            out.request = Some(request);
        }
        Ok(Imported {
            slots,
            control: dr7.control(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dr7::SlotEnable;
    use hwbp_core::Target;
    use proptest::prelude::*;

    fn user() -> BreakpointAttr {
        BreakpointAttr::watch(0, 1, Access::WRITE)
            .target(Target::Task {
                task: hwbp_core::TaskId(42),
                cpu: None,
            })
            .user_only()
    }

    fn img(slots: &[(usize, u64, Condition, Size, SlotEnable)], control: u64) -> RegisterImage {
        let mut out = [DrSlot::DISABLED; 4];
        for &(n, addr, condition, size, enable) in slots {
            out[n] = DrSlot {
                addr,
                condition,
                size,
                enable,
            };
        }
        RegisterImage::from_slots(&out, Dr7::from_raw(control))
    }

    #[test]
    fn import_gives_requests_and_exports_the_same_bits() {
        let g = SlotEnable::GLOBAL;
        let l = SlotEnable::LOCAL;
        let image = img(
            &[
                (0, 0x601040, Condition::Write, Size::Four, l),
                (1, 0x401136, Condition::Execute, Size::One, g | l),
                (3, 0x601048, Condition::ReadWrite, Size::Eight, g),
            ],
            Dr7::LE | Dr7::GE | Dr7::RESERVED_ONE,
        );
        let imp = Encoder::new(Mode::Bits64).import(&image, &user()).unwrap();
        let reqs: Vec<_> = imp.requests().collect();
        assert_eq!(reqs.len(), 3);
        assert_eq!(
            (reqs[0].0, reqs[0].1.addr, reqs[0].1.len, reqs[0].1.access),
            (0, 0x601040, 4, Access::WRITE)
        );
        assert_eq!(
            (reqs[1].0, reqs[1].1.addr, reqs[1].1.len, reqs[1].1.access),
            (1, 0x401136, 1, Access::EXEC)
        );
        assert_eq!(
            (reqs[2].0, reqs[2].1.addr, reqs[2].1.len, reqs[2].1.access),
            (3, 0x601048, 8, Access::RW)
        );
        // The template's target and policy carried over.
        assert!(reqs
            .iter()
            .all(|(_, r)| r.exclude_kernel && r.task() == Some(hwbp_core::TaskId(42))));
        assert_eq!(imp.export(), image);
    }

    #[test]
    fn disabled_slots_and_control_bits_survive() {
        // Slot 2 holds an address and an I/O condition but is disabled: inert,
        // kept verbatim. GD and RTM are kept too.
        let image = img(
            &[(
                2,
                0xdead_beef,
                Condition::Io,
                Size::Two,
                SlotEnable::empty(),
            )],
            Dr7::GD | Dr7::RTM | Dr7::RESERVED_ONE,
        );
        let imp = Encoder::new(Mode::Bits64).import(&image, &user()).unwrap();
        assert_eq!(imp.requests().count(), 0);
        assert_eq!(imp.export(), image);
        assert_eq!(imp.control.raw(), Dr7::GD | Dr7::RTM | Dr7::RESERVED_ONE);
    }

    #[test]
    fn refused_images() {
        let e64 = Encoder::new(Mode::Bits64);
        let e32 = Encoder::new(Mode::Bits32);
        let g = SlotEnable::GLOBAL;
        let one = |addr, c, s| img(&[(0, addr, c, s, g)], 0);
        let k = BreakpointAttr::watch(0, 1, Access::WRITE); // kernel template
                                                            // Reserved DR7 bits.
        for bit in [12, 14, 15, 32, 63] {
            let mut i = one(0x1000, Condition::Write, Size::One);
            i.dr7 |= 1 << bit;
            assert_eq!(
                e64.import(&i, &k),
                Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage)),
                "bit {bit}"
            );
        }
        // Address too wide for 32-bit mode (even in a disabled slot).
        let mut i = RegisterImage::default();
        i.addr[3] = 1 << 32;
        assert_eq!(
            e32.import(&i, &k),
            Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage))
        );
        // LEN 10 is undefined in 32-bit mode.
        assert_eq!(
            e32.import(&one(0x1000, Condition::Write, Size::Eight), &k),
            Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage))
        );
        // I/O: undefined without CR4.DE, no generic form with it.
        assert_eq!(
            e64.import(&one(0x3f8, Condition::Io, Size::One), &k),
            Err(Error::Hardware(hwbp_core::HardwareError::InvalidImage))
        );
        assert_eq!(
            e64.with_io_breakpoints(true)
                .import(&one(0x3f8, Condition::Io, Size::One), &k),
            Err(Error::UnsupportedAccess)
        );
        // Execute with LEN != 00.
        assert_eq!(
            e64.import(&one(0x1000, Condition::Execute, Size::Four), &k),
            Err(Error::UnsupportedLength { len: 4 })
        );
        // Misaligned for its length.
        assert_eq!(
            e64.import(&one(0x1002, Condition::Write, Size::Four), &k),
            Err(Error::Misaligned {
                addr: 0x1002,
                align: 4
            })
        );
        // Kernel address in a user image; fine in a kernel one.
        let kimg = one(0xffff_ffff_8100_0000, Condition::ReadWrite, Size::Eight);
        assert_eq!(e64.import(&kimg, &user()), Err(Error::KernelAddress));
        assert!(e64.import(&kimg, &k).is_ok());
    }

    #[test]
    fn requests_re_encode_to_the_same_slots() {
        let enc = Encoder::new(Mode::Bits64);
        let image = img(
            &[
                (0, 0x1000, Condition::Write, Size::Two, SlotEnable::GLOBAL),
                (
                    2,
                    0x2008,
                    Condition::ReadWrite,
                    Size::Eight,
                    SlotEnable::GLOBAL,
                ),
            ],
            Dr7::GE | Dr7::RESERVED_ONE,
        );
        let imp = enc.import(&image, &user()).unwrap();
        let mut slots = [DrSlot::DISABLED; 4];
        for (n, r) in imp.requests() {
            let e = enc.encode(&r).unwrap();
            assert_eq!(e.weight(), 1);
            slots[n] = e.pieces[0].slot;
        }
        assert_eq!(RegisterImage::from_slots(&slots, imp.control), image);
    }

    #[test]
    fn export_from_core_image() {
        let mut core = Image::empty(hwbp_core::SlotCounts::Shared(4));
        core.pools[0][1] = DrSlot {
            addr: 0x7000,
            condition: Condition::Write,
            size: Size::Four,
            enable: SlotEnable::GLOBAL,
        };
        let out = RegisterImage::from_image(&core);
        assert_eq!(out.addr, [0, 0x7000, 0, 0]);
        let dr7 = Dr7::from_raw(out.dr7);
        assert_eq!(dr7.enabled_mask(), 0b10);
        assert_eq!(out.dr7 & Dr7::GE, Dr7::GE);
        assert_eq!(out.slots()[1], core.pools[0][1]);
    }

    fn valid_slot(mode: Mode) -> impl Strategy<Value = DrSlot> {
        let max_len = mode.max_len();
        (0u64..0x7fff_0000, 0u8..4, 0u8..4, 0u8..4).prop_filter_map("valid", move |(a, c, s, e)| {
            let enable = SlotEnable::from_bits_truncate(e);
            let mut condition = Condition::from_bits(c);
            let mut size = Size::from_bits(s);
            if !enable.is_empty() {
                if condition == Condition::Io {
                    condition = Condition::ReadWrite;
                }
                if condition == Condition::Execute {
                    size = Size::One;
                }
                if size.bytes() > max_len {
                    return None;
                }
            }
            let addr = if enable.is_empty() {
                a
            } else {
                a & !(size.bytes() - 1)
            };
            Some(DrSlot {
                addr,
                condition,
                size,
                enable,
            })
        })
    }

    proptest! {
        /// Every valid image survives import/export bit for bit.
        #[test]
        fn round_trip_valid_images(
            big in any::<bool>(),
            slots in proptest::array::uniform4(valid_slot(Mode::Bits32)),
            control in prop::sample::select(vec![0u64, Dr7::RESERVED_ONE, Dr7::GE | Dr7::RESERVED_ONE, Dr7::LE | Dr7::GD, Dr7::RTM]),
        ) {
            let mode = if big { Mode::Bits64 } else { Mode::Bits32 };
            let image = RegisterImage::from_slots(&slots, Dr7::from_raw(control));
            let imp = Encoder::new(mode).import(&image, &BreakpointAttr::watch(0, 1, Access::WRITE));
            prop_assert!(imp.is_ok(), "{:?}: {:?}", image, imp);
            let imp = imp.unwrap();
            prop_assert_eq!(imp.export(), image);
            prop_assert_eq!(imp.requests().count(), slots.iter().filter(|s| s.is_enabled()).count());
        }

        /// Arbitrary images: import never panics, and whatever it accepts
        /// exports back unchanged.
        #[test]
        fn import_total_and_lossless(
            addr in proptest::array::uniform4(prop_oneof![any::<u64>(), 0u64..0x1_0000]),
            dr7 in prop_oneof![any::<u64>(), any::<u32>().prop_map(u64::from), any::<u16>().prop_map(|v| u64::from(v) << 16 | 0xff)],
            big in any::<bool>(),
            de in any::<bool>(),
            xk in any::<bool>(),
        ) {
            let mode = if big { Mode::Bits64 } else { Mode::Bits32 };
            let enc = Encoder::new(mode).with_io_breakpoints(de);
            let image = RegisterImage { addr, dr7 };
            let template = BreakpointAttr::watch(0, 1, Access::WRITE).exclude_kernel(xk);
            if let Ok(imp) = enc.import(&image, &template) {
                prop_assert_eq!(imp.export(), image);
                for (_, r) in imp.requests() {
                    prop_assert!(enc.encode(&r).is_ok());
                }
            }
        }
    }
}
