//! Entry, mode stacks, BSS and the exception vector table.
//!
//! QEMU enters an ELF given to `-kernel` at its entry point in SVC mode, ARM
//! state, MMU and caches off, IRQ/FIQ masked. The virt board without
//! `secure=on` / `virtualization=on` has neither EL3 nor EL2, so SVC is the
//! highest mode and may program the cp14 debug registers.
//!
//! Debug events in monitor debug-mode arrive as aborts: a breakpoint as a
//! prefetch abort, a watchpoint as a data abort. Both handlers save the
//! interrupted registers in a [`Frame`] on the ABT stack and call into Rust,
//! which may change the return address before the frame is restored.

use core::arch::global_asm;

/// The interrupted state of an abort, as pushed by the vector stubs.
///
/// `pc` is the address of the instruction that aborted (the stubs have already
/// taken the mode's LR offset off), and is where the stub returns to.
#[repr(C)]
#[derive(Debug)]
pub struct Frame {
    _pad: u32,
    /// r0–r12 of the interrupted code.
    pub r: [u32; 13],
    /// Return address: the aborting instruction.
    pub pc: u32,
    /// The interrupted CPSR.
    pub spsr: u32,
}

/// Which vector was taken.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vector {
    /// Undefined instruction.
    Undef = 1,
    /// Supervisor call (never used by the firmware: semihosting SVCs are
    /// intercepted by QEMU).
    Svc = 2,
    /// Prefetch abort: instruction breakpoints.
    PrefetchAbort = 3,
    /// Data abort: watchpoints.
    DataAbort = 4,
    /// IRQ or FIQ (both stay masked).
    Irq = 5,
}

global_asm!(
    r#"
    .section .text.boot, "ax"
    .arm
    .global _start
_start:
    cpsid   aif
    /* One stack per mode the firmware can be in. */
    cps     #0x17               /* ABT */
    ldr     sp, =__abt_stack_top
    cps     #0x1b               /* UND */
    ldr     sp, =__und_stack_top
    cps     #0x12               /* IRQ: never unmasked; reported as failure */
    ldr     sp, =__und_stack_top
    cps     #0x13               /* SVC */
    ldr     sp, =__svc_stack_top

    /* Zero .bss. */
    ldr     r0, =__bss_start
    ldr     r1, =__bss_end
    mov     r2, #0
1:  cmp     r0, r1
    strlo   r2, [r0], #4
    blo     1b

    /* Vectors at __vectors: SCTLR.V = 0 (low vectors, relocated by VBAR). */
    mrc     p15, 0, r0, c1, c0, 0
    bic     r0, r0, #(1 << 13)
    mcr     p15, 0, r0, c1, c0, 0
    ldr     r0, =__vectors
    mcr     p15, 0, r0, c12, c0, 0
    isb

    bl      firmware_main
2:  wfi
    b       2b

    .section .text.vectors, "ax"
    .arm
    .balign 32
    .global __vectors
__vectors:
    b       _start              /* reset */
    b       __undef_stub
    b       __svc_stub
    b       __pabt_stub
    b       __dabt_stub
    b       .                   /* unused */
    b       __irq_stub
    b       __irq_stub          /* FIQ */

/* Common save/restore: on entry lr holds the address to return to and r1 the
 * Vector number. Pushes lr + SPSR (srsdb), r0-r12 and a pad word so the
 * frame is 64 bytes and the stack stays 8-byte aligned for the AAPCS. */
.macro SAVE_AND_CALL mode, vector
    srsdb   sp!, #\mode
    push    {{r0-r12}}
    sub     sp, sp, #4
    mov     r0, sp
    mov     r1, #\vector
    bl      exception_entry
    add     sp, sp, #4
    pop     {{r0-r12}}
    rfeia   sp!
.endm

__pabt_stub:
    sub     lr, lr, #4          /* LR_abt = aborting instruction + 4 */
    SAVE_AND_CALL 0x17, 3

__dabt_stub:
    sub     lr, lr, #8          /* LR_abt = aborting instruction + 8 */
    SAVE_AND_CALL 0x17, 4

__undef_stub:
    sub     lr, lr, #4          /* ARM state: LR_und = instruction + 4 */
    SAVE_AND_CALL 0x1b, 1

__svc_stub:
    sub     lr, lr, #4
    SAVE_AND_CALL 0x13, 2

__irq_stub:
    sub     lr, lr, #4
    SAVE_AND_CALL 0x12, 5
"#
);
