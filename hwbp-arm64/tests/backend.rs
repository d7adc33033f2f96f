//! The real backend logic (`ArmBackend`) run against the software model: discovery,
//! clearing at init, installation, decoding and the step-over state machine
//! acting on the registers.

mod rig;

use rig::Rig;

use hwbp_arm64::aarch32::{Aarch32Exception, AbortKind, Dbgdscr, Fsr, Moe};
use hwbp_arm64::bcr::{El, Privilege};
use hwbp_arm64::esr::{esr_for, ExceptionClass};
use hwbp_arm64::model::{DataAccess, Fetch, Model, ModelException, ModelId};
use hwbp_arm64::{
    Aarch64Exception, ArmBackend, ArmSlot, Bank, Dbgdidr, Flavour, IdAa64Dfr0, StepMethod,
    AARCH32_KERNEL_BASE,
};
use hwbp_core::{Access, Arch, BreakpointAttr, Error, Fired, Image, Pool, Resume, SlotCounts};

/// QEMU cortex-a53: 6 breakpoints, 4 watchpoints, Armv8 debug.
const A53: u64 = 0x1030_5106;
/// QEMU cortex-a15: 6 breakpoints, 4 watchpoints, v7.1 debug.
const A15: u32 = 0x3515_f021;

type A64 = Rig<Model, 2>;

fn a64(id: u64) -> A64 {
    Rig::new(ArmBackend::new(
        Model::new(ModelId::Aarch64(id)),
        Flavour::Aarch64,
        StepMethod::SoftwareStep,
    ))
}

fn a32(model: Model, method: StepMethod) -> Rig<Model, 2> {
    let flavour = Flavour::Aarch32 {
        kernel_base: AARCH32_KERNEL_BASE,
        wide_bas: true,
    };
    Rig::new(ArmBackend::new(model, flavour, method))
}

fn up<const N: usize>(arm: &Rig<Model, N>) -> Image<ArmSlot> {
    arm.probe().unwrap();
    arm.init_cpu(0).unwrap();
    Image::empty(arm.slot_counts())
}

/// Put `attr`'s pieces into `img` starting at slot `first` of its pool.
fn place<const N: usize>(
    arm: &Rig<Model, N>,
    img: &mut Image<ArmSlot>,
    first: usize,
    attr: BreakpointAttr,
) {
    let e = arm.encode(&attr).unwrap();
    let pool = arm.slot_counts().pool_of(e.ty).index();
    for (i, p) in e.pieces.iter().enumerate() {
        img.pools[pool][first + i] = p.slot;
    }
}

fn store(addr: u64) -> DataAccess {
    DataAccess {
        addr,
        size: 4,
        write: true,
        el: El::El1,
    }
}

fn fetch(pc: u64) -> Fetch {
    Fetch { pc, el: El::El1 }
}

#[test]
fn discovery_and_odd_counts() {
    let arm = a64(A53);
    assert_eq!(arm.probe(), Ok(SlotCounts::Separate { inst: 6, data: 4 }));
    // 16/16, and the smallest (1/1): the backend never touches a register
    // beyond the discovered count.
    for id in [0x0000_f0f0_00f0_f006u64 | 0xF0_F000, 0x0000_0006] {
        let arm = a64(id);
        arm.probe().unwrap();
        arm.init_cpu(0).unwrap();
        let (b, w) = arm.regs().hw_counts();
        assert_eq!(arm.slot_counts(), SlotCounts::Separate { inst: b, data: w });
        let mut img = Image::empty(arm.slot_counts());
        for p in 0..2 {
            for s in img.pools[p].iter_mut() {
                *s = ArmSlot {
                    value: 0x1000,
                    ctrl: 0x1e7,
                };
            }
        }
        arm.install(0, &Image::empty(arm.slot_counts()), &img);
        assert_eq!(arm.regs().undefined_accesses(), 0);
        assert_eq!(arm.regs().hazards(), 0);
    }
    assert_eq!(
        a64(0x5005).probe(),
        Err(Error::Hardware(
            hwbp_core::HardwareError::UnsupportedDebugArch { version: 5 }
        ))
    );
    // A CPU beyond those the manager keeps state for.
    let mgr: hwbp_core::Manager<ArmBackend<Model>, (), 2> =
        hwbp_core::Manager::new(a64(A53).arm, ());
    mgr.init(2).unwrap();
    assert_eq!(mgr.cpu_online(2), Err(Error::CpuOutOfRange { cpu: 2 }));
    // AArch32: cortex-a15, and an unsupported v7 memory-mapped core.
    let arm = a32(Model::new(ModelId::Aarch32(A15)), StepMethod::Manual);
    assert_eq!(arm.probe(), Ok(SlotCounts::Separate { inst: 6, data: 4 }));
    let mm = a32(
        Model::new(ModelId::Aarch32(0x3514_f021)),
        StepMethod::Manual,
    );
    assert_eq!(
        mm.probe(),
        Err(Error::Hardware(
            hwbp_core::HardwareError::UnsupportedDebugArch { version: 4 }
        ))
    );
    // Mismatch stepping reserves the last breakpoint register.
    let arm = a32(Model::new(ModelId::Aarch32(A15)), StepMethod::Mismatch);
    assert_eq!(arm.probe(), Ok(SlotCounts::Separate { inst: 5, data: 4 }));
    let one = a32(
        Model::new(ModelId::Aarch32(0x3005_0000)),
        StepMethod::Mismatch,
    );
    assert_eq!(
        one.probe(),
        Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
    );
}

#[test]
fn register_numbers_are_bounded_by_the_id_register() {
    // Aarch64Regs / Aarch32Regs check n with Bank::has against the ID
    // register of the calling CPU before issuing MRS/MSR or MRC/MCR (the
    // instructions exist only on target; this pins the predicate).
    let a64 = IdAa64Dfr0(A53);
    let a32 = Dbgdidr(A15);
    for (b, w) in [(a64.brps(), a64.wrps()), (a32.brps(), a32.wrps())] {
        assert_eq!((b, w), (6, 4));
        assert!(Bank::Breakpoint.has(b, w, 5) && !Bank::Breakpoint.has(b, w, 6));
        assert!(Bank::Watchpoint.has(b, w, 3) && !Bank::Watchpoint.has(b, w, 4));
        assert!(!Bank::Watchpoint.has(b, w, u8::MAX));
    }
}

#[test]
fn init_clears_unknown_reset_values() {
    let arm = a64(A53);
    let m = arm.regs();
    // The model powers up with every slot enabled on garbage addresses.
    assert!(m.break_hits(&fetch(0x1000)) != 0);
    arm.probe().unwrap();
    arm.init_cpu(0).unwrap();
    for n in 0..6 {
        assert!(!m.breakpoint(n).unwrap().1.enabled());
    }
    for n in 0..4 {
        assert!(!m.watchpoint(n).unwrap().1.enabled());
    }
    assert_eq!(m.break_hits(&fetch(0x1000)), 0);
    assert_eq!(m.watch_hits(&store(0x1000)), 0);
    assert!(!m.step_armed());
}

/// v7 debug with the full CP14 interface (before v7.1).
const V7: u32 = 0x3513_0000;
/// Armv8 debug, AArch32 view.
const V8_A32: u32 = 0x3516_0000;
/// A DBGDIDR.Version newer than any this crate knows.
const NEWER_A32: u32 = 0x351C_0000;

fn init32(model: Model) -> (Rig<Model, 2>, Result<(), Error>) {
    let arm = a32(model, StepMethod::Manual);
    let r = arm.probe().and_then(|_| arm.init_cpu(0));
    (arm, r)
}

#[test]
fn aarch32_init_unlocks_and_enables_monitor_mode() {
    for id in [A15, V8_A32, NEWER_A32] {
        let m = Model::new(ModelId::Aarch32(id));
        // v7.1 and later: the OS Lock is set at reset.
        assert_ne!(m.dbgoslsr() & 0b10, 0, "{id:#x}");
        let (arm, r) = init32(m);
        assert_eq!(r, Ok(()), "{id:#x}");
        let m = arm.regs();
        assert_eq!(m.dbgoslsr() & 0b10, 0, "OS Lock cleared, {id:#x}");
        assert!(m.dbgdscr().monitor_mode());
        assert_eq!(m.dbgvcr(), 0, "vector catch off");
        assert_eq!(m.undefined_accesses(), 0);
    }
    // The double lock, left set by an OS that powered the core down, is
    // cleared.
    let (arm, r) = init32(Model::new(ModelId::Aarch32(A15)).with_double_lock());
    assert_eq!(r, Ok(()));
    assert_eq!(arm.regs().dbgosdlr(), 0);
    assert_eq!(arm.regs().dbgoslsr() & 0b10, 0);
    assert!(arm.regs().dbgdscr().monitor_mode());
}

#[test]
fn armv7_os_lock_only_where_the_save_restore_registers_exist() {
    // Plain v7: no OS Save and Restore, so no OS Lock and no DBGOSLAR write;
    // there is no DBGOSDLR either (the model counts any access to them).
    let (arm, r) = init32(Model::new(ModelId::Aarch32(V7)).with_double_lock());
    assert_eq!(r, Ok(()));
    let m = arm.regs();
    assert_eq!(m.dbgoslsr(), 0);
    assert_eq!(m.dbgosdlr(), 0, "v7 has no double lock");
    assert!(m.dbgdscr().monitor_mode());
    assert_eq!(m.undefined_accesses(), 0);
    // v7 with OS Save and Restore (DBGOSLSR.OSLM[0]): locked at reset and
    // cleared by init.
    let m = Model::new(ModelId::Aarch32(V7)).with_os_save_restore();
    assert_eq!(m.dbgoslsr(), 0b11);
    let (arm, r) = init32(m);
    assert_eq!(r, Ok(()));
    assert_eq!(arm.regs().dbgoslsr(), 0b01);
    assert_eq!(arm.regs().undefined_accesses(), 0);
}

#[test]
fn armv7_refuses_a_cpu_whose_debug_logic_is_powered_down() {
    // Default v7 model: DBGPRSR.PU set, init goes ahead (DBGPRSR read first).
    let m = Model::new(ModelId::Aarch32(V7));
    assert_eq!(m.dbgprsr() & 1, 1);
    let (arm, r) = init32(m);
    assert_eq!(r, Ok(()));
    assert!(arm.regs().control_accesses() > 1);
    assert_eq!(arm.regs().undefined_accesses(), 0);
    // PU clear: refused after the DBGPRSR read alone, with every other debug
    // register as it was at reset.
    for m in [
        Model::new(ModelId::Aarch32(V7)),
        Model::new(ModelId::Aarch32(V7)).with_os_save_restore(),
    ] {
        let m = m.with_debug_powered_down();
        let oslsr = m.dbgoslsr();
        let (arm, r) = init32(m);
        assert_eq!(
            r,
            Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
        );
        let m = arm.regs();
        assert_eq!(m.control_accesses(), 1, "only DBGPRSR");
        assert_eq!(m.undefined_accesses(), 0);
        assert_eq!(m.writes(), 0);
        assert_eq!(m.syncs(), 0);
        assert_eq!(m.dbgoslsr(), oslsr);
        assert_eq!(m.dbgvcr(), 0xDE, "DBGVCR untouched");
        assert!(!m.dbgdscr().monitor_mode());
        assert!(m.breakpoint(0).unwrap().1.enabled(), "reset garbage kept");
        assert_eq!(m.fetch(&fetch(0x1000)), None, "debug not enabled");
    }
    // v7.1 and later never read DBGPRSR (the model counts a read there as
    // undefined), so the knob changes nothing.
    for id in [A15, V8_A32, NEWER_A32] {
        let (arm, r) = init32(Model::new(ModelId::Aarch32(id)).with_debug_powered_down());
        assert_eq!(r, Ok(()), "{id:#x}");
        assert!(arm.regs().dbgdscr().monitor_mode());
        assert_eq!(arm.regs().undefined_accesses(), 0, "{id:#x}");
    }
}

#[test]
fn aarch32_init_fails_when_monitor_mode_does_not_take() {
    for m in [
        Model::new(ModelId::Aarch32(A15)).with_mdbgen_stuck(),
        Model::new(ModelId::Aarch32(V7)).with_mdbgen_stuck(),
        Model::new(ModelId::Aarch32(A15)).with_halting_mode(),
    ] {
        let (arm, r) = init32(m);
        assert_eq!(
            r,
            Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
        );
        let m = arm.regs();
        assert_eq!(m.undefined_accesses(), 0);
        // No debug event reaches the handler: the model takes no exception.
        assert_eq!(
            m.fetch(&Fetch {
                pc: 0x1000,
                el: El::El1
            }),
            None
        );
    }
}

#[test]
fn armv7_clears_the_watchpoints_it_does_not_use() {
    // v7 debug (before v7.1) with 4 watchpoints: only the first is used (DFAR
    // is UNKNOWN on a watchpoint), but the other three exist and power up
    // enabled in the model; init must clear them too.
    let arm = a32(
        Model::new(ModelId::Aarch32(0x3513_0000)),
        StepMethod::Manual,
    );
    assert_eq!(arm.probe(), Ok(SlotCounts::Separate { inst: 6, data: 1 }));
    arm.init_cpu(0).unwrap();
    let m = arm.regs();
    for n in 0..4 {
        assert!(!m.watchpoint(n).unwrap().1.enabled(), "watchpoint {n}");
    }
    assert_eq!(m.watch_hits(&store(0x1008)), 0);
    assert_eq!(m.undefined_accesses(), 0);
}

#[test]
fn install_writes_only_what_changed() {
    let arm = a64(A53);
    let empty = up(&arm);
    let mut one = empty.clone();
    place(
        &arm,
        &mut one,
        0,
        BreakpointAttr::watch(0x2000, 8, Access::WRITE),
    );
    let w0 = arm.regs().writes();
    let s0 = arm.regs().syncs();
    arm.install(0, &empty, &one);
    assert_eq!(arm.regs().writes() - w0, 3, "disable, value, control");
    // An ISB after the disable, after the value and after the control: the
    // model counts a value and a control write to one pair with no ISB
    // between them as a hazard.
    assert_eq!(
        arm.regs().syncs() - s0,
        3,
        "disable, ISB, value, ISB, control, ISB"
    );
    assert_eq!(arm.regs().hazards(), 0);
    let w1 = arm.regs().writes();
    arm.install(0, &one, &one);
    assert_eq!(arm.regs().writes(), w1, "nothing changed, nothing written");
    assert!(arm.regs().watch_hits(&store(0x2004)) == 1);
    arm.install(0, &one, &empty);
    assert_eq!(arm.regs().watch_hits(&store(0x2004)), 0);
}

#[test]
fn breakpoint_step_over_aarch64() {
    let arm = a64(A53);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(&arm, &mut img, 0, BreakpointAttr::exec(0x40_0000));
    arm.install(0, &empty, &img);
    let m = arm.regs();
    let raw = m.fetch(&fetch(0x40_0000)).expect("breakpoint fires");
    let d = arm.decode(0, &raw);
    assert_eq!(d.fired, Fired::ByAddress { pool: Pool(0) });
    assert_eq!(
        (d.addr, d.ip, d.access, d.resume),
        (0x40_0000, 0x40_0000, Access::EXEC, Resume::SINGLE_STEP)
    );
    // While stepping, the breakpoint is off and software step is armed.
    assert!(m.fetch(&fetch(0x40_0000)).is_none());
    assert!(m.step_armed());
    let step = m.retire(0x40_0004, El::El1).expect("step exception");
    let d = arm.decode(0, &step);
    assert_eq!((d.fired, d.resume), (Fired::None, Resume::RETURN));
    assert!(!m.step_armed());
    // Re-enabled: the next time round it fires again.
    assert!(m.fetch(&fetch(0x40_0000)).is_some());
    assert!(!arm.step_state(0).pending);
}

#[test]
fn watchpoint_step_over_and_access_kinds() {
    let arm = a64(A53);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(
        &arm,
        &mut img,
        0,
        BreakpointAttr::watch(0x3000, 4, Access::WRITE),
    );
    arm.install(0, &empty, &img);
    let m = arm.regs();
    assert!(
        m.access(
            &DataAccess {
                write: false,
                ..store(0x3000)
            },
            0x40_0010,
            None
        )
        .is_none(),
        "loads ignored"
    );
    let raw = m
        .access(&store(0x3000), 0x40_0010, None)
        .expect("store fires");
    let d = arm.decode(0, &raw);
    assert_eq!(d.fired, Fired::ByAddress { pool: Pool(1) });
    assert_eq!(
        (d.addr, d.ip, d.access, d.resume),
        (0x3000, 0x40_0010, Access::WRITE, Resume::SINGLE_STEP)
    );
    assert!(
        m.access(&store(0x3000), 0x40_0010, None).is_none(),
        "masked while stepping"
    );
    assert_eq!(
        arm.decode(0, &m.retire(0x40_0014, El::El1).unwrap()).resume,
        Resume::RETURN
    );
    assert!(m.access(&store(0x3000), 0x40_0010, None).is_some());
}

#[test]
fn watchpoint_hit_while_stepping_over_a_breakpoint() {
    // The instruction at 0x40_0000 has a breakpoint and stores to a watched word.
    let arm = a64(A53);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(&arm, &mut img, 0, BreakpointAttr::exec(0x40_0000));
    place(
        &arm,
        &mut img,
        0,
        BreakpointAttr::watch(0x3000, 4, Access::WRITE),
    );
    arm.install(0, &empty, &img);
    let m = arm.regs();
    assert_eq!(
        arm.decode(0, &m.fetch(&fetch(0x40_0000)).unwrap()).resume,
        Resume::SINGLE_STEP
    );
    // Stepping: the fetch no longer hits, the store does.
    assert!(m.fetch(&fetch(0x40_0000)).is_none());
    let d = arm.decode(0, &m.access(&store(0x3000), 0x40_0000, None).unwrap());
    assert_eq!(
        (d.fired, d.resume),
        (Fired::ByAddress { pool: Pool(1) }, Resume::SINGLE_STEP)
    );
    let st = arm.step_state(0);
    assert!(st.pending && st.inst_masked && st.data_masked);
    // Re-executed: nothing fires; the step completes and both come back.
    assert!(
        m.fetch(&fetch(0x40_0000)).is_none() && m.access(&store(0x3000), 0x40_0000, None).is_none()
    );
    assert_eq!(
        arm.decode(0, &m.retire(0x40_0004, El::El1).unwrap()).resume,
        Resume::RETURN
    );
    assert!(
        m.fetch(&fetch(0x40_0000)).is_some() && m.access(&store(0x3000), 0x40_0000, None).is_some()
    );
}

#[test]
fn breakpoint_hit_while_step_pending() {
    let arm = a64(A53);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(
        &arm,
        &mut img,
        0,
        BreakpointAttr::watch(0x3000, 4, Access::WRITE),
    );
    arm.install(0, &empty, &img);
    let m = arm.regs();
    assert_eq!(
        arm.decode(0, &m.access(&store(0x3000), 0x40_0000, None).unwrap())
            .resume,
        Resume::SINGLE_STEP
    );
    // A breakpoint is installed meanwhile and hits before the step completes.
    let mut img2 = img.clone();
    place(&arm, &mut img2, 0, BreakpointAttr::exec(0x40_0000));
    arm.install(0, &img, &img2);
    let d = arm.decode(
        0,
        &m.fetch(&fetch(0x40_0000))
            .expect("breakpoint not masked yet"),
    );
    assert_eq!(
        (d.fired, d.resume),
        (Fired::ByAddress { pool: Pool(0) }, Resume::SINGLE_STEP)
    );
    let st = arm.step_state(0);
    assert!(st.pending && st.inst_masked && st.data_masked);
    assert!(m.step_armed());
    assert_eq!(
        arm.decode(0, &m.retire(0x40_0004, El::El1).unwrap()).resume,
        Resume::RETURN
    );
    assert!(
        m.fetch(&fetch(0x40_0000)).is_some() && m.access(&store(0x3000), 0x40_0000, None).is_some()
    );
}

#[test]
fn install_during_pending_step_keeps_masking() {
    let arm = a64(A53);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(
        &arm,
        &mut img,
        0,
        BreakpointAttr::watch(0x3000, 4, Access::WRITE),
    );
    arm.install(0, &empty, &img);
    let m = arm.regs();
    arm.decode(0, &m.access(&store(0x3000), 0x40_0000, None).unwrap());
    // The scheduler moves the watchpoint to slot 1 and adds one in slot 2.
    let mut moved = empty.clone();
    place(
        &arm,
        &mut moved,
        1,
        BreakpointAttr::watch(0x3000, 4, Access::WRITE),
    );
    place(
        &arm,
        &mut moved,
        2,
        BreakpointAttr::watch(0x5000, 8, Access::RW),
    );
    arm.install(0, &img, &moved);
    assert_eq!(
        m.watch_hits(&store(0x3000)),
        0,
        "still masked after install"
    );
    assert_eq!(m.watch_hits(&store(0x5000)), 0, "new slot masked too");
    assert_eq!(
        arm.decode(0, &m.retire(0x40_0004, El::El1).unwrap()).resume,
        Resume::RETURN
    );
    assert_eq!(m.watch_hits(&store(0x3000)), 0b010);
    assert_eq!(m.watch_hits(&store(0x5000)), 0b100);
    assert!(
        !m.watchpoint(0).unwrap().1.enabled(),
        "the freed slot is not re-enabled"
    );
}

#[test]
fn foreign_exceptions_are_not_ours() {
    let arm = a64(A53);
    up(&arm);
    let step = ModelException::A64(Aarch64Exception {
        esr: esr_for(ExceptionClass::SoftwareStep { same_el: true }, 0),
        far: 0,
        elr: 0x1234,
    });
    assert_eq!(arm.decode(0, &step).resume, Resume::NOT_OURS);
    let brk = ModelException::A64(Aarch64Exception {
        esr: esr_for(ExceptionClass::Brk64, 0x3e8),
        far: 0,
        elr: 0x1234,
    });
    let d = arm.decode(0, &brk);
    assert_eq!((d.fired, d.resume), (Fired::None, Resume::NOT_OURS));
    let data_abort = ModelException::A64(Aarch64Exception {
        esr: 0x25 << 26,
        far: 0,
        elr: 0,
    });
    assert_eq!(arm.decode(0, &data_abort).resume, Resume::NOT_OURS);
    // A CPU the manager has no state for.
    let mgr: hwbp_core::Manager<ArmBackend<Model>, (), 2> = hwbp_core::Manager::new(arm.arm, ());
    assert_eq!(mgr.handle_exception(7, &brk), Resume::NOT_OURS);
}

/// A cortex-a15 model stepping by mismatch, with `attr` installed.
fn mismatch_with(attr: BreakpointAttr) -> Rig<Model, 2> {
    let arm = a32(Model::new(ModelId::Aarch32(A15)), StepMethod::Mismatch);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(&arm, &mut img, 0, attr);
    arm.install(0, &empty, &img);
    arm
}

#[test]
fn aarch32_mismatch_step() {
    let arm = mismatch_with(BreakpointAttr::exec(0x8000).user_only());
    let m = arm.regs();
    let fetch = |pc| Fetch { pc, el: El::El0 };
    let raw = m.fetch(&fetch(0x8000)).unwrap();
    assert!(matches!(
        raw,
        ModelException::A32(Aarch32Exception {
            kind: AbortKind::Prefetch,
            ..
        })
    ));
    let d = arm.decode(0, &raw);
    assert_eq!(
        (d.fired, d.addr, d.resume),
        (
            Fired::ByAddress { pool: Pool(0) },
            0x8000,
            Resume::SINGLE_STEP
        )
    );
    // Re-executing 0x8000: the breakpoint is masked and the mismatch breakpoint
    // (register 5, reserved) matches it, so nothing fires.
    assert!(m.fetch(&fetch(0x8000)).is_none());
    // The abort handler runs at PL1: its fetches are mismatches but must not
    // fire (PMC = PL0 only).
    let (_, mismatch) = m.breakpoint(5).unwrap();
    assert!(mismatch.enabled());
    assert_eq!(mismatch.pmc(), Privilege::User);
    for pc in [0x8004, 0xC000_1000, 0xFFFF_0010] {
        assert!(m.fetch(&Fetch { pc, el: El::El1 }).is_none());
    }
    // The next instruction trips the mismatch: that is the step.
    let step = m.fetch(&fetch(0x8004)).expect("mismatch fires");
    assert_eq!(m.break_hits(&fetch(0x8004)), 1 << 5);
    let d = arm.decode(0, &step);
    assert_eq!((d.fired, d.resume), (Fired::None, Resume::RETURN));
    assert!(!m.breakpoint(5).unwrap().1.enabled());
    assert!(m.fetch(&fetch(0x8004)).is_none());
    assert!(m.fetch(&fetch(0x8000)).is_some());
    // Init, install and arming the mismatch synchronised between the value
    // and control writes of each pair.
    assert_eq!(m.hazards(), 0);
}

#[test]
fn aarch32_mismatch_step_t32() {
    // T32 code: the mismatch must exclude only the halfword the stepped
    // instruction starts in, so a 16-bit instruction next to it in the same
    // word is stepped to (BAS 0b1111 let it run unstepped).
    let user = |pc| Fetch { pc, el: El::El0 };
    for (pc, next, bas) in [(0x8000u64, 0x8002u64, 0b0011u8), (0x8002, 0x8004, 0b1100)] {
        let bp = BreakpointAttr::exec(pc).user_only();
        let arm = mismatch_with(bp.len(2));
        let m = arm.regs();
        m.set_thumb(true);
        let raw = m.fetch(&user(pc)).unwrap();
        assert!(matches!(raw, ModelException::A32(e) if e.thumb));
        assert_eq!(arm.decode(0, &raw).resume, Resume::SINGLE_STEP);
        let (bvr, bcr) = m.breakpoint(5).unwrap();
        assert_eq!((bvr, bcr.bas()), (pc & !3, bas), "{pc:#x}");
        assert!(m.fetch(&user(pc)).is_none(), "the stepped instruction");
        let step = m
            .fetch(&user(next))
            .expect("the next T32 instruction trips the mismatch");
        let d = arm.decode(0, &step);
        assert_eq!((d.fired, d.resume), (Fired::None, Resume::RETURN));
        assert_eq!(m.hazards(), 0);
    }
    // A32 keeps the whole word.
    let arm = mismatch_with(BreakpointAttr::exec(0x8000).user_only());
    let m = arm.regs();
    let raw = m.fetch(&user(0x8000)).unwrap();
    assert_eq!(arm.decode(0, &raw).resume, Resume::SINGLE_STEP);
    assert_eq!(m.breakpoint(5).unwrap().1.bas(), 0b1111);
}

#[test]
fn aarch32_mismatch_refuses_what_can_hit_at_pl1() {
    let arm = a32(Model::new(ModelId::Aarch32(A15)), StepMethod::Mismatch);
    up(&arm);
    let user_watch = BreakpointAttr::watch(0x2000, 4, Access::WRITE);
    for attr in [
        BreakpointAttr::exec(0x8000),
        BreakpointAttr::exec(0xC000_8000),
        BreakpointAttr::exec(0x8000).exclude_user(true),
        user_watch,
    ] {
        assert_eq!(arm.encode(&attr), Err(Error::UnsupportedAccess), "{attr:?}");
    }
    assert!(arm
        .encode(&BreakpointAttr::exec(0x8000).user_only())
        .is_ok());
    assert!(arm.encode(&user_watch.user_only()).is_ok());
    // Generic errors come first (the manager checks them before the
    // backend's rules); Manual stepping takes kernel requests.
    let mgr: hwbp_core::Manager<ArmBackend<Model>> = hwbp_core::Manager::new(arm.arm, ());
    mgr.init(1).unwrap();
    assert_eq!(
        mgr.register(&BreakpointAttr::watch(0x2000, 0, Access::WRITE)),
        Err(Error::ZeroLength)
    );
    let manual = a32(Model::new(ModelId::Aarch32(A15)), StepMethod::Manual);
    up(&manual);
    assert!(manual.encode(&BreakpointAttr::exec(0xC000_8000)).is_ok());
}

#[test]
fn aarch32_watchpoint_manual_step() {
    let arm = a32(Model::new(ModelId::Aarch32(A15)), StepMethod::Manual);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(
        &arm,
        &mut img,
        0,
        BreakpointAttr::watch(0x2_0000, 2, Access::READ),
    );
    arm.install(0, &empty, &img);
    let m = arm.regs();
    let load = DataAccess {
        addr: 0x2_0001,
        size: 1,
        write: false,
        el: El::El1,
    };
    let raw = m.access(&load, 0x8010, None).unwrap();
    // The model's DFSR.WnR says "store" (it is UNKNOWN on hardware): the
    // backend does not believe it, so the direction is unknown.
    let ModelException::A32(ex) = raw else {
        panic!("AArch32 model raised {raw:?}")
    };
    assert!(Fsr(ex.fsr).wnr());
    let d = arm.decode(0, &raw);
    assert_eq!(d.fired, Fired::ByAddress { pool: Pool(1) });
    assert_eq!(
        (d.addr, d.ip, d.access, d.resume),
        (0x2_0001, 0x8010, Access::empty(), Resume::SINGLE_STEP)
    );
    assert!(m.access(&load, 0x8010, None).is_none());
    assert!(arm.complete_step(0));
    // An embedder that decoded the aborted instruction says it was a load.
    let told = ModelException::A32(Aarch32Exception {
        write: Some(false),
        ..ex
    });
    let d = arm.decode(0, &told);
    assert_eq!((d.access, d.resume), (Access::READ, Resume::SINGLE_STEP));
    assert!(arm.complete_step(0));
    assert!(!arm.complete_step(0), "nothing pending any more");
    assert!(m.access(&load, 0x8010, None).is_some());
}

#[test]
fn aarch32_without_moe_confirms_against_registers() {
    // An emulator that leaves DBGDSCR.MOE at 0: a prefetch abort with a debug
    // status is only ours if an enabled breakpoint matches the PC.
    let arm = a32(
        Model::new(ModelId::Aarch32(A15)).without_moe(),
        StepMethod::Manual,
    );
    let empty = up(&arm);
    let mut img = empty.clone();
    place(&arm, &mut img, 0, BreakpointAttr::exec(0x8000));
    arm.install(0, &empty, &img);
    let bkpt = ModelException::A32(Aarch32Exception {
        kind: AbortKind::Prefetch,
        fsr: Fsr::debug_event(false).0,
        far: 0,
        dscr: Dbgdscr::MDBGEN,
        pc: 0x9000,
        write: None,
        thumb: false,
    });
    assert_eq!(arm.decode(0, &bkpt).resume, Resume::NOT_OURS);
    let hit = arm.regs().fetch(&fetch(0x8000)).unwrap();
    assert_eq!(arm.decode(0, &hit).resume, Resume::SINGLE_STEP);
    // With MOE recorded, BKPT is never ours.
    let with_moe = ModelException::A32(Aarch32Exception {
        dscr: Dbgdscr(Dbgdscr::MDBGEN).with_moe(Moe::Bkpt).0,
        pc: 0x8000,
        ..match bkpt {
            ModelException::A32(e) => e,
            ModelException::A64(_) => unreachable!(),
        }
    });
    assert_eq!(arm.decode(0, &with_moe).resume, Resume::NOT_OURS);
}

#[test]
fn narrow_bas_core() {
    let flavour = Flavour::Aarch32 {
        kernel_base: AARCH32_KERNEL_BASE,
        wide_bas: false,
    };
    let arm: Rig<Model, 1> = Rig::new(ArmBackend::new(
        Model::new(ModelId::Aarch32(A15)).narrow_bas(),
        flavour,
        StepMethod::Manual,
    ));
    let empty = up(&arm);
    let mut img = empty.clone();
    // 8 bytes at a word: a MASK register on a 4-bit-BAS core.
    place(
        &arm,
        &mut img,
        0,
        BreakpointAttr::watch(0x1000, 8, Access::WRITE),
    );
    arm.install(0, &empty, &img);
    let m = arm.regs();
    assert_eq!(m.watch_hits(&store(0x1004)), 1);
    assert_eq!(m.watch_hits(&store(0x1008)), 0);
}

/// Two CPUs with different register counts behind one backend: the register
/// accessor forwards to the model of the CPU that is "running".
struct TwoCpus {
    cpus: [Model; 2],
    current: core::cell::Cell<usize>,
}

impl TwoCpus {
    fn now(&self) -> &Model {
        &self.cpus[self.current.get()]
    }
}

impl hwbp_arm64::DebugRegs for TwoCpus {
    type Exception = ModelException;
    fn discover(&self) -> Result<SlotCounts, Error> {
        self.now().discover()
    }
    unsafe fn enable(&self) -> Result<(), Error> {
        self.now().enable()
    }
    fn read_value(&self, bank: hwbp_arm64::Bank, n: u8) -> u64 {
        self.now().read_value(bank, n)
    }
    fn read_ctrl(&self, bank: hwbp_arm64::Bank, n: u8) -> u32 {
        self.now().read_ctrl(bank, n)
    }
    unsafe fn write_value(&self, bank: hwbp_arm64::Bank, n: u8, value: u64) {
        self.now().write_value(bank, n, value)
    }
    unsafe fn write_ctrl(&self, bank: hwbp_arm64::Bank, n: u8, ctrl: u32) {
        self.now().write_ctrl(bank, n, ctrl)
    }
    fn sync(&self) {
        self.now().sync()
    }
    unsafe fn set_step(&self, on: bool) {
        self.now().set_step(on)
    }
    fn event(&self, raw: &ModelException) -> hwbp_arm64::DebugEvent {
        raw.event()
    }
}

#[test]
fn cpus_with_different_counts() {
    // CPU 0: 6 breakpoints, 4 watchpoints. CPU 1: 8 and 6.
    let big = 0x1050_7006;
    let regs = TwoCpus {
        cpus: [
            Model::new(ModelId::Aarch64(A53)),
            Model::new(ModelId::Aarch64(big)),
        ],
        current: core::cell::Cell::new(0),
    };
    let arm: Rig<TwoCpus, 2> = Rig::new(ArmBackend::new(
        regs,
        Flavour::Aarch64,
        StepMethod::SoftwareStep,
    ));
    assert_eq!(arm.probe(), Ok(SlotCounts::Separate { inst: 6, data: 4 }));
    arm.init_cpu(0).unwrap();
    arm.regs().current.set(1);
    // The bigger CPU is accepted, every one of its registers is cleared, and
    // the shared counts stay those of the smaller one.
    arm.init_cpu(1).unwrap();
    let m1 = &arm.regs().cpus[1];
    assert!((0..8).all(|n| !m1.breakpoint(n).unwrap().1.enabled()));
    assert!((0..6).all(|n| !m1.watchpoint(n).unwrap().1.enabled()));
    assert_eq!(arm.slot_counts(), SlotCounts::Separate { inst: 6, data: 4 });
    assert_eq!(
        m1.undefined_accesses() + arm.regs().cpus[0].undefined_accesses(),
        0
    );

    // The other way round: a CPU with fewer registers than probed is refused.
    let regs = TwoCpus {
        cpus: [
            Model::new(ModelId::Aarch64(big)),
            Model::new(ModelId::Aarch64(A53)),
        ],
        current: core::cell::Cell::new(0),
    };
    let arm: Rig<TwoCpus, 2> = Rig::new(ArmBackend::new(
        regs,
        Flavour::Aarch64,
        StepMethod::SoftwareStep,
    ));
    assert_eq!(arm.probe(), Ok(SlotCounts::Separate { inst: 8, data: 6 }));
    arm.regs().current.set(1);
    assert_eq!(
        arm.init_cpu(1),
        Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
    );
}

/// A watchpoint on the word at 0x3000, installed on a cortex-a53 model.
fn watching_0x3000() -> A64 {
    let arm = a64(A53);
    let empty = up(&arm);
    let mut img = empty.clone();
    place(
        &arm,
        &mut img,
        0,
        BreakpointAttr::watch(0x3000, 4, Access::WRITE),
    );
    arm.install(0, &empty, &img);
    arm
}

#[test]
fn a_debuggers_step_is_not_swallowed_by_a_step_over() {
    // Issue 16: a debugger single-steps (MDSCR_EL1.SS armed by it) and the
    // stepped instruction hits a watchpoint. The step-over rides on the
    // debugger's step; the step exception that ends it is handed on (the
    // debugger asked for it) and the step stays armed for the debugger,
    // which disarms it itself.
    let arm = watching_0x3000();
    let m = arm.regs();
    m.set_step(true); // the debugger's stepi
    let raw = m.access(&store(0x3000), 0x40_0010, None).expect("hit");
    assert_eq!(arm.decode(0, &raw).resume, Resume::SINGLE_STEP);
    let step = m.retire(0x40_0014, El::El1).expect("the step completes");
    let d = arm.decode(0, &step);
    assert_eq!(
        d.resume,
        Resume::RETURN.and_pass_on(),
        "the step is handed on"
    );
    assert!(d.resume.is_ours());
    assert!(m.step_armed(), "the debugger's step stays armed");
    assert!(!arm.step_state(0).pending);
    // The watchpoint is back.
    assert!(m.access(&store(0x3000), 0x40_0010, None).is_some());
    // A step-over that armed the step itself still disarms it and keeps
    // the exception.
    m.set_step(false);
    let raw = m.access(&store(0x3000), 0x40_0010, None).expect("hit");
    assert_eq!(arm.decode(0, &raw).resume, Resume::SINGLE_STEP);
    let d = arm.decode(0, &m.retire(0x40_0014, El::El1).unwrap());
    assert_eq!(d.resume, Resume::RETURN);
    assert!(!m.step_armed());
}

/// A software step exception taken before any instruction was stepped
/// (`ESR_EL1.ISV` clear): the state a handler that unmasks debug exceptions
/// with the step armed finds itself in.
fn unstepped(elr: u64) -> ModelException {
    ModelException::A64(Aarch64Exception {
        esr: esr_for(ExceptionClass::SoftwareStep { same_el: true }, 0),
        far: 0,
        elr,
    })
}

#[test]
fn a_step_taken_before_the_instruction_ran_keeps_the_step_over() {
    // Issue 16: an IRQ is taken between the watchpoint's ERET and the
    // instruction; its handler unmasks debug exceptions with the step armed,
    // and the step exception arrives there (ISV clear). Ending the step-over
    // would re-enable the watchpoint before the store ran, and the store
    // would be counted again when the IRQ handler returns.
    let arm = watching_0x3000();
    let m = arm.regs();
    let raw = m.access(&store(0x3000), 0x40_0010, None).expect("hit");
    assert_eq!(arm.decode(0, &raw).resume, Resume::SINGLE_STEP);
    let d = arm.decode(0, &unstepped(0x40_0800));
    assert_eq!(d.resume, Resume::NOT_OURS);
    assert!(arm.step_state(0).pending, "the step-over goes on");
    assert!(
        m.access(&store(0x3000), 0x40_0010, None).is_none(),
        "still masked: the store is not counted twice"
    );
    // The real step, once the instruction ran, ends it.
    let d = arm.decode(0, &m.retire(0x40_0014, El::El1).unwrap());
    assert_eq!(d.resume, Resume::RETURN);
    assert!(m.access(&store(0x3000), 0x40_0010, None).is_some());
}

#[test]
fn an_exception_during_the_step_over_counts_the_hit_once() {
    // The embedder contract, through the manager: an IRQ handler entered
    // during the step-over suspends the step, runs with debug exceptions
    // unmasked (no step exception can arrive: the step is disarmed),
    // restores it and returns to the instruction, which is stepped once.
    static HITS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    fn count(_: &hwbp_core::Sample) {
        HITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }
    let mgr: hwbp_core::Manager<ArmBackend<Model>, fn(&hwbp_core::Sample), 1> =
        hwbp_core::Manager::new(
            ArmBackend::new(
                Model::new(ModelId::Aarch64(A53)),
                Flavour::Aarch64,
                StepMethod::SoftwareStep,
            ),
            count,
        );
    mgr.init(1).unwrap();
    mgr.cpu_online(0).unwrap();
    let r = mgr
        .register(&BreakpointAttr::watch(0x3000, 4, Access::WRITE))
        .unwrap();
    mgr.sync(0).unwrap();
    let (arm, m) = (mgr.arch(), mgr.arch().regs());
    let raw = m.access(&store(0x3000), 0x40_0010, None).expect("hit");
    assert_eq!(mgr.handle_exception(0, &raw), Resume::SINGLE_STEP);
    // IRQ entry: suspend, unmask debug (the step is off: nothing taken).
    let s = arm.suspend_step();
    assert!(s.was_armed() && !m.step_armed());
    // The handler's own accesses and return: restore the step.
    arm.restore_step(s);
    assert!(m.step_armed());
    // Back at the store: it is masked, runs, and the step ends the step-over.
    assert!(m.access(&store(0x3000), 0x40_0010, None).is_none());
    let step = m.retire(0x40_0014, El::El1).unwrap();
    assert_eq!(mgr.handle_exception(0, &step), Resume::RETURN);
    assert_eq!(mgr.hits(r.handle).unwrap(), 1);
    assert_eq!(HITS.load(core::sync::atomic::Ordering::Relaxed), 1);
    // Without a step armed, suspend/restore change nothing.
    let s = arm.suspend_step();
    assert!(!s.was_armed());
    arm.restore_step(s);
    assert!(!m.step_armed());
}

#[test]
fn a_debugger_stepping_from_a_hit_gets_its_step() {
    // The gdb stub's flow: a watchpoint hit stops the program before the
    // store (the backend's step-over is pending); the debugger steps from
    // there. The step exception that ends the step-over is handed on; when
    // the debugger then continues, the step is disarmed.
    let arm = watching_0x3000();
    let m = arm.regs();
    let raw = m.access(&store(0x3000), 0x40_0010, None).expect("hit");
    assert_eq!(arm.decode(0, &raw).resume, Resume::SINGLE_STEP);
    arm.arm.debugger_step(&arm.cpus[0]);
    assert!(m.step_armed() && arm.step_state(0).foreign_step);
    let d = arm.decode(0, &m.retire(0x40_0014, El::El1).unwrap());
    assert_eq!(d.resume, Resume::RETURN.and_pass_on());
    assert!(
        m.access(&store(0x3000), 0x40_0010, None).is_some(),
        "re-enabled"
    );
    arm.arm.debugger_resume(&arm.cpus[0]);
    assert!(!m.step_armed());
    // Continuing from a hit without stepping leaves the step-over alone.
    let raw = m.access(&store(0x3000), 0x40_0010, None).unwrap();
    assert_eq!(arm.decode(0, &raw).resume, Resume::SINGLE_STEP);
    arm.arm.debugger_resume(&arm.cpus[0]);
    assert!(m.step_armed(), "the step-over still needs its step");
    let d = arm.decode(0, &m.retire(0x40_0014, El::El1).unwrap());
    assert_eq!(d.resume, Resume::RETURN);
    assert!(!m.step_armed());
}
