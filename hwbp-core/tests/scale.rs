//! Issue 14: shapes and costs that follow what is live, not the capacities.
//!
//! * More than 64 CPUs (1024 here): the sync sets name the CPUs a change
//!   concerns, whatever their numbers.
//! * Large storage on a small stack: every entry point runs on a thread
//!   with a 32 KiB stack with 16 384 breakpoint entries, so nothing on the
//!   stack grows with `EVENTS` (fork used to copy an `EVENTS`-long vector of
//!   breakpoints onto the stack, the scheduler two `EVENTS`-long candidate
//!   lists).

use hwbp_core::arch::{AddressSpace, Arch, Decoded, Encoding, Image};
use hwbp_core::mock::{Mock, MockConfig, MockException, MockSlot, MOCK_CPUS};
use hwbp_core::{
    Access, BreakpointAttr, CpuSet, Error, Handle, Manager, SlotCounts, Target, TaskId,
};

fn w(addr: u64) -> BreakpointAttr {
    BreakpointAttr::watch(addr, 4, Access::WRITE)
}

fn task(t: u64) -> Target {
    Target::Task {
        task: TaskId(t),
        cpu: None,
    }
}

fn cpus(set: CpuSet) -> Vec<u16> {
    set.iter().collect()
}

/// Run `f` on a thread with a stack of `bytes`.
fn on_stack<R: Send + 'static>(bytes: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// The mock's encoding and decoding for any number of CPUs: its register
/// file covers only the first `MOCK_CPUS`, so the others keep just the
/// manager's image (what these tests look at).
struct Wide(Mock);

impl Arch for Wide {
    type Slot = MockSlot;
    type Exception = MockException;
    type CpuState = ();
    const CPU_STATE_INIT: () = ();
    fn discover(&self) -> Result<SlotCounts, Error> {
        self.0.discover()
    }
    fn encode(&self, a: &BreakpointAttr) -> Result<Encoding<MockSlot>, Error> {
        self.0.encode(a)
    }
    fn address_space(&self, addr: u64, len: u64) -> AddressSpace {
        self.0.address_space(addr, len)
    }
    fn install(&self, cpu: u16, _: &(), old: &Image<MockSlot>, new: &Image<MockSlot>) {
        if usize::from(cpu) < MOCK_CPUS {
            self.0.install(cpu, &(), old, new);
        }
    }
    fn decode(&self, cpu: u16, _: &(), raw: &MockException) -> Decoded {
        self.0.decode(cpu, &(), raw)
    }
}

type Big = Manager<Wide, (), 1024, 64, 64>;

#[test]
fn a_thousand_cpus_get_exactly_the_syncs_they_need() {
    let hw: &'static Big = Box::leak(on_stack(64 << 20, || {
        Box::new(Manager::new(Wide(Mock::new(MockConfig::X86_LIKE)), ()))
    }));
    // (A large stack: the constraint table's task entries still copy a
    // per-CPU array on insertion; this test is about CPU numbers.)
    on_stack(16 << 20, move || {
        hw.init(1024).unwrap();
        for c in 0..1024 {
            hw.cpu_online(c).unwrap();
        }
        // A CPU-bound breakpoint concerns its CPU only.
        let r = hw.register(&w(0x1000).target(Target::Cpu(1000))).unwrap();
        assert_eq!(cpus(r.sync), [1000]);
        hw.sync(1000).unwrap();
        assert_eq!(hw.slots_on(r.handle, 1000), Ok(0b1));
        assert_eq!(hw.image(1000).unwrap().pools[0][0].addr, 0x1000);
        // Moving it names the old CPU and the new one.
        let set = hw
            .modify(r.handle, &w(0x1000).target(Target::Cpu(70)))
            .unwrap();
        assert_eq!(cpus(set), [70, 1000]);
        assert!(set.contains(70) && set.contains(1000) && !set.contains(999));
        for c in set.iter() {
            hw.sync(c).unwrap();
        }
        assert_eq!(hw.slots_on(r.handle, 1000), Ok(0));
        assert_eq!(hw.slots_on(r.handle, 70), Ok(0b1));
        // A task's breakpoint concerns the CPU it runs on, or none.
        hw.sched_in(777, Some(TaskId(9))).unwrap();
        let t = hw
            .register(&w(0x2000).target(task(9)).inherit(true))
            .unwrap();
        assert_eq!(cpus(t.sync), [777]);
        let idle = hw.register(&w(0x3000).target(task(10))).unwrap();
        assert!(idle.sync.is_empty());
        hw.sync(777).unwrap();
        assert_eq!(hw.slots_on(t.handle, 777), Ok(0b1));
        // fork names where the child runs; exit where the task ran.
        assert!(hw.fork(TaskId(9), TaskId(11)).unwrap().is_empty());
        hw.sched_out(777).unwrap();
        hw.sched_in(512, Some(TaskId(11))).unwrap();
        assert_eq!(cpus(hw.exit(TaskId(11)).unwrap()), [512]);
        assert!(
            hw.exit(TaskId(9)).unwrap().is_empty(),
            "task 9 runs nowhere"
        );
        // An all-CPU breakpoint concerns every online CPU.
        let all = hw.register(&w(0x4000).target(Target::AllCpus)).unwrap();
        assert_eq!(all.sync.len(), 1024);
        assert!(all.sync.iter().eq(0..1024));
        hw.cpu_offline(1023).unwrap();
        hw.cpu_offline(1022).unwrap();
        let set = hw.disable(all.handle).unwrap();
        assert_eq!(set, CpuSet::below(1022));
        for h in [r.handle, idle.handle, all.handle] {
            for c in hw.unregister(h).unwrap().iter() {
                hw.sync(c).unwrap();
            }
        }
        assert!(hw.is_empty());
    });
}

type Deep = Manager<Mock, (), 4, 16384, 64>;

/// The small stack (debug builds included; the old code overflowed it by
/// megabytes in `fork` and by 190 KiB in every reschedule).
const STACK: usize = 32 << 10;

#[test]
fn every_entry_point_runs_on_a_small_stack_with_large_storage() {
    let hw: &'static Deep = Box::leak(on_stack(512 << 20, || {
        Box::new(Manager::new(Mock::new(MockConfig::X86_LIKE), ()))
    }));
    hw.init(4).unwrap();
    for c in 0..4 {
        hw.cpu_online(c).unwrap();
    }
    on_stack(STACK, move || {
        let sync = |set: CpuSet| {
            for c in set.iter() {
                hw.sync(c).unwrap();
            }
        };
        let mut handles: Vec<Handle> = Vec::new();
        for (i, t) in [1u64, 1, 2, 2].into_iter().enumerate() {
            let r = hw
                .register(&w(0x1000 + 8 * i as u64).target(task(t)).inherit(true))
                .unwrap();
            sync(r.sync);
            handles.push(r.handle);
        }
        let r = hw
            .register(&w(0x2000).target(Target::AllCpus).flexible())
            .unwrap();
        sync(r.sync);
        hw.sched_in(0, Some(TaskId(1))).unwrap();
        assert_ne!(hw.slots_on(handles[0], 0), Ok(0));
        hw.sched_out(0).unwrap();
        hw.sched_in(0, Some(TaskId(2))).unwrap();
        assert_ne!(hw.slots_on(handles[2], 0), Ok(0));
        hw.rotate(0).unwrap();
        sync(hw.fork(TaskId(2), TaskId(3)).unwrap());
        assert_eq!(hw.len(), 7);
        sync(hw.modify(handles[0], &w(0x3000).target(task(1))).unwrap());
        sync(hw.exit(TaskId(3)).unwrap());
        sync(hw.exit(TaskId(1)).unwrap());
        hw.access(0, 0x1010, 4, Access::WRITE, 0x40_0000);
        assert_eq!(hw.hits(handles[2]), Ok(1));
        assert!(hw.all_quiesced().unwrap());
        hw.cpu_offline(1).unwrap();
        hw.cpu_online(1).unwrap();
        assert_eq!(hw.len(), 3);
    });
}
