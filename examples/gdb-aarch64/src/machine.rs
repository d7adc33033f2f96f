//! What the shared gdb session (`gdb-common/session.rs`) needs from this
//! board: the manager and the adapter, registers from the saved frame,
//! memory bounds, the PL011, and how to resume (software step).

use core::sync::atomic::{AtomicBool, Ordering};

use gdbstub_arch::aarch64::reg::AArch64CoreRegs;
use hwbp_arm64::backend::aarch64::SPSR_SS;
use hwbp_arm64::Aarch64Backend;
use hwbp_core::Manager;
use hwbp_gdbstub::{GdbBreakpoints, HitLatch};

pub use crate::boot::Frame;

/// The target description GDB gets.
pub type GdbArch = gdbstub_arch::aarch64::AArch64;

/// Hits of the manager's breakpoints, per CPU, for the stub.
pub static LATCH: HitLatch<2> = HitLatch::new();

/// The manager: hwbp-arm64's real backend, 2 CPUs, 16 breakpoints, 2 tasks
/// (unused).
// SAFETY (of `Aarch64Backend::aarch64`): the firmware runs at EL1 and nothing
// else touches the debug registers: the stub arms its single steps through
// the backend (`debugger_step`/`debugger_resume`); install/decode run only
// on the CPU they name (CPU 1 syncs itself, main.rs).
pub static HWBP: Manager<Aarch64Backend, &'static HitLatch<2>, 2, 16, 2> =
    Manager::new(unsafe { Aarch64Backend::aarch64() }, &LATCH);

/// GDB's hardware breakpoints and watchpoints: pinned, on both CPUs.
pub static BPS: GdbBreakpoints<'static, Aarch64Backend, &'static HitLatch<2>, 2, 16, 2, 16> =
    GdbBreakpoints::new(&HWBP);

/// RAM on `-M virt -m 128M`.
const RAM: core::ops::Range<u64> = 0x4000_0000..0x4800_0000;

/// Whether GDB may read or write `len` bytes at `addr`.
pub fn memory_ok(addr: u64, len: usize) -> bool {
    addr.checked_add(len as u64)
        .is_some_and(|end| addr >= RAM.start && end <= RAM.end)
}

pub fn read_registers(f: &Frame, regs: &mut AArch64CoreRegs) {
    regs.x = f.x;
    // The exception pushed the frame on the interrupted SP (current EL, SP_EL1).
    regs.sp = f as *const Frame as u64 + board_kit::aarch64::FRAME_SIZE as u64;
    regs.pc = f.elr;
    regs.cpsr = f.spsr as u32;
    regs.v = f.q;
    regs.fpcr = f.fpcr as u32;
    regs.fpsr = f.fpsr as u32;
}

pub fn write_registers(f: &mut Frame, regs: &AArch64CoreRegs) {
    // SP cannot move under the frame; everything else is restored by ERET.
    f.x = regs.x;
    f.elr = regs.pc;
    f.spsr = (f.spsr & !0xffff_ffff) | u64::from(regs.cpsr);
    f.q = regs.v;
    f.fpcr = u64::from(regs.fpcr);
    f.fpsr = u64::from(regs.fpsr);
}

const UART: usize = 0x0900_0000;
const UART_DR: usize = 0x000;
const UART_FR: usize = 0x018;
const FR_RXFE: u32 = 1 << 4;

pub fn serial_write(byte: u8) {
    // SAFETY: the PL011 of QEMU's virt board, mapped as device memory by the
    // boot page table, driven only by the stub (the console is semihosting).
    unsafe { board_kit::pl011::put(UART, byte) }
}

pub fn serial_read() -> u8 {
    // SAFETY: as `serial_write`: FR and DR of the PL011.
    unsafe {
        while core::ptr::read_volatile((UART + UART_FR) as *const u32) & FR_RXFE != 0 {
            core::hint::spin_loop();
        }
        core::ptr::read_volatile((UART + UART_DR) as *const u32) as u8
    }
}

/// GDB asked for a single step the last time it resumed.
static STEPPING: AtomicBool = AtomicBool::new(false);

/// Whether the program is being single-stepped for GDB.
pub fn stepping() -> bool {
    STEPPING.load(Ordering::SeqCst)
}

/// GDB resumes the program (a single step if `step`): bring GDB's
/// breakpoint changes to both CPUs, then arm the step through the backend
/// (it may be riding on a step-over of hwbp's) or disarm it.
pub fn resume(frame: &mut Frame, step: bool) {
    for cpu in BPS.take_sync() {
        if cpu == 0 {
            if let Err(e) = BPS.sync(0) {
                board_kit::fatal!("sync(0) failed: {:?}", e);
            }
        } else {
            crate::CPU1_SYNC.store(1, Ordering::SeqCst);
            wait_for("CPU 1 to sync", || {
                crate::CPU1_SYNC.load(Ordering::SeqCst) == 0
            });
        }
    }
    let state = match HWBP.backend_cpu(0) {
        Ok(s) => s,
        Err(e) => board_kit::fatal!("backend_cpu(0): {:?}", e),
    };
    if step {
        HWBP.arch().debugger_step(state);
        frame.spsr |= SPSR_SS;
    } else {
        HWBP.arch().debugger_resume(state);
        if !state.step_over().pending {
            frame.spsr &= !SPSR_SS;
        }
    }
    STEPPING.store(step, Ordering::SeqCst);
}

/// Spin until `done()` holds, or stop after 10 seconds naming `what`
/// (board-kit's bounded wait).
pub fn wait_for(what: &str, done: impl FnMut() -> bool) {
    board_kit::aarch64::wait_for(what, done)
}
