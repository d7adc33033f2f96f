//! Sampled breakpoints on the real CPU: who touched a watched static, from
//! where, in this process and in another one, and what a ring that is too
//! small for the hits reports. No signal is involved, so these run on arm64
//! (`cargo xtask linux-arm64`) as on x86_64.
//!
//! Call chains come from the kernel walking frame pointers: the workspace's
//! `.cargo/config.toml` builds the Linux targets with
//! `-C force-frame-pointers=yes`.
//!
//! The kernel stops sampling an event for the rest of a timer tick once it
//! produced `perf_event_max_sample_rate / HZ` samples in it (the hits then
//! count but leave no record), so the writers pace themselves below half
//! that rate; each test checks that no throttling happened.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    feature = "symbols"
))]

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};

use hwbp_core::{Access, BreakpointAttr};
use hwbp_linux::symbols::{ChainReport, Frame, Symbolizer};
use hwbp_linux::{current_thread, Record, Sample, SampleOptions, SampledBreakpoint, Totals};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn gettid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Writes per millisecond that stay below half the kernel's throttle limit
/// whatever HZ is (the limit is `rate / HZ` per tick).
fn writes_per_ms() -> u64 {
    let rate: u64 = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1000);
    (rate / 2000).max(1)
}

/// Sleep a millisecond after every `per_ms`-th write.
fn pace(i: u64, per_ms: u64) {
    if (i + 1).is_multiple_of(per_ms) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The static the two call paths write: 8 bytes, watched whole. Each path
/// writes its own half with a plain store, so two threads never write the
/// same bytes (no data race) and no library function stands between the
/// store and the writer (as `AtomicU64::store` would in a debug build).
#[repr(C, align(8))]
struct Pair {
    a: u32,
    b: u32,
}

static mut SHARED: Pair = Pair { a: 0, b: 0 };

fn shared() -> u64 {
    &raw const SHARED as u64
}

/// The line of the store in [`write_a`] is `LINE_A + 3`.
const LINE_A: u32 = line!();
#[inline(never)]
fn write_a(v: u32) {
    // SAFETY: only thread A writes this half; nothing reads it.
    unsafe { SHARED.a = black_box(v).wrapping_add(1) };
}

const LINE_B: u32 = line!();
#[inline(never)]
fn write_b(v: u32) {
    // SAFETY: only thread B writes this half; nothing reads it.
    unsafe { SHARED.b = black_box(v) ^ 0x5555 };
}

#[inline(never)]
fn path_a(n: u64, per_ms: u64) {
    for i in 0..n {
        write_a(black_box(i as u32));
        pace(i, per_ms);
    }
}

#[inline(never)]
fn path_b(n: u64, per_ms: u64) {
    for i in 0..n {
        write_b(black_box(i as u32));
        pace(i, per_ms);
    }
}

/// Rings big enough for every record of a test read after the writes: on
/// arm64 a sample's user chain runs through std and the test harness (about
/// 40 frames, 400 bytes a record), and 700 of them overflow the default 64
/// pages. The kernel would report that drop only with the ring's next
/// record, which never comes once the writers are done.
fn big_rings() -> SampleOptions {
    SampleOptions {
        data_pages: 512,
        ..SampleOptions::default()
    }
}

fn must<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Read until a read finds nothing new (records published by other CPUs
/// just before are then in).
fn drain(bp: &mut SampledBreakpoint, records: &mut Vec<Record>) {
    must(bp.read(records), "read");
    for _ in 0..20 {
        let _ = must(bp.wait(std::time::Duration::from_millis(5)), "wait");
        if must(bp.read(records), "read") == 0 {
            break;
        }
    }
}

/// Samples per thread and the other records, for failure messages.
fn summary(records: &[Record]) -> String {
    let mut per_tid = std::collections::BTreeMap::new();
    let mut other = Vec::new();
    for r in records {
        match r {
            Record::Sample(s) => *per_tid.entry((s.tid, s.kernel_mode)).or_insert(0u32) += 1,
            r => other.push(format!("{r:?}")),
        }
    }
    format!("samples per (tid, kernel mode): {per_tid:?}; other records: {other:?}")
}

fn samples(records: &[Record]) -> Vec<&Sample> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Whether `frame` is the function `name` of this crate.
fn is(frame: &Frame, name: &str) -> bool {
    frame.function.as_deref() == Some(&format!("sampled::{name}"))
}

/// Group `samples` by their innermost two frames and check the two paths:
/// `write_a` called from `path_a` `a` times, `write_b` from `path_b` `b`
/// times, each at its store's line, and nothing else.
fn check_report(sym: &mut Symbolizer, samples: &[&Sample], a: u64, b: u64) {
    let mut report = ChainReport::new(2);
    for s in samples {
        report.add(sym.chain(s));
    }
    let entries = report.entries();
    let describe = || {
        entries
            .iter()
            .map(|e| {
                format!(
                    "{} x {:?}",
                    e.count,
                    e.frames
                        .iter()
                        .map(|f| (f.name(), f.place()))
                        .collect::<Vec<_>>()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        entries.len(),
        2,
        "two call chains expected:\n{}",
        describe()
    );
    let (big, small) = if a >= b {
        (("a", a, LINE_A), ("b", b, LINE_B))
    } else {
        (("b", b, LINE_B), ("a", a, LINE_A))
    };
    for (entry, (which, count, line)) in entries.iter().zip([big, small]) {
        assert_eq!(entry.count, count, "{}", describe());
        let want = (a + b) as f64;
        assert!(
            (entry.percent - count as f64 * 100.0 / want).abs() < 1e-9,
            "{}",
            describe()
        );
        let [leaf, caller] = &entry.frames[..] else {
            panic!("{}", describe())
        };
        assert!(is(leaf, &format!("write_{which}")), "{}", describe());
        assert!(is(caller, &format!("path_{which}")), "{}", describe());
        assert!(
            leaf.file
                .as_deref()
                .is_some_and(|f| f.ends_with("sampled.rs")),
            "{}",
            describe()
        );
        assert_eq!(
            leaf.line,
            Some(line + 4),
            "the store's line\n{}",
            describe()
        );
    }
}

/// Threads write the watched static 300 times through `path_a -> write_a`
/// and 700 times through `path_b -> write_b`; with a sample period of 1 the
/// report names both functions, their callers and lines, with exactly those
/// counts, and every sample comes from the thread that took that path.
#[test]
fn sampled_report_names_both_call_paths_with_exact_counts() {
    let _g = lock();
    let per_ms = writes_per_ms();
    let attr = BreakpointAttr::watch(shared(), 8, Access::WRITE)
        .target(current_thread())
        .inherit(true);
    let mut bp = must(
        SampledBreakpoint::open(&attr, &big_rings()),
        "open sampled breakpoint",
    );
    let (tx, rx) = mpsc::channel();
    let ta = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            tx.send(('a', gettid())).unwrap();
            path_a(300, per_ms)
        })
    };
    let tb = std::thread::spawn(move || {
        tx.send(('b', gettid())).unwrap();
        path_b(700, per_ms)
    });
    ta.join().unwrap();
    tb.join().unwrap();
    let tids: std::collections::HashMap<char, u32> = rx.iter().collect();
    let mut records = Vec::new();
    drain(&mut bp, &mut records);
    let all = samples(&records);
    let totals = bp.totals();
    assert_eq!(must(bp.count(), "count"), 1000);
    assert_eq!(
        totals,
        Totals {
            samples: 1000,
            lost: 0,
            throttled: 0,
            other: 0
        },
        "{}",
        summary(&records)
    );
    let pid = std::process::id();
    for s in &all {
        assert_eq!(s.pid, pid);
        assert_eq!(s.addr, shared());
        assert!(!s.kernel_mode);
        assert_eq!(
            s.user_chain.first(),
            Some(&s.ip),
            "the chain starts at the hit"
        );
    }
    let by = |t: char| all.iter().filter(|s| s.tid == tids[&t]).count();
    assert_eq!((by('a'), by('b')), (300, 700));
    let mut sym = must(Symbolizer::new(pid as i32), "symbolizer");
    check_report(&mut sym, &all, 300, 700);
}

/// A one-page ring and 1000 hits that are not read while they happen: the
/// kernel drops what does not fit and says so. Once the reader has made room,
/// the next hit brings the `PERF_RECORD_LOST` with it, and samples + lost
/// equal the kernel's count. Every record read is whole.
#[test]
fn a_full_ring_reports_lost_records_and_totals_add_up() {
    let _g = lock();
    static TINY: AtomicU64 = AtomicU64::new(0);
    let per_ms = writes_per_ms();
    let attr =
        BreakpointAttr::watch(TINY.as_ptr() as u64, 8, Access::WRITE).target(current_thread());
    let options = SampleOptions {
        data_pages: 1,
        ..SampleOptions::default()
    };
    let mut bp = must(
        SampledBreakpoint::open(&attr, &options),
        "open sampled breakpoint",
    );
    assert_eq!(bp.rings(), 1);
    for i in 0..1000 {
        TINY.store(black_box(i), Ordering::Relaxed);
        pace(i, per_ms);
    }
    let mut records = Vec::new();
    drain(&mut bp, &mut records);
    let first = bp.totals();
    assert!(
        first.samples < 1000,
        "a page cannot hold 1000 samples: {first:?}"
    );
    // The drops are reported with the next record the kernel writes.
    TINY.store(1, Ordering::Relaxed);
    drain(&mut bp, &mut records);
    let totals = bp.totals();
    let count = must(bp.count(), "count");
    assert_eq!(count, 1001);
    assert!(totals.lost > 0, "{totals:?}");
    assert_eq!(totals.throttled, 0, "{totals:?}");
    assert_eq!(totals.samples + totals.lost, count, "{totals:?}");
    assert!(matches!(records.last(), Some(Record::Sample(_))));
    assert!(matches!(records[records.len() - 2], Record::Lost { lost, .. } if lost == totals.lost));
    for s in samples(&records) {
        assert_eq!(s.addr, TINY.as_ptr() as u64);
        assert_eq!(s.tid, gettid());
    }
}

/// `read(2)` from `/dev/zero` into the watched static: the write happens in
/// kernel mode. On x86_64, where the kernel permits kernel-mode hits (root
/// here), they are sampled with a kernel call chain (the kernel's copy
/// routine up to the system call entry) and a user chain that reaches this
/// test; otherwise, and on arm64, only the user-mode write is counted.
#[test]
fn a_system_call_writing_the_watched_memory_is_sampled_in_kernel_mode() {
    let _g = lock();
    static BUF: AtomicU64 = AtomicU64::new(0);
    let attr =
        BreakpointAttr::watch(BUF.as_ptr() as u64, 8, Access::WRITE).target(current_thread());
    let mut bp = must(
        SampledBreakpoint::open(&attr, &SampleOptions::default()),
        "open sampled breakpoint",
    );
    let zero = must(std::fs::File::open("/dev/zero"), "/dev/zero");
    // SAFETY: 8 bytes into an 8-byte static the test owns.
    let n = unsafe {
        libc::read(
            std::os::fd::AsRawFd::as_raw_fd(&zero),
            BUF.as_ptr().cast(),
            8,
        )
    };
    assert_eq!(n, 8);
    BUF.store(1, Ordering::Relaxed); // one user-mode hit as well
    let mut records = Vec::new();
    drain(&mut bp, &mut records);
    let all = samples(&records);
    let count = must(bp.count(), "count");
    assert_eq!(
        all.len() as u64,
        count,
        "every hit sampled: {}",
        summary(&records)
    );
    let user = all.last().expect("the user-mode write");
    assert!(!user.kernel_mode && user.kernel_chain.is_empty());
    let kernel = &all[..all.len() - 1];
    // arm64 Linux arms a watchpoint on a user address for EL0 only (the
    // privilege follows the address), so the kernel's own stores are not seen
    // there even when perf would permit them (seen on 6.1 under QEMU).
    if bp.kernel_hits() && cfg!(target_arch = "x86_64") {
        // The kernel may fill the 8 bytes with several stores (one hit each).
        assert!(!kernel.is_empty(), "{}", summary(&records));
        let mut sym = must(Symbolizer::new(std::process::id() as i32), "symbolizer");
        for k in kernel {
            assert!(k.kernel_mode, "{k:?}");
            assert!(!k.kernel_chain.is_empty(), "kernel chain: {k:?}");
            assert!(
                !k.user_chain.is_empty(),
                "the system call's user chain: {k:?}"
            );
            let chain = sym.chain(k);
            let names: Vec<String> = chain.iter().map(Frame::name).collect();
            assert!(
                names.iter().any(|n| n.contains(
                    "a_system_call_writing_the_watched_memory_is_sampled_in_kernel_mode"
                )),
                "the user part reaches the test function: {names:?}"
            );
            assert_eq!(chain[0].object.as_deref(), Some("[kernel]"), "{names:?}");
        }
    } else {
        assert!(
            kernel.is_empty(),
            "kernel-mode hits are excluded when not permitted"
        );
        assert_eq!(count, 1);
    }
}

/// The environment variable that turns a start of this binary into the
/// watched child of [`another_process_is_watched_by_pid_with_all_its_threads`].
const CHILD: &str = "HWBP_SAMPLED_CHILD";

/// The child's watched static, found by the parent through its name.
static mut CHILD_TARGET: Pair = Pair { a: 0, b: 0 };

/// The child: one thread that exists before the parent opens the breakpoint
/// and one created after; prints its static's address, waits for `go`,
/// writes 300 times from the old thread (`path_a`) and 700 from the new one
/// (`path_b`, both against `CHILD_TARGET` through the same functions), prints
/// `done` and exits when its stdin closes.
fn child_main() -> ! {
    let per_ms = writes_per_ms();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let old = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        child_path_a(300, per_ms);
    });
    println!("ready {:#x}", &raw const CHILD_TARGET as u64);
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    let new = std::thread::spawn(move || child_path_b(700, per_ms));
    go_tx.send(()).unwrap();
    old.join().unwrap();
    new.join().unwrap();
    println!("done");
    let _ = std::io::stdin().read_line(&mut line);
    std::process::exit(0);
}

#[inline(never)]
fn child_write_a(v: u32) {
    // SAFETY: only the old thread writes this half.
    unsafe { CHILD_TARGET.a = black_box(v).wrapping_add(1) };
}

#[inline(never)]
fn child_write_b(v: u32) {
    // SAFETY: only the new thread writes this half.
    unsafe { CHILD_TARGET.b = black_box(v) ^ 0x5555 };
}

#[inline(never)]
fn child_path_a(n: u64, per_ms: u64) {
    for i in 0..n {
        child_write_a(black_box(i as u32));
        pace(i, per_ms);
    }
}

#[inline(never)]
fn child_path_b(n: u64, per_ms: u64) {
    for i in 0..n {
        child_write_b(black_box(i as u32));
        pace(i, per_ms);
    }
}

extern "C" fn child_entry() {
    if std::env::var_os(CHILD).is_some() {
        child_main();
    }
}

#[used]
#[link_section = ".init_array"]
static CHILD_ENTRY: extern "C" fn() = child_entry;

/// Another process, watched by pid: its static is found by name
/// (`CHILD_TARGET`, resolved in the child's mappings), a thread that existed
/// before the open and one created after it are both covered, every sample
/// carries the child's pid, and the report names the child's two paths with
/// exactly 300 and 700 hits.
#[test]
fn another_process_is_watched_by_pid_with_all_its_threads() {
    let _g = lock();
    let exe = must(std::env::current_exe(), "current_exe");
    let mut child = must(
        Command::new(exe)
            .env(CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn(),
        "spawn the child",
    );
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let printed = u64::from_str_radix(line.trim().trim_start_matches("ready 0x"), 16)
        .unwrap_or_else(|_| panic!("child said {line:?}"));
    let mut sym = must(Symbolizer::new(pid), "symbolizer");
    let found = must(sym.lookup("CHILD_TARGET"), "lookup CHILD_TARGET");
    assert_eq!(found.addr, printed, "{found:?}");
    assert_eq!(found.name, "sampled::CHILD_TARGET");
    assert_eq!(found.size, 8);
    assert_eq!(
        must(sym.lookup("sampled::CHILD_TARGET"), "lookup by path").addr,
        printed
    );

    let attr = BreakpointAttr::watch(printed, 8, Access::WRITE);
    let mut bp = must(
        SampledBreakpoint::open_process(pid, &attr, &big_rings()),
        "open_process",
    );
    assert!(
        bp.tasks().len() >= 2,
        "main thread and the old writer: {:?}",
        bp.tasks()
    );
    writeln!(stdin, "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    let mut records = Vec::new();
    drain(&mut bp, &mut records);
    let all = samples(&records);
    assert_eq!(must(bp.count(), "count"), 1000);
    assert_eq!(
        bp.totals(),
        Totals {
            samples: 1000,
            lost: 0,
            throttled: 0,
            other: 0
        }
    );
    assert!(all.iter().all(|s| s.pid == pid as u32 && s.addr == printed));
    let threads: std::collections::HashSet<u32> = all.iter().map(|s| s.tid).collect();
    assert_eq!(threads.len(), 2, "the old and the new writer thread");
    assert!(
        threads.iter().any(|t| bp.tasks().contains(&(*t as i32))),
        "the old thread had its own event"
    );
    assert!(
        threads.iter().any(|t| !bp.tasks().contains(&(*t as i32))),
        "the new thread inherited one"
    );

    let mut report = ChainReport::new(2);
    for s in &all {
        report.add(sym.chain(s));
    }
    let names: Vec<(u64, Vec<String>)> = report
        .entries()
        .iter()
        .map(|e| (e.count, e.frames.iter().map(Frame::name).collect()))
        .collect();
    assert_eq!(
        names,
        [
            (
                700,
                vec![
                    "sampled::child_write_b".to_owned(),
                    "sampled::child_path_b".to_owned()
                ]
            ),
            (
                300,
                vec![
                    "sampled::child_write_a".to_owned(),
                    "sampled::child_path_a".to_owned()
                ]
            ),
        ]
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// A process that does not exist, and one that has exited: the typed error,
/// from the breakpoint and from the symbolizer.
#[test]
fn a_missing_process_is_no_such_task() {
    let _g = lock();
    // SAFETY: the child only calls _exit; the parent reaps it.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: leaving the child at once, without running anything of the parent's.
        unsafe { libc::_exit(0) };
    }
    assert!(pid > 0, "fork");
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, core::ptr::null_mut(), 0) }, pid);
    let attr = BreakpointAttr::watch(0x1000, 8, Access::WRITE);
    for pid in [pid, -5] {
        let got = SampledBreakpoint::open_process(pid, &attr, &SampleOptions::default());
        assert!(
            matches!(got, Err(hwbp_linux::Error::NoSuchTask { .. })),
            "{pid}: {got:?}"
        );
    }
    let got = Symbolizer::new(pid);
    assert!(
        matches!(
            got,
            Err(hwbp_linux::symbols::SymbolError::NoSuchProcess { .. })
        ),
        "{got:?}"
    );
}

/// A ring of 3 data pages (not a power of two) is refused before anything
/// is opened; so is 0.
#[test]
fn ring_sizes_must_be_powers_of_two() {
    let _g = lock();
    static W: AtomicU64 = AtomicU64::new(0);
    let attr = BreakpointAttr::watch(W.as_ptr() as u64, 8, Access::WRITE).target(current_thread());
    for pages in [0, 3, 6] {
        let got = SampledBreakpoint::open(
            &attr,
            &SampleOptions {
                data_pages: pages,
                ..SampleOptions::default()
            },
        );
        assert!(
            matches!(&got, Err(hwbp_linux::Error::Unsupported(why)) if why.contains("power of two")),
            "{pages}: {got:?}"
        );
    }
}
