//! The smallest x86_64 kernel (ring 0) that uses hwbp: what hwbp-x86's
//! porting guide describes, built and linked for `x86_64-unknown-none` by
//! `cargo xtask test`. Not a board example (nothing runs it): each piece is
//! what a kernel of its own needs, and the QEMU board `examples/qemu-x86_64`
//! runs the same pieces for real.
//!
//! 1. A critical-section implementation that excludes other CPUs, nests on
//!    its own CPU (a #DB is not masked by `cli`), and restores IF.
//! 2. The manager in a `static`.
//! 3. The #DB vector (IDT vector 1): DR6 and the saved RIP to
//!    `handle_exception`, then the `Resume`: RFLAGS.RF for an instruction
//!    breakpoint, the next handler when `pass_on`.
//! 4. `sync` on every CPU a change names: here, or by an IPI there.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm, x86_64::__cpuid};
use core::cell::UnsafeCell;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hwbp_core::{Access, Action, BreakpointAttr, CpuSet, Manager, Sample, Target};
use hwbp_x86::{Cpu, X86Backend, X86Exception};

/// CPUs this kernel runs on (initial APIC IDs 0..CPUS).
const CPUS: u16 = 2;

/// The calling CPU's number: its initial APIC ID (CPUID leaf 1, EBX[31:24]).
/// A real kernel reads its own per-CPU data instead.
fn cpu_id() -> u16 {
    // SAFETY: CPUID leaf 1 exists on every x86_64 CPU. (`__cpuid` is a safe
    // function on recent toolchains, an unsafe one on older ones.)
    #[allow(unused_unsafe)]
    let ebx = unsafe { __cpuid(1) }.ebx;
    (ebx >> 24) as u16
}

// ---------------------------------------------------------------------------
// 1. The critical section.

/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// Marks a nested acquire in the restore state (RFLAGS bit 63 is reserved).
const NESTED: u64 = 1 << 63;

/// The CPU holding the lock: 0 = free, else CPU number + 1.
static OWNER: AtomicU32 = AtomicU32::new(0);

struct KernelCs;
critical_section::set_impl!(KernelCs);

// SAFETY: acquire disables interrupts on the calling CPU and takes a lock
// that one CPU holds at a time, so no other context (interrupt or CPU) can
// be inside a critical section with it. A nested acquire on the owning CPU
// (a #DB or NMI, which `cli` does not mask, calling into the manager)
// returns a token with NESTED set and keeps the lock. Release re-enables
// interrupts only if they were enabled at acquire. No `nomem`: the section
// is a compiler barrier too.
unsafe impl critical_section::Impl for KernelCs {
    unsafe fn acquire() -> u64 {
        let rflags: u64;
        // SAFETY: reads RFLAGS and disables interrupts (ring 0).
        unsafe { asm!("pushfq", "pop {}", "cli", out(reg) rflags) };
        let me = u32::from(cpu_id()) + 1;
        if OWNER.load(Ordering::Relaxed) == me {
            return rflags | NESTED;
        }
        while OWNER
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        rflags
    }

    unsafe fn release(token: u64) {
        if token & NESTED == 0 {
            OWNER.store(0, Ordering::Release);
        }
        if token & RFLAGS_IF != 0 {
            // SAFETY: interrupts were enabled at acquire.
            unsafe { asm!("sti", options(nostack)) };
        }
    }
}

// ---------------------------------------------------------------------------
// 2. The manager.

/// Hits delivered to [`on_hit`].
static HITS: AtomicU64 = AtomicU64::new(0);

fn on_hit(_: &Sample) {
    HITS.fetch_add(1, Ordering::Relaxed);
}

/// The manager: two CPUs, up to 16 breakpoints, 4 tasks with pinned
/// breakpoints.
// SAFETY: this kernel runs at CPL 0 with DR7.GD clear, and nothing else uses
// DR0-DR7.
static HWBP: Manager<X86Backend<Cpu>, fn(&Sample), { CPUS as usize }, 16, 4> =
    Manager::new(unsafe { X86Backend::new() }, on_hit);

/// What the breakpoint watches.
static WATCHED: AtomicU64 = AtomicU64::new(0);

/// Entered by the bootloader in 64-bit mode, on a stack, interrupts off.
#[no_mangle]
extern "C" fn _start() -> ! {
    install_idt();
    // Discovery (four slots), then this CPU's registers cleared; the other
    // CPUs call `cpu_online` with their own number when they start.
    if HWBP.init(CPUS).is_err() || HWBP.cpu_online(cpu_id()).is_err() {
        halt();
    }
    let attr =
        BreakpointAttr::watch(WATCHED.as_ptr() as u64, 8, Access::WRITE).target(Target::AllCpus);
    if let Ok(reg) = HWBP.register(&attr) {
        apply(reg.sync);
    }
    WATCHED.store(1, Ordering::Relaxed); // a hit (a trap, after the store): on_hit runs
    halt()
}

// ---------------------------------------------------------------------------
// 3. The #DB exception.

/// What the CPU pushes for an exception without an error code.
#[repr(C)]
struct Frame {
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// RFLAGS.RF: the instruction breakpoint at RIP does not fault again.
const RFLAGS_RF: u64 = 1 << 16;

/// #DB: DR6 first (before anything could raise another #DB), then the
/// manager; the Resume says what the CPU must do.
#[no_mangle]
extern "C" fn debug_exception(frame: &mut Frame) {
    let cpu = cpu_id();
    let dr6 = HWBP.arch().read_dr6(cpu);
    let resume = HWBP.handle_exception(cpu, &X86Exception { dr6, ip: frame.rip });
    match resume.action {
        // A data breakpoint is a trap: the access is done.
        Action::Return => {}
        // An instruction breakpoint is a fault: without RF it would fault
        // again on the same instruction.
        Action::SetResumeFlag => frame.rflags |= RFLAGS_RF,
        // Arm only.
        Action::SingleStep => {}
    }
    if resume.pass_on {
        // Someone else's too (a debugger's single step, DR6.BS, or its own
        // registers): hand it on. This kernel has no debugger.
        halt();
    }
}

// The #DB stub: save the registers the Rust function may clobber (the CPU
// aligned RSP to 16 before pushing its 5-word frame, so after 9 pushes RSP is
// 16-aligned again for the call), pass a pointer to the CPU's frame, restore,
// IRETQ (which restores the possibly edited RFLAGS).
global_asm!(
    ".section .text.debug_stub, \"ax\"",
    ".global debug_stub",
    "debug_stub:",
    "push rax",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "cld",
    "lea rdi, [rsp + 72]",
    "call debug_exception",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "iretq",
);

extern "C" {
    fn debug_stub();
}

/// 256 interrupt gates of 16 bytes.
#[repr(C, align(16))]
struct Idt(UnsafeCell<[[u64; 2]; 256]>);

// SAFETY: written once by the boot CPU before any other CPU starts.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([[0; 2]; 256]));

/// Vector 1 (#DB): a present ring-0 64-bit interrupt gate to `debug_stub`
/// in the current code segment; then LIDT.
fn install_idt() {
    let handler = debug_stub as *const () as u64;
    let cs: u16;
    // SAFETY: reads the code segment selector.
    unsafe { asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack)) };
    let low = (handler & 0xffff)
        | (u64::from(cs) << 16)
        | (0x8e << 40) // present, DPL 0, 64-bit interrupt gate
        | ((handler >> 16) & 0xffff) << 48;
    let high = handler >> 32;
    // SAFETY: only the boot CPU runs here, before interrupts are enabled.
    unsafe { (*IDT.0.get())[1] = [low, high] };
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let pointer = Pointer {
        limit: (256 * 16 - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the IDT is static and holds a valid gate for every vector this
    // kernel can take (the others are not present).
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack)) };
}

// ---------------------------------------------------------------------------
// 4. Resync after a change.

/// Vector of the resync IPI.
const IPI_SYNC: u64 = 0xf0;

/// Run `sync` on every CPU `set` names: on this one directly, on the others
/// through an IPI whose handler calls [`ipi_sync`] there (only a CPU writes
/// its own debug registers). A caller that must know the breakpoint is armed
/// everywhere waits for the IPIs to be handled.
fn apply(set: CpuSet) {
    let me = cpu_id();
    for cpu in set.iter() {
        if cpu == me {
            let _ = HWBP.sync(cpu);
        } else {
            // x2APIC ICR (MSR 0x830): fixed delivery of IPI_SYNC to the CPU
            // whose x2APIC ID is `cpu`.
            let icr = (u64::from(cpu) << 32) | IPI_SYNC;
            // SAFETY: writing the ICR only sends the IPI (x2APIC enabled).
            unsafe {
                asm!("wrmsr", in("ecx") 0x830, in("eax") icr as u32, in("edx") (icr >> 32) as u32, options(nostack));
            }
        }
    }
}

/// The resync IPI's handler (called from vector IPI_SYNC, before the EOI):
/// this CPU's registers follow the manager.
#[no_mangle]
extern "C" fn ipi_sync() {
    let _ = HWBP.sync(cpu_id());
}

fn halt() -> ! {
    loop {
        // SAFETY: waits for an interrupt; no other effect.
        unsafe { asm!("hlt", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    halt()
}
