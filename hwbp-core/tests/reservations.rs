//! Debugger reservations at dispatch time: a hit on a register the debugger
//! holds is handed on to it (never swallowed, never credited to one of ours),
//! and a reservation takes effect in dispatch when the CPU is synced, as it
//! does in the hardware.

use hwbp_core::mock::{Mock, MockConfig, MockException, MockSlot};
use hwbp_core::{Access, Arch, BpType, BreakpointAttr, Fired, Manager, Pool, Resume, Target};

type Hw = Manager<Mock, (), 2, 8, 2>;

fn hw(cfg: MockConfig) -> Box<Hw> {
    let hw = Box::new(Manager::new(Mock::new(cfg), ()));
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    hw
}

/// The debugger writes its own register through the backend.
fn debugger_programs(hw: &Hw, pool: usize, slot: usize, v: MockSlot) {
    let cur = hw.image(0).unwrap();
    let mut with = cur.clone();
    with.pools[pool][slot] = v;
    hw.arch().install(0, &(), &cur, &with);
}

/// The debugger's write watchpoint.
const WATCH_9000: MockSlot = MockSlot {
    addr: 0x9000,
    len: 4,
    access: Access::WRITE,
};

fn on_cpu0(a: BreakpointAttr) -> BreakpointAttr {
    a.target(Target::Cpu(0))
}

#[test]
fn a_debugger_breakpoint_on_our_instruction_is_handed_on_with_the_resume_flag() {
    let hw = hw(MockConfig::X86_LIKE);
    hw.reserve(0, BpType::Inst, 1).unwrap();
    hw.sync(0).unwrap();
    let exec = |addr| MockSlot {
        addr,
        len: 1,
        access: Access::EXEC,
    };
    debugger_programs(&hw, 0, 3, exec(0x4000));
    let ours = hw
        .register(&on_cpu0(BreakpointAttr::exec(0x4000)))
        .unwrap()
        .handle;
    hw.sync(0).unwrap();
    assert_eq!(
        hw.access(0, 0x4000, 1, Access::EXEC, 0x4000),
        Some(Resume::SET_RESUME_FLAG.and_pass_on())
    );
    assert_eq!(hw.hits(ours), Ok(1));
    // The debugger's alone: wholly its own, RF is its decision.
    debugger_programs(&hw, 0, 3, exec(0x5000));
    assert_eq!(
        hw.access(0, 0x5000, 1, Access::EXEC, 0x5000),
        Some(Resume::NOT_OURS)
    );
    assert_eq!((hw.hits(ours), hw.stray(0)), (Ok(1), 0));
}

#[test]
fn on_address_only_hardware_a_hit_no_breakpoint_of_ours_contains_is_handed_on() {
    let hw = hw(MockConfig::ARM_LIKE);
    hw.reserve(0, BpType::Data, 1).unwrap();
    hw.sync(0).unwrap();
    debugger_programs(&hw, 1, 3, WATCH_9000);
    let ours = hw
        .register(&on_cpu0(BreakpointAttr::watch(0x1000, 4, Access::WRITE)))
        .unwrap()
        .handle;
    hw.sync(0).unwrap();
    assert_eq!(
        hw.access(0, 0x9000, 4, Access::WRITE, 0x4000),
        Some(Resume::NOT_OURS)
    );
    assert_eq!((hw.hits(ours), hw.stray(0)), (Ok(0), 0), "not guessed");
    // Ours still is ours.
    assert_eq!(
        hw.access(0, 0x1000, 4, Access::WRITE, 0x4000),
        Some(Resume::RETURN)
    );
    assert_eq!(hw.hits(ours), Ok(1));
    // Without an address, the sole candidate of ours may not be the one.
    let unknown = MockException {
        fired: Fired::Unattributed { pool: Pool(1) },
        addr: 0,
        ip: 0x4000,
        access: Access::WRITE,
    };
    assert_eq!(hw.handle_exception(0, &unknown), Resume::NOT_OURS);
    assert_eq!(hw.hits(ours), Ok(1));
}

#[test]
fn a_reservation_takes_effect_in_dispatch_at_the_sync() {
    let hw = hw(MockConfig::X86_LIKE);
    let handles: Vec<_> = [0x1000u64, 0x2000, 0x3000, 0x5000]
        .iter()
        .map(|&a| {
            hw.register(&on_cpu0(BreakpointAttr::watch(a, 4, Access::WRITE)).flexible())
                .unwrap()
                .handle
        })
        .collect();
    hw.sync(0).unwrap();
    let in3 = *handles
        .iter()
        .find(|h| hw.slots_on(**h, 0).unwrap() == 0b1000)
        .unwrap();
    let addr = hw.attr(in3).unwrap().addr;
    // Reserved, not yet synced: slot 3 is still ours in the hardware.
    hw.reserve(0, BpType::Data, 1).unwrap();
    assert_eq!(
        hw.access(0, addr, 4, Access::WRITE, 0x4000),
        Some(Resume::RETURN)
    );
    assert_eq!(hw.hits(in3), Ok(1));
    // Synced: slot 3 is the debugger's now.
    hw.sync(0).unwrap();
    assert_eq!(hw.slots_on(in3, 0), Ok(0));
    debugger_programs(&hw, 0, 3, WATCH_9000);
    assert_eq!(
        hw.access(0, 0x9000, 4, Access::WRITE, 0x4000),
        Some(Resume::NOT_OURS)
    );
    // Given back (the debugger clears its register first) and synced: ours again.
    let mut programmed = hw.image(0).unwrap();
    programmed.pools[0][3] = WATCH_9000;
    hw.arch()
        .install(0, &(), &programmed, &hw.image(0).unwrap());
    hw.unreserve(0, BpType::Data).unwrap();
    hw.sync(0).unwrap();
    assert!(handles
        .iter()
        .any(|h| hw.slots_on(*h, 0).unwrap() & 0b1000 != 0));
    assert_eq!(hw.arch().desync(), 0);
}
