//! Access to the trigger CSRs: the only place hardware is touched.
//!
//! [`TriggerCsrs`] is what the backend needs (`tselect`, `tinfo`, `tdata1`,
//! `tdata2` of the calling hart). [`Machine`] implements it with the CSR
//! instructions, from M-mode (the trigger CSRs are M-mode CSRs; an S-mode
//! kernel reaches them through the SBI debug-triggers extension, which an
//! embedder can wrap in its own [`TriggerCsrs`]). `model::Model` (feature
//! `model`) implements it in software for host tests, and a board can wrap
//! either to work around an emulator's deviations.

use crate::tdata::Xlen;

/// `tselect` (Debug Specification 1.0, trigger module registers).
pub const TSELECT: u16 = 0x7a0;
/// `tdata1`.
pub const TDATA1: u16 = 0x7a1;
/// `tdata2`.
pub const TDATA2: u16 = 0x7a2;
/// `tinfo`.
pub const TINFO: u16 = 0x7a4;

/// The trigger CSRs of the calling hart.
///
/// Values are XLEN wide, zero-extended to `u64`. `tdata1`/`tdata2` access
/// the trigger [`TriggerCsrs::select`] chose last.
///
/// Reads are safe (the value implementing the trait is the owner token,
/// built by an `unsafe` constructor such as [`Machine::new`]); every method
/// that writes is `unsafe`, because the token is reachable from safe code
/// ([`crate::RiscvBackend::csrs`]) and a write behind the backend's back
/// breaks what it relies on: the triggers it installed, the trigger held
/// for a step-over, the `tselect` it chose for the access in progress. A
/// `tdata1` write can also set `dmode` (the trigger then belongs to the
/// external debugger and M-mode can no longer change it) or an `action`
/// that enters Debug Mode.
///
/// # Safety of the writing methods
///
/// The caller is the owner of the trigger CSRs (the backend) on the calling
/// hart, or runs while the backend is not using them (not from an
/// interrupt that may have interrupted it) and leaves every trigger the
/// backend installed as it was; what it writes to `tdata1` has `dmode` 0
/// and `action` 0.
///
/// A write from safe code does not compile:
///
/// ```compile_fail
/// use hwbp_riscv::{Machine, TriggerCsrs};
/// fn arm_debug_mode(csrs: &Machine) {
///     csrs.write_tdata1(1 << 59); // dmode: would hand the trigger away
/// }
/// ```
pub trait TriggerCsrs {
    /// The hart's XLEN.
    fn xlen(&self) -> Xlen;
    /// Write `n` to `tselect` and read it back; `None` when the write raised
    /// an illegal-instruction exception (no trigger module).
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn select(&self, n: u64) -> Option<u64>;
    /// `tinfo` of the selected trigger; `None` when reading it raised an
    /// illegal-instruction exception (`tinfo` is optional).
    fn tinfo(&self) -> Option<u64>;
    /// Read `tdata1`.
    fn read_tdata1(&self) -> u64;
    /// Write `tdata1`.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn write_tdata1(&self, value: u64);
    /// Read `tdata2`.
    fn read_tdata2(&self) -> u64;
    /// Write `tdata2`.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn write_tdata2(&self, value: u64);
}

/// The calling hart's trigger CSRs through `csrr`/`csrw`, from M-mode.
///
/// [`TriggerCsrs::select`] and [`TriggerCsrs::tinfo`] may trap on a hart
/// without them: they run with `mstatus.MIE` clear and a private `mtvec`
/// that skips the faulting instruction (the probing technique OpenSBI
/// uses for optional CSRs), then restore both. The other accesses are plain
/// CSR instructions (they only run once `select` succeeded).
///
/// On a host (neither `riscv32` nor `riscv64`) there is no hardware: every
/// `select` reports a trap, reads return 0 and writes do nothing, so
/// discovery finds no triggers.
#[derive(Debug)]
pub struct Machine {
    _private: (),
}

impl Machine {
    /// The accessor.
    ///
    /// # Safety
    ///
    /// The caller runs in M-mode, and nothing else on this hart writes
    /// `tselect`/`tdata1`/`tdata2` or `mtvec` while the backend uses them
    /// (an interrupt handler must not, for example).
    pub const unsafe fn new() -> Self {
        Machine { _private: () }
    }
}

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
mod hw {
    use core::arch::{asm, global_asm};

    // The private trap vector of the probes: skip the 4-byte CSR
    // instruction that trapped and report it in a5 (= 0). It clobbers
    // nothing else; `mret` returns to M-mode (MPP = M) with MIE as it was
    // (clear) during the probe.
    global_asm!(
        ".pushsection .text.hwbp_riscv_probe, \"ax\"",
        ".balign 4",
        ".global hwbp_riscv_probe_trap",
        "hwbp_riscv_probe_trap:",
        "csrr a5, mepc",
        "addi a5, a5, 4",
        "csrw mepc, a5",
        "li a5, 0",
        "mret",
        ".popsection",
    );

    /// `csrw tselect, n` then `csrr tselect`, catching an illegal instruction.
    pub(super) fn select(n: usize) -> Option<usize> {
        let ok: usize;
        let back: usize;
        // SAFETY: M-mode (Machine::new's contract). MIE is cleared first so
        // no interrupt reaches the private vector, which only skips the
        // trapping CSR instruction and clears a5; mtvec and MIE are restored
        // before the block ends. Only the named registers change.
        unsafe {
            asm!(
                "csrrci {mie}, mstatus, 8",
                "la {tmp}, hwbp_riscv_probe_trap",
                "csrrw {old}, mtvec, {tmp}",
                "li a5, 1",
                "li {back}, 0",
                "csrw 0x7a0, {n}",
                "beqz a5, 1f",
                "csrr {back}, 0x7a0",
                "1:",
                "csrw mtvec, {old}",
                "andi {mie}, {mie}, 8",
                "csrs mstatus, {mie}",
                n = in(reg) n,
                mie = out(reg) _,
                tmp = out(reg) _,
                old = out(reg) _,
                back = out(reg) back,
                out("a5") ok,
                options(nostack),
            );
        }
        (ok != 0).then_some(back)
    }

    /// `csrr tinfo`, catching an illegal instruction.
    pub(super) fn tinfo() -> Option<usize> {
        let ok: usize;
        let value: usize;
        // SAFETY: as in `select`: a private vector with MIE clear, both
        // restored.
        unsafe {
            asm!(
                "csrrci {mie}, mstatus, 8",
                "la {tmp}, hwbp_riscv_probe_trap",
                "csrrw {old}, mtvec, {tmp}",
                "li a5, 1",
                "li {v}, 0",
                "csrr {v}, 0x7a4",
                "csrw mtvec, {old}",
                "andi {mie}, {mie}, 8",
                "csrs mstatus, {mie}",
                mie = out(reg) _,
                tmp = out(reg) _,
                old = out(reg) _,
                v = out(reg) value,
                out("a5") ok,
                options(nostack),
            );
        }
        (ok != 0).then_some(value)
    }

    macro_rules! csr_rw {
        ($read:ident, $write:ident, $num:literal) => {
            pub(super) fn $read() -> usize {
                let v: usize;
                // SAFETY: reading a trigger CSR in M-mode after `select`
                // succeeded has no side effect.
                unsafe { asm!(concat!("csrr {}, ", $num), out(reg) v, options(nomem, nostack)) };
                v
            }
            /// # Safety
            /// As the [`TriggerCsrs`](super::TriggerCsrs) writes.
            pub(super) unsafe fn $write(v: usize) {
                // SAFETY: writing the selected trigger's register in M-mode,
                // by its owner (the caller's contract); the backend orders
                // these writes so no half-written trigger is enabled. Not
                // `nomem`: the write must stay ordered with the memory
                // accesses the trigger watches.
                unsafe { asm!(concat!("csrw ", $num, ", {}"), in(reg) v, options(nostack)) };
            }
        };
    }
    csr_rw!(read_tdata1, write_tdata1, "0x7a1");
    csr_rw!(read_tdata2, write_tdata2, "0x7a2");
}

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
impl TriggerCsrs for Machine {
    fn xlen(&self) -> Xlen {
        Xlen::native()
    }
    unsafe fn select(&self, n: u64) -> Option<u64> {
        hw::select(n as usize).map(|v| v as u64)
    }
    fn tinfo(&self) -> Option<u64> {
        hw::tinfo().map(|v| v as u64)
    }
    fn read_tdata1(&self) -> u64 {
        hw::read_tdata1() as u64
    }
    unsafe fn write_tdata1(&self, value: u64) {
        // SAFETY: forwarded from the caller (the trait's contract).
        unsafe { hw::write_tdata1(value as usize) }
    }
    fn read_tdata2(&self) -> u64 {
        hw::read_tdata2() as u64
    }
    unsafe fn write_tdata2(&self, value: u64) {
        // SAFETY: forwarded from the caller (the trait's contract).
        unsafe { hw::write_tdata2(value as usize) }
    }
}

/// No trigger hardware on a host: discovery finds none.
#[cfg(not(any(target_arch = "riscv32", target_arch = "riscv64")))]
impl TriggerCsrs for Machine {
    fn xlen(&self) -> Xlen {
        Xlen::native()
    }
    unsafe fn select(&self, _n: u64) -> Option<u64> {
        None
    }
    fn tinfo(&self) -> Option<u64> {
        None
    }
    fn read_tdata1(&self) -> u64 {
        0
    }
    unsafe fn write_tdata1(&self, _value: u64) {}
    fn read_tdata2(&self) -> u64 {
        0
    }
    unsafe fn write_tdata2(&self, _value: u64) {}
}
