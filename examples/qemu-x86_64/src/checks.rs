//! The checks of issue 7 for the x86_64 board. Each one compares what the
//! emulated debug hardware did (which #DB exceptions QEMU raised, delivered
//! through hwbp-core's dispatch) with what was expected, and stops the
//! firmware with a `FAIL:` line at the first mismatch.
//!
//! Watched accesses go through `read_volatile`/`write_volatile` or inline
//! assembly, so the compiler can neither elide nor merge them.

use core::hint::black_box;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

use board_kit::{check, fatal, Record, Recorder, Varies};
use hwbp_core::{Access, BreakpointAttr, Error, Handle, Sample, SlotCounts, Target};
use hwbp_x86::Dr7;

use crate::hw::{self, CPU, HWBP};
use crate::println;

/// The samples the checks look at; a write sample's value is the watched
/// doubleword as the handler read it.
static REC: Recorder<64> = Recorder::new(stored_value);

/// For write watchpoints: the doubleword at the reported address, read in the
/// handler (x86 data breakpoints are traps, so the store is done).
fn stored_value(s: &Sample) -> Option<u64> {
    (s.access == Access::WRITE).then(|| {
        // SAFETY: every watched address in this firmware is in its own
        // identity-mapped image; reading cannot trigger a write-only
        // watchpoint, and read-write slots report an empty access, so they
        // never get here.
        unsafe { read_volatile((s.addr & !7) as *const u64) }
    })
}

/// Print and record each sample as it arrives (off in the rotation loops,
/// where only the manager's counts are checked).
static RECORD: AtomicBool = AtomicBool::new(true);

/// The handler given to the manager: records (and prints) every sample the
/// recorder keeps.
pub struct Recording;

impl hwbp_core::Handler for Recording {
    fn on_sample(&self, s: &Sample) {
        if !RECORD.load(Ordering::Relaxed) {
            return;
        }
        let Some(r) = REC.record(s) else {
            return;
        };
        println!(
            "     #DB: bp {} addr {:#x} ip {:#x} access {:?} hits {} region {:#x}+{}{}",
            s.handle.index(),
            s.addr,
            s.ip,
            s.access,
            s.hits,
            s.region_addr,
            s.region_len,
            Value(r.value)
        );
    }
}

struct Value(Option<u64>);

impl core::fmt::Display for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(v) => write!(f, " value {v:#x}"),
            None => Ok(()),
        }
    }
}

/// Take every sample recorded so far.
fn take() -> heapless::Vec<Record, 64> {
    REC.take()
}

/// Unwrap a manager result or fail with the error.
fn ok<T>(r: Result<T, Error>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => fatal!("{what}: {e} ({e:?})"),
    }
}

fn register(attr: &BreakpointAttr) -> Handle {
    let r = ok(HWBP.register(attr), "register");
    hw::sync(r.sync);
    r.handle
}

fn unregister(h: Handle) {
    hw::sync(ok(HWBP.unregister(h), "unregister"));
}

fn hits(h: Handle) -> u64 {
    ok(HWBP.hits(h), "hits")
}

fn addr<T>(p: *const T) -> u64 {
    p as u64
}

/// DR7's enabled slots as the hardware has them now (read through hwbp-x86).
fn dr7_enabled() -> u8 {
    Dr7::from_raw(HWBP.arch().read_image(CPU).dr7).enabled_mask()
}

// ---- watched data and code -------------------------------------------------

static mut WATCHED: u64 = 0;
static mut RW_VAR: u64 = 0;
static mut PERIOD_VAR: u64 = 0;
static mut OLD_VAR: u64 = 0;
static mut NEW_VAR: u64 = 0;
/// The variables of step 5, on one page with `scrub`, which is never watched.
#[repr(C, align(4096))]
struct MuxPage {
    pinned: [u64; 4],
    flex: [u64; 4],
    ticked: [u64; 5],
    scrub: u64,
}
static mut MUX: MuxPage = MuxPage {
    pinned: [0; 4],
    flex: [0; 4],
    ticked: [0; 5],
    scrub: 0,
};

/// QEMU 7.2 TCG keeps a watchpoint's "hit" flag after its #DB and, when a
/// later store matches a slot that sits before it in QEMU's watchpoint list,
/// reports the old slot's B bit again in DR6 (observed: a store matching only
/// DR0 raised DR6 = B0|B3, crediting a phantom hit to slot 3's breakpoint).
/// A store to a watched page that matches no slot makes QEMU walk the whole
/// list and clear the stale flags. Step 5 stores to `scrub` after each watched
/// store so its exact hit counts do not rely on that emulation gap; on real
/// hardware the store is just a store. See README.md.
fn scrub() {
    // SAFETY: a plain static, never watched, single CPU.
    unsafe { write_volatile(addr_of_mut!(MUX.scrub), 0) };
}

static mut TRACE_OUT: u64 = 0;

#[repr(C, align(64))]
struct Buf([u8; 64]);
static mut BUF: Buf = Buf([0; 64]);

/// Store `v` to `*p` with one `mov`; returns the address of the next
/// instruction, where a data breakpoint (a trap) reports the exception.
#[inline(never)]
fn store_reporting_ip(p: *mut u64, v: u64) -> u64 {
    let ip: u64;
    // SAFETY: `p` points at a static u64 of this firmware.
    unsafe {
        core::arch::asm!(
            "movq {v}, ({p})",
            "2:",
            "leaq 2b(%rip), {ip}",
            p = in(reg) p,
            v = in(reg) v,
            ip = out(reg) ip,
            options(att_syntax, nostack, preserves_flags)
        );
    }
    ip
}

/// Three back-to-back stores to `*p` (1, 2, 3); returns the address after each.
#[inline(never)]
fn three_stores(p: *mut u64) -> [u64; 3] {
    let (a, b, c): (u64, u64, u64);
    // SAFETY: `p` points at a static u64 of this firmware.
    unsafe {
        core::arch::asm!(
            "movq $1, ({p})",
            "2:",
            "movq $2, ({p})",
            "3:",
            "movq $3, ({p})",
            "4:",
            "leaq 2b(%rip), {a}",
            "leaq 3b(%rip), {b}",
            "leaq 4b(%rip), {c}",
            p = in(reg) p,
            a = out(reg) a,
            b = out(reg) b,
            c = out(reg) c,
            options(att_syntax, nostack, preserves_flags)
        );
    }
    [a, b, c]
}

/// The function an instruction breakpoint is set on. It also stores to
/// `TRACE_OUT`, so a data watchpoint can fire right after the resumed
/// instruction breakpoint.
#[inline(never)]
extern "C" fn traced(x: u64) -> u64 {
    // SAFETY: a plain static of this firmware, single CPU.
    unsafe { write_volatile(addr_of_mut!(TRACE_OUT), x) };
    x.wrapping_mul(3).wrapping_add(1)
}

fn call_traced(times: u64) -> u64 {
    let f: extern "C" fn(u64) -> u64 = black_box(traced);
    let mut acc = 0;
    for i in 0..times {
        acc = f(acc ^ i);
    }
    acc
}

// ---- the checks ------------------------------------------------------------

/// Run every check.
pub fn run() {
    discover();
    write_watchpoint();
    read_write_watchpoint();
    instruction_breakpoint();
    sample_period();
    split_regions();
    fill_and_multiplex();
    timer_rotation();
    modify();
    continue_after_every_hit();
    finish();
}

/// Step 1: slot counts and debug architecture through hwbp-x86.
fn discover() {
    println!("-- 1. slot discovery");
    let counts = ok(hwbp_core::Arch::discover(HWBP.arch()), "discover");
    println!(
        "   debug architecture: x86 DR0-DR3 + DR6/DR7, {} mode, {:?}",
        if HWBP.arch().encoder().mode() == hwbp_x86::Mode::Bits64 {
            "64-bit"
        } else {
            "32-bit"
        },
        counts
    );
    check!(
        counts == SlotCounts::Shared(4),
        "hwbp-x86 reports 4 shared slots"
    );
    ok(HWBP.init(1), "init");
    ok(HWBP.cpu_online(CPU), "cpu_online");
    check!(
        ok(HWBP.slot_counts(), "slot_counts") == SlotCounts::Shared(4),
        "the manager's table is sized 4 shared slots"
    );
    check!(
        dr7_enabled() == 0,
        "cpu_online left every slot disabled in DR7"
    );
}

/// Step 2: a pinned write watchpoint on a static.
fn write_watchpoint() {
    println!("-- 2. pinned write watchpoint");
    let a = addr(addr_of!(WATCHED));
    let h = register(&BreakpointAttr::watch(a, 8, Access::WRITE).target(Target::Cpu(CPU)));
    check!(dr7_enabled().count_ones() == 1, "one slot enabled in DR7");
    let ip = store_reporting_ip(addr_of_mut!(WATCHED), 0xC0FF_EE42);
    let recs = take();
    check!(
        hits(h) == 1 && recs.len() == 1,
        "one store, one hit, one sample"
    );
    let r = recs[0];
    check!(r.handle == h, "sample names the breakpoint");
    check!(
        r.addr == a && r.region() == (a, 8),
        "sample address {:#x} is the watched static",
        r.addr
    );
    check!(r.access == Access::WRITE, "sample access is WRITE");
    check!(
        r.ip == ip,
        "sample ip {:#x} is the instruction after the store (trap)",
        r.ip
    );
    check!(
        r.value == Some(0xC0FF_EE42),
        "handler read the new value 0xc0ffee42"
    );
    // SAFETY: plain static read.
    let v = unsafe { read_volatile(addr_of!(WATCHED)) };
    check!(
        v == 0xC0FF_EE42 && hits(h) == 1,
        "a read does not fire a write watchpoint"
    );
    unregister(h);
    check!(dr7_enabled() == 0, "unregister disabled the slot");
}

/// Step 3a: a read-write watchpoint caught by a read.
fn read_write_watchpoint() {
    println!("-- 3a. read-write watchpoint");
    let a = addr(addr_of!(RW_VAR));
    let h = register(&BreakpointAttr::watch(a, 8, Access::RW));
    // SAFETY: plain static read.
    let v = unsafe { read_volatile(addr_of!(RW_VAR)) };
    let recs = take();
    check!(
        v == 0 && hits(h) == 1 && recs.len() == 1,
        "a read fires the RW watchpoint once"
    );
    check!(
        recs[0].addr == a && recs[0].handle == h,
        "sample address is the watched static"
    );
    check!(
        recs[0].access.is_empty(),
        "sample access is empty: x86 does not say whether an RW slot saw a read or a write"
    );
    // SAFETY: plain static write.
    unsafe { write_volatile(addr_of_mut!(RW_VAR), 7) };
    check!(hits(h) == 2 && take().len() == 1, "a write fires it too");
    unregister(h);
}

/// Step 3b: an instruction breakpoint on a function called 3 times (each hit
/// is a fault; the handler sets RF to run the instruction).
fn instruction_breakpoint() {
    println!("-- 3b. instruction breakpoint");
    let f = traced as *const () as u64;
    let h = register(&BreakpointAttr::exec(f));
    hw::take_debug_exceptions();
    let out = call_traced(3);
    let recs = take();
    check!(
        out == call_traced_plain(3),
        "the traced function still computes its result"
    );
    check!(hits(h) == 3 && recs.len() == 3, "3 calls, exactly 3 hits");
    check!(
        hw::take_debug_exceptions() == 3,
        "exactly 3 #DB exceptions (RF stopped re-faulting)"
    );
    check!(
        recs.iter()
            .all(|r| r.ip == f && r.addr == f && r.access == Access::EXEC),
        "every sample: ip = addr = function entry {f:#x}, access EXEC"
    );
    check!(
        recs.iter().map(|r| r.hits).eq(1..=3),
        "samples carry hit counts 1, 2, 3"
    );
    unregister(h);
}

fn call_traced_plain(times: u64) -> u64 {
    let mut acc = 0;
    for i in 0..times {
        acc = (acc ^ i).wrapping_mul(3).wrapping_add(1);
    }
    acc
}

/// Step 3c: sample period 2.
fn sample_period() {
    println!("-- 3c. sample period 2");
    let a = addr(addr_of!(PERIOD_VAR));
    let h = register(&BreakpointAttr::watch(a, 8, Access::WRITE).sample_period(2));
    hw::take_debug_exceptions();
    for i in 0..6 {
        // SAFETY: plain static write.
        unsafe { write_volatile(addr_of_mut!(PERIOD_VAR), i) };
    }
    let recs = take();
    check!(
        hw::take_debug_exceptions() == 6,
        "6 stores, 6 #DB exceptions"
    );
    check!(hits(h) == 6, "hit count is exact: 6");
    check!(
        recs.len() == 3 && recs.iter().map(|r| r.hits).eq([2, 4, 6]),
        "handler ran on hits 2, 4 and 6 only"
    );
    unregister(h);
}

/// Step 4: regions that need more than one register, caught at each piece and
/// reported against the original region.
fn split_regions() {
    println!("-- 4. regions split over several registers");
    let base = addr(addr_of!(BUF));
    // Unaligned: 12 bytes at +4 = 4 bytes at +4 and 8 bytes at +8.
    let unaligned = (base + 4, 12);
    // Long: 16 bytes at +16 = two 8-byte registers.
    let long = (base + 16, 16);
    let hu = register(&BreakpointAttr::watch(
        unaligned.0,
        unaligned.1,
        Access::WRITE,
    ));
    let hl = register(&BreakpointAttr::watch(long.0, long.1, Access::WRITE));
    check!(
        ok(HWBP.weight(hu), "weight") == 2 && ok(HWBP.weight(hl), "weight") == 2,
        "each region weighs 2 registers"
    );
    let (su, sl) = (
        ok(HWBP.slots_on(hu, CPU), "slots_on"),
        ok(HWBP.slots_on(hl, CPU), "slots_on"),
    );
    check!(
        su.count_ones() == 2 && sl.count_ones() == 2 && su & sl == 0 && dr7_enabled() == 0b1111,
        "they occupy all 4 slots (slots {su:#06b} and {sl:#06b})"
    );
    let buf = addr_of_mut!(BUF) as *mut u8;
    // (offset written, handle, expected piece address, expected region)
    let cases = [
        (5usize, hu, base + 4, unaligned),
        (15, hu, base + 8, unaligned),
        (16, hl, base + 16, long),
        (31, hl, base + 24, long),
    ];
    for (off, h, piece, region) in cases {
        // SAFETY: `off` < 64, inside BUF.
        unsafe { write_volatile(buf.add(off), 0xA5) };
        let recs = take();
        check!(
            recs.len() == 1
                && recs[0].handle == h
                && recs[0].addr == piece
                && recs[0].region() == region,
            "byte at +{off}: caught by the piece at {piece:#x}, reported against region {:#x}+{}",
            region.0,
            region.1
        );
    }
    for off in [3usize, 32, 40] {
        // SAFETY: `off` < 64, inside BUF.
        unsafe { write_volatile(buf.add(off), 0x5A) };
    }
    check!(
        take().is_empty(),
        "bytes just outside the regions (+3, +32, +40) do not fire"
    );
    check!(hits(hu) == 2 && hits(hl) == 2, "2 hits each, one per piece");
    unregister(hu);
    unregister(hl);
}

/// Step 5: fill every slot with pinned requests; the next pinned is refused;
/// flexible requests beyond the free slots are multiplexed by `rotate`.
fn fill_and_multiplex() {
    println!("-- 5. pinned fill, refusal, flexible multiplexing");
    let pinned = {
        // SAFETY: only the field's address is taken.
        unsafe { addr_of_mut!(MUX.pinned) as *mut u64 }
    };
    let flex = {
        // SAFETY: only the field's address is taken.
        unsafe { addr_of_mut!(MUX.flex) as *mut u64 }
    };
    let mut hp = [None; 4];
    for (i, slot) in hp.iter_mut().enumerate() {
        // SAFETY: i < 4, inside MUX.pinned.
        let a = addr(unsafe { pinned.add(i) });
        *slot = Some(register(&BreakpointAttr::watch(a, 8, Access::WRITE)));
    }
    let hp = hp.map(|h| h.unwrap_or_else(|| fatal!("pinned handle missing")));
    check!(dr7_enabled() == 0b1111, "4 pinned watchpoints fill DR0-DR3");
    let extra = HWBP.register(&BreakpointAttr::watch(
        addr(addr_of!(WATCHED)),
        8,
        Access::WRITE,
    ));
    check!(
        matches!(extra, Err(Error::NoSlot { cpu: 0 })),
        "a 5th pinned request is refused with Error::NoSlot {{ cpu: 0 }} (got {extra:?})"
    );
    for i in 0..4 {
        // SAFETY: i < 4, inside MUX.pinned.
        unsafe { write_volatile(pinned.add(i), 10 + i as u64) };
        scrub();
    }
    let recs = take();
    check!(
        recs.len() == 4
            && recs.iter().zip(hp).enumerate().all(|(i, (r, h))| {
                r.handle == h
                    && r.addr == addr(pinned) + 8 * i as u64
                    && r.value == Some(10 + i as u64)
            }),
        "each pinned watchpoint fires on its own variable, with its new value"
    );

    // Keep two pinned; four flexible then share the two free slots.
    unregister(hp[2]);
    unregister(hp[3]);
    let mut hf = [None; 4];
    for (i, slot) in hf.iter_mut().enumerate() {
        // SAFETY: i < 4, inside MUX.flex.
        let a = addr(unsafe { flex.add(i) });
        *slot = Some(register(
            &BreakpointAttr::watch(a, 8, Access::WRITE).flexible(),
        ));
    }
    let hf = hf.map(|h| h.unwrap_or_else(|| fatal!("flexible handle missing")));
    let on: u32 = hf
        .iter()
        .filter(|&&h| ok(HWBP.slots_on(h, CPU), "slots_on") != 0)
        .count() as u32;
    check!(
        on == 2 && dr7_enabled() == 0b1111,
        "2 of 4 flexible watchpoints on the 2 free slots"
    );

    const TICKS: u64 = 8;
    let mut on_ticks = [0u64; 4];
    RECORD.store(false, Ordering::Relaxed);
    for _ in 0..TICKS {
        for (i, &h) in hf.iter().enumerate() {
            if ok(HWBP.slots_on(h, CPU), "slots_on") != 0 {
                on_ticks[i] += 1;
            }
        }
        for i in 0..4 {
            // SAFETY: i < 4, inside MUX.flex.
            unsafe { write_volatile(flex.add(i), i as u64) };
            scrub();
        }
        for i in 0..2 {
            // SAFETY: i < 2, inside MUX.pinned.
            unsafe { write_volatile(pinned.add(i), i as u64) };
            scrub();
        }
        ok(HWBP.rotate(CPU), "rotate");
    }
    RECORD.store(true, Ordering::Relaxed);
    take();
    println!("   on-hardware ticks per flexible watchpoint: {on_ticks:?}");
    for (i, &h) in hf.iter().enumerate() {
        let t = ok(HWBP.times(h), "times");
        let n = hits(h);
        check!(
            t.enabled == TICKS && t.running == on_ticks[i] && t.running > 0 && n == on_ticks[i],
            "flexible {i}: enabled {} ticks, running {} (> 0), hits {} = ticks on the hardware",
            t.enabled,
            t.running,
            n
        );
    }
    check!(
        on_ticks.iter().sum::<u64>() == 2 * TICKS,
        "the 2 free slots were in use every tick"
    );
    check!(
        hits(hp[0]) == 1 + TICKS && hits(hp[1]) == 1 + TICKS,
        "pinned watchpoints stayed on the hardware every tick"
    );
    for h in hf.into_iter().chain(hp.into_iter().take(2)) {
        unregister(h);
    }
    check!(dr7_enabled() == 0, "all slots free again");
}

/// Step 5, with a real tick: five flexible watchpoints share the four slots,
/// rotated by the PIT's timer interrupt while the main loop keeps writing.
fn timer_rotation() {
    println!("-- 5b. flexible multiplexing on a timer interrupt (PIT, ~1 kHz)");
    let vars = {
        // SAFETY: only the field's address is taken.
        unsafe { addr_of_mut!(MUX.ticked) as *mut u64 }
    };
    let mut hs = [None; 5];
    for (i, slot) in hs.iter_mut().enumerate() {
        // SAFETY: i < 5, inside MUX.ticked.
        let a = addr(unsafe { vars.add(i) });
        *slot = Some(register(
            &BreakpointAttr::watch(a, 8, Access::WRITE).flexible(),
        ));
    }
    let hs = hs.map(|h| h.unwrap_or_else(|| fatal!("flexible handle missing")));
    check!(
        dr7_enabled() == 0b1111,
        "5 flexible watchpoints: 4 on the hardware"
    );
    const MIN_TICKS: u64 = 20;
    const MAX_ROUNDS: u64 = 50_000_000;
    let mut writes = 0u64;
    let start = crate::timer::ticks();
    RECORD.store(false, Ordering::Relaxed);
    crate::timer::start();
    let done = |hs: &[Handle; 5]| {
        hs.iter()
            .all(|&h| hits(h) > 0 && ok(HWBP.times(h), "times").enabled >= MIN_TICKS)
    };
    while !done(&hs) && writes < MAX_ROUNDS {
        for i in 0..5 {
            // SAFETY: i < 5, inside MUX.ticked.
            unsafe { write_volatile(vars.add(i), writes) };
            scrub();
        }
        writes += 1;
    }
    crate::timer::stop();
    RECORD.store(true, Ordering::Relaxed);
    take();
    let ticks = crate::timer::ticks() - start;
    println!(
        "   {} timer ticks, {} rounds of 5 stores",
        Varies(ticks),
        Varies(writes)
    );
    let times = hs.map(|h| ok(HWBP.times(h), "times"));
    let hits = hs.map(hits);
    println!(
        "   (enabled, running, hits) per watchpoint: {:?}",
        core::array::from_fn::<_, 5, _>(|i| (
            Varies(times[i].enabled),
            Varies(times[i].running),
            Varies(hits[i])
        ))
    );
    check!(
        writes < MAX_ROUNDS && ticks >= MIN_TICKS,
        "the timer ticked ({} times) while the loop ran",
        Varies(ticks)
    );
    check!(
        times.iter().all(|t| t.enabled == ticks),
        "every watchpoint was enabled on every tick"
    );
    check!(
        times.iter().all(|t| t.running > 0 && t.running < t.enabled)
            && hits.iter().all(|&n| n > 0 && n <= writes),
        "each of the 5 received running time (0 < running < enabled) and hits"
    );
    check!(
        times.iter().map(|t| t.running).sum::<u64>() == 4 * ticks,
        "the 4 slots were in use on every tick (sum of running = 4 x ticks)"
    );
    for h in hs {
        unregister(h);
    }
    check!(dr7_enabled() == 0, "all slots free again");
}

/// Step 6: modify a live watchpoint to another variable.
fn modify() {
    println!("-- 6. modify a live watchpoint");
    let (old, new) = (addr(addr_of!(OLD_VAR)), addr(addr_of!(NEW_VAR)));
    let h = register(&BreakpointAttr::watch(old, 8, Access::WRITE));
    // SAFETY: plain static write.
    unsafe { write_volatile(addr_of_mut!(OLD_VAR), 1) };
    check!(
        hits(h) == 1 && take().len() == 1,
        "the old variable fires before modify"
    );
    hw::sync(ok(
        HWBP.modify(h, &BreakpointAttr::watch(new, 8, Access::WRITE)),
        "modify",
    ));
    // SAFETY: plain static write.
    unsafe { write_volatile(addr_of_mut!(OLD_VAR), 2) };
    check!(
        hits(h) == 1 && take().is_empty(),
        "the old variable no longer fires"
    );
    // SAFETY: plain static write.
    unsafe { write_volatile(addr_of_mut!(NEW_VAR), 3) };
    let recs = take();
    check!(
        hits(h) == 2
            && recs.len() == 1
            && recs[0].handle == h
            && recs[0].addr == new
            && recs[0].region() == (new, 8)
            && recs[0].value == Some(3),
        "the new variable fires, same handle, new region, value 3"
    );
    unregister(h);
}

/// Step 7: continue after every hit without losing the next one.
fn continue_after_every_hit() {
    println!("-- 7. continue after every hit");
    let a = addr(addr_of!(WATCHED));
    let h = register(&BreakpointAttr::watch(a, 8, Access::WRITE));
    let ips = three_stores(addr_of_mut!(WATCHED));
    let recs = take();
    check!(
        hits(h) == 3
            && recs.len() == 3
            && recs.iter().map(|r| r.ip).eq(ips)
            && recs.iter().map(|r| r.value).eq([Some(1), Some(2), Some(3)]),
        "3 back-to-back stores: 3 hits, after each store in turn, values 1, 2, 3"
    );
    unregister(h);

    // An instruction breakpoint (fault, resumed with RF) on a function whose
    // first store is watched (trap): RF must suppress only the re-fault.
    let f = traced as *const () as u64;
    let t = addr(addr_of!(TRACE_OUT));
    let hx = register(&BreakpointAttr::exec(f));
    let hw_ = register(&BreakpointAttr::watch(t, 8, Access::WRITE));
    hw::take_debug_exceptions();
    call_traced(3);
    let recs = take();
    check!(
        hits(hx) == 3 && hits(hw_) == 3 && hw::take_debug_exceptions() == 6,
        "3 calls: 3 instruction hits and 3 data hits, 6 #DB in all"
    );
    let order_ok = recs.len() == 6
        && recs
            .chunks(2)
            .all(|p| p[0].handle == hx && p[1].handle == hw_);
    check!(
        order_ok,
        "each call: instruction hit, then (after RF resume) the data hit"
    );
    // The argument of call n is what `traced` stores (see `call_traced`).
    let args = [0, 1, 2].map(|n| call_traced_plain(n) ^ n);
    check!(
        recs.len() == 6
            && recs
                .chunks(2)
                .zip(args)
                .all(|(p, a)| p[0].ip == f && p[1].value == Some(a)),
        "instruction samples at the entry {f:#x}; data samples saw the stored arguments {args:?}"
    );
    unregister(hx);
    unregister(hw_);
}

fn finish() {
    println!("-- 9. summary");
    check!(
        HWBP.is_empty() && dr7_enabled() == 0,
        "no breakpoint left, DR7 clear"
    );
    check!(HWBP.stray(CPU) == 0, "no stray #DB counted");
}
