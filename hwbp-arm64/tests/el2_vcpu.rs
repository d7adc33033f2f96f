//! hwbp-arm64 at EL2 and the vCPU debug context, on the software model: the
//! contract the `qemu-aarch64-el2` board checks on QEMU, tested on the host.

use core::cell::RefCell;
use hwbp_arm64::backend::aarch64::Mdscr;

const MDSCR_SS: u64 = Mdscr::SS.bits();
const MDSCR_KDE: u64 = Mdscr::KDE.bits();
const MDSCR_MDE: u64 = Mdscr::MDE.bits();
use hwbp_arm64::bcr::{Bcr, El, Privilege};
use hwbp_arm64::el2::{mdcr, HypRegs, Level};
use hwbp_arm64::esr::{Esr, ExceptionClass};
use hwbp_arm64::model::{DataAccess, Fetch, Model, ModelException, ModelId};
use hwbp_arm64::vcpu::{
    host_image_is_el2_only, Layout, PcpuDebug, SysReg, SysRegTrap, Trapped, VcpuDebug,
};
use hwbp_arm64::wcr::{LoadStore, Wcr};
use hwbp_arm64::ArmSlot;
use hwbp_arm64::{ArmBackend, Bank, DebugRegs, Flavour, IdAa64Dfr0, StepMethod};
use hwbp_core::{
    Access, BreakpointAttr, Error, HardwareError, Image, Manager, Resume, Sample, Target, TaskId,
};

/// Cortex-A53: 6 breakpoints, 4 watchpoints.
const A53: u64 = 0x1030_5106;
const HOST: (u8, u8) = (2, 2);

type Backend = ArmBackend<HypRegs<Model>>;

struct Rig<F: Fn(&Sample)> {
    hw: Manager<Backend, F, 1, 8, 4>,
}

fn rig<F: Fn(&Sample)>(f: F) -> Rig<F> {
    let regs = HypRegs::new(
        Model::new(ModelId::Aarch64(A53)),
        Level::El2 { vhe: false },
        HOST.0,
        HOST.1,
    );
    let hw = Manager::new(
        ArmBackend::new(regs, Flavour::Aarch64, StepMethod::SoftwareStep),
        f,
    );
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    Rig { hw }
}

impl<F: Fn(&Sample)> Rig<F> {
    fn regs(&self) -> &HypRegs<Model> {
        self.hw.arch().regs()
    }
    fn model(&self) -> &Model {
        self.regs().inner()
    }
    fn add(&self, attr: BreakpointAttr) -> hwbp_core::Handle {
        let r = self.hw.register(&attr).unwrap();
        self.hw.sync(0).unwrap();
        r.handle
    }
    /// What the host's manager installed on CPU 0.
    fn host(&self) -> Image<ArmSlot> {
        self.hw.image(0).unwrap()
    }
    fn fetch(&self, pc: u64, el: El) -> Option<ModelException> {
        self.model().fetch(&Fetch { pc, el })
    }
    fn store(&self, addr: u64, el: El) -> Option<ModelException> {
        let acc = DataAccess {
            addr,
            size: 8,
            write: true,
            el,
        };
        self.model().access(&acc, 0x8_0000, None)
    }
    fn layout(&self) -> Layout {
        Layout::new(IdAa64Dfr0(A53), HOST.0, HOST.1).unwrap()
    }
    /// Every register of the host share: (breakpoints, watchpoints).
    fn host_share(&self) -> Vec<(u64, u32)> {
        let m = self.model();
        (0..HOST.0)
            .map(|n| {
                (
                    m.read_value(Bank::Breakpoint, n),
                    m.read_ctrl(Bank::Breakpoint, n),
                )
            })
            .chain((0..HOST.1).map(|n| {
                (
                    m.read_value(Bank::Watchpoint, n),
                    m.read_ctrl(Bank::Watchpoint, n),
                )
            }))
            .collect()
    }
}

fn ec(e: &ModelException) -> u8 {
    match e {
        ModelException::A64(x) => Esr(x.esr).ec(),
        ModelException::A32(_) => panic!("AArch64 only"),
    }
}

/// A guest `MSR`/`MRS` trapped to EL2.
fn trap(
    v: &mut VcpuDebug,
    cpu: &mut PcpuDebug,
    regs: &HypRegs<Model>,
    reg: SysReg,
    write: Option<u64>,
) -> Trapped {
    let t = SysRegTrap::access(reg, 3, write.is_none()).unwrap();
    // Through the exact ESR_EL2 the hardware reports.
    let t = SysRegTrap::from_esr(t.to_esr()).unwrap();
    v.trap(cpu, regs, t, write.unwrap_or(0))
}

fn guest_bp(
    v: &mut VcpuDebug,
    cpu: &mut PcpuDebug,
    regs: &HypRegs<Model>,
    n: u8,
    pc: u64,
    ctrl: u32,
) {
    trap(v, cpu, regs, SysReg::Bvr(n), Some(pc));
    trap(v, cpu, regs, SysReg::Bcr(n), Some(u64::from(ctrl)));
}

fn el1_bp() -> u32 {
    Bcr::address_match(0xF, Privilege::Kernel).0
}

#[test]
fn el2_requests_are_el2_only_and_decode_at_el2() {
    let seen = RefCell::new(Vec::new());
    let r = rig(|s: &Sample| seen.borrow_mut().push(s.addr));
    let w = r.add(BreakpointAttr::watch(0x4000_1000, 8, Access::WRITE).kernel_only_el());
    let b = r.add(BreakpointAttr::exec(0x4008_0000).kernel_only_el());
    let image = r.hw.image(0).unwrap();
    for slot in image.pools.iter().flatten().filter(|s| s.enabled()) {
        // HMC=1 SSC=11 PMC=00: EL2 only, never a reserved encoding.
        assert_eq!(slot.ctrl & 0xE006, (1 << 13) | (0b11 << 14), "{slot:?}");
    }
    assert!(host_image_is_el2_only(&image));
    // A guest at EL1 never triggers them; the host at EL2 does.
    assert!(r.store(0x4000_1000, El::El1).is_none());
    assert!(r.fetch(0x4008_0000, El::El1).is_none());
    let raw = r.store(0x4000_1000, El::El2).unwrap();
    assert_eq!(ec(&raw), 0x35, "watchpoint, same EL (ESR_EL2)");
    assert_eq!(r.hw.handle_exception(0, &raw), Resume::SINGLE_STEP);
    // The step over: MDSCR_EL1.SS armed by the backend, SPSR_EL2.SS by the
    // embedder; EC 0x33 at EL2.
    assert!(r.model().step_armed());
    let step = r.model().retire(0x8_0004, El::El2).unwrap();
    assert_eq!(ec(&step), 0x33);
    assert_eq!(r.hw.handle_exception(0, &step), Resume::RETURN);
    let raw = r.fetch(0x4008_0000, El::El2).unwrap();
    assert_eq!(ec(&raw), 0x31);
    assert_eq!(r.hw.handle_exception(0, &raw), Resume::SINGLE_STEP);
    let step = r.model().retire(0x4008_0004, El::El2).unwrap();
    assert_eq!(r.hw.handle_exception(0, &step), Resume::RETURN);
    assert_eq!((r.hw.hits(w), r.hw.hits(b)), (Ok(1), Ok(1)));
    assert_eq!(*seen.borrow(), vec![0x4000_1000, 0x4008_0000]);
    // The backend uses only the host's share.
    assert_eq!(
        r.hw.slot_counts().unwrap(),
        hwbp_core::SlotCounts::Separate { inst: 2, data: 2 }
    );
    // An EL2 exception decoded from ESR_EL2 / FAR_EL2 values as QEMU reports
    // them (EC 0x35, WnR).
    let esr = hwbp_arm64::esr::esr_for(ExceptionClass::Watchpoint { same_el: true }, 0x22 | 1 << 6);
    assert_eq!(
        Esr(esr).class(),
        ExceptionClass::Watchpoint { same_el: true }
    );
}

/// `exclude_user`, which at EL2 means "EL2 only", on CPU 0.
trait KernelOnly {
    fn kernel_only_el(self) -> Self;
}
impl KernelOnly for BreakpointAttr {
    fn kernel_only_el(self) -> Self {
        self.exclude_user(true).target(Target::Cpu(0))
    }
}

#[test]
fn a_vcpu_that_never_used_debug_costs_no_register_access() {
    let r = rig(|_: &Sample| {});
    r.add(BreakpointAttr::exec(0x4008_0000).kernel_only_el());
    let layout = r.layout();
    let (mut a, mut b) = (
        VcpuDebug::new(1, layout, false),
        VcpuDebug::new(2, layout, false),
    );
    let mut cpu = PcpuDebug::new();
    let writes = r.model().writes();
    let mdscr = r.model().mdscr();
    for _ in 0..100 {
        for v in [&mut a, &mut b] {
            let bits = v.switch_in(&mut cpu, r.regs(), &r.host());
            assert_eq!(bits & mdcr::TDE, 0, "the guest's debug exceptions go to it");
            assert_ne!(bits & mdcr::TDA, 0, "its first access traps");
            assert_eq!(v.switch_out(&mut cpu, r.regs()), mdcr::TDE);
        }
    }
    assert_eq!(r.model().writes(), writes, "no debug register written");
    assert_eq!(r.model().mdscr(), mdscr);
    // The slot count it sees (TID3) does not count as using debug.
    let Trapped::Read(id) = trap(&mut a, &mut cpu, r.regs(), SysReg::IdAa64Dfr0, None) else {
        panic!("ID_AA64DFR0_EL1 is emulated");
    };
    assert_eq!((IdAa64Dfr0(id).brps(), IdAa64Dfr0(id).wrps()), (4, 2));
    assert_eq!(
        IdAa64Dfr0(id).debug_ver_field(),
        IdAa64Dfr0(A53).debug_ver_field()
    );
    assert!(!a.used());
    assert_eq!(r.model().writes(), writes);
}

#[test]
fn the_first_access_loads_the_guest_state_and_it_survives_switches() {
    let r = rig(|_: &Sample| {});
    let layout = r.layout();
    let mut cpu = PcpuDebug::new();
    let (mut a, mut b) = (
        VcpuDebug::new(1, layout, false),
        VcpuDebug::new(2, layout, false),
    );
    // A runs and sets a breakpoint (its register 0 = hardware 2), MDE|KDE.
    a.switch_in(&mut cpu, r.regs(), &r.host());
    trap(
        &mut a,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE),
    );
    assert!(a.used());
    guest_bp(&mut a, &mut cpu, r.regs(), 0, 0x1000, el1_bp());
    assert_eq!(r.model().read_value(Bank::Breakpoint, HOST.0), 0x1000);
    assert!(
        r.fetch(0x1000, El::El1).is_some(),
        "A's breakpoint fires at EL1"
    );
    a.switch_out(&mut cpu, r.regs());
    // B runs, sets its own watchpoint 1 and breakpoint 0 elsewhere.
    b.switch_in(&mut cpu, r.regs(), &r.host());
    assert!(
        r.fetch(0x1000, El::El1).is_none(),
        "A's registers are not B's"
    );
    guest_bp(&mut b, &mut cpu, r.regs(), 0, 0x2000, el1_bp());
    trap(&mut b, &mut cpu, r.regs(), SysReg::Wvr(1), Some(0x3000));
    let wcr = Wcr::new(0xFF, 0, LoadStore::Store, Privilege::Kernel).0;
    trap(
        &mut b,
        &mut cpu,
        r.regs(),
        SysReg::Wcr(1),
        Some(u64::from(wcr)),
    );
    trap(
        &mut b,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE | MDSCR_SS),
    );
    assert!(
        r.model().step_armed(),
        "B's MDSCR_EL1.SS is in the hardware while it runs"
    );
    assert!(r.store(0x3000, El::El1).is_some());
    b.switch_out(&mut cpu, r.regs());
    assert!(!r.model().step_armed(), "the host's MDSCR_EL1 is back");
    for round in 0..3 {
        a.switch_in(&mut cpu, r.regs(), &r.host());
        assert!(r.fetch(0x1000, El::El1).is_some(), "round {round}");
        assert!(r.fetch(0x2000, El::El1).is_none() && r.store(0x3000, El::El1).is_none());
        // A reads back what it wrote.
        assert_eq!(
            trap(&mut a, &mut cpu, r.regs(), SysReg::Bvr(0), None),
            Trapped::Read(0x1000)
        );
        a.switch_out(&mut cpu, r.regs());
        b.switch_in(&mut cpu, r.regs(), &r.host());
        assert!(r.fetch(0x2000, El::El1).is_some() && r.store(0x3000, El::El1).is_some());
        assert!(r.fetch(0x1000, El::El1).is_none());
        b.switch_out(&mut cpu, r.regs());
    }
    // The same vCPU again: nothing written.
    a.switch_in(&mut cpu, r.regs(), &r.host());
    a.switch_out(&mut cpu, r.regs());
    let writes = r.model().writes();
    a.switch_in(&mut cpu, r.regs(), &r.host());
    assert_eq!(
        r.model().writes(),
        writes + 1,
        "only MDSCR_EL1 (the guest's)"
    );
    a.switch_out(&mut cpu, r.regs());
}

#[test]
fn the_guest_never_sees_nor_clobbers_the_host_share() {
    let r = rig(|_: &Sample| {});
    r.add(BreakpointAttr::exec(0x4008_0000).kernel_only_el());
    r.add(BreakpointAttr::watch(0x4000_0000, 8, Access::RW).kernel_only_el());
    let host = r.host_share();
    let mut cpu = PcpuDebug::new();
    let mut v = VcpuDebug::new(7, r.layout(), false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    // Its whole share, and the registers beyond it it was told do not exist.
    for n in 0..16 {
        guest_bp(
            &mut v,
            &mut cpu,
            r.regs(),
            n,
            0x5000 + 4 * u64::from(n),
            el1_bp(),
        );
        trap(&mut v, &mut cpu, r.regs(), SysReg::Wvr(n), Some(0x6000));
        trap(&mut v, &mut cpu, r.regs(), SysReg::Wcr(n), Some(0x1FFF));
        // Reads beyond its share are zero; inside, its own values.
        let read = trap(&mut v, &mut cpu, r.regs(), SysReg::Bvr(n), None);
        let expect = if n < 4 { 0x5000 + 4 * u64::from(n) } else { 0 };
        assert_eq!(read, Trapped::Read(expect), "DBGBVR{n}");
    }
    assert_eq!(r.host_share(), host, "the host's registers are untouched");
    // A non-debug register is the embedder's.
    let other = SysRegTrap {
        op0: 3,
        op1: 0,
        crn: 1,
        crm: 0,
        op2: 0,
        rt: 0,
        read: true,
    };
    assert_eq!(v.trap(&mut cpu, r.regs(), other, 0), Trapped::NotDebug);
    // Too small a guest share is refused.
    assert_eq!(
        Layout::new(IdAa64Dfr0(A53), 5, 2),
        Err(Error::Hardware(HardwareError::NoDebugHardware))
    );
}

#[test]
fn a_guest_writing_hmc_never_fires_in_the_host() {
    let r = rig(|_: &Sample| {});
    let mut cpu = PcpuDebug::new();
    let mut v = VcpuDebug::new(1, r.layout(), false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE),
    );
    // The guest asks for "EL2 only" and "EL2, EL1, EL0" on host code/data.
    let el2_only = Bcr::address_match(0xF, Privilege::Reserved).0 | (1 << 13) | (0b11 << 14);
    let everything = Bcr::address_match(0xF, Privilege::Both).0 | (1 << 13);
    guest_bp(&mut v, &mut cpu, r.regs(), 0, 0x4008_0000, el2_only);
    guest_bp(&mut v, &mut cpu, r.regs(), 1, 0x4008_0100, everything);
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Wvr(0),
        Some(0x4000_0000),
    );
    let w = Wcr::new(0xFF, 0, LoadStore::Both, Privilege::Both).0 | (1 << 13);
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Wcr(0),
        Some(u64::from(w)),
    );
    // It reads back what it wrote.
    assert_eq!(
        trap(&mut v, &mut cpu, r.regs(), SysReg::Bcr(0), None),
        Trapped::Read(u64::from(el2_only))
    );
    // Its EL1 breakpoint still works in the guest.
    assert!(r.fetch(0x4008_0100, El::El1).is_some());
    v.switch_out(&mut cpu, r.regs());
    // Switched out (its registers still in the hardware, lazily): the host
    // at EL2 never hits them.
    assert_eq!(cpu.holds(), Some(1));
    assert!(r.fetch(0x4008_0000, El::El2).is_none());
    assert!(r.fetch(0x4008_0100, El::El2).is_none());
    assert!(r.store(0x4000_0000, El::El2).is_none());
}

#[test]
fn with_vhe_the_switch_out_disables_the_guest_share() {
    let r = rig(|_: &Sample| {});
    let mut cpu = PcpuDebug::new();
    let mut v = VcpuDebug::new(1, r.layout(), true);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE),
    );
    guest_bp(
        &mut v,
        &mut cpu,
        r.regs(),
        0,
        0x1000,
        Bcr::address_match(0xF, Privilege::User).0,
    );
    assert!(r.fetch(0x1000, El::El0).is_some());
    v.switch_out(&mut cpu, r.regs());
    assert!(
        r.fetch(0x1000, El::El0).is_none(),
        "the host's EL0 never hits it"
    );
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert!(
        r.fetch(0x1000, El::El0).is_some(),
        "and it is back for the guest"
    );
}

#[test]
fn the_host_debugs_a_guest_and_the_guest_settings_stay_out() {
    let seen = RefCell::new(Vec::new());
    let r = rig(|s: &Sample| seen.borrow_mut().push(s.addr));
    r.add(BreakpointAttr::exec(0x4008_0000).kernel_only_el());
    let mut cpu = PcpuDebug::new();
    let mut v = VcpuDebug::new(1, r.layout(), false);
    // The guest has its own breakpoint at 0x1000.
    v.switch_in(&mut cpu, r.regs(), &r.host());
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE),
    );
    guest_bp(&mut v, &mut cpu, r.regs(), 0, 0x1000, el1_bp());
    v.switch_out(&mut cpu, r.regs());
    // The host debugs the guest: a breakpoint on a guest address, lower
    // levels only, for the vCPU's task.
    let task = TaskId(1);
    let attr = BreakpointAttr::exec(0x2000)
        .user_only()
        .target(Target::Task { task, cpu: None });
    let h = r.hw.register(&attr).unwrap().handle;
    v.set_host_debug(true);
    r.hw.sched_in(0, Some(task)).unwrap();
    let writes = r.model().writes();
    let bits = v.switch_in(&mut cpu, r.regs(), &r.host());
    assert_ne!(
        bits & mdcr::TDE,
        0,
        "the guest's debug exceptions come to EL2"
    );
    assert!(r.model().writes() > writes, "its share is disabled");
    assert!(
        r.fetch(0x1000, El::El1).is_none(),
        "the guest's own breakpoint stays out"
    );
    // The guest rewrites its registers meanwhile: only its copy changes.
    let writes = r.model().writes();
    guest_bp(&mut v, &mut cpu, r.regs(), 1, 0x1004, el1_bp());
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE | MDSCR_SS),
    );
    assert_eq!(r.model().writes(), writes);
    assert!(!r.model().step_armed());
    // The host's breakpoint on the guest address is taken at EL2 and
    // stepped over.
    let raw = r.fetch(0x2000, El::El1).unwrap();
    assert_eq!(r.hw.handle_exception(0, &raw), Resume::SINGLE_STEP);
    let step = r.model().retire(0x2004, El::El1).unwrap();
    assert_eq!(r.hw.handle_exception(0, &step), Resume::RETURN);
    assert_eq!(r.hw.hits(h), Ok(1));
    assert_eq!(*seen.borrow(), vec![0x2000]);
    assert_eq!(v.switch_out(&mut cpu, r.regs()), mdcr::TDE);
    r.hw.sched_out(0).unwrap();
    r.hw.sched_in(0, None).unwrap();
    assert!(host_image_is_el2_only(&r.hw.image(0).unwrap()));
    // Debugging over: the guest's own settings (both breakpoints, its SS)
    // are back in the hardware when it runs.
    v.set_host_debug(false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert!(r.fetch(0x2000, El::El1).is_none());
    assert!(r.fetch(0x1000, El::El1).is_some() && r.fetch(0x1004, El::El1).is_some());
    assert!(r.model().step_armed());
    v.switch_out(&mut cpu, r.regs());
}

#[test]
fn refresh_rewrites_a_clobbered_guest_share() {
    let r = rig(|_: &Sample| {});
    let mut cpu = PcpuDebug::new();
    let mut v = VcpuDebug::new(1, r.layout(), false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE),
    );
    guest_bp(&mut v, &mut cpu, r.regs(), 0, 0x1000, el1_bp());
    // Something else clears the register behind the context's back.
    r.model().write_ctrl(Bank::Breakpoint, HOST.0, 0);
    assert!(r.fetch(0x1000, El::El1).is_none());
    v.refresh(&mut cpu, r.regs());
    assert!(r.fetch(0x1000, El::El1).is_some());
    assert_eq!(
        v.guest_slot(Bank::Breakpoint, 0).map(|s| s.value),
        Some(0x1000)
    );
    assert_eq!(v.guest_slot(Bank::Breakpoint, 4), None);
}

#[test]
fn sysreg_trap_iss_is_decoded_exactly() {
    // `mrs x3, dbgbcr1_el1`: Op0 2, Op2 5, Op1 0, CRn 0, Rt 3, CRm 1, read.
    let t = SysRegTrap::from_esr(0x622A_0063).unwrap();
    assert_eq!(
        t,
        SysRegTrap {
            op0: 2,
            op2: 5,
            op1: 0,
            crn: 0,
            rt: 3,
            crm: 1,
            read: true
        }
    );
    assert_eq!(t.reg(), SysReg::Bcr(1));
    // `msr mdscr_el1, x5`; `mrs x0, id_aa64dfr0_el1`; `msr oslar_el1, xzr`.
    let mdscr = SysRegTrap::from_esr((0x18 << 26) | (2 << 20) | (2 << 17) | (5 << 5) | (2 << 1));
    assert_eq!(
        mdscr.map(|t| (t.reg(), t.rt, t.read)),
        Some((SysReg::Mdscr, 5, false))
    );
    let id = SysRegTrap::from_esr((0x18 << 26) | (3 << 20) | (5 << 1) | 1).unwrap();
    assert_eq!((id.reg(), id.read), (SysReg::IdAa64Dfr0, true));
    let oslar = SysRegTrap::from_esr((0x18 << 26) | (2 << 20) | (4 << 17) | (1 << 10) | (31 << 5));
    assert_eq!(oslar.map(|t| (t.reg(), t.rt)), Some((SysReg::Oslar, 31)));
    // Another EC is not a system register trap.
    assert_eq!(SysRegTrap::from_esr(0x31 << 26), None);
    for reg in [
        SysReg::Bvr(15),
        SysReg::Wcr(0),
        SysReg::Osdlr,
        SysReg::Oslsr,
    ] {
        let t = SysRegTrap::access(reg, 9, true).unwrap();
        assert_eq!(SysRegTrap::from_esr(t.to_esr()).map(|t| t.reg()), Some(reg));
    }
}

/// `HMC`, `SSC` and `PMC` of a control value.
const LEVEL: u32 = (1 << 13) | (0b11 << 14) | (0b11 << 1);

#[test]
fn host_slots_that_fire_below_el2_are_kept_out_of_the_guest() {
    let r = rig(|_: &Sample| {});
    // Neither flag (HMC=1 SSC=00 PMC=11: EL2, EL1, EL0) and `exclude_kernel`
    // (HMC=0 SSC=00 PMC=11: the lower levels), both on CPU 0, and one
    // EL2-only watchpoint.
    r.add(BreakpointAttr::exec(0x1000).target(Target::Cpu(0)));
    r.add(
        BreakpointAttr::exec(0x1100)
            .user_only()
            .target(Target::Cpu(0)),
    );
    r.add(BreakpointAttr::watch(0x4000_1000, 8, Access::WRITE).kernel_only_el());
    assert!(!host_image_is_el2_only(&r.host()));
    // Without the guard the guest at EL1 would hit both breakpoints.
    assert!(r.fetch(0x1000, El::El1).is_some() && r.fetch(0x1100, El::El1).is_some());
    let before = r.host_share();
    let mut cpu = PcpuDebug::new();
    let mut v = VcpuDebug::new(1, r.layout(), false);
    let bits = v.switch_in(&mut cpu, r.regs(), &r.host());
    assert_eq!(bits & mdcr::TDE, 0);
    for el in [El::El0, El::El1] {
        assert!(r.fetch(0x1000, el).is_none() && r.fetch(0x1100, el).is_none());
    }
    assert_eq!(cpu.host_masked(), 0b11, "breakpoints 0 and 1");
    // The EL2-only watchpoint stays: it ignores the guest, fires at EL2.
    assert_eq!(r.host_share()[2], before[2]);
    assert!(r.store(0x4000_1000, El::El1).is_none());
    // The guest bringing up its own registers changes nothing of that.
    trap(
        &mut v,
        &mut cpu,
        r.regs(),
        SysReg::Mdscr,
        Some(MDSCR_MDE | MDSCR_KDE),
    );
    guest_bp(&mut v, &mut cpu, r.regs(), 0, 0x1000, el1_bp());
    assert_eq!(cpu.host_masked(), 0b11);
    // Exactly the host's own breakpoints: the one the guest hits now is its
    // register 0 (hardware 2), which the guest's handler gets at EL1.
    let raw = r.fetch(0x1000, El::El1).unwrap();
    assert_eq!(ec(&raw), 0x30 + 1, "EC 0x31 at EL1: the guest's own");
    assert!(r.fetch(0x1100, El::El1).is_none());
    // The exit puts the host's slots back as its manager wrote them.
    assert_eq!(v.switch_out(&mut cpu, r.regs()), mdcr::TDE);
    assert_eq!(cpu.host_masked(), 0);
    assert_eq!(r.host_share(), before);
    assert!(r.fetch(0x1000, El::El2).is_some());
    // Switching in again masks them again; an EL2-only image masks nothing.
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert_eq!(cpu.host_masked(), 0b11);
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.host_share(), before);
}

#[test]
fn a_vhe_kernel_style_el2_and_el1_slot_never_fires_for_the_guest() {
    let r = rig(|_: &Sample| {});
    // A host image holding HMC=1 SSC=00 PMC=01 (EL2 and EL1, a VHE
    // kernel's usual encoding) in breakpoint 1, as some other code path
    // might have written it.
    let ctrl = (Bcr::address_match(0xF, Privilege::Kernel).0 & !LEVEL) | (1 << 13) | (0b01 << 1);
    r.model().write_value(Bank::Breakpoint, 1, 0x3000);
    r.model().write_ctrl(Bank::Breakpoint, 1, ctrl);
    let mut host = r.host();
    host.pools[0][1] = ArmSlot {
        value: 0x3000,
        ctrl,
    };
    assert!(!host_image_is_el2_only(&host));
    assert!(r.fetch(0x3000, El::El1).is_some(), "it does fire at EL1");
    let mut cpu = PcpuDebug::new();
    let v = VcpuDebug::new(1, r.layout(), true);
    v.switch_in(&mut cpu, r.regs(), &host);
    assert!(r.fetch(0x3000, El::El1).is_none(), "never for the guest");
    assert_eq!(cpu.host_masked(), 0b10);
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.model().read_ctrl(Bank::Breakpoint, 1), ctrl);
    assert!(r.fetch(0x3000, El::El2).is_some());
    // While the host debugs the guest (TDE: taken at EL2) nothing is masked.
    let mut v = v;
    v.set_host_debug(true);
    let bits = v.switch_in(&mut cpu, r.regs(), &host);
    assert_ne!(bits & mdcr::TDE, 0);
    assert_eq!(cpu.host_masked(), 0);
    assert!(r.fetch(0x3000, El::El1).is_some());
    v.switch_out(&mut cpu, r.regs());
}

/// A host breakpoint that fires at EL2 as well as below hits; the backend
/// holds it disabled for the step over the instruction. Before that
/// instruction runs, an interrupt (its step suspended, as
/// `ArmBackend::suspend_step` says) runs a guest: the switch out must
/// leave the slot as the step-over holds it, or the instruction hits
/// again and is counted twice.
#[test]
fn a_host_step_over_pending_across_a_guest_run_keeps_its_slot_held() {
    let r = rig(|_: &Sample| {});
    let h = r.add(BreakpointAttr::exec(0x4008_0000).target(Target::Cpu(0)));
    let before = r.host_share();
    let raw = r.fetch(0x4008_0000, El::El2).unwrap();
    assert_eq!(r.hw.handle_exception(0, &raw), Resume::SINGLE_STEP);
    let held = r.model().read_ctrl(Bank::Breakpoint, 0);
    assert_eq!(held & 1, 0, "the backend holds it disabled for the step");
    let mut cpu = PcpuDebug::new();
    let v = VcpuDebug::new(1, r.layout(), false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert!(r.fetch(0x4008_0000, El::El1).is_none());
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.model().read_ctrl(Bank::Breakpoint, 0), held);
    assert!(
        r.fetch(0x4008_0000, El::El2).is_none(),
        "the instruction being stepped over hit again"
    );
    // The step ends the step-over and puts the slot back as installed.
    let step = r.model().retire(0x4008_0004, El::El2).unwrap();
    assert_eq!(r.hw.handle_exception(0, &step), Resume::RETURN);
    assert_eq!(r.host_share(), before);
    assert_eq!(r.hw.hits(h), Ok(1));
}

/// The docs allow the host's manager to change a CPU while a guest is
/// switched in, if the guest is switched in again afterwards: the new
/// slot is kept out of the guest, and the switch out leaves the host
/// share as the manager wrote it (never a removed slot's old control).
#[test]
fn a_host_change_while_a_guest_is_switched_in_is_taken_by_switching_in_again() {
    let r = rig(|_: &Sample| {});
    let a = r.add(BreakpointAttr::exec(0x1000).target(Target::Cpu(0)));
    let mut cpu = PcpuDebug::new();
    let v = VcpuDebug::new(1, r.layout(), false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert_eq!(cpu.host_masked(), 0b1);
    // Replaced by one for the lower levels, in the same register.
    let _cpus = r.hw.unregister(a).unwrap();
    let b = r.add(
        BreakpointAttr::exec(0x2000)
            .user_only()
            .target(Target::Cpu(0)),
    );
    let installed = r.host_share();
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert!(
        r.fetch(0x2000, El::El1).is_none(),
        "the new host slot fires in the guest"
    );
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.host_share(), installed);
    assert!(
        r.fetch(0x1000, El::El2).is_none(),
        "the removed slot is back"
    );
    assert!(r.fetch(0x2000, El::El1).is_some());
    // Removed while switched in, nothing in its place.
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert_eq!(cpu.host_masked(), 0b1);
    let _cpus = r.hw.unregister(b).unwrap();
    r.hw.sync(0).unwrap();
    let installed = r.host_share();
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert_eq!(cpu.host_masked(), 0);
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.host_share(), installed);
    assert!(
        r.fetch(0x2000, El::El1).is_none(),
        "the removed slot is back"
    );
}

/// The host starts debugging a guest while it is switched in (its task's
/// breakpoints put in by `sched_in`, then switched in again): the new
/// slots work, and the switch out does not write the control value of
/// the slot masked before over them.
#[test]
fn host_debug_turned_on_while_switched_in_keeps_the_new_slots() {
    let r = rig(|_: &Sample| {});
    let a = r.add(BreakpointAttr::exec(0x1000).target(Target::Cpu(0)));
    let mut cpu = PcpuDebug::new();
    let mut v = VcpuDebug::new(1, r.layout(), false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert_eq!(cpu.host_masked(), 0b1);
    let _cpus = r.hw.unregister(a).unwrap();
    r.hw.sync(0).unwrap();
    let task = TaskId(1);
    let attr = BreakpointAttr::exec(0x2000)
        .user_only()
        .target(Target::Task { task, cpu: None });
    let _debugging = r.hw.register(&attr).unwrap();
    v.set_host_debug(true);
    r.hw.sched_in(0, Some(task)).unwrap();
    let installed = r.host_share();
    assert_ne!(v.switch_in(&mut cpu, r.regs(), &r.host()) & mdcr::TDE, 0);
    assert!(r.fetch(0x2000, El::El1).is_some());
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.host_share(), installed);
    assert!(
        r.fetch(0x1000, El::El2).is_none(),
        "the removed slot is back"
    );
}

/// The host's manager rewrites a masked slot while the guest's traps are
/// handled and does not switch the guest in again (outside the contract:
/// the new slot is not kept out of the guest meanwhile): the switch out
/// still leaves the manager's value, never the old control over it. A
/// step-over the backend ends meanwhile leaves the slot enabled.
#[test]
fn the_switch_out_never_writes_a_stale_host_control() {
    let r = rig(|_: &Sample| {});
    let a = r.add(BreakpointAttr::exec(0x1000).target(Target::Cpu(0)));
    let mut cpu = PcpuDebug::new();
    let v = VcpuDebug::new(1, r.layout(), false);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    let _cpus = r.hw.unregister(a).unwrap();
    r.add(
        BreakpointAttr::exec(0x2000)
            .user_only()
            .target(Target::Cpu(0)),
    );
    let installed = r.host_share();
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.host_share(), installed);
    assert!(
        r.fetch(0x1000, El::El2).is_none(),
        "the removed slot is back"
    );

    // A step-over pending at the switch in, ended by the embedder
    // (`complete_step`) before the switch out.
    let r = rig(|_: &Sample| {});
    r.add(BreakpointAttr::exec(0x4008_0000).target(Target::Cpu(0)));
    let before = r.host_share();
    let raw = r.fetch(0x4008_0000, El::El2).unwrap();
    assert_eq!(r.hw.handle_exception(0, &raw), Resume::SINGLE_STEP);
    v.switch_in(&mut cpu, r.regs(), &r.host());
    assert!(r.hw.arch().complete_step(r.hw.backend_cpu(0).unwrap()));
    v.switch_out(&mut cpu, r.regs());
    assert_eq!(r.host_share(), before);
}
