//! The debug-exception path fed arbitrary raw exceptions (any fired pool,
//! slot mask, address, access kind, CPU) on a manager with breakpoints
//! installed: nothing panics and a "nothing fired" report is never ours.
#![no_main]

use hwbp_core::mock::{Mock, MockConfig, MockException};
use hwbp_core::{Access, BreakpointAttr, Fired, Manager, Pool, Resume, Sample, Target};
use hwbp_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

fn check(s: &Sample) {
    assert!(s.hits > 0);
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let cfg = match b.u8() % 3 {
        0 => MockConfig::X86_LIKE,
        1 => MockConfig::ARM_LIKE,
        _ => MockConfig::SH_LIKE,
    };
    let hw: Box<Manager<Mock, fn(&Sample), 2, 8, 2>> =
        Box::new(Manager::new(Mock::new(cfg), check as fn(&Sample)));
    hw.init(2).unwrap();
    for c in 0..2 {
        hw.cpu_online(c).unwrap();
    }
    for i in 0..u64::from(b.u8() % 4) {
        let a = BreakpointAttr::watch(0x1000 + 16 * i, 1 + u64::from(b.u8() % 8), Access::RW)
            .target(Target::AllCpus);
        let _ = hw.register(&a);
    }
    let _ = hw.register(&BreakpointAttr::exec(0x4000).flexible());
    for c in 0..2 {
        hw.sync(c).unwrap();
    }
    while !b.is_empty() {
        let fired = match b.u8() % 4 {
            0 => Fired::None,
            1 => Fired::Slots {
                pool: Pool(b.u8()),
                mask: b.u32() as _,
            },
            2 => Fired::ByAddress { pool: Pool(b.u8()) },
            _ => Fired::Unattributed { pool: Pool(b.u8()) },
        };
        let e = MockException {
            fired,
            addr: if b.bool() {
                b.u64()
            } else {
                0x1000 + u64::from(b.u8())
            },
            ip: b.u64(),
            access: Access::from_bits_retain(b.u8()),
        };
        let r = hw.handle_exception(u16::from(b.u8() % 4), &e);
        if e.fired == Fired::None {
            assert_eq!(r, Resume::NOT_OURS);
        }
    }
});
