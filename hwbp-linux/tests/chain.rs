//! Other SIGTRAPs still reach the handler that was installed before hwbp-linux
//! took SIGTRAP over. Its own binary: the previous handler is captured once per
//! process, when the first breakpoint with signal delivery is opened.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use hwbp_core::{Access, BreakpointAttr};
use hwbp_linux::{current_thread, Breakpoint, Error, Hit};

static PREV_CALLS: AtomicU64 = AtomicU64::new(0);
static PREV_CODE: AtomicI32 = AtomicI32::new(0);
static OURS: AtomicU64 = AtomicU64::new(0);

extern "C" fn previous(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    PREV_CALLS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    PREV_CODE.store(unsafe { (*info).si_code }, Ordering::SeqCst);
}

fn on_hit(_: &Hit) {
    OURS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn foreign_sigtraps_are_chained_and_ours_are_not() {
    // SAFETY: plain old data; installs a handler that only touches atomics.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = previous as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGTRAP, &sa, core::ptr::null_mut()),
            0
        );
    }
    static mut WORD: u64 = 0;
    let attr =
        BreakpointAttr::watch(&raw const WORD as u64, 8, Access::WRITE).target(current_thread());
    if cfg!(target_arch = "aarch64") {
        // hwbp-linux refuses signal delivery on arm64 (the kernel's step over
        // the hit is spent on the handler; see the crate README) before it
        // touches the SIGTRAP disposition: the old handler still gets them all.
        let got = Breakpoint::with_handler(&attr, on_hit);
        assert!(matches!(got, Err(Error::Unsupported(_))), "{got:?}");
        // SAFETY: raising a signal whose handler is installed.
        assert_eq!(unsafe { libc::raise(libc::SIGTRAP) }, 0);
        assert_eq!(PREV_CALLS.load(Ordering::SeqCst), 1);
        assert_eq!(PREV_CODE.load(Ordering::SeqCst), libc::SI_TKILL);
        return;
    }
    let bp = Breakpoint::with_handler(&attr, on_hit).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: a static only this test touches.
    unsafe { (&raw mut WORD).write_volatile(1) };
    assert_eq!(OURS.load(Ordering::SeqCst), 1);
    assert_eq!(
        PREV_CALLS.load(Ordering::SeqCst),
        0,
        "a TRAP_PERF of ours is not passed on"
    );
    // SAFETY: raising a signal whose handler is installed.
    assert_eq!(unsafe { libc::raise(libc::SIGTRAP) }, 0);
    assert_eq!(
        PREV_CALLS.load(Ordering::SeqCst),
        1,
        "a foreign SIGTRAP reaches the old handler"
    );
    assert_eq!(PREV_CODE.load(Ordering::SeqCst), libc::SI_TKILL);
    assert_eq!(OURS.load(Ordering::SeqCst), 1);
    assert_eq!(bp.samples(), 1);
}
