//! A software model of the Arm debug hardware, for host tests.
//!
//! Given the `BVR`/`BCR`/`WVR`/`WCR` images, [`watchpoint_matches`] and
//! [`breakpoint_matches`] say whether an access or an instruction fetch
//! matches, following the Arm ARM (DDI 0487, the "Breakpoint exceptions" and
//! "Watchpoint exceptions" sections of self-hosted debug; DDI 0406 for v7) for the configurations this
//! crate writes (`HMC` = 0, `SSC` = 0b00, unlinked):
//! * `E` must be set; `PMC`/`PAC` select EL0 (`0b10`), EL1 (`0b01`) or both;
//!   `0b00` never matches.
//! * Breakpoints: `BVR[63:2]` equals the instruction address's word, and
//!   `BAS` selects the halfword the instruction starts in (`0b0011` low,
//!   `0b1100` high, `0b1111` both). Address mismatch (`BT` = `0b0100`,
//!   AArch32) matches exactly when address match does not.
//! * Watchpoints: `LSC` selects loads, stores or both (`0b00` never matches).
//!   Without `MASK` the watched bytes are the `BAS`-selected bytes of the
//!   doubleword at `WVR` (of the word, using `BAS[3:0]`, when `WVR[2]` is set
//!   or the core only has a 4-bit `BAS`). With `MASK` = m (3..=31) the
//!   watched bytes are the 2^m-byte block containing `WVR`; `MASK` 1 and 2
//!   are reserved and a `BAS` other than all ones is CONSTRAINED
//!   UNPREDICTABLE: the model never matches those. An access matches when any
//!   byte it touches is watched.
//! * `HMC`/`SSC`/`PMC` select the exception levels after the Arm ARM's table
//!   for Non-secure state ([`crate::el2::fires_at`]: EL2 needs `HMC` = 1;
//!   reserved combinations never match).
//! * Linked, context and VMID types: not modelled (never match).
//!
//! [`Model`] holds one CPU's registers, implements
//! [`DebugRegs`] so the real backend logic runs
//! against it, and produces the raw exception the hardware would take
//! (ESR/FAR/ELR on AArch64, DFSR/DFAR/DBGDSCR on AArch32).

use crate::aarch32::{Aarch32Exception, AbortKind, Dbgdscr, Fsr, Moe};
use crate::backend::aarch32::{
    enable_monitor_mode, Cp14, OSDLR_DLK, OSLSR_OSLK, OSLSR_OSLM0, OSLSR_OSLM1, PRSR_PU,
};
use crate::backend::{Bank, DebugRegs};
use crate::bcr::{plain_unlinked, Bcr, El};
use crate::el2::{fires_at, plain_level};
use crate::esr::{esr_for, Aarch64Exception, ExceptionClass};
use crate::event::DebugEvent;
use crate::id::{Dbgdidr, DebugArch, IdAa64Dfr0};
use crate::wcr::Wcr;
use core::cell::Cell;
use hwbp_core::{Error, SlotCounts, MAX_SLOTS};

/// A data access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DataAccess {
    /// First byte accessed.
    pub addr: u64,
    /// Bytes accessed (1..=64 for a `DC ZVA` block).
    pub size: u64,
    /// A store (`true`) or a load.
    pub write: bool,
    /// The exception level of the access.
    pub el: El,
}

/// An instruction fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fetch {
    /// Address of the instruction.
    pub pc: u64,
    /// The exception level.
    pub el: El,
}

/// Whether a breakpoint register pair matches an instruction fetch.
pub fn breakpoint_matches(bvr: u64, bcr: Bcr, f: &Fetch) -> bool {
    fires_at(bcr.0, f.el) && breakpoint_matches_any_el(bvr, Bcr(plain_level(bcr.0)), f.pc)
}

/// [`breakpoint_matches`] without the privilege filter: the architectural
/// rule, [`Bcr::matches_pc`].
pub fn breakpoint_matches_any_el(bvr: u64, bcr: Bcr, pc: u64) -> bool {
    bcr.matches_pc(bvr, pc)
}

/// The bytes a watchpoint watches, as (first byte, byte mask of a window of 8
/// bytes) or a masked block (first byte, size): `None` when it can never match.
fn watched(wvr: u64, wcr: Wcr, wide_bas: bool) -> Option<Watched> {
    if !wcr.enabled() || wcr.linked() || !plain_unlinked(wcr.0) {
        return None;
    }
    let full = if wide_bas { 0xFF } else { 0x0F };
    match wcr.mask() {
        0 => {
            if !wide_bas || wvr & 4 != 0 {
                Some(Watched::Bytes {
                    base: wvr & !3,
                    bas: wcr.bas() & 0x0F,
                })
            } else {
                Some(Watched::Bytes {
                    base: wvr & !7,
                    bas: wcr.bas(),
                })
            }
        }
        1 | 2 => None,
        m => {
            if wcr.bas() != full {
                return None;
            }
            let size = 1u64 << m;
            Some(Watched::Block {
                base: wvr & !(size - 1),
                size,
            })
        }
    }
}

enum Watched {
    Bytes { base: u64, bas: u8 },
    Block { base: u64, size: u64 },
}

fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    let a_end = u128::from(a) + u128::from(alen);
    let b_end = u128::from(b) + u128::from(blen);
    u128::from(a) < b_end && u128::from(b) < a_end
}

/// Whether a watchpoint register pair matches a data access (8-bit `BAS`).
pub fn watchpoint_matches(wvr: u64, wcr: Wcr, acc: &DataAccess) -> bool {
    watchpoint_matches_bas(wvr, wcr, acc, true)
}

/// [`watchpoint_matches`] for a core whose `BAS` has 8 (`wide_bas`) or 4
/// usable bits.
pub fn watchpoint_matches_bas(wvr: u64, wcr: Wcr, acc: &DataAccess, wide_bas: bool) -> bool {
    if !fires_at(wcr.0, acc.el) || !wcr.lsc().matches(acc.write) || acc.size == 0 {
        return false;
    }
    match watched(wvr, Wcr(plain_level(wcr.0)), wide_bas) {
        None => false,
        Some(Watched::Block { base, size }) => overlaps(acc.addr, acc.size, base, size),
        Some(Watched::Bytes { base, bas }) => (0..8u64).filter(|i| bas & (1 << i) != 0).any(|i| {
            base.checked_add(i)
                .is_some_and(|b| overlaps(acc.addr, acc.size, b, 1))
        }),
    }
}

/// Which identification register the model reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelId {
    /// An AArch64 PE with this `ID_AA64DFR0_EL1`.
    Aarch64(u64),
    /// An AArch32 PE with this `DBGDIDR`.
    Aarch32(u32),
}

/// A raw exception produced by the model, in the format of its execution state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelException {
    /// ESR/FAR/ELR.
    A64(Aarch64Exception),
    /// IFSR or DFSR, DFAR, DBGDSCR, PC.
    A32(Aarch32Exception),
}

impl ModelException {
    /// Classify it with the crate's decoders.
    pub const fn event(&self) -> DebugEvent {
        match self {
            ModelException::A64(e) => e.event(),
            ModelException::A32(e) => e.event(),
        }
    }
}

/// One CPU's debug registers in software.
#[derive(Debug)]
pub struct Model {
    id: ModelId,
    wide_bas: bool,
    record_moe: bool,
    bvr: [Cell<u64>; MAX_SLOTS],
    bcr: [Cell<u32>; MAX_SLOTS],
    wvr: [Cell<u64>; MAX_SLOTS],
    wcr: [Cell<u32>; MAX_SLOTS],
    step: Cell<bool>,
    thumb: Cell<bool>,
    enabled: Cell<bool>,
    writes: Cell<u32>,
    syncs: Cell<u32>,
    undefined: Cell<u32>,
    /// Register pairs (bit n = breakpoint n, 16 + n = watchpoint n) with a
    /// value / control write not yet synchronised by an `ISB`.
    pending_value: Cell<u32>,
    pending_ctrl: Cell<u32>,
    hazards: Cell<u32>,
    /// AArch32 debug control state: `DBGOSLSR.OSLK`, `DBGOSDLR.DLK`,
    /// `DBGDSCR`, `DBGVCR`.
    oslk: Cell<bool>,
    dlk: Cell<bool>,
    dscr_reg: Cell<u32>,
    vcr: Cell<u32>,
    /// v7: the OS Save and Restore registers (and the OS Lock) exist.
    os_save_restore: bool,
    /// Writes to `DBGDSCR.MDBGen` are ignored.
    mdbgen_stuck: bool,
    /// v7: `DBGPRSR.PU` reads clear.
    powered_down: bool,
    /// Accesses to the AArch32 debug control registers (`Cp14`, barriers
    /// excluded).
    control: Cell<u32>,
}

impl Model {
    /// A model reporting `id`, with every register holding garbage (the
    /// architectural reset value is UNKNOWN: the backend must clear them).
    pub fn new(id: ModelId) -> Self {
        let model = Model {
            id,
            wide_bas: true,
            record_moe: true,
            bvr: core::array::from_fn(|_| Cell::new(0)),
            bcr: core::array::from_fn(|_| Cell::new(0)),
            wvr: core::array::from_fn(|_| Cell::new(0)),
            wcr: core::array::from_fn(|_| Cell::new(0)),
            step: Cell::new(false),
            thumb: Cell::new(false),
            enabled: Cell::new(false),
            writes: Cell::new(0),
            syncs: Cell::new(0),
            undefined: Cell::new(0),
            pending_value: Cell::new(0),
            pending_ctrl: Cell::new(0),
            hazards: Cell::new(0),
            oslk: Cell::new(false),
            dlk: Cell::new(false),
            dscr_reg: Cell::new(0),
            // UNKNOWN at reset: the backend must clear it.
            vcr: Cell::new(0xDE),
            os_save_restore: false,
            mdbgen_stuck: false,
            powered_down: false,
            control: Cell::new(0),
        };
        // The OS Lock is set at cold reset where it exists.
        model.oslk.set(model.has_os_lock());
        for n in 0..MAX_SLOTS {
            // Enabled, matching everything it can, at a plausible address.
            let garbage = 0x1000 + 8 * n as u64;
            model.bvr[n].set(garbage);
            model.bcr[n].set(Bcr::address_match(0xF, crate::bcr::Privilege::Both).0);
            model.wvr[n].set(garbage);
            model.wcr[n].set(
                Wcr::new(
                    0xFF,
                    0,
                    crate::wcr::LoadStore::Both,
                    crate::bcr::Privilege::Both,
                )
                .0,
            );
        }
        model
    }

    /// Model a core whose `DBGWCR.BAS` has only 4 usable bits.
    #[must_use]
    pub fn narrow_bas(mut self) -> Self {
        self.wide_bas = false;
        self
    }

    /// Model an emulator that does not record `DBGDSCR.MOE` (AArch32).
    #[must_use]
    pub fn without_moe(mut self) -> Self {
        self.record_moe = false;
        self
    }

    /// AArch32 v7: model a core with the OS Save and Restore registers
    /// (`DBGOSLSR.OSLM[0]` set), whose OS Lock is set at reset. (From v7.1
    /// the OS Lock always exists and is set at reset.)
    #[must_use]
    pub fn with_os_save_restore(mut self) -> Self {
        self.os_save_restore = true;
        self.oslk.set(self.has_os_lock());
        self
    }

    /// AArch32 v7.1 and later: the OS Double Lock (`DBGOSDLR.DLK`) is set,
    /// as an OS leaves it before powering the core down. Ignored where the
    /// architecture has no `DBGOSDLR`.
    #[must_use]
    pub fn with_double_lock(self) -> Self {
        self.dlk
            .set(self.arch().is_some_and(|a| a.has_double_lock()));
        self
    }

    /// AArch32: writes to `DBGDSCR.MDBGen` are ignored (for example
    /// `DBGSWENABLE` held low by an external debugger), so monitor debug
    /// mode cannot be enabled.
    #[must_use]
    pub fn with_mdbgen_stuck(mut self) -> Self {
        self.mdbgen_stuck = true;
        self
    }

    /// AArch32: halting debug mode (`DBGDSCR.HDBGen`) was enabled by an
    /// external debugger; it takes precedence over monitor mode.
    #[must_use]
    pub fn with_halting_mode(self) -> Self {
        self.dscr_reg.set(self.dscr_reg.get() | Dbgdscr::HDBGEN);
        self
    }

    /// AArch32 v7: `DBGPRSR.PU` reads clear, the core's debug logic is
    /// powered down, so the backend must refuse the CPU without touching
    /// another debug register. No effect on other architectures: the
    /// sequence reads `DBGPRSR` only on v7 (from v7.1 the OS Double Lock,
    /// [`Model::with_double_lock`], marks a powered-down core).
    #[must_use]
    pub fn with_debug_powered_down(mut self) -> Self {
        self.powered_down = true;
        self
    }

    /// AArch32 v7 `DBGPRSR` as the model reports it: `PU` set unless
    /// [`Model::with_debug_powered_down`].
    pub fn dbgprsr(&self) -> u32 {
        if self.powered_down {
            0
        } else {
            PRSR_PU
        }
    }

    /// Accesses to the AArch32 debug control registers (`DBGPRSR`,
    /// `DBGOSLSR`, `DBGOSLAR`, `DBGOSDLR`, `DBGVCR`, `DBGDSCR`) by the
    /// enable sequence so far.
    pub fn control_accesses(&self) -> u32 {
        self.control.get()
    }

    fn note_control(&self) {
        self.control.set(self.control.get() + 1);
    }

    /// AArch32 `DBGOSLSR` as the model reports it.
    pub fn dbgoslsr(&self) -> u32 {
        let oslm = match self.arch() {
            Some(DebugArch::V7Ecp14) if self.os_save_restore => OSLSR_OSLM0,
            Some(a) if a.has_os_lock() => OSLSR_OSLM1,
            _ => 0,
        };
        oslm | if self.oslk.get() { OSLSR_OSLK } else { 0 }
    }

    /// AArch32 `DBGOSDLR`.
    pub fn dbgosdlr(&self) -> u32 {
        if self.dlk.get() {
            OSDLR_DLK
        } else {
            0
        }
    }

    /// AArch32 `DBGDSCRext` (its control bits).
    pub fn dbgdscr(&self) -> Dbgdscr {
        Dbgdscr(self.dscr_reg.get())
    }

    /// AArch32 `DBGVCR`.
    pub fn dbgvcr(&self) -> u32 {
        self.vcr.get()
    }

    fn arch(&self) -> Option<DebugArch> {
        match self.id {
            ModelId::Aarch32(v) => Dbgdidr(v).supported_version().ok(),
            ModelId::Aarch64(_) => None,
        }
    }

    fn has_os_lock(&self) -> bool {
        match self.arch() {
            Some(DebugArch::V7Ecp14) => self.os_save_restore,
            Some(a) => a.has_os_lock(),
            None => false,
        }
    }

    /// Count an access to a register that does not exist (UNDEFINED).
    fn undefined_access(&self) {
        self.undefined.set(self.undefined.get() + 1);
    }

    /// The register counts of the identification register (raw, unchecked).
    pub fn hw_counts(&self) -> (u8, u8) {
        match self.id {
            ModelId::Aarch64(v) => (IdAa64Dfr0(v).brps(), IdAa64Dfr0(v).wrps()),
            ModelId::Aarch32(v) => (Dbgdidr(v).brps(), Dbgdidr(v).wrps()),
        }
    }

    /// Breakpoint register pair `n`.
    pub fn breakpoint(&self, n: usize) -> Option<(u64, Bcr)> {
        Some((self.bvr.get(n)?.get(), Bcr(self.bcr.get(n)?.get())))
    }

    /// Watchpoint register pair `n`.
    pub fn watchpoint(&self, n: usize) -> Option<(u64, Wcr)> {
        Some((self.wvr.get(n)?.get(), Wcr(self.wcr.get(n)?.get())))
    }

    /// Watchpoint registers (bit n = `n`) that match `acc`.
    pub fn watch_hits(&self, acc: &DataAccess) -> u32 {
        let (_, wrps) = self.hw_counts();
        (0..usize::from(wrps).min(MAX_SLOTS))
            .filter(|&n| {
                self.watchpoint(n)
                    .is_some_and(|(v, c)| watchpoint_matches_bas(v, c, acc, self.wide_bas))
            })
            .fold(0, |m, n| m | 1 << n)
    }

    /// Breakpoint registers (bit n = `n`) that match `f`.
    pub fn break_hits(&self, f: &Fetch) -> u32 {
        let (brps, _) = self.hw_counts();
        (0..usize::from(brps).min(MAX_SLOTS))
            .filter(|&n| {
                self.breakpoint(n)
                    .is_some_and(|(v, c)| breakpoint_matches(v, c, f))
            })
            .fold(0, |m, n| m | 1 << n)
    }

    /// Execute a data access of the instruction at `pc`; `far` is the address
    /// the hardware reports (`None`: the access address; `Some`: an imprecise
    /// address such as the start of an `STP` or `DC ZVA` block). Returns the
    /// exception taken, if a watchpoint matches and debug is enabled.
    pub fn access(&self, acc: &DataAccess, pc: u64, far: Option<u64>) -> Option<ModelException> {
        if !self.enabled.get() || self.watch_hits(acc) == 0 {
            return None;
        }
        let far = far.unwrap_or(acc.addr);
        Some(match self.id {
            ModelId::Aarch64(_) => {
                let iss = 0x22 | if acc.write { 1 << 6 } else { 0 };
                let class = ExceptionClass::Watchpoint {
                    same_el: acc.el != El::El0,
                };
                ModelException::A64(Aarch64Exception {
                    esr: esr_for(class, iss),
                    far,
                    elr: pc,
                })
            }
            ModelId::Aarch32(_) => ModelException::A32(Aarch32Exception {
                kind: AbortKind::Data,
                // DFSR.WnR is UNKNOWN for watchpoint debug events on v7.1
                // and QEMU leaves it clear, so the backend never reads it:
                // the model reports the wrong direction so that nothing can
                // come to rely on it.
                fsr: Fsr::debug_event(!acc.write).0,
                far: far as u32,
                dscr: self.dscr(Moe::SyncWatchpoint),
                pc: pc as u32,
                write: None,
                thumb: self.thumb.get(),
            }),
        })
    }

    fn dscr(&self, moe: Moe) -> u32 {
        let d = Dbgdscr(Dbgdscr::MDBGEN);
        if self.record_moe {
            d.with_moe(moe).0
        } else {
            d.0
        }
    }

    /// Fetch the instruction at `f.pc`; returns the exception taken, if a
    /// breakpoint matches and debug is enabled.
    pub fn fetch(&self, f: &Fetch) -> Option<ModelException> {
        if !self.enabled.get() || self.break_hits(f) == 0 {
            return None;
        }
        Some(match self.id {
            ModelId::Aarch64(_) => {
                let class = ExceptionClass::Breakpoint {
                    same_el: f.el != El::El0,
                };
                ModelException::A64(Aarch64Exception {
                    esr: esr_for(class, 0x22),
                    far: 0,
                    elr: f.pc,
                })
            }
            ModelId::Aarch32(_) => ModelException::A32(Aarch32Exception {
                kind: AbortKind::Prefetch,
                fsr: Fsr::debug_event(false).0,
                far: 0,
                dscr: self.dscr(Moe::Breakpoint),
                pc: f.pc as u32,
                write: None,
                thumb: self.thumb.get(),
            }),
        })
    }

    /// The instruction completed and the embedder returned with `SPSR.SS` set
    /// as asked: if software step is armed, the step exception is taken with
    /// `ELR` = `next_pc`.
    pub fn retire(&self, next_pc: u64, el: El) -> Option<ModelException> {
        if !self.step.get() || !self.enabled.get() {
            return None;
        }
        let class = ExceptionClass::SoftwareStep {
            same_el: el != El::El0,
        };
        Some(ModelException::A64(Aarch64Exception {
            esr: esr_for(class, 1 << 24),
            far: 0,
            elr: next_pc,
        }))
    }

    /// Run T32 (`true`) or A32 code from now on (AArch32): the model reports
    /// it in [`Aarch32Exception::thumb`] (`SPSR_abt.T`).
    pub fn set_thumb(&self, thumb: bool) {
        self.thumb.set(thumb);
    }

    /// `MDSCR_EL1` as the model keeps it: `MDE` and `KDE` while debug is
    /// enabled ([`DebugRegs::enable`]), `SS` while software step is armed.
    pub fn mdscr(&self) -> u64 {
        use crate::vcpu::{MDSCR_KDE, MDSCR_MDE, MDSCR_SS};
        (if self.enabled.get() {
            MDSCR_MDE | MDSCR_KDE
        } else {
            0
        }) | if self.step.get() { MDSCR_SS } else { 0 }
    }

    /// Write `MDSCR_EL1`: debug is enabled while `MDE` is set, software step
    /// armed while `SS` is (counted as a register write).
    pub fn set_mdscr(&self, v: u64) {
        use crate::vcpu::{MDSCR_MDE, MDSCR_SS};
        self.writes.set(self.writes.get() + 1);
        self.enabled.set(v & MDSCR_MDE != 0);
        self.step.set(v & MDSCR_SS != 0);
    }

    /// Whether software step (`MDSCR_EL1.SS`) is armed.
    pub fn step_armed(&self) -> bool {
        self.step.get()
    }

    /// Register writes so far.
    pub fn writes(&self) -> u32 {
        self.writes.get()
    }

    /// `ISB`s so far.
    pub fn syncs(&self) -> u32 {
        self.syncs.get()
    }

    /// Writes to one register pair's value and control registers with no
    /// `ISB` between them (must stay zero). A direct write to a system
    /// register is only guaranteed to affect breakpoint and watchpoint
    /// matching after a context synchronisation event, so without one the
    /// two writes may take effect in either order: the pair could briefly
    /// be enabled on the old value with the new control, or the reverse.
    pub fn hazards(&self) -> u32 {
        self.hazards.get()
    }

    fn note_write(&self, bank: Bank, i: usize, ctrl: bool) {
        let bit = 1u32 << (i + if bank == Bank::Watchpoint { 16 } else { 0 });
        let (mine, other) = if ctrl {
            (&self.pending_ctrl, &self.pending_value)
        } else {
            (&self.pending_value, &self.pending_ctrl)
        };
        if other.get() & bit != 0 {
            self.hazards.set(self.hazards.get() + 1);
        }
        mine.set(mine.get() | bit);
    }

    /// Accesses to registers at or above the discovered count (UNDEFINED on
    /// hardware): must stay zero.
    pub fn undefined_accesses(&self) -> u32 {
        self.undefined.get()
    }

    fn reg(&self, bank: Bank, n: u8) -> Option<usize> {
        let (brps, wrps) = self.hw_counts();
        let count = if bank == Bank::Breakpoint { brps } else { wrps };
        if n < count && usize::from(n) < MAX_SLOTS {
            Some(usize::from(n))
        } else {
            self.undefined.set(self.undefined.get() + 1);
            None
        }
    }
}

impl Model {
    /// [`DebugRegs::enable`] on the model (safe: the model is memory).
    pub fn enable(&self) -> Result<(), Error> {
        if let ModelId::Aarch32(v) = self.id {
            // The same sequence as on hardware, against the model's registers.
            enable_monitor_mode(self, Dbgdidr(v).supported_version()?)?;
        }
        self.enabled.set(true);
        Ok(())
    }

    /// [`DebugRegs::write_value`] on the model (safe: the model is memory).
    pub fn write_value(&self, bank: Bank, n: u8, value: u64) {
        let Some(i) = self.reg(bank, n) else { return };
        self.writes.set(self.writes.get() + 1);
        self.note_write(bank, i, false);
        match bank {
            Bank::Breakpoint => self.bvr[i].set(value),
            Bank::Watchpoint => self.wvr[i].set(value),
        }
    }

    /// [`DebugRegs::write_ctrl`] on the model (safe: the model is memory).
    pub fn write_ctrl(&self, bank: Bank, n: u8, ctrl: u32) {
        let Some(i) = self.reg(bank, n) else { return };
        self.writes.set(self.writes.get() + 1);
        self.note_write(bank, i, true);
        match bank {
            Bank::Breakpoint => self.bcr[i].set(ctrl),
            Bank::Watchpoint => self.wcr[i].set(ctrl),
        }
    }

    /// [`DebugRegs::set_step`] on the model (safe: the model is memory).
    pub fn set_step(&self, on: bool) {
        self.step.set(on);
    }
}

impl DebugRegs for Model {
    type Exception = ModelException;

    fn discover(&self) -> Result<SlotCounts, Error> {
        match self.id {
            ModelId::Aarch64(v) => IdAa64Dfr0(v).slot_counts(),
            ModelId::Aarch32(v) => Dbgdidr(v).usable_counts(),
        }
    }

    fn present(&self) -> Result<SlotCounts, Error> {
        match self.id {
            ModelId::Aarch64(v) => IdAa64Dfr0(v).slot_counts(),
            ModelId::Aarch32(v) => Dbgdidr(v).slot_counts(),
        }
    }

    unsafe fn enable(&self) -> Result<(), Error> {
        Model::enable(self)
    }

    fn read_value(&self, bank: Bank, n: u8) -> u64 {
        let Some(i) = self.reg(bank, n) else { return 0 };
        match bank {
            Bank::Breakpoint => self.bvr[i].get(),
            Bank::Watchpoint => self.wvr[i].get(),
        }
    }

    fn read_ctrl(&self, bank: Bank, n: u8) -> u32 {
        let Some(i) = self.reg(bank, n) else { return 0 };
        match bank {
            Bank::Breakpoint => self.bcr[i].get(),
            Bank::Watchpoint => self.wcr[i].get(),
        }
    }

    unsafe fn write_value(&self, bank: Bank, n: u8, value: u64) {
        Model::write_value(self, bank, n, value)
    }

    unsafe fn write_ctrl(&self, bank: Bank, n: u8, ctrl: u32) {
        Model::write_ctrl(self, bank, n, ctrl)
    }

    fn sync(&self) {
        self.syncs.set(self.syncs.get() + 1);
        self.pending_value.set(0);
        self.pending_ctrl.set(0);
    }

    unsafe fn set_step(&self, on: bool) {
        Model::set_step(self, on)
    }

    fn step_armed(&self) -> bool {
        self.step.get()
    }

    fn event(&self, raw: &ModelException) -> DebugEvent {
        raw.event()
    }

    fn thumb(&self, raw: &ModelException) -> bool {
        matches!(raw, ModelException::A32(e) if e.thumb)
    }
}

/// The model's AArch32 debug control registers, for the backend's enable
/// sequence. Accesses to a register the modelled architecture does not have
/// count as [`Model::undefined_accesses`]; so does a `DBGPRSR` read on
/// anything but v7, which the sequence must not do (Armv8 has no CP14
/// `DBGPRSR`).
impl Cp14 for Model {
    fn read_prsr(&self) -> u32 {
        self.note_control();
        if self.arch() != Some(DebugArch::V7Ecp14) {
            self.undefined_access();
            return 0;
        }
        self.dbgprsr()
    }

    fn read_oslsr(&self) -> u32 {
        self.note_control();
        if self.arch().is_none() {
            self.undefined_access();
        }
        self.dbgoslsr()
    }

    fn write_oslar(&self, v: u32) {
        self.note_control();
        if !self.has_os_lock() {
            self.undefined_access();
            return;
        }
        // The key sets the lock, any other value clears it.
        self.oslk.set(v == 0xC5AC_CE55);
    }

    fn read_osdlr(&self) -> u32 {
        self.note_control();
        if !self.arch().is_some_and(|a| a.has_double_lock()) {
            self.undefined_access();
            return 0;
        }
        self.dbgosdlr()
    }

    fn write_osdlr(&self, v: u32) {
        self.note_control();
        if !self.arch().is_some_and(|a| a.has_double_lock()) {
            self.undefined_access();
            return;
        }
        self.dlk.set(v & OSDLR_DLK != 0);
    }

    fn write_vcr(&self, v: u32) {
        self.note_control();
        self.vcr.set(v);
    }

    fn read_dscr_ext(&self) -> u32 {
        self.note_control();
        self.dscr_reg.get()
    }

    fn write_dscr_ext(&self, v: u32) {
        self.note_control();
        // Only the mode bits are modelled; HDBGen is not writable from PL1.
        let keep = self.dscr_reg.get() & Dbgdscr::HDBGEN;
        let mdbgen = if self.mdbgen_stuck {
            self.dscr_reg.get() & Dbgdscr::MDBGEN
        } else {
            v & Dbgdscr::MDBGEN
        };
        self.dscr_reg.set(keep | mdbgen);
    }

    fn read_dscr_int(&self) -> u32 {
        self.note_control();
        self.dscr_reg.get()
    }

    fn isb(&self) {
        DebugRegs::sync(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynchronised_pair_writes_are_hazards() {
        let m = Model::new(ModelId::Aarch64(0x1030_5106));
        m.write_ctrl(Bank::Breakpoint, 0, 0);
        m.write_ctrl(Bank::Breakpoint, 1, 0);
        m.write_value(Bank::Watchpoint, 0, 0);
        assert_eq!(m.hazards(), 0, "different pairs");
        m.write_value(Bank::Breakpoint, 0, 0x1000);
        assert_eq!(m.hazards(), 1, "disable then value, no ISB");
        m.sync();
        m.write_value(Bank::Breakpoint, 1, 0x1000);
        m.sync();
        m.write_ctrl(Bank::Breakpoint, 1, 1);
        m.write_ctrl(Bank::Breakpoint, 1, 0);
        assert_eq!(m.hazards(), 1, "ISB between, and control twice");
    }
}
