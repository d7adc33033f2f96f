//! COM1 (16550 UART at I/O port 0x3F8), polled: the byte writer under
//! board-kit's console.

use core::arch::asm;

const COM1: u16 = 0x3F8;

/// Write one byte to an I/O port.
///
/// # Safety
/// The port must belong to a device whose side effects the caller wants.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller vouches for the port; `out` touches no memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Read one byte from an I/O port.
///
/// # Safety
/// The port must belong to a device whose read side effects the caller wants.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller vouches for the port; `in` touches no memory.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    value
}

/// 115200 8N1, FIFOs on, interrupts off.
pub fn init() {
    // SAFETY: COM1 is the PC's first UART; these are its standard set-up writes.
    unsafe {
        outb(COM1 + 1, 0x00); // IER: no interrupts
        outb(COM1 + 3, 0x80); // LCR: DLAB
        outb(COM1, 0x01); // divisor 1 = 115200
        outb(COM1 + 1, 0x00);
        outb(COM1 + 3, 0x03); // 8N1
        outb(COM1 + 2, 0xC7); // FIFO on, cleared
        outb(COM1 + 4, 0x03); // DTR, RTS
    }
}

/// Send one byte (no lock: one CPU; board-kit prints each line inside a
/// critical section).
pub fn put(byte: u8) {
    // SAFETY: polling LSR.THRE then writing THR is the UART's transmit protocol.
    unsafe {
        while inb(COM1 + 5) & 0x20 == 0 {}
        outb(COM1, byte);
    }
}
