//! The adapter on hwbp-core's mock backend: GDB's requests become pinned
//! hwbp requests (or live in the debugger's reservation), "no slot" is a
//! clean refusal that changes nothing, hits become GDB stops, removal is
//! exact.

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{Access, BpType, Error, Manager, Pool, Resume, Target};
use hwbp_gdbstub::{GdbBreakpoints, HitLatch, Kind, Placement, Request, Stop, WatchKind};

type Hw = Manager<Mock, &'static HitLatch<2>, 2, 16, 4>;

fn watch(kind: WatchKind, addr: u64, len: u64) -> Request {
    Request {
        kind: Kind::Watch(kind),
        addr,
        len,
    }
}

fn hbreak(addr: u64) -> Request {
    Request {
        kind: Kind::Exec,
        addr,
        len: 0,
    }
}

/// A leaked manager (so the adapter can borrow it for 'static), up on 2 CPUs.
fn manager(cfg: MockConfig) -> (&'static Hw, &'static HitLatch<2>) {
    let latch: &'static HitLatch<2> = Box::leak(Box::new(HitLatch::new()));
    let hw: &'static Hw = Box::leak(Box::new(Manager::new(Mock::new(cfg), latch)));
    hw.init(2).unwrap();
    hw.cpu_online(0).unwrap();
    hw.cpu_online(1).unwrap();
    (hw, latch)
}

fn sync_all(bps: &GdbBreakpoints<'_, Mock, &'static HitLatch<2>, 2, 16, 4, 8>) {
    for cpu in bps.take_sync() {
        bps.sync(cpu).unwrap();
    }
}

#[test]
fn requests_become_pinned_all_cpu_breakpoints_and_hits_become_stops() {
    let (hw, latch) = manager(MockConfig::X86_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    assert_eq!(bps.placement(), Placement::Managed);
    bps.add(watch(WatchKind::Write, 0x1000, 4)).unwrap();
    bps.add(hbreak(0x40_0000)).unwrap();
    assert_eq!(hw.len(), 2);
    sync_all(&bps);
    // On both CPUs.
    for cpu in 0..2 {
        assert_eq!(
            hw.access(cpu, 0x1002, 2, Access::WRITE, 0x40_0010),
            Some(Resume::RETURN)
        );
        let s = latch.take(cpu).expect("sample");
        assert_eq!(
            bps.stop_for(&s),
            Some(Stop::Watch {
                kind: WatchKind::Write,
                addr: 0x1002
            })
        );
    }
    assert!(hw
        .access(0, 0x40_0000, 1, Access::EXEC, 0x40_0000)
        .is_some());
    assert_eq!(bps.stop_for(&latch.take(0).unwrap()), Some(Stop::HwBreak));
    // A read does not stop a write watchpoint.
    assert!(hw.access(0, 0x1000, 4, Access::READ, 0).is_none());
}

#[test]
fn one_more_than_the_hardware_has_is_refused_and_nothing_changes() {
    let (hw, latch) = manager(MockConfig::X86_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    for n in 0..4 {
        bps.add(watch(WatchKind::Write, 0x1000 + 8 * n, 8)).unwrap();
    }
    sync_all(&bps);
    let fifth = watch(WatchKind::ReadWrite, 0x2000, 4);
    assert_eq!(bps.add(fifth), Err(Error::NoSlot { cpu: 0 }));
    assert_eq!(bps.requests().len(), 4);
    assert_eq!(hw.len(), 4);
    assert_eq!(
        bps.take_sync().count(),
        0,
        "nothing to sync after a refusal"
    );
    // Debugging goes on: the four still fire, and after a delete the fifth fits.
    assert!(hw.access(0, 0x1018, 8, Access::WRITE, 0).is_some());
    assert_eq!(
        bps.stop_for(&latch.take(0).unwrap()),
        Some(Stop::Watch {
            kind: WatchKind::Write,
            addr: 0x1018
        })
    );
    bps.remove(watch(WatchKind::Write, 0x1008, 8)).unwrap();
    bps.add(fifth).unwrap();
    sync_all(&bps);
    assert!(hw.access(1, 0x2000, 1, Access::READ, 0).is_some());
    assert_eq!(
        bps.stop_for(&latch.take(1).unwrap()),
        Some(Stop::Watch {
            kind: WatchKind::ReadWrite,
            addr: 0x2000
        })
    );
}

#[test]
fn a_split_region_is_one_watchpoint_reported_against_gdbs_address() {
    let (hw, latch) = manager(MockConfig::X86_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    // 6 bytes at 0x1003: three registers.
    bps.add(watch(WatchKind::ReadWrite, 0x1003, 6)).unwrap();
    sync_all(&bps);
    assert_eq!(
        hw.access(0, 0x1006, 4, Access::WRITE, 0),
        Some(Resume::RETURN)
    );
    let s = latch.take(0).unwrap();
    assert_eq!(hw.hits(s.handle), Ok(1), "one hit across two registers");
    match bps.stop_for(&s) {
        Some(Stop::Watch { kind, addr }) => {
            assert_eq!(kind, WatchKind::ReadWrite);
            assert!((0x1003..0x1009).contains(&addr), "{addr:#x}");
        }
        other => panic!("{other:?}"),
    }
    // Three registers were used: a fourth 6-byte region does not fit, a
    // 1-byte one does.
    assert!(bps.add(watch(WatchKind::Write, 0x3003, 6)).is_err());
    bps.add(watch(WatchKind::Write, 0x3000, 1)).unwrap();
}

#[test]
fn removal_is_exact() {
    let (hw, _) = manager(MockConfig::X86_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    bps.add(watch(WatchKind::Write, 0x1000, 4)).unwrap();
    bps.add(watch(WatchKind::Read, 0x1000, 4)).unwrap();
    // Wrong kind, address or length: refused, nothing touched.
    for wrong in [
        watch(WatchKind::ReadWrite, 0x1000, 4),
        watch(WatchKind::Write, 0x1001, 4),
        watch(WatchKind::Write, 0x1000, 2),
        hbreak(0x1000),
    ] {
        assert_eq!(bps.remove(wrong), Err(Error::StaleHandle), "{wrong:?}");
    }
    assert_eq!(hw.len(), 2);
    bps.remove(watch(WatchKind::Read, 0x1000, 4)).unwrap();
    assert_eq!(
        bps.requests().as_slice(),
        &[watch(WatchKind::Write, 0x1000, 4)]
    );
    assert_eq!(hw.len(), 1);
    bps.clear();
    assert_eq!(hw.len(), 0);
}

#[test]
fn a_stub_bound_to_one_cpu_registers_there() {
    let (hw, _) = manager(MockConfig::X86_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    bps.set_target(Target::Cpu(1)).unwrap();
    bps.add(watch(WatchKind::Write, 0x1000, 4)).unwrap();
    assert_eq!(bps.take_sync().collect::<Vec<_>>(), [1]);
    bps.sync(1).unwrap();
    assert!(hw.access(0, 0x1000, 4, Access::WRITE, 0).is_none());
    assert!(hw.access(1, 0x1000, 4, Access::WRITE, 0).is_some());
    assert_eq!(bps.set_target(Target::AllCpus), Err(Error::Busy));
}

#[test]
fn with_a_reservation_requests_live_in_the_debuggers_registers() {
    let (hw, latch) = manager(MockConfig::X86_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    // The system's own breakpoint, then two registers for the debugger.
    let own = hw
        .register(
            &hwbp_core::BreakpointAttr::watch(0x9000, 8, Access::WRITE).target(Target::AllCpus),
        )
        .unwrap();
    let mut res = Vec::new();
    for cpu in 0..2 {
        res.push(hw.reserve(cpu, BpType::Data, 2).unwrap());
        hw.sync(cpu).unwrap();
    }
    bps.use_reservation(&res[..1]).unwrap();
    assert_eq!(bps.placement(), Placement::Reserved);
    bps.add(watch(WatchKind::Write, 0x1000, 4)).unwrap();
    bps.add(hbreak(0x40_0000)).unwrap();
    assert_eq!(hw.len(), 1, "nothing registered with the manager");
    // Full: the reservation has two registers.
    assert_eq!(
        bps.add(watch(WatchKind::Write, 0x2000, 1)),
        Err(Error::NoSlot { cpu: 0 })
    );
    assert_eq!(
        bps.add(watch(WatchKind::Write, 0x2003, 6)),
        Err(Error::RangeTooLarge {
            weight: 3,
            slots: 2
        })
    );
    sync_all(&bps);
    // In the reserved slots (2 and 3) of both CPUs, beside the system's slot 0.
    for cpu in 0..2 {
        assert_eq!(hw.arch().register(cpu, Pool(0), 2).unwrap().addr, 0x1000);
        assert_eq!(hw.arch().register(cpu, Pool(0), 3).unwrap().addr, 0x40_0000);
        assert_eq!(hw.arch().register(cpu, Pool(0), 0).unwrap().addr, 0x9000);
    }
    // A hit there is the debugger's: passed on, named by slot.
    assert_eq!(
        hw.access(1, 0x1000, 4, Access::WRITE, 0),
        Some(Resume::NOT_OURS)
    );
    assert!(latch.take(1).is_none());
    let (pool, mask) = hw.arch().matching(1, 0x1000, 4, Access::WRITE);
    assert_eq!(
        bps.stop_for_slots(pool, mask, Some(0x1000)),
        Some(Stop::Watch {
            kind: WatchKind::Write,
            addr: 0x1000
        })
    );
    assert_eq!(
        bps.stop_for_address(BpType::Inst, 0x40_0000),
        Some(Stop::HwBreak)
    );
    // The system's breakpoint is untouched and still its own.
    assert_eq!(
        hw.access(0, 0x9000, 1, Access::WRITE, 0),
        Some(Resume::RETURN)
    );
    assert_eq!(hw.hits(own.handle), Ok(1));
    // Removal clears exactly the request's registers.
    bps.remove(watch(WatchKind::Write, 0x1000, 4)).unwrap();
    sync_all(&bps);
    assert_eq!(hw.arch().register(0, Pool(0), 2).unwrap().len, 0);
    assert_eq!(hw.arch().register(0, Pool(0), 3).unwrap().addr, 0x40_0000);
    assert_eq!(bps.stop_using_reservation(), Err(Error::Busy));
    bps.clear();
    sync_all(&bps);
    bps.stop_using_reservation().unwrap();
    for cpu in 0..2 {
        hw.unreserve(cpu, BpType::Data).unwrap();
    }
}

#[test]
fn bad_reservations_are_refused() {
    let (hw, _) = manager(MockConfig::ARM_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    assert_eq!(bps.use_reservation(&[]), Err(Error::NotReserved));
    let r = hw.reserve(0, BpType::Data, 1).unwrap();
    let too_far = hwbp_core::Reservation::new(r.pool, 4, r.count);
    assert_eq!(bps.use_reservation(&[too_far]), Err(Error::NotReserved));
    assert_eq!(bps.placement(), Placement::Managed);
}

#[test]
fn arm_like_reserved_hits_are_matched_by_address() {
    let (hw, _) = manager(MockConfig::ARM_LIKE);
    let bps: GdbBreakpoints<'_, _, _, 2, 16, 4, 8> = GdbBreakpoints::new(hw);
    let mut res = Vec::new();
    for (cpu, ty) in [
        (0, BpType::Data),
        (0, BpType::Inst),
        (1, BpType::Data),
        (1, BpType::Inst),
    ] {
        let r = hw.reserve(cpu, ty, 1).unwrap();
        if cpu == 0 {
            res.push(r);
        }
    }
    bps.use_reservation(&res).unwrap();
    bps.add(watch(WatchKind::Read, 0x1000, 8)).unwrap();
    bps.add(hbreak(0x40_0000)).unwrap();
    sync_all(&bps);
    assert_eq!(
        hw.access(0, 0x1004, 4, Access::READ, 0),
        Some(Resume::NOT_OURS)
    );
    assert_eq!(
        bps.stop_for_address(BpType::Data, 0x1004),
        Some(Stop::Watch {
            kind: WatchKind::Read,
            addr: 0x1004
        })
    );
    assert_eq!(
        bps.stop_for_address(BpType::Inst, 0x40_0000),
        Some(Stop::HwBreak)
    );
}
