//! Issue 3: the README's bad-input table, one test per row that the generic
//! layer decides (rows decided by an architecture backend are tested in that
//! backend's crate; the README's table names each test). Every test asserts the
//! exact `Error` and that the refusal changed nothing observable.

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{
    Access, BpType, BreakpointAttr, ConstraintTable, Error, Handle, Image, Manager, Target, TaskId,
};

type Hw = Manager<Mock, (), 2, 4, 2>;

fn hw(cfg: MockConfig) -> Box<Hw> {
    let hw: Box<Hw> = Box::new(Manager::new(Mock::new(cfg), ()));
    hw.init(2).unwrap();
    hw.cpu_online(0).unwrap();
    hw.cpu_online(1).unwrap();
    hw
}

/// `f` must be refused with `want` and leave table, events and registers as
/// they were.
fn refused<T: std::fmt::Debug>(hw: &Hw, want: Error, f: impl FnOnce(&Hw) -> Result<T, Error>) {
    let (table, len) = (hw.inspect_table(Clone::clone).unwrap(), hw.len());
    let images: Vec<Image<_>> = (0..2).map(|c| hw.image(c).unwrap()).collect();
    assert_eq!(f(hw).unwrap_err(), want);
    assert_eq!(
        hw.inspect_table(Clone::clone).unwrap(),
        table,
        "{want:?} changed the table"
    );
    assert_eq!(hw.len(), len);
    for (c, img) in images.iter().enumerate() {
        assert_eq!(&hw.image(c as u16).unwrap(), img);
    }
}

fn w(addr: u64, len: u64) -> BreakpointAttr {
    BreakpointAttr::watch(addr, len, Access::WRITE)
}

#[test]
fn bad_input_exec_combined_with_data_access() {
    let hw = hw(MockConfig::X86_LIKE);
    for access in [
        Access::EXEC | Access::READ,
        Access::EXEC | Access::WRITE,
        Access::all(),
    ] {
        let a = BreakpointAttr::watch(0x1000, 1, access);
        refused(&hw, Error::ExecWithData, |hw| hw.register(&a));
    }
}

#[test]
fn bad_input_unsupported_length() {
    // The mock, like x86, Arm and SH, only has 1-byte instruction breakpoints.
    let hw = hw(MockConfig::X86_LIKE);
    let a = BreakpointAttr::exec(0x1000).len(4);
    refused(&hw, Error::UnsupportedLength { len: 4 }, |hw| {
        hw.register(&a)
    });
}

#[test]
fn bad_input_kernel_address_from_user_request() {
    let hw = hw(MockConfig::X86_LIKE);
    let base = MockConfig::X86_LIKE.kernel_base;
    // Entirely in kernel space, and straddling the boundary.
    for a in [w(base, 4).user_only(), w(base - 2, 4).user_only()] {
        refused(&hw, Error::KernelAddress, |hw| hw.register(&a));
    }
    // The same address without `exclude_kernel` is a kernel watchpoint: fine.
    assert!(hw.register(&w(base, 4)).is_ok());
}

#[test]
fn bad_input_range_too_large() {
    let hw = hw(MockConfig::X86_LIKE);
    // 1 + 2 + 4 + 4 + 2 + 1 bytes: six registers, the hardware has four.
    refused(
        &hw,
        Error::RangeTooLarge {
            weight: 6,
            slots: 4,
        },
        |hw| hw.register(&w(0x2001, 14)),
    );
    // More pieces than any encoding can hold.
    refused(
        &hw,
        Error::RangeTooLarge {
            weight: u8::MAX,
            slots: 4,
        },
        |hw| hw.register(&w(0x2000, 1 << 20)),
    );
    let hw = hw_arm();
    refused(
        &hw,
        Error::RangeTooLarge {
            weight: 5,
            slots: 4,
        },
        |hw| hw.register(&w(0x2000, 40)),
    );
}

fn hw_arm() -> Box<Hw> {
    hw(MockConfig::ARM_LIKE)
}

#[test]
fn bad_input_cpu_out_of_range() {
    let hw = hw(MockConfig::X86_LIKE);
    let cpu = |c| Error::CpuOutOfRange { cpu: c };
    refused(&hw, cpu(2), |hw| {
        hw.register(&w(0x1000, 4).target(Target::Cpu(2)))
    });
    refused(&hw, cpu(9), |hw| {
        hw.register(&w(0x1000, 4).target(Target::Task {
            task: TaskId(1),
            cpu: Some(9),
        }))
    });
    refused(&hw, cpu(2), |hw| hw.cpu_online(2));
    refused(&hw, cpu(2), |hw| hw.cpu_offline(2));
    refused(&hw, cpu(u16::MAX), |hw| hw.sched_in(u16::MAX, None));
    refused(&hw, cpu(2), |hw| hw.sched_out(2));
    refused(&hw, cpu(2), |hw| hw.sync(2));
    refused(&hw, cpu(2), |hw| hw.rotate(2));
    refused(&hw, cpu(2), |hw| hw.image(2));
    refused(&hw, cpu(2), |hw| hw.reserve(2, BpType::Data, 1));
    let h = hw.register(&w(0x1000, 4)).unwrap().handle;
    refused(&hw, cpu(2), |hw| hw.slots_on(h, 2));
    refused(&hw, cpu(3), |hw| {
        hw.modify(h, &w(0x1000, 4).target(Target::Cpu(3)))
    });
    refused(&hw, cpu(2), |hw| hw.unreserve(2, BpType::Data));
    // More CPUs than the manager was built for.
    let fresh: Box<Hw> = Box::new(Manager::new(Mock::new(MockConfig::X86_LIKE), ()));
    assert_eq!(fresh.init(3), Err(cpu(3)));
    assert_eq!(fresh.init(0), Err(cpu(0)));
}

#[test]
fn bad_input_capacity_exhausted_slots() {
    let hw = hw(MockConfig::X86_LIKE);
    // Two 8-byte-aligned 16-byte regions: 2 + 2 registers of CPU 0's four.
    let _ = hw.register(&w(0x1000, 16).target(Target::Cpu(0))).unwrap();
    let _ = hw.register(&w(0x2000, 16).target(Target::Cpu(0))).unwrap();
    refused(&hw, Error::NoSlot { cpu: 0 }, |hw| {
        hw.register(&w(0x3000, 1).target(Target::Cpu(0)))
    });
    // All CPUs: refused naming the first CPU where it does not fit; CPU 1 alone
    // still has room.
    refused(&hw, Error::NoSlot { cpu: 0 }, |hw| {
        hw.register(&w(0x3000, 1).target(Target::AllCpus))
    });
    let _ = hw.register(&w(0x3000, 1).target(Target::Cpu(1))).unwrap();
    // A debugger reservation cannot take promised registers.
    refused(&hw, Error::NoSlot { cpu: 0 }, |hw| {
        hw.reserve(0, BpType::Data, 1)
    });
}

#[test]
fn bad_input_capacity_exhausted_events() {
    let hw = hw(MockConfig::ARM_LIKE);
    for i in 0..4 {
        let _ = hw.register(&w(0x1000 + 8 * i, 1).flexible()).unwrap();
    }
    refused(&hw, Error::TooManyEvents, |hw| hw.register(&w(0x2000, 1)));
}

#[test]
fn bad_input_capacity_exhausted_tasks() {
    let hw = hw(MockConfig::ARM_LIKE);
    let t = |n| Target::Task {
        task: TaskId(n),
        cpu: None,
    };
    let _ = hw.register(&w(0x1000, 1).target(t(1))).unwrap();
    let _ = hw.register(&w(0x1000, 1).target(t(2))).unwrap();
    refused(&hw, Error::TooManyTasks, |hw| {
        hw.register(&w(0x1000, 1).target(t(3)))
    });
    // A task that already holds pinned breakpoints can still add more, and a
    // flexible request does not take a task entry.
    let _ = hw.register(&w(0x1008, 1).target(t(1))).unwrap();
    let _ = hw.register(&w(0x1000, 1).target(t(3)).flexible()).unwrap();
}

#[test]
fn bad_input_stale_handle() {
    let hw = hw(MockConfig::X86_LIKE);
    let old = hw.register(&w(0x1000, 4)).unwrap().handle;
    let _ = hw.unregister(old).unwrap();
    // The storage is reused by a new breakpoint; the old handle still fails.
    let new = hw.register(&w(0x2000, 4)).unwrap().handle;
    assert_eq!(new.index(), old.index());
    refused(&hw, Error::StaleHandle, |hw| hw.unregister(old));
    refused(&hw, Error::StaleHandle, |hw| hw.enable(old));
    refused(&hw, Error::StaleHandle, |hw| hw.disable(old));
    refused(&hw, Error::StaleHandle, |hw| hw.modify(old, &w(0x3000, 4)));
    refused(&hw, Error::StaleHandle, |hw| hw.hits(old));
    refused(&hw, Error::StaleHandle, |hw| hw.times(old));
    refused(&hw, Error::StaleHandle, |hw| hw.attr(old));
    refused(&hw, Error::StaleHandle, |hw| hw.slots_on(old, 0));
    assert_eq!(hw.attr(new).unwrap().addr, 0x2000);
    // A handle from another manager with more storage than this one.
    let big: Box<Manager<Mock, (), 1, 16, 2>> =
        Box::new(Manager::new(Mock::new(MockConfig::X86_LIKE), ()));
    big.init(1).unwrap();
    let mut foreign: Option<Handle> = None;
    for i in 0..10 {
        foreign = Some(
            big.register(&w(0x1000 + 8 * i, 1).flexible())
                .unwrap()
                .handle,
        );
    }
    refused(&hw, Error::StaleHandle, |hw| {
        hw.unregister(foreign.unwrap())
    });
}

#[test]
fn bad_input_no_debug_hardware() {
    // The backend reports no registers (in hardware terms: a debug
    // architecture the backend does not know reports none it can use).
    for counts in [
        hwbp_core::SlotCounts::Shared(0),
        hwbp_core::SlotCounts::Separate { inst: 0, data: 2 },
        hwbp_core::SlotCounts::Shared(17),
    ] {
        let cfg = MockConfig {
            counts,
            ..MockConfig::X86_LIKE
        };
        let hw: Box<Hw> = Box::new(Manager::new(Mock::new(cfg), ()));
        assert_eq!(
            hw.init(1),
            Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
        );
        assert_eq!(
            hw.register(&w(0x1000, 4)).unwrap_err(),
            Error::NotInitialized
        );
        assert_eq!(
            ConstraintTable::<1, 2>::new(counts, 1),
            Err(Error::Hardware(hwbp_core::HardwareError::NoDebugHardware))
        );
    }
}

#[test]
fn bad_input_generic_attr_rules() {
    let hw = hw(MockConfig::X86_LIKE);
    let cases = [
        (w(0x1000, 0), Error::ZeroLength),
        (w(u64::MAX, 2), Error::AddressOverflow),
        (
            BreakpointAttr::watch(0x1000, 4, Access::empty()),
            Error::NoAccess,
        ),
        (
            w(0x1000, 4).exclude_user(true).exclude_kernel(true),
            Error::ExcludesEverything,
        ),
        (w(0x1000, 4).sample_period(0), Error::ZeroSamplePeriod),
    ];
    for (a, e) in cases {
        refused(&hw, e, |hw| hw.register(&a));
    }
    let uninit: Box<Hw> = Box::new(Manager::new(Mock::new(MockConfig::X86_LIKE), ()));
    assert_eq!(
        uninit.register(&w(0x1000, 4)).unwrap_err(),
        Error::NotInitialized
    );
    assert_eq!(uninit.sched_in(0, None), Err(Error::NotInitialized));
}

#[test]
fn bad_input_reinit_while_breakpoints_exist() {
    let hw = hw(MockConfig::X86_LIKE);
    let h = hw.register(&w(0x1000, 4)).unwrap().handle;
    hw.sync(0).unwrap();
    // Rebuilding the table would orphan the breakpoint's promise.
    refused(&hw, Error::Busy, |hw| hw.init(1));
    assert_eq!(hw.slots_on(h, 0).unwrap().count_ones(), 1);
    assert_eq!(hw.inspect_table(Clone::clone).unwrap().nr_cpus(), 2);
    // Once it is gone, init is allowed again (and takes the CPUs offline).
    let _ = hw.unregister(h).unwrap();
    hw.init(1).unwrap();
    assert_eq!(hw.inspect_table(Clone::clone).unwrap().nr_cpus(), 1);
}

#[test]
fn bad_input_handle_from_another_manager() {
    // Two managers of the same shape: their first breakpoints sit at the
    // same index with the same generation, so only the manager identity
    // tells the handles apart.
    let a = hw(MockConfig::X86_LIKE);
    let b = hw(MockConfig::X86_LIKE);
    let ha = a.register(&w(0x1000, 4)).unwrap().handle;
    let hb = b.register(&w(0x2000, 4)).unwrap().handle;
    assert_eq!(ha.index(), hb.index());
    refused(&b, Error::StaleHandle, |b| b.attr(ha));
    refused(&b, Error::StaleHandle, |b| b.hits(ha));
    refused(&b, Error::StaleHandle, |b| b.times(ha));
    refused(&b, Error::StaleHandle, |b| b.weight(ha));
    refused(&b, Error::StaleHandle, |b| b.slots_on(ha, 0));
    refused(&b, Error::StaleHandle, |b| b.enable(ha));
    refused(&b, Error::StaleHandle, |b| b.disable(ha));
    refused(&b, Error::StaleHandle, |b| b.modify(ha, &w(0x3000, 4)));
    refused(&b, Error::StaleHandle, |b| b.unregister(ha));
    // Each handle still works on its own manager.
    assert_eq!(b.attr(hb).unwrap().addr, 0x2000);
    assert_eq!(a.attr(ha).unwrap().addr, 0x1000);
    assert_ne!(ha, hb);
}
