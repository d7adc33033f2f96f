//! hwbp firmware for `qemu-system-x86_64 -machine pc` (see README.md): boots
//! through the PVH note, enters long mode, installs an IDT whose #DB vector
//! calls `hwbp_core::Manager::handle_exception` over hwbp-x86's real backend, and
//! runs the checks of issue 7 on the emulated debug registers.
#![no_std]
#![no_main]

mod boot;
mod checks;
mod exit;
mod hw;
mod idt;
mod serial;
mod timer;

use core::panic::PanicInfo;

use board_kit::{fatal, Board};

pub use board_kit::{print, println};
pub use hw::on_debug_exception;

/// The board as the kit sees it: COM1, isa-debug-exit, RFLAGS.IF.
struct Pc;
board_kit::set_board!(Pc);

// SAFETY: a single CPU: masking interrupts excludes every other context that
// could take a critical section (#DB is not maskable; the manager's exception
// path takes no lock). `mask_irqs` returns RFLAGS (bit 63 is reserved, 0);
// `restore_irqs` re-enables interrupts only if they were enabled at the
// outermost acquire. Interrupts are enabled only while the timer runs.
unsafe impl Board for Pc {
    const NAME: &'static str = "x86_64";
    const CRLF: bool = true;
    const CPUS: u16 = 1;

    fn put(byte: u8) {
        serial::put(byte);
    }

    fn exit(success: bool) -> ! {
        exit::exit(success)
    }

    unsafe fn mask_irqs() -> u64 {
        // SAFETY: forwarded from the kit's critical-section acquire.
        unsafe { board_kit::x86_64::mask_irqs() }
    }

    unsafe fn restore_irqs(previous: u64) {
        // SAFETY: forwarded from the kit's critical-section release.
        unsafe { board_kit::x86_64::restore_irqs(previous) }
    }
}

#[no_mangle]
extern "C" fn kmain() -> ! {
    serial::init();
    idt::init();
    timer::init();
    println!("hwbp x86_64: booted (PVH, long mode, IDT with #DB handler)");
    checks::run();
    board_kit::checks::finish()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    fatal!("panic: {info}");
}
