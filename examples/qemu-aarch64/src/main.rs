//! hwbp on QEMU's aarch64 `virt` board (two Cortex-A53 CPUs).
//!
//! Boots at EL1, brings up the real hwbp-arm64 backend on both CPUs and checks
//! on emulated debug hardware what the host tests check on the models (issue 7).
//! Every check prints a line (`ok N - …`, or `FAIL: …` and the run goes on);
//! success ends with `hwbp aarch64: N checks passed` and status 0 through
//! semihosting, any failure with a summary and status 1. A failure nothing
//! can follow (bring-up, an unexpected exception) stops the run at once.
#![no_std]
#![no_main]

mod boot;
mod checks;
mod cpu1;
mod hw;
mod probe;
mod psci;
mod timer;

use core::sync::atomic::{AtomicU32, Ordering};

use board_kit::{fatal, Board, Recorder};
use hwbp_core::{Manager, Resume, Sample};

pub use board_kit::{print, println};

/// The board as the kit sees it: the PL011, semihosting exit, DAIF.I/F, two
/// CPUs.
struct Aarch64Virt;
board_kit::set_board!(Aarch64Virt);

/// The virt board's PL011.
const UART_BASE: usize = 0x0900_0000;

// SAFETY: `mask_irqs` masks IRQ and FIQ on the calling CPU and returns the
// previous DAIF (bits 6-9: bit 63 clear); `restore_irqs` unmasks only what was
// unmasked in it. Only IRQ masking (DAIF.I/F) is touched, never the debug
// mask. `cpu_id` is MPIDR_EL1.Aff0, 0 or 1 on `-smp 2`.
unsafe impl Board for Aarch64Virt {
    const NAME: &'static str = "aarch64";
    const CRLF: bool = true;
    const CPUS: u16 = 2;

    fn put(byte: u8) {
        // SAFETY: the PL011 of QEMU's virt board, mapped as device memory by
        // the boot page table; the kit calls this inside a critical section,
        // so one CPU at a time.
        unsafe { board_kit::pl011::put(UART_BASE, byte) }
    }

    /// Leave QEMU through semihosting SYS_EXIT, with exit code 0 or 1.
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
        cpu_id()
    }
}

/// The samples the checks look at; a record's value is the doubleword at the
/// sample's address when the handler ran.
pub static REC: Recorder<64> = Recorder::new(doubleword_at);

/// The doubleword at `s.addr` (Arm watchpoints fire before the access
/// completes, so a store's old value); `None` outside RAM.
fn doubleword_at(s: &Sample) -> Option<u64> {
    let aligned = s.addr & !7;
    (0x4000_0000..0x8000_0000).contains(&aligned).then(|| {
        // SAFETY: RAM is mapped; debug exceptions are masked in the
        // handler (PSTATE.D set on entry), so this read cannot re-trigger.
        unsafe { core::ptr::read_volatile(aligned as *const u64) }
    })
}

/// This CPU's number: MPIDR_EL1.Aff0 (0 or 1 on `-smp 2`).
pub fn cpu_id() -> u16 {
    board_kit::aarch64::cpu_id()
}

/// The exception level this code runs at.
pub fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    (el >> 2) & 3
}

/// Spin until `done()` holds, or stop after 10 seconds naming `what`
/// (board-kit's bounded wait).
pub fn wait_for(what: &str, done: impl FnMut() -> bool) {
    board_kit::aarch64::wait_for(what, done)
}

/// The manager: hwbp-arm64's real backend, the sample recorder, 2 CPUs, 24
/// breakpoints, 2 tasks (unused here).
// SAFETY (of `Aarch64Backend::aarch64`): the firmware runs at EL1 (checked at boot
// before any use), nothing else on either CPU touches the debug registers,
// and install/decode run only on the CPU they name (hwbp-core's contract,
// kept by cpu1.rs, which resyncs CPU 1 on CPU 1).
pub static HWBP: Manager<hw::Backend, &'static Recorder<64>, 2, 24, 2> =
    Manager::new(unsafe { hwbp_arm64::Aarch64Backend::aarch64() }, &REC);

/// Debug exceptions taken so far (both CPUs): a broken step-over would loop
/// on one instruction forever, so the handler gives up after a bound.
static DEBUG_EXCEPTIONS: AtomicU32 = AtomicU32::new(0);
const DEBUG_EXCEPTION_LIMIT: u32 = 10_000;

static BRK_SEEN: AtomicU32 = AtomicU32::new(0);

#[no_mangle]
extern "C" fn primary_main() -> ! {
    println!(
        "hwbp aarch64: booted on CPU {} at EL{}",
        cpu_id(),
        current_el()
    );
    if current_el() != 1 {
        fatal!("expected to be entered at EL1, got EL{}", current_el());
    }
    // Vector sanity: a BRK must come back through the table.
    // SAFETY: `brk` raises a synchronous exception that rust_exception
    // recognises (immediate 0x7e) and skips.
    unsafe { core::arch::asm!("brk #0x7e") };
    if BRK_SEEN.load(Ordering::SeqCst) != 1 {
        fatal!("BRK did not reach the EL1 vector table");
    }
    let conduit = psci::QEMU_VIRT_EL1;
    let version = psci::version(conduit);
    println!(
        "psci: {:?} conduit, PSCI {}.{}",
        conduit,
        version >> 16,
        version & 0xffff
    );
    if version >> 16 == 0 || version & (1 << 31) != 0 {
        fatal!("PSCI_VERSION through {:?} returned {:#x}", conduit, version);
    }

    // Step 1: discovery.
    let data_slots = hw::discover();
    if let Err(e) = HWBP.cpu_online(0) {
        fatal!("cpu_online(0) failed: {:?}", e);
    }

    // Step 8: an all-CPU breakpoint registered before CPU 1 exists.
    let all = checks::all_cpu_register();
    cpu1::start(conduit);
    checks::all_cpu_fires(all);

    checks::write_watchpoint(); // step 2
    checks::rw_exec_period(); // step 3
    checks::multi_piece(); // step 4
    checks::fill_and_rotate(data_slots); // step 5
    checks::timer_rotate(data_slots); // step 5, timer-driven
    checks::modify(); // step 6
    checks::step_over(); // step 7
    checks::no_strays();

    board_kit::checks::finish()
}

const EC_BRK64: u64 = 0x3c;
/// Breakpoint, software step and watchpoint, from a lower or the current EL.
const EC_DEBUG_FIRST: u64 = 0x30;
const EC_DEBUG_LAST: u64 = 0x35;
/// Vector 4: current EL with SP_ELx, synchronous.
const VECTOR_CURRENT_SPX_SYNC: u64 = 4;
/// Vector 5: current EL with SP_ELx, IRQ.
const VECTOR_CURRENT_SPX_IRQ: u64 = 5;
/// SPSR_EL1.SS: with MDSCR_EL1.SS (set by the backend) step exactly one
/// instruction after `eret`.
use hwbp_arm64::backend::aarch64::SPSR_SS;

/// Called by the vector table for every exception, with the vector index
/// (4 = current EL with SP_ELx, synchronous; 5 = its IRQ) and the saved
/// frame.
#[no_mangle]
extern "C" fn rust_exception(kind: u64, frame: &mut boot::Frame) {
    if kind == VECTOR_CURRENT_SPX_IRQ && cpu_id() == 0 {
        timer::irq();
        return;
    }
    let (esr, far): (u64, u64);
    // SAFETY: reading the syndrome and fault address registers at EL1.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", out(reg) esr, options(nomem, nostack));
        core::arch::asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack));
    }
    let ec = esr >> 26;
    if kind == VECTOR_CURRENT_SPX_SYNC && (EC_DEBUG_FIRST..=EC_DEBUG_LAST).contains(&ec) {
        let cpu = cpu_id();
        if DEBUG_EXCEPTIONS.fetch_add(1, Ordering::Relaxed) >= DEBUG_EXCEPTION_LIMIT {
            fatal!(
                "more than {} debug exceptions: step-over is looping (last ESR {:#x} ELR {:#x})",
                DEBUG_EXCEPTION_LIMIT,
                esr,
                frame.elr
            );
        }
        let raw = hw::exception(esr, far, frame.elr);
        match HWBP.handle_exception(cpu, &raw) {
            Resume::RETURN => {}
            Resume::SINGLE_STEP => frame.spsr |= SPSR_SS,
            other => fatal!(
                "debug exception on CPU {} not taken by hwbp ({:?}): ESR {:#x} FAR {:#x} ELR {:#x}",
                cpu,
                other,
                esr,
                far,
                frame.elr
            ),
        }
        return;
    }
    if kind == VECTOR_CURRENT_SPX_SYNC && ec == EC_BRK64 && esr & 0xffff == 0x7e {
        BRK_SEEN.fetch_add(1, Ordering::SeqCst);
        frame.elr += 4;
        return;
    }
    fatal!(
        "unexpected exception on CPU {}: vector {} ESR {:#x} (EC {:#x}) FAR {:#x} ELR {:#x}",
        cpu_id(),
        kind,
        esr,
        ec,
        far,
        frame.elr
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fatal!("panic on CPU {}: {}", cpu_id(), info)
}
