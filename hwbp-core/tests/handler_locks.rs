//! Handlers may call the manager. Unregistering never waits for a handler
//! ("hide now, reclaim later"), so no pair of handlers and unregisters can
//! wait for each other: a handler may take critical sections while another
//! CPU unregisters its breakpoint, handlers on two CPUs may unregister each
//! other's breakpoint, and a handler may unregister its own. Storage a
//! running handler still uses is not reused, and `wait_quiesced` (outside
//! handlers) tells when the handler of an unregistered breakpoint is over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{Access, BreakpointAttr, Error, Handle, Manager, Sample, Target, TaskId};

static IN_HANDLER: AtomicBool = AtomicBool::new(false);
static UNREGISTERED: AtomicBool = AtomicBool::new(false);
static HANDLER_DONE: AtomicBool = AtomicBool::new(false);

fn handler(_: &Sample) {
    IN_HANDLER.store(true, Ordering::SeqCst);
    while !UNREGISTERED.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    // Like a handler that records the sample in a `critical_section::Mutex`
    // after its breakpoint was unregistered elsewhere.
    critical_section::with(|_| {});
    HANDLER_DONE.store(true, Ordering::SeqCst);
}

type Hw = Manager<Mock, fn(&Sample), 2, 4, 2>;

/// A two-CPU manager for the whole test run, both CPUs online.
fn manager(handler: fn(&Sample)) -> &'static Hw {
    let hw: &'static Hw = Box::leak(Box::new(Manager::new(
        Mock::new(MockConfig::X86_LIKE),
        handler,
    )));
    hw.init(2).unwrap();
    hw.cpu_online(0).unwrap();
    hw.cpu_online(1).unwrap();
    hw
}

#[test]
fn unregister_returns_while_a_handler_that_takes_a_critical_section_runs() {
    let hw = manager(handler);
    let h = hw
        .register(&BreakpointAttr::watch(0x1000, 4, Access::WRITE).target(Target::Cpu(1)))
        .unwrap()
        .handle;
    hw.sync(1).unwrap();
    // "CPU 1" hits the breakpoint and runs the handler.
    let cpu1 = thread::spawn(move || hw.access(1, 0x1000, 4, Access::WRITE, 0x4000));
    while !IN_HANDLER.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    // "CPU 0" unregisters meanwhile: it does not wait for the handler.
    let r = within_10s("unregister while the handler runs", move || {
        hw.unregister(h)
    });
    assert!(r.is_ok());
    assert_eq!(hw.hits(h), Err(Error::StaleHandle));
    assert!(hw.is_empty());
    // The handler is still running: not quiesced.
    assert_eq!(hw.quiesced(h), Ok(false));
    UNREGISTERED.store(true, Ordering::SeqCst);
    // Waiting (outside any handler) ends when the handler has finished.
    within_10s("wait_quiesced", move || hw.wait_quiesced(h)).unwrap();
    assert!(
        HANDLER_DONE.load(Ordering::SeqCst),
        "wait returned before the handler ended"
    );
    assert_eq!(hw.quiesced(h), Ok(true));
    cpu1.join().unwrap();
}

static IN_SLOW: AtomicBool = AtomicBool::new(false);
static RELEASE_SLOW: AtomicBool = AtomicBool::new(false);

fn slow_handler(_: &Sample) {
    IN_SLOW.store(true, Ordering::SeqCst);
    while !RELEASE_SLOW.load(Ordering::SeqCst) {
        thread::yield_now();
    }
}

#[test]
fn storage_of_an_unregistered_breakpoint_is_not_reused_while_its_handler_runs() {
    let hw = manager(slow_handler);
    let watch = |addr| BreakpointAttr::watch(addr, 4, Access::WRITE).target(Target::Cpu(1));
    let old = hw.register(&watch(0x1000)).unwrap().handle;
    hw.sync(1).unwrap();
    let cpu1 = thread::spawn(move || hw.access(1, 0x1000, 4, Access::WRITE, 0x4000));
    while !IN_SLOW.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    // The unregister hides the breakpoint and returns; its handler runs on.
    let _ = hw.unregister(old).unwrap();
    assert!(hw.is_empty());
    assert_eq!(hw.quiesced(old), Ok(false));
    assert_eq!(hw.all_quiesced(), Ok(false));
    // A new breakpoint meanwhile does not take the storage still in use.
    let new = hw.register(&watch(0x2000)).unwrap().handle;
    assert_ne!(new.index(), old.index());
    assert_eq!(hw.quiesced(new), Err(Error::StillRegistered));
    RELEASE_SLOW.store(true, Ordering::SeqCst);
    cpu1.join().unwrap();
    assert_eq!(hw.quiesced(old), Ok(true));
    assert_eq!(hw.all_quiesced(), Ok(true));
    assert_eq!(hw.hits(new), Ok(0), "the old hit was not credited to it");
    // Once the handler is over, the storage is reused (lowest index first).
    let _ = hw.unregister(new).unwrap();
    let again = hw.register(&watch(0x3000)).unwrap().handle;
    assert_eq!(again.index(), old.index());
    // The old handle names nothing live, and stays quiesced.
    assert_eq!(hw.quiesced(old), Ok(true));
    assert_eq!(hw.attr(old), Err(Error::StaleHandle));
}

static EXIT_HW: std::sync::OnceLock<&'static Hw> = std::sync::OnceLock::new();
static EXIT_RESULT: std::sync::Mutex<Option<Result<hwbp_core::CpuSet, Error>>> =
    std::sync::Mutex::new(None);

/// A task's breakpoint whose handler ends the task: `exit` unregisters the
/// breakpoint being delivered.
fn exiting_handler(_: &Sample) {
    let hw = *EXIT_HW.get().unwrap();
    *EXIT_RESULT.lock().unwrap() = Some(hw.exit(TaskId(7)));
}

#[test]
fn a_handler_may_exit_its_own_task() {
    let hw = manager(exiting_handler);
    EXIT_HW.set(hw).ok();
    let task = Target::Task {
        task: TaskId(7),
        cpu: None,
    };
    let x = hw
        .register(&BreakpointAttr::watch(0x1000, 4, Access::WRITE).target(task))
        .unwrap()
        .handle;
    let y = hw
        .register(&BreakpointAttr::watch(0x2000, 4, Access::WRITE).target(task))
        .unwrap()
        .handle;
    hw.sched_in(1, Some(TaskId(7))).unwrap();
    within_10s("exit from a handler of the exiting task", move || {
        hw.access(1, 0x1000, 4, Access::WRITE, 0x4000)
    });
    let set = EXIT_RESULT.lock().unwrap().take().expect("handler ran");
    assert!(set.unwrap().contains(1));
    assert!(hw.is_empty());
    assert_eq!(hw.attr(x), Err(Error::StaleHandle));
    assert_eq!(hw.attr(y), Err(Error::StaleHandle));
    assert_eq!(hw.wait_quiesced(x), Ok(()));
    assert_eq!(hw.wait_quiesced(y), Ok(()));
}

/// Run `f` on its own thread; fail (instead of hanging the test run) if it
/// has not finished within 10 seconds.
fn within_10s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(f());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: still running after 10 s (deadlock)"))
}

static MUTUAL: std::sync::OnceLock<(&'static Hw, Handle, Handle)> = std::sync::OnceLock::new();
static IN_A: AtomicBool = AtomicBool::new(false);
static IN_B: AtomicBool = AtomicBool::new(false);
static MUTUAL_RESULTS: std::sync::Mutex<Vec<(Handle, Result<hwbp_core::CpuSet, Error>)>> =
    std::sync::Mutex::new(Vec::new());

/// The handler of A unregisters B and the handler of B unregisters A, both
/// while both handlers are running (one on each CPU).
fn mutual_handler(s: &Sample) {
    let (hw, a, b) = *MUTUAL.get().unwrap();
    let (other, mine_in, other_in) = if s.handle == a {
        (b, &IN_A, &IN_B)
    } else {
        (a, &IN_B, &IN_A)
    };
    mine_in.store(true, Ordering::SeqCst);
    while !other_in.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    let r = hw.unregister(other);
    MUTUAL_RESULTS.lock().unwrap().push((other, r));
}

#[test]
fn handlers_unregistering_each_others_breakpoint_do_not_deadlock() {
    let hw = manager(mutual_handler);
    let watch = |addr, cpu| BreakpointAttr::watch(addr, 4, Access::WRITE).target(Target::Cpu(cpu));
    let a = hw.register(&watch(0x1000, 0)).unwrap().handle;
    let b = hw.register(&watch(0x2000, 1)).unwrap().handle;
    MUTUAL.set((hw, a, b)).ok();
    hw.sync(0).unwrap();
    hw.sync(1).unwrap();
    within_10s("two handlers unregistering each other", move || {
        let cpu0 = thread::spawn(move || hw.access(0, 0x1000, 4, Access::WRITE, 0x4000));
        let cpu1 = thread::spawn(move || hw.access(1, 0x2000, 4, Access::WRITE, 0x4000));
        (cpu0.join().unwrap(), cpu1.join().unwrap())
    });
    let results = MUTUAL_RESULTS.lock().unwrap().clone();
    assert_eq!(results.len(), 2);
    for (h, r) in &results {
        let set = r.expect("unregister from a handler");
        for c in set.iter() {
            hw.sync(c).unwrap();
        }
        assert_eq!(hw.attr(*h), Err(Error::StaleHandle));
    }
    assert!(hw.is_empty());
    // Both handlers have returned: nothing left to wait for.
    assert_eq!(hw.quiesced(a), Ok(true));
    assert_eq!(hw.quiesced(b), Ok(true));
    // Gone from the hardware: no further hit reaches a handler.
    assert_eq!(hw.access(0, 0x1000, 4, Access::WRITE, 0x4000), None);
    assert_eq!(hw.access(1, 0x2000, 4, Access::WRITE, 0x4000), None);
}

static ONE_SHOT_HW: std::sync::OnceLock<&'static Hw> = std::sync::OnceLock::new();
static ONE_SHOT: std::sync::Mutex<Vec<(Handle, Result<hwbp_core::CpuSet, Error>)>> =
    std::sync::Mutex::new(Vec::new());

/// A one-shot breakpoint: its handler unregisters it.
fn one_shot_handler(s: &Sample) {
    let hw = *ONE_SHOT_HW.get().unwrap();
    let r = hw.unregister(s.handle);
    ONE_SHOT.lock().unwrap().push((s.handle, r));
}

#[test]
fn a_handler_may_unregister_its_own_breakpoint() {
    let hw = manager(one_shot_handler);
    ONE_SHOT_HW.set(hw).ok();
    let h = hw
        .register(&BreakpointAttr::watch(0x1000, 4, Access::WRITE).target(Target::AllCpus))
        .unwrap()
        .handle;
    hw.sync(0).unwrap();
    hw.sync(1).unwrap();
    within_10s("a handler unregistering its own breakpoint", move || {
        hw.access(1, 0x1000, 4, Access::WRITE, 0x4000)
    });
    let shots = ONE_SHOT.lock().unwrap().clone();
    assert_eq!(shots.len(), 1);
    assert_eq!(shots[0].0, h);
    let set = shots[0].1.expect("unregister of its own breakpoint");
    assert_eq!(set.iter().collect::<Vec<u16>>(), [0, 1]);
    // Before the CPUs are synced a hit is stray, never delivered again.
    let stray = hw.stray(0);
    hw.access(0, 0x1000, 4, Access::WRITE, 0x4000);
    assert_eq!(hw.stray(0), stray + 1);
    for c in set.iter() {
        hw.sync(c).unwrap();
    }
    assert_eq!(hw.access(0, 0x1000, 4, Access::WRITE, 0x4000), None);
    assert_eq!(
        ONE_SHOT.lock().unwrap().len(),
        1,
        "delivered after unregister"
    );
    assert_eq!(hw.hits(h), Err(Error::StaleHandle));
}
