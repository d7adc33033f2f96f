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
mod console;
mod cs;
mod psci;

use core::sync::atomic::{AtomicU32, Ordering};

/// This CPU's number: MPIDR_EL1.Aff0 (0 or 1 on `-smp 2`).
pub fn cpu_id() -> u16 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 at EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u16
}

fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    (el >> 2) & 3
}

/// CPU 1's progress, published to CPU 0.
static CPU1_STATE: AtomicU32 = AtomicU32::new(0);
const CPU1_UP: u32 = 1;

static BRK_SEEN: AtomicU32 = AtomicU32::new(0);

#[no_mangle]
extern "C" fn primary_main() -> ! {
    println!("hwbp aarch64: booted on CPU {} at EL{}", cpu_id(), current_el());
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
    println!("psci: {:?} conduit, PSCI {}.{}", conduit, version >> 16, version & 0xffff);
    if version >> 16 == 0 || version & (1 << 31) != 0 {
        fail!("PSCI_VERSION through {:?} returned {:#x}", conduit, version);
    }
    extern "C" {
        fn _start_secondary();
    }
    let rc = psci::cpu_on(conduit, 1, _start_secondary as *const () as usize as u64, 0);
    if rc != 0 {
        fail!("PSCI CPU_ON(1) returned {}", rc);
    }
    while CPU1_STATE.load(Ordering::Acquire) != CPU1_UP {
        core::hint::spin_loop();
    }
    println!("hwbp aarch64: 0 checks passed");
    console::exit(0)
}

#[no_mangle]
extern "C" fn secondary_main() -> ! {
    println!("CPU {} up at EL{}", cpu_id(), current_el());
    CPU1_STATE.store(CPU1_UP, Ordering::Release);
    loop {
        core::hint::spin_loop();
    }
}

const EC_BRK64: u64 = 0x3c;

/// Called by the vector table for every exception, with the vector index
/// (4 = current EL with SP_ELx, synchronous) and the saved frame.
#[no_mangle]
extern "C" fn rust_exception(kind: u64, frame: &mut boot::Frame) {
    let (esr, far): (u64, u64);
    // SAFETY: reading the syndrome and fault address registers at EL1.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", out(reg) esr, options(nomem, nostack));
        core::arch::asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack));
    }
    let ec = esr >> 26;
    if kind == 4 && ec == EC_BRK64 && esr & 0xffff == 0x7e {
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
