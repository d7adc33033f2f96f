//! hwbp on QEMU's armv7 virt board (cortex-a15, AArch32).
#![no_std]
#![no_main]

mod boot;
mod console;
mod cs;
mod semihosting;

use core::sync::atomic::{AtomicU32, Ordering};

use boot::{Frame, Vector};

#[no_mangle]
extern "C" fn firmware_main() -> ! {
    println!("hwbp armv7: boot ok");
    let r = checks();
    match r {
        Ok(n) => {
            println!("hwbp armv7: {n} checks passed");
            semihosting::exit(true)
        }
        Err(()) => semihosting::exit(false),
    }
}

fn checks() -> Result<u32, ()> {
    let mut n = 0;
    undef_round_trip()?;
    n += 1;
    Ok(n)
}

/// Undefined instructions taken by `undef_round_trip` (which skips them).
static UNDEF_TAKEN: AtomicU32 = AtomicU32::new(0);

/// The vector stubs save and restore every register: take an undefined
/// instruction between two uses of live registers and return past it.
fn undef_round_trip() -> Result<(), ()> {
    let (a, b): (u32, u32);
    // SAFETY: `udf` traps to the UND vector, whose handler (below) skips it
    // and returns with every register restored.
    unsafe {
        core::arch::asm!(
            "mov {a}, #0x55",
            "mov {b}, #0xaa",
            "udf #0x42",
            "add {a}, {a}, {b}",
            a = out(reg) a,
            b = out(reg) b,
        );
    }
    let taken = UNDEF_TAKEN.load(Ordering::Relaxed);
    println!("boot: exception round trip: undef taken {taken}x, registers kept: {}", a == 0xff && b == 0xaa);
    if taken != 1 || a != 0xff || b != 0xaa {
        println!("FAIL: exception round trip (taken {taken}, a={a:#x}, b={b:#x})");
        return Err(());
    }
    Ok(())
}

/// Called by the vector stubs with the saved frame.
#[no_mangle]
extern "C" fn exception_entry(frame: &mut Frame, vector: u32) {
    if vector == Vector::Undef as u32 {
        // SAFETY: frame.pc is the address of an instruction the firmware
        // executed, so it is readable code.
        let insn = unsafe { core::ptr::read_volatile(frame.pc as *const u32) };
        // `udf #0x42` in A32 (cond 0b1110, 0x7f000f0 | imm12:imm4).
        if insn == 0xe7f0_04f2 {
            UNDEF_TAKEN.fetch_add(1, Ordering::Relaxed);
            frame.pc += 4;
            return;
        }
    }
    println!("FAIL: unexpected exception {vector} at pc={:#010x} spsr={:#010x}", frame.pc, frame.spsr);
    semihosting::exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("FAIL: panic: {info}");
    semihosting::exit(false)
}
