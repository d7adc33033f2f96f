//! hwbp firmware for `qemu-system-x86_64 -machine pc`: see README.md.
#![no_std]
#![no_main]

mod boot;
mod exit;
mod idt;
#[macro_use]
mod serial;

use core::panic::PanicInfo;

/// Called by the debug exception stub with the saved state.
fn on_debug_exception(frame: &mut idt::Frame) {
    println!("#DB at rip {:#x}", frame.rip);
}

#[no_mangle]
extern "C" fn kmain() -> ! {
    serial::init();
    idt::init();
    println!("hwbp x86_64: booted");
    // SAFETY: int3-free smoke test of the IDT: int 1 raises vector 1.
    unsafe { core::arch::asm!("int 1") };
    println!("hwbp x86_64: 0 checks passed");
    exit::success();
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    println!("FAIL: panic: {}", info);
    exit::failure();
}
