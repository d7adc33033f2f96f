//! hwbp-core's manager driving this backend, with the software model as the
//! hardware: registration, scheduling onto registers, exceptions produced by
//! the model, and attribution of hits (imprecise FAR, access kinds, split
//! regions, strays) by the core.

use core::cell::RefCell;
use hwbp_arm64::bcr::El;
use hwbp_arm64::esr::{esr_for, ExceptionClass};
use hwbp_arm64::model::{DataAccess, Fetch, Model, ModelException, ModelId};
use hwbp_arm64::Aarch64Exception;
use hwbp_arm64::{ArmBackend, Flavour, StepMethod, AARCH32_KERNEL_BASE};
use hwbp_core::{Access, BreakpointAttr, Handle, Manager, Resume, Sample, Target};

const A53: u64 = 0x1030_5106;
const A15: u32 = 0x3515_f021;

struct Rig<F: Fn(&Sample)> {
    hw: Manager<ArmBackend<Model>, F, 1, 8, 4>,
}

fn rig<F: Fn(&Sample)>(arm: ArmBackend<Model>, f: F) -> Rig<F> {
    let hw = Manager::new(arm, f);
    // init discovers the counts (ArmBackend::probe); no probe call first.
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    Rig { hw }
}

impl<F: Fn(&Sample)> Rig<F> {
    fn add(&self, attr: BreakpointAttr) -> Handle {
        let r = self.hw.register(&attr.target(Target::Cpu(0))).unwrap();
        self.hw.sync(0).unwrap();
        r.handle
    }

    fn model(&self) -> &Model {
        self.hw.arch().regs()
    }

    /// Run a data access of the instruction at `pc`, with the FAR the hardware
    /// would report; complete the step-over like an embedder would. Returns the
    /// resume of the first exception, if one was taken.
    fn access(&self, acc: DataAccess, pc: u64, far: Option<u64>) -> Option<Resume> {
        let raw = self.model().access(&acc, pc, far)?;
        let r = self.hw.handle_exception(0, &raw);
        self.finish_step(r, pc);
        Some(r)
    }

    fn fetch(&self, pc: u64) -> Option<Resume> {
        let raw = self.model().fetch(&Fetch { pc, el: El::El1 })?;
        let r = self.hw.handle_exception(0, &raw);
        self.finish_step(r, pc);
        Some(r)
    }

    fn finish_step(&self, r: Resume, pc: u64) {
        if r == Resume::SINGLE_STEP {
            match self.model().retire(pc + 4, El::El1) {
                Some(step) => assert_eq!(self.hw.handle_exception(0, &step), Resume::RETURN),
                None => {
                    // AArch32 with StepMethod::Manual.
                    assert!(self
                        .hw
                        .arch()
                        .complete_step(self.hw.backend_cpu(0).unwrap()));
                }
            }
        }
    }
}

fn a64() -> ArmBackend<Model> {
    ArmBackend::new(
        Model::new(ModelId::Aarch64(A53)),
        Flavour::Aarch64,
        StepMethod::SoftwareStep,
    )
}

fn store(addr: u64, size: u64) -> DataAccess {
    DataAccess {
        addr,
        size,
        write: true,
        el: El::El1,
    }
}

#[test]
fn imprecise_far_is_attributed_to_the_closest_watchpoint() {
    let seen = RefCell::new(Vec::new());
    let r = rig(a64(), |s: &Sample| {
        seen.borrow_mut().push((s.handle, s.addr))
    });
    let near = r.add(BreakpointAttr::watch(0x3000, 4, Access::WRITE));
    let far_wp = r.add(BreakpointAttr::watch(0x3400, 4, Access::WRITE));
    // An STP of 16 bytes at 0x2ff8 writes 0x3000..0x3008 but reports FAR =
    // 0x2ff8, outside every region: the closest watchpoint gets it.
    assert_eq!(
        r.access(store(0x2ff8, 16), 0x40_0000, Some(0x2ff8)),
        Some(Resume::SINGLE_STEP)
    );
    // DC ZVA of 64 bytes at 0x33c0 reports the block start; 0x3400 is closer.
    assert_eq!(
        r.access(store(0x33c0, 0x48), 0x40_0004, Some(0x33c0)),
        Some(Resume::SINGLE_STEP)
    );
    assert_eq!(*seen.borrow(), vec![(near, 0x2ff8), (far_wp, 0x33c0)]);
    assert_eq!(r.hw.hits(near), Ok(1));
    assert_eq!(r.hw.hits(far_wp), Ok(1));
    assert_eq!(r.hw.stray(0), 0);
}

#[test]
fn reported_watchpoint_number_overrides_the_address() {
    // ESR_EL1.WPTV/WPT (FEAT_Debugv8p2 on) name the watchpoint. FAR is closer to
    // the first watchpoint, but the hardware says the second fired.
    let seen = RefCell::new(Vec::new());
    let r = rig(a64(), |s: &Sample| seen.borrow_mut().push(s.handle));
    let a = r.add(BreakpointAttr::watch(0x3000, 4, Access::WRITE));
    let b = r.add(BreakpointAttr::watch(0x3400, 4, Access::WRITE));
    let slot_b = r.hw.slots_on(b, 0).unwrap().trailing_zeros();
    let iss = 0x22 | 1 << 6 | 1 << 17 | slot_b << 18;
    let raw = ModelException::A64(Aarch64Exception {
        esr: esr_for(ExceptionClass::Watchpoint { same_el: true }, iss),
        far: 0x3008,
        elr: 0x40_0000,
    });
    assert_eq!(r.hw.handle_exception(0, &raw), Resume::SINGLE_STEP);
    assert_eq!(*seen.borrow(), vec![b]);
    assert_eq!((r.hw.hits(a), r.hw.hits(b)), (Ok(0), Ok(1)));
}

#[test]
fn access_kind_filters_the_attribution() {
    let seen = RefCell::new(Vec::new());
    let r = rig(a64(), |s: &Sample| {
        seen.borrow_mut().push((s.handle, s.access))
    });
    let reader = r.add(BreakpointAttr::watch(0x3000, 8, Access::READ));
    let writer = r.add(BreakpointAttr::watch(0x3000, 8, Access::WRITE));
    let _ = r.access(store(0x3004, 4), 0x40_0000, None).unwrap();
    let _ = r
        .access(
            DataAccess {
                write: false,
                ..store(0x3000, 1)
            },
            0x40_0004,
            None,
        )
        .unwrap();
    assert_eq!(
        *seen.borrow(),
        vec![(writer, Access::WRITE), (reader, Access::READ)]
    );
}

#[test]
fn split_region_reports_against_the_user_range() {
    let seen = RefCell::new(Vec::new());
    let r = rig(a64(), |s: &Sample| {
        seen.borrow_mut()
            .push((s.handle, s.addr, s.region_addr, s.region_len))
    });
    // 0x1003..0x1023: four registers (BAS, BAS, MASK 16, BAS).
    let h = r.add(BreakpointAttr::watch(0x1003, 0x20, Access::RW));
    assert_eq!(r.hw.weight(h), Ok(4));
    assert_eq!(r.hw.slots_on(h, 0).map(u32::count_ones), Ok(4));
    for a in [0x1003, 0x100c, 0x1018, 0x1022] {
        assert!(r.access(store(a, 1), 0x40_0000, None).is_some(), "{a:#x}");
    }
    assert!(r.access(store(0x1002, 1), 0x40_0000, None).is_none());
    assert!(r.access(store(0x1023, 1), 0x40_0000, None).is_none());
    let got: Vec<_> = seen
        .borrow()
        .iter()
        .map(|&(hh, a, ra, rl)| (hh == h, a, ra, rl))
        .collect();
    assert_eq!(
        got,
        vec![
            (true, 0x1003, 0x1003, 0x20),
            (true, 0x100c, 0x1003, 0x20),
            (true, 0x1018, 0x1003, 0x20),
            (true, 0x1022, 0x1003, 0x20)
        ]
    );
    assert_eq!(r.hw.hits(h), Ok(4));
}

#[test]
fn hardware_over_coverage_is_filtered_as_stray() {
    // AArch32: a breakpoint on the A32 instruction at 0x8000 uses BAS 0b1111,
    // which also matches a T32 instruction at 0x8002. The core filters that hit.
    let flavour = Flavour::Aarch32 {
        kernel_base: AARCH32_KERNEL_BASE,
        wide_bas: true,
    };
    let arm = ArmBackend::new(
        Model::new(ModelId::Aarch32(A15)),
        flavour,
        StepMethod::Manual,
    );
    let seen = RefCell::new(0u32);
    let r = rig(arm, |_: &Sample| *seen.borrow_mut() += 1);
    let h = r.add(BreakpointAttr::exec(0x8000));
    assert!(r.fetch(0x8002).is_some(), "the hardware fires");
    assert_eq!(*seen.borrow(), 0, "but nothing is delivered");
    assert_eq!(r.hw.stray(0), 1);
    assert_eq!(r.fetch(0x8000), Some(Resume::SINGLE_STEP));
    assert_eq!(*seen.borrow(), 1);
    assert_eq!(r.hw.hits(h), Ok(1));
}

#[test]
fn breakpoint_round_trip_through_the_core() {
    let seen = RefCell::new(Vec::new());
    let r = rig(a64(), |s: &Sample| {
        seen.borrow_mut().push((s.addr, s.ip, s.hits))
    });
    let h = r.add(BreakpointAttr::exec(0x40_1000).sample_period(2));
    for _ in 0..4 {
        assert_eq!(r.fetch(0x40_1000), Some(Resume::SINGLE_STEP));
    }
    assert_eq!(r.hw.hits(h), Ok(4));
    assert_eq!(
        *seen.borrow(),
        vec![(0x40_1000, 0x40_1000, 2), (0x40_1000, 0x40_1000, 4)]
    );
    // Unregistered: the register is cleared, nothing fires.
    let cpus = r.hw.unregister(h).unwrap();
    for cpu in cpus.iter() {
        r.hw.sync(cpu).unwrap();
    }
    assert!(r.fetch(0x40_1000).is_none());
    assert_eq!(r.model().undefined_accesses(), 0);
}

#[test]
fn register_refuses_what_the_encoder_refuses() {
    let r = rig(a64(), |_: &Sample| {});
    let too_big = BreakpointAttr::watch(0x1001, 0x30, Access::RW).target(Target::Cpu(0));
    assert_eq!(
        r.hw.register(&too_big).map(|x| x.handle),
        Err(hwbp_core::Error::RangeTooLarge {
            weight: 5,
            slots: 4
        })
    );
    let misaligned = BreakpointAttr::exec(0x40_1002).target(Target::Cpu(0));
    assert_eq!(
        r.hw.register(&misaligned).map(|x| x.handle),
        Err(hwbp_core::Error::Misaligned {
            addr: 0x40_1002,
            align: 4
        })
    );
}

#[test]
fn aarch32_hits_do_not_depend_on_dfsr_wnr() {
    // DFSR.WnR is UNKNOWN for watchpoint debug events and the model reports
    // the wrong direction: a store to a write-only watchpoint must still be
    // its hit (by address), not a load filtered out as stray.
    let arm = ArmBackend::new(
        Model::new(ModelId::Aarch32(A15)),
        Flavour::Aarch32 {
            kernel_base: AARCH32_KERNEL_BASE,
            wide_bas: false,
        },
        StepMethod::Manual,
    );
    let seen = RefCell::new(Vec::new());
    let r = rig(arm, |s: &Sample| {
        seen.borrow_mut().push((s.handle, s.access))
    });
    let writer = r.add(BreakpointAttr::watch(0x3000, 4, Access::WRITE));
    for _ in 0..3 {
        assert_eq!(
            r.access(store(0x3002, 2), 0x8000, None),
            Some(Resume::SINGLE_STEP)
        );
    }
    assert_eq!(r.hw.hits(writer), Ok(3));
    assert_eq!(r.hw.stray(0), 0);
    assert_eq!(*seen.borrow(), vec![(writer, Access::empty()); 3]);
}

#[test]
fn no_valid_far_credits_only_a_sole_candidate() {
    // ESR_EL1.FnV: FAR is not valid and no watchpoint number is given.
    let r = rig(a64(), |_: &Sample| {});
    let raw = |elr| {
        ModelException::A64(Aarch64Exception {
            esr: esr_for(
                ExceptionClass::Watchpoint { same_el: true },
                0x22 | 1 << 6 | 1 << 10,
            ),
            far: 0xdead_beef,
            elr,
        })
    };
    let a = r.add(BreakpointAttr::watch(0x3000, 4, Access::WRITE));
    let step = |elr| {
        assert_eq!(r.hw.handle_exception(0, &raw(elr)), Resume::SINGLE_STEP);
        let done = r.model().retire(elr + 4, El::El1).unwrap();
        assert_eq!(r.hw.handle_exception(0, &done), Resume::RETURN);
    };
    step(0x40_0000);
    assert_eq!((r.hw.hits(a), r.hw.stray(0)), (Ok(1), 0));
    // A second write watchpoint: the hit cannot be attributed, so it is
    // counted as stray rather than guessed (the step-over still happens).
    let b = r.add(BreakpointAttr::watch(0x5000, 8, Access::RW));
    step(0x40_0008);
    assert_eq!(
        (r.hw.hits(a), r.hw.hits(b), r.hw.stray(0)),
        (Ok(1), Ok(0), 1)
    );
}

/// Each watchpoint hit on AArch64 is answered with a step-over, and the
/// manager's per-CPU counters say so (the step's own exception is counted as
/// an exception, not as a step-over).
#[test]
fn step_overs_are_counted_per_cpu() {
    let r = rig(a64(), |_: &Sample| {});
    let h = r.add(BreakpointAttr::watch(0x3000, 4, Access::WRITE));
    for pc in [0x40_0000u64, 0x40_0004, 0x40_0008] {
        assert_eq!(
            r.access(store(0x3000, 4), pc, Some(0x3000)),
            Some(Resume::SINGLE_STEP)
        );
    }
    assert_eq!(r.hw.hits(h), Ok(3));
    let c = r.hw.counters(0).unwrap();
    assert_eq!(
        (c.exceptions, c.step_overs, c.stray, c.passed_on),
        (6, 3, 0, 0)
    );
}
