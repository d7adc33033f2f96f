//! Output on the PL011 UART at 0x0900_0000, and exit through semihosting.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

const UART_BASE: usize = 0x0900_0000;
const UARTDR: usize = 0x000;
const UARTFR: usize = 0x018;
const FR_TXFF: u32 = 1 << 5;

struct Pl011;

impl Pl011 {
    fn putb(&mut self, b: u8) {
        // SAFETY: the PL011 of QEMU's virt board is at UART_BASE, mapped as
        // device memory by the boot page table; only this module touches it.
        unsafe {
            while core::ptr::read_volatile((UART_BASE + UARTFR) as *const u32) & FR_TXFF != 0 {}
            core::ptr::write_volatile((UART_BASE + UARTDR) as *mut u32, u32::from(b));
        }
    }
}

impl Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.putb(b'\r');
            }
            self.putb(b);
        }
        Ok(())
    }
}

/// Serialises whole lines between the two CPUs (and the exception handler of
/// the same CPU, through the re-entrant critical section).
pub fn print(args: fmt::Arguments<'_>) {
    critical_section::with(|_| {
        let _ = Pl011.write_fmt(args);
    });
}

/// `print!` to the PL011.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// `println!` to the PL011.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

static EXITING: AtomicBool = AtomicBool::new(false);

/// Leave QEMU through semihosting SYS_EXIT (ADP_Stopped_ApplicationExit), with
/// `status` as QEMU's exit code.
pub fn exit(status: u32) -> ! {
    EXITING.store(true, Ordering::SeqCst);
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, u64::from(status)];
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting call; QEMU runs with
    // -semihosting and reads the two-word parameter block x1 points at.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") SYS_EXIT,
            in("x1") block.as_ptr(),
            options(nostack)
        );
    }
    // Without -semihosting the HLT is UNDEFINED and never returns here; if it
    // does, park the CPU.
    loop {
        core::hint::spin_loop();
    }
}

/// Print `FAIL: <msg>` and exit with status 1.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {{
        $crate::println!("FAIL: {}", format_args!($($arg)*));
        $crate::console::exit(1)
    }};
}
