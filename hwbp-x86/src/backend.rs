//! [`X86Backend`], the [`Arch`] implementation: installs slot images and
//! decodes #DB.

use hwbp_core::{
    Access, AddressSpace, Arch, BreakpointAttr, Decoded, Encoding, Error, Fired, Image, Pool,
    Resume, SlotCounts,
};

use core::sync::atomic::Ordering::Relaxed;

// 64-bit where the target has it, a critical section where it does not
// (Cortex-M, 32-bit RISC-V).
use hwbp_core::atomic::AtomicU64;

use crate::exception::X86Exception;

use crate::dr6::Dr6;
use crate::dr7::{Condition, Dr7};
use crate::encode::{Encoder, SLOTS};
use crate::image::RegisterImage;
use crate::regs::{DebugReg, DebugRegs};
use crate::slot::DrSlot;

/// The x86 debug-register backend for one kind of register access `R`:
/// [`Cpu`](crate::regs) on real hardware (ring 0), `model::ModelRegs`
/// (feature `model`) on the host.
///
/// Its per-CPU state ([`X86CpuState`], kept by the manager) is the record
/// of what it installed, which [`Arch::decode`] reads instead of the live
/// DR7; x86 always has four slots, so [`Arch::discover`] cannot fail.
#[derive(Debug)]
pub struct X86Backend<R> {
    encoder: Encoder,
    regs: R,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl X86Backend<crate::regs::Cpu> {
    /// The backend for the real debug registers, with [`Encoder::default`].
    ///
    /// # Safety
    ///
    /// As [`crate::Cpu::new`]: every use runs at CPL 0 with DR7.GD clear, and
    /// this value is the only thing that reads or writes DR0–DR7 on every CPU
    /// it is used on.
    pub const unsafe fn new() -> Self {
        X86Backend {
            encoder: Encoder::new(crate::encode::Mode::NATIVE),
            // SAFETY: forwarded to our caller.
            regs: unsafe { crate::regs::Cpu::new() },
        }
    }
}

impl<R: DebugRegs> X86Backend<R> {
    /// A backend over `regs` with the given encoder. Safe: owning an `R` is
    /// already the right to use its registers.
    pub const fn with_regs(encoder: Encoder, regs: R) -> Self {
        X86Backend { encoder, regs }
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

    /// The register access. Reads are safe through it; writes are `unsafe`
    /// ([`DebugRegs::write`]): a write that sets DR7.GD or changes a slot
    /// behind the backend's back breaks what the backend relies on.
    pub const fn regs(&self) -> &R {
        &self.regs
    }

    /// Write a register as the owner.
    fn write(&self, cpu: u16, reg: DebugReg, value: u64) {
        // SAFETY: the backend owns the registers (constructor contract), and
        // every value it writes keeps DR7.GD as the register held it (clear
        // under `Cpu::new`'s contract): DR7 images come from `Dr7::control`,
        // `DrSlot::apply` and `set_enable`, which never set GD.
        unsafe { self.regs.write(cpu, reg, value) }
    }

    /// Read DR6 of the calling CPU, for building an [`X86Exception`].
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
            self.write(cpu, DebugReg::Dr7, clean.raw());
        }
        self.write(cpu, DebugReg::Dr6, Dr6::QUIET);
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

/// The x86 backend's state for one CPU ([`Arch::CpuState`]): DR7 as the
/// backend last wrote it on that CPU (by [`Arch::init_cpu`] and
/// [`Arch::install`]).
///
/// [`Arch::decode`] works from this record, not from the live DR7, so an
/// embedder may clear DR7 on #DB entry and restore it on return, as Linux
/// does (`local_db_save`/`local_db_restore`): a nested #DB cannot then be
/// raised inside the handler, and hits are still decoded. Slots the record
/// does not enable but the live DR7 does (a debugger that programs its
/// reserved registers itself) are decoded from the live DR7. An embedder
/// that clears DR7 on entry restores it before any [`Arch::install`] on that
/// CPU (`Manager::sync` after the handler returns, not inside it).
#[derive(Debug)]
pub struct X86CpuState {
    dr7: AtomicU64,
}

impl Default for X86CpuState {
    fn default() -> Self {
        Self::new()
    }
}

impl X86CpuState {
    /// Nothing installed yet.
    pub const fn new() -> Self {
        X86CpuState {
            dr7: AtomicU64::new(0),
        }
    }

    /// DR7 as the backend last wrote it on this CPU.
    pub fn installed_dr7(&self) -> Dr7 {
        Dr7::from_raw(self.dr7.load(Relaxed))
    }

    fn record(&self, dr7: Dr7) {
        self.dr7.store(dr7.raw(), Relaxed);
    }
}

/// The DR7 to decode with: the record's slots, and the live register's for
/// slots the record does not enable.
fn decode_dr7(record: Dr7, live: Dr7) -> Dr7 {
    let mut dr7 = record;
    for n in 0..usize::from(SLOTS) {
        if !record.enabled(n) && live.enabled(n) {
            dr7.set_enable(n, live.enable(n));
            dr7.set_condition(n, live.condition(n));
            dr7.set_size(n, live.size(n));
        }
    }
    dr7
}

fn slot_of(image: &Image<DrSlot>, n: usize) -> DrSlot {
    image.get(Pool(0), n).unwrap_or_default()
}

impl<R: DebugRegs> Arch for X86Backend<R> {
    type Slot = DrSlot;
    type Exception = X86Exception;
    type CpuState = X86CpuState;
    // An initialiser for the manager's per-CPU array, never shared itself.
    #[allow(clippy::declare_interior_mutable_const)]
    const CPU_STATE_INIT: X86CpuState = X86CpuState::new();

    fn discover(&self) -> Result<SlotCounts, Error> {
        Ok(SlotCounts::Shared(SLOTS))
    }

    /// [`Encoder::encode_validated`]: the core has checked the generic rules.
    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<DrSlot>, Error> {
        self.encoder.encode_validated(attr)
    }

    /// Disables every slot and clears DR6 ([`X86Backend::reset`]): after a reset the
    /// SDM defines DR7 as `0x400`, but firmware or a previous kernel may have
    /// left breakpoints behind. x86 always has 4 slots, so this cannot fail.
    fn init_cpu(&self, cpu: u16, state: &X86CpuState) -> Result<(), Error> {
        self.reset(cpu);
        state.record(Dr7::from_raw(self.regs.read(cpu, DebugReg::Dr7)));
        Ok(())
    }

    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        self.encoder.address_space(addr, len)
    }

    /// Writes only what changed, in three steps: clear the enables of slots
    /// whose address is about to change, write those addresses, then write the
    /// final DR7 (enables, conditions, lengths, LE/GE) once. The DR7 fields of
    /// slots whose image entry is the same in `current` and `desired` are kept
    /// as the register holds them. A slot is thus
    /// never enabled with a half-updated address. A slot being disabled keeps
    /// its stale address (DR7 alone disables it); a slot being enabled from the
    /// disabled state always gets its address written, because the image does
    /// not say what the disabled register held.
    fn install(
        &self,
        cpu: u16,
        state: &X86CpuState,
        current: &Image<DrSlot>,
        desired: &Image<DrSlot>,
    ) {
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
            self.write(cpu, DebugReg::Dr7, dr7.raw());
        }
        let written = dr7;
        for (n, &w) in write_addr.iter().enumerate() {
            if let (true, Some(reg)) = (w, DebugReg::addr(n)) {
                self.write(cpu, reg, slot_of(desired, n).addr);
            }
        }
        for n in 0..n_slots {
            // Slots whose image entry does not change keep what DR7 holds for
            // them (a debugger's reserved slot, say).
            if slot_of(current, n) != slot_of(desired, n) {
                slot_of(desired, n).apply(&mut dr7, n);
            }
        }
        dr7.update_exact();
        if dr7 != written {
            self.write(cpu, DebugReg::Dr7, dr7.raw());
        }
        state.record(dr7);
    }

    /// Decodes DR6 and writes it back quiet.
    ///
    /// - Which slots are enabled and what they watch comes from the record
    ///   of what was installed ([`X86CpuState`]), so DR7 may be cleared on
    ///   #DB entry (Linux does); the live DR7 only adds slots the record
    ///   does not enable (a debugger's own).
    /// - Only B bits of slots enabled in DR7 count: the SDM allows the others
    ///   to be set by conditions met on disabled slots.
    /// - Instruction breakpoints are faults: when one is reported the caller
    ///   must set RFLAGS.RF in the saved frame ([`Resume::SET_RESUME_FLAG`]) or
    ///   the instruction faults again. Data breakpoints are traps: the access
    ///   is done and the handler sees the new value ([`Resume::RETURN`]).
    /// - Single step (BS) together with an instruction breakpoint: the step
    ///   wins and the instruction slot is not reported. TF and data breakpoints
    ///   are both traps and merge, but an instruction breakpoint is a fault of
    ///   the *next* instruction; since RF is not set on return, it faults again
    ///   right away and is reported then, on its own. Linux makes the same
    ///   choice (`hw_breakpoint_handler` in `arch/x86/kernel/hw_breakpoint.c`
    ///   skips execute slots when `DR_STEP` is set and delays them to the next
    ///   exception). Data slots reported together with BS (or BD, BT) are
    ///   delivered and the resume is [`Resume::RETURN`] with
    ///   [`Resume::pass_on`]: the step belongs to whoever set TF, and the
    ///   caller hands the [`X86Exception`] (whose `dr6` still shows BS) on to
    ///   it.
    /// - Nothing of ours (BS, BD, BT alone, or only disabled slots' bits):
    ///   [`Fired::None`] and [`Resume::NOT_OURS`].
    ///
    /// `addr` is the instruction address for instruction breakpoints and the
    /// watched address of the lowest fired data slot otherwise (DR6 does not
    /// say which byte was accessed). `access` is `EXEC` or `WRITE` when every
    /// fired slot says so, empty when a read-write slot fired (x86 does not say
    /// whether it was a read or a write).
    fn decode(&self, cpu: u16, state: &X86CpuState, raw: &X86Exception) -> Decoded {
        let dr6 = Dr6::from_raw(raw.dr6);
        self.write(cpu, DebugReg::Dr6, Dr6::QUIET);
        let live = Dr7::from_raw(self.regs.read(cpu, DebugReg::Dr7));
        let dr7 = decode_dr7(state.installed_dr7(), live);
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
            return Decoded::new(Fired::None, Resume::NOT_OURS)
                .addr(raw.ip)
                .ip(raw.ip)
                .access(Access::empty());
        }
        let (addr, resume) = if mask & exec != 0 {
            (raw.ip, Resume::SET_RESUME_FLAG)
        } else {
            let first = mask.trailing_zeros() as usize;
            let a = DebugReg::addr(first).map_or(0, |r| self.regs.read(cpu, r));
            if dr6.intersects(Dr6::BS | Dr6::BD | Dr6::BT) {
                // Data traps merged with someone else's step or trap.
                (a, Resume::RETURN.and_pass_on())
            } else {
                (a, Resume::RETURN)
            }
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
        Decoded::new(
            Fired::Slots {
                pool: Pool(0),
                mask: u32::from(mask),
            },
            resume,
        )
        .addr(addr)
        .ip(raw.ip)
        .access(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dr7::{Size, SlotEnable};
    use crate::encode::Mode;
    use crate::model::{CpuAccess, Model, ModelRegs, RegWrite};
    use hwbp_core::Access;

    type Regs = ModelRegs<2>;

    fn backend(regs: &Regs) -> X86Backend<&Regs> {
        X86Backend::with_regs(Encoder::new(Mode::Bits64), regs)
    }

    fn image(slots: &[DrSlot]) -> Image<DrSlot> {
        let mut img = Image::empty(SlotCounts::Shared(4));
        for (n, s) in slots.iter().enumerate() {
            if let Some(r) = img.pools[0].get_mut(n) {
                *r = *s;
            }
        }
        img
    }

    fn watch(addr: u64, cond: Condition, size: Size) -> DrSlot {
        DrSlot {
            addr,
            condition: cond,
            size,
            enable: SlotEnable::GLOBAL,
        }
    }

    /// Replay a write log from the registers `start` and check the install
    /// rule: no address register is written while its slot is enabled.
    fn check_order(start: ([u64; 4], Dr7), log: &[RegWrite]) {
        let mut dr7 = start.1;
        for w in log {
            match w.reg {
                DebugReg::Dr7 => dr7 = Dr7::from_raw(w.value),
                DebugReg::Dr6 => {}
                r => assert!(
                    !dr7.enabled(r.index()),
                    "{r:?} written while enabled: {log:?}"
                ),
            }
        }
    }

    #[test]
    fn install_writes_only_what_changed_in_a_safe_order() {
        let regs = Regs::new(Model::new(Mode::Bits64));
        let hw = backend(&regs);
        hw.init_cpu(0, &X86CpuState::new()).unwrap();
        regs.take_log();
        let empty = image(&[]);
        let a = image(&[watch(0x1000, Condition::Write, Size::Four)]);
        hw.install(0, &X86CpuState::new(), &empty, &a);
        let log = regs.take_log().unwrap();
        assert_eq!(log.len(), 2, "DR0 then DR7: {log:?}");
        assert_eq!((log[0].reg, log[0].value), (DebugReg::Dr0, 0x1000));
        assert_eq!(log[1].reg, DebugReg::Dr7);
        // Same image again: nothing written.
        hw.install(0, &X86CpuState::new(), &a, &a);
        assert!(regs.take_log().unwrap().is_empty());
        // Move slot 0 and add slot 2: disable slot 0 first, write both
        // addresses, enable in one final DR7 write.
        let b = image(&[
            watch(0x2000, Condition::ReadWrite, Size::Eight),
            DrSlot::DISABLED,
            DrSlot {
                addr: 0x40_0000,
                ..watch(0, Condition::Execute, Size::One)
            },
        ]);
        let before = regs.image(0);
        hw.install(0, &X86CpuState::new(), &a, &b);
        let log = regs.take_log().unwrap();
        check_order(before, &log);
        let regs_written: heapless::Vec<DebugReg, 8> = log.iter().map(|w| w.reg).collect();
        assert_eq!(
            regs_written.as_slice(),
            &[DebugReg::Dr7, DebugReg::Dr0, DebugReg::Dr2, DebugReg::Dr7]
        );
        // Only changing the condition of an enabled slot: one DR7 write.
        let c = image(&[
            watch(0x2000, Condition::Write, Size::Eight),
            DrSlot::DISABLED,
            DrSlot {
                addr: 0x40_0000,
                ..watch(0, Condition::Execute, Size::One)
            },
        ]);
        hw.install(0, &X86CpuState::new(), &b, &c);
        let log = regs.take_log().unwrap();
        assert_eq!(
            log.iter().map(|w| w.reg).collect::<Vec<_>>(),
            [DebugReg::Dr7]
        );
        // Disabling leaves the address alone.
        hw.install(0, &X86CpuState::new(), &c, &empty);
        let log = regs.take_log().unwrap();
        assert_eq!(
            log.iter().map(|w| w.reg).collect::<Vec<_>>(),
            [DebugReg::Dr7]
        );
        assert_eq!(regs.image(0).1.enabled_mask(), 0);
        // CPU 1 was never touched.
        assert_eq!(regs.image(1).1.raw(), Dr7::RESERVED_ONE);
    }

    #[test]
    fn installed_image_behaves_as_encoded() {
        let regs = Regs::new(Model::new(Mode::Bits64));
        let hw = backend(&regs);
        let enc = hw
            .encode(&hwbp_core::BreakpointAttr::watch(0x1003, 6, Access::WRITE))
            .unwrap();
        let slots: heapless::Vec<DrSlot, 4> = enc.pieces.iter().map(|p| p.slot).collect();
        hw.install(0, &X86CpuState::new(), &image(&[]), &image(&slots));
        for a in 0x1003..0x1009 {
            assert!(
                regs.access(0, &CpuAccess::write(a, 1), 0).is_some(),
                "{a:#x}"
            );
        }
        assert!(regs.access(0, &CpuAccess::write(0x1002, 1), 0).is_none());
        assert!(regs.access(0, &CpuAccess::write(0x1009, 1), 0).is_none());
        assert!(regs.access(0, &CpuAccess::read(0x1004, 1), 0).is_none());
        // Reserved bit 10 survived every write, LE/GE track the enables.
        let dr7 = regs.image(0).1;
        assert_eq!(
            dr7.raw() & (Dr7::RESERVED_ONE | Dr7::GE | Dr7::LE),
            Dr7::RESERVED_ONE | Dr7::GE
        );
    }

    #[test]
    fn install_disables_a_slot_enabled_behind_our_back_before_writing_it() {
        let regs = Regs::new(Model::new(Mode::Bits64));
        let hw = backend(&regs);
        // Firmware left slot 1 enabled; the core believes everything is empty.
        regs.write(0, DebugReg::Dr7, Dr7::RESERVED_ONE | 0b1000);
        regs.take_log();
        let before = regs.image(0);
        hw.install(
            0,
            &X86CpuState::new(),
            &image(&[]),
            &image(&[DrSlot::DISABLED, watch(0x3000, Condition::Write, Size::One)]),
        );
        check_order(before, &regs.take_log().unwrap());
    }

    #[test]
    fn reset_clears_slots_and_status_keeping_reserved_bits() {
        let regs = Regs::new(Model::new(Mode::Bits64));
        let hw = backend(&regs);
        regs.write(0, DebugReg::Dr7, 0xffff_00ff | Dr7::RESERVED_ONE | Dr7::GD);
        regs.write(0, DebugReg::Dr6, Dr6::B2.to_raw());
        hw.init_cpu(0, &X86CpuState::new()).unwrap();
        assert_eq!(regs.read(0, DebugReg::Dr7), Dr7::RESERVED_ONE | Dr7::GD);
        assert_eq!(regs.read(0, DebugReg::Dr6), Dr6::QUIET);
    }

    fn setup(slots: &[DrSlot]) -> Regs {
        let regs = Regs::new(Model::new(Mode::Bits64));
        backend(&regs).install(0, &X86CpuState::new(), &image(&[]), &image(slots));
        regs
    }

    #[test]
    fn decode_several_slots_firing_together() {
        // Three slots on overlapping bytes, one write hits all three.
        let regs = setup(&[
            watch(0x1000, Condition::Write, Size::Eight),
            watch(0x1004, Condition::ReadWrite, Size::Four),
            DrSlot::DISABLED,
            watch(0x1006, Condition::Write, Size::Two),
        ]);
        let hw = backend(&regs);
        let ex = regs
            .access(0, &CpuAccess::write(0x1006, 2), 0x40_0010)
            .unwrap();
        assert_eq!(Dr6::from_raw(ex.dr6), Dr6::B0 | Dr6::B1 | Dr6::B3);
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b1011
            }
        );
        assert_eq!(d.resume, Resume::RETURN);
        assert_eq!(d.addr, 0x1000);
        assert_eq!(d.ip, 0x40_0010);
        // A read-write slot fired: x86 cannot say read or write.
        assert_eq!(d.access, Access::empty());
        // DR6 was acknowledged.
        assert_eq!(regs.read(0, DebugReg::Dr6), Dr6::QUIET);
        // A read only hits the read-write slot.
        let ex = regs
            .access(0, &CpuAccess::read(0x1004, 4), 0x40_0020)
            .unwrap();
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b0010
            }
        );
        assert_eq!(d.addr, 0x1004);
        // Only write slots fired: the access is known.
        let ex = regs
            .access(0, &CpuAccess::write(0x1000, 1), 0x40_0030)
            .unwrap();
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b0001
            }
        );
        assert_eq!(d.access, Access::WRITE);
    }

    #[test]
    fn decode_ignores_bits_of_disabled_slots() {
        // Slot 1 is disabled but watches the same byte; the model (like the SDM
        // allows) reports its B bit anyway.
        let mut off = watch(0x5000, Condition::Write, Size::One);
        off.enable = SlotEnable::empty();
        let regs = setup(&[watch(0x5000, Condition::Write, Size::One), off]);
        // A disabled slot's address is never written by install; put it there.
        regs.write(0, DebugReg::Dr1, off.addr);
        let ex = regs.access(0, &CpuAccess::write(0x5000, 1), 0).unwrap();
        assert_eq!(Dr6::from_raw(ex.dr6).slots(), 0b11);
        let d = backend(&regs).decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b01
            }
        );
    }

    #[test]
    fn instruction_breakpoints_fault_and_need_rf() {
        let regs = setup(&[
            DrSlot::DISABLED,
            DrSlot {
                addr: 0x40_1000,
                ..watch(0, Condition::Execute, Size::One)
            },
        ]);
        let hw = backend(&regs);
        let ex = regs
            .access(0, &CpuAccess::fetch(0x40_1000), 0x40_1000)
            .unwrap();
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b10
            }
        );
        assert_eq!(d.resume, Resume::SET_RESUME_FLAG);
        assert_eq!(
            (d.addr, d.ip, d.access),
            (0x40_1000, 0x40_1000, Access::EXEC)
        );
        // Returning with RF set: the same instruction runs without a new #DB.
        let rf = CpuAccess {
            kind: crate::model::AccessKind::Fetch { resume_flag: true },
            ..CpuAccess::fetch(0x40_1000)
        };
        assert!(regs.access(0, &rf, 0x40_1000).is_none());
        // Without RF it would fault again: the loop RF prevents.
        assert!(regs
            .access(0, &CpuAccess::fetch(0x40_1000), 0x40_1000)
            .is_some());
    }

    #[test]
    fn single_step_wins_over_an_instruction_breakpoint() {
        let regs = setup(&[
            DrSlot {
                addr: 0x40_2000,
                ..watch(0, Condition::Execute, Size::One)
            },
            watch(0x6000, Condition::Write, Size::Four),
        ]);
        let hw = backend(&regs);
        // TF trap after the instruction before 0x40_2000: DR6 shows BS and B0.
        let ex = regs.single_step(0, 0x40_2000);
        assert_eq!(Dr6::from_raw(ex.dr6), Dr6::BS | Dr6::B0);
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(d.fired, Fired::None);
        assert_eq!(d.resume, Resume::NOT_OURS);
        // No RF: returning re-executes the fetch, which now faults on its own.
        let ex = regs
            .access(0, &CpuAccess::fetch(0x40_2000), 0x40_2000)
            .unwrap();
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b01
            }
        );
        assert_eq!(d.resume, Resume::SET_RESUME_FLAG);
    }

    #[test]
    fn single_step_and_data_trap_merge() {
        let regs = setup(&[
            DrSlot {
                addr: 0x40_2000,
                ..watch(0, Condition::Execute, Size::One)
            },
            watch(0x6000, Condition::Write, Size::Four),
        ]);
        let hw = backend(&regs);
        // A store trapped on slot 1 and TF was set: one #DB with B1 | BS.
        let ex = X86Exception {
            dr6: (Dr6::B1 | Dr6::BS).to_raw(),
            ip: 0x40_1ffc,
        };
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b10
            }
        );
        // The step is someone else's: handled hits, then pass it on.
        assert_eq!(d.resume, Resume::RETURN.and_pass_on());
        assert_eq!(d.access, Access::WRITE);
        // With B0 too (next instruction is the breakpoint): still only B1.
        let ex = X86Exception {
            dr6: (Dr6::B0 | Dr6::B1 | Dr6::BS).to_raw(),
            ip: 0x40_2000,
        };
        let d = hw.decode(0, &X86CpuState::new(), &ex);
        assert_eq!(
            d.fired,
            Fired::Slots {
                pool: Pool(0),
                mask: 0b10
            }
        );
        assert_eq!(d.resume, Resume::RETURN.and_pass_on());
        // Without BS the same data hit is simply returned from.
        let ex = X86Exception {
            dr6: Dr6::B1.to_raw(),
            ip: 0x40_2000,
        };
        assert_eq!(
            hw.decode(0, &X86CpuState::new(), &ex).resume,
            Resume::RETURN
        );
    }

    #[test]
    fn foreign_debug_exceptions_are_not_ours() {
        let regs = setup(&[watch(0x6000, Condition::Write, Size::Four)]);
        let hw = backend(&regs);
        for flags in [Dr6::BS, Dr6::BD, Dr6::BT, Dr6::empty(), Dr6::RTM | Dr6::BS] {
            let d = hw.decode(
                0,
                &X86CpuState::new(),
                &X86Exception {
                    dr6: flags.to_raw(),
                    ip: 7,
                },
            );
            assert_eq!(
                (d.fired, d.resume),
                (Fired::None, Resume::NOT_OURS),
                "{flags:?}"
            );
            assert_eq!(d.ip, 7);
        }
    }

    #[test]
    fn discover_and_encode_are_the_encoders() {
        let regs = Regs::new(Model::new(Mode::Bits64));
        let hw = backend(&regs);
        assert_eq!(hw.discover().unwrap(), SlotCounts::Shared(4));
        assert_eq!(
            hw.encode(&hwbp_core::BreakpointAttr::watch(0, 1, Access::READ)),
            Err(Error::UnsupportedAccess)
        );
        assert_eq!(
            hw.address_space(0xffff_8000_0000_0000, 8),
            AddressSpace::Kernel
        );
    }

    proptest::proptest! {
        /// Arbitrary DR6/DR7/addresses: decode never panics, reports only
        /// enabled slots, and asks for RF exactly when an execute slot is among
        /// them.
        #[test]
        fn decode_total(dr6 in proptest::prelude::any::<u64>(), dr7 in proptest::prelude::any::<u32>(), addr in proptest::prelude::any::<[u64; 4]>(), ip in proptest::prelude::any::<u64>()) {
            let regs = Regs::new(Model::new(Mode::Bits64));
            for (n, a) in addr.iter().enumerate() {
                regs.write(0, DebugReg::addr(n).unwrap(), *a);
            }
            regs.write(0, DebugReg::Dr7, u64::from(dr7));
            let d = backend(&regs).decode(0, &X86CpuState::new(), &X86Exception { dr6, ip });
            let dr7 = Dr7::from_raw(u64::from(dr7));
            match d.fired {
                Fired::None => proptest::prop_assert_eq!(d.resume, Resume::NOT_OURS),
                Fired::Slots { pool, mask } => {
                    proptest::prop_assert_eq!(pool, Pool(0));
                    proptest::prop_assert!(mask != 0 && mask & !u32::from(dr7.enabled_mask()) == 0);
                    proptest::prop_assert!(mask & !u32::from(Dr6::from_raw(dr6).slots()) == 0);
                    let exec = (0..4).any(|n| mask & (1 << n) != 0 && dr7.condition(n) == Condition::Execute);
                    proptest::prop_assert_eq!(d.resume == Resume::SET_RESUME_FLAG, exec);
                    let foreign = Dr6::from_raw(dr6).intersects(Dr6::BS | Dr6::BD | Dr6::BT);
                    proptest::prop_assert_eq!(d.resume == Resume::RETURN.and_pass_on(), !exec && foreign);
                    proptest::prop_assert!(!(exec && Dr6::from_raw(dr6).contains(Dr6::BS)));
                }
                _ => proptest::prop_assert!(false, "x86 names its slots"),
            }
            proptest::prop_assert_eq!(regs.read(0, DebugReg::Dr6), Dr6::QUIET);
        }

        /// Model and decoder agree: the slots decoded after an access are the
        /// enabled slots whose condition the access meets.
        #[test]
        fn decode_matches_the_model(
            slots in proptest::array::uniform4((0u64..64, 0u8..4, 0u8..4, proptest::prelude::any::<bool>())),
            a in 0u64..72, size in 1u64..9, kind in 0u8..3,
        ) {
            let slots = slots.map(|(addr, c, s, en)| DrSlot {
                addr: 0x1000 + addr,
                condition: if c == 2 { Condition::Write } else { Condition::from_bits(c) },
                size: Size::from_bits(s),
                enable: if en { SlotEnable::GLOBAL } else { SlotEnable::empty() },
            });
            let regs = Regs::new(Model::new(Mode::Bits64));
            // Write every address, including disabled slots', so the model's
            // "may report disabled slots" behaviour is exercised.
            for (n, s) in slots.iter().enumerate() {
                regs.write(0, DebugReg::addr(n).unwrap(), s.addr);
            }
            backend(&regs).install(0, &X86CpuState::new(), &image(&[]), &image(&slots));
            for (n, s) in slots.iter().enumerate() {
                regs.write(0, DebugReg::addr(n).unwrap(), s.addr);
            }
            let acc = match kind {
                0 => CpuAccess::read(0x1000 + a, size),
                1 => CpuAccess::write(0x1000 + a, size),
                _ => CpuAccess::fetch(0x1000 + a),
            };
            let model = Model::new(Mode::Bits64);
            let want: u32 = slots.iter().enumerate()
                .filter(|(_, s)| s.is_enabled() && model.condition_met(s, &acc))
                .map(|(n, _)| 1u32 << n)
                .sum();
            match regs.access(0, &acc, 0x40_0000) {
                None => proptest::prop_assert_eq!(want, 0),
                Some(ex) => {
                    let d = backend(&regs).decode(0, &X86CpuState::new(), &ex);
                    proptest::prop_assert_eq!(d.fired, Fired::Slots { pool: Pool(0), mask: want });
                }
            }
        }
    }
}
