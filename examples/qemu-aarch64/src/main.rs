//! hwbp on QEMU's aarch64 `virt` board (two Cortex-A53 CPUs).
//!
//! Boots at EL1, brings up the real hwbp-arm64 backend on both CPUs and checks
//! on emulated debug hardware what the host tests check on the models (issue 7).
//! Every check prints a line; the first mismatch prints `FAIL: …` and exits
//! QEMU with status 1 through semihosting; success ends with
//! `hwbp aarch64: N checks passed` and status 0.
#![no_std]
#![no_main]

mod boot;
mod checks;
mod console;
mod cpu1;
mod cs;
mod hw;
mod probe;
mod psci;
mod timer;

use core::sync::atomic::{AtomicU32, Ordering};

use hwbp_core::{Hwbp, Resume};

/// This CPU's number: MPIDR_EL1.Aff0 (0 or 1 on `-smp 2`).
pub fn cpu_id() -> u16 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 at EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u16
}

/// The exception level this code runs at.
pub fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    (el >> 2) & 3
}

/// Spin until `done()` holds, or fail after 10 seconds (of the generic
/// timer's counter) naming `what`: a firmware that hangs would leave QEMU
/// running, so every cross-CPU or interrupt wait is bounded here.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let (freq, start): (u64, u64);
    // SAFETY: reading CNTFRQ_EL0 and CNTVCT_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) start, options(nomem, nostack));
    }
    while !done() {
        let now: u64;
        // SAFETY: as above.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) now, options(nomem, nostack))
        };
        if now.wrapping_sub(start) > 10 * freq.max(1) {
            fail!("timed out after 10 s waiting for {}", what);
        }
        core::hint::spin_loop();
    }
}

/// The manager: hwbp-arm64's real backend, the sample recorder, 2 CPUs, 24
/// breakpoints, 2 tasks (unused here).
// SAFETY (of `Aarch64Backend::aarch64`): the firmware runs at EL1 (checked at boot
// before any use), nothing else on either CPU touches the debug registers,
// and install/decode run only on the CPU they name (hwbp-core's contract,
// kept by cpu1.rs, which resyncs CPU 1 on CPU 1).
pub static HWBP: Hwbp<hw::Backend, checks::Recorder, 2, 24, 2> =
    Hwbp::new(unsafe { hwbp_arm64::Aarch64Backend::aarch64() }, checks::Recorder);

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
        fail!("expected to be entered at EL1, got EL{}", current_el());
    }
    // Vector sanity: a BRK must come back through the table.
    // SAFETY: `brk` raises a synchronous exception that rust_exception
    // recognises (immediate 0x7e) and skips.
    unsafe { core::arch::asm!("brk #0x7e") };
    if BRK_SEEN.load(Ordering::SeqCst) != 1 {
        fail!("BRK did not reach the EL1 vector table");
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
        fail!("PSCI_VERSION through {:?} returned {:#x}", conduit, version);
    }

    // Step 1: discovery.
    let data_slots = hw::discover();
    if let Err(e) = HWBP.cpu_online(0) {
        fail!("cpu_online(0) failed: {:?}", e);
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

    println!("hwbp aarch64: {} checks passed", checks::passed());
    console::exit(0)
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
            fail!(
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
            other => fail!(
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
    fail!(
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
    fail!("panic on CPU {}: {}", cpu_id(), info)
}
