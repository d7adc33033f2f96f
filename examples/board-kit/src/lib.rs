//! The harness the QEMU example firmwares share.
//!
//! A board implements [`Board`] (how to put a byte on its console, how to
//! leave the emulator, how to mask its interrupts) and names that type once
//! with [`set_board!`]. The kit then gives it:
//!
//! * [`console`]: `print!`/`println!`, one whole line per critical section;
//! * [`checks`]: `check!` counts and prints `ok N - ...` or `FAIL: ...` and
//!   carries on; [`checks::finish`] prints `hwbp <board>: N checks passed`
//!   (or how many failed) and exits through the board, non-zero on any
//!   failure; `fatal!`/`must!` stop the run when nothing after could work;
//! * [`recorder`]: the sample recorder handed to `hwbp_core::Manager`;
//! * [`cs`]: the `critical-section` implementation built on the board's
//!   interrupt mask (with a lock between CPUs when there are several);
//! * [`tick`]: the counter a board's timer interrupt drives rotation with.
//! * [`pl011`]: the transmit path of the Arm boards' UART.
//! * `aarch64` (AArch64 targets only): DAIF masking, the CPU number,
//!   semihosting (exit, console) and the exception frame with its save and
//!   restore assembly (`frame_global_asm!`) for the AArch64 boards; `x86_64`
//!   (x86_64 targets only): RFLAGS.IF masking for the x86_64 boards.
#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod checks;
pub mod console;
pub mod cs;
pub mod pl011;
pub mod recorder;
pub mod tick;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use console::Varies;
pub use recorder::{Record, Recorder};
pub use tick::Ticker;

/// What a board supplies to the kit.
///
/// # Safety
///
/// [`Board::mask_irqs`] must mask every interrupt that could run code taking
/// a critical section on the calling CPU, and return the previous mask state
/// with bit 63 clear (the kit keeps its nesting flag there);
/// [`Board::restore_irqs`] must unmask exactly what was unmasked in that
/// state and nothing else. [`Board::cpu_id`] must return a different number
/// below [`Board::CPUS`] on each CPU.
pub unsafe trait Board {
    /// The board's name in the summary line (`hwbp <NAME>: ...`).
    const NAME: &'static str;
    /// The name the summary line uses: [`Board::NAME`] unless the firmware
    /// learns at run time which of its variants runs (a CPU feature).
    fn name() -> &'static str {
        Self::NAME
    }
    /// Send `\r\n` for every `\n` (a terminal's line end); `xtask` reads
    /// either.
    const CRLF: bool;
    /// CPUs that may take critical sections at the same time: with more than
    /// one, a critical section also takes a lock between CPUs.
    const CPUS: u16;

    /// Put one byte on the console, waiting for room.
    fn put(byte: u8);

    /// Leave the emulator: exit status 0 if `success`, non-zero otherwise.
    fn exit(success: bool) -> !;

    /// Mask interrupts on the calling CPU; returns the previous mask state.
    ///
    /// # Safety
    ///
    /// Only the kit's critical-section implementation calls it, paired with
    /// [`Board::restore_irqs`].
    unsafe fn mask_irqs() -> u64;

    /// Unmask what `previous` (a [`Board::mask_irqs`] result) had unmasked.
    ///
    /// # Safety
    ///
    /// `previous` comes from the matching [`Board::mask_irqs`] on this CPU.
    unsafe fn restore_irqs(previous: u64);

    /// The calling CPU's number, below [`Board::CPUS`].
    fn cpu_id() -> u16 {
        0
    }
}

/// Name the firmware's [`Board`]: defines the link-time hooks the kit calls.
/// Use it exactly once, in the firmware's crate.
#[macro_export]
macro_rules! set_board {
    ($board:ty) => {
        #[no_mangle]
        fn __board_kit_put(byte: u8) {
            <$board as $crate::Board>::put(byte)
        }
        #[no_mangle]
        fn __board_kit_exit(success: bool) -> ! {
            <$board as $crate::Board>::exit(success)
        }
        #[no_mangle]
        fn __board_kit_name() -> &'static str {
            <$board as $crate::Board>::name()
        }
        #[no_mangle]
        fn __board_kit_crlf() -> bool {
            <$board as $crate::Board>::CRLF
        }
        #[no_mangle]
        fn __board_kit_cpus() -> u16 {
            <$board as $crate::Board>::CPUS
        }
        #[no_mangle]
        fn __board_kit_cpu_id() -> u16 {
            <$board as $crate::Board>::cpu_id()
        }
        #[no_mangle]
        unsafe fn __board_kit_mask_irqs() -> u64 {
            // SAFETY: forwarded from the kit's critical-section acquire.
            unsafe { <$board as $crate::Board>::mask_irqs() }
        }
        #[no_mangle]
        unsafe fn __board_kit_restore_irqs(previous: u64) {
            // SAFETY: forwarded from the kit's critical-section release.
            unsafe { <$board as $crate::Board>::restore_irqs(previous) }
        }
    };
}

/// The hooks `set_board!` defines.
pub(crate) mod hooks {
    extern "Rust" {
        fn __board_kit_put(byte: u8);
        fn __board_kit_exit(success: bool) -> !;
        fn __board_kit_name() -> &'static str;
        fn __board_kit_crlf() -> bool;
        fn __board_kit_cpus() -> u16;
        fn __board_kit_cpu_id() -> u16;
        fn __board_kit_mask_irqs() -> u64;
        fn __board_kit_restore_irqs(previous: u64);
    }

    // SAFETY (of every call below): `set_board!` defines each hook with
    // exactly this signature, forwarding to the board's `Board` impl; a
    // firmware without `set_board!` does not link.

    pub(crate) fn put(byte: u8) {
        // SAFETY: see above.
        unsafe { __board_kit_put(byte) }
    }

    pub(crate) fn exit(success: bool) -> ! {
        // SAFETY: see above.
        unsafe { __board_kit_exit(success) }
    }

    pub(crate) fn name() -> &'static str {
        // SAFETY: see above.
        unsafe { __board_kit_name() }
    }

    pub(crate) fn crlf() -> bool {
        // SAFETY: see above.
        unsafe { __board_kit_crlf() }
    }

    pub(crate) fn cpus() -> u16 {
        // SAFETY: see above.
        unsafe { __board_kit_cpus() }
    }

    pub(crate) fn cpu_id() -> u16 {
        // SAFETY: see above.
        unsafe { __board_kit_cpu_id() }
    }

    /// # Safety
    /// As `Board::mask_irqs`.
    pub(crate) unsafe fn mask_irqs() -> u64 {
        // SAFETY: see above; the caller keeps `Board::mask_irqs`'s contract.
        unsafe { __board_kit_mask_irqs() }
    }

    /// # Safety
    /// As `Board::restore_irqs`.
    pub(crate) unsafe fn restore_irqs(previous: u64) {
        // SAFETY: see above; the caller keeps `Board::restore_irqs`'s contract.
        unsafe { __board_kit_restore_irqs(previous) }
    }
}
