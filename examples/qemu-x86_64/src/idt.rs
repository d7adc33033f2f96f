//! The IDT: one assembly stub per CPU exception (vectors 0–31) and per 8259
//! interrupt (32–47) that saves the general registers and calls
//! [`exception_entry`] with the saved frame, which sends #DB (vector 1) to the
//! firmware's debug handler, PIC interrupts to [`crate::timer`], and stops on
//! anything else. `iretq` restores the (possibly edited) saved RFLAGS, so the
//! #DB handler sets RF there.

use core::mem::size_of;

/// The state saved on the stack by the CPU and the stub, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct Frame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Pushed by the stub.
    pub vector: u64,
    /// Pushed by the CPU for vectors that have one, else 0 from the stub.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// RFLAGS.RF (bit 16): suppress instruction-breakpoint faults for one instruction.
pub const RFLAGS_RF: u64 = 1 << 16;

core::arch::global_asm!(
    r#"
    .section .text.isr, "ax"
    .code64

    /* Vectors without a CPU-pushed error code (exceptions, and the 8259
     * interrupts remapped to 32-47): push 0 to keep one frame shape. */
    .irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
isr_\n:
    pushq $0
    pushq $\n
    jmp isr_common
    .endr

    .irp n, 8,10,11,12,13,14,17,21,29,30
isr_\n:
    pushq $\n
    jmp isr_common
    .endr

isr_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    /* RSP is 16-byte aligned here (5 CPU words + 2 stub words + 15 registers
     * on a 16-byte aligned exception stack). */
    movq %rsp, %rdi
    call exception_entry
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    .section .rodata.isr_table, "a"
    .balign 8
    .global isr_table
isr_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .quad isr_\n
    .endr
"#,
    options(att_syntax)
);

/// CPU exceptions 0-31, then the two 8259 PICs' interrupts at 32-47.
const VECTORS: usize = 48;

extern "C" {
    static isr_table: [u64; VECTORS];
}

#[repr(C, align(16))]
struct Idt([[u64; 2]; VECTORS]);

static mut IDT: Idt = Idt([[0; 2]; VECTORS]);

#[repr(C, packed)]
struct IdtPtr {
    limit: u16,
    base: u64,
}

/// Fill the IDT with the stubs (64-bit interrupt gates, selector 0x08, DPL 0)
/// and load it.
pub fn init() {
    // SAFETY: runs once at boot on the only CPU before any exception is
    // expected; `isr_table` is the assembly table above.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (entry, &handler) in idt.0.iter_mut().zip(isr_table.iter()) {
            let low = (handler & 0xFFFF)
                | (0x08 << 16)
                | (0x8E << 40) // present, DPL 0, 64-bit interrupt gate
                | ((handler >> 16) & 0xFFFF) << 48;
            let high = handler >> 32;
            *entry = [low, high];
        }
        let ptr = IdtPtr {
            limit: (size_of::<Idt>() - 1) as u16,
            base: idt as *const Idt as u64,
        };
        core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags));
    }
}

#[no_mangle]
extern "C" fn exception_entry(frame: &mut Frame) {
    if frame.vector == 1 {
        crate::on_debug_exception(frame);
        return;
    }
    if (32..48).contains(&frame.vector) {
        crate::timer::on_interrupt(frame.vector as u8 - 32);
        return;
    }
    board_kit::fatal!(
        "unexpected exception {} (error code {:#x}) at rip {:#x}",
        frame.vector,
        frame.error_code,
        frame.rip
    );
}
