//! The program both gdb firmwares run under GDB (included with `#[path]`).
//! `cargo xtask gdb` drives GDB through it phase by phase; the variables and
//! the function are `#[no_mangle]` so GDB finds them by name.

use core::ptr::addr_of_mut;

/// Written once per phase that watches it (`watch`, then `stepi`).
#[no_mangle]
pub static mut COUNTER: u64 = 0;
/// Read twice (`rwatch`, then `awatch`).
#[no_mangle]
pub static mut SHARED: u64 = 41;
/// Five words, written in order: one watchpoint each is one more than the
/// hardware has.
#[no_mangle]
pub static mut SPARE: [u64; 5] = [0; 5];

/// Where `hbreak` stops.
#[no_mangle]
#[inline(never)]
pub extern "C" fn target_function(x: u64) -> u64 {
    (x ^ 0x5a) | 1
}

/// A store of `v` to `*p`, followed by two no-ops, so that a `stepi` from
/// the instruction after the store advances by exactly one instruction.
#[inline(never)]
fn store(p: *mut u64, v: u64) {
    // SAFETY: `p` points at one of the statics above; the store is the
    // only memory access.
    unsafe {
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!("str {v}, [{p}]", "nop", "nop", p = in(reg) p, v = in(reg) v, options(nostack));
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!("mov qword ptr [{p}], {v}", "nop", "nop", p = in(reg) p, v = in(reg) v, options(nostack));
    }
}

/// A load from `*p`.
#[inline(never)]
fn load(p: *const u64) -> u64 {
    // SAFETY: `p` points at one of the statics above.
    unsafe { core::ptr::read_volatile(p) }
}

/// Run the phases; the exit code GDB sees.
pub fn run() -> u8 {
    // Phase 1: a write (watch, then stepi).
    store(addr_of_mut!(COUNTER), 1);
    // Phases 2 and 3: two reads (rwatch, then awatch).
    let a = load(addr_of_mut!(SHARED));
    let b = load(addr_of_mut!(SHARED));
    // Phase 4: the function (hbreak). `black_box` keeps the call here: it
    // has no side effect, so it could otherwise move past the stores below.
    let c = core::hint::black_box(target_function(a + b));
    // Phase 5: five writes (five watchpoints: one refused, then four).
    let spare = addr_of_mut!(SPARE).cast::<u64>();
    for i in 0..5u64 {
        // SAFETY: element `i` of SPARE (five words).
        store(unsafe { spare.add(i as usize) }, i + 1);
    }
    // Phase 6: nothing watched any more.
    store(addr_of_mut!(COUNTER), c);
    0
}
