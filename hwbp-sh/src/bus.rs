//! Register access: the small trait the backend is generic over, and the
//! volatile memory-mapped implementation used on real hardware.

/// Access to the UBC's control registers (physical P4 addresses such as
/// `0xFF20_0000`).
///
/// The UBC registers have fixed widths (SH-4: BAMR/BASR 8-bit, BBR/BRCR
/// 16-bit, the rest 32-bit; SH-4A: all 32-bit), and an access of the wrong
/// width is undefined on the hardware, so the trait offers all three.
///
/// # Safety of the methods
///
/// The caller promises that `addr` is a UBC (or CCN identification) register
/// of the running part, accessed with its documented width, and that it owns
/// the UBC (nothing else writes it concurrently).
pub trait UbcBus {
    /// Read an 8-bit register.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn read8(&self, addr: u32) -> u8;
    /// Read a 16-bit register.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn read16(&self, addr: u32) -> u16;
    /// Read a 32-bit register.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn read32(&self, addr: u32) -> u32;
    /// Write an 8-bit register.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn write8(&self, addr: u32, value: u8);
    /// Write a 16-bit register.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn write16(&self, addr: u32, value: u16);
    /// Write a 32-bit register.
    ///
    /// # Safety
    /// See the trait documentation.
    unsafe fn write32(&self, addr: u32, value: u32);
}

impl<T: UbcBus + ?Sized> UbcBus for &T {
    unsafe fn read8(&self, addr: u32) -> u8 {
        // SAFETY: forwarded; the caller upholds the trait contract.
        unsafe { (**self).read8(addr) }
    }
    unsafe fn read16(&self, addr: u32) -> u16 {
        // SAFETY: forwarded; the caller upholds the trait contract.
        unsafe { (**self).read16(addr) }
    }
    unsafe fn read32(&self, addr: u32) -> u32 {
        // SAFETY: forwarded; the caller upholds the trait contract.
        unsafe { (**self).read32(addr) }
    }
    unsafe fn write8(&self, addr: u32, value: u8) {
        // SAFETY: forwarded; the caller upholds the trait contract.
        unsafe { (**self).write8(addr, value) }
    }
    unsafe fn write16(&self, addr: u32, value: u16) {
        // SAFETY: forwarded; the caller upholds the trait contract.
        unsafe { (**self).write16(addr, value) }
    }
    unsafe fn write32(&self, addr: u32, value: u32) {
        // SAFETY: forwarded; the caller upholds the trait contract.
        unsafe { (**self).write32(addr, value) }
    }
}

/// Volatile loads and stores at the register's address, for code running on
/// the SuperH part itself in a privileged mode (P4 area `0xFF00_0000` and up
/// is only reachable there).
///
/// It compiles on every target so the backend builds everywhere, but it is
/// only meaningful on SuperH, for which no Rust compiler target exists today.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mmio;

/// Run a register write with compiler fences on both sides. A volatile
/// access is ordered only with other volatile accesses: without the fences
/// the compiler could move an ordinary load or store — the very access a
/// channel is being set up (or torn down) to watch — across the UBC write.
/// This is the MMIO counterpart of leaving `nomem` off the x86 and Arm
/// debug-register writes. (The hardware side is the backend's read-back of
/// the register, which the SH-4/SH-4A manuals ask for.)
fn fenced(write: impl FnOnce()) {
    use core::sync::atomic::{compiler_fence, Ordering::SeqCst};
    compiler_fence(SeqCst);
    write();
    compiler_fence(SeqCst);
}

impl UbcBus for Mmio {
    unsafe fn read8(&self, addr: u32) -> u8 {
        // SAFETY: the caller guarantees `addr` is an 8-bit device register.
        unsafe { core::ptr::read_volatile(addr as usize as *const u8) }
    }
    unsafe fn read16(&self, addr: u32) -> u16 {
        // SAFETY: the caller guarantees `addr` is an aligned 16-bit device register.
        unsafe { core::ptr::read_volatile(addr as usize as *const u16) }
    }
    unsafe fn read32(&self, addr: u32) -> u32 {
        // SAFETY: the caller guarantees `addr` is an aligned 32-bit device register.
        unsafe { core::ptr::read_volatile(addr as usize as *const u32) }
    }
    unsafe fn write8(&self, addr: u32, value: u8) {
        // SAFETY: the caller guarantees `addr` is an 8-bit device register it owns.
        fenced(|| unsafe { core::ptr::write_volatile(addr as usize as *mut u8, value) })
    }
    unsafe fn write16(&self, addr: u32, value: u16) {
        // SAFETY: the caller guarantees `addr` is an aligned 16-bit device register it owns.
        fenced(|| unsafe { core::ptr::write_volatile(addr as usize as *mut u16, value) })
    }
    unsafe fn write32(&self, addr: u32, value: u32) {
        // SAFETY: the caller guarantees `addr` is an aligned 32-bit device register it owns.
        fenced(|| unsafe { core::ptr::write_volatile(addr as usize as *mut u32, value) })
    }
}
