//! hwbp-arm64 at EL2: a hypervisor's own breakpoints and watchpoints.
//!
//! The backend knows the exception level its own code runs at ([`Level`],
//! from [`DebugRegs::level`]); at EL2 it encodes requests with the `HMC`,
//! `SSC` and `PMC`/`PAC` fields the Arm ARM gives for EL2 (never a reserved
//! combination: QEMU 7.2 fires on those too, hardware may treat them as
//! disabled), and [`HypRegs`] wraps a register accessor with the level and the
//! share of the registers the host keeps for itself (the rest is left to the
//! guests, see [`crate::vcpu`]).
//!
//! | request | EL1 backend | EL2 backend (with or without VHE) |
//! |---|---|---|
//! | `exclude_user` (kernel only) | `HMC=0 SSC=00 PMC=01`: EL1 | `HMC=1 SSC=11 PMC=00`: EL2 only |
//! | `exclude_kernel` (user only) | `HMC=0 SSC=00 PMC=10`: EL0 | `HMC=0 SSC=00 PMC=11`: EL1 and EL0, the lower levels (a guest, or with VHE the host's EL0) |
//! | neither | `HMC=0 SSC=00 PMC=11`: EL1, EL0 | `HMC=1 SSC=00 PMC=11`: EL2, EL1, EL0 |
//!
//! A VHE kernel's usual `HMC=1 SSC=00 PMC=01` (EL2 and EL1) is never used
//! for "EL2 only": it also fires for a guest at EL1.
//!
//! # Porting guide: running the backend at EL2
//!
//! Debug exceptions are taken at EL2 only when EL2 is the debug target
//! exception level and they are enabled there. Before `Manager::cpu_online`
//! on each CPU, the embedder sets:
//!
//! * `MDCR_EL2.TDE = 1` (without VHE), or `HCR_EL2.TGE = 1` (with VHE,
//!   `HCR_EL2.E2H = 1`, where TGE alone suffices): EL2 becomes the debug
//!   target. Keep it set whenever EL2 code runs; [`crate::vcpu`] clears it
//!   only for the time a guest runs with its own debug state, and hands back
//!   the value to write on each switch ([`mdcr`] accessors here).
//! * the vector at `VBAR_EL2` hands `ESR_EL2`, `FAR_EL2` and `ELR_EL2` to
//!   `Manager::handle_exception` as an [`Aarch64Exception`](crate::Aarch64Exception)
//!   (the `ESR_ELx` layout is the same at every level): EC 0x31 / 0x35 / 0x33
//!   for EL2's own breakpoints, watchpoints and steps, 0x30 / 0x34 / 0x32 for
//!   those of a guest taken to EL2 (`MDCR_EL2.TDE = 1` while it runs).
//!
//! With VHE (`ID_AA64MMFR1_EL1.VH` non-zero, `HCR_EL2.E2H = 1`, and
//! [`El2Backend::aarch64_el2`]`(true, ..)`):
//!
//! * `HCR_EL2.TGE = 1` while the host runs, `0` while a guest runs (its
//!   EL1&0 regime), around each entry and exit; `MDCR_EL2` is driven by
//!   [`crate::vcpu`] as without VHE.
//! * `CPTR_EL2` has another layout with `E2H = 1`: rewrite it when setting
//!   `E2H` (`FPEN`, bits \[21:20\], = 0b11 for FP/SIMD at EL2; the `TFP`
//!   bit of the other layout is RES0 there, and a value written for it
//!   reads as `FPEN = 0b00`, trapping FP/SIMD at EL2).
//! * At EL2 the names `ESR_EL1`, `FAR_EL1`, `ELR_EL1`, `SPSR_EL1`,
//!   `VBAR_EL1`, `SCTLR_EL1`, … reach the `_EL2` registers; a guest's EL1
//!   registers are the `_EL12` names. The debug registers (`DBG*_EL1`,
//!   `MDSCR_EL1`, `OSLAR_EL1`, `OSDLR_EL1`) and `ID_AA64DFR0_EL1` are not
//!   redirected, so the backend runs unchanged.
//!
//! The `qemu-aarch64-el2` example firmware does both: it reads `VH` at boot
//! and runs in either mode (`cargo xtask qemu aarch64-el2`, Cortex-A53, and
//! `aarch64-el2-vhe`, Cortex-A76).
//!
//! `Manager::cpu_online` (the backend's `init_cpu`) then does the rest, as at
//! EL1: `OSLAR_EL1 = 0`, `OSDLR_EL1 = 0`, `MDSCR_EL1.KDE = 1` (debug
//! exceptions enabled at the target level itself), `MDSCR_EL1.MDE = 1`
//! (breakpoints and watchpoints enabled), `PSTATE.D = 0`, every slot
//! cleared. On [`Resume::SINGLE_STEP`](hwbp_core::Resume::SINGLE_STEP) the
//! handler sets `SPSR_EL2.SS` (bit 21, [`SPSR_SS`]) in the saved state; the
//! backend sets `MDSCR_EL1.SS`.
//!
//! ```no_run
//! use hwbp_arm64::el2::{mdcr, El2Backend, SPSR_SS};
//! use hwbp_arm64::Aarch64Exception;
//! use hwbp_core::{BreakpointAttr, Manager, Target};
//!
//! // Keep 2 breakpoints and 2 watchpoints for the hypervisor; the others
//! // are the guests' (hwbp_arm64::vcpu). SAFETY: we run at EL2 without VHE,
//! // EL2 is the debug target, nothing else owns these registers.
//! static HWBP: Manager<El2Backend, (), 1, 16, 4> =
//!     Manager::new(unsafe { El2Backend::aarch64_el2(false, 2, 2) }, ());
//!
//! fn boot(mdcr_el2: &mut u64) -> Result<(), hwbp_core::Error> {
//!     *mdcr_el2 |= mdcr::TDE; // written to MDCR_EL2 before cpu_online
//!     HWBP.init(1)?;
//!     HWBP.cpu_online(0)?; // OS lock, MDSCR_EL1.KDE|MDE, PSTATE.D = 0
//!     // exclude_user at EL2: HMC=1 SSC=11 PMC=00, EL2 only.
//!     let attr = BreakpointAttr::exec(0x4008_0000).exclude_user(true);
//!     let _ = HWBP.register(&attr.target(Target::Cpu(0)))?;
//!     HWBP.sync(0)
//! }
//!
//! // VBAR_EL2's synchronous vector, EC 0x30..=0x35 (ESR_EL2).
//! fn on_debug(esr_el2: u64, far_el2: u64, elr_el2: u64, spsr_el2: &mut u64) -> bool {
//!     let raw = Aarch64Exception { esr: esr_el2, far: far_el2, elr: elr_el2 };
//!     let resume = HWBP.handle_exception(0, &raw);
//!     if resume.single_steps() {
//!         *spsr_el2 |= SPSR_SS; // SPSR_EL2.SS
//!     }
//!     resume.pass_on
//! }
//! # let mut m = 0; boot(&mut m).unwrap(); let mut s = 0; on_debug(0, 0, 0, &mut s);
//! ```

use crate::backend::{Bank, DebugRegs};
use crate::bcr::El;
use crate::ctrl::CTRL_HMC;
use crate::event::DebugEvent;
use hwbp_core::{Error, SlotCounts};

pub use crate::backend::aarch64::SPSR_SS;

/// The exception level the backend's own code runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Level {
    /// EL1 (a kernel or firmware): the encodings of [`crate::encode`].
    #[default]
    El1,
    /// EL2 (a hypervisor).
    El2 {
        /// `HCR_EL2.E2H = 1` (Virtualization Host Extensions): the host's
        /// user space runs at EL0 in the EL2&0 regime.
        vhe: bool,
    },
}

/// `SSC`, bits \[15:14\] of `DBGBCR`/`DBGWCR`.
const SSC_SHIFT: u32 = 14;
/// `PMC`/`PAC`, bits \[2:1\].
const PXC_SHIFT: u32 = 1;
/// The fields that select where a slot fires: `HMC`, `SSC`, `PMC`/`PAC`.
pub const LEVEL_FIELDS: u32 = CTRL_HMC | (0b11 << SSC_SHIFT) | (0b11 << PXC_SHIFT);

const fn fields(hmc: bool, ssc: u32, pxc: u32) -> u32 {
    (if hmc { CTRL_HMC } else { 0 }) | (ssc << SSC_SHIFT) | (pxc << PXC_SHIFT)
}

impl Level {
    /// Whether this is EL2.
    pub const fn is_el2(self) -> bool {
        matches!(self, Level::El2 { .. })
    }

    /// The `HMC`, `SSC` and `PMC`/`PAC` bits for a request with these
    /// exclusion flags (see the table in the [module docs](self)). Both
    /// flags set (refused by the core before any encoding) gives `PMC=00`
    /// with `HMC=0`, which never fires.
    pub const fn fields(self, exclude_user: bool, exclude_kernel: bool) -> u32 {
        match (self, exclude_user, exclude_kernel) {
            (_, true, true) => 0,
            (Level::El1, false, false) => fields(false, 0, 0b11),
            (Level::El1, true, false) => fields(false, 0, 0b01),
            (Level::El1, false, true) => fields(false, 0, 0b10),
            (Level::El2 { .. }, true, false) => fields(true, 0b11, 0b00),
            (Level::El2 { .. }, false, true) => fields(false, 0, 0b11),
            (Level::El2 { .. }, false, false) => fields(true, 0, 0b11),
        }
    }

    /// `ctrl` with its `HMC`/`SSC`/`PMC` fields replaced by
    /// [`Level::fields`].
    pub const fn apply(self, ctrl: u32, exclude_user: bool, exclude_kernel: bool) -> u32 {
        (ctrl & !LEVEL_FIELDS) | self.fields(exclude_user, exclude_kernel)
    }
}

/// Whether a slot whose control value is `ctrl` can fire at `el`, in
/// Non-secure state (QEMU's `virt` board with `virtualization=on` has no
/// EL3), after the Arm ARM's table of `HMC`/`SSC`/`PxC` encodings. Only the
/// combinations listed there are honoured; every other combination is
/// treated as never firing (reserved: hardware may treat it as disabled,
/// QEMU 7.2 fires on it, so nothing may rely on it):
///
/// | HMC | SSC | PxC | fires at |
/// |---|---|---|---|
/// | 0 | 00 or 01 | 01 / 10 / 11 | EL1 / EL0 / EL1 and EL0 |
/// | 1 | 00 or 01 | 01 | EL2, EL1 |
/// | 1 | 00 or 01 | 11 | EL2, EL1, EL0 |
/// | 1 | 11 | 00 | EL2 only |
///
/// `HMC = 0` never fires at EL2.
pub const fn fires_at(ctrl: u32, el: El) -> bool {
    let hmc = ctrl & CTRL_HMC != 0;
    let ssc = (ctrl >> SSC_SHIFT) & 3;
    let pxc = (ctrl >> PXC_SHIFT) & 3;
    matches!(
        (hmc, ssc, pxc, el),
        (false, 0 | 1, 0b01 | 0b11, El::El1)
            | (false, 0 | 1, 0b10 | 0b11, El::El0)
            | (true, 0 | 1, 0b01 | 0b11, El::El2 | El::El1)
            | (true, 0 | 1, 0b11, El::El0)
            | (true, 0b11, 0b00, El::El2)
    )
}

/// `ctrl` with the fields that select the exception level cleared to the
/// plain EL1/EL0 form (`HMC = 0`, `SSC = 00`, `PxC = 11`), so the address and
/// type checks of the model (which ignore the level) apply to it.
#[cfg(any(test, feature = "model"))]
pub(crate) const fn plain_level(ctrl: u32) -> u32 {
    (ctrl & !LEVEL_FIELDS) | (0b11 << PXC_SHIFT)
}

/// A register accessor that knows the exception level it runs at and
/// keeps only the first `host_inst` breakpoint and `host_data` watchpoint
/// registers for the backend ([`DebugRegs::discover`] reports at most those;
/// [`DebugRegs::present`] still reports every register, which
/// `Arch::init_cpu` clears). The registers above are a guest's
/// ([`crate::vcpu`]).
///
/// On hardware: `HypRegs<Aarch64Regs>` ([`El2Backend`]); on the host,
/// `HypRegs<model::Model>`.
#[derive(Debug)]
pub struct HypRegs<R> {
    inner: R,
    level: Level,
    host_inst: u8,
    host_data: u8,
}

impl<R> HypRegs<R> {
    /// `inner`, running at `level`, with `host_inst` breakpoints and
    /// `host_data` watchpoints for the host (the first ones).
    pub const fn new(inner: R, level: Level, host_inst: u8, host_data: u8) -> Self {
        HypRegs {
            inner,
            level,
            host_inst,
            host_data,
        }
    }

    /// The wrapped accessor.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The registers kept for the host: (breakpoints, watchpoints).
    pub const fn host_counts(&self) -> (u8, u8) {
        (self.host_inst, self.host_data)
    }
}

impl<R: DebugRegs> DebugRegs for HypRegs<R> {
    type Exception = R::Exception;

    /// The inner counts, capped at the host's share.
    fn discover(&self) -> Result<SlotCounts, Error> {
        match self.inner.discover()? {
            SlotCounts::Separate { inst, data } => Ok(SlotCounts::Separate {
                inst: inst.min(self.host_inst),
                data: data.min(self.host_data),
            }),
            shared => Ok(shared),
        }
    }
    fn present(&self) -> Result<SlotCounts, Error> {
        self.inner.present()
    }
    unsafe fn enable(&self) -> Result<(), Error> {
        // SAFETY: forwarded; the caller keeps the trait's contract.
        unsafe { self.inner.enable() }
    }
    fn read_value(&self, bank: Bank, n: u8) -> u64 {
        self.inner.read_value(bank, n)
    }
    fn read_ctrl(&self, bank: Bank, n: u8) -> u32 {
        self.inner.read_ctrl(bank, n)
    }
    unsafe fn write_value(&self, bank: Bank, n: u8, value: u64) {
        // SAFETY: forwarded; the caller keeps the trait's contract.
        unsafe { self.inner.write_value(bank, n, value) }
    }
    unsafe fn write_ctrl(&self, bank: Bank, n: u8, ctrl: u32) {
        // SAFETY: forwarded; the caller keeps the trait's contract.
        unsafe { self.inner.write_ctrl(bank, n, ctrl) }
    }
    fn sync(&self) {
        self.inner.sync()
    }
    unsafe fn set_step(&self, on: bool) {
        // SAFETY: forwarded; the caller keeps the trait's contract.
        unsafe { self.inner.set_step(on) }
    }
    fn event(&self, raw: &Self::Exception) -> DebugEvent {
        self.inner.event(raw)
    }
    fn thumb(&self, raw: &Self::Exception) -> bool {
        self.inner.thumb(raw)
    }
    fn level(&self) -> Level {
        self.level
    }
}

/// The AArch64 backend of a hypervisor at EL2.
pub type El2Backend = crate::ArmBackend<HypRegs<crate::Aarch64Regs>>;

impl El2Backend {
    /// A const-constructible EL2 backend keeping `host_inst` breakpoints and
    /// `host_data` watchpoints (the first ones) for the hypervisor.
    ///
    /// # Safety
    /// The caller runs at EL2 (with `HCR_EL2.E2H` = `vhe`), has made EL2 the
    /// debug target (see the [porting guide](self#porting-guide-running-the-backend-at-el2))
    /// and owns the debug registers as [`Aarch64Regs::new`](crate::Aarch64Regs::new)
    /// requires; the registers above the host's share belong to the
    /// [`crate::vcpu`] contexts.
    pub const unsafe fn aarch64_el2(vhe: bool, host_inst: u8, host_data: u8) -> Self {
        crate::ArmBackend::new(
            HypRegs::new(
                // SAFETY: forwarded to the caller.
                unsafe { crate::Aarch64Regs::new() },
                Level::El2 { vhe },
                host_inst,
                host_data,
            ),
            crate::Flavour::Aarch64,
            crate::StepMethod::SoftwareStep,
        )
    }
}

/// `MDCR_EL2` and `HCR_EL2` bits the EL2 embedder and [`crate::vcpu`] use.
pub mod mdcr {
    /// `MDCR_EL2.TDE`: debug exceptions target EL2; with it set, `TDA`,
    /// `TDOSA` and `TDRA` behave as set.
    pub const TDE: u64 = 1 << 8;
    /// `MDCR_EL2.TDA`: EL1/EL0 accesses to the debug registers
    /// (`DBGB*`, `DBGW*`, `MDSCR_EL1`, …) trap to EL2 (EC 0x18).
    pub const TDA: u64 = 1 << 9;
    /// `MDCR_EL2.TDOSA`: EL1 accesses to the OS lock registers trap.
    pub const TDOSA: u64 = 1 << 10;
    /// `MDCR_EL2.TDRA`: EL1/EL0 accesses to the debug ROM registers trap.
    pub const TDRA: u64 = 1 << 11;
    /// `HCR_EL2.TID3`: EL1 reads of the ID group 3 registers
    /// (`ID_AA64DFR0_EL1` among them) trap to EL2 (EC 0x18).
    pub const HCR_TID3: u64 = 1 << 18;
    /// `HCR_EL2.TGE`: trap general exceptions; EL2 is the debug target.
    pub const HCR_TGE: u64 = 1 << 27;
    /// `HCR_EL2.E2H`: VHE.
    pub const HCR_E2H: u64 = 1 << 34;
}

/// Read `CurrentEL` (0 when not compiled for `aarch64`).
pub fn current_el() -> u8 {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reading CurrentEL has no side effects at any EL above 0.
        unsafe {
            core::arch::asm!("mrs {}, CurrentEL", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        ((v >> 2) & 3) as u8
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn el2_encodings_are_the_arm_arm_ones() {
        let el2 = Level::El2 { vhe: false };
        // EL2 only: HMC=1 SSC=11 PMC=00.
        assert_eq!(el2.fields(true, false), (1 << 13) | (0b11 << 14));
        // Lower levels only: HMC=0 SSC=00 PMC=11.
        assert_eq!(el2.fields(false, true), 0b11 << 1);
        // Everything: HMC=1 SSC=00 PMC=11.
        assert_eq!(el2.fields(false, false), (1 << 13) | (0b11 << 1));
        // EL1 stays what it was.
        assert_eq!(Level::El1.fields(true, false), 0b01 << 1);
        assert_eq!(Level::El1.fields(false, true), 0b10 << 1);
        assert_eq!(Level::El1.fields(false, false), 0b11 << 1);
        assert_eq!(el2.fields(true, true) & CTRL_HMC, 0);
    }

    #[test]
    fn where_each_encoding_fires() {
        let at = |f: u32| [El::El0, El::El1, El::El2].map(|el| fires_at(f | 1, el));
        let el2 = Level::El2 { vhe: true };
        assert_eq!(at(el2.fields(true, false)), [false, false, true]);
        assert_eq!(at(el2.fields(false, true)), [true, true, false]);
        assert_eq!(at(el2.fields(false, false)), [true, true, true]);
        // A VHE kernel's "EL1" encoding (HMC=1 SSC=00 PMC=01) also fires at
        // EL1: not EL2-only.
        assert_eq!(at(fields(true, 0, 0b01)), [false, true, true]);
        // Reserved combinations never fire (QEMU fires; hardware may not).
        for reserved in [
            fields(true, 0, 0b00),
            fields(true, 0b11, 0b01),
            fields(true, 0b10, 0b00),
            fields(false, 0, 0b00),
            fields(false, 0b11, 0b00),
        ] {
            assert_eq!(at(reserved), [false; 3], "{reserved:#x}");
        }
        // HMC=0 never reaches EL2, whatever SSC and PMC say.
        for ssc in 0..4 {
            for pmc in 0..4 {
                assert!(!fires_at(fields(false, ssc, pmc), El::El2));
            }
        }
    }
}
