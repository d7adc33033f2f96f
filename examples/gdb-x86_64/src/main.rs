//! A gdb stub on hwbp, in firmware for `qemu-system-x86_64 -machine pc`.
//!
//! Boots as the qemu-x86_64 board does (PVH, long mode, its IDT). COM1
//! carries the GDB remote protocol (QEMU puts it on a TCP port); the console
//! goes to QEMU's debugcon (port 0xE9). GDB's `hbreak`/`watch`/`rwatch`/
//! `awatch` become pinned hwbp breakpoints through `hwbp-gdbstub`. The #DB
//! handler clears DR7 on entry and restores it on return, as Linux does, so
//! the stub's own reads of watched memory cannot trap; hwbp-x86 decodes from
//! its record of what it installed.
#![no_std]
#![no_main]

#[path = "../../qemu-x86_64/src/boot.rs"]
mod boot;
#[path = "../../qemu-x86_64/src/exit.rs"]
mod exit;
#[path = "../../qemu-x86_64/src/idt.rs"]
mod idt;
mod machine;
#[path = "../../gdb-common/program.rs"]
mod program;
#[path = "../../qemu-x86_64/src/serial.rs"]
mod serial;
#[path = "../../gdb-common/session.rs"]
mod session;

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use board_kit::{fatal, Board};
use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;
use hwbp_x86::{Dr6, X86Exception};

pub use board_kit::{print, println};

use machine::{BPS, HWBP, LATCH};

/// The board as the kit sees it: debugcon console, isa-debug-exit,
/// RFLAGS.IF.
struct PcGdb;
board_kit::set_board!(PcGdb);

/// RFLAGS.TF: trap after the next instruction.
pub const RFLAGS_TF: u64 = 1 << 8;
/// QEMU's debugcon port.
const DEBUGCON: u16 = 0xE9;

// SAFETY: one CPU: masking interrupts excludes every other context that could
// take a critical section (#DB is not maskable; the manager's exception path
// takes no lock). Interrupts are never enabled here.
unsafe impl Board for PcGdb {
    const NAME: &'static str = "gdb-x86_64";
    const CRLF: bool = false;
    const CPUS: u16 = 1;

    fn put(byte: u8) {
        // SAFETY: QEMU's debugcon, configured by `cargo xtask gdb`.
        unsafe { serial::outb(DEBUGCON, byte) }
    }

    fn exit(success: bool) -> ! {
        exit::exit(success)
    }

    unsafe fn mask_irqs() -> u64 {
        // SAFETY: forwarded from the kit's critical-section acquire.
        unsafe { board_kit::x86_64::mask_irqs() }
    }

    unsafe fn restore_irqs(previous: u64) {
        // SAFETY: forwarded from the kit's critical-section release.
        unsafe { board_kit::x86_64::restore_irqs(previous) }
    }
}

/// The idt module's interrupt hook: no interrupt is enabled here.
mod timer {
    pub fn on_interrupt(irq: u8) {
        board_kit::fatal!("unexpected interrupt {}", irq);
    }
}

/// The first stop (a single step set up in `kmain`) is still to come.
static INITIAL: AtomicBool = AtomicBool::new(true);

#[no_mangle]
extern "C" fn kmain() -> ! {
    serial::init();
    idt::init();
    println!("hwbp gdb-x86_64: booted (PVH, long mode, IDT with #DB handler)");
    if let Err(e) = HWBP.init(1) {
        fatal!("init(1) failed: {:?}", e);
    }
    if let Err(e) = HWBP.cpu_online(0) {
        fatal!("cpu_online(0) failed: {:?}", e);
    }
    dr7_cleared_check();
    println!(
        "hwbp: {:?}; gdb stub on COM1, waiting for GDB",
        HWBP.slot_counts()
    );
    // The first stop: GDB connects and finds the program stopped here.
    // SAFETY: sets RFLAGS.TF; the #DB after the `nop` reports the stop to
    // GDB and clears TF in the saved flags.
    unsafe {
        core::arch::asm!("pushfq", "or qword ptr [rsp], 0x100", "popfq", "nop");
    }
    let code = program::run();
    session::exited(code)
}

/// Written by [`dr7_cleared_check`].
#[no_mangle]
static mut CHECK_WORD: u64 = 0;

/// Before the GDB session: a hit is decoded although the #DB handler
/// clears DR7 on entry (hwbp-x86 decodes from its record of what it
/// installed), and DR7 is back afterwards.
fn dr7_cleared_check() {
    use board_kit::{check, must};
    use core::ptr::addr_of_mut;
    let attr = hwbp_core::BreakpointAttr::watch(
        addr_of_mut!(CHECK_WORD) as u64,
        8,
        hwbp_core::Access::WRITE,
    )
    .target(hwbp_core::Target::Cpu(0));
    let reg = must!(HWBP.register(&attr));
    must!(HWBP.sync(0));
    let dr7 = HWBP.arch().read_image(0).dr7;
    // SAFETY: the watched store.
    unsafe { core::ptr::write_volatile(addr_of_mut!(CHECK_WORD), 5) };
    check!(
        must!(HWBP.hits(reg.handle)) == 1,
        "a watchpoint hit is decoded with DR7 cleared on #DB entry"
    );
    check!(
        HWBP.arch().read_image(0).dr7 == dr7 && HWBP.stray(0) == 0,
        "DR7 is restored on return from #DB (no stray hits)"
    );
    let set = must!(HWBP.unregister(reg.handle));
    if set.contains(0) {
        must!(HWBP.sync(0));
    }
}

/// Called by the vector-1 stub with the saved state.
pub fn on_debug_exception(frame: &mut idt::Frame) {
    // As Linux: DR7 cleared on entry (nothing the handler or the stub touches
    // can trap), restored on return.
    machine::save_and_clear_dr7();
    let dr6 = HWBP.arch().read_dr6(0);
    let raw = X86Exception { dr6, ip: frame.rip };
    let r = HWBP.handle_exception(0, &raw);
    if r.sets_resume_flag() {
        frame.rflags |= idt::RFLAGS_RF;
    }
    let stepped = Dr6::from_raw(dr6).contains(Dr6::BS);
    let hit = LATCH.take(0).and_then(|s| BPS.stop_for(&s));
    let stop = match hit {
        Some(stop) => Some(stop.reason()),
        None if stepped && INITIAL.swap(false, Ordering::SeqCst) => {
            frame.rflags &= !RFLAGS_TF;
            Some(SingleThreadStopReason::Signal(Signal::SIGTRAP))
        }
        None if stepped && machine::stepping() && (r.pass_on || !r.is_ours()) => {
            Some(SingleThreadStopReason::DoneStep)
        }
        None => None,
    };
    match stop {
        Some(reason) => session::stop(frame, reason),
        None if r.is_ours() && !r.pass_on => machine::restore_dr7(),
        None => fatal!(
            "#DB not claimed ({:?}): dr6 {:#x} at rip {:#x}",
            r,
            dr6,
            frame.rip
        ),
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    fatal!("panic: {info}");
}
