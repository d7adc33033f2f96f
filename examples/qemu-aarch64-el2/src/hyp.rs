//! The hypervisor's EL2 boot, vectors and world switch. The guest's EL1 boot
//! code and vectors are `../qemu-aarch64`'s (`boot.rs`, shared as is).
//!
//! QEMU's `virt` board with `virtualization=on` enters `_start_el2` at EL2
//! with the MMU off; the hypervisor keeps it off (its accesses are Device
//! memory, aligned: the target has `strict-align`).
//!
//! With VHE (`HCR_EL2.E2H = 1`) the world switch is the same: it uses only
//! the `_EL2` names (`ELR_EL2`, `SPSR_EL2`), which reach the EL2 registers
//! in both modes, and never an EL1 name (those would be redirected to the
//! `_EL2` registers too). The guest's EL1 system registers stay in the
//! hardware across its exits: the host never writes them (it would need
//! the `_EL12` names).

use crate::boot::Frame;

/// `HCR_EL2.RW`: EL1 is AArch64.
pub const HCR_RW: u64 = 1 << 31;
/// `SPSR_EL2` for the guest's entry: EL1h, DAIF masked.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// The host's callee-saved state while the guest runs: x19-x30, sp,
/// d8-d15.
#[no_mangle]
static mut HOST_CTX: [u64; 21] = [0; 21];

extern "C" {
    /// Run the guest from `frame` (copied onto the EL2 stack and loaded);
    /// returns when [`crate::hyp_lower`] asks for an exit, the guest's state
    /// then being in the frame it was handed.
    pub fn enter_guest(frame: *const Frame);
}

board_kit::frame_global_asm!(
    r#"
    .section .text.el2, "ax"
    .global _start_el2
_start_el2:
    ldr     x0, =__stack0_top
    mov     sp, x0
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x0, #0x33ff             // CPTR_EL2: RES1 bits, TFP = 0 (FP/SIMD at EL2)
    msr     cptr_el2, x0
    ldr     x0, =__vectors_el2
    msr     vbar_el2, x0
    isb
    bl      hyp_main
3:  wfe
    b       3b

    .section .text.vectors_el2, "ax"
    .balign 2048
__vectors_el2:
    FRAME_VECTORS __el2_entry

// kind 4: the hypervisor's own exception; 8: the guest's (lower EL,
// AArch64, synchronous). Anything else is reported by hyp_current.
__el2_entry:
    cmp     x0, #8
    b.eq    __el2_lower
    SAVE_FRAME el2
    mov     x1, sp                  // x0: the vector's kind
    bl      hyp_current
    LOAD_FRAME el2
    add     sp, sp, #{frame}
    eret

__el2_lower:
    SAVE_FRAME el2
    mov     x0, sp
    bl      hyp_lower
    cbnz    x0, __el2_exit
    LOAD_FRAME el2
    add     sp, sp, #{frame}
    eret

// Back to enter_guest's caller (hyp_lower has saved the guest's frame).
__el2_exit:
    ldr     x9, =HOST_CTX
    ldp     x19, x20, [x9, #0]
    ldp     x21, x22, [x9, #16]
    ldp     x23, x24, [x9, #32]
    ldp     x25, x26, [x9, #48]
    ldp     x27, x28, [x9, #64]
    ldp     x29, x30, [x9, #80]
    ldr     x10, [x9, #96]
    mov     sp, x10
    ldp     d8, d9, [x9, #104]
    ldp     d10, d11, [x9, #120]
    ldp     d12, d13, [x9, #136]
    ldp     d14, d15, [x9, #152]
    msr     daifclr, #8             // the hypervisor's own debug exceptions
    ret

    .global enter_guest
enter_guest:
    ldr     x9, =HOST_CTX
    stp     x19, x20, [x9, #0]
    stp     x21, x22, [x9, #16]
    stp     x23, x24, [x9, #32]
    stp     x25, x26, [x9, #48]
    stp     x27, x28, [x9, #64]
    stp     x29, x30, [x9, #80]
    mov     x10, sp
    str     x10, [x9, #96]
    stp     d8, d9, [x9, #104]
    stp     d10, d11, [x9, #120]
    stp     d12, d13, [x9, #136]
    stp     d14, d15, [x9, #152]
    // Copy the guest's frame onto the stack, load it, leave SP_EL2 above it.
    sub     sp, sp, #{frame}
    mov     x2, #0
4:  add     x6, x0, x2
    ldp     x3, x4, [x6]
    add     x5, sp, x2
    stp     x3, x4, [x5]
    add     x2, x2, #16
    cmp     x2, #{frame}
    b.lo    4b
    LOAD_FRAME el2
    add     sp, sp, #{frame}
    eret
"#
);
