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
//! | DR7 bits 63:32 set, or reserved-zero bits 12, 14, 15 | [`Error::InvalidImage`] |
//! | an address beyond 32 bits in 32-bit mode             | [`Error::InvalidImage`] |
//! | enabled slot with LEN `10` in 32-bit mode (undefined) | [`Error::InvalidImage`] |
//! | enabled slot with R/W `10` and CR4.DE clear (undefined) | [`Error::InvalidImage`] |
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
            return Err(Error::InvalidImage);
        }
        if self.mode() == Mode::Bits32 && image.addr.iter().any(|&a| a > u64::from(u32::MAX)) {
            return Err(Error::InvalidImage);
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
                return Err(Error::InvalidImage);
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
                Condition::Io => return Err(Error::InvalidImage),
            };
            let request = BreakpointAttr {
                addr,
                len: slot.size.bytes(),
                access,
                disabled: false,
                ..*template
            };
            // The same rules as for requests made directly: alignment, address
            // width, kernel addresses.
            let encoded = single.encode_slot(&request)?;
            // Re-encoding the request must give back the slot's fields, or the
            // generic form would not describe what the hardware does.
            if (encoded.addr, encoded.condition, encoded.size)
                != (slot.addr, slot.condition, slot.size)
            {
                return Err(Error::InvalidImage);
            }
            out.request = Some(request);
        }
        Ok(Imported {
            slots,
            control: dr7.control(),
        })
    }
}
