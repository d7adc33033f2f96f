//! The breakpoint manager over the real x86 debug registers, the #DB entry
//! into it.

use core::sync::atomic::{AtomicU64, Ordering};

use hwbp_core::{Action, CpuSet, Manager};
use hwbp_x86::{Cpu, X86Backend, X86Exception};

use board_kit::fatal;

use crate::checks::Recording;
use crate::idt::{Frame, RFLAGS_RF};

/// The one manager: one CPU, up to 16 breakpoints, 2 task slots (the
/// smallest the table allows; this firmware has no tasks). hwbp-x86's
/// `X86Backend<Cpu>` is the only code that touches DR0–DR7: this firmware
/// runs at CPL 0 with DR7.GD clear and has no other debug-register user.
// SAFETY: see above; the token is created once, here.
pub static HWBP: Manager<X86Backend<Cpu>, Recording, 1, 16, 2> =
    Manager::new(unsafe { X86Backend::new() }, Recording);

/// The only CPU.
pub const CPU: u16 = 0;

/// #DB exceptions taken since the last [`take_debug_exceptions`].
static DEBUG_EXCEPTIONS: AtomicU64 = AtomicU64::new(0);

/// A breakpoint that re-fires without making progress would loop forever:
/// stop with a failure well before the board timeout instead.
const STORM: u64 = 10_000;

/// Number of #DB exceptions since the previous call.
pub fn take_debug_exceptions() -> u64 {
    DEBUG_EXCEPTIONS.swap(0, Ordering::SeqCst)
}

/// Called by the vector-1 stub with the saved state: hand DR6 and the saved
/// RIP to the manager, then do what it says to continue.
pub fn on_debug_exception(frame: &mut Frame) {
    if DEBUG_EXCEPTIONS.fetch_add(1, Ordering::SeqCst) >= STORM {
        fatal!(
            "debug exception storm at rip {:#x} (RF not honoured?)",
            frame.rip
        );
    }
    // DR6 first, before anything else can raise another #DB.
    let dr6 = HWBP.arch().read_dr6(CPU);
    let raw = X86Exception { dr6, ip: frame.rip };
    let resume = HWBP.handle_exception(CPU, &raw);
    if !resume.is_ours() {
        fatal!(
            "#DB that is not a breakpoint's: dr6 {dr6:#x} at rip {:#x}",
            frame.rip
        );
    }
    if resume.pass_on {
        fatal!(
            "data hit merged with a step or task switch this firmware never asked for: dr6 {dr6:#x}"
        );
    }
    match resume.action {
        Action::Return => {}
        Action::SetResumeFlag => frame.rflags |= RFLAGS_RF,
        Action::SingleStep => fatal!("x86 backend asked for a single step (dr6 {dr6:#x})"),
    }
}

/// Run the manager's resync on every CPU it names (only CPU 0 exists here,
/// and this code runs on it).
pub fn sync(set: CpuSet) {
    for cpu in set.iter() {
        if let Err(e) = HWBP.sync(cpu) {
            fatal!("sync CPU {cpu}: {e}");
        }
    }
}
