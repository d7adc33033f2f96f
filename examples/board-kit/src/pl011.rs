//! The Arm PL011 UART's transmit path (QEMU's Arm `virt` boards have one at
//! 0x0900_0000): QEMU's PL011 transmits without any set-up, so a byte is
//! written to DR once the transmit FIFO has room (FR.TXFF clear).

const DR: usize = 0x000;
const FR: usize = 0x018;
const FR_TXFF: u32 = 1 << 5;

/// Send `byte` on the PL011 at `base`, waiting for room in its FIFO.
///
/// # Safety
///
/// `base` is the address of a PL011, mapped as device memory (or with the
/// MMU off), whose transmitter no other code drives at the same time.
pub unsafe fn put(base: usize, byte: u8) {
    // SAFETY: the caller vouches that FR and DR at `base` are a PL011's flag
    // and data registers.
    unsafe {
        while core::ptr::read_volatile((base + FR) as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile((base + DR) as *mut u32, u32::from(byte));
    }
}
