//! [`ArmBackend`], the [`Arch`] implementation shared by AArch64 and AArch32.
//!
//! [`ArmBackend`] owns the discovered slot counts; its per-CPU step-over
//! state is an [`ArmCpuState`], which the manager keeps per CPU. The register
//! accesses go through [`DebugRegs`], implemented by
//! [`Aarch64Regs`](aarch64::Aarch64Regs) (MRS/MSR), by
//! [`Aarch32Regs`](aarch32::Aarch32Regs) (MRC/MCR p14), and on the host by
//! the software model (`model::Model`, feature `model`).

use crate::bcr::{Bcr, BreakpointType, Privilege};
use crate::encode::{ArmSlot, Encoder, Flavour};
use crate::event::DebugEvent;
use crate::step::{Action, StepEvent, StepOver};
use core::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU8,
    Ordering::{Acquire, Relaxed, Release},
};
use hwbp_core::atomic::AtomicU64;
use hwbp_core::{
    Access, AddressSpace, Arch, BreakpointAttr, Decoded, Encoding, Error, Fired, HardwareError,
    Image, Pool, Resume, SlotCounts, MAX_SLOTS,
};

pub mod aarch32;
pub mod aarch64;

/// The two banks of debug registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Bank {
    /// `DBGBVR<n>` / `DBGBCR<n>`.
    Breakpoint,
    /// `DBGWVR<n>` / `DBGWCR<n>`.
    Watchpoint,
}

impl Bank {
    /// Whether register `n` of this bank exists on a CPU with `brps`
    /// breakpoint and `wrps` watchpoint registers.
    pub const fn has(self, brps: u8, wrps: u8, n: u8) -> bool {
        n < match self {
            Bank::Breakpoint => brps,
            Bank::Watchpoint => wrps,
        }
    }
}

/// Access to one CPU's debug registers: the only place hardware is touched.
///
/// Implementations ignore `n` at or above the number of registers the
/// calling CPU has (reads return 0, writes do nothing): on hardware those
/// encodings are UNDEFINED. Reads are safe (the value implementing the trait
/// is the owner token, built by an `unsafe` constructor); every method that
/// writes is `unsafe`, because the token is reachable from safe code
/// ([`ArmBackend::regs`]) and a write behind the backend's back breaks what
/// it relies on (the slots it installed, the mismatch-step register, the
/// debug enables of the CPU).
///
/// # Safety of the writing methods
///
/// The caller is the owner of the registers (the backend) on the calling
/// CPU, and what it writes is consistent with what it installed.
pub trait DebugRegs {
    /// The raw exception state the embedder hands to [`Arch::decode`].
    type Exception;

    /// Read the identification register and return the register counts the
    /// backend may use, or why the hardware cannot be used.
    fn discover(&self) -> Result<SlotCounts, Error>;
    /// The register counts the hardware has, which [`Arch::init_cpu`] clears
    /// even where [`DebugRegs::discover`] reports fewer (AArch32 before v7.1
    /// uses only the first watchpoint, but the others exist and hold UNKNOWN
    /// values). Defaults to [`DebugRegs::discover`].
    fn present(&self) -> Result<SlotCounts, Error> {
        self.discover()
    }
    /// Unlock and enable self-hosted debug on the calling CPU (OS lock, OS
    /// double lock, monitor debug mode, debug exception masking).
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn enable(&self) -> Result<(), Error>;
    /// Read `DBGBVR<n>`/`DBGWVR<n>`.
    fn read_value(&self, bank: Bank, n: u8) -> u64;
    /// Read `DBGBCR<n>`/`DBGWCR<n>`.
    fn read_ctrl(&self, bank: Bank, n: u8) -> u32;
    /// Write `DBGBVR<n>`/`DBGWVR<n>`.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn write_value(&self, bank: Bank, n: u8, value: u64);
    /// Write `DBGBCR<n>`/`DBGWCR<n>`.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn write_ctrl(&self, bank: Bank, n: u8, ctrl: u32);
    /// Make the preceding writes visible to the next instruction (`ISB`).
    fn sync(&self);
    /// Arm or disarm software step (`MDSCR_EL1.SS`); a no-op where the step
    /// method does not use it.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn set_step(&self, on: bool);
    /// Whether software step is armed now (`MDSCR_EL1.SS`), by anyone: a
    /// debugger stepping the CPU arms it too. Defaults to `false`, for step
    /// methods that do not use it.
    fn step_armed(&self) -> bool {
        false
    }
    /// Classify a raw exception.
    fn event(&self, raw: &Self::Exception) -> DebugEvent;
    /// The exception level the backend's own code runs at, which selects
    /// the `HMC`/`SSC`/`PMC` encodings ([`crate::el2`]). Defaults to EL1;
    /// [`crate::el2::HypRegs`] reports EL2.
    fn level(&self) -> crate::el2::Level {
        crate::el2::Level::El1
    }
    /// Whether the instruction of a raw exception is T32 (Thumb), which the
    /// AArch32 mismatch step needs. Defaults to `false` (A64, A32).
    fn thumb(&self, raw: &Self::Exception) -> bool {
        let _ = raw;
        false
    }
}

/// How [`ArmBackend`] single-steps over the instruction that hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StepMethod {
    /// AArch64 software step: `MDSCR_EL1.SS` (set by the backend) and
    /// `SPSR_EL1.SS` (bit 21, set by the embedder in the saved state when
    /// [`Resume::SINGLE_STEP`] is returned).
    SoftwareStep,
    /// AArch32: an unlinked address-mismatch breakpoint on the last breakpoint
    /// register, which is then reserved (the pool reports one fewer). Linux
    /// does the same on Armv7. QEMU 7.2 does not implement mismatch
    /// breakpoints: use [`StepMethod::Manual`] there.
    ///
    /// The mismatch breakpoint matches at PL0 only (`PMC` = user): at PL1
    /// every instruction of the abort handler is a mismatch, and a mismatch
    /// breakpoint taken to Abort mode is CONSTRAINED UNPREDICTABLE (Cortex-A53
    /// TRM, "Address mismatch breakpoints taken to Abort mode"). A hit taken
    /// at PL1 therefore cannot be stepped this way, so [`Arch::encode`]
    /// refuses every request that is not user-only (`exclude_kernel`) with
    /// [`Error::UnsupportedAccess`], as Linux's `arch/arm` refuses kernel
    /// breakpoints that need mismatch stepping. Use [`StepMethod::Manual`]
    /// for kernel breakpoints and watchpoints.
    Mismatch,
    /// The embedder steps the instruction by its own means and then calls
    /// [`ArmBackend::complete_step`]. The slots stay disabled until it does.
    Manual,
}

/// The Arm backend's state for one CPU ([`Arch::CpuState`]): the step-over
/// in progress. Touched only by its own CPU; the manager keeps one per CPU
/// and hands it out with `Manager::backend_cpu` (for
/// [`ArmBackend::complete_step`]).
#[derive(Debug)]
pub struct ArmCpuState {
    step: AtomicU8,
    /// Slots disabled for the step: bit n = breakpoint n, bit 16 + n =
    /// watchpoint n.
    disabled: AtomicU32,
    step_pc: AtomicU64,
}

impl ArmCpuState {
    /// A CPU with no step-over pending.
    pub const fn new() -> Self {
        ArmCpuState {
            step: AtomicU8::new(0),
            disabled: AtomicU32::new(0),
            step_pc: AtomicU64::new(0),
        }
    }

    /// The step-over state of this CPU.
    pub fn step_over(&self) -> StepOver {
        StepOver::from_bits(self.step.load(Relaxed))
    }
}

impl Default for ArmCpuState {
    fn default() -> Self {
        ArmCpuState::new()
    }
}

/// Whether [`ArmBackend::suspend_step`] found software step armed; hand it
/// back to [`ArmBackend::restore_step`].
#[must_use = "restore the suspended step before returning from the handler"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuspendedStep(bool);

impl SuspendedStep {
    /// Whether a step was armed and is now suspended.
    pub const fn was_armed(self) -> bool {
        self.0
    }
}

/// The Arm debug-register backend: implements [`hwbp_core::Arch`] on top of
/// a [`DebugRegs`] implementation.
///
/// * Construct it in a `static` with [`ArmBackend::new`] (const), or
///   `ArmBackend::aarch64` / `ArmBackend::aarch32`.
/// * On the boot CPU, `Manager::init` calls [`Arch::discover`]
///   ([`ArmBackend::probe`]: the slot counts from the identification
///   register).
/// * On every CPU, `Manager::cpu_online(cpu)` calls [`Arch::init_cpu`]: it
///   checks the counts agree, unlocks and enables debug, clears every slot
///   (their reset value is UNKNOWN) and resets the step state. Without
///   hwbp-core, call `Arch::init_cpu` yourself.
/// * In the debug exception handler, hand the raw state to the core (which
///   calls [`Arch::decode`]); on [`Resume::SINGLE_STEP`] with
///   [`StepMethod::SoftwareStep`], set `SPSR_EL1.SS` (bit 21) in the saved
///   state before `ERET`.
///
/// * Exceptions taken during a step-over: an EL1 handler that unmasks debug
///   exceptions brackets itself with [`ArmBackend::suspend_step`] and
///   [`ArmBackend::restore_step`] (the embedder contract, as Linux keeps it).
/// * A debugger on the same CPU arms its single steps with
///   [`ArmBackend::debugger_step`] and continues with
///   [`ArmBackend::debugger_resume`]; a step it armed before a hit is kept
///   and its step exception handed on ([`Resume::pass_on`]).
///
/// The step-over state is per CPU ([`ArmCpuState`], kept by the manager), in
/// atomics, and only touched by its own CPU; `install` must not itself be interrupted by a debug exception that
/// this backend handles on the same CPU (do not watch the core's own data, or
/// call it with debug exceptions masked).
pub struct ArmBackend<R> {
    regs: R,
    flavour: Flavour,
    method: StepMethod,
    ready: AtomicBool,
    inst: AtomicU8,
    data: AtomicU8,
}

fn bit(bank: Bank, n: u8) -> u32 {
    let shift = u32::from(n) + if bank == Bank::Watchpoint { 16 } else { 0 };
    1u32.checked_shl(shift).unwrap_or(0)
}

impl<R: DebugRegs> ArmBackend<R> {
    /// A backend that has not discovered anything yet (zero slots).
    pub const fn new(regs: R, flavour: Flavour, method: StepMethod) -> Self {
        ArmBackend {
            regs,
            flavour,
            method,
            ready: AtomicBool::new(false),
            inst: AtomicU8::new(0),
            data: AtomicU8::new(0),
        }
    }

    /// The register accessor. Reads are safe through it; writes are
    /// `unsafe` ([`DebugRegs`]).
    pub fn regs(&self) -> &R {
        &self.regs
    }

    fn write_ctrl(&self, bank: Bank, n: u8, ctrl: u32) {
        // SAFETY: the backend owns the registers (constructor contract) and
        // writes only registers below the discovered counts, in the orders
        // documented at each call.
        unsafe { self.regs.write_ctrl(bank, n, ctrl) }
    }

    fn write_value(&self, bank: Bank, n: u8, value: u64) {
        // SAFETY: as `write_ctrl`.
        unsafe { self.regs.write_value(bank, n, value) }
    }

    fn set_step(&self, on: bool) {
        // SAFETY: the backend owns the registers; software step is armed only
        // for the step-over it manages and disarmed when it ends.
        unsafe { self.regs.set_step(on) }
    }

    /// The step method.
    pub fn step_method(&self) -> StepMethod {
        self.method
    }

    /// The calling CPU's own registers: (breakpoints, watchpoints, the pools
    /// usable by the core after reserving the mismatch-step breakpoint).
    fn local(&self) -> Result<(u8, u8, SlotCounts), Error> {
        let SlotCounts::Separate {
            inst: hw_inst,
            data,
        } = self.regs.discover()?
        else {
            return Err(Error::Hardware(HardwareError::NoDebugHardware));
        };
        let hw_inst = hw_inst.min(MAX_SLOTS as u8);
        let data = data.min(MAX_SLOTS as u8);
        let inst = match self.method {
            StepMethod::Mismatch => hw_inst
                .checked_sub(1)
                .ok_or(Error::Hardware(HardwareError::NoDebugHardware))?,
            _ => hw_inst,
        };
        let counts = SlotCounts::Separate { inst, data };
        counts.validate()?;
        Ok((hw_inst, data, counts))
    }

    /// Discover the slot counts on the calling CPU and return the pools the
    /// core may use ([`Arch::discover`] is this). The first call stores them;
    /// later calls (from [`Arch::init_cpu`] on each CPU) check that the
    /// calling CPU has at least as many registers, and keep the stored counts
    /// (a CPU with more uses only the first ones). `Manager::init` calls it on
    /// the boot CPU; on a system whose cores differ, run that on one with the
    /// fewest registers.
    ///
    /// Errors: the discovery error ([`HardwareError::UnsupportedDebugArch`]),
    /// [`HardwareError::NoDebugHardware`] when the counts are unusable (fewer than 2
    /// breakpoints with [`StepMethod::Mismatch`]) or the calling CPU has fewer
    /// registers than the stored counts.
    pub fn probe(&self) -> Result<SlotCounts, Error> {
        let (_, _, counts) = self.local()?;
        let SlotCounts::Separate { inst, data } = counts else {
            return Err(Error::Hardware(HardwareError::NoDebugHardware));
        };
        // Acquire pairs with the Release below: the counts are visible once
        // `ready` is.
        if self.ready.load(Acquire) {
            let have = self.counts_now();
            let SlotCounts::Separate {
                inst: have_inst,
                data: have_data,
            } = have
            else {
                return Err(Error::Hardware(HardwareError::NoDebugHardware));
            };
            if inst < have_inst || data < have_data {
                return Err(Error::Hardware(HardwareError::NoDebugHardware));
            }
            Ok(have)
        } else {
            self.inst.store(inst, Relaxed);
            self.data.store(data, Relaxed);
            // Release: publishes the counts stored above before `ready`.
            self.ready.store(true, Release);
            Ok(counts)
        }
    }

    /// The encoder for the discovered counts, at the level the registers
    /// report ([`DebugRegs::level`]).
    pub fn encoder(&self) -> Encoder {
        Encoder::new(
            self.flavour,
            self.inst.load(Relaxed),
            self.data.load(Relaxed),
        )
        .at_level(self.regs.level())
    }

    /// The slot counts stored by the first [`ArmBackend::probe`] (zero
    /// before it).
    pub fn counts_now(&self) -> SlotCounts {
        SlotCounts::Separate {
            inst: self.inst.load(Relaxed),
            data: self.data.load(Relaxed),
        }
    }

    /// With [`StepMethod::Manual`]: the instruction that hit has been stepped
    /// on the calling CPU, whose state is `state` (from the manager:
    /// `HW.backend_cpu(cpu)?`); re-enable the slots. Returns `false` when no
    /// step was pending. Works with the other methods too (abandoning the
    /// armed step).
    pub fn complete_step(&self, state: &ArmCpuState) -> bool {
        let mut st = StepOver::from_bits(state.step.load(Relaxed));
        let action = st.on_event(StepEvent::Step, false);
        self.apply(state, action, 0, false);
        state.step.store(st.to_bits(), Relaxed);
        action.ours
    }

    /// The embedder contract for exceptions taken during a step-over, as
    /// Linux keeps it on kernel entry: call this first in any EL1 exception
    /// handler (an IRQ handler, say) that unmasks debug exceptions
    /// (`PSTATE.D`) or may take one, and hand its result to
    /// [`ArmBackend::restore_step`] just before the handler's `ERET`.
    ///
    /// Why: with [`StepMethod::SoftwareStep`] the step over the instruction
    /// that hit stays armed (`MDSCR_EL1.SS`) while that instruction has not
    /// run yet. An exception taken just then (a pending IRQ when the debug
    /// handler returns) enters its handler with the step active-pending;
    /// once the handler unmasks debug exceptions, the step exception is
    /// taken there, before the instruction ran. If that ended the
    /// step-over, the slots would be re-enabled and the instruction would
    /// hit again when the handler returned to it: one access counted twice.
    /// Suspending the step for the handler's duration lets the instruction
    /// be stepped once the handler returns, as intended. A step exception
    /// that reports no instruction stepped (`ESR_ELx.ISV` clear, what a
    /// handler that breaks this contract gets) never ends a step-over: it
    /// is answered [`Resume::NOT_OURS`] with the slots still held disabled.
    ///
    /// Disarms software step on the calling CPU and says whether it was
    /// armed (by the backend or by a debugger). Does nothing with the other
    /// step methods.
    pub fn suspend_step(&self) -> SuspendedStep {
        let armed = self.method == StepMethod::SoftwareStep && self.regs.step_armed();
        if armed {
            self.set_step(false);
            self.regs.sync();
        }
        SuspendedStep(armed)
    }

    /// Re-arm the software step [`ArmBackend::suspend_step`] disarmed, just
    /// before the handler returns (with interrupts and debug exceptions
    /// masked again).
    pub fn restore_step(&self, suspended: SuspendedStep) {
        if suspended.0 && self.method == StepMethod::SoftwareStep {
            self.set_step(true);
            self.regs.sync();
        }
    }

    /// A debugger on the calling CPU (whose state is `state`) single-steps
    /// the interrupted code: arm software step (`MDSCR_EL1.SS`; the debugger
    /// sets `SPSR_EL1.SS` in the saved state itself). If a step-over of the
    /// backend's is pending (the debugger stopped at a hit and steps from
    /// there), the step exception that ends it is the debugger's too:
    /// [`Manager::handle_exception`](hwbp_core::Manager::handle_exception) then
    /// re-enables the slots and hands the exception on
    /// ([`Resume::pass_on`]) instead of keeping it. Only for
    /// [`StepMethod::SoftwareStep`] (does nothing otherwise).
    pub fn debugger_step(&self, state: &ArmCpuState) {
        if self.method != StepMethod::SoftwareStep {
            return;
        }
        let mut st = StepOver::from_bits(state.step.load(Relaxed));
        if st.pending {
            st.foreign_step = true;
            state.step.store(st.to_bits(), Relaxed);
        }
        self.set_step(true);
        self.regs.sync();
    }

    /// The debugger resumes the calling CPU without stepping: disarm
    /// software step unless a step-over of the backend's still needs it
    /// (then it is left armed, and that step-over is no longer shared with
    /// the debugger). Only for [`StepMethod::SoftwareStep`].
    pub fn debugger_resume(&self, state: &ArmCpuState) {
        if self.method != StepMethod::SoftwareStep {
            return;
        }
        let mut st = StepOver::from_bits(state.step.load(Relaxed));
        if st.pending {
            st.foreign_step = false;
            state.step.store(st.to_bits(), Relaxed);
        } else {
            self.set_step(false);
            self.regs.sync();
        }
    }

    fn counts(&self, bank: Bank) -> u8 {
        match bank {
            Bank::Breakpoint => self.inst.load(Relaxed),
            Bank::Watchpoint => self.data.load(Relaxed),
        }
    }

    fn mask_bank(&self, state: &ArmCpuState, bank: Bank) -> bool {
        let mut wrote = false;
        for n in 0..self.counts(bank) {
            let ctrl = self.regs.read_ctrl(bank, n);
            if ctrl & 1 != 0 {
                self.write_ctrl(bank, n, ctrl & !1);
                state.disabled.fetch_or(bit(bank, n), Relaxed);
                wrote = true;
            }
        }
        wrote
    }

    fn apply(&self, state: &ArmCpuState, a: Action, pc: u64, thumb: bool) {
        let mut wrote = false;
        if a.mask_inst {
            wrote |= self.mask_bank(state, Bank::Breakpoint);
        }
        if a.mask_data {
            wrote |= self.mask_bank(state, Bank::Watchpoint);
        }
        if a.unmask_all {
            let disabled = state.disabled.swap(0, Relaxed);
            for (bank, shift) in [(Bank::Breakpoint, 0), (Bank::Watchpoint, 16)] {
                for n in 0..self.counts(bank) {
                    if disabled & (1 << (shift + u32::from(n))) != 0 {
                        let ctrl = self.regs.read_ctrl(bank, n);
                        self.write_ctrl(bank, n, ctrl | 1);
                    }
                }
            }
            match self.method {
                StepMethod::SoftwareStep if a.keep_step => {}
                StepMethod::SoftwareStep => self.set_step(false),
                StepMethod::Mismatch => {
                    if let Some(r) = self.reserved_slot() {
                        self.write_ctrl(Bank::Breakpoint, r, 0);
                    }
                }
                StepMethod::Manual => {}
            }
            wrote = true;
        }
        if a.arm_step {
            state.step_pc.store(pc, Relaxed);
            match self.method {
                StepMethod::SoftwareStep => self.set_step(true),
                StepMethod::Mismatch => {
                    if let Some(r) = self.reserved_slot() {
                        // Exclude only the instruction's own halfword for
                        // T32 (a 16-bit instruction at pc + 2 must be
                        // stepped to); the whole word for A32.
                        let bas = match (thumb, pc & 2 == 0) {
                            (false, _) => 0b1111,
                            (true, true) => 0b0011,
                            (true, false) => 0b1100,
                        };
                        // PL0 only: see StepMethod::Mismatch.
                        let ctrl = Bcr::address_match(bas, Privilege::User)
                            .with_bt(BreakpointType::AddressMismatch);
                        // As write_slot: each write synchronised before the
                        // next, so the pair is never enabled half-written.
                        self.write_ctrl(Bank::Breakpoint, r, 0);
                        self.regs.sync();
                        self.write_value(Bank::Breakpoint, r, pc & !3);
                        self.regs.sync();
                        self.write_ctrl(Bank::Breakpoint, r, ctrl.0);
                    }
                }
                StepMethod::Manual => {}
            }
            wrote = true;
        }
        if wrote {
            self.regs.sync();
        }
    }

    /// The breakpoint register reserved for mismatch stepping.
    ///
    /// The register just above the usable ones: it exists on every CPU that
    /// passed [`ArmBackend::probe`].
    fn reserved_slot(&self) -> Option<u8> {
        (self.method == StepMethod::Mismatch && self.ready.load(Acquire))
            .then(|| self.inst.load(Relaxed))
    }

    /// Whether an enabled breakpoint register matches `pc` (any privilege).
    fn breakpoint_at(&self, pc: u64) -> bool {
        (0..self.counts(Bank::Breakpoint)).any(|n| {
            let bcr = Bcr(self.regs.read_ctrl(Bank::Breakpoint, n));
            let bvr = self.regs.read_value(Bank::Breakpoint, n);
            bcr.matches_pc(bvr, pc)
        })
    }

    fn write_slot(&self, state: &ArmCpuState, masked: bool, bank: Bank, n: u8, slot: ArmSlot) {
        // Disable first so no half-written slot is ever enabled. A system
        // register write only reaches breakpoint/watchpoint matching at a
        // context synchronisation event, and writes to two registers may
        // take effect in either order without one: an ISB after the disable
        // and after the value (as Linux arm64's write_wb_reg, which issues
        // one after every write). The caller synchronises the last write.
        self.write_ctrl(bank, n, 0);
        self.regs.sync();
        self.write_value(bank, n, slot.value);
        self.regs.sync();
        let ctrl = if masked { slot.ctrl & !1 } else { slot.ctrl };
        self.write_ctrl(bank, n, ctrl);
        if masked && slot.enabled() {
            state.disabled.fetch_or(bit(bank, n), Relaxed);
        } else {
            state.disabled.fetch_and(!bit(bank, n), Relaxed);
        }
    }
}

const NOT_OURS: Decoded = Decoded::NOT_OURS;

impl<R: DebugRegs> Arch for ArmBackend<R> {
    type Slot = ArmSlot;
    type Exception = R::Exception;
    type CpuState = ArmCpuState;
    // An initialiser for the manager's per-CPU array, never shared itself.
    #[allow(clippy::declare_interior_mutable_const)]
    const CPU_STATE_INIT: ArmCpuState = ArmCpuState::new();

    /// [`ArmBackend::probe`].
    fn discover(&self) -> Result<SlotCounts, Error> {
        self.probe()
    }

    /// [`Encoder::encode_validated`] (the core has checked the generic
    /// rules); with [`StepMethod::Mismatch`], a request that
    /// is not user-only (`exclude_kernel`) is refused with
    /// [`Error::UnsupportedAccess`]: a hit at PL1 cannot be mismatch-stepped.
    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<ArmSlot>, Error> {
        let e = self.encoder().encode_validated(attr)?;
        if self.method == StepMethod::Mismatch && !attr.exclude_kernel {
            return Err(Error::UnsupportedAccess);
        }
        Ok(e)
    }

    /// On the calling CPU: [`ArmBackend::probe`] (the counts must agree with
    /// the first CPU's), unlock and enable self-hosted debug, clear every
    /// register the CPU has ([`DebugRegs::present`]: their reset value is
    /// UNKNOWN), disarm any step and reset the step-over state.
    fn init_cpu(&self, _cpu: u16, state: &ArmCpuState) -> Result<(), Error> {
        let (mut hw_inst, mut hw_data, _) = self.local()?;
        self.probe()?;
        // SAFETY: the backend owns the registers; enabling self-hosted debug
        // on the calling CPU is what the owner does when it comes online.
        unsafe { self.regs.enable()? };
        // Every register this CPU has, including any beyond the shared counts
        // and any the backend does not use.
        if let Ok(SlotCounts::Separate { inst, data }) = self.regs.present() {
            hw_inst = hw_inst.max(inst.min(MAX_SLOTS as u8));
            hw_data = hw_data.max(data.min(MAX_SLOTS as u8));
        }
        // Disable every pair, synchronise, then clear the values (so no pair
        // is ever enabled on a value being cleared).
        for n in 0..hw_inst {
            self.write_ctrl(Bank::Breakpoint, n, 0);
        }
        for n in 0..hw_data {
            self.write_ctrl(Bank::Watchpoint, n, 0);
        }
        self.regs.sync();
        for n in 0..hw_inst {
            self.write_value(Bank::Breakpoint, n, 0);
        }
        for n in 0..hw_data {
            self.write_value(Bank::Watchpoint, n, 0);
        }
        self.set_step(false);
        self.regs.sync();
        state.step.store(0, Relaxed);
        state.disabled.store(0, Relaxed);
        Ok(())
    }

    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        self.encoder().address_space(addr, len)
    }

    fn install(
        &self,
        _cpu: u16,
        state: &ArmCpuState,
        current: &Image<ArmSlot>,
        desired: &Image<ArmSlot>,
    ) {
        let st = StepOver::from_bits(state.step.load(Relaxed));
        let mut wrote = false;
        for (bank, pool) in [(Bank::Breakpoint, Pool(0)), (Bank::Watchpoint, Pool(1))] {
            let masked = st.masks(bank == Bank::Watchpoint);
            for n in 0..self.counts(bank) {
                let want = desired.get(pool, usize::from(n)).unwrap_or_default();
                let had = current.get(pool, usize::from(n)).unwrap_or_default();
                if want != had {
                    self.write_slot(state, masked, bank, n, want);
                    wrote = true;
                }
            }
        }
        if wrote {
            self.regs.sync();
        }
    }

    fn decode(&self, _cpu: u16, state: &ArmCpuState, raw: &R::Exception) -> Decoded {
        let mut st = StepOver::from_bits(state.step.load(Relaxed));
        let mut ev = self.regs.event(raw);
        if let (StepMethod::Mismatch, true, DebugEvent::Breakpoint { pc, .. }) =
            (self.method, st.pending, ev)
        {
            // The mismatch breakpoint fires on the first instruction that is not
            // the stepped one.
            if pc != state.step_pc.load(Relaxed) {
                ev = DebugEvent::Step { pc, stepped: true };
            }
        }
        let (step_ev, fired, addr, ip, access) = match ev {
            DebugEvent::Breakpoint { pc, unconfirmed } => {
                if unconfirmed && !self.breakpoint_at(pc) {
                    return NOT_OURS;
                }
                (
                    StepEvent::Breakpoint,
                    Fired::ByAddress { pool: Pool(0) },
                    pc,
                    pc,
                    Access::EXEC,
                )
            }
            DebugEvent::Watchpoint {
                addr,
                pc,
                write,
                slot,
            } => {
                let access = match write {
                    Some(true) => Access::WRITE,
                    Some(false) => Access::READ,
                    None => Access::empty(),
                };
                // ESR_ELx.WPTV/WPT (FEAT_Debugv8p2, always set with
                // FEAT_Debugv8p9) name the watchpoint; otherwise the core
                // matches the (possibly imprecise) address, or, without a
                // valid FAR, credits the hit only if one watchpoint can
                // explain it.
                let fired = match (slot, addr) {
                    (Some(n), _) if n < self.counts(Bank::Watchpoint) => Fired::Slots {
                        pool: Pool(1),
                        mask: 1 << n,
                    },
                    (_, Some(_)) => Fired::ByAddress { pool: Pool(1) },
                    (_, None) => Fired::Unattributed { pool: Pool(1) },
                };
                (StepEvent::Watchpoint, fired, addr.unwrap_or(0), pc, access)
            }
            DebugEvent::Step { stepped: false, .. } if st.pending => {
                // The step exception came before the instruction being
                // stepped over ran: an exception was taken during the
                // step-over and its handler unmasked debug exceptions with
                // the step still armed (see ArmBackend::suspend_step).
                // Ending the step-over here would re-enable the slots before
                // the instruction ran and count its hit twice, so the
                // step-over stays pending and the exception is not ours.
                return NOT_OURS;
            }
            DebugEvent::Step { pc, .. } => (StepEvent::Step, Fired::None, pc, pc, Access::empty()),
            DebugEvent::SoftwareBreakpoint { .. } | DebugEvent::Other => return NOT_OURS,
        };
        let action = st.on_event(step_ev, self.regs.step_armed());
        self.apply(state, action, ip, self.regs.thumb(raw));
        state.step.store(st.to_bits(), Relaxed);
        if !action.ours {
            return Decoded::new(Fired::None, Resume::NOT_OURS)
                .addr(addr)
                .ip(ip)
                .access(access);
        }
        Decoded::new(fired, action.resume)
            .addr(addr)
            .ip(ip)
            .access(access)
    }
}

// Slot images must stay small and cheap to copy.
static_assertions::const_assert!(core::mem::size_of::<ArmSlot>() <= 16);
