//! The memory accesses and code the checks watch, written in assembly so that
//! each access is exactly one known instruction: a sample's `ip` can then be
//! checked against the instruction's address, and the step-over can rely on
//! the watched instruction not being a branch.

use core::arch::global_asm;
use core::cell::UnsafeCell;

global_asm!(
    r#"
    .section .text.probes, "ax"
    .arm
    .balign 4
    .global hwbp_store32
hwbp_store32:                   /* r0 = address, r1 = value */
    str     r1, [r0]
    bx      lr

    .global hwbp_load32
hwbp_load32:                    /* r0 = address; returns the word */
    ldr     r0, [r0]
    bx      lr

    .global hwbp_store8
hwbp_store8:                    /* r0 = address, r1 = byte */
    strb    r1, [r0]
    bx      lr

    .global hwbp_store32x3
hwbp_store32x3:                 /* three stores of value, value+1, value+2 */
    str     r1, [r0]
    add     r1, r1, #1
    str     r1, [r0]
    add     r1, r1, #1
    str     r1, [r0]
    bx      lr

    /* Never executed: instruction addresses for breakpoints that only
     * occupy slots. */
    .global hwbp_parking
hwbp_parking:
    .rept 32
    nop
    .endr
    bx      lr
"#
);

extern "C" {
    fn hwbp_store32(addr: *mut u32, value: u32);
    fn hwbp_load32(addr: *const u32) -> u32;
    fn hwbp_store8(addr: *mut u8, value: u8);
    fn hwbp_store32x3(addr: *mut u32, value: u32);
    fn hwbp_parking();
}

/// A 32-bit variable that the checks watch, accessed only through the probes.
#[repr(C, align(4))]
pub struct Word(UnsafeCell<u32>);

// SAFETY: the firmware runs on one CPU; every access is a single volatile
// load or store instruction.
unsafe impl Sync for Word {}

impl Word {
    /// A word holding `v`.
    pub const fn new(v: u32) -> Self {
        Word(UnsafeCell::new(v))
    }

    /// Its address.
    pub fn addr(&self) -> u64 {
        self.0.get() as usize as u64
    }

    /// Store with one `str` (at [`store32_ip`]).
    pub fn store(&self, v: u32) {
        // SAFETY: the pointer is valid for a 4-byte aligned store.
        unsafe { hwbp_store32(self.0.get(), v) }
    }

    /// Three consecutive stores `v`, `v + 1`, `v + 2` (at [`store32x3_ips`]).
    pub fn store3(&self, v: u32) {
        // SAFETY: as for `store`.
        unsafe { hwbp_store32x3(self.0.get(), v) }
    }

    /// Load with one `ldr` (at [`load32_ip`]).
    pub fn load(&self) -> u32 {
        // SAFETY: the pointer is valid for a 4-byte aligned load.
        unsafe { hwbp_load32(self.0.get()) }
    }
}

/// 64 bytes on a 64-byte boundary, for regions that straddle doublewords or
/// need aligned power-of-two blocks.
#[repr(C, align(64))]
pub struct Bytes64(UnsafeCell<[u8; 64]>);

// SAFETY: as for `Word`.
unsafe impl Sync for Bytes64 {}

impl Bytes64 {
    /// All zero.
    pub const fn new() -> Self {
        Bytes64(UnsafeCell::new([0; 64]))
    }

    /// Address of byte 0.
    pub fn addr(&self) -> u64 {
        self.0.get() as usize as u64
    }

    /// Store one byte at offset `i` (masked to the buffer) with one `strb`.
    pub fn store(&self, i: usize, v: u8) {
        let p = self.0.get().cast::<u8>().wrapping_add(i & 63);
        // SAFETY: `p` points into the buffer.
        unsafe { hwbp_store8(p, v) }
    }

    /// Read byte `i` (not through a probe: only while nothing watches it).
    pub fn get(&self, i: usize) -> u8 {
        let p = self.0.get().cast::<u8>().wrapping_add(i & 63);
        // SAFETY: `p` points into the buffer.
        unsafe { core::ptr::read_volatile(p) }
    }
}

/// Address of the `str` in [`Word::store`].
pub fn store32_ip() -> u64 {
    hwbp_store32 as *const () as usize as u64
}

/// Address of the `ldr` in [`Word::load`].
pub fn load32_ip() -> u64 {
    hwbp_load32 as *const () as usize as u64
}

/// Address of the `strb` in [`Bytes64::store`].
pub fn store8_ip() -> u64 {
    hwbp_store8 as *const () as usize as u64
}

/// Addresses of the three `str` of [`Word::store3`].
pub fn store32x3_ips() -> [u64; 3] {
    let base = hwbp_store32x3 as *const () as usize as u64;
    [base, base + 8, base + 16]
}

/// Address of the `n`-th instruction of a never-executed block (n < 32).
pub fn parking(n: u64) -> u64 {
    hwbp_parking as *const () as usize as u64 + 4 * (n % 32)
}

/// A function whose first instruction carries instruction breakpoints.
#[inline(never)]
pub extern "C" fn traced(x: u32) -> u32 {
    core::hint::black_box(x).wrapping_mul(3).wrapping_add(1)
}

/// Address of [`traced`].
pub fn traced_addr() -> u64 {
    traced as *const () as usize as u64
}
