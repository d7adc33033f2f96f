//! hwbp backend for the x86 debug registers DR0–DR7 (x86 and x86_64).
//!
//! The same layout as every hwbp arch crate:
//!
//! | concept | here |
//! |---|---|
//! | the [`hwbp_core::Arch`] implementation | [`backend::X86Backend`] |
//! | what the #DB handler hands in | [`exception::X86Exception`] |
//! | validation and encoding (pure, host-usable) | [`encode::Encoder`] |
//! | software model of the hardware (feature `model`) | `model` (`Model`, `ModelRegs`) |
//!
//! - [`Dr7`], [`Dr6`]: typed register values (Intel SDM vol. 3, §18.2).
//! - [`Encoder`]: validation (the core's generic rules, then the x86 ones) and
//!   encoding of generic [`hwbp_core::BreakpointAttr`] requests, including
//!   splitting a region into the fewest naturally aligned pieces
//!   ([`hwbp_core::region`]). Usable anywhere, for example by a ptrace
//!   implementation.
//! - [`X86Backend`]: over [`Cpu`](regs) it drives the real registers
//!   (ring 0); over `model::ModelRegs` it drives the software model of the
//!   debug hardware, so the same code is tested on the host.
//! - [`RegisterImage`], [`Encoder::import`]: raw DR0–DR3/DR7 images in and out,
//!   losslessly.
//!
//! See `README.md` for the rules and how they are verified.
//!
//! # Porting guide: hwbp in your own kernel
//!
//! A minimal kernel integration of each step below is in the repository,
//! `examples/minimal-x86_64`, built and linked for `x86_64-unknown-none` by
//! `cargo xtask test`; the QEMU board `examples/qemu-x86_64` runs the same
//! pieces on (emulated) hardware.
//!
//! ## 1. Dependencies
//!
//! ```toml
//! [dependencies]
//! hwbp-core = "0.1"
//! hwbp-x86 = "0.1"
//! # You provide the critical section (step 2); its restore state is the
//! # saved RFLAGS.
//! critical-section = { version = "1", features = ["restore-state-u64"] }
//! ```
//!
//! ## 2. The critical section
//!
//! hwbp-core serializes every change to the manager with the
//! [`critical-section`](https://docs.rs/critical-section) crate, and the
//! kernel provides the implementation with `critical_section::set_impl!`
//! (without one the link fails with `undefined symbol:
//! _critical_section_1_0_acquire`). The implementation must
//!
//! * disable interrupts on the calling CPU (`pushfq; pop; cli`), restoring
//!   IF at release only if it was set at acquire;
//! * on SMP, also exclude the other CPUs: a lock that one CPU holds at a
//!   time, taken after `cli`;
//! * nest on its own CPU: `cli` does not mask #DB (or NMI), and a #DB taken
//!   inside a critical section may call into the manager (its handler may
//!   unregister, for example), which acquires again on the same CPU: a plain
//!   spinlock would deadlock. Mark the nested acquire in the token (RFLAGS
//!   bit 63 is reserved, so free) and keep the lock until the outer release;
//! * be a compiler barrier (no `nomem` on the `asm!`).
//!
//! The implementation of `examples/minimal-x86_64`:
//!
//! ```ignore
//! static OWNER: AtomicU32 = AtomicU32::new(0); // 0 = free, else CPU + 1
//! const NESTED: u64 = 1 << 63;
//!
//! struct KernelCs;
//! critical_section::set_impl!(KernelCs);
//!
//! unsafe impl critical_section::Impl for KernelCs {
//!     unsafe fn acquire() -> u64 {
//!         let rflags: u64;
//!         asm!("pushfq", "pop {}", "cli", out(reg) rflags);
//!         let me = u32::from(cpu_id()) + 1;
//!         if OWNER.load(Ordering::Relaxed) == me {
//!             return rflags | NESTED; // nested on this CPU: keep the lock
//!         }
//!         while OWNER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
//!             core::hint::spin_loop();
//!         }
//!         rflags
//!     }
//!
//!     unsafe fn release(token: u64) {
//!         if token & NESTED == 0 {
//!             OWNER.store(0, Ordering::Release);
//!         }
//!         if token & (1 << 9) != 0 {
//!             asm!("sti", options(nostack)); // IF was set at acquire
//!         }
//!     }
//! }
//! ```
//!
//! ## 3. The manager and bring-up
//!
//! ```ignore
//! // SAFETY: ring 0, DR7.GD clear, nothing else uses DR0-DR7.
//! static HWBP: Manager<X86Backend<Cpu>, fn(&Sample), 2, 16, 4> =
//!     Manager::new(unsafe { X86Backend::new() }, on_hit);
//! ```
//!
//! `init(nr_cpus)` once on the boot CPU (four slots on every x86 CPU), then
//! `cpu_online(cpu)` on every CPU, on that CPU, after its IDT is loaded: it
//! disables every slot (DR7's slot fields, keeping its other bits) and
//! clears DR6.
//!
//! ## 4. After a change: `sync` on the CPUs it names
//!
//! `register`, `modify`, `enable`, `disable`, `unregister`, `fork`, `exit`
//! and the reservations return a `CpuSet`: the CPUs whose registers no
//! longer match the manager. A CPU only ever writes its own debug
//! registers, so call `sync(cpu)` on each, on that CPU: directly for the
//! calling CPU, through an IPI for the others (a fixed-delivery APIC IPI
//! whose handler calls `sync(this_cpu)` before its EOI). `sync` takes the
//! critical section and writes only the registers that changed. A caller
//! that must know the breakpoint is armed everywhere (or gone everywhere,
//! before freeing what a handler uses) waits for those IPIs to complete.
//!
//! ## 5. The #DB vector and `Resume`
//!
//! IDT vector 1 (an interrupt gate, so IF is clear in the handler): read DR6
//! first ([`X86Backend::read_dr6`], before anything can raise another #DB),
//! then `handle_exception(cpu, &X86Exception { dr6, ip: saved_rip })`, and
//! `IRETQ` with the saved frame, which the `Resume` may change:
//!
//! * `resume.action`: [`Action::Return`](hwbp_core::Action::Return) —
//!   nothing (data breakpoints are traps: the access is done);
//!   [`Action::SetResumeFlag`](hwbp_core::Action::SetResumeFlag) — set
//!   RFLAGS.RF (bit 16) in the saved RFLAGS: an instruction breakpoint is a
//!   fault, and without RF it would fault again on the same instruction.
//!   `SingleStep` is Arm's and never comes from this backend.
//! * `resume.pass_on`: the #DB is (also) someone else's — a debugger's
//!   single step (DR6.BS, RFLAGS.TF), a task-switch trap, or a slot the
//!   debugger reserved: hand it to the next handler after doing the action.
//!   `resume.is_ours()` is false when none of it was the breakpoint layer's.
//!
//! The backend clears DR6 in the decode (the processor never does).
//!
//! ## 6. No step-over
//!
//! x86 needs none: data breakpoints trap after the access, and RF lets a
//! faulting instruction breakpoint's instruction run once. Nothing is
//! disabled between hits, so the step-over state of the other backends has
//! no counterpart here (the backend's per-CPU state is `()`).
//!
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
mod display;
pub mod dr6;
pub mod dr7;
pub mod encode;
pub mod exception;
pub mod image;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod regs;
pub mod slot;

pub use backend::{X86Backend, X86CpuState};
pub use dr6::Dr6;
pub use dr7::{Condition, Dr7, Size, SlotEnable};
pub use encode::{Encoder, Mode, RegionPolicy, SLOTS};
pub use exception::X86Exception;
pub use image::{Imported, ImportedSlot, RegisterImage};
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub use regs::Cpu;
pub use regs::{DebugReg, DebugRegs};
pub use slot::DrSlot;
