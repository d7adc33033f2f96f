//! The code the checks watch: each access or breakpointed instruction is
//! one known instruction with a global label, so a sample's `ip` is
//! checked against an exact address. Built with the C extension: `sw`/`lw`
//! on `a0`/`a1` assemble to their compressed forms (`c.sw`, `c.lw`), which
//! the library decodes.

use core::arch::global_asm;

global_asm!(
    ".pushsection .text.probes, \"ax\"",
    ".balign 4",
    ".global probe_store32",
    ".global probe_store32_insn",
    "probe_store32:",
    "probe_store32_insn: sw a1, 0(a0)",
    "ret",
    ".global probe_load32",
    ".global probe_load32_insn",
    "probe_load32:",
    "probe_load32_insn: lw a0, 0(a0)",
    "ret",
    ".global probe_store8",
    ".global probe_store8_insn",
    "probe_store8:",
    "probe_store8_insn: sb a1, 0(a0)",
    "ret",
    ".global probe_amoadd",
    ".global probe_amoadd_insn",
    "probe_amoadd:",
    // The targets' A extension is on, but the assembler wants it named.
    ".option push",
    ".option arch, +a",
    "probe_amoadd_insn: amoadd.w a0, a1, (a0)",
    ".option pop",
    "ret",
    // traced(x) = 3x + 1
    ".global traced",
    "traced:",
    "slli a1, a0, 1",
    "add a0, a0, a1",
    "addi a0, a0, 1",
    "ret",
    // count_to(n): counts a1 up to n in a loop whose back edge is a taken
    // branch (n - 1 times), returns n.
    ".global count_to",
    ".global count_to_branch",
    "count_to:",
    "li a1, 0",
    "1: addi a1, a1, 1",
    "count_to_branch: bne a1, a0, 1b",
    "mv a0, a1",
    "ret",
    // Three more functions, only ever used as breakpoint addresses.
    ".global parking0",
    "parking0: ret",
    ".global parking1",
    "parking1: ret",
    ".global parking2",
    "parking2: ret",
    ".popsection",
);

extern "C" {
    fn probe_store32(addr: *mut u32, v: u32);
    fn probe_store32_insn();
    fn probe_load32(addr: *const u32) -> u32;
    fn probe_load32_insn();
    fn probe_store8(addr: *mut u8, v: u8);
    fn probe_store8_insn();
    fn probe_amoadd(addr: *mut u32, v: u32) -> u32;
    fn probe_amoadd_insn();
    fn traced(x: usize) -> usize;
    fn count_to(n: usize) -> usize;
    fn count_to_branch();
    fn parking0();
    fn parking1();
    fn parking2();
}

fn addr(f: unsafe extern "C" fn()) -> u64 {
    f as usize as u64
}

/// A word the checks watch, with stable address.
#[repr(C, align(8))]
pub struct Word(core::cell::UnsafeCell<u32>);

// SAFETY: one hart; every access is volatile through the probes.
unsafe impl Sync for Word {}

impl Word {
    /// A word holding `v`.
    pub const fn new(v: u32) -> Self {
        Word(core::cell::UnsafeCell::new(v))
    }
    /// Its address.
    pub fn addr(&self) -> u64 {
        self.0.get() as usize as u64
    }
    /// Store through `probe_store32` (one `c.sw`).
    pub fn store(&self, v: u32) {
        // SAFETY: a valid, aligned word of this static.
        unsafe { probe_store32(self.0.get(), v) }
    }
    /// Load through `probe_load32` (one `c.lw`).
    pub fn load(&self) -> u32 {
        // SAFETY: as above.
        unsafe { probe_load32(self.0.get()) }
    }
    /// Store byte `i` through `probe_store8` (one `sb`).
    pub fn store_byte(&self, i: usize, v: u8) {
        // SAFETY: i < 4 bytes of this static word.
        unsafe { probe_store8((self.0.get() as *mut u8).add(i & 3), v) }
    }
    /// `amoadd.w`; returns the old value.
    pub fn amoadd(&self, v: u32) -> u32 {
        // SAFETY: as above; aligned for the AMO.
        unsafe { probe_amoadd(self.0.get(), v) }
    }
    /// Read without a probe (for the trap handler and final checks).
    pub fn peek(&self) -> u32 {
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }
}

/// Address of the `sw` in `probe_store32`.
pub fn store32_ip() -> u64 {
    addr(probe_store32_insn)
}
/// Address of the `lw` in `probe_load32`.
pub fn load32_ip() -> u64 {
    addr(probe_load32_insn)
}
/// Address of the `sb` in `probe_store8`.
pub fn store8_ip() -> u64 {
    addr(probe_store8_insn)
}
/// Address of the `amoadd.w` in `probe_amoadd`.
pub fn amoadd_ip() -> u64 {
    addr(probe_amoadd_insn)
}
/// Address of `traced`.
pub fn traced_addr() -> u64 {
    traced as *const () as usize as u64
}
/// `traced(x)` = 3x + 1.
pub fn call_traced(x: usize) -> usize {
    // SAFETY: a leaf function of the probes, C ABI.
    unsafe { traced(x) }
}
/// Address of the loop's back-edge branch in `count_to`.
pub fn branch_addr() -> u64 {
    addr(count_to_branch)
}
/// `count_to(n)` = n, looping n times.
pub fn call_count_to(n: usize) -> usize {
    // SAFETY: a leaf function of the probes, C ABI.
    unsafe { count_to(n) }
}
/// Distinct function addresses for breakpoints that are never hit.
pub fn parking(i: usize) -> u64 {
    [addr(parking0), addr(parking1), addr(parking2)][i % 3]
}
