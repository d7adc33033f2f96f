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
//! use hwbp_core::Hwbp;
//!
//! // Up to 2 CPUs, 16 events, 4 tasks. SAFETY: we run at EL1 and nothing else
//! // touches the debug registers.
//! static HWBP: Hwbp<Aarch64Backend, (), 2, 16, 4> =
//!     Hwbp::new(unsafe { Aarch64Backend::aarch64() }, ());
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
//! use hwbp_core::{Action, Hwbp};
//!
//! // StepMethod::Mismatch on hardware (reserves the last breakpoint);
//! // StepMethod::Manual on QEMU 7.2, which has no mismatch breakpoints.
//! static HWBP: Hwbp<Aarch32Backend, (), 2, 16, 4> =
//!     Hwbp::new(unsafe { Aarch32Backend::aarch32(StepMethod::Manual) }, ());
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
//! out with `Hwbp::backend_cpu`.
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
pub mod encode;
pub mod esr;
pub mod event;
pub mod exception;
pub mod id;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod region;
pub mod step;
pub mod wcr;

pub use aarch32::{Aarch32Exception, AbortKind};
pub use backend::aarch32::{Aarch32Backend, Aarch32Regs};
pub use backend::aarch64::{Aarch64Backend, Aarch64Regs};
pub use backend::{ArmBackend, ArmCpuState, Bank, DebugRegs, StepMethod};
pub use display::SlotDisplay;
pub use encode::{ArmSlot, Encoder, Flavour, AARCH32_KERNEL_BASE};
pub use esr::Aarch64Exception;
pub use event::DebugEvent;
pub use id::{Dbgdidr, DebugArch, DebugVer, IdAa64Dfr0};
