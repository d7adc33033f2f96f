//! What a guest switch costs the vCPU debug context (`hwbp_arm64::vcpu`).
//!
//! One "switch" is [`VcpuDebug::switch_out`] of one vCPU then
//! [`VcpuDebug::switch_in`] of another on the same CPU, on the software
//! model (so the time is the context's logic plus one `Cell` store per
//! register write; on hardware each write is an `MSR` and each sync an
//! `ISB`):
//!
//! * `switch/none`: no breakpoints anywhere, the guests never touched their
//!   debug registers: no register is touched (only bookkeeping).
//! * `switch/guest_only`: two guests, each with 2 breakpoints and 1
//!   watchpoint of its own, alternating: each switch rewrites the guest
//!   share and `MDSCR_EL1`.
//! * `switch/host_only`: the host holds 2 EL2-only breakpoints and 2
//!   watchpoints, the guests use none: the host's share stays in the
//!   hardware, nothing is written.
//!   [`VcpuDebug::switch_in`] is handed the host's image read once (it
//!   changes only when the host's manager installs something).
//! * `read/host_image` and `refresh/host_unchanged`: the cheap read
//!   (`Manager::image`) and refresh (`Manager::restore` with what the
//!   hardware holds, which writes nothing) of the host's image.
//!
//! Each `switch/*` iteration is two switches (A out, B in, B out, A in).
//! Measured on the shared 2-core development machine (medians, noisy, load
//! near 3): `switch/none` 18.6 ns, `switch/guest_only` 118 ns,
//! `switch/host_only` 37.9 ns (most of `none` and `host_only` is the
//! switch in's scan of the host's image for slots that would fire below
//! EL2: without it both measured 1.3 ns in the same conditions);
//! earlier, `read/host_image` 509 ns (a clone under the manager's lock),
//! `refresh/host_unchanged` 51 ns.
//!
//! ```text
//! cargo bench -p hwbp-arm64 --bench switch
//! ```

use criterion::Criterion;
use hwbp_arm64::bcr::{Bcr, Privilege};
use hwbp_arm64::el2::{HypRegs, Level};
use hwbp_arm64::model::{Model, ModelId};
use hwbp_arm64::vcpu::{Layout, PcpuDebug, SysReg, SysRegTrap, VcpuDebug};
use hwbp_arm64::wcr::{LoadStore, Wcr};
use hwbp_arm64::{ArmBackend, Flavour, IdAa64Dfr0, StepMethod};
use hwbp_core::{Access, BreakpointAttr, Image, Manager, SlotCounts, Target};
use std::hint::black_box;

const A53: u64 = 0x1030_5106;

type Hw = Manager<ArmBackend<HypRegs<Model>>, (), 1, 8, 2>;

fn host() -> Hw {
    let regs = HypRegs::new(
        Model::new(ModelId::Aarch64(A53)),
        Level::El2 { vhe: false },
        2,
        2,
    );
    let hw = Manager::new(
        ArmBackend::new(regs, Flavour::Aarch64, StepMethod::SoftwareStep),
        (),
    );
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    hw
}

fn vcpus() -> (VcpuDebug, VcpuDebug) {
    let layout = Layout::new(IdAa64Dfr0(A53), 2, 2).unwrap();
    (
        VcpuDebug::new(1, layout, false),
        VcpuDebug::new(2, layout, false),
    )
}

fn write(v: &mut VcpuDebug, cpu: &mut PcpuDebug, regs: &HypRegs<Model>, reg: SysReg, x: u64) {
    let t = SysRegTrap::access(reg, 0, false).unwrap();
    v.trap(cpu, regs, t, x);
}

/// `v` sets 2 breakpoints and 1 watchpoint at `base`, and MDE|KDE.
fn use_debug(v: &mut VcpuDebug, cpu: &mut PcpuDebug, regs: &HypRegs<Model>, base: u64) {
    // The host holds nothing here.
    let host = Image::empty(SlotCounts::Separate { inst: 2, data: 2 });
    v.switch_in(cpu, regs, &host);
    write(v, cpu, regs, SysReg::Mdscr, (1 << 15) | (1 << 13));
    let bcr = u64::from(Bcr::address_match(0xF, Privilege::Kernel).0);
    for n in 0..2 {
        write(v, cpu, regs, SysReg::Bvr(n), base + 4 * u64::from(n));
        write(v, cpu, regs, SysReg::Bcr(n), bcr);
    }
    write(v, cpu, regs, SysReg::Wvr(0), base + 0x100);
    let wcr = Wcr::new(0xFF, 0, LoadStore::Both, Privilege::Kernel).0;
    write(v, cpu, regs, SysReg::Wcr(0), u64::from(wcr));
    v.switch_out(cpu, regs);
}

fn switches(
    c: &mut Criterion,
    name: &str,
    hw: &Hw,
    a: &VcpuDebug,
    b: &VcpuDebug,
    cpu: &mut PcpuDebug,
) {
    let regs = hw.arch().regs();
    // Read once: the host's image changes only when its manager installs
    // something, so an embedder keeps it between switches.
    let host = hw.image(0).unwrap();
    a.switch_in(cpu, regs, &host);
    c.bench_function(name, |bench| {
        bench.iter(|| {
            let x = a.switch_out(cpu, regs) | b.switch_in(cpu, regs, &host);
            let y = b.switch_out(cpu, regs) | a.switch_in(cpu, regs, &host);
            black_box(x | y)
        })
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    let hw = host();
    let (a, b) = vcpus();
    switches(&mut c, "switch/none", &hw, &a, &b, &mut PcpuDebug::new());

    let hw = host();
    let (mut a, mut b) = vcpus();
    let mut cpu = PcpuDebug::new();
    use_debug(&mut a, &mut cpu, hw.arch().regs(), 0x1000);
    use_debug(&mut b, &mut cpu, hw.arch().regs(), 0x2000);
    switches(&mut c, "switch/guest_only", &hw, &a, &b, &mut cpu);

    let hw = host();
    for n in 0..2u64 {
        let on_cpu = |a: BreakpointAttr| a.exclude_user(true).target(Target::Cpu(0));
        let _ = hw
            .register(&on_cpu(BreakpointAttr::exec(0x4008_0000 + 4 * n)))
            .unwrap();
        let _ = hw
            .register(&on_cpu(BreakpointAttr::watch(
                0x4000_0000 + 8 * n,
                8,
                Access::RW,
            )))
            .unwrap();
    }
    // Registered for CPU 0: the one sync below installs them.
    hw.sync(0).unwrap();
    assert_eq!(hw.len(), 4);
    let (a, b) = vcpus();
    switches(
        &mut c,
        "switch/host_only",
        &hw,
        &a,
        &b,
        &mut PcpuDebug::new(),
    );

    c.bench_function("read/host_image", |bench| {
        bench.iter(|| black_box(hw.image(0).unwrap()))
    });
    let image = hw.image(0).unwrap();
    c.bench_function("refresh/host_unchanged", |bench| {
        bench.iter(|| hw.restore(0, black_box(&image)).unwrap())
    });

    c.final_summary();
}
