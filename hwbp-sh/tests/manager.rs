//! End to end through the core manager: register through `hwbp_core::Manager`,
//! let it install through `ShBackend` into the register file, simulate the
//! access in the UBC model, hand the exception to `Manager::handle_exception`
//! and check the handler ran (or did not).

mod common;

use std::cell::RefCell;

use common::*;
use hwbp_core::{Access, BreakpointAttr, Error, Handler, Manager, Resume, Sample, Target};
use hwbp_sh::model::{BusCycle, Model};
use hwbp_sh::{sh4a, ShException, Variant};

#[derive(Default)]
struct Log(RefCell<Vec<Sample>>);

impl Handler for &Log {
    fn on_sample(&self, s: &Sample) {
        self.0.borrow_mut().push(*s);
    }
}

fn manager<'a>(r: &'a Model, log: &'a Log) -> Manager<Ubc<'a>, &'a Log, 1, 8, 4> {
    let hw = Manager::new(backend(r).ubc, log);
    hw.init(1).unwrap();
    hw.cpu_online(0).unwrap();
    hw
}

fn sync(hw: &Manager<Ubc<'_>, &Log, 1, 8, 4>, set: hwbp_core::CpuSet) {
    for cpu in set.iter() {
        hw.sync(cpu).unwrap();
    }
}

/// Present a bus cycle; if the UBC breaks, run the manager's exception entry.
fn exec(r: &Model, hw: &Manager<Ubc<'_>, &Log, 1, 8, 4>, cycle: BusCycle) -> Option<Resume> {
    let out = r.cycle(cycle, 0);
    if !out.brk {
        return None;
    }
    let data_addr = match cycle {
        BusCycle::Fetch { .. } => None,
        BusCycle::Read { addr, .. } | BusCycle::Write { addr, .. } => Some(addr),
    };
    Some(hw.handle_exception(
        0,
        &ShException {
            expevt: 0x1E0,
            spc: out.spc,
            data_addr,
        },
    ))
}

fn scenario(v: Variant) {
    let r = regs(v);
    let log = Log::default();
    let hw = manager(&r, &log);

    // A write watchpoint: the handler runs on a write, not on a read.
    let w = hw
        .register(&BreakpointAttr::watch(0x0c00_1000, 4, Access::WRITE).target(Target::Cpu(0)))
        .unwrap();
    sync(&hw, w.sync);
    assert_eq!(exec(&r, &hw, read(0x0c00_1000, 4)), None);
    assert_eq!(exec(&r, &hw, write(0x0c00_1000, 4)), Some(Resume::RETURN));
    {
        let l = log.0.borrow();
        assert_eq!(l.len(), 1, "{v:?}");
        assert_eq!(
            (l[0].handle, l[0].addr, l[0].ip),
            (w.handle, 0x0c00_1000, 0x8c00_2002)
        );
        assert_eq!(l[0].access, Access::WRITE);
    }
    assert_eq!(hw.hits(w.handle).unwrap(), 1);

    // An instruction breakpoint (before execution) on the second channel.
    let x = hw.register(&BreakpointAttr::exec(0x8c01_0000)).unwrap();
    sync(&hw, x.sync);
    assert_eq!(
        exec(&r, &hw, BusCycle::Fetch { pc: 0x8c01_0000 }),
        Some(Resume::RETURN)
    );
    assert_eq!(
        log.0.borrow().last().map(|s| (s.handle, s.ip)),
        Some((x.handle, 0x8c01_0000))
    );
    // Re-executing the instruction completes the step-over: no new sample.
    assert_eq!(
        exec(&r, &hw, BusCycle::Fetch { pc: 0x8c01_0000 }),
        Some(Resume::RETURN)
    );
    assert_eq!(log.0.borrow().len(), 2);
    assert_eq!(hw.hits(x.handle).unwrap(), 1);
    // The next time round it hits again.
    exec(&r, &hw, BusCycle::Fetch { pc: 0x8c01_0000 });
    assert_eq!(hw.hits(x.handle).unwrap(), 2);

    // Both channels are pinned: a third pinned breakpoint is refused.
    if v.channels == 2 {
        assert_eq!(
            hw.register(&BreakpointAttr::watch(0x0c00_2000, 1, Access::READ)),
            Err(Error::NoSlot { cpu: 0 })
        );
    }

    // Unregister the watchpoint: until CPU 0 is synced the channel is still
    // armed, and its hit is a stray, not a call into a dead handler.
    let stray = hw.stray(0);
    let set = hw.unregister(w.handle).unwrap();
    let before = log.0.borrow().len();
    exec(&r, &hw, write(0x0c00_1000, 4));
    assert_eq!(log.0.borrow().len(), before);
    assert_eq!(hw.stray(0), stray + 1);
    sync(&hw, set);
    assert_eq!(
        exec(&r, &hw, write(0x0c00_1000, 4)),
        None,
        "channel disabled after sync"
    );
    // A stale flag of a disabled channel is filtered by the backend: no
    // sample, and not even a stray for the core to count.
    let img = hw.image(0).unwrap();
    let free = img.pools[0]
        .iter()
        .position(|s| !s.enabled)
        .expect("a free channel") as u32;
    match v.layout {
        hwbp_sh::Layout::Sh4a => r.poke(sh4a::CCMFR, 1 << free),
        hwbp_sh::Layout::Sh4 => r.poke(
            hwbp_sh::sh4::BRCR,
            r.peek(hwbp_sh::sh4::BRCR) | (0x8000 >> free),
        ),
    }
    let (samples, stray) = (log.0.borrow().len(), hw.stray(0));
    assert_eq!(
        hw.handle_exception(0, &ShException::user_break(0x100)),
        Resume::RETURN
    );
    assert_eq!((log.0.borrow().len(), hw.stray(0)), (samples, stray));
    assert_eq!(r.width_errors(), 0);
}

#[test]
fn sh7750_end_to_end() {
    scenario(sh7750());
}

#[test]
fn sh4a_two_channels_end_to_end() {
    scenario(sh4a(2));
}

#[test]
fn sh4a_four_channels_end_to_end() {
    scenario(sh4a(4));
}

#[test]
fn channel_counts_bound_the_manager() {
    for n in [1u8, 2, 3, 4] {
        let r = regs(sh4a(n));
        let log = Log::default();
        let hw = manager(&r, &log);
        let mut handles = Vec::new();
        for i in 0..n {
            let reg = hw
                .register(&BreakpointAttr::watch(
                    0x5000 + u64::from(i) * 0x10,
                    2,
                    Access::RW,
                ))
                .unwrap();
            sync(&hw, reg.sync);
            handles.push(reg.handle);
        }
        assert_eq!(
            hw.register(&BreakpointAttr::watch(0x6000, 2, Access::RW)),
            Err(Error::NoSlot { cpu: 0 }),
            "{n} channels"
        );
        // A range needing 3 channels fits only where 3 are free.
        for (i, h) in handles.iter().enumerate() {
            exec(&r, &hw, read(0x5000 + i as u32 * 0x10, 2));
            assert_eq!(hw.hits(*h).unwrap(), 1);
        }
        for h in handles {
            sync(&hw, hw.unregister(h).unwrap());
        }
        let range = hw.register(&BreakpointAttr::watch(0x1000, 0x38, Access::READ));
        if n >= 3 {
            let reg = range.unwrap();
            sync(&hw, reg.sync);
            exec(&r, &hw, read(0x1034, 4));
            exec(&r, &hw, read(0x1000, 4));
            assert_eq!(hw.hits(reg.handle).unwrap(), 2);
            assert_eq!(exec(&r, &hw, read(0x1038, 4)), None);
        } else {
            assert_eq!(
                range,
                Err(Error::RangeTooLarge {
                    weight: 3,
                    slots: n
                })
            );
        }
    }
}

#[test]
fn cover_blocks_are_filtered_by_address_when_asked() {
    use hwbp_sh::{BreakTiming, RangePolicy, SizePolicy};
    for filter in [false, true] {
        let r = regs(sh4a(2));
        let log = Log::default();
        let b = backend(&r)
            .with_policies(
                SizePolicy::OperandSize,
                RangePolicy::Cover,
                BreakTiming::Before,
            )
            .filter_by_address(filter);
        let hw: Manager<Ubc<'_>, &Log, 1, 8, 4> = Manager::new(b.ubc, &log);
        hw.init(1).unwrap();
        hw.cpu_online(0).unwrap();
        // 10 bytes at 0x1003: the hardware watches the 16-byte block at 0x1000.
        let reg = hw
            .register(&BreakpointAttr::watch(0x1003, 10, Access::WRITE))
            .unwrap();
        sync(&hw, reg.sync);
        assert_eq!(hw.weight(reg.handle).unwrap(), 1);
        // Inside the request: delivered with the precise address either way.
        exec(&r, &hw, write(0x1004, 4));
        assert_eq!(log.0.borrow().last().map(|s| s.addr), Some(0x1004));
        // Inside the block, outside the request.
        let stray = hw.stray(0);
        assert!(
            exec(&r, &hw, write(0x1000, 2)).is_some(),
            "the hardware matches it"
        );
        if filter {
            assert_eq!(hw.hits(reg.handle).unwrap(), 1);
            assert_eq!(hw.stray(0), stray + 1);
        } else {
            // Channel-exact reporting: the core cannot tell, the hit is delivered.
            assert_eq!(hw.hits(reg.handle).unwrap(), 2);
        }
        // Outside the block: the hardware does not match at all.
        assert_eq!(exec(&r, &hw, write(0x1010, 4)), None);
    }
}

/// The backend is const-constructible (it can sit in a `static` manager, the
/// CPU count written once), and `Manager::init` identifies the part itself: no
/// discovery before `init`.
#[test]
fn static_manager_and_discovery_at_init() {
    // SAFETY: never initialised here, so `Mmio` is never touched; this only
    // shows the type is buildable in a `static`.
    static HW: Manager<hwbp_sh::ShBackend<hwbp_sh::Mmio>, (), 1> =
        Manager::new(unsafe { hwbp_sh::ShBackend::new(hwbp_sh::Mmio) }, ());
    assert_eq!(HW.slot_counts(), Err(Error::NotInitialized));

    // An SH7785 (PVR 0x1030_0700) on the register file: init finds two channels.
    let r = Model::new(sh4a(2), 0x1030_0700, 0);
    // SAFETY: the bus is the in-memory register file, owned here.
    let hw: Manager<Ubc<'_>> = Manager::new(unsafe { hwbp_sh::ShBackend::new(&r) }, ());
    hw.init(1).unwrap();
    assert_eq!(hw.slot_counts(), Ok(hwbp_core::SlotCounts::Shared(2)));
    assert_eq!(hw.arch().variant().part, hwbp_sh::Part::Sh7785);
    hw.cpu_online(0).unwrap();
    // An unknown part is refused at init with the reason.
    let r = Model::new(sh4a(2), 0x1040_0400, 0);
    // SAFETY: as above.
    let hw: Manager<Ubc<'_>> = Manager::new(unsafe { hwbp_sh::ShBackend::new(&r) }, ());
    assert_eq!(
        hw.init(1),
        Err(Error::Hardware(hwbp_core::HardwareError::UnknownPart {
            id: 0x1040_0400
        }))
    );
}
