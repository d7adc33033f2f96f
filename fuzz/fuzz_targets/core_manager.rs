//! The manager driven by arbitrary operation sequences on the mock backend:
//! nothing panics, and the constraint table never promises more registers
//! than a CPU has.
#![no_main]

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{BpType, Handle, Manager, Pool, TaskId};
use hwbp_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let cfg = match b.u8() % 3 {
        0 => MockConfig::X86_LIKE,
        1 => MockConfig::ARM_LIKE,
        _ => MockConfig::SH_LIKE,
    };
    let hw: Box<Manager<Mock, (), 4, 8, 4>> = Box::new(Manager::new(Mock::new(cfg), ()));
    let _ = hw.init(u16::from(b.u8() % 6));
    let mut handles: Vec<Handle> = Vec::new();
    while !b.is_empty() {
        let cpu = u16::from(b.u8() % 6);
        let pick = usize::from(b.u8());
        let h = (!handles.is_empty()).then(|| handles[pick % handles.len()]);
        match b.u8() % 16 {
            0..=3 => {
                if let Ok(r) = hw.register(&b.attr()) {
                    handles.push(r.handle);
                    for c in r.sync.iter() {
                        let _ = hw.sync(c);
                    }
                }
            }
            4 => drop(h.map(|h| hw.unregister(h))),
            5 => drop(h.map(|h| hw.modify(h, &b.attr()))),
            6 => drop(h.map(|h| hw.enable(h))),
            7 => drop(h.map(|h| hw.disable(h))),
            8 => drop(hw.fork(TaskId(u64::from(b.u8() % 6)), TaskId(u64::from(b.u8() % 6)))),
            9 => drop(hw.exit(TaskId(u64::from(b.u8() % 6)))),
            10 => drop(hw.cpu_online(cpu)),
            11 => drop(hw.cpu_offline(cpu)),
            12 => drop(hw.reserve(
                cpu,
                if b.bool() { BpType::Inst } else { BpType::Data },
                b.u8() % 6,
            )),
            13 => drop(hw.unreserve(cpu, if b.bool() { BpType::Inst } else { BpType::Data })),
            14 => {
                let task = b.bool().then(|| TaskId(u64::from(b.u8() % 6)));
                let _ = hw.sched_out(cpu);
                let _ = hw.sched_in(cpu, task);
                let _ = hw.rotate(cpu);
            }
            _ => {
                let (addr, len, kind) = (b.u64() % 0x2000, b.small_u64(), b.u8());
                let _ = hw.access(cpu, addr, len, hwbp_core::Access::from_bits_retain(kind), 0);
            }
        }
        if let Ok(t) = hw.inspect_table(Clone::clone) {
            for c in 0..t.nr_cpus() {
                for p in 0..2u8 {
                    assert!(t.worst_case(c, Pool(p)) <= u16::from(t.counts().slots(Pool(p))));
                }
            }
        }
        assert_eq!(hw.arch().desync(), 0);
    }
});
