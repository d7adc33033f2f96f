//! A handler may take critical sections (or call the manager) while another
//! CPU unregisters its breakpoint: the unregister waits for the handler
//! outside its own critical section, so neither waits for the other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hwbp_core::mock::{Mock, MockConfig};
use hwbp_core::{Access, BreakpointAttr, Error, Handle, Hwbp, Sample, Target, TaskId};

static IN_HANDLER: AtomicBool = AtomicBool::new(false);
static UNREGISTERING: AtomicBool = AtomicBool::new(false);

fn handler(_: &Sample) {
    IN_HANDLER.store(true, Ordering::SeqCst);
    while !UNREGISTERING.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    // Give the unregister time to be inside (or past) its critical section.
    thread::sleep(Duration::from_millis(100));
    // Like a handler that records the sample in a `critical_section::Mutex`.
    critical_section::with(|_| {});
}

type Hw = Hwbp<Mock, fn(&Sample), 2, 4, 2>;

/// A two-CPU manager for the whole test run, both CPUs online.
fn manager(handler: fn(&Sample)) -> &'static Hw {
    let hw: &'static Hw = Box::leak(Box::new(Hwbp::new(
        Mock::new(MockConfig::X86_LIKE),
        handler,
    )));
    hw.init(2).unwrap();
    hw.cpu_online(0).unwrap();
    hw.cpu_online(1).unwrap();
    hw
}

#[test]
fn unregister_waits_for_a_handler_that_takes_a_critical_section() {
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
    // "CPU 0" unregisters meanwhile.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        UNREGISTERING.store(true, Ordering::SeqCst);
        let r = hw.unregister(h);
        let _ = done.send(r);
    });
    let r = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("unregister and the handler deadlocked");
    assert!(r.is_ok());
    cpu1.join().unwrap();
    assert_eq!(hw.hits(h), Err(hwbp_core::Error::StaleHandle));
    assert!(hw.is_empty());
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
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(hw.unregister(old));
    });
    // The unregister hides the breakpoint and then waits for the handler.
    while !hw.is_empty() {
        thread::yield_now();
    }
    assert!(
        finished.try_recv().is_err(),
        "returned while its handler runs"
    );
    // A new breakpoint meanwhile does not take the storage still in use.
    let new = hw.register(&watch(0x2000)).unwrap().handle;
    assert_ne!(new.index(), old.index());
    RELEASE_SLOW.store(true, Ordering::SeqCst);
    assert!(finished
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .is_ok());
    cpu1.join().unwrap();
    assert_eq!(hw.hits(new), Ok(0), "the old hit was not credited to it");
    // Once the handler is over, the storage is reused (lowest index first).
    let _ = hw.unregister(new).unwrap();
    let again = hw.register(&watch(0x3000)).unwrap().handle;
    assert_eq!(again.index(), old.index());
}

static EXIT_HW: std::sync::OnceLock<&'static Hw> = std::sync::OnceLock::new();
static EXIT_X: std::sync::OnceLock<Handle> = std::sync::OnceLock::new();
static IN_EXITING: AtomicBool = AtomicBool::new(false);

/// Waits until its own breakpoint is unregistered elsewhere, then calls the
/// manager for an unrelated task.
fn exiting_handler(_: &Sample) {
    IN_EXITING.store(true, Ordering::SeqCst);
    let (hw, x) = (*EXIT_HW.get().unwrap(), *EXIT_X.get().unwrap());
    while hw.attr(x) != Err(Error::StaleHandle) {
        thread::yield_now();
    }
    let _ = hw.exit(TaskId(99));
}

#[test]
fn exit_waits_only_for_the_breakpoints_it_removed() {
    let hw = manager(exiting_handler);
    EXIT_HW.set(hw).ok();
    let watch = |addr, cpu| BreakpointAttr::watch(addr, 4, Access::WRITE).target(Target::Cpu(cpu));
    let x = hw.register(&watch(0x1000, 1)).unwrap().handle;
    EXIT_X.set(x).ok();
    hw.sync(1).unwrap();
    let (done, finished) = mpsc::channel();
    let done2 = done.clone();
    thread::spawn(move || {
        hw.access(1, 0x1000, 4, Access::WRITE, 0x4000);
        let _ = done.send(());
    });
    while !IN_EXITING.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    thread::spawn(move || {
        let _ = hw.unregister(x);
        let _ = done2.send(());
    });
    for _ in 0..2 {
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("exit in a handler waited for the handler's own breakpoint");
    }
}
