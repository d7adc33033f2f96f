//! End to end on the host: hwbp-core's manager + the x86 backend + the
//! software model of the debug hardware. Every hit is produced by running an
//! access through the model (which sets DR6 as the CPU does), then handed to
//! `Manager::handle_exception` exactly as a #DB handler would.

use std::cell::RefCell;

use hwbp_core::{Access, BreakpointAttr, Error, Handle, Manager, Resume, Sample, Target, TaskId};
use hwbp_x86::model::{CpuAccess, Model, ModelRegs, RegWrite};
use hwbp_x86::{DebugReg, Dr7, Encoder, Mode, RegisterImage, X86Backend};

type Regs = ModelRegs<2>;

struct Rig<'a, F: Fn(&Sample)> {
    regs: &'a Regs,
    hw: Manager<X86Backend<&'a Regs>, F, 2, 16, 4>,
}

impl<'a, F: Fn(&Sample)> Rig<'a, F> {
    fn new(regs: &'a Regs, handler: F) -> Self {
        let hw = Manager::new(
            X86Backend::with_regs(Encoder::new(Mode::Bits64), regs),
            handler,
        );
        hw.init(2).unwrap();
        hw.cpu_online(0).unwrap();
        hw.cpu_online(1).unwrap();
        Rig { regs, hw }
    }

    fn register(&self, attr: &BreakpointAttr) -> Result<Handle, Error> {
        let r = self.hw.register(attr)?;
        for cpu in r.sync.iter() {
            self.hw.sync(cpu).unwrap();
        }
        Ok(r.handle)
    }

    /// Run an access on `cpu`; if the model raises #DB, dispatch it.
    fn access(&self, cpu: u16, a: CpuAccess) -> Option<Resume> {
        let ex = self.regs.access(cpu, &a, 0x40_0000)?;
        Some(self.hw.handle_exception(cpu, &ex))
    }
}

/// No address register was ever written while its slot was enabled.
fn check_order(log: &[RegWrite]) {
    let mut dr7 = [Dr7::from_raw(Dr7::RESERVED_ONE); 2];
    for w in log {
        let d = &mut dr7[usize::from(w.cpu)];
        match w.reg {
            DebugReg::Dr7 => *d = Dr7::from_raw(w.value),
            DebugReg::Dr6 => {}
            r => assert!(!d.enabled(r.index()), "{r:?} written while enabled"),
        }
    }
}

#[test]
fn split_region_hits_are_reported_once_against_the_region() {
    let regs = Regs::new(Model::new(Mode::Bits64));
    let seen = RefCell::new(Vec::new());
    let rig = Rig::new(&regs, |s: &Sample| seen.borrow_mut().push(*s));
    // 6 bytes at 0x1003: three slots (1 @ 0x1003, 4 @ 0x1004, 1 @ 0x1008).
    let h = rig
        .register(&BreakpointAttr::watch(0x1003, 6, Access::WRITE).target(Target::Cpu(0)))
        .unwrap();
    assert_eq!(rig.hw.weight(h), Ok(3));
    assert_eq!(rig.hw.slots_on(h, 0).map(u32::count_ones), Ok(3));
    // Every byte of the region, on CPU 0 only.
    for a in 0x1003..0x1009 {
        assert_eq!(
            rig.access(0, CpuAccess::write(a, 1)),
            Some(Resume::RETURN),
            "{a:#x}"
        );
        assert_eq!(rig.access(1, CpuAccess::write(a, 1)), None);
    }
    // A store spanning two pieces sets two B bits but is one hit.
    assert_eq!(
        rig.access(0, CpuAccess::write(0x1002, 4)),
        Some(Resume::RETURN)
    );
    // Outside the region and reads: nothing.
    assert_eq!(rig.access(0, CpuAccess::write(0x1009, 1)), None);
    assert_eq!(rig.access(0, CpuAccess::write(0x1000, 3)), None);
    assert_eq!(rig.access(0, CpuAccess::read(0x1004, 4)), None);
    assert_eq!(rig.hw.hits(h), Ok(7));
    let seen = seen.borrow();
    assert_eq!(seen.len(), 7);
    assert!(seen.iter().all(|s| s.handle == h && s.cpu == 0));
    assert!(seen
        .iter()
        .all(|s| (s.region_addr, s.region_len) == (0x1003, 6)));
    assert_eq!(rig.hw.stray(0), 0);
    check_order(&regs.take_log().unwrap());
}

#[test]
fn constraint_table_counts_weights_and_refuses_what_cannot_fit() {
    let regs = Regs::new(Model::new(Mode::Bits64));
    let rig = Rig::new(&regs, |_: &Sample| {});
    let cpu0 = |a: BreakpointAttr| a.target(Target::Cpu(0));
    assert_eq!(
        rig.register(&cpu0(BreakpointAttr::watch(0x2000, 40, Access::RW))),
        Err(Error::RangeTooLarge {
            weight: 5,
            slots: 4
        })
    );
    assert_eq!(
        rig.register(&cpu0(BreakpointAttr::watch(0x2000, 4, Access::READ))),
        Err(Error::UnsupportedAccess)
    );
    // 7 bytes at 0x2001: 1 @ 0x2001, 2 @ 0x2002, 4 @ 0x2004.
    let a = rig
        .register(&cpu0(BreakpointAttr::watch(0x2001, 7, Access::RW)))
        .unwrap();
    assert_eq!(rig.hw.weight(a), Ok(3));
    // Three slots taken: a two-slot region no longer fits, a one-slot one does.
    assert_eq!(
        rig.register(&cpu0(BreakpointAttr::watch(0x3000, 16, Access::WRITE))),
        Err(Error::NoSlot { cpu: 0 })
    );
    let b = rig
        .register(&cpu0(BreakpointAttr::exec(0x40_1000)))
        .unwrap();
    // The execute breakpoint faults: the core passes the backend's RF request on.
    assert_eq!(
        rig.access(0, CpuAccess::fetch(0x40_1000)),
        Some(Resume::SET_RESUME_FLAG)
    );
    assert_eq!(rig.hw.hits(b), Ok(1));
    // Single step onto the breakpoint: the step wins, nothing is counted.
    let ex = regs.single_step(0, 0x40_1000);
    assert_eq!(rig.hw.handle_exception(0, &ex), Resume::NOT_OURS);
    assert_eq!(rig.hw.hits(b), Ok(1));
    // Unregistering frees the slots for the bigger region.
    for cpu in rig.hw.unregister(a).unwrap().iter() {
        rig.hw.sync(cpu).unwrap();
    }
    assert_eq!(rig.access(0, CpuAccess::write(0x2002, 1)), None);
    let c = rig
        .register(&cpu0(BreakpointAttr::watch(0x3000, 16, Access::WRITE)))
        .unwrap();
    assert_eq!(
        rig.access(0, CpuAccess::write(0x300f, 1)),
        Some(Resume::RETURN)
    );
    assert_eq!(rig.hw.hits(c), Ok(1));
    check_order(&regs.take_log().unwrap());
}

#[test]
fn task_switches_write_only_what_changes() {
    let regs = Regs::new(Model::new(Mode::Bits64));
    let rig = Rig::new(&regs, |_: &Sample| {});
    let task = |t| Target::Task {
        task: TaskId(t),
        cpu: None,
    };
    let a = rig
        .register(
            &BreakpointAttr::watch(0x5000, 8, Access::WRITE)
                .target(task(1))
                .user_only(),
        )
        .unwrap();
    let b = rig
        .register(
            &BreakpointAttr::watch(0x6000, 4, Access::RW)
                .target(task(2))
                .user_only(),
        )
        .unwrap();
    // A user task cannot watch the kernel.
    assert_eq!(
        rig.register(
            &BreakpointAttr::watch(0xffff_ffff_8100_0000, 8, Access::RW)
                .target(task(2))
                .user_only()
        ),
        Err(Error::KernelAddress)
    );
    regs.take_log();
    rig.hw.sched_in(0, Some(TaskId(1))).unwrap();
    assert!(rig.access(0, CpuAccess::write(0x5004, 4)).is_some());
    assert!(rig.access(0, CpuAccess::write(0x6000, 4)).is_none());
    rig.hw.sched_out(0).unwrap();
    rig.hw.sched_in(0, Some(TaskId(2))).unwrap();
    assert!(rig.access(0, CpuAccess::write(0x5004, 4)).is_none());
    assert!(rig.access(0, CpuAccess::read(0x6002, 1)).is_some());
    rig.hw.sched_out(0).unwrap();
    assert_eq!((rig.hw.hits(a), rig.hw.hits(b)), (Ok(1), Ok(1)));
    // Switching to a task without breakpoints disables task 2's slot: one
    // DR7 write, no address write.
    rig.hw.sched_in(0, Some(TaskId(3))).unwrap();
    assert!(rig.access(0, CpuAccess::read(0x6002, 1)).is_none());
    let log = regs.take_log().unwrap();
    check_order(&log);
    assert_eq!(log.last().map(|w| w.reg), Some(DebugReg::Dr7));
    assert_eq!(regs.image(0).1.enabled_mask(), 0);
    // Between contexts without breakpoints: nothing written at all.
    rig.hw.sched_out(0).unwrap();
    rig.hw.sched_in(0, None).unwrap();
    rig.hw.sched_out(0).unwrap();
    rig.hw.sched_in(0, Some(TaskId(3))).unwrap();
    let log = regs.take_log().unwrap();
    assert!(
        log.is_empty(),
        "switching between empty contexts wrote {log:?}"
    );
}

#[test]
fn imported_image_registers_and_exports_back() {
    let regs = Regs::new(Model::new(Mode::Bits64));
    let rig = Rig::new(&regs, |_: &Sample| {});
    let enc = Encoder::new(Mode::Bits64);
    // A ptrace-style image: DR0 write 4 @ 0x7000, DR1 execute @ 0x40_2000,
    // written as raw numbers (R/W0 = 01, LEN0 = 11, R/W1 = LEN1 = 00, G0, G1).
    let image = RegisterImage {
        addr: [0x7000, 0x40_2000, 0, 0],
        dr7: (0b11 << 18) | (0b01 << 16) | 0b1010 | Dr7::GE | Dr7::RESERVED_ONE,
    };
    let template = BreakpointAttr::watch(0, 1, Access::WRITE)
        .target(Target::Task {
            task: TaskId(9),
            cpu: None,
        })
        .user_only();
    let imp = enc.import(&image, &template).unwrap();
    assert_eq!(imp.requests().count(), 2);
    for (_, r) in imp.requests() {
        rig.register(&r).unwrap();
    }
    rig.hw.sched_in(0, Some(TaskId(9))).unwrap();
    // What the core installed is the same set of slots as the image.
    let out = RegisterImage::from_image(&rig.hw.image(0).unwrap());
    let mut want: Vec<_> = image
        .slots()
        .into_iter()
        .filter(|s| s.is_enabled())
        .collect();
    let mut got: Vec<_> = out.slots().into_iter().filter(|s| s.is_enabled()).collect();
    want.sort_by_key(|s| s.addr);
    got.sort_by_key(|s| s.addr);
    assert_eq!(got, want);
    assert_eq!(imp.export(), image);
    // And it behaves: the write traps, the fetch faults.
    assert_eq!(
        rig.access(0, CpuAccess::write(0x7002, 2)),
        Some(Resume::RETURN)
    );
    assert_eq!(
        rig.access(0, CpuAccess::fetch(0x40_2000)),
        Some(Resume::SET_RESUME_FLAG)
    );
}

#[test]
fn a_debuggers_reserved_register_is_left_alone_and_its_hits_handed_on() {
    use hwbp_core::BpType;
    use hwbp_x86::{Condition, DebugRegs, Size, SlotEnable};
    let regs = Regs::new(Model::new(Mode::Bits64));
    let rig = Rig::new(&regs, |_: &Sample| {});
    let r = rig.hw.reserve(0, BpType::Data, 1).unwrap();
    assert_eq!((r.first, r.count), (3, 1));
    rig.hw.sync(0).unwrap();
    // The debugger programs DR3 itself: a 4-byte write watchpoint.
    let mut dr7 = Dr7::from_raw(regs.read(0, DebugReg::Dr7));
    regs.write(0, DebugReg::Dr3, 0x9000);
    dr7.set_condition(3, Condition::Write);
    dr7.set_size(3, Size::Four);
    dr7.set_enable(3, SlotEnable::GLOBAL);
    regs.write(0, DebugReg::Dr7, dr7.raw());
    // The manager installs its own breakpoints around it.
    let cpu0 = |a: BreakpointAttr| a.target(Target::Cpu(0));
    let ours = rig
        .register(&cpu0(BreakpointAttr::watch(0x2000, 8, Access::WRITE)))
        .unwrap();
    let after = Dr7::from_raw(regs.read(0, DebugReg::Dr7));
    assert!(after.enabled(3), "DR7 fields of the reserved slot kept");
    assert_eq!(after.condition(3), Condition::Write);
    assert_eq!(regs.read(0, DebugReg::Dr3), 0x9000);
    // Its hit is the debugger's; ours still is ours.
    assert_eq!(
        rig.access(0, CpuAccess::write(0x9002, 1)),
        Some(Resume::NOT_OURS)
    );
    assert_eq!(
        rig.access(0, CpuAccess::write(0x2000, 8)),
        Some(Resume::RETURN)
    );
    assert_eq!((rig.hw.hits(ours), rig.hw.stray(0)), (Ok(1), 0));
}

#[test]
fn decode_works_with_dr7_cleared_on_entry() {
    // Issue 16: Linux clears DR7 on #DB entry (local_db_save) and restores
    // it on return; an embedder doing the same must still get its hits.
    // The decode reads the record of what was installed, not the live DR7.
    let regs = Regs::new(Model::new(Mode::Bits64));
    let seen = RefCell::new(Vec::new());
    let rig = Rig::new(&regs, |s: &Sample| seen.borrow_mut().push(*s));
    let w = rig
        .register(&BreakpointAttr::watch(0x2000, 8, Access::WRITE).target(Target::Cpu(0)))
        .unwrap();
    let x = rig
        .register(&BreakpointAttr::exec(0x40_1000).target(Target::Cpu(0)))
        .unwrap();
    let entry = |ex| {
        // #DB entry: save DR7 and clear it; decode; restore on return.
        let saved = regs.image(0).1;
        regs.write(0, DebugReg::Dr7, Dr7::RESERVED_ONE);
        let r = rig.hw.handle_exception(0, &ex);
        regs.write(0, DebugReg::Dr7, saved.raw());
        r
    };
    let ex = regs
        .access(0, &CpuAccess::write(0x2004, 4), 0x40_0010)
        .unwrap();
    assert_eq!(entry(ex), Resume::RETURN);
    let ex = regs
        .access(0, &CpuAccess::fetch(0x40_1000), 0x40_1000)
        .unwrap();
    assert_eq!(entry(ex), Resume::SET_RESUME_FLAG);
    assert_eq!(rig.hw.hits(w), Ok(1));
    assert_eq!(rig.hw.hits(x), Ok(1));
    let seen = seen.borrow();
    assert_eq!((seen[0].handle, seen[0].addr), (w, 0x2000));
    assert_eq!((seen[1].handle, seen[1].access), (x, Access::EXEC));
    assert_eq!(rig.hw.stray(0), 0);
}
