//! PVH entry: QEMU's `-kernel` loader finds the Xen PVH ELF note and jumps to
//! `_start32` in 32-bit protected mode with paging off, `%ebx` pointing at the
//! `hvm_start_info` block, and no usable stack or GDT. This code zeroes `.bss`,
//! identity-maps the first GiB with 2 MiB pages, enables PAE and long mode,
//! loads its own GDT and calls `kmain` in 64-bit mode.

core::arch::global_asm!(
    r#"
    /* The PVH note: namesz=4, descsz=8, type=18 (XEN_ELFNOTE_PHYS32_ENTRY),
     * name "Xen", descriptor = physical 32-bit entry address. 4-byte aligned:
     * QEMU 7.2 refuses an 8-byte-aligned note segment. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad _start32

    .section .text.boot, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    movl $__stack_top, %esp
    movl %ebx, %esi                 /* keep the start-info pointer */

    /* Zero .bss (page tables, stack, statics). */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    movl %esi, pvh_start_info

    /* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB (present, writable, large). */
    movl $boot_pdpt, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt
    movl $0x83, %eax
    xorl %ecx, %ecx
1:
    movl %eax, boot_pd(,%ecx,8)
    addl $0x200000, %eax
    incl %ecx
    cmpl $512, %ecx
    jne 1b

    /* CR4.PAE, CR3, EFER.LME, then CR0.PG|PE: long mode (compatibility). */
    movl %cr4, %eax
    orl $(1 << 5), %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $_start64

    .code64
_start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq $__stack_top, %rsp
    xorl %ebp, %ebp
    call kmain
2:
    hlt
    jmp 2b

    .section .rodata.boot_gdt, "a"
    .balign 16
boot_gdt:
    .quad 0                         /* null */
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00CF92000000FFFF        /* 0x10: data, DPL 0 */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot_pagetables, "aw", @nobits
    .balign 4096
boot_pml4:
    .space 4096
boot_pdpt:
    .space 4096
boot_pd:
    .space 4096

    .section .bss.boot_stack, "aw", @nobits
    .balign 16
    .space 0x10000
__stack_top:

    .section .bss.pvh_start_info, "aw", @nobits
    .balign 8
    .global pvh_start_info
pvh_start_info:
    .space 8
"#,
    options(att_syntax)
);
