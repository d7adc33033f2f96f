//! A real scheduler tick: the 8259 PIC remapped to vectors 32–47 and the 8254
//! PIT's channel 0 as IRQ 0, whose handler calls `Manager::rotate` — the way a
//! kernel's timer interrupt drives perf-style multiplexing.

use board_kit::{fatal, Ticker};

use crate::hw::{CPU, HWBP};
use crate::serial::{inb, outb};

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xA0;
const PIC2_DATA: u16 = 0xA1;
const PIT_CH0: u16 = 0x40;
const PIT_CMD: u16 = 0x43;
/// 1193182 Hz / 1193 ≈ 1 kHz.
const PIT_DIVISOR: u16 = 1193;

/// Timer interrupts handled since boot.
static TICKS: Ticker = Ticker::new();

/// Remap both PICs to vectors 32–47 and mask every line (boot; interrupts
/// stay disabled until [`start`]).
pub fn init() {
    // SAFETY: the standard 8259 initialisation sequence on the PC's PIC ports.
    unsafe {
        outb(PIC1_CMD, 0x11); // ICW1: edge, cascade, ICW4 follows
        outb(PIC2_CMD, 0x11);
        outb(PIC1_DATA, 32); // ICW2: vector base
        outb(PIC2_DATA, 40);
        outb(PIC1_DATA, 4); // ICW3: slave on IRQ2
        outb(PIC2_DATA, 2);
        outb(PIC1_DATA, 1); // ICW4: 8086 mode
        outb(PIC2_DATA, 1);
        outb(PIC1_DATA, 0xFF); // mask everything
        outb(PIC2_DATA, 0xFF);
    }
}

/// Start the ~1 kHz tick and enable interrupts.
pub fn start() {
    // SAFETY: PIT channel 0, lobyte/hibyte, mode 2 (rate generator); then
    // unmask IRQ 0 only and let interrupts in. The IDT has vector 32.
    unsafe {
        outb(PIT_CMD, 0x34);
        outb(PIT_CH0, (PIT_DIVISOR & 0xFF) as u8);
        outb(PIT_CH0, (PIT_DIVISOR >> 8) as u8);
        outb(PIC1_DATA, 0xFE);
        core::arch::asm!("sti", options(nomem, nostack));
    }
}

/// Disable interrupts and mask the tick again.
pub fn stop() {
    // SAFETY: masking interrupts and the PIC line has no other effect.
    unsafe {
        core::arch::asm!("cli", options(nomem, nostack));
        outb(PIC1_DATA, 0xFF);
    }
}

/// Timer interrupts handled since boot.
pub fn ticks() -> u64 {
    TICKS.ticks()
}

/// Called by the IDT stub for PIC line `irq` (0–15).
pub fn on_interrupt(irq: u8) {
    match irq {
        0 => {
            TICKS.tick(|| HWBP.rotate(CPU));
            // SAFETY: end of interrupt for the master PIC.
            unsafe { outb(PIC1_CMD, 0x20) };
        }
        7 | 15 if !in_service(irq) => {} // spurious: no EOI
        _ => fatal!("unexpected interrupt on PIC line {irq}"),
    }
}

fn in_service(irq: u8) -> bool {
    let cmd = if irq < 8 { PIC1_CMD } else { PIC2_CMD };
    // SAFETY: OCW3 "read ISR" then reading it back has no other effect.
    let isr = unsafe {
        outb(cmd, 0x0B);
        inb(cmd)
    };
    isr & (1 << (irq % 8)) != 0
}
