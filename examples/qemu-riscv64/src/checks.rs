//! The checks of issue 17, each verified by the firmware itself.

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use critical_section::Mutex;
use hwbp_core::{Access, BreakpointAttr, Error, Handle, SlotCounts, Target};
use hwbp_riscv::{RiscvCpuState, RiscvException};

use crate::probes::{self, Word};
use crate::{println, EBREAKS, HWBP, REC};
use board_kit::Record;

/// A failed check; the reason has already been printed as a `FAIL:` line.
pub struct Failure;
type Outcome = Result<(), Failure>;

static CURRENT: Mutex<Cell<&'static str>> = Mutex::new(Cell::new(""));

fn failure(why: core::fmt::Arguments) -> Failure {
    let name = critical_section::with(|cs| CURRENT.borrow(cs).get());
    board_kit::checks::fail(format_args!("{name}: {why}"));
    Failure
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(failure(format_args!("{} (`{}` is false)", format_args!($($arg)*), stringify!($cond))));
        }
    };
}

trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, Failure>;
}

impl<T> Ctx<T> for Result<T, Error> {
    fn ctx(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| failure(format_args!("{what}: {e}")))
    }
}

/// Breakpoint exceptions taken (all, ours or not).
static TRAPS: AtomicU32 = AtomicU32::new(0);

/// Called by the trap handler for every breakpoint exception.
pub fn note_trap(_raw: &RiscvException) {
    TRAPS.fetch_add(1, Ordering::Relaxed);
}

static VAR_A: Word = Word::new(0x1111_1111);
static VAR_B: Word = Word::new(0x2222_2222);
static VAR_C: Word = Word::new(0x3333_3333);
static VAR_D: Word = Word::new(0x4444_4444);
static VAR_E: Word = Word::new(0x5555_5555);
static BUF: Word = Word::new(0);
static ARRAY: [Word; 4] = [const { Word::new(0) }; 4];

fn register(attr: &BreakpointAttr, what: &str) -> Result<Handle, Failure> {
    let reg = HWBP.register(&attr.target(Target::Cpu(0))).ctx(what)?;
    if reg.sync.contains(0) {
        HWBP.sync(0).ctx("sync")?;
    }
    Ok(reg.handle)
}

fn release(hs: &[Handle]) -> Outcome {
    for &h in hs {
        // Only hart 0 exists: it is synced once below for every unregister.
        let _hart0 = HWBP.unregister(h).ctx("unregister")?;
    }
    HWBP.sync(0).ctx("sync")
}

/// Hart 0's backend state (step-overs, unexplained exceptions), kept by
/// the manager.
fn hart0() -> Result<&'static RiscvCpuState, Failure> {
    HWBP.backend_cpu(0).ctx("backend_cpu")
}

fn hits(h: Handle) -> Result<u64, Failure> {
    HWBP.hits(h).ctx("hits")
}

fn record(i: usize) -> Result<Record, Failure> {
    REC.get(i).ok_or_else(|| {
        failure(format_args!(
            "sample {i} missing ({} delivered)",
            REC.count()
        ))
    })
}

/// Run the checks in order; a failed check prints `FAIL:` and the rest still
/// run (a failed bring-up stops them: nothing after could work).
pub fn run() {
    type Check = (&'static str, fn() -> Outcome);
    let list: [Check; 14] = [
        ("trap round trip (ebreak)", ebreak_round_trip),
        ("bring-up", bring_up),
        ("discovery: tselect walk, tinfo, WARL probing", discovery),
        (
            "execute breakpoint with step-over, 3 calls -> 3 hits",
            breakpoint_three_calls,
        ),
        (
            "breakpoint on a taken branch: step-over follows it",
            breakpoint_on_branch,
        ),
        (
            "store watchpoint sees the value before the store",
            store_watch,
        ),
        ("load watchpoint", load_watch),
        ("AMO caught by a read-write watchpoint", amo_watch),
        ("region over two triggers", two_triggers),
        ("fill every trigger, next pinned refused", fill),
        ("flexible watchpoints multiplexed by rotate", flexible),
        ("modify a live watchpoint", modify),
        ("breakpoint and watchpoint on one store", bp_and_wp),
        ("no stray hits", no_stray),
    ];
    for (name, f) in list {
        critical_section::with(|cs| CURRENT.borrow(cs).set(name));
        match f() {
            Ok(()) => {
                board_kit::checks::pass(format_args!("{name}"));
            }
            Err(Failure) if name == "bring-up" => break,
            Err(Failure) => {}
        }
    }
}

fn ebreak_round_trip() -> Outcome {
    let (a, b): (usize, usize);
    // SAFETY: `ebreak` traps to the vector, whose handler skips it (not a
    // trigger) and restores every register.
    unsafe {
        core::arch::asm!(
            "li {a}, 0x55",
            "li {b}, 0xaa",
            "ebreak",
            "add {a}, {a}, {b}",
            a = out(reg) a,
            b = out(reg) b,
        );
    }
    let n = EBREAKS.load(Ordering::Relaxed);
    println!(
        "boot: ebreak taken {n}x and skipped, registers kept: {}",
        a == 0xff && b == 0xaa
    );
    ensure!(
        n == 1 && a == 0xff && b == 0xaa,
        "taken {n}, a={a:#x}, b={b:#x}"
    );
    Ok(())
}

fn bring_up() -> Outcome {
    // Discovery (tselect walk, tinfo, WARL probing) runs in init.
    HWBP.init(1).ctx("init")?;
    // The stored result, read without rewriting the triggers.
    println!(
        "bring-up: backend probed {} trigger(s), pool {:?}",
        HWBP.arch().total(),
        HWBP.arch().pool()
    );
    HWBP.cpu_online(0).ctx("cpu_online")?;
    println!("bring-up: manager initialized, hart 0 online");
    Ok(())
}

fn discovery() -> Outcome {
    let counts = HWBP.slot_counts().ctx("slot_counts")?;
    let pool = HWBP.arch().pool();
    let enc = HWBP.arch().encoder();
    println!(
        "discover: core uses {counts:?}; pool triggers {pool:?} as {:?}, modes {:?}, NAPOT up to 2^{}",
        enc.kind, enc.modes, enc.napot_max
    );
    // Read what the backend found, without rewriting the triggers again:
    // tinfo of each pool trigger through the same CSR access.
    let csrs = HWBP.arch().csrs();
    use hwbp_riscv::TriggerCsrs;
    for &i in pool.iter() {
        // SAFETY: no trap handler runs the backend now (nothing is
        // registered, no step-over pending), and it selects a trigger before
        // every access of its own: a changed tselect breaks nothing.
        unsafe { csrs.select(u64::from(i)) };
        println!("discover: trigger {i}: tinfo={:x?}", csrs.tinfo());
    }
    // The walk stops where tselect no longer reads back.
    let beyond = pool.len() as u64;
    // SAFETY: as above.
    let back = unsafe { csrs.select(beyond) };
    println!("discover: tselect <- {beyond} reads back {back:?}");
    ensure!(
        counts == SlotCounts::Shared(pool.len() as u8),
        "counts {counts:?}"
    );
    ensure!(!pool.is_empty(), "no trigger");
    ensure!(back != Some(beyond), "tselect kept a missing index");
    ensure!(enc.modes.m, "M-mode must be among the modes");
    Ok(())
}

fn breakpoint_three_calls() -> Outcome {
    REC.clear();
    let f = probes::traced_addr();
    let h = register(&BreakpointAttr::exec(f), "register breakpoint")?;
    let steps0 = hart0()?.steps();
    let mut acc = 0;
    for i in 0..3 {
        acc += probes::call_traced(core::hint::black_box(i));
    }
    let n = hits(h)?;
    release(&[h])?;
    let steps = hart0()?.steps() - steps0;
    println!(
        "breakpoint on traced() at {f:#x}: 3 calls -> {n} hits, {steps} step-overs (results {acc})"
    );
    ensure!(acc == 1 + 4 + 7, "traced() computed {acc}");
    ensure!(n == 3 && steps == 3, "{n} hits, {steps} steps");
    for i in 0..3 {
        let s = record(i)?.sample;
        ensure!(
            s.ip == f && s.addr == f && s.access == Access::EXEC,
            "sample {i}: ip {:#x} addr {:#x}",
            s.ip,
            s.addr
        );
    }
    Ok(())
}

fn breakpoint_on_branch() -> Outcome {
    REC.clear();
    let b = probes::branch_addr();
    let h = register(&BreakpointAttr::exec(b), "register breakpoint")?;
    let r = probes::call_count_to(core::hint::black_box(5));
    let n = hits(h)?;
    release(&[h])?;
    println!("breakpoint on the loop's bne at {b:#x}: taken 4x, falls through once -> {n} hits (count {r})");
    ensure!(r == 5, "count_to returned {r}");
    ensure!(n == 5, "{n} hits, expected 5");
    Ok(())
}

fn store_watch() -> Outcome {
    REC.clear();
    let h = register(
        &BreakpointAttr::watch(VAR_A.addr(), 1, Access::WRITE),
        "register",
    )?;
    VAR_B.store(7); // not watched
    VAR_A.store(0xC0FF_EE00);
    let n = hits(h)?;
    release(&[h])?;
    let r = record(0)?;
    let s = r.sample;
    println!(
        "store watchpoint: addr={:#x} access={:?} ip={:#x} (c.sw at {:#x}) before={:x?} after={:#x}",
        s.addr, s.access, s.ip, probes::store32_ip(), r.value, VAR_A.peek()
    );
    ensure!(n == 1 && REC.count() == 1, "{n} hits");
    ensure!(
        s.addr == VAR_A.addr() && s.access == Access::WRITE,
        "sample"
    );
    ensure!(s.ip == probes::store32_ip(), "ip");
    ensure!(
        r.value == Some(0x1111_1111),
        "value before the store {:x?}",
        r.value
    );
    ensure!(VAR_A.peek() == 0xC0FF_EE00, "the store did not complete");
    Ok(())
}

fn load_watch() -> Outcome {
    REC.clear();
    let h = register(
        &BreakpointAttr::watch(VAR_B.addr() + 2, 1, Access::READ),
        "register",
    )?;
    VAR_B.store(0x0102_0304); // a store: not watched
    let v = VAR_B.load();
    let n = hits(h)?;
    release(&[h])?;
    let r = record(0)?;
    let s = r.sample;
    println!(
        "load watchpoint on byte 2: word load -> {n} hit(s), addr={:#x} access={:?} ip={:#x} value seen {:x?}, loaded {v:#x}",
        s.addr, s.access, s.ip, r.value
    );
    ensure!(n == 1, "{n} hits");
    ensure!(
        s.access == Access::READ && s.ip == probes::load32_ip(),
        "sample"
    );
    // The word load starts at the variable: its lowest address.
    ensure!(s.addr == VAR_B.addr() || s.addr == VAR_B.addr() + 2, "addr");
    ensure!(v == 0x0102_0304 && r.value == Some(0x0102_0304), "values");
    Ok(())
}

fn amo_watch() -> Outcome {
    REC.clear();
    let h = register(
        &BreakpointAttr::watch(VAR_C.addr(), 1, Access::RW),
        "register",
    )?;
    let old = VAR_C.amoadd(1);
    let n = hits(h)?;
    release(&[h])?;
    let s = record(0)?.sample;
    println!(
        "amoadd.w on a read-write watchpoint: {n} hit(s), access={:?} ip={:#x} old={old:#x}",
        s.access, s.ip
    );
    ensure!(
        n == 1 && s.access == Access::RW && s.ip == probes::amoadd_ip(),
        "sample"
    );
    ensure!(
        old == 0x3333_3333 && VAR_C.peek() == 0x3333_3334,
        "the AMO did not complete"
    );
    Ok(())
}

fn two_triggers() -> Outcome {
    REC.clear();
    let start = BUF.addr() + 1;
    let h = register(&BreakpointAttr::watch(start, 2, Access::WRITE), "register")?;
    let w = HWBP.weight(h).ctx("weight")?;
    for i in 0..4 {
        BUF.store_byte(i, 0xA0 + i as u8);
    }
    let bytes = hits(h)?;
    BUF.store(0); // a word store over both pieces: one hit
    let n = hits(h)?;
    release(&[h])?;
    println!("region {start:#x}+2: weight {w}, byte stores at +0..+3 -> {bytes} hits, then a word store -> {} more", n - bytes);
    ensure!(w == 2, "weight {w}");
    ensure!(bytes == 2 && n == 3, "{bytes} / {n} hits");
    for (i, want) in [(0usize, start), (1, start + 1)] {
        let s = record(i)?.sample;
        ensure!(
            s.addr == want && s.ip == probes::store8_ip(),
            "piece hit {i} at {:#x}",
            s.addr
        );
        ensure!(
            (s.region_addr, s.region_len) == (start, 2),
            "not reported against the region"
        );
    }
    Ok(())
}

fn fill() -> Outcome {
    let SlotCounts::Shared(n) = HWBP.slot_counts().ctx("slot_counts")? else {
        return Err(failure(format_args!("RISC-V triggers are one shared pool")));
    };
    let mut held: heapless::Vec<Handle, 16> = heapless::Vec::new();
    for i in 0..usize::from(n) {
        // Alternate execute and data triggers: one pool for both.
        let attr = if i % 2 == 0 {
            BreakpointAttr::exec(probes::parking(i))
        } else {
            BreakpointAttr::watch(ARRAY[i % 4].addr(), 1, Access::WRITE)
        };
        match register(&attr, "fill") {
            Ok(h) => {
                let _ = held.push(h);
            }
            Err(f) => {
                release(&held)?;
                return Err(f);
            }
        }
    }
    let next = HWBP.register(&BreakpointAttr::exec(probes::parking(2)).target(Target::Cpu(0)));
    let image = HWBP.image(0).ctx("image")?;
    let used = image.pools[0]
        .iter()
        .filter(|s| **s != Default::default())
        .count();
    println!(
        "fill: {n} pinned accepted, next -> {:?}; installed image uses {used} of {n} triggers",
        next.map(|r| r.handle.index())
    );
    release(&held)?;
    ensure!(
        matches!(next, Err(Error::NoSlot { cpu: 0 })),
        "the next pinned request was not refused with NoSlot"
    );
    ensure!(used == usize::from(n), "not every trigger installed");
    Ok(())
}

fn flexible() -> Outcome {
    REC.clear();
    let SlotCounts::Shared(n) = HWBP.slot_counts().ctx("slot_counts")? else {
        return Err(failure(format_args!("one shared pool")));
    };
    let k = (usize::from(n) + 1).min(ARRAY.len());
    let mut hs: heapless::Vec<Handle, 4> = heapless::Vec::new();
    for w in ARRAY.iter().take(k) {
        let _ = hs.push(register(
            &BreakpointAttr::watch(w.addr(), 1, Access::WRITE).flexible(),
            "register flexible",
        )?);
    }
    const TICKS: u32 = 12;
    for tick in 0..TICKS {
        for w in ARRAY.iter().take(k) {
            w.store(tick);
        }
        HWBP.rotate(0).ctx("rotate")?;
    }
    let (mut ok, mut multiplexed) = (true, false);
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
        "{k} flexible watchpoints on {n} triggers were never multiplexed"
    );
    Ok(())
}

fn modify() -> Outcome {
    REC.clear();
    let h = register(
        &BreakpointAttr::watch(VAR_D.addr(), 1, Access::WRITE),
        "register",
    )?;
    VAR_D.store(1);
    let before = hits(h)?;
    let set = HWBP
        .modify(
            h,
            &BreakpointAttr::watch(VAR_E.addr(), 1, Access::WRITE).target(Target::Cpu(0)),
        )
        .ctx("modify")?;
    if set.contains(0) {
        HWBP.sync(0).ctx("sync")?;
    }
    VAR_D.store(2);
    let after_old = hits(h)?;
    VAR_E.store(3);
    let after_new = hits(h)?;
    release(&[h])?;
    println!("modify: hits {before} on old, {after_old} after writing old again, {after_new} after writing new");
    ensure!((before, after_old, after_new) == (1, 1, 2), "hits");
    ensure!(VAR_D.peek() == 2 && VAR_E.peek() == 3, "stores lost");
    Ok(())
}

fn bp_and_wp() -> Outcome {
    REC.clear();
    let bp = register(
        &BreakpointAttr::exec(probes::store32_ip()),
        "register breakpoint",
    )?;
    let wp = register(
        &BreakpointAttr::watch(VAR_E.addr(), 1, Access::WRITE),
        "register watchpoint",
    )?;
    let traps0 = TRAPS.load(Ordering::Relaxed);
    VAR_E.store(200);
    VAR_E.store(201);
    let traps = TRAPS.load(Ordering::Relaxed) - traps0;
    let (nb, nw) = (hits(bp)?, hits(wp)?);
    release(&[bp, wp])?;
    println!("breakpoint on the c.sw + watchpoint on its target, 2 stores -> {nb} + {nw} hits, {traps} traps");
    ensure!(nb == 2 && nw == 2, "hits");
    // Per store: the breakpoint, the watchpoint on the retry, the step.
    ensure!(traps == 6, "traps");
    ensure!(VAR_E.peek() == 201, "final value");
    Ok(())
}

fn no_stray() -> Outcome {
    let stray = HWBP.stray(0);
    let hart = hart0()?;
    let unexplained = hart.unexplained();
    println!(
        "stray hits filtered: {stray}, unexplained trigger exceptions: {unexplained}, step-overs: {}, breakpoint exceptions: {}, size fixups for QEMU: {}",
        hart.steps(),
        TRAPS.load(Ordering::Relaxed),
        HWBP.arch().csrs().fixups()
    );
    ensure!(stray == 0 && unexplained == 0, "stray");
    ensure!(!hart.step_pending(), "a step-over is still pending");
    Ok(())
}
