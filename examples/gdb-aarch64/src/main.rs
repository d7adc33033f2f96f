//! A gdb stub on hwbp, in firmware for QEMU's aarch64 `virt` board (two
//! Cortex-A53 CPUs at EL1).
//!
//! The PL011 carries the GDB remote protocol (QEMU puts it on a TCP port);
//! the console (a few lines) goes out through semihosting. Both CPUs are
//! brought up in the hwbp manager; GDB's `hbreak`/`watch`/`rwatch`/`awatch`
//! become pinned all-CPU hwbp breakpoints through `hwbp-gdbstub`, and the
//! stub reports their hits from the debug exception handler. The program
//! under the debugger is `program::run`, on CPU 0.
#![no_std]
#![no_main]

#[path = "../../qemu-aarch64/src/boot.rs"]
mod boot;
mod irq_check;
mod machine;
#[path = "../../gdb-common/program.rs"]
mod program;
#[allow(dead_code)] // PSCI_VERSION is the board check's, not used here
#[path = "../../qemu-aarch64/src/psci.rs"]
mod psci;
#[path = "../../gdb-common/session.rs"]
mod session;
mod step_check;

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use board_kit::{fatal, Board};
use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;

pub use board_kit::{print, println};

use machine::{BPS, HWBP, LATCH};

/// The board as the kit sees it: semihosting console and exit, DAIF.I/F, two
/// CPUs.
struct GdbVirt;
board_kit::set_board!(GdbVirt);

// SAFETY: as the qemu-aarch64 board: the kit's AArch64 DAIF helpers mask and
// restore only IRQ/FIQ; `cpu_id` is MPIDR_EL1.Aff0, 0 or 1 on `-smp 2`.
unsafe impl Board for GdbVirt {
    const NAME: &'static str = "gdb-aarch64";
    const CRLF: bool = false;
    const CPUS: u16 = 2;

    fn put(byte: u8) {
        board_kit::aarch64::semihosting_putc(byte)
    }

    fn exit(success: bool) -> ! {
        board_kit::aarch64::semihosting_exit(success)
    }

    unsafe fn mask_irqs() -> u64 {
        // SAFETY: forwarded from the kit's critical-section acquire.
        unsafe { board_kit::aarch64::mask_irqs() }
    }

    unsafe fn restore_irqs(previous: u64) {
        // SAFETY: forwarded from the kit's critical-section release.
        unsafe { board_kit::aarch64::restore_irqs(previous) }
    }

    fn cpu_id() -> u16 {
        board_kit::aarch64::cpu_id()
    }
}

/// CPU 1 has come online in the manager.
static CPU1_ONLINE: AtomicBool = AtomicBool::new(false);
/// CPU 0 asks CPU 1 to bring its registers up to date (1), CPU 1 answers 0.
pub static CPU1_SYNC: AtomicU32 = AtomicU32::new(0);

#[no_mangle]
extern "C" fn primary_main() -> ! {
    println!(
        "hwbp gdb-aarch64: booted on CPU {}",
        board_kit::aarch64::cpu_id()
    );
    if let Err(e) = HWBP.init(2) {
        fatal!("init(2) failed: {:?}", e);
    }
    if let Err(e) = HWBP.cpu_online(0) {
        fatal!("cpu_online(0) failed: {:?}", e);
    }
    extern "C" {
        fn _start_secondary();
    }
    let entry = _start_secondary as *const () as u64;
    let rc = psci::cpu_on(psci::QEMU_VIRT_EL1, 1, entry, 0);
    if rc != 0 {
        fatal!("PSCI CPU_ON(1) returned {}", rc);
    }
    machine::wait_for("CPU 1 to come online", || {
        CPU1_ONLINE.load(Ordering::SeqCst)
    });
    irq_check::run();
    step_check::run();
    println!(
        "hwbp: {:?} on 2 CPUs; gdb stub on the PL011, waiting for GDB",
        HWBP.slot_counts()
    );
    // The first stop: GDB connects and finds the program stopped here.
    // SAFETY: `brk #0x7e` traps to rust_exception, which reports it to GDB
    // and skips it.
    unsafe { core::arch::asm!("brk #0x7e") };
    let code = program::run();
    session::exited(code)
}

/// CPU 1's Rust entry (from `_start_secondary`): comes online, then serves
/// sync requests from CPU 0 (a kernel would send an IPI).
#[no_mangle]
extern "C" fn secondary_main() -> ! {
    let cpu = board_kit::aarch64::cpu_id();
    if let Err(e) = HWBP.cpu_online(cpu) {
        fatal!("cpu_online({}) failed: {:?}", cpu, e);
    }
    CPU1_ONLINE.store(true, Ordering::SeqCst);
    loop {
        if CPU1_SYNC.load(Ordering::SeqCst) == 1 {
            if let Err(e) = BPS.sync(cpu) {
                fatal!("sync({}) failed: {:?}", cpu, e);
            }
            CPU1_SYNC.store(0, Ordering::SeqCst);
        }
        core::hint::spin_loop();
    }
}

const EC_BRK64: u64 = 0x3c;
/// Breakpoint, software step and watchpoint, from the current EL.
const EC_BREAKPOINT: u64 = 0x31;
const EC_STEP: u64 = 0x33;
const EC_WATCHPOINT: u64 = 0x35;
/// Vector 4: current EL with SP_ELx, synchronous.
const VECTOR_CURRENT_SPX_SYNC: u64 = 4;
/// Vector 5: current EL with SP_ELx, IRQ.
const VECTOR_CURRENT_SPX_IRQ: u64 = 5;

/// Called by the vector table for every exception, with the vector index
/// and the saved frame.
#[no_mangle]
extern "C" fn rust_exception(kind: u64, frame: &mut boot::Frame) {
    let (esr, far): (u64, u64);
    // SAFETY: reading the syndrome and fault address registers at EL1.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", out(reg) esr, options(nomem, nostack));
        core::arch::asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack));
    }
    let ec = esr >> 26;
    let cpu = board_kit::aarch64::cpu_id();
    if kind == VECTOR_CURRENT_SPX_IRQ && cpu == 0 {
        irq_check::irq();
        return;
    }
    if kind == VECTOR_CURRENT_SPX_SYNC
        && cpu == 0
        && matches!(ec, EC_BREAKPOINT | EC_STEP | EC_WATCHPOINT)
    {
        let raw = hwbp_arm64::Aarch64Exception {
            esr,
            far,
            elr: frame.elr,
        };
        let r = HWBP.handle_exception(cpu, &raw);
        if r.single_steps() {
            frame.spsr |= hwbp_arm64::backend::aarch64::SPSR_SS;
        }
        // One of GDB's breakpoints fired; or the single step GDB asked for
        // completed (handed on by hwbp, or not hwbp's at all).
        let sample = LATCH.take(cpu);
        if let Some(s) = &sample {
            irq_check::on_sample(s);
        }
        if step_check::on_debug(ec == EC_STEP, r, frame) {
            return;
        }
        let hit = sample.and_then(|s| BPS.stop_for(&s));
        let stop = match hit {
            Some(stop) => Some(stop.reason()),
            None if ec == EC_STEP && machine::stepping() && (r.pass_on || !r.is_ours()) => {
                Some(SingleThreadStopReason::DoneStep)
            }
            None => None,
        };
        match (stop, r) {
            (Some(reason), _) => session::stop(frame, reason),
            (None, r) if r.is_ours() && !r.pass_on => {}
            (None, other) => fatal!(
                "debug exception not claimed ({:?}): ESR {:#x} FAR {:#x} ELR {:#x}",
                other,
                esr,
                far,
                frame.elr
            ),
        }
        return;
    }
    if kind == VECTOR_CURRENT_SPX_SYNC && cpu == 0 && ec == EC_BRK64 && esr & 0xffff == 0x7d {
        frame.elr += 4;
        step_check::on_brk(frame);
        return;
    }
    if kind == VECTOR_CURRENT_SPX_SYNC && cpu == 0 && ec == EC_BRK64 && esr & 0xffff == 0x7e {
        frame.elr += 4;
        session::stop(frame, SingleThreadStopReason::Signal(Signal::SIGTRAP));
        return;
    }
    fatal!(
        "unexpected exception on CPU {}: vector {} ESR {:#x} (EC {:#x}) FAR {:#x} ELR {:#x}",
        cpu,
        kind,
        esr,
        ec,
        far,
        frame.elr
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fatal!("panic on CPU {}: {}", board_kit::aarch64::cpu_id(), info)
}
