//! The glue to hwbp-arm64's real backend: which type, how the trap handler's
//! registers become its exception type, per-CPU bring-up, and discovery
//! (step 1).

use hwbp_arm64::{Aarch64, Aarch64Exception, DebugVer, IdAa64Dfr0};
use hwbp_core::SlotCounts;

use crate::{fail, println, HWBP};

/// The real AArch64 backend (MRS/MSR on the `DBG*_EL1` registers), for the
/// board's 2 CPUs.
pub type Backend = Aarch64<2>;

/// The backend. Constructing it asserts that this code runs at EL1 and is the
/// only owner of the debug registers.
// SAFETY: the firmware runs at EL1 (checked at boot before any use), nothing
// else on either CPU touches the debug registers, and install/decode are only
// called on the CPU they name (hwbp-core's contract, kept by cpu1.rs).
pub const BACKEND: Backend = unsafe { Aarch64::aarch64() };

/// The backend's view of a synchronous debug exception.
pub fn exception(esr: u64, far: u64, elr: u64) -> Aarch64Exception {
    Aarch64Exception { esr, far, elr }
}

/// Bring the calling CPU's debug hardware up through the backend: discovery
/// (all CPUs must agree), OS lock, MDSCR_EL1.MDE|KDE, PSTATE.D cleared, every
/// slot cleared. Returns the counts.
pub fn init_this_cpu(cpu: u16) -> SlotCounts {
    match HWBP.arch().init_cpu(cpu) {
        Ok(counts) => counts,
        Err(e) => fail!("hwbp-arm64 init_cpu({}) failed: {:?}", cpu, e),
    }
}

fn id_aa64dfr0() -> IdAa64Dfr0 {
    let v: u64;
    // SAFETY: reading the identification register ID_AA64DFR0_EL1 at EL1 has
    // no side effects (it is not a debug register; the backend reads it too).
    unsafe { core::arch::asm!("mrs {}, id_aa64dfr0_el1", out(reg) v, options(nomem, nostack)) };
    IdAa64Dfr0(v)
}

/// Step 1: bring CPU 0 up, print the slot counts and debug architecture and
/// check them against ID_AA64DFR0_EL1; returns the number of watchpoint
/// registers.
pub fn discover() -> usize {
    let counts = init_this_cpu(0);
    let id = id_aa64dfr0();
    let ver: Result<DebugVer, _> = id.debug_ver();
    println!(
        "ID_AA64DFR0_EL1 = {:#018x}: DebugVer {:#x} ({:?}), BRPs {}, WRPs {}, CTX_CMPs {}",
        id.0,
        id.debug_ver_field(),
        ver,
        id.brps(),
        id.wrps(),
        id.ctx_cmps()
    );
    println!("hwbp-arm64: {:?}", counts);
    match (ver, counts) {
        (Ok(_), SlotCounts::Separate { data, .. }) => {
            crate::checks::discovered(counts, id.brps(), id.wrps());
            usize::from(data)
        }
        _ => fail!("unusable debug hardware: {:?} {:?}", ver, counts),
    }
}
