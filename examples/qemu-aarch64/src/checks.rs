//! The checks of issue 7 for the aarch64 board, run on CPU 0 (and CPU 1 for
//! the all-CPU breakpoint). Every check compares what the real debug hardware
//! (QEMU's emulation of it) did with what was expected.

use board_kit::{check, must, Record, Varies};
use hwbp_core::{Access, BreakpointAttr, Error, Handle, Target};

use crate::probe::{self, addr_of, load64, peek, store64, store8};
use crate::{println, HWBP, REC};

/// Take every sample recorded so far.
fn take() -> heapless::Vec<Record, 64> {
    REC.take()
}

// Watched variables: each in its own doubleword-aligned cell.
#[repr(C, align(64))]
struct Cells([u64; 40]);
static mut CELLS: Cells = Cells([0; 40]);

fn cell(i: usize) -> *mut u64 {
    // SAFETY: only the address is taken; every access goes through the
    // volatile helpers in `probe`.
    unsafe { core::ptr::addr_of_mut!(CELLS.0[i]) }
}

fn on_cpu0(a: BreakpointAttr) -> BreakpointAttr {
    a.target(Target::Cpu(0))
}

/// Resync CPU 0 if the manager says so (CPU 1 is handled by `crate::cpu1`).
fn sync_cpu0(set: hwbp_core::CpuSet) {
    if set.contains(0) {
        must!(HWBP.sync(0));
    }
}

fn unregister(h: Handle) {
    let set = must!(HWBP.unregister(h));
    sync_cpu0(set);
    if set.contains(1) {
        crate::cpu1::sync();
    }
}

/// Step 8, first half: an all-CPU breakpoint registered while CPU 1 is still
/// off. Returns its handle; `all_cpu_fires` finishes the step once CPU 1 is up.
pub fn all_cpu_register() -> Handle {
    let attr = BreakpointAttr::exec(addr_of(probe::shared)).target(Target::AllCpus);
    let reg = must!(HWBP.register(&attr));
    sync_cpu0(reg.sync);
    check!(
        !crate::cpu1::started() && !reg.sync.contains(1),
        "all-CPU breakpoint on shared() at {:#x} registered before CPU 1 is started (no resync asked of it)",
        attr.addr
    );
    reg.handle
}

/// Step 8, second half: CPU 1 came online (`cpu_online(1)`) and got the
/// breakpoint; it fires on both CPUs.
pub fn all_cpu_fires(h: Handle) {
    take();
    probe::shared(1);
    crate::cpu1::call_shared();
    let recs = take();
    let on = |cpu| {
        recs.iter()
            .filter(|r| r.handle == h && r.cpu == cpu)
            .count()
    };
    check!(
        on(0) == 1 && on(1) == 1 && must!(HWBP.hits(h)) == 2,
        "all-CPU breakpoint fired on CPU 0 ({}x) and on CPU 1 ({}x) after CPU 1 came online",
        on(0),
        on(1)
    );
    check!(
        recs.iter()
            .all(|r| r.ip == addr_of(probe::shared) && r.access == Access::EXEC),
        "both samples report ip = shared() and access EXEC"
    );
    unregister(h);
    probe::shared(2);
    crate::cpu1::call_shared();
    let recs = take();
    check!(
        recs.is_empty() && !must!(HWBP.image(1)).pools[0].iter().any(|s| *s != Default::default()),
        "after unregister + resync on CPU 1, neither CPU fires and CPU 1's installed image is empty"
    );
}

/// Step 2: pinned write watchpoint on a static.
pub fn write_watchpoint() {
    let p = cell(0);
    store64(p, 0x1111);
    let reg = must!(HWBP.register(&on_cpu0(BreakpointAttr::watch(p as u64, 8, Access::WRITE))));
    sync_cpu0(reg.sync);
    take();
    let pc = store64(p, 0x2222);
    let recs = take();
    check!(
        recs.len() == 1,
        "pinned write watchpoint on a static: one write, one sample"
    );
    let r = recs[0];
    check!(
        r.handle == reg.handle
            && r.addr == p as u64
            && r.ip == pc
            && r.access.contains(Access::WRITE),
        "sample: addr {:#x} (static at {:#x}), ip {:#x} (str at {:#x}), access {:?}",
        r.addr,
        p as u64,
        r.ip,
        pc,
        r.access
    );
    check!(
        r.value == Some(0x1111) && peek(p) == 0x2222,
        "value: handler saw {:#x} (Arm fires before the store), memory holds {:#x} after step-over",
        r.value.unwrap_or_default(),
        peek(p)
    );
    // A read does not trigger a write watchpoint.
    let _ = load64(p);
    check!(
        take().is_empty() && must!(HWBP.hits(reg.handle)) == 1,
        "a read does not trigger the write watchpoint"
    );
    unregister(reg.handle);
}

/// Step 3: read-write watchpoint caught by a read; instruction breakpoint hit
/// exactly 3 times; sample period 2.
pub fn rw_exec_period() {
    let p = cell(1);
    let reg = must!(HWBP.register(&on_cpu0(BreakpointAttr::watch(p as u64, 8, Access::RW))));
    sync_cpu0(reg.sync);
    take();
    let (_, pc) = load64(p);
    let recs = take();
    check!(
        recs.len() == 1
            && recs[0].ip == pc
            && recs[0].access == Access::READ
            && recs[0].addr == p as u64,
        "read-write watchpoint caught by a read (access {:?}, ip {:#x}, ldr at {:#x})",
        recs.first().map_or(Access::empty(), |r| r.access),
        recs.first().map_or(0, |r| r.ip),
        pc
    );
    unregister(reg.handle);

    let f = addr_of(probe::counted);
    let reg = must!(HWBP.register(&on_cpu0(BreakpointAttr::exec(f))));
    sync_cpu0(reg.sync);
    take();
    let mut acc = 0;
    for i in 0..3 {
        acc += probe::counted(i);
    }
    let recs = take();
    let hits = must!(HWBP.hits(reg.handle));
    check!(
        hits == 3
            && recs.len() == 3
            && recs.iter().all(|r| r.ip == f && r.addr == f)
            && acc == 1 + 4 + 7,
        "instruction breakpoint on counted() called 3 times: {} hits, {} samples, results intact",
        hits,
        recs.len()
    );
    unregister(reg.handle);

    let f = addr_of(probe::sampled);
    let reg = must!(HWBP.register(&on_cpu0(BreakpointAttr::exec(f).sample_period(2))));
    sync_cpu0(reg.sync);
    take();
    for i in 0..5 {
        probe::sampled(i);
    }
    let recs = take();
    let hits = must!(HWBP.hits(reg.handle));
    check!(
        hits == 5 && recs.len() == 2 && recs[0].hits == 2 && recs[1].hits == 4,
        "sample period 2, 5 calls: {} hits counted, handler ran {} times (at hits {} and {})",
        hits,
        recs.len(),
        recs.first().map_or(0, |r| r.hits),
        recs.get(1).map_or(0, |r| r.hits)
    );
    unregister(reg.handle);
}

/// Step 4: regions needing more than one register, caught at each piece and
/// reported against the original region.
pub fn multi_piece() {
    // Unaligned: 8 bytes starting in the middle of a doubleword (bytes 4..8 of
    // cell 3 and 0..4 of cell 4), two DBGWVR doublewords with BAS.
    let base = cell(3) as u64 + 4;
    let attr = on_cpu0(BreakpointAttr::watch(base, 8, Access::WRITE));
    let reg = must!(HWBP.register(&attr));
    sync_cpu0(reg.sync);
    let used = must!(HWBP.image(0)).pools[1]
        .iter()
        .filter(|s| **s != Default::default())
        .count();
    check!(
        used == 2 && must!(HWBP.weight(reg.handle)) == 2,
        "unaligned 8-byte region at {:#x} occupies {} watchpoint registers",
        base,
        used
    );
    take();
    store8(base as *mut u8, 1);
    store8((base + 7) as *mut u8, 2);
    // Outside the region, inside the same doublewords: not watched.
    store8((base - 1) as *mut u8, 3);
    store8((base + 8) as *mut u8, 4);
    let recs = take();
    check!(
        recs.len() == 2
            && recs.iter().all(|r| r.handle == reg.handle && r.region() == (base, 8))
            && recs[0].addr == base
            && recs[1].addr == base + 7,
        "writes at both pieces caught, each reported against the region {:#x}+8 (at {:#x} and {:#x})",
        base,
        recs.first().map_or(0, |r| r.addr),
        recs.get(1).map_or(0, |r| r.addr)
    );
    check!(
        must!(HWBP.hits(reg.handle)) == 2,
        "writes to the bytes just outside the region (same doublewords) were not counted"
    );
    unregister(reg.handle);

    // Long: 24 bytes from a 64-byte aligned cell = a 16-byte MASK block plus
    // one doubleword.
    let base = cell(8) as u64;
    let reg = must!(HWBP.register(&on_cpu0(BreakpointAttr::watch(base, 24, Access::WRITE))));
    sync_cpu0(reg.sync);
    let weight = must!(HWBP.weight(reg.handle));
    take();
    store64(cell(8), 1);
    store64(cell(9), 2);
    store64(cell(10), 3);
    store64(cell(11), 4); // just past the region
    let recs = take();
    check!(
        weight == 2
            && recs.len() == 3
            && recs.iter().all(|r| r.handle == reg.handle && r.region() == (base, 24))
            && recs.iter().zip(8..11).all(|(r, i)| r.addr == cell(i) as u64),
        "24-byte region at {:#x} needs {} registers; a write to each doubleword is caught ({}), the one after is not",
        base,
        weight,
        recs.len()
    );
    unregister(reg.handle);
}

/// Step 5: fill every watchpoint register with pinned requests, refuse the
/// next; multiplex flexible requests with explicit rotate ticks.
pub fn fill_and_rotate(data_slots: usize) {
    let mut hs: heapless::Vec<Handle, 32> = heapless::Vec::new();
    for i in 0..data_slots {
        let reg = must!(HWBP.register(&on_cpu0(BreakpointAttr::watch(
            cell(i) as u64,
            8,
            Access::WRITE
        ))));
        sync_cpu0(reg.sync);
        let _ = hs.push(reg.handle);
    }
    let next = HWBP.register(&on_cpu0(BreakpointAttr::watch(
        cell(data_slots) as u64,
        8,
        Access::WRITE,
    )));
    check!(
        matches!(next, Err(Error::NoSlot { cpu: 0 })),
        "{} pinned watchpoints fill every register; the next pinned one is refused: {:?}",
        data_slots,
        next.map(|r| r.handle)
    );
    take();
    for i in 0..data_slots {
        store64(cell(i), 0x50 + i as u64);
    }
    check!(
        take().len() == data_slots,
        "all {} pinned watchpoints fire",
        data_slots
    );
    for h in hs.iter() {
        unregister(*h);
    }

    // Flexible: two more requests than registers.
    let n = data_slots + 2;
    let mut hs: heapless::Vec<Handle, 32> = heapless::Vec::new();
    for i in 0..n {
        let reg = must!(HWBP.register(&on_cpu0(
            BreakpointAttr::watch(cell(i) as u64, 8, Access::WRITE).flexible()
        )));
        sync_cpu0(reg.sync);
        let _ = hs.push(reg.handle);
    }
    take();
    let ticks = 2 * n;
    let mut per_tick_ok = true;
    for _ in 0..ticks {
        must!(HWBP.rotate(0));
        for i in 0..n {
            store64(cell(i), i as u64);
        }
        // Exactly as many writes are caught as there are registers: every
        // register holds a flexible watchpoint, and only those fire.
        per_tick_ok &= take().len() == data_slots;
    }
    check!(
        per_tick_ok,
        "{} flexible watchpoints on {} registers: each of {} rotate ticks catches exactly {} of {} writes",
        n,
        data_slots,
        ticks,
        data_slots,
        n
    );
    let mut all_ran = true;
    let mut total = 0;
    for (i, h) in hs.iter().enumerate() {
        let hits = must!(HWBP.hits(*h));
        let t = must!(HWBP.times(*h));
        println!(
            "     flexible #{}: {} hits, enabled {} ticks, running {} ticks",
            i, hits, t.enabled, t.running
        );
        all_ran &= hits > 0 && t.running > 0 && t.enabled == ticks as u64;
        total += hits;
    }
    check!(
        all_ran && total == (ticks * data_slots) as u64,
        "every flexible watchpoint got running time and hits ({} hits in all)",
        total
    );
    for h in hs.iter() {
        unregister(*h);
    }
}

/// Step 5 with a real tick: the same multiplexing driven by the generic
/// timer's interrupt, whose handler calls `rotate(0)`.
pub fn timer_rotate(data_slots: usize) {
    let n = data_slots + 2;
    let mut hs: heapless::Vec<Handle, 32> = heapless::Vec::new();
    for i in 0..n {
        let reg = must!(HWBP.register(&on_cpu0(
            BreakpointAttr::watch(cell(i) as u64, 8, Access::WRITE).flexible()
        )));
        sync_cpu0(reg.sync);
        let _ = hs.push(reg.handle);
    }
    take();
    let rounds = 2 * n;
    let mut per_round_ok = true;
    let first = crate::timer::ticks();
    crate::timer::start(1000);
    for _ in 0..rounds {
        let t = crate::timer::ticks();
        crate::wait_for("a timer tick", || crate::timer::ticks() != t);
        // No tick (and so no rotation) in the middle of a round of writes.
        critical_section::with(|_| {
            for i in 0..n {
                store64(cell(i), i as u64);
            }
        });
        per_round_ok &= take().len() == data_slots;
    }
    crate::timer::stop();
    let ticks = crate::timer::ticks() - first;
    let mut all_ran = true;
    for h in hs.iter() {
        let t = must!(HWBP.times(*h));
        all_ran &= must!(HWBP.hits(*h)) > 0 && t.running > 0 && t.enabled == ticks;
    }
    check!(
        per_round_ok && all_ran,
        "timer interrupt (1 kHz) calling rotate(0): {} ticks, each of {} rounds catches exactly {} of {} writes, every flexible watchpoint ran",
        Varies(ticks),
        rounds,
        data_slots,
        n
    );
    for h in hs.iter() {
        unregister(*h);
    }
}

/// Step 6: modify a live watchpoint to another variable.
pub fn modify() {
    let (a, b) = (cell(5), cell(6));
    let attr = on_cpu0(BreakpointAttr::watch(a as u64, 8, Access::WRITE));
    let reg = must!(HWBP.register(&attr));
    sync_cpu0(reg.sync);
    take();
    store64(a, 1);
    check!(take().len() == 1, "watchpoint on A fires on a write to A");
    let set = must!(HWBP.modify(reg.handle, &attr.addr(b as u64)));
    sync_cpu0(set);
    store64(a, 2);
    let old = take();
    let pc = store64(b, 3);
    let new = take();
    check!(
        old.is_empty() && new.len() == 1 && new[0].addr == b as u64 && new[0].ip == pc,
        "after modify to B: write to A not caught ({}), write to B caught ({})",
        old.len(),
        new.len()
    );
    unregister(reg.handle);
}

/// Step 7: step-over. Three writes in a row, each caught, the watchpoint
/// re-armed after each.
pub fn step_over() {
    let p = cell(7);
    let reg = must!(HWBP.register(&on_cpu0(BreakpointAttr::watch(p as u64, 8, Access::WRITE))));
    sync_cpu0(reg.sync);
    take();
    let pcs = [store64(p, 10), store64(p, 11), store64(p, 12)];
    let recs = take();
    check!(
        recs.len() == 3
            && recs.iter().zip(pcs.iter()).all(|(r, pc)| r.ip == *pc)
            && recs[1].value == Some(10)
            && recs[2].value == Some(11)
            && peek(p) == 12,
        "step-over: 3 writes -> {} hits, each store completed before the next was caught",
        recs.len()
    );
    unregister(reg.handle);
}

/// Final check: nothing was filtered as stray.
pub fn no_strays() {
    let (s0, s1) = (HWBP.stray(0), HWBP.stray(1));
    check!(
        s0 == 0 && s1 == 0,
        "no stray debug exceptions (CPU 0: {}, CPU 1: {})",
        s0,
        s1
    );
}

/// Step 1: the counts the backend reports are the ones in ID_AA64DFR0_EL1.
pub fn discovered(counts: hwbp_core::SlotCounts, brps: u8, wrps: u8) {
    check!(
        counts
            == hwbp_core::SlotCounts::Separate {
                inst: brps,
                data: wrps
            },
        "slot discovery: {} breakpoint and {} watchpoint registers, separate pools",
        brps,
        wrps
    );
}
