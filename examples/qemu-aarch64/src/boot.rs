//! Boot code: EL1 entry for both CPUs, identity-mapped MMU, the EL1 vector
//! table and the register save/restore around the Rust exception handlers.
//!
//! QEMU's `virt` board with `-kernel` and no EL3 firmware enters the ELF entry
//! point at EL1 on CPU 0 with the MMU off; CPU 1 stays off until PSCI CPU_ON.

/// One level-1 translation table: with a 4 KiB granule and T0SZ = 32 (4 GiB of
/// virtual address space) the walk starts at level 1, one 1 GiB block each.
#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

/// Block descriptor bits.
const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const ATTR_DEVICE: u64 = 0 << 2; // MAIR index 0: Device-nGnRnE
const ATTR_NORMAL: u64 = 1 << 2; // MAIR index 1: Normal write-back
const PXN_UXN: u64 = (1 << 53) | (1 << 54);

/// 0–1 GiB: devices (PL011 at 0x0900_0000), never executable.
/// 1–2 GiB: RAM, normal write-back cacheable, shared by both CPUs.
#[no_mangle]
pub static BOOT_PAGE_TABLE: Table = {
    let mut t = [0u64; 512];
    t[0] = BLOCK | AF | ATTR_DEVICE | PXN_UXN;
    t[1] = 0x4000_0000 | BLOCK | AF | INNER_SHAREABLE | ATTR_NORMAL;
    Table(t)
};

/// The saved state of the interrupted context, as laid out by `__exc_entry`
/// (the kit's `SAVE_FRAME el1`).
pub use board_kit::aarch64::Frame;

board_kit::frame_global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    // CPU 0 only: QEMU holds CPU 1 powered off until PSCI CPU_ON.
    ldr     x0, =__stack0_top
    mov     sp, x0
    // Zero .bss.
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  bl      __cpu_setup
    bl      primary_main
    b       __hang

    .global _start_secondary
_start_secondary:
    ldr     x1, =__stack1_top
    mov     sp, x1
    bl      __cpu_setup
    bl      secondary_main
    b       __hang

__hang:
    wfe
    b       __hang

// Per-CPU setup, both CPUs: FP/SIMD on (Rust uses NEON), vectors, MMU and
// caches with the identity map. Leaves PSTATE.D set: the debug exception mask
// is cleared by the hwbp-arm64 backend's enable sequence.
__cpu_setup:
    mrs     x0, cpacr_el1
    orr     x0, x0, #(3 << 20)          // FPEN: no FP/SIMD traps at EL1/EL0
    msr     cpacr_el1, x0
    ldr     x0, =__vectors
    msr     vbar_el1, x0
    // MAIR: attr0 Device-nGnRnE, attr1 Normal inner/outer write-back RW-allocate.
    mov     x0, #0xff00
    msr     mair_el1, x0
    // TCR: T0SZ=32, IRGN0/ORGN0 write-back, SH0 inner, TG0 4K, EPD1 (no TTBR1
    // walks), IPS 40-bit.
    ldr     x0, =((32 << 0) | (1 << 8) | (1 << 10) | (3 << 12) | (0 << 14) | (1 << 23) | (2 << 32))
    msr     tcr_el1, x0
    ldr     x0, =BOOT_PAGE_TABLE
    msr     ttbr0_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    mrs     x0, sctlr_el1
    orr     x0, x0, #(1 << 0)           // M: MMU on
    orr     x0, x0, #(1 << 2)           // C: data cache
    orr     x0, x0, #(1 << 12)          // I: instruction cache
    bic     x0, x0, #(1 << 1)           // A: no alignment faults
    msr     sctlr_el1, x0
    isb
    ret

// The EL1 vector table. Only "current EL with SP_ELx, synchronous" is
// expected (debug exceptions); everything else is reported and fails.
    .section .text.vectors, "ax"
    .balign 2048
__vectors:
    FRAME_VECTORS __exc_entry

// Save everything the Rust handler may clobber, call it with (kind, frame),
// restore and return. x0/x1 are already saved (by FRAME_VECTORS).
__exc_entry:
    SAVE_FRAME el1
    mov     x1, sp
    bl      rust_exception
    LOAD_FRAME el1
    add     sp, sp, #{frame}
    eret
"#
);
