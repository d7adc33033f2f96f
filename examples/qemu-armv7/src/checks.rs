//! The checks of issue 7, each verified by the firmware itself.

use core::cell::Cell;

use critical_section::Mutex;
use hwbp_arm64::aarch32::Moe;
use hwbp_core::{Access, BpType, BreakpointAttr, Error, Handle, SlotCounts, Target};

use crate::probes::{self, Bytes64, Word};
use crate::{println, stepover, HWBP, REC};
use board_kit::Record;

/// The result of a check.
pub type Outcome = Result<(), Failure>;

/// A failed check; the reason has already been printed as a `FAIL:` line.
#[derive(Debug)]
pub struct Failure;

/// The check that is running, for `FAIL:` lines.
static CURRENT: Mutex<Cell<&'static str>> = Mutex::new(Cell::new(""));

/// Name the check that runs next.
pub fn begin(name: &'static str) {
    critical_section::with(|cs| CURRENT.borrow(cs).set(name));
}

/// Print `FAIL: <check>: <why>` (counted as the check's failure) and return
/// the failure.
pub fn failure(why: core::fmt::Arguments) -> Failure {
    let name = critical_section::with(|cs| CURRENT.borrow(cs).get());
    board_kit::checks::fail(format_args!("{name}: {why}"));
    Failure
}

macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::checks::failure(format_args!($($arg)*)))
    };
}
pub(crate) use fail;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            fail!($($arg)*);
        }
    };
}

/// `?` for the core's results, naming the call.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, Failure>;
}

impl<T> Ctx<T> for Result<T, Error> {
    fn ctx(self, what: &str) -> Result<T, Failure> {
        match self {
            Ok(v) => Ok(v),
            Err(e) => Err(failure(format_args!("{what}: {e}"))),
        }
    }
}

static VAR_A: Word = Word::new(0x1111_1111);
static VAR_B: Word = Word::new(0x2222_2222);
static VAR_C: Word = Word::new(0x3333_3333);
static VAR_D: Word = Word::new(0x4444_4444);
static VAR_E: Word = Word::new(0x5555_5555);
static BUF: Bytes64 = Bytes64::new();
static LONG: Bytes64 = Bytes64::new();
static ARRAY: [Word; 16] = [const { Word::new(0) }; 16];

fn cpu0(attr: BreakpointAttr) -> BreakpointAttr {
    attr.target(Target::Cpu(0))
}

/// Register and put it on the hardware.
fn register(attr: &BreakpointAttr, what: &str) -> Result<Handle, Failure> {
    let reg = HWBP.register(attr).ctx(what)?;
    if reg.sync.contains(0) {
        HWBP.sync(0).ctx("sync")?;
    }
    Ok(reg.handle)
}

fn unregister(h: Handle) -> Outcome {
    let set = HWBP.unregister(h).ctx("unregister")?;
    if set.contains(0) {
        HWBP.sync(0).ctx("sync")?;
    }
    Ok(())
}

fn record(i: usize) -> Result<Record, Failure> {
    match REC.get(i) {
        Some(r) => Ok(r),
        None => fail!("sample {i} missing ({} delivered)", REC.count()),
    }
}

fn hits(h: Handle) -> Result<u64, Failure> {
    HWBP.hits(h).ctx("hits")
}

/// Issue 7 step 1: Slot counts and debug architecture, discovered through DBGDIDR.
pub fn discovery() -> Outcome {
    let counts = HWBP.slot_counts().ctx("slot_counts")?;
    println!("discover: backend and core use {counts:?}");
    let id = crate::hw::dbgdidr();
    let arch = id.version();
    println!(
        "discover: DBGDIDR={:#010x} debug arch {:?}, {} breakpoints, {} watchpoints, {} context comparators",
        id.0,
        arch,
        id.brps(),
        id.wrps(),
        id.ctx_cmps()
    );
    ensure!(
        arch.is_supported(),
        "debug architecture {arch:?} not supported"
    );
    ensure!(
        counts
            == SlotCounts::Separate {
                inst: id.brps(),
                data: id.wrps()
            },
        "core counts {counts:?} differ from DBGDIDR"
    );
    ensure!(
        id.brps() >= 2 && id.wrps() >= 2,
        "Armv7 has at least 2 of each"
    );
    // After `cpu_online`: the OS Lock and OS Double Lock are clear and
    // monitor debug mode took (the backend read DBGDSCR back).
    let regs = HWBP.arch().regs();
    let (oslsr, osdlr, dscr) = (regs.dbgoslsr(), regs.dbgosdlr(), regs.dbgdscr_int());
    println!(
        "discover: DBGOSLSR={oslsr:x?} DBGOSDLR={osdlr:x?} DBGDSCRint={:x?} DBGDSCRext={:#010x}",
        dscr.map(|d| d.0),
        regs.dbgdscr().0
    );
    ensure!(
        oslsr.is_some_and(|v| v & 0b10 == 0),
        "OS Lock still set: {oslsr:x?}"
    );
    ensure!(
        osdlr.unwrap_or(0) & 1 == 0,
        "OS Double Lock still set: {osdlr:x?}"
    );
    ensure!(
        dscr.is_some_and(|d| d.monitor_mode()) && regs.dbgdscr().monitor_mode(),
        "monitor debug mode not enabled"
    );
    Ok(())
}

/// Issue 7 step 2: A pinned write watchpoint on a static. The sample carries the address,
/// the access and the ip; the handler reads the value being replaced, and the
/// abort handler decodes the value being written from the store.
pub fn pinned_write() -> Outcome {
    REC.clear();
    let h = register(
        &cpu0(BreakpointAttr::watch(VAR_A.addr(), 4, Access::WRITE)),
        "register write watchpoint",
    )?;
    VAR_B.store(7); // not watched
    VAR_A.store(0xC0FF_EE00);
    let n = hits(h)?;
    unregister(h)?;
    ensure!(n == 1, "write watchpoint: {n} hits, expected 1");
    let r = record(0)?;
    let s = r.sample;
    let stored = crate::last_store_value();
    let moe = crate::last_moe();
    println!(
        "write watchpoint: data abort, DBGDSCR.MOE {moe:?}; addr={:#x} access={:?} ip={:#x} old={:x?} new={:x?} (store insn at {:#x})",
        s.addr,
        s.access,
        s.ip,
        r.value,
        stored,
        probes::store32_ip()
    );
    ensure!(
        s.addr == VAR_A.addr(),
        "sample addr {:#x}, expected {:#x}",
        s.addr,
        VAR_A.addr()
    );
    ensure!(s.access == Access::WRITE, "sample access {:?}", s.access);
    ensure!(
        s.ip == probes::store32_ip(),
        "sample ip {:#x}, expected {:#x}",
        s.ip,
        probes::store32_ip()
    );
    ensure!(
        (s.region_addr, s.region_len) == (VAR_A.addr(), 4),
        "sample region"
    );
    ensure!(
        r.value == Some(0x1111_1111),
        "handler read {:x?} before the store",
        r.value
    );
    ensure!(
        stored == Some(0xC0FF_EE00),
        "store value decoded as {stored:x?}"
    );
    ensure!(
        VAR_A.load() == 0xC0FF_EE00,
        "the store did not complete after the hit"
    );
    ensure!(REC.count() == 1, "{} samples", REC.count());
    Ok(())
}

/// Issue 7 step 3a: A read-write watchpoint caught by a read.
pub fn rw_by_read() -> Outcome {
    REC.clear();
    let h = register(
        &cpu0(BreakpointAttr::watch(VAR_B.addr(), 4, Access::RW)),
        "register RW watchpoint",
    )?;
    let v = VAR_B.load();
    let n = hits(h)?;
    unregister(h)?;
    let s = record(0)?.sample;
    println!(
        "rw watchpoint: read {v:#x}, {n} hit(s), addr={:#x} access={:?} ip={:#x}",
        s.addr, s.access, s.ip
    );
    ensure!(n == 1, "RW watchpoint: {n} hits, expected 1");
    ensure!(v == 7, "the load returned {v:#x}");
    ensure!(
        s.addr == VAR_B.addr() && s.access == Access::READ,
        "sample {:#x} {:?}",
        s.addr,
        s.access
    );
    ensure!(s.ip == probes::load32_ip(), "sample ip {:#x}", s.ip);
    Ok(())
}

/// Issue 7 step 3b: An instruction breakpoint on a function called 3 times.
pub fn breakpoint_three_calls() -> Outcome {
    REC.clear();
    let f = probes::traced_addr();
    let h = register(&cpu0(BreakpointAttr::exec(f)), "register breakpoint")?;
    let mut acc = 0u32;
    for i in 0..3 {
        acc = acc.wrapping_add(probes::traced(core::hint::black_box(i)));
    }
    let n = hits(h)?;
    unregister(h)?;
    let moe = crate::last_moe();
    println!(
        "breakpoint on traced() at {f:#x}: prefetch abort, DBGDSCR.MOE {moe:?}; 3 calls -> {n} hits, {} samples (results {acc})",
        REC.count()
    );
    ensure!(moe == Moe::Breakpoint, "MOE {moe:?}");
    ensure!(acc == 1 + 4 + 7, "traced() computed {acc}");
    ensure!(n == 3, "{n} hits, expected 3");
    ensure!(REC.count() == 3, "{} samples, expected 3", REC.count());
    for i in 0..3 {
        let s = record(i)?.sample;
        ensure!(
            s.ip == f && s.addr == f,
            "sample {i}: ip {:#x} addr {:#x}",
            s.ip,
            s.addr
        );
        ensure!(s.hits == i as u64 + 1, "sample {i}: hits {}", s.hits);
    }
    Ok(())
}

/// Issue 7 step 3c: Sample period 2: the handler runs on every second hit, the count is
/// exact.
pub fn sample_period() -> Outcome {
    REC.clear();
    let f = probes::traced_addr();
    let h = register(
        &cpu0(BreakpointAttr::exec(f).sample_period(2)),
        "register breakpoint",
    )?;
    for i in 0..5 {
        core::hint::black_box(probes::traced(i));
    }
    let n = hits(h)?;
    unregister(h)?;
    println!(
        "sample period 2: 5 calls -> {n} hits, {} samples",
        REC.count()
    );
    ensure!(n == 5, "{n} hits, expected 5");
    ensure!(REC.count() == 2, "{} samples, expected 2", REC.count());
    ensure!(
        record(0)?.sample.hits == 2 && record(1)?.sample.hits == 4,
        "samples on the wrong hits"
    );
    Ok(())
}

/// Issue 7 step 4: A region that needs more than one register: caught at each piece,
/// reported against the original region.
pub fn multi_piece() -> Outcome {
    REC.clear();
    // Bytes 6..10 of an 8-byte aligned buffer straddle two doublewords, and a
    // watchpoint register covers one doubleword (BAS) or an aligned
    // power-of-two block.
    let (start, len) = (BUF.addr() + 6, 4);
    let h = register(
        &cpu0(BreakpointAttr::watch(start, len, Access::WRITE)),
        "register straddling watchpoint",
    )?;
    let weight = HWBP.weight(h).ctx("weight")?;
    BUF.store(5, 0xa5); // before the region
    BUF.store(6, 0x11); // first piece
    BUF.store(9, 0x22); // second piece
    BUF.store(10, 0xa5); // after the region
    let n = hits(h)?;
    let stray = HWBP.stray(0);
    unregister(h)?;
    println!("region {start:#x}+{len}: weight {weight}, 4 byte stores (2 inside) -> {n} hits, stray {stray}");
    ensure!(
        weight >= 2,
        "weight {weight}: the region should need more than one register"
    );
    ensure!(n == 2, "{n} hits, expected 2");
    for (i, want) in [(0, start), (1, start + 3)] {
        let s = record(i)?.sample;
        println!(
            "  piece hit {i}: addr={:#x} ip={:#x} region={:#x}+{}",
            s.addr, s.ip, s.region_addr, s.region_len
        );
        ensure!(
            s.addr == want,
            "hit {i} at {:#x}, expected {want:#x}",
            s.addr
        );
        ensure!(
            (s.region_addr, s.region_len) == (start, len),
            "hit {i} not reported against the region"
        );
        ensure!(s.ip == probes::store8_ip(), "hit {i} ip {:#x}", s.ip);
    }
    ensure!(
        BUF.get(6) == 0x11 && BUF.get(9) == 0x22 && BUF.get(5) == 0xa5,
        "stores did not complete"
    );
    Ok(())
}

/// Issue 7 step 4, long: 40 bytes from offset 8 of a 64-byte aligned buffer
/// need an exact cover of several registers (a doubleword, then aligned
/// 16-byte `MASK` blocks); a store at the first and last byte of each piece
/// is caught, stores just outside are not, and every hit is reported against
/// the original region.
pub fn long_region() -> Outcome {
    REC.clear();
    let (off, len) = (8usize, 40u64);
    let start = LONG.addr() + off as u64;
    let h = register(
        &cpu0(BreakpointAttr::watch(start, len, Access::WRITE)),
        "register long watchpoint",
    )?;
    let weight = HWBP.weight(h).ctx("weight")?;
    // Which watchpoint registers hold the pieces, and what the backend wrote.
    let slots = HWBP.slots_on(h, 0).ctx("slots_on")?;
    let image = HWBP.image(0).ctx("image")?;
    for (n, slot) in image.pools[1]
        .iter()
        .enumerate()
        .filter(|(n, _)| slots & (1 << n) != 0)
    {
        println!(
            "  piece in DBGWVR{n}/DBGWCR{n}: {:#010x} / {:#010x}",
            slot.value, slot.ctrl
        );
    }
    let inside = [8usize, 15, 16, 31, 32, 47];
    LONG.store(7, 0xee);
    for (k, &i) in inside.iter().enumerate() {
        LONG.store(i, k as u8 + 1);
    }
    LONG.store(48, 0xee);
    let n = hits(h)?;
    unregister(h)?;
    println!(
        "long region {start:#x}+{len}: weight {weight} (slots {slots:#b}), stores at offsets 7, {inside:?}, 48 -> {n} hits"
    );
    ensure!(
        weight >= 2,
        "weight {weight}: 40 bytes need more than one register"
    );
    ensure!(
        n == inside.len() as u64,
        "{n} hits, expected {}",
        inside.len()
    );
    for (k, &i) in inside.iter().enumerate() {
        let s = record(k)?.sample;
        ensure!(s.addr == LONG.addr() + i as u64, "hit {k} at {:#x}", s.addr);
        ensure!(
            (s.region_addr, s.region_len) == (start, len),
            "hit {k} not reported against the region"
        );
        ensure!(LONG.get(i) == k as u8 + 1, "store {k} lost");
    }
    Ok(())
}

/// Issue 7 step 5a: Every slot taken by pinned requests: the next one is refused with
/// `Error::NoSlot`.
pub fn fill_pinned() -> Outcome {
    let SlotCounts::Separate { inst, data } = HWBP.slot_counts().ctx("slot_counts")? else {
        fail!("Arm has separate pools");
    };
    let mut held: heapless::Vec<Handle, 32> = heapless::Vec::new();
    let mut result = Ok(());
    for (ty, n) in [(BpType::Data, data), (BpType::Inst, inst)] {
        let attr = |i: u64| match ty {
            BpType::Data => cpu0(BreakpointAttr::watch(
                ARRAY[i as usize % 16].addr(),
                4,
                Access::WRITE,
            )),
            BpType::Inst => cpu0(BreakpointAttr::exec(probes::parking(i))),
        };
        for i in 0..u64::from(n) {
            match HWBP.register(&attr(i)) {
                Ok(r) => {
                    let _ = held.push(r.handle);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = result {
            release(&held)?;
            fail!("{ty:?}: pinned request within the {n} slots refused: {e}");
        }
        let next = HWBP.register(&attr(u64::from(n)));
        println!(
            "fill {ty:?}: {n} pinned accepted, next -> {:?}",
            next.map(|r| r.handle.index())
        );
        match next {
            Err(Error::NoSlot { cpu: 0 }) => {}
            Ok(r) => {
                let _ = held.push(r.handle);
                release(&held)?;
                fail!("{ty:?}: pinned request beyond {n} slots accepted");
            }
            Err(e) => {
                release(&held)?;
                fail!("{ty:?}: refused with {e:?}, expected NoSlot {{ cpu: 0 }}");
            }
        }
    }
    HWBP.sync(0).ctx("sync")?;
    let image = HWBP.image(0).ctx("image")?;
    let used = |p: usize| {
        image.pools[p]
            .iter()
            .filter(|s| **s != Default::default())
            .count()
    };
    println!(
        "fill: installed image uses {} breakpoint and {} watchpoint slots",
        used(0),
        used(1)
    );
    let full = used(0) == usize::from(inst) && used(1) == usize::from(data);
    release(&held)?;
    ensure!(full, "not every slot was installed");
    Ok(())
}

fn release(held: &[Handle]) -> Outcome {
    for &h in held {
        // The board has one CPU, synced once below for every unregister.
        let _cpus = HWBP.unregister(h).ctx("unregister")?;
    }
    HWBP.sync(0).ctx("sync")
}

/// Issue 7 step 5b: More flexible watchpoints than slots: `rotate` ticks multiplex them,
/// each gets running time, and every write during its running time is a hit.
pub fn flexible_rotation() -> Outcome {
    REC.clear();
    let SlotCounts::Separate { data, .. } = HWBP.slot_counts().ctx("slot_counts")? else {
        fail!("Arm has separate pools");
    };
    let n = usize::from(data) + 2;
    let mut hs: heapless::Vec<Handle, 16> = heapless::Vec::new();
    for w in ARRAY.iter().take(n) {
        let h = register(
            &cpu0(BreakpointAttr::watch(w.addr(), 4, Access::WRITE).flexible()),
            "register flexible",
        )?;
        let _ = hs.push(h);
    }
    const TICKS: u32 = 12;
    for tick in 0..TICKS {
        for w in ARRAY.iter().take(n) {
            w.store(tick);
        }
        HWBP.rotate(0).ctx("rotate")?;
    }
    let mut ok = true;
    let mut multiplexed = false;
    for (i, &h) in hs.iter().enumerate() {
        let t = HWBP.times(h).ctx("times")?;
        let n = hits(h)?;
        println!(
            "flexible {i}: enabled {} running {} hits {n}",
            t.enabled, t.running
        );
        ok &= t.running > 0 && n == t.running && t.enabled == u64::from(TICKS);
        multiplexed |= t.running < t.enabled;
    }
    release(&hs)?;
    ensure!(
        ok,
        "every flexible watchpoint must run and hit once per running tick"
    );
    ensure!(
        multiplexed,
        "{n} flexible watchpoints on {data} slots were never multiplexed"
    );
    Ok(())
}

/// Issue 7 step 6: Modify a live watchpoint to another variable.
pub fn modify() -> Outcome {
    REC.clear();
    let h = register(
        &cpu0(BreakpointAttr::watch(VAR_C.addr(), 4, Access::WRITE)),
        "register",
    )?;
    VAR_C.store(1);
    let before = hits(h)?;
    let set = HWBP
        .modify(
            h,
            &cpu0(BreakpointAttr::watch(VAR_D.addr(), 4, Access::WRITE)),
        )
        .ctx("modify")?;
    if set.contains(0) {
        HWBP.sync(0).ctx("sync")?;
    }
    VAR_C.store(2);
    let after_old = hits(h)?;
    VAR_D.store(3);
    let after_new = hits(h)?;
    unregister(h)?;
    println!("modify: hits {before} on old, {after_old} after writing old again, {after_new} after writing new");
    ensure!(
        before == 1 && after_old == 1 && after_new == 2,
        "modify: hits {before}/{after_old}/{after_new}"
    );
    let s = record(1)?.sample;
    ensure!(
        s.addr == VAR_D.addr() && s.region_addr == VAR_D.addr(),
        "second hit at {:#x}",
        s.addr
    );
    ensure!(VAR_C.load() == 2 && VAR_D.load() == 3, "stores lost");
    Ok(())
}

/// Issue 7 step 7: Continue after every hit: three back-to-back stores, three hits, the
/// slot re-armed after each.
pub fn continue_after_hits() -> Outcome {
    REC.clear();
    let steps0 = stepover::steps();
    let h = register(
        &cpu0(BreakpointAttr::watch(VAR_E.addr(), 4, Access::WRITE)),
        "register",
    )?;
    VAR_E.store3(100);
    let n = hits(h)?;
    unregister(h)?;
    let steps = stepover::steps() - steps0;
    println!(
        "continue: 3 consecutive stores -> {n} hits, {steps} step-overs, value {}",
        VAR_E.load()
    );
    ensure!(n == 3, "{n} hits, expected 3");
    let ips = probes::store32x3_ips();
    for (i, ip) in ips.iter().enumerate() {
        let r = record(i)?;
        ensure!(
            r.sample.ip == *ip,
            "hit {i} at ip {:#x}, expected {ip:#x}",
            r.sample.ip
        );
        let old = [Some(0x5555_5555), Some(100), Some(101)][i];
        ensure!(
            r.value == old,
            "hit {i} saw {:x?}, expected {old:x?}",
            r.value
        );
    }
    ensure!(VAR_E.load() == 102, "final value {}", VAR_E.load());

    // A breakpoint on the `str` and a watchpoint on what it writes: the
    // breakpoint fires first, then the watchpoint on the retry, while the
    // step is pending; each counts once and the store completes.
    REC.clear();
    let bp = register(
        &cpu0(BreakpointAttr::exec(probes::store32_ip())),
        "register breakpoint",
    )?;
    let wp = register(
        &cpu0(BreakpointAttr::watch(VAR_E.addr(), 4, Access::WRITE)),
        "register watchpoint",
    )?;
    VAR_E.store(200);
    VAR_E.store(201);
    let (nb, nw) = (hits(bp)?, hits(wp)?);
    unregister(bp)?;
    unregister(wp)?;
    println!(
        "continue: breakpoint on the str + watchpoint on its target, 2 stores -> {nb} + {nw} hits"
    );
    ensure!(
        nb == 2 && nw == 2,
        "{nb} breakpoint / {nw} watchpoint hits, expected 2 / 2"
    );
    ensure!(VAR_E.load() == 201, "final value {}", VAR_E.load());
    Ok(())
}
