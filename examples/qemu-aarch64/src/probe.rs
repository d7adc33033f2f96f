//! Memory accesses and calls whose instruction address is known, so a sample's
//! `ip` can be checked exactly. Every access is a single volatile load or
//! store written in assembly.

use core::arch::asm;

/// Store `v` to `*p` with one `str`; returns the address of that `str`.
#[inline(never)]
pub fn store64(p: *mut u64, v: u64) -> u64 {
    let pc: u64;
    // SAFETY: callers pass a pointer to a live, aligned `u64` static that only
    // this firmware accesses (through these helpers or volatile accesses).
    unsafe {
        asm!(
            "adr {pc}, 2f",
            "2: str {v}, [{p}]",
            pc = out(reg) pc, v = in(reg) v, p = in(reg) p,
            options(nostack, preserves_flags)
        );
    }
    pc
}

/// Store the byte `v` to `*p` with one `strb`; returns the address of that `strb`.
#[inline(never)]
pub fn store8(p: *mut u8, v: u8) -> u64 {
    let pc: u64;
    // SAFETY: as for `store64`, for a byte of a live static.
    unsafe {
        asm!(
            "adr {pc}, 2f",
            "2: strb {v:w}, [{p}]",
            pc = out(reg) pc, v = in(reg) u32::from(v), p = in(reg) p,
            options(nostack, preserves_flags)
        );
    }
    pc
}

/// Load `*p` with one `ldr`; returns (value, address of that `ldr`).
#[inline(never)]
pub fn load64(p: *const u64) -> (u64, u64) {
    let (pc, v): (u64, u64);
    // SAFETY: as for `store64`; a load has no side effect.
    unsafe {
        asm!(
            "adr {pc}, 2f",
            "2: ldr {v}, [{p}]",
            pc = out(reg) pc, v = out(reg) v, p = in(reg) p,
            options(nostack, preserves_flags, readonly)
        );
    }
    (v, pc)
}

/// Volatile read of a `u64` static.
pub fn peek(p: *const u64) -> u64 {
    // SAFETY: callers pass a pointer to a live, aligned `u64` static.
    unsafe { core::ptr::read_volatile(p) }
}

/// Functions to put instruction breakpoints on. Each returns a different
/// constant so that no two of them can be merged into one address.
#[inline(never)]
pub extern "C" fn counted(x: u64) -> u64 {
    core::hint::black_box(x).wrapping_mul(3).wrapping_add(1)
}

/// See [`counted`].
#[inline(never)]
pub extern "C" fn sampled(x: u64) -> u64 {
    core::hint::black_box(x).wrapping_mul(5).wrapping_add(2)
}

/// See [`counted`]: the function both CPUs call under the all-CPU breakpoint.
#[inline(never)]
pub extern "C" fn shared(x: u64) -> u64 {
    core::hint::black_box(x).wrapping_mul(7).wrapping_add(3)
}

/// The address of one of the functions above.
pub fn addr_of(f: extern "C" fn(u64) -> u64) -> u64 {
    f as *const () as u64
}
