//! The [`Arch`] implementation: installs slot images and decodes #DB.

use hwbp_core::{
    Access, AddressSpace, Arch, BreakpointAttr, Decoded, Encoding, Error, Fired, Image, Pool,
    Resume, SlotCounts,
};

use crate::dr6::Dr6;
use crate::dr7::{Condition, Dr7};
use crate::encode::{Encoder, SLOTS};
use crate::image::RegisterImage;
use crate::regs::{DebugReg, DebugRegs};
use crate::slot::DrSlot;

/// What the embedder's #DB handler hands to [`Arch::decode`].
///
/// Read DR6 first thing in the handler (before anything can take another #DB)
/// — with [`X86::read_dr6`] or directly — and pass it here with the saved
/// instruction pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DebugException {
    /// DR6 as read from the hardware (raw, active-low bits not yet flipped).
    pub dr6: u64,
    /// The saved RIP/EIP: for an instruction breakpoint (a fault) the address of
    /// the instruction that did not run yet; for a data breakpoint (a trap) the
    /// instruction after the one that accessed the data.
    pub ip: u64,
}

/// The x86 debug-register backend for one kind of register access `R`:
/// [`crate::Cpu`] on real hardware (ring 0), [`crate::ModelRegs`] on the host.
#[derive(Debug)]
pub struct X86<R> {
    encoder: Encoder,
    regs: R,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl X86<crate::regs::Cpu> {
    /// The backend for the real debug registers, with [`Encoder::default`].
    ///
    /// # Safety
    ///
    /// As [`crate::Cpu::new`]: every use runs at CPL 0 with DR7.GD clear, and
    /// this value is the only thing that reads or writes DR0–DR7 on every CPU
    /// it is used on.
    pub const unsafe fn new() -> Self {
        X86 {
            encoder: Encoder::new(crate::encode::Mode::NATIVE),
            // SAFETY: forwarded to our caller.
            regs: unsafe { crate::regs::Cpu::new() },
        }
    }
}

impl<R: DebugRegs> X86<R> {
    /// A backend over `regs` with the given encoder. Safe: owning an `R` is
    /// already the right to use its registers.
    pub const fn with_regs(encoder: Encoder, regs: R) -> Self {
        X86 { encoder, regs }
    }

    /// Replace the encoder (mode, CR4.DE, policy, user/kernel split).
    #[must_use]
    pub fn with_encoder(mut self, encoder: Encoder) -> Self {
        self.encoder = encoder;
        self
    }

    /// The encoder.
    pub const fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The register access.
    pub const fn regs(&self) -> &R {
        &self.regs
    }

    /// Read DR6 of the calling CPU, for building a [`DebugException`].
    pub fn read_dr6(&self, cpu: u16) -> u64 {
        self.regs.read(cpu, DebugReg::Dr6)
    }

    /// Disable every slot and clear DR6 on the calling CPU (boot, CPU online),
    /// keeping DR7's control and reserved bits.
    pub fn reset(&self, cpu: u16) {
        let dr7 = Dr7::from_raw(self.regs.read(cpu, DebugReg::Dr7));
        let mut clean = dr7.control();
        clean.update_exact();
        if clean != dr7 {
            self.regs.write(cpu, DebugReg::Dr7, clean.raw());
        }
        self.regs.write(cpu, DebugReg::Dr6, Dr6::QUIET);
    }

    /// The current DR0–DR3 and DR7 of the calling CPU.
    pub fn read_image(&self, cpu: u16) -> RegisterImage {
        let mut addr = [0; 4];
        for (n, a) in addr.iter_mut().enumerate() {
            if let Some(r) = DebugReg::addr(n) {
                *a = self.regs.read(cpu, r);
            }
        }
        RegisterImage {
            addr,
            dr7: self.regs.read(cpu, DebugReg::Dr7),
        }
    }
}

fn slot_of(image: &Image<DrSlot>, n: usize) -> DrSlot {
    image.get(Pool(0), n).unwrap_or_default()
}

impl<R: DebugRegs> Arch for X86<R> {
    type Slot = DrSlot;
    type Exception = DebugException;

    fn slot_counts(&self) -> SlotCounts {
        SlotCounts::Shared(SLOTS)
    }

    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<DrSlot>, Error> {
        self.encoder.encode(attr)
    }

    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        self.encoder.address_space(addr, len)
    }

    /// Writes only what changed, in three steps: clear the enables of slots
    /// whose address is about to change, write those addresses, then write the
    /// final DR7 (enables, conditions, lengths, LE/GE) once. A slot is thus
    /// never enabled with a half-updated address. A slot being disabled keeps
    /// its stale address (DR7 alone disables it); a slot being enabled from the
    /// disabled state always gets its address written, because the image does
    /// not say what the disabled register held.
    fn install(&self, cpu: u16, current: &Image<DrSlot>, desired: &Image<DrSlot>) {
        let n_slots = usize::from(SLOTS);
        let mut write_addr = [false; 4];
        let mut changed = false;
        for (n, w) in write_addr.iter_mut().enumerate().take(n_slots) {
            let (cur, des) = (slot_of(current, n), slot_of(desired, n));
            changed |= cur != des;
            *w = des.is_enabled() && (!cur.is_enabled() || cur.addr != des.addr);
        }
        if !changed {
            return;
        }
        let hw = Dr7::from_raw(self.regs.read(cpu, DebugReg::Dr7));
        let mut dr7 = hw;
        for (n, &w) in write_addr.iter().enumerate() {
            if w && dr7.enabled(n) {
                dr7.set_enable(n, crate::dr7::SlotEnable::empty());
            }
        }
        if dr7 != hw {
            self.regs.write(cpu, DebugReg::Dr7, dr7.raw());
        }
        let written = dr7;
        for (n, &w) in write_addr.iter().enumerate() {
            if let (true, Some(reg)) = (w, DebugReg::addr(n)) {
                self.regs.write(cpu, reg, slot_of(desired, n).addr);
            }
        }
        for n in 0..n_slots {
            slot_of(desired, n).apply(&mut dr7, n);
        }
        dr7.update_exact();
        if dr7 != written {
            self.regs.write(cpu, DebugReg::Dr7, dr7.raw());
        }
    }

    /// Decodes DR6 and writes it back quiet.
    ///
    /// - Only B bits of slots enabled in DR7 count: the SDM allows the others
    ///   to be set by conditions met on disabled slots.
    /// - Instruction breakpoints are faults: when one is reported the caller
    ///   must set RFLAGS.RF in the saved frame ([`Resume::SetResumeFlag`]) or
    ///   the instruction faults again. Data breakpoints are traps: the access
    ///   is done and the handler sees the new value ([`Resume::Return`]).
    /// - Single step (BS) together with an instruction breakpoint: the step
    ///   wins and the instruction slot is not reported. TF and data breakpoints
    ///   are both traps and merge, but an instruction breakpoint is a fault of
    ///   the *next* instruction; since RF is not set on return, it faults again
    ///   right away and is reported then, on its own. Linux makes the same
    ///   choice (`hw_breakpoint_handler` in `arch/x86/kernel/hw_breakpoint.c`
    ///   skips execute slots when `DR_STEP` is set and delays them to the next
    ///   exception). Data slots reported together with BS are delivered; the
    ///   step itself belongs to whoever set TF, and the caller sees BS in the
    ///   [`DebugException`] it passed in.
    /// - Nothing of ours (BS, BD, BT alone, or only disabled slots' bits):
    ///   [`Fired::None`] and [`Resume::NotOurs`].
    ///
    /// `addr` is the instruction address for instruction breakpoints and the
    /// watched address of the lowest fired data slot otherwise (DR6 does not
    /// say which byte was accessed). `access` is `EXEC` or `WRITE` when every
    /// fired slot says so, empty when a read-write slot fired (x86 does not say
    /// whether it was a read or a write).
    fn decode(&self, cpu: u16, raw: &DebugException) -> Decoded {
        let dr6 = Dr6::from_raw(raw.dr6);
        self.regs.write(cpu, DebugReg::Dr6, Dr6::QUIET);
        let dr7 = Dr7::from_raw(self.regs.read(cpu, DebugReg::Dr7));
        let mut mask = dr6.slots() & dr7.enabled_mask();
        let mut exec = 0u8;
        for n in 0..usize::from(SLOTS) {
            if dr7.condition(n) == Condition::Execute {
                exec |= 1 << n;
            }
        }
        if dr6.contains(Dr6::BS) {
            mask &= !exec;
        }
        if mask == 0 {
            return Decoded {
                fired: Fired::None,
                addr: raw.ip,
                ip: raw.ip,
                access: Access::empty(),
                resume: Resume::NotOurs,
            };
        }
        let (addr, resume) = if mask & exec != 0 {
            (raw.ip, Resume::SetResumeFlag)
        } else {
            let first = mask.trailing_zeros() as usize;
            let a = DebugReg::addr(first).map_or(0, |r| self.regs.read(cpu, r));
            (a, Resume::Return)
        };
        let mut access = Access::all();
        for n in 0..usize::from(SLOTS) {
            if mask & (1 << n) != 0 {
                access &= match dr7.condition(n) {
                    Condition::Execute => Access::EXEC,
                    Condition::Write => Access::WRITE,
                    Condition::ReadWrite | Condition::Io => Access::empty(),
                };
            }
        }
        Decoded {
            fired: Fired::Slots {
                pool: Pool(0),
                mask: u32::from(mask),
            },
            addr,
            ip: raw.ip,
            access,
            resume,
        }
    }
}
