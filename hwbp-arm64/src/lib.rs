//! hwbp backend for the Arm debug registers: AArch64 (`DBGB*_EL1`,
//! `DBGW*_EL1`) and AArch32 / Armv7 (CP14 `DBGB*`, `DBGW*`).
//!
//! # What is here
//!
//! | Concept | Module |
//! |---|---|
//! | Slot discovery (`ID_AA64DFR0_EL1`, `DBGDIDR`) | [`id`] |
//! | Typed control registers | [`bcr`], [`wcr`] |
//! | Validation and encoding ([`Encoder`], pure, host-usable) | [`encode`], [`region`] |
//! | Exception decoding (`ESR_ELx`; `IFSR`/`DFSR`/`DBGDSCR.MOE`) | [`esr`], [`aarch32`], [`event`] |
//! | Watchpoint attribution (exact first, else closest) | hwbp-core's [`hwbp_core::attribution`] |
//! | Step-over state machine | [`step`] |
//! | Software model of the hardware (feature `model`) | `model` |
//! | The [`hwbp_core::Arch`] implementation ([`ArmBackend`]) and register access | [`backend`] |
//! | What the exception handler hands in ([`Aarch64Exception`], [`Aarch32Exception`]) | [`exception`] |
//!
//! # Entry points for firmware and kernels
//!
//! **AArch64** (EL1), with hwbp-core's manager in a `static`:
//! ```no_run
//! use hwbp_arm64::{backend::aarch64::SPSR_SS, Aarch64Backend, Aarch64Exception};
//! use hwbp_core::Manager;
//!
//! // Up to 2 CPUs, 16 events, 4 tasks. SAFETY: we run at EL1 and nothing else
//! // touches the debug registers.
//! static HWBP: Manager<Aarch64Backend, (), 2, 16, 4> =
//!     Manager::new(unsafe { Aarch64Backend::aarch64() }, ());
//!
//! fn boot() -> Result<(), hwbp_core::Error> {
//!     HWBP.init(2) // discovery: ID_AA64DFR0_EL1 (BRPs, WRPs)
//! }
//!
//! // On each CPU, once its exception vector is installed: OSLAR_EL1 = 0,
//! // OSDLR_EL1 = 0, MDSCR_EL1.MDE|KDE, PSTATE.D cleared, every slot cleared.
//! fn cpu_up(cpu: u16) -> Result<(), hwbp_core::Error> {
//!     HWBP.cpu_online(cpu)
//! }
//!
//! // Synchronous exception vector, ESR_EL1.EC in 0x30..=0x35. Returns whether
//! // the next handler (a debugger: BRK, its own step or registers) must see
//! // the exception too.
//! fn on_debug_exception(cpu: u16, esr: u64, far: u64, elr: u64, spsr: &mut u64) -> bool {
//!     let resume = HWBP.handle_exception(cpu, &Aarch64Exception { esr, far, elr });
//!     if resume.single_steps() {
//!         *spsr |= SPSR_SS; // step over the instruction
//!     }
//!     resume.pass_on
//! }
//! # boot().unwrap(); cpu_up(0).unwrap();
//! # let mut spsr = 0; on_debug_exception(0, 0, 0, 0, &mut spsr);
//! ```
//!
//! **AArch32 / Armv7** (PL1, monitor debug mode):
//! ```no_run
//! use hwbp_arm64::{AbortKind, Aarch32Backend, Aarch32Exception, StepMethod};
//! use hwbp_core::{Action, Manager};
//!
//! // StepMethod::Mismatch on hardware (reserves the last breakpoint);
//! // StepMethod::Manual on QEMU 7.2, which has no mismatch breakpoints.
//! static HWBP: Manager<Aarch32Backend, (), 2, 16, 4> =
//!     Manager::new(unsafe { Aarch32Backend::aarch32(StepMethod::Manual) }, ());
//!
//! // init reads DBGDIDR; cpu_online: DBGOSLAR, DBGVCR = 0,
//! // DBGDSCRext.MDBGen, every slot cleared.
//! # fn boot() -> Result<(), hwbp_core::Error> {
//! HWBP.init(2)?;
//! HWBP.cpu_online(0)?;
//! # Ok(()) }
//!
//! // Data abort handler: DFSR, DFAR, DBGDSCRext (MRC p14,0,Rt,c0,c2,2),
//! // pc = LR_abt - 8. Prefetch abort: IFSR, pc = LR_abt - 4. DFSR.WnR is
//! // UNKNOWN for watchpoints: `write` is whatever the handler knows (here
//! // nothing; decoding the instruction at pc would tell). thumb = SPSR_abt.T.
//! fn on_data_abort(cpu: u16, dfsr: u32, dfar: u32, dscr: u32, pc: u32, spsr: u32) -> bool {
//!     let thumb = spsr & (1 << 5) != 0;
//!     let raw = Aarch32Exception { kind: AbortKind::Data, fsr: dfsr, far: dfar, dscr, pc, write: None, thumb };
//!     let resume = HWBP.handle_exception(cpu, &raw);
//!     // Manual: on Action::SingleStep the slots stay disabled until the
//!     // instruction has run; then call complete_step (for example after
//!     // emulating it, or at the next point the firmware controls).
//!     let _stepping = resume.action == Action::SingleStep;
//!     resume.is_ours()
//! }
//! fn after_the_instruction(cpu: u16) -> Result<bool, hwbp_core::Error> {
//!     Ok(HWBP.arch().complete_step(HWBP.backend_cpu(cpu)?))
//! }
//! # boot().unwrap(); on_data_abort(0, 0, 0, 0, 0, 0); after_the_instruction(0).unwrap();
//! ```
//!
//! The step-over state lives per CPU in an [`ArmCpuState`], which the manager
//! keeps (one per CPU, `CPUS` written once, in the manager's type) and hands
//! out with `Manager::backend_cpu`.
//!
//! # At EL2 (hypervisors)
//!
//! [`el2`] runs the backend at EL2 (with or without VHE): what the embedder
//! sets (`MDCR_EL2.TDE` or `HCR_EL2.TGE`, `MDSCR_EL1.KDE`/`MDE`,
//! `PSTATE.D`) is its porting guide; [`vcpu`] keeps a guest's debug
//! registers, switched lazily, apart from the host's.
//!
//! # Porting guide: hwbp in your own kernel
//!
//! A minimal kernel integration of each step below is in the repository:
//! `examples/minimal-aarch64` (AArch64, EL1) and `examples/minimal-armv7`
//! (Armv7-A, PL1), each built and linked for its bare-metal target
//! (`aarch64-unknown-none`, `armv7a-none-eabi`) by `cargo xtask test`; the
//! QEMU boards `examples/qemu-aarch64` and `examples/qemu-armv7` run the
//! same pieces on (emulated) hardware.
//!
//! ## 1. Dependencies
//!
//! ```toml
//! [dependencies]
//! hwbp-core = "0.1"
//! hwbp-arm64 = "0.1"
//! # You provide the critical section (step 2); the restore state is what
//! # your acquire returns: the saved DAIF (AArch64) or CPSR (AArch32).
//! critical-section = { version = "1", features = ["restore-state-u64"] }
//! ```
//!
//! ## 2. The critical section
//!
//! hwbp-core serializes every change to the manager with the
//! [`critical-section`](https://docs.rs/critical-section) crate, and
//! hwbp-core does not (cannot) pick an implementation: the kernel provides one
//! with `critical_section::set_impl!`. Without it the link fails with
//! `undefined symbol: _critical_section_1_0_acquire`. The implementation must
//!
//! * mask IRQ and FIQ on the calling CPU (`DAIFSet #3`; AArch32 `cpsid if`),
//!   so no interrupt handler on this CPU enters the manager halfway through
//!   a change;
//! * on SMP, also exclude the other CPUs: a lock that one CPU holds at a
//!   time, taken after masking (masking alone only protects one CPU);
//! * nest on its own CPU: debug exceptions are not masked by IRQ masking,
//!   and a debug exception taken inside a critical section may call into the
//!   manager (its handler may unregister, for example), which acquires again
//!   on the same CPU: a plain spinlock would deadlock there. Return a token
//!   that marks the nested acquire and keep the lock until the outer release;
//! * never mask or restore the debug mask (`PSTATE.D`, DAIF bit 9):
//!   `cpu_online` clears `PSTATE.D` inside a critical section (the backend's
//!   enable sequence), and a release that wrote back the whole saved DAIF
//!   would set it again, after which no breakpoint, watchpoint or step
//!   exception is ever taken. Unmask only I and F, and only if they were
//!   unmasked at acquire;
//! * be a compiler barrier (no `nomem` on the masking `asm!`).
//!
//! The AArch64 implementation of `examples/minimal-aarch64`:
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
//!         let daif: u64;
//!         asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nostack));
//!         let me = u32::from(cpu_id()) + 1;
//!         if OWNER.load(Ordering::Relaxed) == me {
//!             return daif | NESTED; // nested on this CPU: keep the lock
//!         }
//!         while OWNER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
//!             core::hint::spin_loop();
//!         }
//!         daif
//!     }
//!
//!     unsafe fn release(token: u64) {
//!         if token & NESTED == 0 {
//!             OWNER.store(0, Ordering::Release);
//!         }
//!         // Only I and F, and only if they were unmasked: never PSTATE.D.
//!         if token & (1 << 7) == 0 { asm!("msr daifclr, #2", options(nostack)); }
//!         if token & (1 << 6) == 0 { asm!("msr daifclr, #1", options(nostack)); }
//!     }
//! }
//! ```
//!
//! The AArch32 one is the same with `mrs {}, cpsr` + `cpsid if` and
//! `cpsie i` / `cpsie f` (`restore-state-u32`). On a single-CPU system the
//! lock can go, the nesting rule then holds by itself.
//!
//! ## 3. The manager and bring-up
//!
//! Put the manager in a `static` (see [Entry points](#entry-points-for-firmware-and-kernels)):
//! `init(nr_cpus)` once on the boot CPU (discovery from `ID_AA64DFR0_EL1` /
//! `DBGDIDR`), then `cpu_online(cpu)` on every CPU, on that CPU, after its
//! exception vector is installed: it unlocks the OS lock, enables debug
//! exceptions (`MDSCR_EL1.MDE|KDE` and clears `PSTATE.D`; AArch32
//! `DBGDSCRext.MDBGen`) and clears every slot, whose reset value is UNKNOWN.
//!
//! ## 4. After a change: `sync` on the CPUs it names
//!
//! `register`, `modify`, `enable`, `disable`, `unregister`, `fork`, `exit`
//! and the reservations return a `CpuSet`: the CPUs whose registers no
//! longer match the manager. A CPU only ever writes its own debug registers,
//! so call `sync(cpu)` on each of them, on that CPU: directly for the
//! calling CPU, and through an IPI for the others (a GIC SGI whose handler
//! calls `sync(this_cpu)`). The IPI handler needs nothing else: `sync` takes
//! the critical section and writes only the registers that changed. A caller
//! that must know the breakpoint is armed everywhere (or gone everywhere,
//! before freeing what a handler uses) waits for those IPIs to complete.
//!
//! ## 5. The exception vector and `Resume`
//!
//! **AArch64**: in the synchronous exception vectors of the current EL
//! (`VBAR_EL1 + 0x200`) and of EL0 (`+ 0x400`), take `ESR_EL1.EC` 0x30..=0x35
//! (breakpoint, software step and watchpoint, from a lower or the same EL)
//! to `handle_exception(cpu, &Aarch64Exception { esr, far, elr })`, with the
//! saved `ELR_EL1`/`SPSR_EL1` in memory so they can be changed, and `ERET`
//! with them. **AArch32**: in the prefetch and data abort handlers, take the
//! aborts whose FSR status is `0b00010` (debug event) to
//! `handle_exception` with an [`Aarch32Exception`] (`DFSR`/`DFAR` or
//! `IFSR`/`IFAR`, `DBGDSCRext`, the aborted instruction's address
//! `LR_abt - 8` / `- 4`, `SPSR_abt.T`), and return to that instruction.
//!
//! The returned `Resume` says what to do:
//!
//! * `resume.action`: [`Action::Return`](hwbp_core::Action::Return) — nothing;
//!   [`Action::SingleStep`](hwbp_core::Action::SingleStep) — AArch64: set
//!   [`SPSR_SS`](backend::aarch64::SPSR_SS) (bit 21) in the saved `SPSR_EL1`
//!   before `ERET`; AArch32 with [`StepMethod::Mismatch`]: nothing (the
//!   mismatch breakpoint is armed); with [`StepMethod::Manual`]: run the
//!   instruction by your own means, then call
//!   [`ArmBackend::complete_step`]. `SetResumeFlag` is x86's and never
//!   comes from this backend.
//! * `resume.pass_on`: the exception is (also) someone else's — a `BRK`, a
//!   step or registers of a debugger: hand it to the next handler after
//!   doing the action. `resume.is_ours()` is false when none of it was the
//!   breakpoint layer's.
//!
//! ## 6. The step-over protocol
//!
//! Arm breakpoints and watchpoints fire *before* the instruction or access
//! completes, so returning to it would fire again at once. The backend
//! disables the slots that fired on this CPU and arms a single step
//! (`MDSCR_EL1.SS`; the saved `SPSR_EL1.SS` is the embedder's part, above).
//! After `ERET` the instruction runs once and a software-step exception (EC
//! 0x32/0x33) follows: hand it to `handle_exception` like any other debug
//! exception; the backend re-enables the slots and answers `Return` (ours).
//! On AArch32, [`StepMethod::Mismatch`] does the same with an address
//! mismatch breakpoint on the last breakpoint register (user code only),
//! and [`StepMethod::Manual`] leaves the slots disabled until
//! [`ArmBackend::complete_step`]. The step state is per CPU
//! ([`ArmCpuState`], kept by the manager), so the step must complete on the
//! CPU that took the hit: do not migrate the task in between.
//!
//! # Host use
//!
//! [`Encoder`] validates and encodes without hardware (`hwbp-linux` uses it on
//! arm64), and `ArmBackend<model::Model>` (feature `model`) runs the whole
//! backend against the software model.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[macro_use]
mod ctrl;

pub mod aarch32;
pub mod backend;
pub mod bcr;
mod display;
pub mod el2;
pub mod encode;
pub mod esr;
pub mod event;
pub mod exception;
pub mod id;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod region;
pub mod step;
pub mod vcpu;
pub mod wcr;

pub use aarch32::{Aarch32Exception, AbortKind};
pub use backend::aarch32::{Aarch32Backend, Aarch32Regs};
pub use backend::aarch64::{Aarch64Backend, Aarch64Regs};
pub use backend::{ArmBackend, ArmCpuState, Bank, DebugRegs, StepMethod, SuspendedStep};
pub use display::SlotDisplay;
pub use encode::{ArmSlot, Encoder, Flavour, AARCH32_KERNEL_BASE};
pub use esr::Aarch64Exception;
pub use event::DebugEvent;
pub use id::{Dbgdidr, DebugArch, DebugVer, IdAa64Dfr0};
