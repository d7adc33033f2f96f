//! CPU 1: started with PSCI CPU_ON, brings its debug hardware up through the
//! backend, announces itself to the manager (`cpu_online`) and then serves
//! requests from CPU 0 (in a kernel these would be IPIs).

use core::sync::atomic::{AtomicU32, Ordering};

use board_kit::fatal;

use crate::{println, probe, HWBP};

const OFF: u32 = 0;
const STARTING: u32 = 1;
const ONLINE: u32 = 2;

static STATE: AtomicU32 = AtomicU32::new(OFF);

const IDLE: u32 = 0;
const CALL_SHARED: u32 = 1;
const SYNC: u32 = 2;

static REQUEST: AtomicU32 = AtomicU32::new(IDLE);

/// Has CPU 0 started CPU 1 yet?
pub fn started() -> bool {
    STATE.load(Ordering::SeqCst) != OFF
}

/// Start CPU 1 through PSCI and wait until it is online in the manager.
pub fn start(conduit: crate::psci::Conduit) {
    extern "C" {
        fn _start_secondary();
    }
    STATE.store(STARTING, Ordering::SeqCst);
    let entry = _start_secondary as *const () as u64;
    let rc = crate::psci::cpu_on(conduit, 1, entry, 0);
    if rc != 0 {
        fatal!("PSCI CPU_ON(1, {:#x}) returned {}", entry, rc);
    }
    crate::wait_for("CPU 1 to come online", || {
        STATE.load(Ordering::SeqCst) == ONLINE
    });
}

fn request(what: u32) {
    REQUEST.store(what, Ordering::SeqCst);
    crate::wait_for("CPU 1 to serve a request", || {
        REQUEST.load(Ordering::SeqCst) == IDLE
    });
}

/// Have CPU 1 call `probe::shared`.
pub fn call_shared() {
    request(CALL_SHARED);
}

/// Have CPU 1 resync its debug registers with the manager.
pub fn sync() {
    request(SYNC);
}

/// CPU 1's Rust entry (from `_start_secondary`).
#[no_mangle]
extern "C" fn secondary_main() -> ! {
    let cpu = crate::cpu_id();
    // The backend's enable sequence (OS lock, MDSCR_EL1, PSTATE.D) and the
    // clearing of every slot run in cpu_online (Arch::init_cpu); then the
    // manager installs what applies here, the all-CPU breakpoint included.
    if let Err(e) = HWBP.cpu_online(cpu) {
        fatal!("cpu_online({}) failed: {:?}", cpu, e);
    }
    println!("CPU {} online at EL{}", cpu, crate::current_el());
    STATE.store(ONLINE, Ordering::SeqCst);
    loop {
        match REQUEST.load(Ordering::SeqCst) {
            CALL_SHARED => {
                probe::shared(u64::from(cpu));
            }
            SYNC => {
                if let Err(e) = HWBP.sync(cpu) {
                    fatal!("sync({}) failed: {:?}", cpu, e);
                }
            }
            _ => {
                core::hint::spin_loop();
                continue;
            }
        }
        REQUEST.store(IDLE, Ordering::SeqCst);
    }
}
