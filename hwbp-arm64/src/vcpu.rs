//! A guest's debug registers in a hypervisor at EL2: the vCPU debug context.
//!
//! The CPU's breakpoint and watchpoint registers are split in two
//! ([`Layout`]): the first ones are the host's (the manager's backend sees
//! only those, through [`HypRegs`](crate::el2::HypRegs)), the others are
//! the guest's. The guest is told it has only its share: with `HCR_EL2.TID3`
//! its reads of `ID_AA64DFR0_EL1` trap, and [`VcpuDebug::trap`] answers with
//! [`Layout::guest_id_aa64dfr0`]. Its register `n` is the hardware register
//! `host + n`.
//!
//! Every guest access to a debug register traps (`MDCR_EL2.TDA`, and
//! `TDOSA`/`TDRA` so the guest cannot set the OS lock under the host: the
//! bits [`VcpuDebug::switch_in`] returns) as EC 0x18, whose ISS
//! [`SysRegTrap`] decodes exactly; [`VcpuDebug::trap`] emulates it against
//! the vCPU's copy. So the guest never sees nor writes the host's registers.
//!
//! The accesses stay trapped after the first one has loaded the guest's
//! registers (`TDA` is never cleared; every later access is emulated too).
//! AArch64 has no per-register trap: with `TDA = 0` a guest at EL1 could
//! read and write every implemented `DBGBVR<n>_EL1`/`DBGBCR<n>_EL1`/
//! `DBGWVR<n>_EL1`/`DBGWCR<n>_EL1`, whatever the reduced
//! `ID_AA64DFR0_EL1` it is shown (`TID3`) says, the host's kept registers
//! included. The trap also keeps `HMC` out of the guest's values
//! ([`hardware_ctrl`]).
//!
//! # Lazy switching
//!
//! * A vCPU that never touched its debug registers costs nothing on a
//!   switch (while the host's slots are EL2-only, see below):
//!   [`VcpuDebug::switch_in`] and [`VcpuDebug::switch_out`] touch no
//!   register (they only return the `MDCR_EL2` bits to write), unless
//!   another vCPU left enabled registers in the guest share, which are then
//!   disabled once.
//! * Its first access traps; [`VcpuDebug::trap`] then loads its registers
//!   (its share of the hardware and `MDSCR_EL1`'s `MDE`/`KDE`/`SS`).
//! * From then on, a switch in writes only what differs from what the
//!   hardware holds ([`PcpuDebug`] remembers whose registers those are):
//!   none when the same vCPU comes back. `MDSCR_EL1` is the guest's while it
//!   runs and the host's again after [`VcpuDebug::switch_out`].
//! * Without VHE the guest's registers may stay in the hardware after the
//!   switch out: the copy written there has `HMC` cleared, so no value a
//!   guest writes (`HMC=1` included) can fire at EL2. With VHE the host's
//!   own EL0 would match them, so the switch out disables them.
//!
//! # The host's breakpoints
//!
//! While a guest runs with its own debug state (`MDCR_EL2.TDE = 0`), only
//! EL2-only host slots stay in the hardware (register them with
//! `exclude_user`, `HMC=1 SSC=11 PMC=00`): they never fire in the guest
//! and fire at EL2 after each exit. [`VcpuDebug::switch_in`] enforces it:
//! it is handed the host's image (`Manager::image(cpu)`) and disables every
//! enabled host slot that would fire at EL1 or EL0 (neither exclusion flag,
//! `exclude_kernel`, or any other encoding than the EL2-only one) until
//! [`VcpuDebug::switch_out`] puts it back; [`PcpuDebug::host_masked`] says
//! which. Such slots do not fire at all meanwhile (at EL2 neither, while
//! the guest's traps are handled). Apply the host's changes on a CPU
//! (`Manager::sync`, `Manager::sched_in`) outside a guest's
//! `switch_in`..`switch_out`, or switch it in again afterwards (that masks
//! the new slots and forgets the replaced ones; a slot the manager rewrote
//! is never written back by the switch out, which only restores slots
//! still as it masked them).
//!
//! A step-over of the backend pending at the switch in (an interrupt taken
//! before the instruction that hit was stepped, see
//! `ArmBackend::suspend_step`) keeps its slots disabled: the switch out
//! puts back the control value the hardware had, and the step's end
//! enables them. Do not end a step-over between the two
//! (`ArmBackend::complete_step`): the switch out then enables its masked
//! slots as it should, but until then the backend leaves the control
//! value `1` (only `E`) in them, a reserved encoding, while the guest runs.
//! [`host_image_is_el2_only`] tells whether an image needs no masking.
//!
//! **The host debugging a guest**: register breakpoints on the guest's
//! addresses as `exclude_kernel` (the lower levels, `HMC=0 PMC=11`) with
//! `Target::Task(t)`, where `t` stands for the vCPU, and call
//! [`VcpuDebug::set_host_debug`]. Around the guest run, `Manager::sched_in(cpu,
//! Some(t))` puts them in the hardware and [`VcpuDebug::switch_in`] asks for
//! `MDCR_EL2.TDE = 1`: they are taken at EL2 (EC 0x30 / 0x34, and 0x32 for
//! the step over them), handled by `Manager::handle_exception` as usual. The
//! guest's own settings do not reach the hardware meanwhile: its share is
//! disabled, `MDSCR_EL1` stays the host's, and its accesses are emulated
//! against its copy only.
//!
//! # Reading and refreshing the current image
//!
//! The cheap read: the host's image is `Manager::image(cpu)`, the guest's
//! [`VcpuDebug::guest_slot`] / [`VcpuDebug::mdscr`] (its copy, no hardware
//! access), and [`PcpuDebug::holds`] says whose registers a CPU holds. The
//! refresh: `Manager::restore(cpu, clobbered)` for the host's share,
//! [`VcpuDebug::refresh`] for the guest's (after something else wrote the
//! registers). The `switch` benchmark (`cargo bench -p hwbp-arm64 --bench
//! switch`) measures a switch out and in with no breakpoints, with the
//! guest's only and with the host's only.
//!
//! # Order on each switch (embedder)
//!
//! ```text
//! entry:  HWBP.sched_in(cpu, task)       // host debugging that guest, else None
//!         bits = vcpu.switch_in(&mut pcpu, regs, &HWBP.image(cpu)?)
//!         MDCR_EL2 = (MDCR_EL2 & !VCPU_MDCR_BITS) | bits; HCR_EL2 |= TID3
//!         VHE: HCR_EL2.TGE = 0 (the guest's EL1&0 regime); eret
//! trap:   EC 0x18 → vcpu.trap(&mut pcpu, regs, SysRegTrap::from_esr(esr)?, x[rt])
//! exit:   bits = vcpu.switch_out(&mut pcpu, regs)
//!         MDCR_EL2 = (MDCR_EL2 & !VCPU_MDCR_BITS) | bits   // TDE: EL2 debug again
//!         VHE: HCR_EL2.TGE = 1
//! ```
//!
//! With VHE (`HCR_EL2.E2H = 1`) the EL2 code's accesses to `ESR_EL1`,
//! `FAR_EL1`, `ELR_EL1`, `SPSR_EL1`, `VBAR_EL1`, `SCTLR_EL1`, … reach the
//! `_EL2` registers; the guest's EL1 registers are the `_EL12` names. The
//! debug registers (`DBG*_EL1`, `MDSCR_EL1`, `OSLAR_EL1`, `OSDLR_EL1`) are
//! not redirected: this module and the backend use them the same way in
//! both modes.

use crate::backend::{Bank, DebugRegs};
use crate::ctrl::CTRL_HMC;
use crate::el2::mdcr::{TDA, TDE, TDOSA, TDRA};
use crate::encode::ArmSlot;
use crate::id::IdAa64Dfr0;
use hwbp_core::{Error, HardwareError, Image, Pool, MAX_SLOTS};

use crate::backend::aarch64::Mdscr;

/// `MDSCR_EL1.SS`, `KDE` and `MDE` as raw bits (the vCPU context keeps the
/// guest's `MDSCR_EL1` as a plain value).
pub(crate) const MDSCR_SS: u64 = Mdscr::SS.bits();
pub(crate) const MDSCR_KDE: u64 = Mdscr::KDE.bits();
pub(crate) const MDSCR_MDE: u64 = Mdscr::MDE.bits();

/// The `MDCR_EL2` bits the vCPU context decides: the embedder clears these
/// and ORs in what [`VcpuDebug::switch_in`] / [`VcpuDebug::switch_out`]
/// return.
pub const VCPU_MDCR_BITS: u64 = TDE | TDA | TDOSA | TDRA;

/// The `MDSCR_EL1` bits that are the guest's while it runs.
pub const GUEST_MDSCR_BITS: u64 = MDSCR_SS | MDSCR_KDE | MDSCR_MDE;

/// Access to `MDSCR_EL1`, which the host (`MDE`, `KDE`, its step) and a
/// guest share.
pub trait MdscrRegs {
    /// Read `MDSCR_EL1`.
    fn read_mdscr(&self) -> u64;
    /// Write `MDSCR_EL1` (followed by an `ISB`).
    ///
    /// # Safety
    /// The caller owns the debug registers (as for [`DebugRegs`]'s writes)
    /// and restores the host's value before the host relies on it.
    unsafe fn write_mdscr(&self, v: u64);
}

impl MdscrRegs for crate::Aarch64Regs {
    fn read_mdscr(&self) -> u64 {
        self.mdscr().bits()
    }
    unsafe fn write_mdscr(&self, v: u64) {
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the caller owns the debug registers; MDSCR_EL1 only
        // controls debug exceptions, which the owner handles.
        unsafe {
            core::arch::asm!("msr mdscr_el1, {}", "isb", in(reg) v, options(nostack, preserves_flags));
        }
        #[cfg(not(target_arch = "aarch64"))]
        let _ = v;
    }
}

impl<R: MdscrRegs> MdscrRegs for crate::el2::HypRegs<R> {
    fn read_mdscr(&self) -> u64 {
        self.inner().read_mdscr()
    }
    unsafe fn write_mdscr(&self, v: u64) {
        // SAFETY: forwarded; the caller keeps the contract.
        unsafe { self.inner().write_mdscr(v) }
    }
}

#[cfg(any(test, feature = "model"))]
impl MdscrRegs for crate::model::Model {
    fn read_mdscr(&self) -> u64 {
        self.mdscr()
    }
    unsafe fn write_mdscr(&self, v: u64) {
        self.set_mdscr(v)
    }
}

/// How a CPU's registers are split between the host and its guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layout {
    id: u64,
    hw_inst: u8,
    hw_data: u8,
    host_inst: u8,
    host_data: u8,
}

impl Layout {
    /// The split for a CPU whose `ID_AA64DFR0_EL1` is `id`, the host keeping
    /// the first `host_inst` breakpoints and `host_data` watchpoints (as its
    /// [`HypRegs`](crate::el2::HypRegs)). The guest must keep at least two
    /// of each (the architecture's minimum, which `ID_AA64DFR0_EL1` cannot
    /// express less of): otherwise
    /// [`HardwareError::NoDebugHardware`].
    pub fn new(id: IdAa64Dfr0, host_inst: u8, host_data: u8) -> Result<Self, Error> {
        let (hw_inst, hw_data) = (
            id.brps().min(MAX_SLOTS as u8),
            id.wrps().min(MAX_SLOTS as u8),
        );
        let fits = |hw: u8, host: u8| hw.checked_sub(host).is_some_and(|g| g >= 2);
        if !fits(hw_inst, host_inst) || !fits(hw_data, host_data) {
            return Err(Error::Hardware(HardwareError::NoDebugHardware));
        }
        Ok(Layout {
            id: id.0,
            hw_inst,
            hw_data,
            host_inst,
            host_data,
        })
    }

    /// The guest's share: (breakpoints, watchpoints).
    pub const fn guest_counts(&self) -> (u8, u8) {
        (self.hw_inst - self.host_inst, self.hw_data - self.host_data)
    }

    /// The host's share: (breakpoints, watchpoints).
    pub const fn host_counts(&self) -> (u8, u8) {
        (self.host_inst, self.host_data)
    }

    /// `ID_AA64DFR0_EL1` as the guest sees it: `BRPs` and `WRPs` say its
    /// share, `CTX_CMPs` 1 (context-aware and linked breakpoints of a guest
    /// are kept in its copy but never loaded).
    pub const fn guest_id_aa64dfr0(&self) -> u64 {
        let (inst, data) = self.guest_counts();
        let fields = (0xF << 12) | (0xF << 20) | (0xF << 28);
        (self.id & !fields) | (((inst - 1) as u64) << 12) | (((data - 1) as u64) << 20)
    }

    /// The hardware register of the guest's register `n`.
    const fn hw(&self, bank: Bank, n: u8) -> u8 {
        match bank {
            Bank::Breakpoint => self.host_inst + n,
            Bank::Watchpoint => self.host_data + n,
        }
    }

    const fn guest_has(&self, bank: Bank, n: u8) -> bool {
        let (inst, data) = self.guest_counts();
        bank.has(inst, data, n)
    }
}

/// A system register named by a trapped `MSR`/`MRS` (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SysReg {
    /// `DBGBVR<n>_EL1`.
    Bvr(u8),
    /// `DBGBCR<n>_EL1`.
    Bcr(u8),
    /// `DBGWVR<n>_EL1`.
    Wvr(u8),
    /// `DBGWCR<n>_EL1`.
    Wcr(u8),
    /// `MDSCR_EL1`.
    Mdscr,
    /// `OSLAR_EL1` (write only).
    Oslar,
    /// `OSLSR_EL1` (read only).
    Oslsr,
    /// `OSDLR_EL1`.
    Osdlr,
    /// Another debug register (`op0` = 2: `MDCCINT_EL1`, `DBGCLAIM*`, …):
    /// read as zero, writes ignored.
    OtherDebug,
    /// `ID_AA64DFR0_EL1` (trapped by `HCR_EL2.TID3`).
    IdAa64Dfr0,
    /// Anything else: not the vCPU debug context's.
    Other,
}

/// The ISS of an EC 0x18 exception (a trapped `MSR`, `MRS` or system
/// instruction), decoded exactly (`ESR_ELx` ISS encoding for EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SysRegTrap {
    /// `Op0`, ISS\[21:20\].
    pub op0: u8,
    /// `Op2`, ISS\[19:17\].
    pub op2: u8,
    /// `Op1`, ISS\[16:14\].
    pub op1: u8,
    /// `CRn`, ISS\[13:10\].
    pub crn: u8,
    /// `Rt`, ISS\[9:5\]: the general-purpose register (31 = `xzr`).
    pub rt: u8,
    /// `CRm`, ISS\[4:1\].
    pub crm: u8,
    /// `Direction`, ISS\[0\]: `true` for a read (`MRS`).
    pub read: bool,
}

/// The exception class of a trapped `MSR`/`MRS`/system instruction.
pub const EC_SYSREG: u8 = 0x18;

impl SysRegTrap {
    /// Decode `ESR_EL2`; `None` unless its EC is 0x18.
    pub const fn from_esr(esr: u64) -> Option<Self> {
        if (esr >> 26) & 0x3F != EC_SYSREG as u64 {
            return None;
        }
        let iss = esr & 0x1FF_FFFF;
        Some(SysRegTrap {
            op0: ((iss >> 20) & 3) as u8,
            op2: ((iss >> 17) & 7) as u8,
            op1: ((iss >> 14) & 7) as u8,
            crn: ((iss >> 10) & 0xF) as u8,
            rt: ((iss >> 5) & 0x1F) as u8,
            crm: ((iss >> 1) & 0xF) as u8,
            read: iss & 1 != 0,
        })
    }

    /// The `ESR_EL2` value of this trap (EC 0x18, `IL` set), for tests and
    /// models.
    pub const fn to_esr(self) -> u64 {
        ((EC_SYSREG as u64) << 26)
            | (1 << 25)
            | ((self.op0 as u64 & 3) << 20)
            | ((self.op2 as u64 & 7) << 17)
            | ((self.op1 as u64 & 7) << 14)
            | ((self.crn as u64 & 0xF) << 10)
            | ((self.rt as u64 & 0x1F) << 5)
            | ((self.crm as u64 & 0xF) << 1)
            | self.read as u64
    }

    /// An access to `reg` through `rt` (`read`: `MRS`), the inverse of
    /// [`SysRegTrap::reg`] (`None` for [`SysReg::OtherDebug`] and
    /// [`SysReg::Other`], which name many registers).
    pub const fn access(reg: SysReg, rt: u8, read: bool) -> Option<Self> {
        let (op0, op1, crn, crm, op2) = match reg {
            SysReg::Bvr(n) => (2, 0, 0, n, 4),
            SysReg::Bcr(n) => (2, 0, 0, n, 5),
            SysReg::Wvr(n) => (2, 0, 0, n, 6),
            SysReg::Wcr(n) => (2, 0, 0, n, 7),
            SysReg::Mdscr => (2, 0, 0, 2, 2),
            SysReg::Oslar => (2, 0, 1, 0, 4),
            SysReg::Oslsr => (2, 0, 1, 1, 4),
            SysReg::Osdlr => (2, 0, 1, 3, 4),
            SysReg::IdAa64Dfr0 => (3, 0, 0, 5, 0),
            SysReg::OtherDebug | SysReg::Other => return None,
        };
        if crm > 15 {
            return None;
        }
        Some(SysRegTrap {
            op0,
            op2,
            op1,
            crn,
            rt,
            crm,
            read,
        })
    }

    /// The register named.
    pub const fn reg(&self) -> SysReg {
        match (self.op0, self.op1, self.crn, self.crm, self.op2) {
            (2, 0, 0, n, 4) => SysReg::Bvr(n),
            (2, 0, 0, n, 5) => SysReg::Bcr(n),
            (2, 0, 0, n, 6) => SysReg::Wvr(n),
            (2, 0, 0, n, 7) => SysReg::Wcr(n),
            (2, 0, 0, 2, 2) => SysReg::Mdscr,
            (2, 0, 1, 0, 4) => SysReg::Oslar,
            (2, 0, 1, 1, 4) => SysReg::Oslsr,
            (2, 0, 1, 3, 4) => SysReg::Osdlr,
            (3, 0, 0, 5, 0) => SysReg::IdAa64Dfr0,
            (2, _, _, _, _) => SysReg::OtherDebug,
            _ => SysReg::Other,
        }
    }
}

/// What [`VcpuDebug::trap`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Trapped {
    /// A read: write this value to `Rt` (unless `Rt` is 31), then skip the
    /// instruction (`ELR_EL2 += 4`).
    Read(u64),
    /// A write, done: skip the instruction.
    Written,
    /// Not a register the vCPU debug context emulates: the embedder's.
    NotDebug,
}

/// One CPU's view of the guests' share of its registers: whose registers it
/// holds. One per physical CPU, touched only on that CPU.
#[derive(Debug, Default)]
pub struct PcpuDebug {
    /// The vCPU whose registers the guest share holds, and its version then.
    holder: Option<(u32, u64)>,
    /// Guest registers enabled in the hardware: bit n = breakpoint n,
    /// 16 + n = watchpoint n (guest numbering).
    enabled: u32,
    /// The host's `MDSCR_EL1`, while the guest's is loaded.
    host_mdscr: Option<u64>,
    /// Host slots [`VcpuDebug::switch_in`] disabled because they fire below
    /// EL2: bit n = breakpoint n, 16 + n = watchpoint n (hardware numbering).
    host_masked: u32,
    /// The control value of each masked host slot, to put back at
    /// [`VcpuDebug::switch_out`] (index: breakpoint n, `MAX_SLOTS` + n).
    host_ctrl: [u32; 2 * MAX_SLOTS],
}

impl PcpuDebug {
    /// A CPU whose guest share is all disabled (as `Manager::cpu_online`
    /// leaves it: the backend clears every register the CPU has).
    pub const fn new() -> Self {
        PcpuDebug {
            holder: None,
            enabled: 0,
            host_mdscr: None,
            host_masked: 0,
            host_ctrl: [0; 2 * MAX_SLOTS],
        }
    }

    /// The vCPU whose registers the guest share holds, if any.
    pub fn holds(&self) -> Option<u32> {
        self.holder.map(|(id, _)| id)
    }

    /// The host slots disabled while the current guest runs because they
    /// would fire below EL2 (see [`VcpuDebug::switch_in`]): bit n =
    /// breakpoint n, bit 16 + n = watchpoint n, in the hardware's (and the
    /// host image's) numbering. Zero once [`VcpuDebug::switch_out`] has put
    /// them back.
    pub const fn host_masked(&self) -> u32 {
        self.host_masked
    }
}

fn bit(bank: Bank, n: u8) -> u32 {
    1 << (u32::from(n) + if bank == Bank::Watchpoint { 16 } else { 0 })
}

fn ctrl_index(bank: Bank, n: u8) -> usize {
    usize::from(n)
        + if bank == Bank::Watchpoint {
            MAX_SLOTS
        } else {
            0
        }
}

/// The host's register pools: the backend's pool 0 is its breakpoints,
/// pool 1 its watchpoints, slot n of each the hardware register n.
const HOST_POOLS: [(Bank, Pool); 2] = [(Bank::Breakpoint, Pool(0)), (Bank::Watchpoint, Pool(1))];

/// Whether a control value fires at EL2 only (`HMC=1 SSC=11 PMC=00`).
fn el2_only(ctrl: u32) -> bool {
    ctrl & crate::el2::LEVEL_FIELDS == crate::el2::Level::El2 { vhe: false }.fields(true, false)
}

/// The value the hardware gets for a guest's control register: `HMC`
/// cleared (so it can never fire at EL2), and disabled when it is a linked
/// or context type (their `LBN` numbers the guest's registers, not the
/// hardware's).
pub const fn hardware_ctrl(bank: Bank, ctrl: u32) -> u32 {
    let typed = match bank {
        // BT, bits [23:20], or LBN.
        Bank::Breakpoint => ctrl & (0xF << 20) != 0,
        // WT, bit 20 (linked).
        Bank::Watchpoint => ctrl & (1 << 20) != 0,
    };
    if typed {
        0
    } else {
        ctrl & !CTRL_HMC
    }
}

/// Whether every enabled slot of `image` fires at EL2 only (`HMC=1 SSC=11
/// PMC=00`): what may stay in the hardware while a guest runs with its own
/// debug state.
pub fn host_image_is_el2_only(image: &Image<ArmSlot>) -> bool {
    image
        .pools
        .iter()
        .flatten()
        .all(|s| !s.enabled() || el2_only(s.ctrl))
}

/// One vCPU's debug state: its copy of its debug registers and whether the
/// host debugs it. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct VcpuDebug {
    id: u32,
    layout: Layout,
    vhe: bool,
    bvr: [u64; MAX_SLOTS],
    bcr: [u32; MAX_SLOTS],
    wvr: [u64; MAX_SLOTS],
    wcr: [u32; MAX_SLOTS],
    mdscr: u64,
    oslk: bool,
    /// The guest touched its debug registers.
    used: bool,
    host_debug: bool,
    /// Bumped on every change of the copy.
    version: u64,
}

impl VcpuDebug {
    /// A vCPU (`id` unique among the vCPUs that share CPUs) with every
    /// debug register zero (the guest's reset values are UNKNOWN; zero is
    /// disabled) on CPUs split as `layout`; `vhe`: the host runs with
    /// `HCR_EL2.E2H = 1`.
    pub const fn new(id: u32, layout: Layout, vhe: bool) -> Self {
        VcpuDebug {
            id,
            layout,
            vhe,
            bvr: [0; MAX_SLOTS],
            bcr: [0; MAX_SLOTS],
            wvr: [0; MAX_SLOTS],
            wcr: [0; MAX_SLOTS],
            mdscr: 0,
            oslk: true,
            used: false,
            host_debug: false,
            version: 0,
        }
    }

    /// The vCPU's id.
    pub const fn id(&self) -> u32 {
        self.id
    }

    /// Whether the guest has touched its debug registers (from then on its
    /// registers are switched).
    pub const fn used(&self) -> bool {
        self.used
    }

    /// Whether the host debugs this guest.
    pub const fn host_debug(&self) -> bool {
        self.host_debug
    }

    /// The host debugs this guest (`true`) or stops (see the
    /// [module docs](self#the-hosts-breakpoints)); takes effect at the next
    /// [`VcpuDebug::switch_in`].
    pub fn set_host_debug(&mut self, on: bool) {
        self.host_debug = on;
    }

    /// The guest's register pair `n` of `bank` as it last wrote it (its
    /// copy; no hardware access). `None` beyond its share.
    pub fn guest_slot(&self, bank: Bank, n: u8) -> Option<ArmSlot> {
        if !self.layout.guest_has(bank, n) {
            return None;
        }
        let i = usize::from(n);
        Some(match bank {
            Bank::Breakpoint => ArmSlot {
                value: self.bvr[i],
                ctrl: self.bcr[i],
            },
            Bank::Watchpoint => ArmSlot {
                value: self.wvr[i],
                ctrl: self.wcr[i],
            },
        })
    }

    /// The guest's `MDSCR_EL1` as it last wrote it.
    pub const fn mdscr(&self) -> u64 {
        self.mdscr
    }

    /// Whether the guest's own state is to be in the hardware while it runs.
    const fn owns_hardware(&self) -> bool {
        self.used && !self.host_debug
    }

    /// The vCPU is about to run on the CPU whose state is `cpu`: keep the
    /// host's slots out of the guest, bring the guest share up to date and
    /// return the `MDCR_EL2` bits to set (of [`VCPU_MDCR_BITS`]).
    ///
    /// `host` is what the host's manager installed on this CPU
    /// (`Manager::image(cpu)`, after `Manager::sched_in`). Unless the host
    /// debugs this guest ([`VcpuDebug::set_host_debug`]), every enabled host
    /// slot that is not EL2-only (`HMC=1 SSC=11 PMC=00`) is disabled in the
    /// hardware until [`VcpuDebug::switch_out`] puts it back
    /// ([`PcpuDebug::host_masked`] names them): it would fire for the guest
    /// at EL1 or EL0 (a host breakpoint with neither exclusion flag, an
    /// `exclude_kernel` one of a VHE host's EL0, …). Those slots do not
    /// fire at EL2 either until then, trap handling included. Called again
    /// before the switch out (the host's manager changed the CPU
    /// meanwhile), it takes `host` afresh, with or without host debugging
    /// (see [the module docs](self#the-hosts-breakpoints)).
    ///
    /// `host` need not be read on every switch: the manager's image
    /// changes only when it installs something (`sync`, `sched_in`,
    /// `restore`), so an embedder may keep the last one.
    ///
    /// A vCPU that never used its debug registers, with a host image that
    /// is EL2-only, touches no register, unless enabled registers of
    /// another vCPU are in the guest share (they are disabled: they must not
    /// fire in this guest); a vCPU whose registers the CPU already holds
    /// writes only `MDSCR_EL1`.
    pub fn switch_in<R: DebugRegs + MdscrRegs>(
        &self,
        cpu: &mut PcpuDebug,
        regs: &R,
        host: &Image<ArmSlot>,
    ) -> u64 {
        if !self.host_debug || cpu.host_masked != 0 {
            self.mask_host(cpu, regs, host);
        }
        if self.owns_hardware() {
            self.load(cpu, regs);
        } else if cpu.enabled != 0 {
            // Another vCPU's registers (or this one's, while the host debugs
            // it) are enabled in the guest share: they must not fire here.
            self.clear(cpu, regs);
        }
        if self.host_debug {
            TDE | TDA | TDOSA | TDRA
        } else {
            TDA | TDOSA | TDRA
        }
    }

    /// The vCPU stopped running on `cpu`: give `MDSCR_EL1` back to the host
    /// (if the guest's was loaded), put back the host slots
    /// [`VcpuDebug::switch_in`] disabled (as the hardware had them, unless
    /// the host's manager has rewritten them since) and, with VHE, disable the guest
    /// share. Returns the `MDCR_EL2` bits for the host ([`TDE`]: EL2 is the
    /// debug target again). Touches no register for a vCPU that never used
    /// its debug registers while the host's slots were all EL2-only.
    pub fn switch_out<R: DebugRegs + MdscrRegs>(&self, cpu: &mut PcpuDebug, regs: &R) -> u64 {
        if let Some(host) = cpu.host_mdscr.take() {
            // SAFETY: the host's own value, saved at the load.
            unsafe { regs.write_mdscr(host) };
        }
        if self.vhe {
            self.clear(cpu, regs);
        }
        if cpu.host_masked != 0 {
            for (bank, _) in HOST_POOLS {
                for n in 0..MAX_SLOTS as u8 {
                    if cpu.host_masked & bit(bank, n) == 0 {
                        continue;
                    }
                    let saved = cpu.host_ctrl[ctrl_index(bank, n)];
                    // 0: as masked. 1: the backend ended a step-over
                    // meanwhile (it sets the enable bit of what it finds).
                    // Anything else: the host's manager rewrote the slot,
                    // and its value stands.
                    let ctrl = match regs.read_ctrl(bank, n) {
                        0 => saved,
                        1 => saved | 1,
                        _ => continue,
                    };
                    // SAFETY: the host's own slot, as it was at the switch
                    // in (the value register was never touched).
                    unsafe { regs.write_ctrl(bank, n, ctrl) };
                }
            }
            regs.sync();
            cpu.host_masked = 0;
        }
        TDE
    }

    /// Disable the enabled host slots of `host` that are not EL2-only (see
    /// [`VcpuDebug::switch_in`]; none while the host debugs this guest),
    /// remembering the control values the hardware had: a slot the backend
    /// holds disabled for a step-over stays so at the switch out. Slots
    /// masked by an earlier switch in (no switch out since) are taken from
    /// `host` again: one the host's manager rewrote since holds its new value
    /// (masked again, or left alone), one it left is still masked (or put
    /// back, when it no longer needs masking).
    fn mask_host<R: DebugRegs>(&self, cpu: &mut PcpuDebug, regs: &R, host: &Image<ArmSlot>) {
        let mut wrote = false;
        let (inst, data) = self.layout.host_counts();
        for (bank, pool) in HOST_POOLS {
            let count = if bank == Bank::Breakpoint { inst } else { data };
            let Some(slots) = host.pools.get(pool.index()) else {
                continue;
            };
            for (n, slot) in (0..count).zip(slots.iter()) {
                let b = bit(bank, n);
                let masked = cpu.host_masked & b != 0;
                let mask = !self.host_debug && slot.enabled() && !el2_only(slot.ctrl);
                if !mask && !masked {
                    continue;
                }
                let i = ctrl_index(bank, n);
                // 0: still as an earlier switch in masked it (an enabled
                // slot the manager writes is never 0).
                let hw = regs.read_ctrl(bank, n);
                match (mask, masked && hw == 0) {
                    // Still as an earlier switch in masked it.
                    (true, true) => {}
                    (true, false) => {
                        // The enable bit as the hardware has it: clear while
                        // the backend steps over a hit of the slot.
                        cpu.host_ctrl[i] = (slot.ctrl & !1) | (hw & 1);
                        cpu.host_masked |= b;
                        // SAFETY: the host's own slot (the layout's host
                        // share), disabled while the guest runs; switch_out
                        // writes it back.
                        unsafe { regs.write_ctrl(bank, n, 0) };
                        wrote = true;
                    }
                    // No longer to be masked, and the manager has not
                    // written it since: as saved.
                    (false, true) if slot.enabled() => {
                        cpu.host_masked &= !b;
                        // SAFETY: the host's own slot, put back as it was
                        // before it was masked.
                        unsafe { regs.write_ctrl(bank, n, cpu.host_ctrl[i]) };
                        wrote = true;
                    }
                    // No longer to be masked; the manager's value stands.
                    (false, _) => cpu.host_masked &= !b,
                }
            }
        }
        if wrote {
            regs.sync();
        }
    }

    /// Write the guest's whole share from its copy again (after something
    /// else wrote those registers), and its `MDSCR_EL1` bits, when it owns
    /// the hardware; call it while the vCPU is switched in.
    pub fn refresh<R: DebugRegs + MdscrRegs>(&self, cpu: &mut PcpuDebug, regs: &R) {
        if self.owns_hardware() {
            let (inst, data) = self.layout.guest_counts();
            cpu.enabled = ((1 << inst) - 1) | (((1 << data) - 1) << 16);
            cpu.holder = None;
            self.load(cpu, regs);
        }
    }

    /// Disable every guest register enabled in the hardware (every vCPU on
    /// a CPU has the same [`Layout`], so this vCPU's maps the others').
    fn clear<R: DebugRegs>(&self, cpu: &mut PcpuDebug, regs: &R) {
        if cpu.enabled != 0 {
            for bank in [Bank::Breakpoint, Bank::Watchpoint] {
                for n in 0..MAX_SLOTS as u8 {
                    if cpu.enabled & bit(bank, n) != 0 {
                        // SAFETY: a register of the guest share (see
                        // write_hw), disabled.
                        unsafe { regs.write_ctrl(bank, self.layout.hw(bank, n), 0) };
                    }
                }
            }
            regs.sync();
            cpu.enabled = 0;
        }
        cpu.holder = None;
    }

    /// Make the guest share hold this vCPU's copy, and load its `MDSCR_EL1`
    /// bits (saving the host's).
    fn load<R: DebugRegs + MdscrRegs>(&self, cpu: &mut PcpuDebug, regs: &R) {
        if cpu.holder != Some((self.id, self.version)) {
            let mut wrote = false;
            for bank in [Bank::Breakpoint, Bank::Watchpoint] {
                let (inst, data) = self.layout.guest_counts();
                let count = if bank == Bank::Breakpoint { inst } else { data };
                for n in 0..count {
                    wrote |= self.write_hw(cpu, regs, bank, n);
                }
            }
            if wrote {
                regs.sync();
            }
            cpu.holder = Some((self.id, self.version));
        }
        self.load_mdscr(cpu, regs);
    }

    fn load_mdscr<R: MdscrRegs>(&self, cpu: &mut PcpuDebug, regs: &R) {
        let host = match cpu.host_mdscr {
            Some(h) => h,
            None => {
                let h = regs.read_mdscr();
                cpu.host_mdscr = Some(h);
                h
            }
        };
        let v = (host & !GUEST_MDSCR_BITS) | (self.mdscr & GUEST_MDSCR_BITS);
        // SAFETY: the guest's bits while it runs; switch_out writes the
        // host's value back.
        unsafe { regs.write_mdscr(v) };
    }

    /// Write the guest's register pair `n` to the hardware if it differs
    /// from what the hardware holds as far as `cpu` knows; returns whether
    /// it wrote.
    fn write_hw<R: DebugRegs>(&self, cpu: &mut PcpuDebug, regs: &R, bank: Bank, n: u8) -> bool {
        let Some(slot) = self.guest_slot(bank, n) else {
            return false;
        };
        let ctrl = hardware_ctrl(bank, slot.ctrl);
        let hw = self.layout.hw(bank, n);
        let b = bit(bank, n);
        let on = ctrl & 1 != 0;
        if !on && cpu.enabled & b == 0 {
            // Disabled in the hardware already; the value does not matter.
            return false;
        }
        // SAFETY: the guest share belongs to the vCPU contexts (HypRegs
        // keeps the backend below it); disable first, then the value, then
        // the control, each synchronised (as the backend's write_slot).
        unsafe {
            regs.write_ctrl(bank, hw, 0);
            if on {
                regs.sync();
                regs.write_value(bank, hw, slot.value);
                regs.sync();
                regs.write_ctrl(bank, hw, ctrl);
            }
        }
        if on {
            cpu.enabled |= b;
        } else {
            cpu.enabled &= !b;
        }
        true
    }

    /// Emulate a trapped access of the guest (`value`: what `Rt` holds, for
    /// a write; `Rt` = 31 is `xzr`, pass 0). The first access to a debug
    /// register loads the guest's registers when it owns them (not while the
    /// host debugs it). Registers beyond the guest's share read as zero and
    /// ignore writes.
    pub fn trap<R: DebugRegs + MdscrRegs>(
        &mut self,
        cpu: &mut PcpuDebug,
        regs: &R,
        trap: SysRegTrap,
        value: u64,
    ) -> Trapped {
        let reg = trap.reg();
        if reg == SysReg::IdAa64Dfr0 {
            return if trap.read {
                Trapped::Read(self.layout.guest_id_aa64dfr0())
            } else {
                Trapped::Written
            };
        }
        if reg == SysReg::Other {
            return Trapped::NotDebug;
        }
        if !self.used {
            self.used = true;
            if self.owns_hardware() {
                self.load(cpu, regs);
            }
        }
        if trap.read {
            return Trapped::Read(self.read(reg));
        }
        let (bank, n, ctrl) = match reg {
            SysReg::Bvr(n) => (Bank::Breakpoint, n, false),
            SysReg::Bcr(n) => (Bank::Breakpoint, n, true),
            SysReg::Wvr(n) => (Bank::Watchpoint, n, false),
            SysReg::Wcr(n) => (Bank::Watchpoint, n, true),
            SysReg::Mdscr => {
                // Not part of the guest share's version: loaded on every
                // switch in.
                self.mdscr = value;
                if self.owns_hardware() {
                    self.load_mdscr(cpu, regs);
                }
                return Trapped::Written;
            }
            SysReg::Oslar => {
                self.oslk = value & 1 != 0;
                return Trapped::Written;
            }
            _ => return Trapped::Written,
        };
        if !self.layout.guest_has(bank, n) {
            return Trapped::Written;
        }
        let i = usize::from(n);
        match (bank, ctrl) {
            (Bank::Breakpoint, false) => self.bvr[i] = value,
            (Bank::Breakpoint, true) => self.bcr[i] = value as u32,
            (Bank::Watchpoint, false) => self.wvr[i] = value,
            (Bank::Watchpoint, true) => self.wcr[i] = value as u32,
        }
        let was_current = cpu.holder == Some((self.id, self.version));
        self.version += 1;
        if self.owns_hardware() && was_current {
            if self.write_hw(cpu, regs, bank, n) {
                regs.sync();
            }
            cpu.holder = Some((self.id, self.version));
        }
        Trapped::Written
    }

    fn read(&self, reg: SysReg) -> u64 {
        let slot = |bank, n| self.guest_slot(bank, n).unwrap_or_default();
        match reg {
            SysReg::Bvr(n) => slot(Bank::Breakpoint, n).value,
            SysReg::Bcr(n) => u64::from(slot(Bank::Breakpoint, n).ctrl),
            SysReg::Wvr(n) => slot(Bank::Watchpoint, n).value,
            SysReg::Wcr(n) => u64::from(slot(Bank::Watchpoint, n).ctrl),
            SysReg::Mdscr => self.mdscr,
            // OSLM = 0b10 (bit 3): the OS lock is implemented; OSLK, bit 1.
            SysReg::Oslsr => (1 << 3) | (u64::from(self.oslk) << 1),
            _ => 0,
        }
    }
}
