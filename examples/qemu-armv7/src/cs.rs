//! A `critical-section` implementation for this single-CPU firmware: mask IRQ
//! and FIQ, restore them on release. Debug aborts are synchronous and are not
//! masked by CPSR.I/F, so a breakpoint inside a critical section still fires.

struct IrqMask;
critical_section::set_impl!(IrqMask);

const CPSR_I: u32 = 1 << 7;
const CPSR_F: u32 = 1 << 6;

// SAFETY: single CPU; acquire masks IRQ/FIQ and returns the previous CPSR,
// release restores the previous I/F state, so nesting is handled.
unsafe impl critical_section::Impl for IrqMask {
    unsafe fn acquire() -> u32 {
        let cpsr: u32;
        // SAFETY: reading CPSR and masking IRQ/FIQ in a privileged mode has no
        // other effect.
        unsafe {
            core::arch::asm!("mrs {}, cpsr", "cpsid if", out(reg) cpsr, options(nomem, nostack));
        }
        cpsr
    }

    unsafe fn release(token: u32) {
        if token & CPSR_I == 0 {
            // SAFETY: unmasking IRQ restores the state at acquire.
            unsafe { core::arch::asm!("cpsie i", options(nomem, nostack)) };
        }
        if token & CPSR_F == 0 {
            // SAFETY: unmasking FIQ restores the state at acquire.
            unsafe { core::arch::asm!("cpsie f", options(nomem, nostack)) };
        }
    }
}
