//! The guest at EL1: `../qemu-aarch64`'s boot code and vectors, its own
//! hwbp manager with the EL1 backend, and `hvc` back to the hypervisor
//! between the phases the hypervisor checks.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use board_kit::{check, fatal, must};
use hwbp_arm64::backend::aarch64::SPSR_SS;
use hwbp_arm64::{Aarch64Backend, Aarch64Exception, IdAa64Dfr0};
use hwbp_core::{Access, BreakpointAttr, Manager, Resume, SlotCounts, Target};

use crate::{boot, probe, HOST_VAR, HVC_DONE, HVC_YIELD};

/// The guest's manager: the ordinary EL1 backend, unaware of the hypervisor.
// SAFETY (of `aarch64`): guest_main runs at EL1, where the hypervisor
// emulates every debug register access; nothing else in the guest uses them.
static GUEST_HWBP: Manager<Aarch64Backend, (), 1, 16, 2> =
    Manager::new(unsafe { Aarch64Backend::aarch64() }, ());

/// A static the guest watches.
static GUEST_VAR: AtomicU64 = AtomicU64::new(0);

/// The guest's `VBAR_EL1` as it reads it (the VHE host compares it with
/// `VBAR_EL12`).
pub static GUEST_VBAR: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .section .text.guest, "ax"
    .global _guest_start
_guest_start:
    ldr     x0, =__stack1_top
    mov     sp, x0
    bl      __cpu_setup             // ../qemu-aarch64's EL1 setup: vectors, MMU
    bl      guest_main
1:  b       1b
"#
);

/// The guest's first instruction.
pub fn entry() -> u64 {
    extern "C" {
        fn _guest_start();
    }
    _guest_start as *const () as u64
}

fn hvc(code: u64) {
    // SAFETY: the hypervisor handles `hvc #0` (EC 0x16) and resumes after
    // it with every register as it was.
    unsafe { asm!("hvc #0", in("x0") code, options(nostack)) };
}

#[no_mangle]
extern "C" fn guest_main() -> ! {
    let vbar: u64;
    // SAFETY: reading the guest's own vector base.
    unsafe { asm!("mrs {}, vbar_el1", out(reg) vbar, options(nomem, nostack)) };
    GUEST_VBAR.store(vbar, SeqCst);
    // Phase 1: no debug register touched.
    for _ in 0..3 {
        hvc(HVC_YIELD);
    }
    // Phase 2: hwbp's EL1 backend comes up; its discovery reads
    // ID_AA64DFR0_EL1, which the hypervisor answers.
    must!(GUEST_HWBP.init(1));
    let id: u64;
    // SAFETY: an ID register read (trapped by HCR_EL2.TID3).
    unsafe { asm!("mrs {}, id_aa64dfr0_el1", out(reg) id, options(nomem, nostack)) };
    let id = IdAa64Dfr0(id);
    check!(
        GUEST_HWBP.slot_counts() == Ok(SlotCounts::Separate { inst: 4, data: 2 })
            && (id.brps(), id.wrps()) == (4, 2),
        "the guest at EL1 sees the reduced count in ID_AA64DFR0_EL1: 4 breakpoints, 2 watchpoints"
    );
    must!(GUEST_HWBP.cpu_online(0));
    hvc(HVC_YIELD);
    // Phase 3: its own watchpoint, breakpoint and step-over at EL1.
    let on_cpu = |a: BreakpointAttr| a.target(Target::Cpu(0));
    let var = GUEST_VAR.as_ptr();
    let w =
        must!(GUEST_HWBP.register(&on_cpu(BreakpointAttr::watch(var as u64, 8, Access::WRITE))))
            .handle;
    let b = must!(
        GUEST_HWBP.register(&on_cpu(BreakpointAttr::exec(probe::addr_of(
            probe::counted
        ))))
    )
    .handle;
    must!(GUEST_HWBP.sync(0));
    probe::store64(var, 7);
    let r = probe::counted(1);
    check!(
        GUEST_HWBP.hits(w) == Ok(1) && GUEST_HWBP.hits(b) == Ok(1) && GUEST_VAR.load(SeqCst) == 7 && r == 4,
        "guest watchpoint, breakpoint and step-over at EL1 (ESR_EL1) while the host holds its slots"
    );
    probe::store64(HOST_VAR.as_ptr(), 9);
    hvc(HVC_YIELD);
    // Phase 4: another vCPU used the registers in between.
    probe::store64(var, 8);
    probe::counted(2);
    check!(
        GUEST_HWBP.hits(w) == Ok(2) && GUEST_HWBP.hits(b) == Ok(2),
        "the guest's state survived the switches (another vCPU in between): both fire again"
    );
    hvc(HVC_YIELD);
    // Phase 5: the host debugs this guest.
    let r = probe::counted(3) + probe::sampled(1);
    check!(
        GUEST_HWBP.hits(b) == Ok(2) && r == 10 + 7,
        "while the host debugs the guest, the guest's own breakpoint does not reach the hardware"
    );
    hvc(HVC_YIELD);
    // Phase 6: its own settings are back.
    probe::counted(4);
    check!(
        GUEST_HWBP.hits(b) == Ok(3) && GUEST_HWBP.stray(0) == 0,
        "host debugging over: the guest's own breakpoint fires again; no strays in the guest"
    );
    hvc(HVC_DONE);
    fatal!("the guest was resumed after it finished")
}

/// The guest's exceptions (`../qemu-aarch64`'s EL1 vectors call this).
#[no_mangle]
extern "C" fn rust_exception(kind: u64, frame: &mut boot::Frame) {
    let (esr, far): (u64, u64);
    // SAFETY: reading the EL1 syndrome registers.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr, options(nomem, nostack));
        asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack));
    }
    let ec = (esr >> 26) & 0x3f;
    if kind == 4 && (0x30..=0x35).contains(&ec) {
        let raw = Aarch64Exception {
            esr,
            far,
            elr: frame.elr,
        };
        match GUEST_HWBP.handle_exception(0, &raw) {
            Resume::RETURN => {}
            Resume::SINGLE_STEP => frame.spsr |= SPSR_SS,
            other => fatal!(
                "guest debug exception not hwbp's ({:?}): ESR {:#x}",
                other,
                esr
            ),
        }
        return;
    }
    fatal!(
        "unexpected guest exception: vector {} ESR_EL1 {:#x} FAR {:#x} ELR {:#x}",
        kind,
        esr,
        far,
        frame.elr
    );
}
