//! The board check of a debugger's single step meeting a hit (issue 16): the
//! debugger arms a step (`ArmBackend::debugger_step`, `SPSR_EL1.SS`) and the
//! stepped instruction is a store to a watched word. hwbp's step-over rides
//! on the debugger's step; the step exception that ends it must reach the
//! debugger (`Resume::pass_on`) with the step still armed, one instruction
//! on, and the hit must be counted once.

use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use board_kit::{check, must};
use hwbp_arm64::backend::aarch64::SPSR_SS;
use hwbp_core::{Access, BreakpointAttr, Resume, Target};

use crate::boot::Frame;
use crate::machine::HWBP;

/// The watched word.
#[no_mangle]
static mut STEP_WATCHED: u64 = 0;

static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Where the debugger's step began (the store) and where its step
/// exception arrived.
static STEP_FROM: AtomicU64 = AtomicU64::new(0);
static STEP_AT: AtomicU64 = AtomicU64::new(0);
/// Step exceptions handed on to the debugger, and MDSCR_EL1.SS then.
static HANDED_ON: AtomicU32 = AtomicU32::new(0);
static STILL_ARMED: AtomicBool = AtomicBool::new(false);

/// The BRK before the store: the "debugger" arms its single step.
pub fn on_brk(frame: &mut Frame) {
    STEP_FROM.store(frame.elr, Ordering::SeqCst);
    HWBP.arch().debugger_step(must!(HWBP.backend_cpu(0)));
    frame.spsr |= SPSR_SS;
}

/// A debug exception while the check runs (after the manager handled it,
/// `r` its answer). Returns whether it was the check's.
pub fn on_debug(step: bool, r: Resume, frame: &mut Frame) -> bool {
    if !ACTIVE.load(Ordering::SeqCst) {
        return false;
    }
    if step && r.pass_on {
        // The debugger's step: note it, then the debugger resumes normally.
        HANDED_ON.fetch_add(1, Ordering::SeqCst);
        STEP_AT.store(frame.elr, Ordering::SeqCst);
        let mdscr = HWBP.arch().regs().mdscr();
        STILL_ARMED.store(
            mdscr.contains(hwbp_arm64::backend::aarch64::Mdscr::SS),
            Ordering::SeqCst,
        );
        HWBP.arch().debugger_resume(must!(HWBP.backend_cpu(0)));
        frame.spsr &= !SPSR_SS;
    }
    true
}

/// Run the check (CPU 0, before the GDB session).
pub fn run() {
    let attr = BreakpointAttr::watch(addr_of_mut!(STEP_WATCHED) as u64, 8, Access::WRITE)
        .target(Target::Cpu(0));
    let reg = must!(HWBP.register(&attr));
    must!(HWBP.sync(0));
    ACTIVE.store(true, Ordering::SeqCst);
    // SAFETY: `brk #0x7d` traps to rust_exception (`on_brk`), which arms the
    // single step; the store is the watched access, the nop is stepped to.
    unsafe {
        core::arch::asm!("brk #0x7d", "str {v}, [{p}]", "nop",
            p = in(reg) addr_of_mut!(STEP_WATCHED), v = in(reg) 9u64, options(nostack));
    }
    ACTIVE.store(false, Ordering::SeqCst);
    let hits = must!(HWBP.hits(reg.handle));
    let set = must!(HWBP.unregister(reg.handle));
    if set.contains(0) {
        must!(HWBP.sync(0));
    }
    let (from, at) = (
        STEP_FROM.load(Ordering::SeqCst),
        STEP_AT.load(Ordering::SeqCst),
    );
    check!(
        HANDED_ON.load(Ordering::SeqCst) == 1 && STILL_ARMED.load(Ordering::SeqCst),
        "a debugger's single step over a watched store is handed on, step still armed (not swallowed by the step-over)"
    );
    check!(
        at == from + 4 && hits == 1,
        "it stopped one instruction on ({:#x} -> {:#x}) and the store was counted once ({} hit)",
        from,
        at,
        hits
    );
}
