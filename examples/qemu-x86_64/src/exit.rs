//! Leaving QEMU through `isa-debug-exit` (iobase 0xf4): QEMU exits with
//! `(value << 1) | 1`, which `run-qemu.sh` maps to the cargo exit status.

const DEBUG_EXIT_PORT: u16 = 0xF4;

/// QEMU exits 33: `run-qemu.sh` exits 0.
const SUCCESS: u8 = 0x10;
/// QEMU exits 35: `run-qemu.sh` exits 1 (a check failed).
const FAILURE: u8 = 0x11;

/// Leave QEMU with the success or the failure code.
pub fn exit(success: bool) -> ! {
    let value = if success { SUCCESS } else { FAILURE };
    // SAFETY: isa-debug-exit is configured at 0xf4 by run-qemu.sh; writing it
    // ends the virtual machine.
    unsafe { crate::serial::outb(DEBUG_EXIT_PORT, value) };
    // Without the device (booted by hand), stop here.
    loop {
        // SAFETY: interrupts are off; hlt just parks the CPU.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}
