//! The board's devices and its one deviation-handling layer.
//!
//! * ns16550a UART at `0x1000_0000` (transmit only; QEMU needs no set-up);
//! * the SiFive test device at `0x10_0000`: `0x5555` ends QEMU with status
//!   0, `(code << 16) | 0x3333` with status `code`;
//! * [`QemuCsrs`]: hwbp-riscv's M-mode CSR access with QEMU 7.2's `size`
//!   field bug worked around (see below). The library itself follows the
//!   specification and knows nothing of QEMU.

use core::sync::atomic::{AtomicU32, Ordering};

use hwbp_riscv::tdata::Match;
use hwbp_riscv::{Machine, TriggerCsrs, Xlen};

const UART: usize = 0x1000_0000;
const UART_LSR: usize = 5;
const LSR_THRE: u8 = 1 << 5;
const TEST_DEVICE: usize = 0x10_0000;

/// Put one byte on the UART, waiting for room.
pub fn put(byte: u8) {
    // SAFETY: the ns16550a of QEMU's virt board (M-mode, no translation);
    // nothing else in this firmware drives it.
    unsafe {
        while core::ptr::read_volatile((UART + UART_LSR) as *const u8) & LSR_THRE == 0 {}
        core::ptr::write_volatile(UART as *mut u8, byte);
    }
}

/// Leave QEMU through the SiFive test device.
pub fn exit(success: bool) -> ! {
    let code: u32 = if success { 0x5555 } else { (1 << 16) | 0x3333 };
    // SAFETY: the test device's register; writing it ends the emulation.
    unsafe { core::ptr::write_volatile(TEST_DEVICE as *mut u32, code) };
    loop {
        core::hint::spin_loop();
    }
}

/// The trigger CSRs, with QEMU 7.2's `size` bug handled.
///
/// QEMU 7.2 (`target/riscv/debug.c`) takes the `size` field's *encoding*
/// as a byte count and watches `[tdata2, tdata2 + n)` for any access that
/// overlaps it, and for `size` = 0 ("any size") watches 8 bytes on RV64
/// and 4 on RV32. The specification's `size` = 0 with `match` = 0 matches
/// the accesses that touch the byte at `tdata2`, which is what QEMU does for
/// encoding 1. So a load/store trigger the library writes with `size` 0 is
/// written here with `size` 1, and read back as 0; everything else passes
/// through. [`QemuCsrs::fixups`] counts the rewritten writes.
pub struct QemuCsrs {
    machine: Machine,
    fixups: AtomicU32,
}

impl QemuCsrs {
    /// # Safety
    ///
    /// As [`Machine::new`]: M-mode, nothing else touches the trigger CSRs
    /// or `mtvec` while the backend does.
    pub const unsafe fn new() -> Self {
        QemuCsrs {
            // SAFETY: forwarded from the caller.
            machine: unsafe { Machine::new() },
            fixups: AtomicU32::new(0),
        }
    }

    /// `tdata1` writes whose `size` was changed from 0 to 1.
    pub fn fixups(&self) -> u32 {
        self.fixups.load(Ordering::Relaxed)
    }
}

/// A load/store trigger image and its match type, if `v` is one.
fn data_trigger(xlen: Xlen, v: u64) -> Option<Match> {
    Match::parse(xlen, v).filter(|m| m.load || m.store)
}

impl TriggerCsrs for QemuCsrs {
    fn xlen(&self) -> Xlen {
        self.machine.xlen()
    }
    unsafe fn select(&self, n: u64) -> Option<u64> {
        // SAFETY: forwarded from the caller (the trait's contract).
        unsafe { self.machine.select(n) }
    }
    fn tinfo(&self) -> Option<u64> {
        self.machine.tinfo()
    }
    fn read_tdata1(&self) -> u64 {
        let xlen = self.xlen();
        let v = self.machine.read_tdata1();
        match data_trigger(xlen, v) {
            Some(m) if m.kind.size_of(xlen, v) == 1 => m.kind.with_size(xlen, v, 0),
            _ => v,
        }
    }
    unsafe fn write_tdata1(&self, value: u64) {
        let xlen = self.xlen();
        let v = match data_trigger(xlen, value) {
            Some(m) if m.kind.size_of(xlen, value) == 0 => {
                self.fixups.fetch_add(1, Ordering::Relaxed);
                m.kind.with_size(xlen, value, 1)
            }
            _ => value,
        };
        // SAFETY: forwarded from the caller; only `size` changed, which
        // keeps `dmode` and `action` as the caller wrote them.
        unsafe { self.machine.write_tdata1(v) }
    }
    fn read_tdata2(&self) -> u64 {
        self.machine.read_tdata2()
    }
    unsafe fn write_tdata2(&self, value: u64) {
        // SAFETY: forwarded from the caller (the trait's contract).
        unsafe { self.machine.write_tdata2(value) }
    }
}
