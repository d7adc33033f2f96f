//! hwbp-x86 on the real CPU's debug registers, through Linux ptrace.
//!
//! Each test forks a traced child, installs a DR0–DR3/DR7 image computed by
//! hwbp-x86 with `PTRACE_POKEUSER` at `offsetof(struct user, u_debugreg)`,
//! lets the child run, and checks the SIGTRAP (`si_code` TRAP_HWBKPT), the
//! saved RIP and DR6 (read back with `PTRACE_PEEKUSER`) as decoded by the crate.
//! If ptrace or the debug registers are refused, the test fails with the reason.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "support/ptrace.rs"]
mod support;

use hwbp_core::{Access, BreakpointAttr, Fired, Pool, Resume};
use hwbp_x86::{Condition, Dr6, Dr7, Size};
use support::{addr_a, addr_b, addr_c, addr_probe, run, Action, Hit, WRITTEN};

fn hit(action: Action, attrs: &[BreakpointAttr]) -> Hit {
    match run(action, attrs) {
        Ok(h) => {
            assert_eq!(h.stop.signal, libc::SIGTRAP, "stop signal: {h:?}");
            assert_eq!(h.stop.si_code, libc::TRAP_HWBKPT, "si_code: {h:?}");
            h
        }
        Err(e) => panic!("real-hardware check could not run: {e}"),
    }
}

fn slots(mask: u32) -> Fired {
    Fired::Slots {
        pool: Pool(0),
        mask,
    }
}

#[test]
fn write_watchpoint_traps_after_the_store() {
    let h = hit(
        Action::Write,
        &[BreakpointAttr::watch(addr_a(), 8, Access::WRITE)],
    );
    assert_eq!(h.slots[0].condition, Condition::Write);
    assert_eq!(h.slots[0].size, Size::Eight);
    assert_eq!(Dr6::from_raw(h.dr6), Dr6::B0, "DR6 {:#x}", h.dr6);
    assert_eq!(h.decoded.fired, slots(0b1));
    assert_eq!(h.decoded.resume, Resume::RETURN);
    assert_eq!(h.decoded.access, Access::WRITE);
    assert_eq!(h.decoded.addr, addr_a());
    // A trap: the store has completed, the new value is visible.
    assert_eq!(h.data_a, WRITTEN);
}

#[test]
fn execute_breakpoint_faults_before_the_instruction() {
    let h = hit(Action::Call, &[BreakpointAttr::exec(addr_probe())]);
    assert_eq!(Dr6::from_raw(h.dr6), Dr6::B0, "DR6 {:#x}", h.dr6);
    assert_eq!(h.decoded.fired, slots(0b1));
    // A fault: RIP is the breakpoint address, and returning needs RF.
    assert_eq!(h.stop.rip, addr_probe());
    assert_eq!(h.decoded.resume, Resume::SET_RESUME_FLAG);
    assert_eq!(h.decoded.access, Access::EXEC);
}

#[test]
fn read_write_watchpoint_traps_on_a_read() {
    let h = hit(
        Action::Read,
        &[BreakpointAttr::watch(addr_b(), 8, Access::RW)],
    );
    assert_eq!(Dr6::from_raw(h.dr6), Dr6::B0, "DR6 {:#x}", h.dr6);
    assert_eq!(h.decoded.fired, slots(0b1));
    assert_eq!(h.decoded.resume, Resume::RETURN);
    // x86 does not say whether a read-write slot saw a read or a write.
    assert_eq!(h.decoded.access, Access::empty());
}

#[test]
fn two_slots_on_one_address_report_together() {
    let h = hit(
        Action::Write,
        &[
            BreakpointAttr::watch(addr_a(), 8, Access::WRITE),
            BreakpointAttr::watch(addr_a(), 4, Access::RW),
        ],
    );
    assert_eq!(Dr6::from_raw(h.dr6), Dr6::B0 | Dr6::B1, "DR6 {:#x}", h.dr6);
    assert_eq!(h.decoded.fired, slots(0b11));
    assert_eq!(h.decoded.resume, Resume::RETURN);
}

#[test]
fn a_write_watchpoint_ignores_reads() {
    // The child only reads DATA.b: a write-only watch on it must not fire, so
    // the child runs to completion and `run` reports exactly that.
    let err = run(
        Action::Read,
        &[BreakpointAttr::watch(addr_b(), 8, Access::WRITE)],
    )
    .expect_err("a write watchpoint fired on a read");
    assert!(
        err.contains("without a debug trap"),
        "unexpected failure: {err}"
    );
}

#[test]
fn split_region_fires_on_the_piece_that_covers_the_byte() {
    // 6 bytes at c + 9 (c is 64-byte aligned): 1 @ +9, 2 @ +10, 2 @ +12,
    // 1 @ +14 — four slots; the child writes byte +13.
    let attr = BreakpointAttr::watch(addr_c() + 9, 6, Access::WRITE);
    let h = hit(Action::WriteByte, &[attr]);
    let pieces: Vec<(u64, u64)> = h
        .slots
        .iter()
        .filter(|s| s.enable != Default::default())
        .map(|s| (s.addr - addr_c(), s.size.bytes()))
        .collect();
    assert_eq!(pieces, [(9, 1), (10, 2), (12, 2), (14, 1)]);
    assert_eq!(Dr6::from_raw(h.dr6), Dr6::B2, "DR6 {:#x}", h.dr6);
    assert_eq!(h.decoded.fired, slots(0b100));
    // The DR7 the kernel accepted enables exactly the four slots.
    assert_eq!(Dr7::from_raw(h.dr7).enabled_mask(), 0b1111);
}
