//! hwbp in a tiny hypervisor: QEMU's aarch64 `virt` board with
//! `virtualization=on`, one CPU: without VHE on a Cortex-A53
//! (`aarch64-el2`), with VHE on a Cortex-A76 (`aarch64-el2-vhe`). The
//! firmware reads `ID_AA64MMFR1_EL1.VH` and runs the host with
//! `HCR_EL2.E2H = 1` when the CPU has VHE (`TGE = 1` while the host runs,
//! `TGE = 0` while the guest runs).
//!
//! The hypervisor runs at EL2 with hwbp-arm64's EL2 backend (keeping 2 of the
//! 6 breakpoints and 2 of the 4 watchpoints) and runs one guest at EL1 with
//! its own hwbp manager (hwbp-arm64's EL1 backend), whose debug registers
//! the vCPU debug context (`hwbp_arm64::vcpu`) switches lazily. The guest's
//! boot code and EL1 vectors are `../qemu-aarch64`'s. Checks print `ok N -
//! ...`; success ends with `hwbp aarch64-el2: N checks passed` (or
//! `hwbp aarch64-el2-vhe: ...`).
#![no_std]
#![no_main]

#[path = "../../qemu-aarch64/src/boot.rs"]
mod boot;
mod guest;
mod hyp;
#[allow(dead_code)]
#[path = "../../qemu-aarch64/src/probe.rs"]
mod probe;

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};

use board_kit::{check, fatal, must, Board};
use critical_section::Mutex;
use hwbp_arm64::backend::aarch64::SPSR_SS;
use hwbp_arm64::el2::{mdcr, El2Backend, HypRegs, Level};
use hwbp_arm64::vcpu::{
    host_image_is_el2_only, Layout, MdscrRegs, PcpuDebug, SysReg, SysRegTrap, Trapped, VcpuDebug,
    VCPU_MDCR_BITS,
};
use hwbp_arm64::{Aarch64Exception, Aarch64Regs, Bank, DebugRegs};
use hwbp_core::{Access, BreakpointAttr, Manager, Resume, SlotCounts, Target, TaskId};

pub use board_kit::{print, println};

struct VirtEl2;
board_kit::set_board!(VirtEl2);

const UART_BASE: usize = 0x0900_0000;

// SAFETY: one CPU (`cpu_id` 0); `mask_irqs` masks IRQ and FIQ (DAIF bits 6-7,
// bit 63 clear) and `restore_irqs` unmasks only what was unmasked; the debug
// mask is never touched.
unsafe impl Board for VirtEl2 {
    const NAME: &'static str = "aarch64-el2";
    const CRLF: bool = true;
    const CPUS: u16 = 1;

    fn name() -> &'static str {
        if vhe() {
            "aarch64-el2-vhe"
        } else {
            Self::NAME
        }
    }

    fn put(byte: u8) {
        // SAFETY: the virt board's PL011 (identity-mapped for the guest,
        // physical for the hypervisor with its MMU off), one CPU.
        unsafe { board_kit::pl011::put(UART_BASE, byte) }
    }

    fn exit(success: bool) -> ! {
        let block: [u64; 2] = [0x2_0026, u64::from(!success)];
        // SAFETY: semihosting SYS_EXIT (0x18), ADP_Stopped_ApplicationExit;
        // QEMU runs with -semihosting.
        unsafe { core::arch::asm!("hlt #0xf000", in("x0") 0x18u64, in("x1") block.as_ptr()) };
        loop {
            core::hint::spin_loop();
        }
    }

    unsafe fn mask_irqs() -> u64 {
        let daif: u64;
        // SAFETY: reads DAIF and masks IRQ/FIQ, nothing else.
        unsafe { core::arch::asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif) };
        daif
    }

    unsafe fn restore_irqs(previous: u64) {
        if previous & (1 << 7) == 0 {
            // SAFETY: unmasks IRQs as they were at acquire.
            unsafe { core::arch::asm!("msr daifclr, #2") };
        }
        if previous & (1 << 6) == 0 {
            // SAFETY: unmasks FIQs as they were at acquire.
            unsafe { core::arch::asm!("msr daifclr, #1") };
        }
    }
}

/// Registers the host keeps: breakpoints, watchpoints.
const HOST_SHARE: (u8, u8) = (2, 2);

type Hwbp = Manager<El2Backend, (), 1, 16, 4>;

/// The hypervisor's manager without VHE: the EL2 backend.
// SAFETY (of `aarch64_el2`): used only when the CPU has no VHE (`hwbp`),
// checked to run at EL2 before any use; `MDCR_EL2.TDE` is set before
// `cpu_online`; the guest share belongs to the vCPU contexts below.
static HWBP_NVHE: Hwbp = Manager::new(
    unsafe { El2Backend::aarch64_el2(false, HOST_SHARE.0, HOST_SHARE.1) },
    (),
);

/// The hypervisor's manager with VHE (`HCR_EL2.E2H = 1`).
// SAFETY (of `aarch64_el2`): used only after `hyp_main` set `HCR_EL2.E2H`
// and `TGE` (`hwbp`); otherwise as `HWBP_NVHE`.
static HWBP_VHE: Hwbp = Manager::new(
    unsafe { El2Backend::aarch64_el2(true, HOST_SHARE.0, HOST_SHARE.1) },
    (),
);

/// The CPU has VHE and the hypervisor runs with `HCR_EL2.E2H = 1` (set
/// once, at boot, before any manager call).
static VHE: AtomicBool = AtomicBool::new(false);

fn vhe() -> bool {
    VHE.load(SeqCst)
}

/// The hypervisor's manager for the mode it runs in.
pub fn hwbp() -> &'static Hwbp {
    if vhe() {
        &HWBP_VHE
    } else {
        &HWBP_NVHE
    }
}

static VCPU: Mutex<RefCell<Option<VcpuDebug>>> = Mutex::new(RefCell::new(None));
static PCPU: Mutex<RefCell<PcpuDebug>> = Mutex::new(RefCell::new(PcpuDebug::new()));

/// The guest's registers while the hypervisor runs.
static mut GUEST_FRAME: boot::Frame = boot::Frame {
    x: [0; 31],
    elr: 0,
    spsr: 0,
    _pad: 0,
    fpcr: 0,
    fpsr: 0,
    q: [0; 32],
};

/// Debug-register accesses made by the vCPU context (reads and writes of
/// `DBG*` and `MDSCR_EL1`).
static DBG_ACCESSES: AtomicU32 = AtomicU32::new(0);
/// EC 0x18 traps of the guest.
static TRAPS: AtomicU32 = AtomicU32::new(0);
/// Exception classes the hypervisor took (bit = EC).
static SEEN_EC: AtomicU64 = AtomicU64::new(0);
/// `FAR_EL2` and `ELR_EL2` of the last watchpoint exception at EL2.
static LAST_FAR: AtomicU64 = AtomicU64::new(0);
static LAST_ELR: AtomicU64 = AtomicU64::new(0);
/// What the guest's last `hvc` asked (x0).
static EXIT_REASON: AtomicU64 = AtomicU64::new(0);
/// `HCR_EL2` at the guest's last `hvc` (what it ran with).
static GUEST_HCR: AtomicU64 = AtomicU64::new(0);
/// The host slots the last switch in kept out of the guest
/// (`PcpuDebug::host_masked`).
static LAST_MASKED: AtomicU32 = AtomicU32::new(0);

/// The hypervisor's registers, counting each access the vCPU context makes.
struct Counted<'a>(&'a HypRegs<Aarch64Regs>);

fn count() {
    DBG_ACCESSES.fetch_add(1, SeqCst);
}

impl DebugRegs for Counted<'_> {
    type Exception = Aarch64Exception;
    fn discover(&self) -> Result<SlotCounts, hwbp_core::Error> {
        self.0.discover()
    }
    unsafe fn enable(&self) -> Result<(), hwbp_core::Error> {
        // SAFETY: forwarded.
        unsafe { self.0.enable() }
    }
    fn read_value(&self, bank: Bank, n: u8) -> u64 {
        count();
        self.0.read_value(bank, n)
    }
    fn read_ctrl(&self, bank: Bank, n: u8) -> u32 {
        count();
        self.0.read_ctrl(bank, n)
    }
    unsafe fn write_value(&self, bank: Bank, n: u8, value: u64) {
        count();
        // SAFETY: forwarded.
        unsafe { self.0.write_value(bank, n, value) }
    }
    unsafe fn write_ctrl(&self, bank: Bank, n: u8, ctrl: u32) {
        count();
        // SAFETY: forwarded.
        unsafe { self.0.write_ctrl(bank, n, ctrl) }
    }
    fn sync(&self) {
        self.0.sync()
    }
    unsafe fn set_step(&self, on: bool) {
        count();
        // SAFETY: forwarded.
        unsafe { self.0.set_step(on) }
    }
    fn event(&self, raw: &Aarch64Exception) -> hwbp_arm64::DebugEvent {
        raw.event()
    }
}

impl MdscrRegs for Counted<'_> {
    fn read_mdscr(&self) -> u64 {
        count();
        self.0.read_mdscr()
    }
    unsafe fn write_mdscr(&self, v: u64) {
        count();
        // SAFETY: forwarded.
        unsafe { self.0.write_mdscr(v) }
    }
}

fn regs() -> Counted<'static> {
    Counted(hwbp().arch().regs())
}

fn with_vcpu<T>(f: impl FnOnce(&mut VcpuDebug, &mut PcpuDebug) -> T) -> T {
    critical_section::with(|cs| {
        let mut v = VCPU.borrow_ref_mut(cs);
        let Some(v) = v.as_mut() else {
            fatal!("no vCPU")
        };
        f(v, &mut PCPU.borrow_ref_mut(cs))
    })
}

macro_rules! sysreg {
    (read $name:literal) => {{
        let v: u64;
        // SAFETY: an EL2 register read, no side effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
    (write $name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the hypervisor owns its EL2 control registers.
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v, options(nostack)) };
    }};
}

/// With VHE, `HCR_EL2.TGE`: set while the host runs (EL2 is the debug
/// target, the EL2&0 regime), clear while the guest runs at EL1 (its own
/// EL1&0 regime). Without VHE, TGE stays clear.
fn set_tge(on: bool) {
    if vhe() {
        let hcr = sysreg!(read "hcr_el2");
        let tge = mdcr::HCR_TGE;
        sysreg!(write "hcr_el2", if on { hcr | tge } else { hcr & !tge });
    }
}

/// `CPTR_EL2` with `HCR_EL2.E2H = 1`: `FPEN` = 0b11, bits \[21:20\] (no
/// FP/SIMD trap; the `TFP` bit of the other layout is RES0 here).
const CPTR_E2H_FPEN: u64 = 0b11 << 20;

/// `ID_AA64MMFR1_EL1.VH`, bits \[11:8\]: the CPU has VHE.
fn cpu_has_vhe() -> bool {
    (sysreg!(read "id_aa64mmfr1_el1") >> 8) & 0xF != 0
}

/// Turn on VHE: `HCR_EL2.E2H` and `TGE` (the host's debug target is EL2),
/// and `CPTR_EL2` rewritten in its E2H layout in the same breath (the boot
/// value's `FPEN` reads as 0b00 there: FP/SIMD would trap at EL2).
fn enter_vhe() {
    let hcr = hyp::HCR_RW | mdcr::HCR_TID3 | mdcr::HCR_E2H | mdcr::HCR_TGE;
    // SAFETY: EL2 owns HCR_EL2 and CPTR_EL2; no FP/SIMD instruction runs
    // between the two writes (plain asm), so none traps meanwhile.
    unsafe {
        core::arch::asm!(
            "msr hcr_el2, {hcr}",
            "isb",
            "msr cptr_el2, {cptr}",
            "isb",
            hcr = in(reg) hcr,
            cptr = in(reg) CPTR_E2H_FPEN,
            options(nostack)
        )
    };
    VHE.store(true, SeqCst);
}

fn set_mdcr_bits(bits: u64) {
    let mdcr = sysreg!(read "mdcr_el2");
    sysreg!(write "mdcr_el2", (mdcr & !VCPU_MDCR_BITS) | bits);
}

/// Run the guest until its next `hvc`; returns its x0 then. `task`: the
/// host's task for this vCPU (breakpoints of the host debugging it).
fn run_guest(task: Option<TaskId>) -> u64 {
    must!(hwbp().sched_in(0, task));
    let host = must!(hwbp().image(0));
    let bits = with_vcpu(|v, cpu| {
        let bits = v.switch_in(cpu, &regs(), &host);
        LAST_MASKED.store(cpu.host_masked(), SeqCst);
        bits
    });
    set_mdcr_bits(bits);
    set_tge(false);
    // SAFETY: the frame holds the guest's state (initial or saved at its
    // last exit); one CPU, nothing else uses it while the guest runs.
    unsafe { hyp::enter_guest(core::ptr::addr_of!(GUEST_FRAME)) };
    let bits = with_vcpu(|v, cpu| v.switch_out(cpu, &regs()));
    set_mdcr_bits(bits);
    set_tge(true);
    must!(hwbp().sched_out(0));
    must!(hwbp().sched_in(0, None));
    EXIT_REASON.load(SeqCst)
}

/// A static the hypervisor watches (EL2 only).
static HOST_VAR: AtomicU64 = AtomicU64::new(0);
/// A static the hypervisor stores to, unwatched.
static HOST_SCRATCH: AtomicU64 = AtomicU64::new(0);

#[no_mangle]
extern "C" fn hyp_main() -> ! {
    let el = hwbp_arm64::el2::current_el();
    if el != 2 {
        println!("hwbp {}: hypervisor booted at EL{el}", VirtEl2::name());
        fatal!("expected EL2 (QEMU -M virt,virtualization=on), got EL{el}");
    }
    // The porting guide: EL2 is the debug target (no VHE: MDCR_EL2.TDE;
    // VHE: HCR_EL2.TGE, and TDE too, which the vCPU context drives). EL1 is
    // AArch64; its ID group 3 reads trap (the reduced slot count).
    if cpu_has_vhe() {
        enter_vhe();
    } else {
        sysreg!(write "hcr_el2", hyp::HCR_RW | mdcr::HCR_TID3);
    }
    set_mdcr_bits(mdcr::TDE);
    println!("hwbp {}: hypervisor booted at EL{el}", VirtEl2::name());
    if vhe() {
        println!(
            "mode: VHE (ID_AA64MMFR1_EL1.VH != 0): HCR_EL2.E2H = 1, TGE = 1 while the host runs, 0 while the guest runs"
        );
        let hcr = sysreg!(read "hcr_el2");
        let want = mdcr::HCR_E2H | mdcr::HCR_TGE;
        check!(
            hcr & want == want
                && hwbp().arch().regs().level() == Level::El2 { vhe: true }
                && hwbp_arm64::el2::current_el() == 2,
            "VHE on: HCR_EL2.E2H = 1 and TGE = 1 at EL2; the backend runs at Level::El2 {{ vhe: true }}"
        );
    } else {
        println!("mode: no VHE (ID_AA64MMFR1_EL1.VH = 0): HCR_EL2.E2H = 0, MDCR_EL2.TDE");
    }
    must!(hwbp().init(1));
    must!(hwbp().cpu_online(0));
    let id = hwbp().arch().regs().inner().id_aa64dfr0();
    let counts = must!(hwbp().slot_counts());
    println!(
        "ID_AA64DFR0_EL1: BRPs {}, WRPs {}; host keeps {:?}",
        id.brps(),
        id.wrps(),
        counts
    );
    let layout = must!(Layout::new(id, HOST_SHARE.0, HOST_SHARE.1));
    check!(
        counts == SlotCounts::Separate { inst: 2, data: 2 } && layout.guest_counts() == (4, 2),
        "EL2 backend: the host keeps 2 + 2 of the {} + {} registers, the guest gets {:?}",
        id.brps(),
        id.wrps(),
        layout.guest_counts()
    );
    critical_section::with(|cs| *VCPU.borrow_ref_mut(cs) = Some(VcpuDebug::new(1, layout, vhe())));

    let host_w = host_self_debug();
    guest_phases(host_w, layout);
    check!(
        hwbp().stray(0) == 0,
        "no stray debug exceptions at EL2 ({})",
        hwbp().stray(0)
    );
    board_kit::checks::finish()
}

/// Host self-debug at EL2: an EL2-only write watchpoint and breakpoint
/// fire, `FAR_EL2` is exact, the step over completes the store. Returns
/// the watchpoint, kept for the guest phases.
fn host_self_debug() -> hwbp_core::Handle {
    let el2 = |a: BreakpointAttr| a.exclude_user(true).target(Target::Cpu(0));
    let var = HOST_VAR.as_ptr();
    let w =
        must!(hwbp().register(&el2(BreakpointAttr::watch(var as u64, 8, Access::WRITE)))).handle;
    let b =
        must!(hwbp().register(&el2(BreakpointAttr::exec(probe::addr_of(probe::counted))))).handle;
    must!(hwbp().sync(0));
    let image = must!(hwbp().image(0));
    check!(
        host_image_is_el2_only(&image),
        "host slots encoded EL2-only (HMC=1 SSC=11 PMC=00): {:#x}",
        image.pools[1][0].ctrl
    );
    let pc = probe::store64(var, 0x5a);
    check!(
        hwbp().hits(w) == Ok(1)
            && SEEN_EC.load(SeqCst) & (1 << 0x35) != 0
            && LAST_FAR.load(SeqCst) == var as u64
            && LAST_ELR.load(SeqCst) == pc,
        "host watchpoint at EL2: EC 0x35, FAR_EL2 exact ({:#x}), ELR_EL2 = the str",
        LAST_FAR.load(SeqCst)
    );
    check!(
        HOST_VAR.load(SeqCst) == 0x5a && SEEN_EC.load(SeqCst) & (1 << 0x33) != 0,
        "step-over at EL2 (SPSR_EL2.SS, EC 0x33): the store completed"
    );
    let r = probe::counted(1) + probe::counted(2);
    check!(
        hwbp().hits(b) == Ok(2) && r == 4 + 7 && SEEN_EC.load(SeqCst) & (1 << 0x31) != 0,
        "host breakpoint at EL2: EC 0x31, 2 calls -> 2 hits"
    );
    let _ = must!(hwbp().unregister(b)); // CPU 0: synced below
    must!(hwbp().sync(0));
    w
}

/// The hvc codes of the guest.
pub const HVC_YIELD: u64 = 1;
/// The guest is done.
pub const HVC_DONE: u64 = 2;

fn guest_phases(host_w: hwbp_core::Handle, layout: Layout) {
    // SAFETY: one CPU, the guest is not running.
    unsafe {
        let f = &mut *core::ptr::addr_of_mut!(GUEST_FRAME);
        f.elr = guest::entry();
        f.spsr = hyp::SPSR_EL1H_MASKED;
    }
    // Phase 1: the guest runs 3 times without touching its debug registers.
    let before = DBG_ACCESSES.load(SeqCst);
    for _ in 0..3 {
        run_guest(None);
    }
    check!(
        DBG_ACCESSES.load(SeqCst) == before && !with_vcpu(|v, _| v.used()) && TRAPS.load(SeqCst) == 0,
        "lazy switch: 3 guest entries and exits before it touches its debug registers: 0 debug-register accesses"
    );
    if vhe() {
        let both = mdcr::HCR_E2H | mdcr::HCR_TGE;
        check!(
            GUEST_HCR.load(SeqCst) & both == mdcr::HCR_E2H
                && sysreg!(read "hcr_el2") & both == both,
            "VHE: the guest ran at EL1 with E2H = 1, TGE = 0; the host runs with TGE = 1 between its runs"
        );
    }
    // Phase 2: the guest brings up its own hwbp (traps), checks its count.
    run_guest(None);
    check!(
        with_vcpu(|v, _| v.used()) && TRAPS.load(SeqCst) > 0 && DBG_ACCESSES.load(SeqCst) > before,
        "the guest's first debug-register access trapped (EC 0x18, {} traps) and loaded its registers",
        board_kit::Varies(TRAPS.load(SeqCst))
    );
    if vhe() {
        // E2H redirects the EL1 names at EL2; the _EL12 names reach the
        // guest's EL1 registers (VBAR_EL12: op0 3, op1 5, CRn 12, CRm 0, op2 0).
        let (el1_name, el2) = (sysreg!(read "vbar_el1"), sysreg!(read "vbar_el2"));
        let el12 = sysreg!(read "s3_5_c12_c0_0");
        let guest = guest::GUEST_VBAR.load(SeqCst);
        check!(
            el1_name == el2 && el12 == guest && guest != el2 && guest != 0,
            "VHE: at EL2 VBAR_EL1 names VBAR_EL2 ({:#x}); VBAR_EL12 is the guest's ({:#x}), untouched by the host",
            el2,
            el12
        );
    }
    // Phase 3: the guest's own watchpoint, breakpoint and step at EL1, and a
    // write to HOST_VAR at EL1, which the host's EL2-only slot ignores.
    run_guest(None);
    check!(
        hwbp().hits(host_w) == Ok(1),
        "the host's EL2-only watchpoint never fired for the guest's write at EL1"
    );
    let str_pc = probe::store64(HOST_VAR.as_ptr(), 1);
    check!(
        hwbp().hits(host_w) == Ok(2),
        "after the exit the host's watchpoint fires at EL2 again"
    );
    // A host breakpoint for every level (neither flag: HMC=1 SSC=00 PMC=11)
    // on the `str` of probe::store64, which the guest runs in phase 4: the
    // switch in keeps it out of the hardware while the guest runs (it would
    // reach the guest's own handler at EL1, which fails on it).
    let all = BreakpointAttr::exec(str_pc).target(Target::Cpu(0));
    let every_level = must!(hwbp().register(&all)).handle;
    must!(hwbp().sync(0));
    // Another vCPU uses the guest share meanwhile.
    let mut other = VcpuDebug::new(2, layout, vhe());
    let host = must!(hwbp().image(0));
    critical_section::with(|cs| {
        let mut cpu = PCPU.borrow_ref_mut(cs);
        let r = regs();
        other.switch_in(&mut cpu, &r, &host);
        for (reg, v) in [
            (SysReg::Wvr(0), 0x4000_0000),
            (SysReg::Wcr(0), 0x1ff7),
            (SysReg::Bvr(0), 0x4000_0000),
            (SysReg::Bcr(0), 0x1e7),
        ] {
            let t = SysRegTrap::access(reg, 0, false).unwrap_or_else(|| fatal!("encoding"));
            if other.trap(&mut cpu, &r, t, v) != Trapped::Written {
                fatal!("vCPU 2 write");
            }
        }
        let held =
            cpu.holds() == Some(2) && r.read_value(Bank::Watchpoint, HOST_SHARE.1) == 0x4000_0000;
        other.switch_out(&mut cpu, &r);
        check!(
            held,
            "a second vCPU's registers replaced the first's in the guest share"
        );
        if vhe() {
            check!(
                cpu.holds().is_none()
                    && r.read_ctrl(Bank::Watchpoint, HOST_SHARE.1) & 1 == 0
                    && r.read_ctrl(Bank::Breakpoint, HOST_SHARE.0) & 1 == 0,
                "VHE: its switch out disabled the guest share (the host's EL0 would match it)"
            );
        }
    });
    // Phase 4: the guest's registers come back with it.
    run_guest(None);
    let masked = LAST_MASKED.load(SeqCst);
    let _ = probe::store64(HOST_SCRATCH.as_ptr(), 2);
    check!(
        masked == 0b1 && hwbp().hits(every_level) == Ok(1),
        "a host breakpoint for every level (HMC=1 SSC=00 PMC=11) stayed out of the guest's run (masked {:#x}), then fired at EL2: 1 hit",
        masked
    );
    let _ = must!(hwbp().unregister(every_level)); // CPU 0: synced below
    must!(hwbp().sync(0));
    // Phase 5: the host debugs the guest: a breakpoint on a guest function,
    // lower levels only, for the vCPU's task, with TDE while it runs.
    let task = TaskId(1);
    let attr = BreakpointAttr::exec(probe::addr_of(probe::sampled))
        .user_only()
        .target(Target::Task { task, cpu: Some(0) });
    let h = must!(hwbp().register(&attr)).handle;
    with_vcpu(|v, _| v.set_host_debug(true));
    run_guest(Some(task));
    check!(
        hwbp().hits(h) == Ok(1)
            && SEEN_EC.load(SeqCst) & (1 << 0x30) != 0
            && SEEN_EC.load(SeqCst) & (1 << 0x32) != 0,
        "host debugging the guest: its breakpoint on the guest's sampled() taken at EL2 (EC 0x30), stepped over (EC 0x32)"
    );
    with_vcpu(|v, _| v.set_host_debug(false));
    let _ = must!(hwbp().unregister(h)); // a task's: gone at the next sched_in
                                         // Phase 6: the guest's own settings are back.
    if run_guest(None) != HVC_DONE {
        fatal!("the guest did not finish");
    }
}

/// The hypervisor's own exceptions (vector `kind`, 4 = synchronous).
#[no_mangle]
extern "C" fn hyp_current(kind: u64, frame: &mut boot::Frame) {
    let (esr, far) = (sysreg!(read "esr_el2"), sysreg!(read "far_el2"));
    let ec = (esr >> 26) & 0x3f;
    if kind == 4 && (0x30..=0x35).contains(&ec) {
        hyp_debug(esr, far, frame);
        return;
    }
    fatal!(
        "unexpected exception at EL2: vector {} ESR_EL2 {:#x} FAR {:#x} ELR {:#x}",
        kind,
        esr,
        far,
        frame.elr
    );
}

fn hyp_debug(esr: u64, far: u64, frame: &mut boot::Frame) {
    let ec = (esr >> 26) & 0x3f;
    SEEN_EC.fetch_or(1 << ec, SeqCst);
    if ec == 0x34 || ec == 0x35 {
        LAST_FAR.store(far, SeqCst);
        LAST_ELR.store(frame.elr, SeqCst);
    }
    let raw = Aarch64Exception {
        esr,
        far,
        elr: frame.elr,
    };
    match hwbp().handle_exception(0, &raw) {
        Resume::RETURN => {}
        Resume::SINGLE_STEP => frame.spsr |= SPSR_SS,
        other => fatal!(
            "EL2 debug exception not hwbp's ({:?}): ESR {:#x}",
            other,
            esr
        ),
    }
}

/// The guest's synchronous exceptions taken to EL2; returns 1 to go back to
/// the hypervisor's `run_guest` (its `hvc`), 0 to resume the guest.
#[no_mangle]
extern "C" fn hyp_lower(frame: &mut boot::Frame) -> u64 {
    let (esr, far) = (sysreg!(read "esr_el2"), sysreg!(read "far_el2"));
    match (esr >> 26) & 0x3f {
        0x16 => {
            EXIT_REASON.store(frame.x[0], SeqCst);
            GUEST_HCR.store(sysreg!(read "hcr_el2"), SeqCst);
            // SAFETY: one CPU; run_guest reads the frame after the exit.
            unsafe {
                core::ptr::copy_nonoverlapping(frame, core::ptr::addr_of_mut!(GUEST_FRAME), 1)
            };
            1
        }
        0x18 => {
            TRAPS.fetch_add(1, SeqCst);
            let Some(t) = SysRegTrap::from_esr(esr) else {
                fatal!("EC 0x18 without its ISS")
            };
            let rt = usize::from(t.rt);
            let value = frame.x.get(rt).copied().unwrap_or(0);
            match with_vcpu(|v, cpu| v.trap(cpu, &regs(), t, value)) {
                Trapped::Read(v) => {
                    if let Some(x) = frame.x.get_mut(rt) {
                        *x = v;
                    }
                }
                Trapped::Written => {}
                Trapped::NotDebug => fatal!("guest access to {:?} not emulated", t),
            }
            frame.elr += 4;
            0
        }
        0x30..=0x35 => {
            hyp_debug(esr, far, frame);
            0
        }
        ec => fatal!(
            "unexpected guest exit: EC {:#x} ESR {:#x} FAR {:#x} ELR {:#x}",
            ec,
            esr,
            far,
            frame.elr
        ),
    }
}

/// `../qemu-aarch64`'s boot code enters these on EL1; this board enters at
/// `_start_el2` instead.
#[no_mangle]
extern "C" fn primary_main() -> ! {
    fatal!("entered at the EL1 entry point")
}

/// See [`primary_main`].
#[no_mangle]
extern "C" fn secondary_main() -> ! {
    fatal!("entered at the EL1 secondary entry point")
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fatal!("panic: {}", info)
}
