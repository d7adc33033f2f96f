//! [`RiscvBackend`], the [`Arch`] implementation: discovered pool,
//! installation, exception decoding and the step-over of before-triggers.
//! Its per-hart state is a [`RiscvCpuState`], which the manager keeps per
//! CPU.
//!
//! # Step-over
//!
//! RISC-V triggers fire *before* the instruction (`timing` 0; QEMU fires
//! execute, load and store triggers before): returning to it with the
//! trigger armed fires again forever. On a hit the backend
//!
//! 1. saves and disables the trigger(s) that fired;
//! 2. reprograms the first of them as an *execute* trigger on the address
//!    of the instruction that runs next (decoded from the instruction and
//!    the saved registers: the fall-through, a taken or untaken branch, a
//!    jump target) — the fired trigger is the spare, so no trigger is
//!    reserved and the pool keeps every trigger;
//! 3. returns [`Resume::RETURN`]: the embedder simply `mret`s. The
//!    instruction runs (its own triggers disabled) and the step trigger
//!    fires on the next one;
//! 4. on that exception it writes every saved trigger back and returns
//!    [`Resume::RETURN`] with [`Fired::None`]; any trigger on the next
//!    instruction then fires as a hit of its own.
//!
//! A data trigger that fires on the same instruction while the step is
//! pending (after an execute trigger on it) is disabled too and re-armed by
//! the same step. `install` while a step is pending (a rotation from an
//! interrupt taken before the stepped instruction) updates the saved images
//! of the disabled triggers instead of the hardware.
//!
//! Limits: after `mret`/`sret` (whose successor the instruction does not
//! say) no step trigger is armed: the triggers stay disabled until
//! [`RiscvBackend::complete_step`]. A trigger on an `lr` of an LR/SC loop makes
//! the loop livelock (the step's trap between `lr` and `sc` makes the `sc`
//! fail every time; QEMU measured): do not watch LR/SC lock words or put
//! breakpoints inside LR/SC sequences.

use crate::csr::TriggerCsrs;
use crate::discover::{disabled, discover, Triggers};
use crate::encode::{Encoder, RiscvSlot};
use crate::exception::{RiscvException, MCAUSE_BREAKPOINT};
use crate::insn::{Insn, Kind};
use crate::tdata::{napot_range, Match, MatchType, Modes, Xlen};
use core::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU8, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use hwbp_core::{
    Access, AddressSpace, Arch, BreakpointAttr, Decoded, Encoding, Error, Fired, HardwareError,
    Image, Pool, Resume, SlotCounts, MAX_SLOTS,
};

/// The RISC-V backend's state for one hart ([`Arch::CpuState`]): the
/// step-over in progress and its counters. Touched only by its own hart;
/// the manager keeps one per CPU and hands it out with `Manager::backend_cpu`
/// (for [`RiscvBackend::complete_step`] and the counters).
#[derive(Debug)]
pub struct RiscvCpuState {
    pending: AtomicBool,
    /// Pool slot reprogrammed as the step trigger.
    stepper: AtomicU8,
    step_pc: AtomicUsize,
    /// Pool slots held disabled (bit k = slot k).
    disabled: AtomicU32,
    saved1: [AtomicUsize; MAX_SLOTS],
    saved2: [AtomicUsize; MAX_SLOTS],
    unexplained: AtomicU32,
    steps: AtomicU32,
}

impl RiscvCpuState {
    /// A hart with no step-over pending and zero counters.
    pub const fn new() -> Self {
        RiscvCpuState {
            pending: AtomicBool::new(false),
            stepper: AtomicU8::new(0),
            step_pc: AtomicUsize::new(0),
            disabled: AtomicU32::new(0),
            saved1: [const { AtomicUsize::new(0) }; MAX_SLOTS],
            saved2: [const { AtomicUsize::new(0) }; MAX_SLOTS],
            unexplained: AtomicU32::new(0),
            steps: AtomicU32::new(0),
        }
    }

    /// Trigger exceptions on this hart that no trigger explained (the
    /// enabled triggers that could have fired were stepped over, nothing
    /// delivered).
    pub fn unexplained(&self) -> u32 {
        self.unexplained.load(Relaxed)
    }

    /// Step-overs completed on this hart.
    pub fn steps(&self) -> u32 {
        self.steps.load(Relaxed)
    }

    /// Whether a step-over is pending on this hart.
    pub fn step_pending(&self) -> bool {
        self.pending.load(Relaxed)
    }
}

impl Default for RiscvCpuState {
    fn default() -> Self {
        RiscvCpuState::new()
    }
}

/// The RISC-V trigger backend on top of a [`TriggerCsrs`].
///
/// * Construct it in a `static` with [`RiscvBackend::new`] (const).
/// * On the boot hart, `Manager::init` calls [`Arch::discover`]
///   ([`RiscvBackend::probe`]: the `tselect` walk, `tinfo` and WARL
///   probing; the pool is stored, [`RiscvBackend::pool`],
///   [`RiscvBackend::total`] and [`RiscvBackend::encoder`] read it back
///   without touching the triggers).
/// * On every hart, `Manager::cpu_online(cpu)` calls [`Arch::init_cpu`]: the
///   hart must have at least the boot hart's pool; every trigger is
///   disabled and the hart's [`RiscvCpuState`] reset. Without hwbp-core,
///   call `Arch::init_cpu` yourself.
/// * In the trap handler, for `mcause` = 3 (breakpoint), hand a
///   [`RiscvException`] to the core; every outcome of ours is
///   [`Resume::RETURN`] (the step-over is armed in the triggers, see the
///   module documentation); [`Resume::NOT_OURS`] for `ebreak` and foreign
///   exceptions.
pub struct RiscvBackend<C> {
    csrs: C,
    kernel_base: u64,
    ready: AtomicBool,
    total: AtomicU8,
    count: AtomicU8,
    kind: AtomicU8,
    modes: AtomicU8,
    napot_max: AtomicU8,
    hit: AtomicBool,
    pool: [AtomicU8; MAX_SLOTS],
}

const NOT_OURS: Decoded = Decoded::NOT_OURS;

impl<C: TriggerCsrs> RiscvBackend<C> {
    /// A backend that has not discovered anything yet. `kernel_base`: the
    /// first kernel address for [`AddressSpace`]
    /// ([`Encoder::default_kernel_base`] for Linux's split).
    pub const fn new(csrs: C, kernel_base: u64) -> Self {
        RiscvBackend {
            csrs,
            kernel_base,
            ready: AtomicBool::new(false),
            total: AtomicU8::new(0),
            count: AtomicU8::new(0),
            kind: AtomicU8::new(0),
            modes: AtomicU8::new(0),
            napot_max: AtomicU8::new(0),
            hit: AtomicBool::new(false),
            pool: [const { AtomicU8::new(0) }; MAX_SLOTS],
        }
    }

    /// The CSR accessor. Reads are safe through it; writes are `unsafe`
    /// ([`TriggerCsrs`]).
    pub fn csrs(&self) -> &C {
        &self.csrs
    }

    fn xlen(&self) -> Xlen {
        self.csrs.xlen()
    }

    fn kind(&self) -> MatchType {
        MatchType::from_code(self.kind.load(Relaxed)).unwrap_or(MatchType::Mcontrol)
    }

    /// Discover the calling hart's triggers. The first call stores the pool
    /// the core uses; later calls (from [`Arch::init_cpu`] on each hart)
    /// check that the calling hart has at least as many usable triggers of
    /// the same type.
    ///
    /// Probing writes the triggers (WARL read-back) and leaves every one
    /// disabled, so it is what `Manager::init` ([`Arch::discover`], once) and
    /// `Manager::cpu_online` ([`Arch::init_cpu`]) run before the hart's
    /// triggers are in use; [`RiscvBackend::pool`],
    /// [`RiscvBackend::total`] and [`RiscvBackend::encoder`] read the
    /// stored result.
    ///
    /// Errors: [`HardwareError::NoDebugHardware`] (no trigger module, no
    /// usable trigger, or fewer than the first hart's).
    ///
    /// # Safety
    ///
    /// No trigger of the calling hart is in use: nothing installed, no
    /// step-over pending (the probing rewrites and disables every trigger).
    pub unsafe fn probe(&self) -> Result<Triggers, Error> {
        // SAFETY: the backend owns the CSRs (constructor contract) and the
        // caller has no trigger in use.
        let t = unsafe { discover(&self.csrs)? };
        // Acquire pairs with the Release below.
        if self.ready.load(Acquire) {
            let have = self.count.load(Relaxed);
            if (t.pool.len() as u8) < have || t.kind != self.kind() {
                return Err(Error::Hardware(HardwareError::NoDebugHardware));
            }
            return Ok(t);
        }
        for (slot, &idx) in self.pool.iter().zip(t.pool.iter()) {
            slot.store(idx, Relaxed);
        }
        self.kind.store(t.kind.code(), Relaxed);
        let m = t.modes;
        self.modes.store(
            u8::from(m.m) | u8::from(m.s) << 1 | u8::from(m.u) << 2,
            Relaxed,
        );
        self.napot_max.store(t.napot_max, Relaxed);
        self.hit.store(t.hit, Relaxed);
        self.total.store(t.total, Relaxed);
        self.count.store(t.pool.len() as u8, Relaxed);
        // Release: publishes the pool stored above before `ready`.
        self.ready.store(true, Release);
        Ok(t)
    }

    /// The `tselect` index of each pool slot, as the first
    /// [`RiscvBackend::probe`] stored it (empty before). Reads no CSR.
    pub fn pool(&self) -> heapless::Vec<u8, MAX_SLOTS> {
        let n = usize::from(self.count.load(Relaxed));
        self.pool[..n].iter().map(|p| p.load(Relaxed)).collect()
    }

    /// The triggers (of any type) the first [`RiscvBackend::probe`]'s walk
    /// found (0 before). Reads no CSR.
    pub fn total(&self) -> u8 {
        self.total.load(Relaxed)
    }

    /// The slot counts stored by the first [`RiscvBackend::probe`] (zero
    /// before it). Reads no CSR.
    pub fn counts_now(&self) -> SlotCounts {
        SlotCounts::Shared(self.count.load(Relaxed))
    }

    fn modes(&self) -> Modes {
        let b = self.modes.load(Relaxed);
        Modes {
            m: b & 1 != 0,
            s: b & 2 != 0,
            u: b & 4 != 0,
        }
    }

    /// The encoder for the discovered pool.
    pub fn encoder(&self) -> Encoder {
        Encoder {
            xlen: self.xlen(),
            kind: self.kind(),
            slots: self.count.load(Relaxed),
            modes: self.modes(),
            napot_max: self.napot_max.load(Relaxed),
            kernel_base: self.kernel_base,
        }
    }

    /// End a pending step-over on the calling hart, whose state is `state`
    /// (from the manager: `HW.backend_cpu(cpu)?`), by hand (after an `xRET`
    /// hit, whose successor is unknown): re-arm every trigger it disabled.
    /// Returns whether one was pending.
    pub fn complete_step(&self, state: &RiscvCpuState) -> bool {
        if !state.pending.load(Relaxed) {
            return false;
        }
        self.restore(state);
        true
    }

    fn phys(&self, k: usize) -> u64 {
        u64::from(self.pool[k].load(Relaxed))
    }

    /// Select pool slot `k`'s trigger.
    fn select(&self, k: usize) {
        // SAFETY: the backend owns the CSRs (constructor contract); it
        // selects before every access to `tdata1`/`tdata2`.
        unsafe { self.csrs.select(self.phys(k)) };
    }

    /// Write the selected trigger's `tdata1`.
    fn write_tdata1(&self, v: u64) {
        // SAFETY: the backend owns the CSRs; it writes only images it
        // encoded (`dmode` 0, `action` 0), the disabled image, or the
        // image read back with its hit bit cleared, in the orders
        // documented at each call.
        unsafe { self.csrs.write_tdata1(v) }
    }

    /// Write the selected trigger's `tdata2`.
    fn write_tdata2(&self, v: u64) {
        // SAFETY: as `write_tdata1`; `tdata2` is written only while the
        // trigger is disabled.
        unsafe { self.csrs.write_tdata2(v) }
    }

    /// Write pool slot `k` as the spec's sequence: disable, `tdata2`, then
    /// `tdata1`, so no half-written trigger is ever enabled.
    fn write(&self, k: usize, slot: RiscvSlot) {
        let off = disabled(self.xlen(), self.kind());
        self.select(k);
        self.write_tdata1(off);
        self.write_tdata2(slot.tdata2);
        if slot != RiscvSlot::default() {
            self.write_tdata1(slot.tdata1);
        }
    }

    fn read(&self, k: usize) -> RiscvSlot {
        self.select(k);
        RiscvSlot {
            tdata1: self.csrs.read_tdata1(),
            tdata2: self.csrs.read_tdata2(),
        }
    }

    fn restore(&self, state: &RiscvCpuState) {
        let mask = state.disabled.swap(0, Relaxed);
        for k in (0..usize::from(self.count.load(Relaxed))).filter(|k| mask & (1 << k) != 0) {
            let slot = RiscvSlot {
                tdata1: state.saved1[k].load(Relaxed) as u64,
                tdata2: state.saved2[k].load(Relaxed) as u64,
            };
            self.write(k, slot);
        }
        state.pending.store(false, Relaxed);
        state.steps.fetch_add(1, Relaxed);
    }

    /// What pool slot `k`'s image matches: (match, first byte, bytes).
    fn watched(&self, slot: RiscvSlot) -> Option<(Match, u64, u64)> {
        let xlen = self.xlen();
        let m = Match::parse(xlen, slot.tdata1).filter(|m| m.enabled())?;
        let (a, l) = if m.napot {
            napot_range(xlen, slot.tdata2)?
        } else {
            (slot.tdata2 & xlen.mask(), 1)
        };
        Some((m, a, l))
    }

    /// Disable pool slot `k` for the step, keeping `slot` to restore.
    fn hold(&self, state: &RiscvCpuState, k: usize, slot: RiscvSlot) {
        state.saved1[k].store(slot.tdata1 as usize, Relaxed);
        state.saved2[k].store(slot.tdata2 as usize, Relaxed);
        state.disabled.fetch_or(1 << k, Relaxed);
        self.write(k, RiscvSlot::default());
    }
}

fn overlaps(a: u64, al: u64, b: u64, bl: u64) -> bool {
    u128::from(a) < u128::from(b) + u128::from(bl) && u128::from(b) < u128::from(a) + u128::from(al)
}

impl<C: TriggerCsrs> Arch for RiscvBackend<C> {
    type Slot = RiscvSlot;
    type Exception = RiscvException;
    type CpuState = RiscvCpuState;
    // An initialiser for the manager's per-CPU array, never shared itself.
    #[allow(clippy::declare_interior_mutable_const)]
    const CPU_STATE_INIT: RiscvCpuState = RiscvCpuState::new();

    /// [`RiscvBackend::probe`] the first time; once a pool is stored, the
    /// stored counts ([`RiscvBackend::counts_now`]) without touching the
    /// triggers, which may be in use by then (`Manager::init` runs it before
    /// it refuses a manager in use with [`Error::Busy`]).
    fn discover(&self) -> Result<SlotCounts, Error> {
        // Acquire pairs with the Release in `probe`.
        if self.ready.load(Acquire) {
            return Ok(self.counts_now());
        }
        // SAFETY: nothing is stored yet, so the manager has not brought a
        // hart online on this backend: no trigger is in use.
        let t = unsafe { self.probe()? };
        Ok(SlotCounts::Shared(t.pool.len() as u8))
    }

    /// [`Encoder::encode_validated`] (the core has checked the generic
    /// rules).
    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<RiscvSlot>, Error> {
        self.encoder().encode_validated(attr)
    }

    /// On the calling hart: [`RiscvBackend::probe`] (at least the first
    /// hart's pool), every address/data match trigger found disabled (its
    /// own type, no mode, no access kind; `tdata2` = 0), `state` reset.
    fn init_cpu(&self, _cpu: u16, state: &RiscvCpuState) -> Result<(), Error> {
        // SAFETY: the hart is coming online: the manager installs its
        // triggers after this returns, and the step state is reset below
        // (a pending step-over's held triggers are dropped with it).
        let t = unsafe { self.probe()? };
        for info in t.found.iter() {
            if let Some(kind) = info.kind {
                // SAFETY: as `select`/`write_tdata1`: the backend owns the
                // CSRs; the disabled image of the trigger's own type.
                unsafe {
                    self.csrs.select(u64::from(info.index));
                    self.csrs.write_tdata1(disabled(t.xlen, kind));
                    self.csrs.write_tdata2(0);
                }
            }
        }
        state.pending.store(false, Relaxed);
        state.disabled.store(0, Relaxed);
        Ok(())
    }

    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        self.encoder().address_space(addr, len)
    }

    fn install(
        &self,
        _cpu: u16,
        state: &RiscvCpuState,
        current: &Image<RiscvSlot>,
        desired: &Image<RiscvSlot>,
    ) {
        let held = state.disabled.load(Relaxed);
        for k in 0..usize::from(self.count.load(Relaxed)) {
            let want = desired.get(Pool(0), k).unwrap_or_default();
            let had = current.get(Pool(0), k).unwrap_or_default();
            if want == had {
                continue;
            }
            if held & (1 << k) != 0 {
                // Held for a step: restored from here when it completes.
                state.saved1[k].store(want.tdata1 as usize, Relaxed);
                state.saved2[k].store(want.tdata2 as usize, Relaxed);
            } else {
                self.write(k, want);
            }
        }
    }

    fn decode(&self, _cpu: u16, state: &RiscvCpuState, raw: &RiscvException) -> Decoded {
        if raw.mcause != MCAUSE_BREAKPOINT {
            return NOT_OURS;
        }
        let xlen = self.xlen();
        let pc = raw.mepc & xlen.mask();
        let pending = state.pending.load(Relaxed);
        if pending && pc == state.step_pc.load(Relaxed) as u64 {
            self.restore(state);
            return Decoded::new(Fired::None, Resume::RETURN).addr(pc).ip(pc);
        }
        let insn = Insn::decode(raw.insn, xlen);
        let data = insn.data_access(&raw.x, xlen);
        let held = state.disabled.load(Relaxed);
        let n = usize::from(self.count.load(Relaxed));
        let hit_bits = self.hit.load(Relaxed);
        let mut exec_fired = 0u32;
        let mut data_fired = 0u32;
        let mut armed = 0u32;
        let mut slots = [RiscvSlot::default(); MAX_SLOTS];
        for k in (0..n).filter(|k| held & (1 << k) == 0) {
            let mut slot = self.read(k);
            let Some((m, a, l)) = self.watched(slot) else {
                continue;
            };
            armed |= 1 << k;
            if hit_bits {
                let h = m.kind.hit_bits();
                if slot.tdata1 & h != 0 {
                    slot.tdata1 &= !h;
                    // `read` selected trigger k.
                    self.write_tdata1(slot.tdata1);
                    if m.execute {
                        exec_fired |= 1 << k;
                    } else {
                        data_fired |= 1 << k;
                    }
                }
            } else if !m.modes.contains(raw.prev) {
                // Cannot have fired in this mode.
            } else if m.execute && overlaps(a, l, pc, 1) {
                exec_fired |= 1 << k;
            } else if let Some(d) = data {
                let kind = (m.load && d.access.contains(Access::READ))
                    || (m.store && d.access.contains(Access::WRITE));
                if kind && overlaps(a, l, d.addr, d.size) {
                    data_fired |= 1 << k;
                }
            }
            slots[k] = slot;
        }
        // An instruction fetch match outranks the data access: that is the
        // one that raised this exception; data triggers fire on the retry.
        let (fired, exec) = if exec_fired != 0 {
            (exec_fired, true)
        } else {
            (data_fired, false)
        };
        let mut explained = true;
        let fired = if fired != 0 {
            fired
        } else if insn.kind == Kind::Ebreak {
            return NOT_OURS;
        } else if armed != 0 {
            // Something fired that no trigger explains (an emulator that
            // matches more than the spec says, a trigger rewritten
            // meanwhile): step over every armed trigger, deliver nothing.
            explained = false;
            state.unexplained.fetch_add(1, Relaxed);
            armed
        } else {
            return NOT_OURS;
        };
        for k in (0..n).filter(|k| fired & (1 << k) != 0) {
            self.hold(state, k, slots[k]);
        }
        if !pending {
            if let Some(next) = insn.next_pc(pc, &raw.x, xlen) {
                let k = fired.trailing_zeros() as usize;
                let step = Match {
                    kind: self.kind(),
                    execute: true,
                    load: false,
                    store: false,
                    modes: self.modes(),
                    napot: false,
                };
                self.write(
                    k,
                    RiscvSlot {
                        tdata1: step.tdata1(xlen),
                        tdata2: next,
                    },
                );
                state.stepper.store(k as u8, Relaxed);
                state.step_pc.store(next as usize, Relaxed);
            } else {
                state.step_pc.store(usize::MAX, Relaxed);
            }
            state.pending.store(true, Relaxed);
        }
        if !explained {
            return Decoded::new(Fired::None, Resume::RETURN).addr(pc).ip(pc);
        }
        let (addr, access) = match (exec, data) {
            (true, _) => (pc, Access::EXEC),
            (false, Some(d)) if raw.mtval != 0 => (raw.mtval & xlen.mask(), d.access),
            (false, Some(d)) => (d.addr, d.access),
            (false, None) => (raw.mtval, Access::empty()),
        };
        Decoded::new(
            Fired::Slots {
                pool: Pool(0),
                mask: fired,
            },
            Resume::RETURN,
        )
        .addr(addr)
        .ip(pc)
        .access(access)
    }
}

// Slot images must stay small and cheap to copy.
static_assertions::const_assert!(core::mem::size_of::<RiscvSlot>() <= 16);
