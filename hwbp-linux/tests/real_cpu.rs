//! End-to-end scenarios on this machine's real debug registers, through the
//! kernel's perf breakpoints (the checks of Linux's perf tests `bp_signal` and
//! `bp_signal_overflow`, plus the seed-003 requirements).
//!
//! Every scenario takes `LOCK`: the SIGTRAP handler is process-wide and a
//! per-CPU breakpoint takes a slot from every thread on that CPU, so scenarios
//! must not overlap. Each one uses its own statics and handler. A scenario the
//! kernel refuses (permissions, old kernel, no hardware) fails with the
//! library's message, which says why and what to do.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::hint::black_box;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use hwbp_core::{Access, BreakpointAttr, Target};
use hwbp_linux::{current_thread, Breakpoint, Delivery, Error, Hit, HitFn};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether the kernel can deliver a breakpoint's hits as synchronous SIGTRAPs
/// here. On arm64 it cannot (the step over the hit is spent on the signal
/// handler and the same instruction fires again for ever), so hwbp-linux
/// refuses `Delivery::Signal` there; the scenarios then check the kernel's
/// counts with `Delivery::CountOnly`, and the handler's effects only where a
/// handler can run.
const SIGNALS: bool = cfg!(target_arch = "x86_64");

/// `Delivery::Signal(handler)` where signals work, else `Delivery::CountOnly`.
fn delivery(handler: Option<HitFn>) -> Delivery {
    if SIGNALS {
        Delivery::Signal(handler)
    } else {
        Delivery::CountOnly
    }
}

/// On arm64: `Delivery::Signal` is refused with `Error::Unsupported` for
/// watchpoints and instruction breakpoints alike, before anything is opened.
fn assert_signal_refused(attr: &BreakpointAttr) {
    let got = Breakpoint::open(attr, Delivery::Signal(None));
    assert!(
        matches!(&got, Err(Error::Unsupported(why)) if why.contains("Delivery::CountOnly")),
        "{got:?}"
    );
}

fn must<T>(r: Result<T, Error>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn gettid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Eight bytes on their own, aligned so every 1/2/4/8-byte watch fits.
#[repr(C, align(64))]
struct Cell([u8; 64]);

impl Cell {
    const fn new() -> Self {
        Cell([0; 64])
    }
}

fn byte(cell: *mut Cell, i: usize) -> *mut u8 {
    // SAFETY: callers stay inside the 64 bytes.
    unsafe { cell.cast::<u8>().add(i) }
}

fn write(p: *mut u8, v: u8) {
    // SAFETY: p points into a static Cell.
    unsafe { p.write_volatile(v) }
}

fn read(p: *mut u8) -> u8 {
    // SAFETY: p points into a static Cell.
    unsafe { p.read_volatile() }
}

#[test]
fn four_pinned_watchpoints_then_no_slot() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    let c = &raw mut C;
    let base = c as usize;
    let watch = move |i: usize| {
        BreakpointAttr::watch((base + i * 8) as u64, 1, Access::WRITE).target(current_thread())
    };
    let four: Vec<Breakpoint> = (0..4)
        .map(|i| {
            must(
                Breakpoint::open(&watch(i), delivery(None)),
                "pinned watchpoint",
            )
        })
        .collect();
    match Breakpoint::open(&watch(4), delivery(None)) {
        Err(Error::NoSlot) => {}
        other => panic!("5th pinned watchpoint: expected Error::NoSlot, got {other:?}"),
    }
    // All four are really on the hardware: each fires once for its own byte.
    for i in 0..5 {
        write(byte(c, i * 8), 1);
    }
    for (i, bp) in four.iter().enumerate() {
        assert_eq!(must(bp.count(), "count"), 1, "watchpoint {i}");
        if SIGNALS {
            assert_eq!(bp.samples(), 1, "watchpoint {i}");
        }
    }
    // Another thread has its own four.
    std::thread::spawn(move || {
        let mine: Vec<Breakpoint> = (0..4)
            .map(|i| {
                must(
                    Breakpoint::open(&watch(i), Delivery::CountOnly),
                    "other thread",
                )
            })
            .collect();
        assert_eq!(mine.len(), 4);
    })
    .join()
    .unwrap();
    // Dropping one frees its slot (RAII).
    let mut four = four;
    drop(four.pop());
    let fifth = must(Breakpoint::open(&watch(4), delivery(None)), "after drop");
    write(byte(c, 32), 2);
    assert_eq!(must(fifth.count(), "count"), 1);
}

#[test]
fn one_byte_granularity() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    let c = &raw mut C;
    static HITS: AtomicU64 = AtomicU64::new(0);
    static ADDR: AtomicU64 = AtomicU64::new(0);
    fn on_hit(h: &Hit) {
        HITS.fetch_add(1, Ordering::SeqCst);
        ADDR.store(h.addr, Ordering::SeqCst);
    }
    let target = byte(c, 3);
    let attr = BreakpointAttr::watch(target as u64, 1, Access::WRITE).target(current_thread());
    let bp = must(
        Breakpoint::open(&attr, delivery(Some(on_hit))),
        "1-byte watchpoint",
    );
    write(byte(c, 2), 1);
    write(byte(c, 4), 1);
    assert_eq!(
        HITS.load(Ordering::SeqCst),
        0,
        "neighbouring bytes must not fire"
    );
    assert_eq!(must(bp.count(), "count"), 0);
    write(target, 1);
    if SIGNALS {
        assert_eq!(
            HITS.load(Ordering::SeqCst),
            1,
            "the handler ran before the next statement"
        );
        assert_eq!(ADDR.load(Ordering::SeqCst), target as u64);
    } else {
        assert_signal_refused(&attr);
    }
    assert_eq!(must(bp.count(), "count"), 1);
}

#[test]
fn read_write_and_write_only_triggers() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    let c = &raw mut C;
    let p = byte(c, 8);
    let rw = BreakpointAttr::watch(p as u64, 1, Access::RW).target(current_thread());
    let bp = must(Breakpoint::open(&rw, delivery(None)), "RW watchpoint");
    black_box(read(p));
    assert_eq!(must(bp.count(), "count"), 1, "a load fires RW");
    write(p, 5);
    assert_eq!(must(bp.count(), "count"), 2, "a store fires RW");
    if SIGNALS {
        assert_eq!(bp.samples(), 2);
    }
    drop(bp);

    let w = BreakpointAttr::watch(p as u64, 1, Access::WRITE).target(current_thread());
    let bp = must(Breakpoint::open(&w, delivery(None)), "W watchpoint");
    black_box(read(p));
    assert_eq!(must(bp.count(), "count"), 0, "a load does not fire W");
    write(p, 6);
    assert_eq!(must(bp.count(), "count"), 1);

    let r = BreakpointAttr::watch(p as u64, 1, Access::READ).target(current_thread());
    let got = Breakpoint::open(&r, delivery(None));
    if cfg!(target_arch = "x86_64") {
        // x86 has no read-only watchpoints: refused before the system call.
        assert!(
            matches!(
                got,
                Err(Error::Invalid(hwbp_core::Error::UnsupportedAccess))
            ),
            "{got:?}"
        );
    } else {
        let bp = must(got, "R watchpoint");
        black_box(read(p));
        write(p, 1);
        assert_eq!(must(bp.count(), "count"), 1, "only the load fires R");
    }
}

#[inline(never)]
extern "C" fn probe(x: u64) -> u64 {
    black_box(x).wrapping_mul(3).wrapping_add(1)
}

#[test]
fn execute_trigger() {
    let _g = lock();
    static HITS: AtomicU64 = AtomicU64::new(0);
    static IP: AtomicU64 = AtomicU64::new(0);
    fn on_hit(h: &Hit) {
        HITS.fetch_add(1, Ordering::SeqCst);
        IP.store(h.ip, Ordering::SeqCst);
    }
    let f: extern "C" fn(u64) -> u64 = black_box(probe);
    let attr = BreakpointAttr::exec(f as usize as u64).target(current_thread());
    let bp = must(
        Breakpoint::open(&attr, delivery(Some(on_hit))),
        "instruction breakpoint",
    );
    assert_eq!(must(bp.count(), "count"), 0);
    assert_eq!(f(2), 7);
    assert_eq!(must(bp.count(), "count"), 1);
    if SIGNALS {
        assert_eq!(HITS.load(Ordering::SeqCst), 1);
        // An instruction breakpoint is a fault: the saved PC is the
        // instruction, and the kernel resumes past it (x86 RF).
        assert_eq!(IP.load(Ordering::SeqCst), f as usize as u64);
    } else {
        assert_signal_refused(&attr);
    }
    // The kernel resumes past it (x86 RF, arm64 step) so it fires once per call.
    assert_eq!(f(3), 10);
    assert_eq!(must(bp.count(), "count"), 2);
    if SIGNALS {
        assert_eq!(HITS.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn handler_runs_on_the_thread_that_hit() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    static TID: AtomicI32 = AtomicI32::new(0);
    fn on_hit(h: &Hit) {
        // The handler's own view and the Hit agree.
        let me = gettid();
        TID.store(if me == h.tid { me } else { -1 }, Ordering::SeqCst);
    }
    let p = byte(&raw mut C, 0);
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE).target(current_thread());
    if !SIGNALS {
        // No handler can run on arm64: the refusal is what there is to check.
        return assert_signal_refused(&attr);
    }
    let _bp = must(
        Breakpoint::open(&attr, delivery(Some(on_hit))),
        "watchpoint",
    );
    write(p, 1);
    assert_eq!(TID.load(Ordering::SeqCst), gettid());
}

#[test]
fn inherit_into_a_spawned_thread() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    static TID: AtomicI32 = AtomicI32::new(0);
    static CALLS: AtomicU64 = AtomicU64::new(0);
    fn on_hit(h: &Hit) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        TID.store(h.tid, Ordering::SeqCst);
    }
    let p = byte(&raw mut C, 16) as usize;
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE)
        .target(current_thread())
        .inherit(true);
    let bp = must(
        Breakpoint::open(&attr, delivery(Some(on_hit))),
        "inherited watchpoint",
    );
    let (child_tid, calls_seen_in_child) = std::thread::spawn(move || {
        write(p as *mut u8, 1);
        (gettid(), CALLS.load(Ordering::SeqCst))
    })
    .join()
    .unwrap();
    assert_ne!(child_tid, gettid());
    if SIGNALS {
        assert_eq!(
            calls_seen_in_child, 1,
            "delivered synchronously in the child thread"
        );
        assert_eq!(
            TID.load(Ordering::SeqCst),
            child_tid,
            "handler ran on the thread that hit"
        );
    }
    // The exited thread's count is folded into the parent event.
    assert_eq!(must(bp.count(), "count"), 1);
    write(p as *mut u8, 2);
    if SIGNALS {
        assert_eq!(TID.load(Ordering::SeqCst), gettid());
    }
    assert_eq!(must(bp.count(), "count"), 2);
}

#[test]
fn inherit_into_a_forked_child() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    fn on_hit(_: &Hit) {
        CALLS.fetch_add(1, Ordering::SeqCst);
    }
    let p = byte(&raw mut C, 24);
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE)
        .target(current_thread())
        .inherit(true);
    let bp = must(
        Breakpoint::open(&attr, delivery(Some(on_hit))),
        "inherited watchpoint",
    );
    // SAFETY: the child only does volatile stores, atomic loads and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        for i in 0..3 {
            write(p, i);
        }
        let calls = CALLS.load(Ordering::SeqCst);
        // SAFETY: leaving the child without running the parent's destructors.
        unsafe { libc::_exit(calls as i32) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        if SIGNALS { 3 } else { 0 },
        "the child's handler saw its 3 writes (no handler on arm64)"
    );
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        0,
        "the parent saw none of them"
    );
    assert_eq!(
        must(bp.count(), "count"),
        3,
        "the child's copy is summed into the parent's count"
    );
}

#[test]
fn a_forked_child_cannot_switch_or_move_the_parents_breakpoint() {
    // The child shares the parent's perf events (its descriptors are copies),
    // so enable/disable/modify there would act on the parent's breakpoint.
    let _g = lock();
    static mut C: Cell = Cell::new();
    let c = &raw mut C;
    let (p, q) = (byte(c, 8), byte(c, 16));
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE).target(current_thread());
    let mut bp = must(Breakpoint::open(&attr, Delivery::CountOnly), "watchpoint");
    let parent = std::process::id() as i32;
    // `fork(3)`, and a raw `clone` that runs no `pthread_atfork` handler (the
    // process id hwbp-linux caches must still be the child's own).
    type Fork = fn() -> i32;
    let forks: [(&str, Fork); 2] = [
        // SAFETY: the child makes no allocation and leaves with _exit.
        ("fork", || unsafe { libc::fork() }),
        // SAFETY: as above; a clone with only the exit signal is a fork.
        ("raw clone", || unsafe {
            libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) as i32
        }),
    ];
    for (how, fork) in forks {
        let pid = fork();
        assert!(pid >= 0, "{how} failed");
        if pid == 0 {
            let refused = |r: Result<(), Error>| matches!(r, Err(Error::OtherProcess { opened_by }) if opened_by == parent);
            let mut bits = 0;
            if refused(bp.disable()) {
                bits |= 1;
            }
            if refused(bp.modify(&attr.addr(q as u64))) {
                bits |= 2;
            }
            if refused(bp.enable()) {
                bits |= 4;
            }
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(bits) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status),
            "{how}: child died: status {status:#x}"
        );
        assert_eq!(
            libc::WEXITSTATUS(status),
            7,
            "{how}: disable, modify and enable refused in the child (bits 1, 2, 4)"
        );
    }
    write(q, 1);
    write(p, 1);
    assert_eq!(
        must(bp.count(), "count"),
        1,
        "the parent's breakpoint is still armed on its own address"
    );
    // In the process that opened it, they work.
    must(bp.disable(), "disable");
    write(p, 2);
    assert_eq!(must(bp.count(), "count"), 1);
    must(bp.modify(&attr.addr(q as u64)), "modify");
    write(q, 2);
    assert_eq!(must(bp.count(), "count"), 2);
}

/// The environment variable that makes this test binary, when a child execs
/// it, write 3 times to the page at the (hex) address it names and exit,
/// before the test harness starts ([`exec_writer`]).
const EXEC_WRITE: &str = "HWBP_EXEC_WRITE";

/// Runs before `main` in every start of this binary; does nothing unless
/// [`EXEC_WRITE`] is set. Then it maps the page at that address (exit status
/// 2 if it cannot have that address), writes 3 bytes there, and exits 0.
extern "C" fn exec_writer() {
    // SAFETY: a NUL-terminated name; getenv only reads the environment.
    let value = unsafe { libc::getenv(c"HWBP_EXEC_WRITE".as_ptr()) };
    if value.is_null() {
        return;
    }
    // SAFETY: `value` is a NUL-terminated string from the environment.
    let addr = unsafe { libc::strtoul(value, core::ptr::null_mut(), 16) } as usize;
    // SAFETY: a fresh anonymous mapping where nothing is mapped (NOREPLACE);
    // the writes stay inside it; _exit ends the process.
    unsafe {
        let page = libc::mmap(
            addr as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        if page as usize != addr {
            libc::_exit(2);
        }
        for i in 0..3 {
            page.cast::<u8>().write_volatile(i);
        }
        libc::_exit(0);
    }
}

#[used]
#[link_section = ".init_array"]
static EXEC_WRITER: extern "C" fn() = exec_writer;

#[test]
fn a_count_only_breakpoint_does_not_follow_a_child_into_exec() {
    // An inherited copy left in the new program would count its hits at the
    // same address and hold one of its debug registers.
    let _g = lock();
    // SAFETY: a new anonymous page of our own, unmapped at the end.
    let page = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    let p = page.cast::<u8>();
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE)
        .target(current_thread())
        .inherit(true);
    let bp = must(
        Breakpoint::open(&attr, Delivery::CountOnly),
        "inherited count-only watchpoint",
    );
    // Built before the fork: the child only writes, execs and exits.
    let exe = std::ffi::CString::new("/proc/self/exe").unwrap();
    let env = std::ffi::CString::new(format!("{EXEC_WRITE}={:x}", p as usize)).unwrap();
    let argv = [exe.as_ptr(), core::ptr::null()];
    let envp = [env.as_ptr(), core::ptr::null()];
    // SAFETY: the child does a volatile store, execve and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        write(p, 1);
        // SAFETY: NUL-terminated path, argv and envp that outlive the call.
        unsafe {
            libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the exec'd program mapped the page at the same address and wrote it 3 times"
    );
    assert_eq!(
        must(bp.count(), "count"),
        1,
        "the child's write before exec counts; the new program's 3 do not"
    );
    drop(bp);
    // SAFETY: the page mapped above, no longer used.
    assert_eq!(unsafe { libc::munmap(page, 4096) }, 0);
}

#[test]
fn a_thousand_writes_give_exactly_a_thousand_hits() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    fn on_hit(_: &Hit) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
    let p = byte(&raw mut C, 32).cast::<u64>();
    let attr = BreakpointAttr::watch(p as u64, 8, Access::WRITE).target(current_thread());
    let bp = must(
        Breakpoint::open(&attr, delivery(Some(on_hit))),
        "watchpoint",
    );
    for i in 0..1000u64 {
        // SAFETY: p is an aligned u64 inside a static Cell.
        unsafe { p.write_volatile(i) };
    }
    if SIGNALS {
        assert_eq!(CALLS.load(Ordering::Relaxed), 1000);
        assert_eq!(bp.samples(), 1000);
    }
    assert_eq!(must(bp.count(), "count"), 1000);
}

/// Block or unblock SIGTRAP in the calling thread.
fn block_sigtrap(block: bool) {
    // SAFETY: `set` is a valid sigset filled below; pthread_sigmask only
    // changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTRAP);
        let how = if block {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        assert_eq!(libc::pthread_sigmask(how, &set, core::ptr::null_mut()), 0);
    }
}

#[test]
fn hits_while_sigtrap_is_blocked_come_as_one_late_delivery_covering_them_all() {
    // SIGTRAP is not queued: 1000 hits while it is blocked leave one signal.
    let _g = lock();
    static mut C: Cell = Cell::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static COVERS: AtomicU64 = AtomicU64::new(0);
    static LATE: AtomicU64 = AtomicU64::new(0);
    fn on_hit(h: &Hit) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        COUNT.store(h.count.unwrap_or(u64::MAX), Ordering::SeqCst);
        COVERS.store(h.covers, Ordering::SeqCst);
        LATE.store(u64::from(h.late()), Ordering::SeqCst);
    }
    let p = byte(&raw mut C, 0).cast::<u64>();
    let attr = BreakpointAttr::watch(p as u64, 8, Access::WRITE).target(current_thread());
    if !SIGNALS {
        return assert_signal_refused(&attr);
    }
    let bp = must(Breakpoint::with_handler(&attr, on_hit), "watchpoint");
    block_sigtrap(true);
    for i in 0..1000u64 {
        // SAFETY: p is an aligned u64 inside a static Cell.
        unsafe { p.write_volatile(i) };
    }
    let pending = CALLS.load(Ordering::SeqCst);
    // The pending signal is delivered as the mask call returns.
    block_sigtrap(false);
    assert_eq!(pending, 0, "nothing delivered while blocked");
    assert_eq!(must(bp.count(), "count"), 1000);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1, "one delivery");
    assert_eq!(bp.samples(), 1);
    assert_eq!(LATE.load(Ordering::SeqCst), 1, "marked late");
    assert_eq!(COUNT.load(Ordering::SeqCst), 1000, "the count it read");
    assert_eq!(COVERS.load(Ordering::SeqCst), 1000, "it covers every hit");
    assert_eq!(bp.hits_delivered(), 1000);
}

#[test]
fn a_handler_hitting_its_own_watchpoint_gets_one_late_delivery_for_both_hits() {
    // While the handler runs SIGTRAP is blocked: its two writes leave one
    // signal, delivered when it returns.
    let _g = lock();
    static mut C: Cell = Cell::new();
    static WORD: AtomicU64 = AtomicU64::new(0);
    static SEEN: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
    fn on_hit(h: &Hit) {
        let n = h.sample as usize;
        if let Some(seen) = SEEN.get(n - 1) {
            // count, covers and late in one word: count << 16 | covers << 1 | late
            let packed = h.count.unwrap_or(0xffff) << 16 | h.covers << 1 | u64::from(h.late());
            seen.store(packed, Ordering::SeqCst);
        }
        if n == 1 {
            let p = WORD.load(Ordering::SeqCst) as *mut u64;
            // SAFETY: p is an aligned u64 inside a static Cell.
            unsafe {
                p.write_volatile(10);
                p.write_volatile(11);
            }
        }
    }
    let p = byte(&raw mut C, 8).cast::<u64>();
    WORD.store(p as u64, Ordering::SeqCst);
    let attr = BreakpointAttr::watch(p as u64, 8, Access::WRITE).target(current_thread());
    if !SIGNALS {
        return assert_signal_refused(&attr);
    }
    let bp = must(Breakpoint::with_handler(&attr, on_hit), "watchpoint");
    // SAFETY: as above.
    unsafe { p.write_volatile(1) };
    assert_eq!(must(bp.count(), "count"), 3);
    assert_eq!(bp.samples(), 2);
    let seen = SEEN.each_ref().map(|s| s.load(Ordering::SeqCst));
    let unpack = |w: u64| (w >> 16, w >> 1 & 0x7fff, w & 1 == 1);
    assert_eq!(
        unpack(seen[0]),
        (1, 1, false),
        "first: count 1, covers 1, on time"
    );
    assert_eq!(
        unpack(seen[1]),
        (3, 2, true),
        "second: count 3, covers both, late"
    );
    assert_eq!(seen[2], 0, "no third delivery");
    assert_eq!(bp.hits_delivered(), 3);
}

#[test]
fn a_handler_can_disable_its_own_breakpoint() {
    // A one-shot watchpoint: the handler disarms it on the first hit.
    let _g = lock();
    static mut C: Cell = Cell::new();
    static ONE_SHOT: std::sync::OnceLock<Breakpoint> = std::sync::OnceLock::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    fn on_hit(_: &Hit) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        if let Some(bp) = ONE_SHOT.get() {
            let _ = bp.disable();
        }
    }
    let p = byte(&raw mut C, 16).cast::<u64>();
    let attr = BreakpointAttr::watch(p as u64, 8, Access::WRITE).target(current_thread());
    if !SIGNALS {
        assert_signal_refused(&attr);
        return;
    }
    let bp = must(
        Breakpoint::open(&attr, Delivery::Signal(Some(on_hit))),
        "watchpoint",
    );
    assert!(ONE_SHOT.set(bp).is_ok());
    for i in 0..100u64 {
        // SAFETY: p is an aligned u64 inside a static Cell.
        unsafe { p.write_volatile(i) };
    }
    assert_eq!(CALLS.load(Ordering::Relaxed), 1);
    let bp = ONE_SHOT.get().unwrap();
    assert_eq!(must(bp.count(), "count"), 1);
    // Armed again from the program, it fires again.
    must(bp.enable(), "enable");
    // SAFETY: as above.
    unsafe { p.write_volatile(7) };
    assert_eq!(CALLS.load(Ordering::Relaxed), 2);
}

#[test]
fn sample_period_100_over_10000_executions() {
    let _g = lock();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    static LAST: AtomicU64 = AtomicU64::new(0);
    fn on_hit(h: &Hit) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        LAST.store(h.sample, Ordering::Relaxed);
    }
    let f: extern "C" fn(u64) -> u64 = black_box(probe);
    let attr = BreakpointAttr::exec(f as usize as u64)
        .target(current_thread())
        .sample_period(100);
    let bp = must(
        Breakpoint::open(&attr, delivery(Some(on_hit))),
        "instruction breakpoint",
    );
    let mut acc = 0u64;
    for i in 0..10_000 {
        acc = acc.wrapping_add(f(i));
    }
    black_box(acc);
    if SIGNALS {
        assert_eq!(CALLS.load(Ordering::Relaxed), 100);
        assert_eq!(LAST.load(Ordering::Relaxed), 100);
    } else {
        // Not even a sample period makes signals usable there: every signal
        // would add a second hit of the same instruction to the count.
        assert_signal_refused(&attr);
    }
    assert_eq!(must(bp.count(), "count"), 10_000);
}

#[test]
fn enable_disable_and_modify() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    let c = &raw mut C;
    let (a, b) = (byte(c, 40), byte(c, 48));
    let attr = BreakpointAttr::watch(a as u64, 1, Access::WRITE)
        .target(current_thread())
        .disabled(true);
    let mut bp = must(Breakpoint::open(&attr, delivery(None)), "watchpoint");
    write(a, 1);
    assert_eq!(must(bp.count(), "count"), 0, "opened disabled");
    must(bp.enable(), "enable");
    write(a, 1);
    assert_eq!(must(bp.count(), "count"), 1);
    must(bp.disable(), "disable");
    write(a, 1);
    assert_eq!(must(bp.count(), "count"), 1, "disabled: not counted");
    // Move it to b, enabled, as a 4-byte RW watch.
    let moved = attr
        .addr(b as u64)
        .len(4)
        .access(Access::RW)
        .disabled(false);
    must(bp.modify(&moved), "modify");
    write(a, 1);
    assert_eq!(
        must(bp.count(), "count"),
        1,
        "old address no longer watched"
    );
    black_box(read(byte(c, 50)));
    assert_eq!(must(bp.count(), "count"), 2, "new 4-byte RW region watched");
    if SIGNALS {
        assert_eq!(bp.samples(), 2);
    }
    // What perf cannot change in place is refused before the ioctl.
    assert!(matches!(
        bp.modify(&moved.sample_period(2)),
        Err(Error::Unsupported(_))
    ));
    // x86 wants natural alignment; arm64 takes any 1-8 bytes inside one
    // doubleword, and only a region crossing one is refused.
    let unaligned = moved.addr(b as u64 + 1);
    if cfg!(target_arch = "x86_64") {
        assert!(matches!(
            bp.modify(&unaligned),
            Err(Error::Invalid(hwbp_core::Error::Misaligned { .. }))
        ));
    } else {
        must(
            bp.modify(&unaligned),
            "modify to bytes 1..5 of a doubleword",
        );
        black_box(read(byte(c, 52)));
        black_box(read(byte(c, 53)));
        assert_eq!(
            must(bp.count(), "count"),
            3,
            "byte 4 of 1..5 watched, 5 not"
        );
        assert!(matches!(
            bp.modify(&moved.addr(b as u64 + 6)),
            Err(Error::Invalid(hwbp_core::Error::Misaligned { .. }))
        ));
    }
}

#[test]
fn per_cpu_breakpoint_counts_and_refuses_signals() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    let p = byte(&raw mut C, 56) as usize;
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE).target(Target::Cpu(0));
    assert!(matches!(
        Breakpoint::open(&attr, Delivery::Signal(None)),
        Err(Error::Unsupported(_))
    ));
    // Run on CPU 0 only, in a thread of our own so the affinity does not leak.
    std::thread::spawn(move || {
        // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
        unsafe {
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, core::mem::size_of_val(&set), &set),
                0
            );
        }
        let bp = must(
            Breakpoint::open(&attr, Delivery::CountOnly),
            "per-CPU watchpoint (needs root)",
        );
        for _ in 0..5 {
            write(p as *mut u8, 1);
        }
        assert_eq!(must(bp.count(), "count"), 5);
    })
    .join()
    .unwrap();
}

#[test]
fn invalid_requests_are_refused_before_the_kernel() {
    let _g = lock();
    const MISALIGNED: u64 = if cfg!(target_arch = "x86_64") {
        0x1001
    } else {
        0x1006
    };
    let me = current_thread();
    let cases = [
        (
            BreakpointAttr::watch(0x1000, 0, Access::WRITE),
            hwbp_core::Error::ZeroLength,
        ),
        // Not naturally aligned (x86); crossing a doubleword (arm64, which
        // takes 0x1001..0x1005).
        (
            BreakpointAttr::watch(MISALIGNED, 4, Access::WRITE),
            hwbp_core::Error::Misaligned {
                addr: MISALIGNED,
                align: 4,
            },
        ),
        (
            BreakpointAttr::watch(0xffff_ffff_ff60_0000, 8, Access::RW),
            hwbp_core::Error::KernelAddress,
        ),
        (
            BreakpointAttr::watch(0x1000, 8, Access::EXEC | Access::WRITE),
            hwbp_core::Error::ExecWithData,
        ),
    ];
    for (attr, want) in cases {
        let got = Breakpoint::open(&attr.target(me), Delivery::Signal(None));
        assert!(
            matches!(got, Err(Error::Invalid(e)) if e == want),
            "{attr:?}: {got:?}"
        );
    }
    // Excluding user space leaves nothing to watch from user space.
    let got = Breakpoint::open(
        &BreakpointAttr::watch(0x1000, 1, Access::WRITE)
            .target(me)
            .exclude_user(true),
        Delivery::CountOnly,
    );
    assert!(
        matches!(
            got,
            Err(Error::Invalid(hwbp_core::Error::ExcludesEverything))
        ),
        "{got:?}"
    );
}

#[test]
fn open_process_covers_threads_that_already_exist() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    static TID: AtomicI32 = AtomicI32::new(0);
    fn on_hit(h: &Hit) {
        TID.store(h.tid, Ordering::SeqCst);
    }
    let p = byte(&raw mut C, 0) as usize;
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<i32>();
    // This thread exists before the breakpoint is opened: plain inheritance
    // would not reach it.
    let old = std::thread::spawn(move || {
        ready_tx.send(gettid()).unwrap();
        go_rx.recv().unwrap();
        write(p as *mut u8, 1);
    });
    let old_tid = ready_rx.recv().unwrap();
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE);
    let bp = must(
        Breakpoint::open_process(&attr, delivery(Some(on_hit))),
        "per-process",
    );
    go_tx.send(()).unwrap();
    old.join().unwrap();
    if SIGNALS {
        assert_eq!(TID.load(Ordering::SeqCst), old_tid);
    }
    assert_eq!(must(bp.count(), "count"), 1, "the old thread's write");
    write(p as *mut u8, 2);
    if SIGNALS {
        assert_eq!(TID.load(Ordering::SeqCst), gettid());
    }
    assert_eq!(must(bp.count(), "count"), 2);
}

#[test]
fn a_foreign_sigtrap_still_takes_its_default_action() {
    let _g = lock();
    static mut C: Cell = Cell::new();
    let p = byte(&raw mut C, 8);
    let attr = BreakpointAttr::watch(p as u64, 1, Access::WRITE).target(current_thread());
    if !SIGNALS {
        // No handler is installed on arm64 (the request is refused first).
        return assert_signal_refused(&attr);
    }
    // Opening a signalling breakpoint installs the process-wide handler.
    let bp = must(Breakpoint::open(&attr, delivery(None)), "watchpoint");
    // SAFETY: the child raises a signal and, if it survives, exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            // No core file from the expected death.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            libc::raise(libc::SIGTRAP);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTRAP,
        "the child should die of SIGTRAP (default action), status {status:#x}"
    );
    write(p, 1);
    assert_eq!(bp.samples(), 1, "our own traps are still handled");
}
