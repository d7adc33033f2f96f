//! hwbp firmware for `qemu-system-x86_64 -machine pc` (see README.md): boots
//! through the PVH note, enters long mode, installs an IDT whose #DB vector
//! calls `hwbp_core::Hwbp::handle_exception` over hwbp-x86's real backend, and
//! runs the checks of issue 7 on the emulated debug registers.
#![no_std]
#![no_main]

mod boot;
mod checks;
mod exit;
mod hw;
mod idt;
mod timer;
#[macro_use]
mod serial;

use core::panic::PanicInfo;

pub use hw::on_debug_exception;

/// Print a `FAIL:` line and leave QEMU with the failure code.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {{
        $crate::println!("FAIL: {}", format_args!($($arg)*));
        $crate::exit::failure()
    }};
}

#[no_mangle]
extern "C" fn kmain() -> ! {
    serial::init();
    idt::init();
    timer::init();
    println!("hwbp x86_64: booted (PVH, long mode, IDT with #DB handler)");
    let passed = checks::run();
    println!("hwbp x86_64: {passed} checks passed");
    exit::success();
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    fail!("panic: {info}");
}
