//! The glue to hwbp-arm64's real backend: which type, how the trap handler's
//! registers become its exception type, and discovery (step 1).

use hwbp_arm64::{Aarch64Backend, Aarch64Exception, DebugVer, IdAa64Dfr0};
use hwbp_core::SlotCounts;

use board_kit::fatal;

use crate::{println, HWBP};

/// The real AArch64 backend (MRS/MSR on the `DBG*_EL1` registers), for the
/// board's 2 CPUs.
pub type Backend = Aarch64Backend;

/// The backend's view of a synchronous debug exception.
pub fn exception(esr: u64, far: u64, elr: u64) -> Aarch64Exception {
    Aarch64Exception { esr, far, elr }
}

fn id_aa64dfr0() -> IdAa64Dfr0 {
    HWBP.arch().regs().id_aa64dfr0()
}

/// Step 1: discover the slot counts through the backend (before
/// `Manager::init`, which reads them), print them and the debug architecture and
/// check them against ID_AA64DFR0_EL1; returns the number of watchpoint
/// registers.
///
/// The per-CPU enable sequence (OS lock, MDSCR_EL1.MDE|KDE, PSTATE.D cleared,
/// every slot cleared) is the backend's `Arch::init_cpu`, which
/// `Manager::cpu_online` runs on each CPU.
pub fn discover() -> usize {
    // `init` runs the backend's discovery (ID_AA64DFR0_EL1) on this, the
    // boot CPU, and sizes the manager from it.
    if let Err(e) = HWBP.init(2) {
        fatal!("init(2) failed: {:?}", e);
    }
    let counts = match HWBP.slot_counts() {
        Ok(counts) => counts,
        Err(e) => fatal!("hwbp-arm64 discovery failed: {:?}", e),
    };
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
        _ => fatal!("unusable debug hardware: {:?} {:?}", ver, counts),
    }
}
