//! Output on the virt board's PL011 UART at 0x0900_0000.
//!
//! QEMU's PL011 transmits without any set-up; the firmware only waits for
//! room in the FIFO (FR.TXFF) before writing a byte to DR.

use core::fmt::{self, Write};

const UART_BASE: usize = 0x0900_0000;
const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// The PL011 as a `fmt::Write` sink.
pub struct Uart;

impl Uart {
    fn put(&mut self, byte: u8) {
        // SAFETY: 0x0900_0000 is the PL011 on QEMU's virt board (device
        // memory with the MMU off); FR and DR are its flag and data registers.
        unsafe {
            while core::ptr::read_volatile((UART_BASE + FR) as *const u32) & FR_TXFF != 0 {}
            core::ptr::write_volatile((UART_BASE + DR) as *mut u32, u32::from(byte));
        }
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Plain '\n' line ends: the transcript is read by programs (xtask)
        // that compare whole lines.
        for b in s.bytes() {
            self.put(b);
        }
        Ok(())
    }
}

/// Print formatted text to the UART.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::console::Uart, $($arg)*);
    }};
}

/// Print formatted text and a newline to the UART.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Uart, $($arg)*);
    }};
}
