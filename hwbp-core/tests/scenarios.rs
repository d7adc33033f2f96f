//! End-to-end scenarios: register → schedule → simulated access → handler, on
//! the mock backend, one test per rule of the layer.

use std::sync::Mutex;

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{
    Access, BpType, BreakpointAttr, ConstraintTable, CpuSet, Error, Handle, Handler, Manager, Pool,
    Resume, Sample, SlotCounts, Target, TaskId,
};

#[derive(Default)]
struct Recorder(Mutex<Vec<Sample>>);

impl Handler for Recorder {
    fn on_sample(&self, s: &Sample) {
        self.0.lock().unwrap().push(*s);
    }
}

impl Recorder {
    fn take(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

type Hw = Manager<Mock, Recorder, 4, 32, 8>;

fn hw(config: MockConfig, cpus: u16) -> Box<Hw> {
    let hw = Box::new(Manager::new(Mock::new(config), Recorder::default()));
    hw.init(cpus).unwrap();
    for c in 0..cpus {
        hw.cpu_online(c).unwrap();
    }
    hw
}

fn sync(hw: &Hw, set: CpuSet) {
    for c in set.iter() {
        hw.sync(c).unwrap();
    }
}

fn reg(hw: &Hw, attr: BreakpointAttr) -> Result<Handle, Error> {
    let r = hw.register(&attr)?;
    sync(hw, r.sync);
    Ok(r.handle)
}

fn w(addr: u64, len: u64) -> BreakpointAttr {
    BreakpointAttr::watch(addr, len, Access::WRITE)
}

fn task(t: u64) -> Target {
    Target::Task {
        task: TaskId(t),
        cpu: None,
    }
}

/// Everything observable about the manager, to show a refused call changed nothing.
fn snapshot(hw: &Hw, cpus: u16) -> (ConstraintTable<4, 8>, usize, Vec<String>, u64) {
    let images = (0..cpus)
        .map(|c| format!("{:?}", hw.image(c).unwrap()))
        .collect();
    let writes = (0..cpus).map(|c| hw.arch().writes(c)).sum();
    (
        hw.inspect_table(Clone::clone).unwrap(),
        hw.len(),
        images,
        writes,
    )
}

#[test]
fn write_watchpoint_fires_end_to_end() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let h = reg(&hw, w(0x1000, 4).target(Target::Cpu(0))).unwrap();
    assert_eq!(
        hw.access(0, 0x1000, 4, Access::READ, 0x10),
        None,
        "a read does not match a write watchpoint"
    );
    assert_eq!(
        hw.access(0, 0x1004, 4, Access::WRITE, 0x10),
        None,
        "the next word is not watched"
    );
    assert_eq!(
        hw.access(0, 0x1003, 1, Access::WRITE, 0x20),
        Some(Resume::RETURN)
    );
    let s = hw.handler().take();
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].handle, s[0].addr, s[0].ip, s[0].access, s[0].hits),
        (h, 0x1003, 0x20, Access::WRITE, 1)
    );
    assert_eq!((s[0].region_addr, s[0].region_len), (0x1000, 4));
}

#[test]
fn instruction_breakpoint_asks_for_resume_flag() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let h = reg(&hw, BreakpointAttr::exec(0x40_1000).target(Target::Cpu(0))).unwrap();
    for _ in 0..3 {
        assert_eq!(
            hw.access(0, 0x40_1000, 1, Access::EXEC, 0x40_1000),
            Some(Resume::SET_RESUME_FLAG)
        );
    }
    assert_eq!(hw.hits(h), Ok(3));
}

#[test]
fn shared_pool_counts_instructions_and_data_together() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    for i in 0..2 {
        reg(&hw, BreakpointAttr::exec(0x1000 + i).target(Target::Cpu(0))).unwrap();
        reg(&hw, w(0x2000 + 8 * i, 8).target(Target::Cpu(0))).unwrap();
    }
    assert_eq!(
        hw.register(&BreakpointAttr::exec(0x3000).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    assert_eq!(
        hw.register(&w(0x3000, 1).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
}

#[test]
fn separate_pools_are_counted_separately() {
    let hw = hw(MockConfig::ARM_LIKE, 1);
    for i in 0..4 {
        reg(&hw, w(0x2000 + 8 * i, 8).target(Target::Cpu(0))).unwrap();
    }
    assert_eq!(
        hw.register(&w(0x3000, 1).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    // The six instruction registers are all still free.
    let execs: Vec<_> = (0..6)
        .map(|i| {
            reg(
                &hw,
                BreakpointAttr::exec(0x1000 + 4 * i).target(Target::Cpu(0)),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        hw.register(&BreakpointAttr::exec(0x9000).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    for h in execs {
        assert_eq!(hw.slots_on(h, 0).unwrap().count_ones(), 1);
    }
}

#[test]
fn slot_counts_come_from_the_backend_at_run_time() {
    for n in [1u8, 2, 3, 7, 16] {
        let config = MockConfig {
            counts: SlotCounts::Shared(n),
            ..MockConfig::SH_LIKE
        };
        let hw = hw(config, 1);
        assert_eq!(hw.slot_counts(), Ok(SlotCounts::Shared(n)));
        for i in 0..u64::from(n) {
            reg(&hw, w(0x1000 + 8 * i, 8).target(Target::Cpu(0))).unwrap();
        }
        assert_eq!(
            hw.register(&w(0x9000, 1).target(Target::Cpu(0)))
                .unwrap_err(),
            Error::NoSlot { cpu: 0 }
        );
    }
    let bad = Manager::<Mock, (), 1, 4, 2>::new(
        Mock::new(MockConfig {
            counts: SlotCounts::Shared(0),
            ..MockConfig::SH_LIKE
        }),
        (),
    );
    assert_eq!(
        bad.init(1),
        Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
    );
    assert_eq!(bad.register(&w(0, 1)).unwrap_err(), Error::NotInitialized);
}

#[test]
fn weights_are_counted_not_events() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    // 0x1001..0x1008: 1 + 2 + 4 bytes = 3 registers.
    let h = reg(&hw, w(0x1001, 7).target(Target::Cpu(0))).unwrap();
    assert_eq!(hw.weight(h), Ok(3));
    assert_eq!(hw.slots_on(h, 0).unwrap().count_ones(), 3);
    reg(&hw, w(0x2000, 8).target(Target::Cpu(0))).unwrap();
    assert_eq!(
        hw.register(&w(0x3000, 2).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    // A hit on any piece is one hit against the original region.
    hw.access(0, 0x1001, 1, Access::WRITE, 0);
    hw.access(0, 0x1006, 2, Access::WRITE, 0);
    // One store covering two pieces fires two registers but counts once.
    hw.access(0, 0x1002, 4, Access::WRITE, 0);
    assert_eq!(hw.hits(h), Ok(3));
    assert!(hw
        .handler()
        .take()
        .iter()
        .all(|s| s.handle == h && s.region_addr == 0x1001 && s.region_len == 7));
}

#[test]
fn tasks_are_counted_by_their_worst_not_their_sum() {
    let hw = hw(MockConfig::X86_LIKE, 2);
    // Three tasks with 3 registers each: only one runs at a time per CPU.
    for t in 1..=3 {
        for i in 0..3 {
            reg(&hw, w(0x1000 * t + 8 * i, 8).target(task(t))).unwrap();
        }
    }
    // One CPU-bound register still fits on each CPU, a second does not.
    reg(&hw, w(0x9000, 8).target(Target::Cpu(1))).unwrap();
    assert_eq!(
        hw.register(&w(0x9100, 8).target(Target::Cpu(1)))
            .unwrap_err(),
        Error::NoSlot { cpu: 1 }
    );
    // A task bound to CPU 0 only is checked against CPU 0 only.
    reg(
        &hw,
        w(0x9200, 8).target(Target::Task {
            task: TaskId(9),
            cpu: Some(0),
        }),
    )
    .unwrap();
    // Task 1 cannot take a fourth register anywhere: CPU 1 has a CPU-bound one.
    assert_eq!(
        hw.register(&w(0x9300, 8).target(task(1))).unwrap_err(),
        Error::NoSlot { cpu: 1 }
    );
    // But restricted to CPU 0 it fits there.
    reg(
        &hw,
        w(0x9300, 8).target(Target::Task {
            task: TaskId(1),
            cpu: Some(0),
        }),
    )
    .unwrap();
}

#[test]
fn pinned_task_events_follow_their_task() {
    let hw = hw(MockConfig::X86_LIKE, 2);
    let a = reg(&hw, w(0x1000, 8).target(task(1))).unwrap();
    let b = reg(&hw, w(0x2000, 8).target(task(2))).unwrap();
    hw.sched_in(1, Some(TaskId(1))).unwrap();
    assert_ne!(hw.slots_on(a, 1).unwrap(), 0);
    assert_eq!(hw.slots_on(b, 1).unwrap(), 0);
    assert_eq!(
        hw.access(1, 0x2000, 1, Access::WRITE, 0),
        None,
        "task 2's watchpoint is not on CPU 1"
    );
    hw.sched_out(1).unwrap();
    hw.sched_in(1, Some(TaskId(2))).unwrap();
    assert_eq!(hw.slots_on(a, 1).unwrap(), 0);
    assert!(hw.access(1, 0x2000, 1, Access::WRITE, 0).is_some());
    assert_eq!(
        hw.access(0, 0x2000, 1, Access::WRITE, 0),
        None,
        "CPU 0 runs no task"
    );
    assert_eq!((hw.hits(a), hw.hits(b)), (Ok(0), Ok(1)));
}

#[test]
fn flexible_events_keep_one_register_and_yield_to_pinned() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let f = reg(&hw, w(0x5000, 8).target(Target::Cpu(0)).flexible()).unwrap();
    for i in 0..3 {
        reg(&hw, w(0x1000 + 8 * i, 8).target(Target::Cpu(0))).unwrap();
    }
    assert_eq!(
        hw.register(&w(0x2000, 8).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    assert_ne!(
        hw.slots_on(f, 0).unwrap(),
        0,
        "the kept register runs the flexible event"
    );
}

#[test]
fn all_cpu_requests_fit_everywhere_or_change_nothing() {
    let hw = hw(MockConfig::X86_LIKE, 3);
    for i in 0..4 {
        reg(&hw, w(0x1000 + 8 * i, 8).target(Target::Cpu(2))).unwrap();
    }
    let before = snapshot(&hw, 3);
    assert_eq!(
        hw.register(&w(0x9000, 8).target(Target::AllCpus))
            .unwrap_err(),
        Error::NoSlot { cpu: 2 }
    );
    assert_eq!(snapshot(&hw, 3), before);
    // With CPU 2's registers released it fits and reaches every online CPU.
    let hw = self::hw(MockConfig::X86_LIKE, 3);
    let h = reg(&hw, w(0x9000, 8).target(Target::AllCpus)).unwrap();
    for c in 0..3 {
        assert!(hw.access(c, 0x9000, 8, Access::WRITE, 0).is_some());
    }
    assert_eq!(hw.hits(h), Ok(3));
}

#[test]
fn refusals_leave_no_trace() {
    let hw = hw(MockConfig::X86_LIKE, 2);
    reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    reg(&hw, w(0x2000, 16).target(task(1))).unwrap();
    hw.sched_in(1, Some(TaskId(1))).unwrap();
    let before = snapshot(&hw, 2);
    let bad = [
        (w(0x3000, 0), Error::ZeroLength),
        (w(u64::MAX, 2), Error::AddressOverflow),
        (
            w(0x3000, 32).target(Target::Cpu(0)),
            Error::NoSlot { cpu: 0 },
        ),
        (
            w(0x3000, 1).target(Target::Cpu(7)),
            Error::CpuOutOfRange { cpu: 7 },
        ),
        (
            w(0xffff_8000_0000_0000, 8).user_only(),
            Error::KernelAddress,
        ),
        (
            BreakpointAttr::exec(0x3000).sample_period(0),
            Error::ZeroSamplePeriod,
        ),
        (
            BreakpointAttr::exec(0x3000).len(4),
            Error::UnsupportedLength { len: 4 },
        ),
        (
            w(0x3001, 20),
            Error::RangeTooLarge {
                weight: 6,
                slots: 4,
            },
        ), // 1+2+4+8+4+1
        (w(0x3000, 32).target(task(2)), Error::NoSlot { cpu: 0 }), // 1 on CPU 0 + 4
    ];
    for (attr, err) in bad {
        assert_eq!(hw.register(&attr).unwrap_err(), err, "{attr:?}");
        assert_eq!(snapshot(&hw, 2), before, "{attr:?} left a trace");
    }
    // A kernel-space request may watch kernel addresses.
    reg(&hw, w(0xffff_8000_0000_0000, 8).target(Target::Cpu(1))).unwrap();
}

#[test]
fn modify_applies_or_rolls_back() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let h = reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    reg(&hw, w(0x2000, 16).target(Target::Cpu(0))).unwrap();
    // Moving to another variable: old address silent, new one fires.
    sync(
        &hw,
        hw.modify(h, &w(0x3000, 4).target(Target::Cpu(0))).unwrap(),
    );
    assert_eq!(hw.access(0, 0x1000, 8, Access::WRITE, 0), None);
    assert!(hw.access(0, 0x3000, 4, Access::WRITE, 0).is_some());
    assert_eq!(hw.hits(h), Ok(1));
    // Growing to 3 registers does not fit next to the other 2: nothing changes.
    let before = snapshot(&hw, 1);
    assert_eq!(
        hw.modify(h, &w(0x3000, 24).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    assert_eq!(hw.modify(h, &w(0x3000, 0)).unwrap_err(), Error::ZeroLength);
    assert_eq!(snapshot(&hw, 1), before);
    assert_eq!(hw.attr(h).unwrap(), w(0x3000, 4).target(Target::Cpu(0)));
    assert!(hw.access(0, 0x3000, 4, Access::WRITE, 0).is_some());
    // Growing to 2 fits.
    sync(
        &hw,
        hw.modify(h, &w(0x3000, 16).target(Target::Cpu(0))).unwrap(),
    );
    assert_eq!(hw.slots_on(h, 0).unwrap().count_ones(), 2);
}

#[test]
fn inherit_is_all_or_nothing() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let p = TaskId(1);
    reg(&hw, w(0x1000, 8).target(task(1)).inherit(true)).unwrap();
    reg(&hw, w(0x2000, 8).target(task(1)).inherit(true)).unwrap();
    reg(&hw, w(0x3000, 8).target(task(1))).unwrap(); // not inherited
    sync(&hw, hw.fork(p, TaskId(2)).unwrap());
    assert_eq!(hw.len(), 5);
    hw.sched_in(0, Some(TaskId(2))).unwrap();
    assert!(hw.access(0, 0x1000, 1, Access::WRITE, 0).is_some());
    assert!(hw.access(0, 0x2000, 1, Access::WRITE, 0).is_some());
    assert_eq!(hw.access(0, 0x3000, 1, Access::WRITE, 0), None);

    // A manager with room for only one more event refuses the two copies whole.
    let small = Box::new(Manager::<Mock, (), 1, 3, 4>::new(
        Mock::new(MockConfig::X86_LIKE),
        (),
    ));
    small.init(1).unwrap();
    let _ = small
        .register(&w(0x1000, 8).target(task(1)).inherit(true))
        .unwrap();
    let _ = small
        .register(&w(0x2000, 8).target(task(1)).inherit(true))
        .unwrap();
    let table = small.inspect_table(Clone::clone).unwrap();
    assert_eq!(small.fork(p, TaskId(2)).unwrap_err(), Error::TooManyEvents);
    assert_eq!(
        (small.len(), small.inspect_table(Clone::clone).unwrap()),
        (2, table)
    );

    // A full task table refuses the child whole, too.
    let tiny = Box::new(Manager::<Mock, (), 1, 8, 2>::new(
        Mock::new(MockConfig::X86_LIKE),
        (),
    ));
    tiny.init(1).unwrap();
    let _ = tiny
        .register(&w(0x1000, 8).target(task(1)).inherit(true))
        .unwrap();
    let _ = tiny.register(&w(0x2000, 8).target(task(3))).unwrap();
    let table = tiny.inspect_table(Clone::clone).unwrap();
    assert_eq!(tiny.fork(p, TaskId(2)).unwrap_err(), Error::TooManyTasks);
    assert_eq!(
        (tiny.len(), tiny.inspect_table(Clone::clone).unwrap()),
        (2, table)
    );

    // exit releases everything of the task.
    let hw2 = self::hw(MockConfig::X86_LIKE, 1);
    reg(&hw2, w(0x1000, 32).target(task(5))).unwrap();
    sync(&hw2, hw2.exit(TaskId(5)).unwrap());
    assert_eq!(
        hw2.inspect_table(Clone::clone).unwrap(),
        ConstraintTable::new(SlotCounts::Shared(4), 1).unwrap()
    );
}

#[test]
fn hotplug_adds_and_removes_cpus_cleanly() {
    let hw = Box::new(Manager::<Mock, Recorder, 4, 32, 8>::new(
        Mock::new(MockConfig::ARM_LIKE),
        Recorder::default(),
    ));
    hw.init(2).unwrap();
    hw.cpu_online(0).unwrap();
    let all = hw.register(&w(0x1000, 4).target(Target::AllCpus)).unwrap();
    assert!(
        all.sync.contains(0) && !all.sync.contains(1),
        "offline CPUs are not asked to sync"
    );
    sync(&hw, all.sync);
    let pinned1 = reg(&hw, w(0x2000, 4).target(Target::Cpu(1))).unwrap();
    // CPU 1 comes up with scrambled registers: init clears them, then it receives both.
    hw.arch().scramble(1);
    hw.cpu_online(1).unwrap();
    assert_eq!(hw.arch().inits(1), 1);
    assert!(hw.access(1, 0x1000, 4, Access::WRITE, 0).is_some());
    assert!(hw.access(1, 0x2000, 4, Access::WRITE, 0).is_some());
    assert_eq!(
        hw.access(1, 0x9000, 4, Access::WRITE, 0),
        None,
        "scrambled registers were cleared"
    );
    // Offline: registers cleared, events stay registered, back when online again.
    hw.cpu_offline(1).unwrap();
    assert_eq!(hw.access(1, 0x1000, 4, Access::WRITE, 0), None);
    assert!((0..4).all(|s| hw.arch().register(1, Pool(1), s) == Some(Default::default())));
    assert_eq!(hw.len(), 2);
    hw.cpu_online(1).unwrap();
    assert!(hw.access(1, 0x2000, 4, Access::WRITE, 0).is_some());
    assert_eq!(hw.hits(all.handle), Ok(1));
    assert_eq!(hw.hits(pinned1), Ok(2));
    assert_eq!(hw.arch().desync(), 0);
}

#[test]
fn debugger_reservation_is_never_touched() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let h = reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    let f: Vec<_> = (0..3)
        .map(|i| reg(&hw, w(0x2000 + 8 * i, 8).target(Target::Cpu(0)).flexible()).unwrap())
        .collect();
    // 1 pinned + 1 kept for flexible: 2 can be reserved, 3 cannot.
    assert_eq!(
        hw.reserve(0, BpType::Data, 3).unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    let r = hw.reserve(0, BpType::Data, 2).unwrap();
    assert_eq!((r.pool, r.first, r.count), (Pool(0), 2, 2));
    hw.sync(0).unwrap();
    // The debugger programs its two registers through the backend.
    let core_image = hw.image(0).unwrap();
    let mut debugger = core_image.clone();
    for (s, addr) in [(2usize, 0x7000u64), (3, 0x7100)] {
        debugger.pools[0][s] = hwbp_core::mock::MockSlot {
            addr,
            len: 4,
            access: Access::WRITE,
        };
    }
    hwbp_core::Arch::install(hw.arch(), 0, &(), &core_image, &debugger);
    let before: Vec<_> = (2..4).map(|s| hw.arch().register(0, Pool(0), s)).collect();
    assert!(before.iter().all(|r| r.is_some_and(|r| r.len == 4)));
    for _ in 0..10 {
        hw.rotate(0).unwrap();
        assert_eq!(hw.slots_on(h, 0).unwrap() & 0b1100, 0);
        for e in &f {
            assert_eq!(hw.slots_on(*e, 0).unwrap() & 0b1100, 0);
        }
    }
    // Registering and syncing more leaves them alone too.
    let more = reg(&hw, w(0x1100, 1).target(Target::Cpu(0)).flexible()).unwrap();
    hw.sync(0).unwrap();
    assert_eq!(
        (2..4)
            .map(|s| hw.arch().register(0, Pool(0), s))
            .collect::<Vec<_>>(),
        before
    );
    // A hit on a reserved register is the debugger's: handed on, not stray.
    let stray = hw.stray(0);
    assert_eq!(
        hw.access(0, 0x7100, 4, Access::WRITE, 0x4000),
        Some(Resume::NOT_OURS)
    );
    assert_eq!(hw.stray(0), stray);
    // Together with a hit of ours: ours is delivered, the exception passed on.
    let both = hwbp_core::mock::MockException {
        fired: hwbp_core::Fired::Slots {
            pool: Pool(0),
            mask: 0b1000 | hw.slots_on(h, 0).unwrap(),
        },
        addr: 0x1000,
        ip: 0x4000,
        access: Access::WRITE,
    };
    let hits = hw.hits(h).unwrap();
    assert_eq!(hw.handle_exception(0, &both), Resume::RETURN.and_pass_on());
    assert_eq!(hw.hits(h), Ok(hits + 1));
    let _ = hw.unregister(more).unwrap();
    // While reserved, a second pinned request does not fit.
    assert_eq!(
        hw.register(&w(0x3000, 8).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    hw.unreserve(0, BpType::Data).unwrap();
    assert_eq!(
        hw.unreserve(0, BpType::Data).unwrap_err(),
        Error::NotReserved
    );
    reg(&hw, w(0x3000, 8).target(Target::Cpu(0))).unwrap();
}

#[test]
fn stale_handles_are_refused_never_aliased() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let old = reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    sync(&hw, hw.unregister(old).unwrap());
    let new = reg(&hw, w(0x2000, 8).target(Target::Cpu(0))).unwrap();
    assert_eq!(old.index(), new.index(), "the cell is reused");
    assert_eq!(hw.unregister(old).unwrap_err(), Error::StaleHandle);
    assert_eq!(hw.enable(old).unwrap_err(), Error::StaleHandle);
    assert_eq!(
        hw.modify(old, &w(0x3000, 8)).unwrap_err(),
        Error::StaleHandle
    );
    assert_eq!(hw.hits(old).unwrap_err(), Error::StaleHandle);
    assert!(hw.access(0, 0x2000, 1, Access::WRITE, 0).is_some());
    assert_eq!(hw.hits(new), Ok(1));
}

#[test]
fn unregistered_breakpoint_hits_are_stray_until_synced() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let h = reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    let set = hw.unregister(h).unwrap();
    // Not synced yet: the register still fires, but nobody is credited.
    assert!(hw.access(0, 0x1000, 1, Access::WRITE, 0).is_some());
    assert_eq!(hw.stray(0), 1);
    assert!(hw.handler().take().is_empty());
    sync(&hw, set);
    assert_eq!(hw.access(0, 0x1000, 1, Access::WRITE, 0), None);
}

#[test]
fn disable_keeps_the_reservation_but_leaves_the_hardware() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let h = reg(&hw, w(0x1000, 32).target(Target::Cpu(0)).disabled(true)).unwrap();
    assert_eq!(hw.access(0, 0x1000, 1, Access::WRITE, 0), None);
    assert_eq!(
        hw.register(&w(0x2000, 1).target(Target::Cpu(0)))
            .unwrap_err(),
        Error::NoSlot { cpu: 0 }
    );
    sync(&hw, hw.enable(h).unwrap());
    assert!(hw.access(0, 0x1000, 1, Access::WRITE, 0).is_some());
    sync(&hw, hw.disable(h).unwrap());
    assert_eq!(hw.access(0, 0x1000, 1, Access::WRITE, 0), None);
}

#[test]
fn multiplexing_is_fair() {
    // k flexible events on m free registers: over T ticks each must run
    // T*m/k ticks, within one tick.
    for (config, k) in [
        (MockConfig::X86_LIKE, 7u64),
        (MockConfig::SH_LIKE, 5),
        (MockConfig::ARM_LIKE, 9),
    ] {
        let hw = hw(config, 1);
        let m = u64::from(config.counts.slots(config.counts.pool_of(BpType::Data)));
        let hs: Vec<_> = (0..k)
            .map(|i| reg(&hw, w(0x1000 + 8 * i, 8).target(Target::Cpu(0)).flexible()).unwrap())
            .collect();
        let ticks = 10 * k;
        for _ in 0..ticks {
            hw.rotate(0).unwrap();
            let on: u32 = hs
                .iter()
                .map(|h| hw.slots_on(*h, 0).unwrap().count_ones())
                .sum();
            assert_eq!(u64::from(on), m, "every register is used");
        }
        for h in &hs {
            let t = hw.times(*h).unwrap();
            assert_eq!(t.enabled, ticks);
            let fair = ticks * m / k;
            assert!(
                t.running.abs_diff(fair) <= 1,
                "{config:?}: ran {} of {ticks}, fair share {fair}",
                t.running
            );
        }
        assert_eq!(hw.arch().desync(), 0);
    }
}

#[test]
fn unchanged_switch_writes_no_register() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    reg(&hw, w(0x2000, 8).target(task(1))).unwrap();
    reg(&hw, w(0x2000, 8).target(task(2))).unwrap();
    hw.sched_in(0, Some(TaskId(1))).unwrap();
    let writes = hw.arch().writes(0);
    // Same task again, and a sync with nothing changed: no writes.
    hw.sched_out(0).unwrap();
    hw.sched_in(0, Some(TaskId(1))).unwrap();
    hw.sync(0).unwrap();
    assert_eq!(hw.arch().writes(0), writes);
    // Task 2 has the same image (same address, same slot): still no writes.
    hw.sched_out(0).unwrap();
    hw.sched_in(0, Some(TaskId(2))).unwrap();
    assert_eq!(hw.arch().writes(0), writes);
    // A task with no breakpoints: exactly one register changes.
    hw.sched_out(0).unwrap();
    hw.sched_in(0, Some(TaskId(3))).unwrap();
    assert_eq!(hw.arch().writes(0), writes + 1);
    assert_eq!(hw.arch().log().last().unwrap().value, Default::default());
}

/// The install contract at a context switch (issue 14): no register write
/// when the image does not change, one per register that does otherwise.
#[test]
fn a_switch_writes_only_the_registers_that_change() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    // Two tasks with four pinned breakpoints each (every register), alike
    // but for the last.
    for t in [1u64, 2] {
        for k in 0..4u64 {
            let addr = if k == 3 {
                0x3000 + 8 * t
            } else {
                0x2000 + 8 * k
            };
            reg(&hw, w(addr, 8).target(task(t))).unwrap();
        }
    }
    hw.sched_in(0, Some(TaskId(1))).unwrap();
    let writes = hw.arch().writes(0);
    // The same context again, a tick, a sync: nothing written.
    hw.sched_out(0).unwrap();
    hw.sched_in(0, Some(TaskId(1))).unwrap();
    hw.rotate(0).unwrap();
    hw.sync(0).unwrap();
    assert_eq!(hw.arch().writes(0), writes);
    // Task 2 differs in one register: exactly that one is written.
    hw.sched_out(0).unwrap();
    hw.sched_in(0, Some(TaskId(2))).unwrap();
    assert_eq!(hw.arch().writes(0), writes + 1);
    let last = *hw.arch().log().last().unwrap();
    assert_eq!((last.slot, last.value.addr), (3, 0x3010));
    // And back: one write again.
    hw.sched_out(0).unwrap();
    hw.sched_in(0, Some(TaskId(1))).unwrap();
    assert_eq!(hw.arch().writes(0), writes + 2);
}

#[test]
fn save_and_restore_an_image() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    let saved = hw.image(0).unwrap();
    // A guest ran with its own registers: only what differs is written back.
    let mut guest = saved.clone();
    guest.pools[0][3] = hwbp_core::mock::MockSlot {
        addr: 0x7000,
        len: 4,
        access: Access::WRITE,
    };
    use hwbp_core::Arch;
    hw.arch().install(0, &(), &saved, &guest);
    let writes = hw.arch().writes(0);
    hw.restore(0, &guest).unwrap();
    assert_eq!(hw.arch().writes(0), writes + 1);
    assert_eq!(hw.image(0).unwrap(), saved);
    assert_eq!(hw.access(0, 0x7000, 4, Access::WRITE, 0), None);
}

#[test]
fn sample_period_delivers_every_nth_hit_and_counts_all() {
    let hw = hw(MockConfig::X86_LIKE, 1);
    let h = reg(
        &hw,
        BreakpointAttr::exec(0x5000)
            .target(Target::Cpu(0))
            .sample_period(3),
    )
    .unwrap();
    for _ in 0..10 {
        hw.access(0, 0x5000, 1, Access::EXEC, 0x5000);
    }
    assert_eq!(hw.hits(h), Ok(10));
    let s = hw.handler().take();
    assert_eq!(s.iter().map(|s| s.hits).collect::<Vec<_>>(), vec![3, 6, 9]);
}

#[test]
fn imprecise_reports_are_matched_by_address_and_strays_filtered() {
    // Arm-like: the exception only says "a watchpoint, at this address".
    let hw = hw(
        MockConfig {
            max_piece: 8,
            ..MockConfig::ARM_LIKE
        },
        1,
    );
    let a = reg(
        &hw,
        BreakpointAttr::watch(0x1000, 8, Access::RW).target(Target::Cpu(0)),
    )
    .unwrap();
    let b = reg(&hw, w(0x1010, 4).target(Target::Cpu(0))).unwrap();
    let exc = |addr, access| hwbp_core::mock::MockException {
        fired: hwbp_core::Fired::ByAddress { pool: Pool(1) },
        addr,
        ip: 0,
        access,
    };
    // Exact match.
    let _ = hw.handle_exception(0, &exc(0x1004, Access::READ));
    // Exact match on b.
    let _ = hw.handle_exception(0, &exc(0x1012, Access::WRITE));
    // Access kind filters: b only watches writes, so a read reported at b is not
    // b's; the closest read-watching slot (a) gets it.
    let _ = hw.handle_exception(0, &exc(0x1011, Access::READ));
    // An imprecise address between the two (a wide store starting before b):
    // closest wins.
    let _ = hw.handle_exception(0, &exc(0x100e, Access::WRITE));
    assert_eq!((hw.hits(a), hw.hits(b)), (Ok(2), Ok(2)));
    // A pool with nothing that can match: stray.
    let stray = hw.stray(0);
    let _ = hw.handle_exception(0, &exc(0x1004, Access::EXEC));
    assert_eq!(hw.stray(0), stray + 1);
}

#[test]
fn unattributed_hits_go_only_to_the_one_breakpoint_that_can_explain_them() {
    // Arm with FAR not valid and no watchpoint number: "a watchpoint fired".
    let hw = hw(
        MockConfig {
            max_piece: 8,
            ..MockConfig::ARM_LIKE
        },
        1,
    );
    let exc = |access| hwbp_core::mock::MockException {
        fired: hwbp_core::Fired::Unattributed { pool: Pool(1) },
        addr: 0xdead_0000,
        ip: 0x4000,
        access,
    };
    // Nothing installed: stray.
    let _ = hw.handle_exception(0, &exc(Access::WRITE));
    assert_eq!(hw.stray(0), 1);
    // One breakpoint, split over two slots: it is the only explanation.
    let a = reg(&hw, w(0x1004, 8).target(Target::Cpu(0))).unwrap();
    assert_eq!(hw.slots_on(a, 0).unwrap().count_ones(), 2);
    let _ = hw.handle_exception(0, &exc(Access::WRITE));
    let _ = hw.handle_exception(0, &exc(Access::empty()));
    assert_eq!(hw.hits(a), Ok(2));
    let s = hw.handler().take();
    assert_eq!(
        s.iter().map(|s| (s.handle, s.addr)).collect::<Vec<_>>(),
        vec![(a, 0x1004); 2],
        "reported at the start of the region"
    );
    // A second breakpoint: only the access kind can still tell them apart.
    let b = reg(
        &hw,
        BreakpointAttr::watch(0x2000, 4, Access::READ).target(Target::Cpu(0)),
    )
    .unwrap();
    let _ = hw.handle_exception(0, &exc(Access::READ));
    assert_eq!((hw.hits(a), hw.hits(b)), (Ok(2), Ok(1)));
    let stray = hw.stray(0);
    let _ = hw.handle_exception(0, &exc(Access::empty()));
    assert_eq!((hw.hits(a), hw.hits(b)), (Ok(2), Ok(1)), "never a guess");
    assert_eq!(hw.stray(0), stray + 1);
    // Instruction slots are another pool.
    let e = reg(&hw, BreakpointAttr::exec(0x4000).target(Target::Cpu(0))).unwrap();
    let _ = hw.handle_exception(
        0,
        &hwbp_core::mock::MockException {
            fired: hwbp_core::Fired::Unattributed { pool: Pool(0) },
            ..exc(Access::EXEC)
        },
    );
    assert_eq!((hw.hits(a), hw.hits(b), hw.hits(e)), (Ok(2), Ok(1), Ok(1)));
}

#[test]
fn hits_outside_the_user_region_are_filtered() {
    use hwbp_core::arch::{AddressSpace, Arch, Decoded, Encoding, Image, Piece};
    use hwbp_core::mock::MockException;
    /// A backend whose one register covers a whole aligned 16-byte block, like a
    /// masked range wider than the request.
    struct Coarse;
    impl Arch for Coarse {
        type Slot = u64;
        type Exception = MockException;
        type CpuState = ();
        const CPU_STATE_INIT: () = ();
        fn discover(&self) -> Result<SlotCounts, Error> {
            Ok(SlotCounts::Separate { inst: 1, data: 1 })
        }
        fn encode(&self, a: &BreakpointAttr) -> Result<Encoding<u64>, Error> {
            let base = a.addr & !15;
            let mut pieces = heapless::Vec::new();
            let _ = pieces.push(Piece {
                slot: base | 1,
                hw_addr: base,
                hw_len: 16,
            });
            Ok(Encoding {
                ty: a.bp_type(),
                pieces,
            })
        }
        fn address_space(&self, _: u64, _: u64) -> AddressSpace {
            AddressSpace::User
        }
        fn install(&self, _: u16, _: &(), _: &Image<u64>, _: &Image<u64>) {}
        fn decode(&self, _: u16, _: &(), raw: &MockException) -> Decoded {
            Decoded::new(raw.fired, Resume::SINGLE_STEP)
                .addr(raw.addr)
                .ip(raw.ip)
                .access(raw.access)
        }
    }
    let hw = Box::new(Manager::<Coarse, Recorder, 1, 4, 2>::new(
        Coarse,
        Recorder::default(),
    ));
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    let h = hw
        .register(&w(0x1004, 4).target(Target::Cpu(0)))
        .unwrap()
        .handle;
    hw.sync(0).unwrap();
    let exc = |addr| MockException {
        fired: hwbp_core::Fired::ByAddress { pool: Pool(1) },
        addr,
        ip: 0,
        access: Access::WRITE,
    };
    // The hardware fires for 0x100c (same block) but the user watches 0x1004..0x1008.
    assert_eq!(
        hw.handle_exception(0, &exc(0x100c)),
        Resume::SINGLE_STEP,
        "the CPU still steps over"
    );
    assert_eq!((hw.hits(h), hw.stray(0)), (Ok(0), 1));
    let _ = hw.handle_exception(0, &exc(0x1006));
    assert_eq!(hw.hits(h), Ok(1));
    assert_eq!(hw.handler().take().len(), 1);
}

#[test]
fn cpu_online_again_forgets_what_was_on_the_cpu() {
    // Arm-like dispatch by address: a stale slot entry would be a candidate.
    let hw = hw(MockConfig::ARM_LIKE, 1);
    let b = reg(&hw, w(0x1000, 4).target(Target::Cpu(0))).unwrap();
    let a = reg(&hw, w(0x1000, 4).target(Target::Cpu(0))).unwrap();
    assert_eq!(hw.slots_on(a, 0).unwrap().count_ones(), 1);
    let _ = hw.disable(a).unwrap();
    hw.cpu_online(0).unwrap();
    assert_eq!(hw.slots_on(a, 0), Ok(0));
    hw.access(0, 0x1000, 4, Access::WRITE, 0x4000);
    assert_eq!((hw.hits(b), hw.hits(a)), (Ok(1), Ok(0)), "a is disabled");
}

#[test]
fn pieces_kept_in_place_may_outnumber_the_event_storage() {
    // Two events, four register pieces: the plan must not lose track of
    // which pieces are already on the hardware.
    let hw: Box<Manager<Mock, (), 1, 2, 2>> =
        Box::new(Manager::new(Mock::new(MockConfig::X86_LIKE), ()));
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    let a = hw
        .register(&w(0x1001, 7).target(Target::Cpu(0)))
        .unwrap()
        .handle;
    let t1 = Target::Task {
        task: TaskId(1),
        cpu: None,
    };
    let b = hw.register(&w(0x2000, 4).target(t1)).unwrap().handle;
    hw.sync(0).unwrap();
    hw.sched_in(0, Some(TaskId(1))).unwrap();
    assert_eq!(hw.slots_on(a, 0).unwrap().count_ones(), 3);
    assert_eq!(
        hw.slots_on(b, 0).unwrap().count_ones(),
        1,
        "pinned task breakpoint starved"
    );
    assert!(hw.access(0, 0x2000, 4, Access::WRITE, 0x4000).is_some());
    assert_eq!(hw.hits(b), Ok(1));
}

#[test]
fn cpu_online_again_keeps_the_running_task() {
    // Re-onlining a CPU that is online (resume from a low-power state that
    // lost the debug registers) must not drop the running task's pinned
    // breakpoints until the next context switch.
    for cfg in [
        MockConfig::X86_LIKE,
        MockConfig::ARM_LIKE,
        MockConfig::SH_LIKE,
    ] {
        let hw = hw(cfg, 2);
        let cpu0 = reg(&hw, w(0x1000, 4).target(Target::Cpu(0))).unwrap();
        let t = reg(&hw, w(0x2000, 4).target(task(7))).unwrap();
        hw.sched_in(1, Some(TaskId(7))).unwrap();
        hw.sched_in(0, Some(TaskId(7))).unwrap();
        assert_ne!(hw.slots_on(t, 0), Ok(0), "{cfg:?}");
        hw.arch().scramble(0);
        hw.cpu_online(0).unwrap();
        assert_ne!(
            hw.slots_on(t, 0),
            Ok(0),
            "{cfg:?}: task breakpoint left CPU 0"
        );
        assert!(
            hw.access(0, 0x2000, 4, Access::WRITE, 0).is_some(),
            "{cfg:?}"
        );
        assert!(
            hw.access(0, 0x1000, 4, Access::WRITE, 0).is_some(),
            "{cfg:?}"
        );
        assert_eq!((hw.hits(t), hw.hits(cpu0)), (Ok(1), Ok(1)), "{cfg:?}");
        // The task still runs there: switching it out takes its breakpoint off.
        hw.sched_out(0).unwrap();
        hw.sched_in(0, None).unwrap();
        assert_eq!(hw.slots_on(t, 0), Ok(0), "{cfg:?}");
        assert_eq!(hw.arch().desync(), 0, "{cfg:?}");
    }
}

/// The capacity parameters have defaults: `Manager<Mock>` is a manager for one
/// CPU, 64 breakpoints and 64 tasks, and lives in a `static`.
#[test]
fn capacity_parameters_have_defaults() {
    static DEFAULT: Manager<Mock> = Manager::new(Mock::new(MockConfig::X86_LIKE), ());
    DEFAULT.init(1).unwrap();
    DEFAULT.cpu_online(0).unwrap();
    assert_eq!(DEFAULT.cpu_online(1), Err(Error::CpuOutOfRange { cpu: 1 }));
    for i in 0..64 {
        let _ = DEFAULT.register(&w(0x1000 + 8 * i, 8).flexible()).unwrap();
    }
    assert_eq!(
        DEFAULT.register(&w(0x9000, 8).flexible()),
        Err(Error::TooManyEvents)
    );
    // A backend without usable hardware is refused at init, with the reason.
    static NONE: Manager<Mock> = Manager::new(
        Mock::new(MockConfig {
            counts: SlotCounts::Shared(0),
            ..MockConfig::X86_LIKE
        }),
        (),
    );
    assert_eq!(
        NONE.init(1),
        Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
    );
}

/// The per-CPU counters follow what the exception path did: every exception,
/// each stray hit, each exception handed on; nothing on another CPU.
#[test]
fn per_cpu_counters_count_exceptions_strays_and_passed_on() {
    let hw = hw(MockConfig::X86_LIKE, 2);
    let h = reg(&hw, w(0x1000, 4).target(Target::Cpu(0))).unwrap();
    assert_eq!(hw.counters(0), Ok(hwbp_core::CpuCounters::default()));
    // Two hits of ours.
    for _ in 0..2 {
        assert_eq!(
            hw.access(0, 0x1000, 4, Access::WRITE, 0x4000),
            Some(Resume::RETURN)
        );
    }
    // A step or software breakpoint that is not ours: handed on.
    let foreign = hwbp_core::mock::MockException {
        fired: hwbp_core::Fired::None,
        addr: 0,
        ip: 0x4000,
        access: Access::empty(),
    };
    assert_eq!(hw.handle_exception(0, &foreign), Resume::NOT_OURS);
    // A slot that fired with nothing in it: stray.
    let empty = hwbp_core::mock::MockException {
        fired: hwbp_core::Fired::Slots {
            pool: Pool(0),
            mask: 1 << 3,
        },
        addr: 0x9000,
        ip: 0x4000,
        access: Access::WRITE,
    };
    let _ = hw.handle_exception(0, &empty);
    let c = hw.counters(0).unwrap();
    assert_eq!(
        (c.exceptions, c.stray, c.passed_on, c.step_overs),
        (4, 1, 1, 0)
    );
    assert_eq!(c.stray, hw.stray(0));
    assert_eq!(hw.hits(h), Ok(2));
    assert_eq!(hw.counters(1), Ok(hwbp_core::CpuCounters::default()));
    assert_eq!(hw.counters(4), Err(Error::CpuOutOfRange { cpu: 4 }));
}

#[test]
fn address_only_hits_are_judged_by_the_registers_until_a_modify_is_synced() {
    // Arm-like reports (the address only). `e` is moved to a region that
    // contains the reported address, but this CPU is not synced yet: its
    // register still watches the old bytes, so the hit (which `g`'s register
    // caught) is `g`'s alone, as a backend naming the slot would say. Once
    // synced, `e`'s new registers catch it too.
    let hw = hw(MockConfig::ARM_LIKE, 1);
    let g = reg(&hw, w(0x0ff8, 8).target(Target::Cpu(0))).unwrap();
    let e = reg(&hw, w(0x1000, 8).target(Target::Cpu(0))).unwrap();
    let set = hw.modify(e, &w(0x0ff8, 16).target(Target::Cpu(0))).unwrap();
    hw.access(0, 0x0ff8, 8, Access::WRITE, 0x4000);
    assert_eq!((hw.hits(g), hw.hits(e)), (Ok(1), Ok(0)));
    sync(&hw, set);
    hw.access(0, 0x0ff8, 8, Access::WRITE, 0x4000);
    assert_eq!((hw.hits(g), hw.hits(e)), (Ok(2), Ok(1)));
    assert_eq!(hw.stray(0), 0);
}
