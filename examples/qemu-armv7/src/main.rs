//! hwbp on QEMU's armv7 virt board (cortex-a15, AArch32): hwbp-core with
//! hwbp-arm64's AArch32 (cp14) backend, debug events taken as prefetch and
//! data aborts in monitor debug-mode.
#![no_std]
#![no_main]

mod boot;
mod checks;
mod hw;
mod probes;
mod semihosting;
mod stepover;

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use board_kit::{fatal, Board, Recorder};
use critical_section::Mutex;
use hwbp_core::{Manager, Resume, Sample};

use boot::{Frame, Vector};
use checks::{fail, Ctx};

pub use board_kit::{print, println};

/// The board as the kit sees it: the PL011, semihosting exit, CPSR.I/F.
struct Armv7Virt;
board_kit::set_board!(Armv7Virt);

const CPSR_I: u32 = 1 << 7;
const CPSR_F: u32 = 1 << 6;

/// The virt board's PL011.
const UART_BASE: usize = 0x0900_0000;

// SAFETY: a single CPU; `mask_irqs` masks IRQ and FIQ and returns the
// previous CPSR (32 bits: bit 63 clear), `restore_irqs` unmasks only what was
// unmasked in it. Debug aborts are synchronous and are not masked by
// CPSR.I/F, so a breakpoint inside a critical section still fires.
unsafe impl Board for Armv7Virt {
    const NAME: &'static str = "armv7";
    // Plain '\n' line ends: the transcript is read by programs (xtask) that
    // compare whole lines.
    const CRLF: bool = false;
    const CPUS: u16 = 1;

    fn put(byte: u8) {
        // SAFETY: the PL011 of QEMU's virt board (device memory with the MMU
        // off); nothing else in this firmware touches it.
        unsafe { board_kit::pl011::put(UART_BASE, byte) }
    }

    fn exit(success: bool) -> ! {
        semihosting::exit(success)
    }

    unsafe fn mask_irqs() -> u64 {
        let cpsr: u32;
        // SAFETY: reading CPSR and masking IRQ/FIQ in a privileged mode has no
        // other effect.
        unsafe {
            core::arch::asm!("mrs {}, cpsr", "cpsid if", out(reg) cpsr, options(nomem, nostack));
        }
        u64::from(cpsr)
    }

    unsafe fn restore_irqs(previous: u64) {
        if previous & u64::from(CPSR_I) == 0 {
            // SAFETY: unmasking IRQ restores the state at acquire.
            unsafe { core::arch::asm!("cpsie i", options(nomem, nostack)) };
        }
        if previous & u64::from(CPSR_F) == 0 {
            // SAFETY: unmasking FIQ restores the state at acquire.
            unsafe { core::arch::asm!("cpsie f", options(nomem, nostack)) };
        }
    }
}

/// The samples the checks look at; a record's value is the watched word.
pub static REC: Recorder<64> = Recorder::new(watched_word);

/// The watched word as the handler reads it: the watchpoint fires before the
/// access, so for a store this is the value it is about to replace. `None`
/// for instruction breakpoints and regions that are not one aligned word.
fn watched_word(s: &Sample) -> Option<u64> {
    // The backend disabled the fired watchpoint before the core called the
    // handler, so reading the watched word does not re-enter (AArch32 has no
    // PSTATE.D to mask debug exceptions in the handler).
    (s.region_len == 4
        && s.region_addr.is_multiple_of(4)
        && !s.access.contains(hwbp_core::Access::EXEC))
    .then(|| {
        // SAFETY: the region is a word the firmware registered, in RAM.
        u64::from(unsafe { core::ptr::read_volatile(s.region_addr as usize as *const u32) })
    })
}

/// The breakpoint manager: one CPU, 16 events, no tasks to speak of.
pub static HWBP: Manager<hw::Backend, &'static Recorder<64>, 1, 16, 2> =
    Manager::new(hw::backend(), &REC);

/// The value the last watched store was writing, decoded from its source
/// register (A32 `STR`/`STRB`); `None` if the last data abort was not such a
/// store.
static LAST_STORE: Mutex<Cell<Option<u32>>> = Mutex::new(Cell::new(None));

/// See [`LAST_STORE`].
pub fn last_store_value() -> Option<u32> {
    critical_section::with(|cs| LAST_STORE.borrow(cs).get())
}

#[no_mangle]
extern "C" fn firmware_main() -> ! {
    println!("hwbp armv7: boot ok (SVC mode, vectors at VBAR)");
    run();
    board_kit::checks::finish()
}

/// The checks in order; a failed check prints `FAIL: ...` and the rest still
/// run (bring-up failing stops everything after it, since nothing could work).
fn run() {
    type Check = (&'static str, fn() -> checks::Outcome);
    let checks: [Check; 14] = [
        ("exception round trip", undef_round_trip),
        ("bring-up", bring_up),
        ("discovery through DBGDIDR", checks::discovery),
        ("pinned write watchpoint", checks::pinned_write),
        ("read-write watchpoint caught by a read", checks::rw_by_read),
        (
            "breakpoint, 3 calls -> 3 hits",
            checks::breakpoint_three_calls,
        ),
        ("sample period 2", checks::sample_period),
        (
            "region over several registers (unaligned)",
            checks::multi_piece,
        ),
        ("region over several registers (long)", checks::long_region),
        ("fill every slot, next pinned refused", checks::fill_pinned),
        (
            "flexible watchpoints multiplexed by rotate",
            checks::flexible_rotation,
        ),
        ("modify a live watchpoint", checks::modify),
        ("continue after every hit", checks::continue_after_hits),
        ("no stray hits", no_stray),
    ];
    for (name, f) in checks {
        checks::begin(name);
        match f() {
            Ok(()) => {
                board_kit::checks::pass(format_args!("{name}"));
            }
            // Already counted and printed by `checks::failure`.
            Err(checks::Failure) if name == "bring-up" => break,
            Err(checks::Failure) => {}
        }
    }
}

fn bring_up() -> checks::Outcome {
    // The backend discovers the registers (DBGDIDR) and the core sizes its
    // table from that; bringing CPU 0 online has the backend clear the OS
    // lock, enable monitor debug-mode (DBGDSCRext.MDBGen) and clear every
    // slot.
    HWBP.init(1).ctx("init")?;
    let counts = HWBP.slot_counts().ctx("backend probe")?;
    println!("bring-up: backend probed {counts:?}");
    HWBP.cpu_online(0).ctx("cpu_online")?;
    println!("bring-up: manager initialized, CPU 0 online");
    Ok(())
}

fn no_stray() -> checks::Outcome {
    let stray = HWBP.stray(0);
    println!(
        "stray hits filtered: {stray}, step-overs: {}, store hits whose DFSR.WnR QEMU left clear: {}",
        stepover::steps(),
        WNR_SUPPLIED.load(Ordering::Relaxed)
    );
    if stray != 0 {
        fail!("{stray} stray hits");
    }
    Ok(())
}

/// Undefined instructions taken by `undef_round_trip` (which skips them).
static UNDEF_TAKEN: AtomicU32 = AtomicU32::new(0);

/// The vector stubs save and restore every register: take an undefined
/// instruction between two uses of live registers and return past it.
fn undef_round_trip() -> checks::Outcome {
    let (a, b): (u32, u32);
    // SAFETY: `udf` traps to the UND vector, whose handler (below) skips it
    // and returns with every register restored.
    unsafe {
        core::arch::asm!(
            "mov {a}, #0x55",
            "mov {b}, #0xaa",
            "udf #0x42",
            "add {a}, {a}, {b}",
            a = out(reg) a,
            b = out(reg) b,
        );
    }
    let taken = UNDEF_TAKEN.load(Ordering::Relaxed);
    println!(
        "boot: undefined instruction taken {taken}x and skipped, registers kept: {}",
        a == 0xff && b == 0xaa
    );
    if taken != 1 || a != 0xff || b != 0xaa {
        fail!("taken {taken}, a={a:#x}, b={b:#x}");
    }
    Ok(())
}

/// `udf #0x42` in A32.
const UDF_0X42: u32 = 0xe7f0_04f2;

/// Called by the vector stubs with the saved frame.
#[no_mangle]
extern "C" fn exception_entry(frame: &mut Frame, vector: u32) {
    let v = match vector {
        1 => Vector::Undef,
        2 => Vector::Svc,
        3 => Vector::PrefetchAbort,
        4 => Vector::DataAbort,
        _ => Vector::Irq,
    };
    match v {
        Vector::Undef => {
            // SAFETY: frame.pc is the address of an instruction the CPU
            // executed, so it is readable.
            let insn = unsafe { core::ptr::read_volatile(frame.pc as usize as *const u32) };
            if insn == UDF_0X42 {
                UNDEF_TAKEN.fetch_add(1, Ordering::Relaxed);
                frame.pc += 4;
                return;
            }
            match stepover::finish(frame) {
                Ok(true) => return,
                Ok(false) => {}
                Err(why) => {
                    board_kit::checks::fail(format_args!("{why}"));
                }
            }
        }
        Vector::PrefetchAbort | Vector::DataAbort => match debug_abort(frame, v) {
            Ok(()) => return,
            Err(why) => {
                board_kit::checks::fail(format_args!("{why}"));
            }
        },
        Vector::Svc | Vector::Irq => {}
    }
    fatal!(
        "unexpected exception {v:?} at pc={:#010x} spsr={:#010x}",
        frame.pc,
        frame.spsr
    )
}

/// A prefetch or data abort: hand debug events to the core, then step over.
fn debug_abort(frame: &mut Frame, v: Vector) -> Result<(), &'static str> {
    let raw = hw::exception(frame, v);
    if raw.write == Some(true) && raw.fsr & DFSR_WNR == 0 {
        WNR_SUPPLIED.fetch_add(1, Ordering::Relaxed);
    }
    if !hwbp_arm64::aarch32::Fsr(raw.fsr).is_debug_event() {
        println!(
            "abort: fsr={:#x} far={:#x} pc={:#x}",
            raw.fsr, raw.far, raw.pc
        );
        return Err("abort that is not a debug event");
    }
    LAST_DSCR.store(raw.dscr, Ordering::Relaxed);
    if v == Vector::DataAbort {
        let value = store_value(frame);
        critical_section::with(|cs| LAST_STORE.borrow(cs).set(value));
    }
    let resume = HWBP.handle_exception(0, &raw);
    if !resume.is_ours() {
        return Err("debug event the breakpoint layer does not claim");
    }
    match resume {
        Resume::SINGLE_STEP => stepover::start(frame),
        Resume::RETURN => Ok(()),
        _ => Err("x86 resume requested (resume flag, or a merged single step)"),
    }
}

/// `DBGDSCRext` as read for the last debug abort.
static LAST_DSCR: AtomicU32 = AtomicU32::new(0);

/// The method of entry (`DBGDSCR.MOE`) of the last debug abort.
pub fn last_moe() -> hwbp_arm64::aarch32::Moe {
    hwbp_arm64::aarch32::Dbgdscr(LAST_DSCR.load(Ordering::Relaxed)).moe()
}

/// Store watchpoint hits whose DFSR.WnR was clear (the direction came from
/// the aborted instruction, as it must: WnR is UNKNOWN for watchpoints).
static WNR_SUPPLIED: AtomicU32 = AtomicU32::new(0);

/// `DFSR.WnR`: the aborted access was a write.
const DFSR_WNR: u32 = 1 << 11;

/// Whether the A32 instruction at `frame.pc` writes memory: `STR`/`STRB`/
/// `STRT`, `STM`, `STRH`/`STRD`/`STREX*`.
pub(crate) fn is_store(frame: &Frame) -> bool {
    if frame.spsr & (1 << 5) != 0 {
        return false;
    }
    // SAFETY: frame.pc is the aborted instruction, readable code.
    let insn = unsafe { core::ptr::read_volatile(frame.pc as usize as *const u32) };
    if insn >> 28 == 0xF {
        return false;
    }
    let load = insn & (1 << 20) != 0;
    match (insn >> 25) & 0b111 {
        // LDR/STR (immediate, register), LDM/STM.
        0b010..=0b100 => !load,
        0b000 if insn & 0x90 == 0x90 => match (insn >> 5) & 0b11 {
            // SWP/LDREX/STREX family: STREX* is a store.
            0b00 => insn & 0x0180_0f90 == 0x0180_0f90 && !load,
            0b01 => !load,                      // STRH
            _ => !load && insn & (1 << 5) != 0, // STRD (LDRD has bit 5 clear)
        },
        _ => false,
    }
}

/// The value an A32 `STR`/`STRB` (immediate or register offset) at `frame.pc`
/// is storing.
fn store_value(frame: &Frame) -> Option<u32> {
    // SAFETY: frame.pc is the aborted instruction, readable code.
    let insn = unsafe { core::ptr::read_volatile(frame.pc as usize as *const u32) };
    let single_transfer = (insn >> 26) & 0b11 == 0b01 && insn >> 28 != 0xF;
    let store = insn & (1 << 20) == 0;
    if !single_transfer || !store {
        return None;
    }
    let rt = ((insn >> 12) & 0xF) as usize;
    let v = *frame.r.get(rt)?;
    Some(if insn & (1 << 22) != 0 { v & 0xFF } else { v })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal!("panic: {info}")
}
