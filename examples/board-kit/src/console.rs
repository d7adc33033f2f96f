//! The board's console as a `core::fmt::Write` sink, and the print macros.

use core::fmt::{self, Write};

use crate::hooks;

/// The board's console ([`crate::Board::put`]), with `\n` sent as `\r\n` on
/// boards that ask for it.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let crlf = hooks::crlf();
        for b in s.bytes() {
            if b == b'\n' && crlf {
                hooks::put(b'\r');
            }
            hooks::put(b);
        }
        Ok(())
    }
}

/// Print `args` inside one critical section, so that lines from two CPUs, or
/// from an exception handler of the same CPU (the critical section nests),
/// never interleave within a line.
pub fn print(args: fmt::Arguments<'_>) {
    critical_section::with(|_| {
        let _ = Console.write_fmt(args);
    });
}

/// `print!` to the board's console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// `println!` to the board's console: the text and its line end are written
/// as one piece.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A value that differs from run to run (timer ticks, loop rounds): printed
/// with a leading `~` (`~23`), which `cargo xtask qemu` reads as "any
/// number" when it compares a transcript with the expected one.
#[derive(Clone, Copy)]
pub struct Varies<T>(pub T);

impl<T: fmt::Display> fmt::Display for Varies<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "~{}", self.0)
    }
}

impl<T: fmt::Debug> fmt::Debug for Varies<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "~{:?}", self.0)
    }
}
