//! The board's debug hardware, all through hwbp-arm64's AArch32 backend.

use hwbp_arm64::{Aarch32Backend, Aarch32Exception, AbortKind, Dbgdidr, StepMethod};

use crate::boot::{Frame, Vector};

/// One CPU; the firmware steps over hits itself (see `stepover`), because QEMU
/// 7.2 does not implement the mismatch breakpoints of `StepMethod::Mismatch`.
pub type Backend = Aarch32Backend;

/// The backend, for the `Manager` static (a `const fn` so it can be built in a
/// `static` initializer).
pub const fn backend() -> Backend {
    // SAFETY: the firmware runs in SVC mode (PL1) and nothing but this
    // backend touches the cp14 debug registers.
    unsafe { Aarch32Backend::aarch32(StepMethod::Manual) }
}

/// `DBGDIDR`, read through the backend's register owner.
pub fn dbgdidr() -> Dbgdidr {
    crate::HWBP.arch().regs().dbgdidr()
}

/// The raw state of a prefetch or data abort for the core.
pub fn exception(frame: &Frame, v: Vector) -> Aarch32Exception {
    let (kind, fsr, far) = if v == Vector::DataAbort {
        (AbortKind::Data, dfsr(), dfar())
    } else {
        (AbortKind::Prefetch, ifsr(), 0)
    };
    Aarch32Exception {
        kind,
        fsr,
        far,
        dscr: dbgdscr(),
        pc: frame.pc,
        // DFSR.WnR is UNKNOWN for watchpoint debug events (and QEMU 7.2
        // leaves it clear): the direction comes from the aborted instruction.
        write: (v == Vector::DataAbort).then(|| crate::is_store(frame)),
        // SPSR_abt.T: the aborted instruction is T32 (the mismatch step
        // needs it; this firmware runs A32 and steps manually).
        thumb: frame.spsr & (1 << 5) != 0,
    }
}

/// `DBGDSCRext` (for `MOE`), read through the backend's register owner.
fn dbgdscr() -> u32 {
    crate::HWBP.arch().regs().dbgdscr().0
}

// The fault status and address registers are cp15 (VMSA) registers, not
// debug registers: reading them is the abort handler's job.

fn dfsr() -> u32 {
    let v: u32;
    // SAFETY: reading DFSR at PL1 has no side effect.
    unsafe { core::arch::asm!("mrc p15, 0, {}, c5, c0, 0", out(reg) v, options(nomem, nostack)) };
    v
}

fn ifsr() -> u32 {
    let v: u32;
    // SAFETY: reading IFSR at PL1 has no side effect.
    unsafe { core::arch::asm!("mrc p15, 0, {}, c5, c0, 1", out(reg) v, options(nomem, nostack)) };
    v
}

fn dfar() -> u32 {
    let v: u32;
    // SAFETY: reading DFAR at PL1 has no side effect.
    unsafe { core::arch::asm!("mrc p15, 0, {}, c6, c0, 0", out(reg) v, options(nomem, nostack)) };
    v
}
