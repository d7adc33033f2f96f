//! hwbp on QEMU's RISC-V `virt` boards (riscv64 and riscv32), in M-mode:
//! hwbp-core with hwbp-riscv's Sdtrig backend. Triggers fire before the
//! instruction as breakpoint exceptions (`mcause` = 3, `mtval` = 0 on
//! QEMU); the trap handler hands them to the core and returns.
#![no_std]
#![no_main]

mod boot;
mod checks;
mod hw;
mod probes;

use core::sync::atomic::{AtomicU32, Ordering};

use board_kit::{fatal, Board, Recorder};
use hwbp_core::{Access, Manager, Resume, Sample};
use hwbp_riscv::insn::{Insn, Kind};
use hwbp_riscv::{Privilege, RiscvBackend, RiscvException, Xlen};

pub use board_kit::{print, println};

/// The board as the kit sees it: the UART, the SiFive test device,
/// `mstatus.MIE`.
struct RiscvVirt;
board_kit::set_board!(RiscvVirt);

const MSTATUS_MIE: usize = 1 << 3;

// SAFETY: one hart; `mask_irqs` clears mstatus.MIE and returns its previous
// value alone (so bit 63 is clear), `restore_irqs` sets MIE only if it was
// set. Breakpoint exceptions are synchronous: MIE does not mask
// them, so a trigger inside a critical section still fires.
unsafe impl Board for RiscvVirt {
    #[cfg(target_arch = "riscv64")]
    const NAME: &'static str = "riscv64";
    #[cfg(target_arch = "riscv32")]
    const NAME: &'static str = "riscv32";
    const CRLF: bool = false;
    const CPUS: u16 = 1;

    fn put(byte: u8) {
        hw::put(byte)
    }

    fn exit(success: bool) -> ! {
        hw::exit(success)
    }

    unsafe fn mask_irqs() -> u64 {
        let prev: usize;
        // SAFETY: clearing mstatus.MIE in M-mode only masks interrupts.
        unsafe {
            core::arch::asm!("csrrci {}, mstatus, 8", out(reg) prev, options(nomem, nostack))
        };
        (prev & MSTATUS_MIE) as u64
    }

    unsafe fn restore_irqs(previous: u64) {
        if previous & MSTATUS_MIE as u64 != 0 {
            // SAFETY: re-enables interrupts as they were at acquire.
            unsafe { core::arch::asm!("csrsi mstatus, 8", options(nomem, nostack)) };
        }
    }
}

/// The samples the checks look at; a record's value is the watched word.
pub static REC: Recorder<64> = Recorder::new(watched_word);

/// The aligned word containing a data sample's region, as the handler reads
/// it: the trigger fires before the access, so for a store this is the
/// value about to be replaced. The backend disabled the fired trigger
/// before the core called the handler, so the read does not fire it.
fn watched_word(s: &Sample) -> Option<u64> {
    (!s.access.contains(Access::EXEC) && s.region_len <= 4).then(|| {
        let a = (s.region_addr & !3) as usize;
        // SAFETY: the region is inside a static word the firmware registered.
        u64::from(unsafe { core::ptr::read_volatile(a as *const u32) })
    })
}

/// The backend: `mcontrol6`/`mcontrol` triggers through [`hw::QemuCsrs`].
pub type Backend = RiscvBackend<hw::QemuCsrs>;

/// The breakpoint manager: one hart, 16 events, 2 tasks.
pub static HWBP: Manager<Backend, &'static Recorder<64>, 1, 16, 2> = Manager::new(
    // SAFETY: M-mode; nothing but the backend touches the trigger CSRs, and
    // mtvec only changes during the backend's own probes.
    RiscvBackend::new(unsafe { hw::QemuCsrs::new() }, kernel_base()),
    &REC,
);

/// Everything below the kernel base is "user" for [`hwbp_core::AddressSpace`]:
/// the firmware's RAM at 0x8000_0000 is below the Linux-like splits.
const fn kernel_base() -> u64 {
    match Xlen::native() {
        Xlen::Rv32 => hwbp_riscv::RV32_KERNEL_BASE,
        Xlen::Rv64 => hwbp_riscv::RV64_KERNEL_BASE,
    }
}

/// `ebreak`s taken and skipped (the boot self-test).
pub static EBREAKS: AtomicU32 = AtomicU32::new(0);

fn csr_mepc() -> usize {
    let v: usize;
    // SAFETY: reading mepc in M-mode.
    unsafe { core::arch::asm!("csrr {}, mepc", out(reg) v, options(nomem, nostack)) };
    v
}

fn set_mepc(v: usize) {
    // SAFETY: the trap returns to `v`, an instruction boundary of this
    // firmware's code.
    unsafe { core::arch::asm!("csrw mepc, {}", in(reg) v, options(nomem, nostack)) };
}

fn csr_mcause() -> usize {
    let v: usize;
    // SAFETY: reading mcause in M-mode.
    unsafe { core::arch::asm!("csrr {}, mcause", out(reg) v, options(nomem, nostack)) };
    v
}

fn csr_mtval() -> usize {
    let v: usize;
    // SAFETY: reading mtval in M-mode.
    unsafe { core::arch::asm!("csrr {}, mtval", out(reg) v, options(nomem, nostack)) };
    v
}

fn csr_mstatus() -> usize {
    let v: usize;
    // SAFETY: reading mstatus in M-mode.
    unsafe { core::arch::asm!("csrr {}, mstatus", out(reg) v, options(nomem, nostack)) };
    v
}

/// The instruction at `pc`: one 16-bit parcel, two for a 32-bit one.
fn fetch(pc: usize) -> u32 {
    // SAFETY: `pc` is mepc of an instruction this firmware was executing:
    // readable code in RAM, 2-byte aligned.
    unsafe {
        let lo = u32::from(core::ptr::read_volatile(pc as *const u16));
        if lo & 3 == 3 {
            lo | u32::from(core::ptr::read_volatile((pc + 2) as *const u16)) << 16
        } else {
            lo
        }
    }
}

/// Called by the trap vector with the saved registers.
#[no_mangle]
extern "C" fn trap_rust(frame: &mut boot::Frame) {
    let (mcause, mepc, mtval) = (csr_mcause(), csr_mepc(), csr_mtval());
    if mcause != 3 {
        fatal!("unexpected trap: mcause={mcause:#x} mepc={mepc:#x} mtval={mtval:#x}");
    }
    let insn = fetch(mepc);
    let raw = RiscvException {
        mcause: mcause as u64,
        mepc: mepc as u64,
        mtval: mtval as u64,
        prev: Privilege::from_mpp((csr_mstatus() >> 11) as u64),
        insn,
        x: frame.x.map(|v| v as u64),
    };
    checks::note_trap(&raw);
    let resume = HWBP.handle_exception(0, &raw);
    if resume == Resume::RETURN {
        // Ours: the step-over is armed in the triggers; mret.
    } else if resume == Resume::NOT_OURS {
        let i = Insn::decode(insn, Xlen::native());
        if i.kind == Kind::Ebreak {
            EBREAKS.fetch_add(1, Ordering::Relaxed);
            set_mepc(mepc + usize::from(i.len));
        } else {
            fatal!("breakpoint exception nobody claims at {mepc:#x} (insn {insn:#x})");
        }
    } else {
        fatal!("unexpected resume {resume:?} at {mepc:#x}");
    }
}

#[no_mangle]
extern "C" fn firmware_main() -> ! {
    println!("hwbp {}: boot ok (M-mode, mtvec set)", RiscvVirt::NAME);
    checks::run();
    board_kit::checks::finish()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal!("panic: {info}")
}
