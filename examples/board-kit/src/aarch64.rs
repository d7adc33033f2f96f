//! What the AArch64 boards share: IRQ masking at EL1 for the kit's critical
//! section, the CPU number, leaving QEMU and writing its console through
//! semihosting, and the exception [`Frame`] with the assembly that saves and
//! restores it at EL1 or EL2 ([`frame_global_asm!`](crate::frame_global_asm)).

use core::mem::{offset_of, size_of};

const DAIF_I: u64 = 1 << 7;
const DAIF_F: u64 = 1 << 6;

/// Mask IRQ and FIQ on the calling CPU and return the previous DAIF (bits
/// 6-9; bit 63 clear). The debug mask (`PSTATE.D`) is not touched.
///
/// # Safety
///
/// Called at EL1, paired with [`restore_irqs`] (a [`Board::mask_irqs`](crate::Board::mask_irqs)).
pub unsafe fn mask_irqs() -> u64 {
    let daif: u64;
    // SAFETY: reading DAIF and masking IRQ/FIQ at EL1 has no other effect.
    unsafe {
        core::arch::asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nomem, nostack));
    }
    daif
}

/// Unmask IRQ and FIQ only where they were unmasked in `previous` (a
/// [`mask_irqs`] result); the debug mask is left as it is now, since the
/// hwbp-arm64 enable sequence clears it inside a critical section.
///
/// # Safety
///
/// `previous` comes from the matching [`mask_irqs`] on this CPU.
pub unsafe fn restore_irqs(previous: u64) {
    if previous & DAIF_I == 0 {
        // SAFETY: unmasking IRQs at EL1 restores the state of acquire.
        unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack)) };
    }
    if previous & DAIF_F == 0 {
        // SAFETY: unmasking FIQs at EL1 restores the state of acquire.
        unsafe { core::arch::asm!("msr daifclr, #1", options(nomem, nostack)) };
    }
}

/// This CPU's number: `MPIDR_EL1.Aff0`.
pub fn cpu_id() -> u16 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 at EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u16
}

/// A semihosting call (`hlt #0xf000`): operation `op`, parameter `arg`.
fn semihost(op: u64, arg: u64) {
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting call; QEMU runs with
    // -semihosting and reads only what `arg` points at for `op`. Without
    // -semihosting the HLT is UNDEFINED and the board's vectors report it.
    unsafe { core::arch::asm!("hlt #0xf000", inout("x0") op => _, in("x1") arg, options(nostack)) };
}

/// Leave QEMU through semihosting SYS_EXIT (ADP_Stopped_ApplicationExit),
/// with exit code 0 or 1.
pub fn semihosting_exit(success: bool) -> ! {
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, u64::from(!success)];
    semihost(SYS_EXIT, block.as_ptr() as u64);
    // Without -semihosting this is not reached; if it is, park the CPU.
    loop {
        core::hint::spin_loop();
    }
}

/// Write one byte to QEMU's semihosting console (SYS_WRITEC), which QEMU
/// prints on its standard output.
pub fn semihosting_putc(byte: u8) {
    const SYS_WRITEC: u64 = 0x03;
    let c = byte;
    semihost(SYS_WRITEC, &c as *const u8 as u64);
}

/// Spin until `done()` holds, or stop the run after 10 seconds (of the
/// generic timer's counter) naming `what`: a firmware that hangs would leave
/// QEMU running, so every cross-CPU or interrupt wait is bounded.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let (freq, start): (u64, u64);
    // SAFETY: reading CNTFRQ_EL0 and CNTVCT_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) start, options(nomem, nostack));
    }
    while !done() {
        let now: u64;
        // SAFETY: as above.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) now, options(nomem, nostack))
        };
        if now.wrapping_sub(start) > 10 * freq.max(1) {
            crate::fatal!("timed out after 10 s waiting for {}", what);
        }
        core::hint::spin_loop();
    }
}

/// The state of an interrupted context, as the `SAVE_FRAME` assembly macro
/// of [`frame_global_asm!`](crate::frame_global_asm) stores it on the stack
/// (at EL1 in `qemu-aarch64`, `gdb-aarch64` and the EL2 board's guest, at EL2
/// in its hypervisor) and `LOAD_FRAME` loads it back.
#[repr(C)]
pub struct Frame {
    /// x0–x30.
    pub x: [u64; 31],
    /// ELR_ELx: where `eret` returns.
    pub elr: u64,
    /// SPSR_ELx: the PSTATE `eret` restores.
    pub spsr: u64,
    /// Padding to keep the SIMD area 16-byte aligned.
    pub _pad: u64,
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
    /// q0–q31.
    pub q: [u128; 32],
}

/// Size of [`Frame`]: what `FRAME_VECTORS` takes off SP (`{frame}` in
/// [`frame_global_asm!`](crate::frame_global_asm)).
pub const FRAME_SIZE: usize = size_of::<Frame>();

/// The offsets the assembly of [`frame_global_asm!`](crate::frame_global_asm)
/// stores at, each taken from [`Frame`] itself.
pub mod frame_offset {
    use super::{offset_of, Frame};

    /// `x30`, stored with `elr` in one `stp`.
    pub const X30: usize = offset_of!(Frame, x) + 30 * 8;
    /// `spsr`.
    pub const SPSR: usize = offset_of!(Frame, spsr);
    /// `fpcr`, stored with `fpsr` in one `stp`.
    pub const FPCR: usize = offset_of!(Frame, fpcr);
    /// `q0`.
    pub const Q: usize = offset_of!(Frame, q);
}

// What the assembly assumes beyond the offsets it is given: x0-x29 in pairs
// at [sp, #16 * n] (FRAME_VECTORS stores x0/x1 at [sp]), the pairs stored by
// one `stp` adjacent, q0-q31 in 16-byte pairs from `frame_offset::Q`, and SP
// (and the guest frame copy of `qemu-aarch64-el2`, 16 bytes a step) kept
// 16-byte aligned.
const _: () = {
    assert!(offset_of!(Frame, x) == 0);
    assert!(offset_of!(Frame, elr) == frame_offset::X30 + 8);
    assert!(offset_of!(Frame, fpsr) == frame_offset::FPCR + 8);
    assert!(frame_offset::Q.is_multiple_of(16));
    assert!(FRAME_SIZE == frame_offset::Q + 32 * 16);
    assert!(FRAME_SIZE.is_multiple_of(16));
};

/// `global_asm!` with the save and restore of a [`Frame`]: the template
/// (string literals, concatenated) may use
///
/// * `FRAME_VECTORS entry`: the 16 entries of a vector table (the template
///   aligns it to 2048 and labels it); each takes a [`Frame`] off SP, stores
///   x0/x1 in it and branches to `entry` with its number (0-15) in x0;
/// * `SAVE_FRAME el1` / `SAVE_FRAME el2`: at `entry`, store the rest of the
///   interrupted context into the [`Frame`] at SP; takes ELR and SPSR of
///   that exception level; clobbers x1 and x2, keeps x0;
/// * `LOAD_FRAME el1` / `LOAD_FRAME el2`: load every register of the
///   [`Frame`] at SP back, ELR and SPSR of that exception level included (SP
///   is unchanged);
/// * `{frame}`: [`FRAME_SIZE`].
///
/// The assembly macros (those three and the helpers `FRAME_X_PAIRS` and
/// `FRAME_Q_PAIRS`) are removed again at the end of the template, so the
/// firmware may use this more than once. The template has no other operands
/// (a literal `{` is `{{`).
#[macro_export]
macro_rules! frame_global_asm {
    ($($template:expr),+ $(,)?) => {
        ::core::arch::global_asm!(
            concat!(
                r#"
// The 16 entries of a vector table, which the caller aligns (2048) and
// labels: each takes a Frame off SP, stores x0/x1 in it and branches to
// `entry` with the entry's number in x0.
.macro FRAME_VECTORS entry
    .irp kind, 0,1,2,3, 4,5,6,7, 8,9,10,11, 12,13,14,15
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       \entry
    .endr
.endm

// x2-x29 (x0/x1 are FRAME_VECTORS') and q0-q31 (through x1), with `stp`
// or `ldp`: one list of registers and offsets for saving and loading.
.macro FRAME_X_PAIRS op
    \op     x2, x3, [sp, #16]
    \op     x4, x5, [sp, #32]
    \op     x6, x7, [sp, #48]
    \op     x8, x9, [sp, #64]
    \op     x10, x11, [sp, #80]
    \op     x12, x13, [sp, #96]
    \op     x14, x15, [sp, #112]
    \op     x16, x17, [sp, #128]
    \op     x18, x19, [sp, #144]
    \op     x20, x21, [sp, #160]
    \op     x22, x23, [sp, #176]
    \op     x24, x25, [sp, #192]
    \op     x26, x27, [sp, #208]
    \op     x28, x29, [sp, #224]
.endm

.macro FRAME_Q_PAIRS op
    add     x1, sp, #{frame_q}
    \op     q0, q1, [x1, #0]
    \op     q2, q3, [x1, #32]
    \op     q4, q5, [x1, #64]
    \op     q6, q7, [x1, #96]
    \op     q8, q9, [x1, #128]
    \op     q10, q11, [x1, #160]
    \op     q12, q13, [x1, #192]
    \op     q14, q15, [x1, #224]
    \op     q16, q17, [x1, #256]
    \op     q18, q19, [x1, #288]
    \op     q20, q21, [x1, #320]
    \op     q22, q23, [x1, #352]
    \op     q24, q25, [x1, #384]
    \op     q26, q27, [x1, #416]
    \op     q28, q29, [x1, #448]
    \op     q30, q31, [x1, #480]
.endm

.macro SAVE_FRAME el
    FRAME_X_PAIRS stp
    mrs     x1, elr_\el
    stp     x30, x1, [sp, #{frame_x30}]
    mrs     x1, spsr_\el
    str     x1, [sp, #{frame_spsr}]
    mrs     x1, fpcr
    mrs     x2, fpsr
    stp     x1, x2, [sp, #{frame_fpcr}]
    FRAME_Q_PAIRS stp
.endm

.macro LOAD_FRAME el
    FRAME_Q_PAIRS ldp
    ldp     x1, x2, [sp, #{frame_fpcr}]
    msr     fpcr, x1
    msr     fpsr, x2
    ldp     x30, x1, [sp, #{frame_x30}]
    msr     elr_\el, x1
    ldr     x1, [sp, #{frame_spsr}]
    msr     spsr_\el, x1
    FRAME_X_PAIRS ldp
    ldp     x0, x1, [sp, #0]
.endm
"#,
                $($template,)+
                "\n.purgem SAVE_FRAME\n.purgem LOAD_FRAME\n.purgem FRAME_X_PAIRS\n.purgem FRAME_Q_PAIRS\n.purgem FRAME_VECTORS\n",
            ),
            frame = const $crate::aarch64::FRAME_SIZE,
            frame_x30 = const $crate::aarch64::frame_offset::X30,
            frame_spsr = const $crate::aarch64::frame_offset::SPSR,
            frame_fpcr = const $crate::aarch64::frame_offset::FPCR,
            frame_q = const $crate::aarch64::frame_offset::Q,
        );
    };
}
