//! Continuing after a hit on armv7 without Arm's mismatch breakpoints.
//!
//! Arm breakpoints and watchpoints fire *before* the instruction completes,
//! and AArch32 has no PSTATE.D to mask debug exceptions. hwbp-arm64 therefore
//! disables the slots of the kind that fired (all breakpoints, or all
//! watchpoints) in `decode` and asks for a single step
//! ([`Resume::SINGLE_STEP`](hwbp_core::Resume::SINGLE_STEP)). AArch64 steps with
//! `MDSCR_EL1.SS`; AArch32 has no software step, and its substitute, an
//! address *mismatch* breakpoint (`DBGBCR.BT = 0b0100`, hwbp-arm64's
//! `StepMethod::Mismatch`), is not implemented by QEMU 7.2: it never fires
//! there, so the slots would stay disabled.
//!
//! This firmware uses `StepMethod::Manual` and steps the instruction itself,
//! the way GDB single-steps on targets without hardware step: it puts an
//! undefined instruction (`UDF #0x5e5`) in place of the *next* instruction,
//! returns to the instruction that hit (which now completes: its slots are
//! disabled), takes the undefined-instruction exception on the next one,
//! puts the original instruction back and calls `ArmBackend::complete_step` (with the CPU's state from
//! `Manager::backend_cpu`), which
//! re-enables the disabled slots. Then execution continues at the next
//! instruction with every slot armed, so the next hit is not lost.
//!
//! Conditions, checked loudly: the code is in writable RAM (true here: the
//! MMU is off), the instruction that hit is A32 and does not branch
//! ([`sequential`]). A second event on the stepped instruction (breakpoint,
//! then watchpoint on its retry) joins the pending step; an event anywhere
//! else during the step is reported as a failure instead of being counted
//! twice.

use core::cell::Cell;

use critical_section::Mutex;

use crate::boot::Frame;
use crate::HWBP;

/// `UDF #0x5e5` in A32: the step trap.
pub const STEP_UDF: u32 = 0xe7f0_05f5;

/// The patched address and the instruction it held, while a step is pending.
static PENDING: Mutex<Cell<Option<(u32, u32)>>> = Mutex::new(Cell::new(None));

/// Steps completed (for the transcript).
static STEPS: Mutex<Cell<u32>> = Mutex::new(Cell::new(0));

const CPSR_T: u32 = 1 << 5;

/// Steps completed so far.
pub fn steps() -> u32 {
    critical_section::with(|cs| STEPS.borrow(cs).get())
}

/// Whether an A32 instruction certainly continues at the next word: not a
/// branch, not a write to the PC, not in the unconditional space.
pub fn sequential(insn: u32) -> bool {
    if insn >> 28 == 0xF {
        return false;
    }
    match (insn >> 25) & 0b111 {
        // B, BL.
        0b101 => false,
        // LDM/STM: a load with the PC in the register list branches.
        0b100 => !(insn & (1 << 20) != 0 && insn & (1 << 15) != 0),
        _ => {
            // BX, BXJ, BLX (register).
            if insn & 0x0ff0_00d0 == 0x0120_0010 {
                return false;
            }
            // Rd / Rt is the PC.
            (insn >> 12) & 0xF != 15
        }
    }
}

/// Make a store to the code at `addr` visible to instruction fetch (v7 ARM
/// ARM B2.2.9: clean D to PoU, invalidate I and the branch predictor).
fn sync_code(addr: u32) {
    // SAFETY: cache and branch-predictor maintenance by address on memory the
    // firmware owns; no other effect.
    unsafe {
        core::arch::asm!(
            "dsb",
            "mcr p15, 0, {a}, c7, c11, 1", // DCCMVAU
            "dsb",
            "mcr p15, 0, {a}, c7, c5, 1",  // ICIMVAU
            "mcr p15, 0, {z}, c7, c5, 6",  // BPIALL
            "dsb",
            "isb",
            a = in(reg) addr,
            z = in(reg) 0u32,
            options(nostack),
        );
    }
}

/// The backend asked for a single step over the instruction at `frame.pc`:
/// trap the next one.
pub fn start(frame: &Frame) -> Result<(), &'static str> {
    if let Some((at, _)) = critical_section::with(|cs| PENDING.borrow(cs).get()) {
        // A second event on the instruction being stepped (its breakpoint
        // fired, and on the retry its access hit a watchpoint): the backend
        // has now disabled both kinds, the trap is already in place, and
        // `complete_step` re-enables everything.
        if frame.pc.wrapping_add(4) == at {
            return Ok(());
        }
        return Err("debug event on another instruction while a step was pending");
    }
    if frame.spsr & CPSR_T != 0 {
        return Err("hit in T32 code: the step only handles A32");
    }
    // SAFETY: frame.pc is the address of an instruction the CPU was about to
    // execute, so it is readable memory.
    let insn = unsafe { core::ptr::read_volatile(frame.pc as usize as *const u32) };
    if !sequential(insn) {
        return Err("hit on a branch: cannot tell where to trap the step");
    }
    let next = frame.pc.wrapping_add(4);
    let p = next as usize as *mut u32;
    // SAFETY: `next` is the following A32 instruction of the firmware's own
    // code, in RAM (MMU off, so writable); it is restored by `finish` before
    // it executes.
    let saved = unsafe { core::ptr::read_volatile(p) };
    if saved == STEP_UDF {
        return Err("step trap already in place");
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(p, STEP_UDF) };
    sync_code(next);
    critical_section::with(|cs| PENDING.borrow(cs).set(Some((next, saved))));
    Ok(())
}

/// An undefined-instruction exception at `frame.pc`: if it is the step trap,
/// restore the instruction, re-enable the slots and return `true` (resume at
/// `frame.pc`, the restored instruction).
pub fn finish(frame: &Frame) -> Result<bool, &'static str> {
    let Some((at, saved)) = critical_section::with(|cs| PENDING.borrow(cs).get()) else {
        return Ok(false);
    };
    if frame.pc != at {
        return Ok(false);
    }
    let p = at as usize as *mut u32;
    // SAFETY: `at` is the instruction `start` patched; put it back.
    unsafe { core::ptr::write_volatile(p, saved) };
    sync_code(at);
    critical_section::with(|cs| {
        PENDING.borrow(cs).set(None);
        let steps = STEPS.borrow(cs);
        steps.set(steps.get() + 1);
    });
    let cpu0 = HWBP
        .backend_cpu(0)
        .map_err(|_| "no backend state for CPU 0")?;
    if !HWBP.arch().complete_step(cpu0) {
        return Err("the backend had no step pending");
    }
    Ok(true)
}
