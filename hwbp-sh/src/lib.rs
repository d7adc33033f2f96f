//! hwbp backend for the SuperH User Break Controller (UBC).
//!
//! * [`variant`]: which UBC the running part has (SH-4 channels A/B, or
//!   SH-4A channels 0..n), found at run time from PVR/PRR or by a probe.
//! * [`sh4a`], [`sh4`]: the registers of each layout, with typed fields.
//! * [`encode`]: generic requests → [`UbcSlot`] channel settings (pure).
//! * [`decode`]: the user break exception and its match flags.
//! * [`backend`]: [`ShBackend`], the [`hwbp_core::Arch`] implementation over a
//!   [`UbcBus`], and its per-CPU state [`ShCpuState`].
//! * [`exception`]: [`ShException`], what the exception handler hands in.
//! * `model` (feature `model`): an in-memory register file and a
//!   behavioural UBC model for host verification (no Rust compiler targets
//!   SuperH). No backend code path uses it.
//!
//! Every channel serves instruction and data breakpoints alike, so the slot
//! counts are [`hwbp_core::SlotCounts::Shared`] with the channel count of
//! the identified part.
//!
//! # Example (on the host, against the register-file model)
//!
//! ```
//! use hwbp_core::{Access, Arch, BreakpointAttr, Fired, Image, Pool};
//! use hwbp_sh::model::{BusCycle, Model};
//! use hwbp_sh::{identify, Part, ShBackend, ShCpuState, ShException};
//!
//! // An SH7785 (PVR 0x1030_0700) as the in-memory register file sees it.
//! let pvr = 0x1030_0700;
//! let regs = Model::new(identify(pvr, 0)?, pvr, 0);
//! // SAFETY: the bus is the in-memory register file, owned here.
//! let ubc = unsafe { ShBackend::new(&regs) };
//! let counts = ubc.discover()?; // what Manager::init does
//! assert_eq!(ubc.variant().part, Part::Sh7785);
//! // The per-CPU state the manager would keep.
//! let cpu0 = ShCpuState::new();
//! ubc.init_cpu(0, &cpu0)?;
//!
//! // Watch writes to a longword; the core would normally do this part.
//! let enc = ubc.encode(&BreakpointAttr::watch(0x0c00_1000, 4, Access::WRITE))?;
//! let mut want = Image::empty(counts);
//! want.pools[0][0] = enc.pieces[0].slot;
//! ubc.install(0, &cpu0, &Image::empty(counts), &want);
//!
//! // The UBC model sees a longword store there and raises a user break.
//! let out = regs.cycle(BusCycle::Write { pc: 0x8c00_0100, addr: 0x0c00_1000, size: 4 }, 0);
//! assert!(out.brk);
//! let d = ubc.decode(0, &cpu0, &ShException::user_break(out.spc));
//! assert_eq!(d.fired, Fired::Slots { pool: Pool(0), mask: 1 });
//! # Ok::<(), hwbp_core::Error>(())
//! ```
//!
//! # Porting guide: hwbp in your own kernel
//!
//! No Rust compiler targets SuperH yet, so unlike the x86 and Arm guides
//! there is no minimal kernel built for the CPU itself: the exception entry
//! below is compiled on the host (`no_run`, against [`Mmio`]), and the whole
//! backend runs in the host tests against the register-file and UBC model.
//!
//! ## 1. Dependencies
//!
//! ```toml
//! [dependencies]
//! hwbp-core = "0.1"
//! hwbp-sh = "0.1"
//! # You provide the critical section (step 2); its restore state is the
//! # saved SR.
//! critical-section = { version = "1", features = ["restore-state-u32"] }
//! ```
//!
//! ## 2. The critical section
//!
//! hwbp-core serializes every change to the manager with the
//! [`critical-section`](https://docs.rs/critical-section) crate; the kernel
//! provides the implementation with `critical_section::set_impl!` (without
//! one the link fails with `undefined symbol: _critical_section_1_0_acquire`).
//! It must
//!
//! * raise SR.IMASK to 15 on the calling CPU and restore the previous mask
//!   at release. Do not use SR.BL for it: while BL is set the UBC's user
//!   break is not accepted, and on SH-4 a general exception (a TLB miss, say)
//!   taken with BL set is a manual reset;
//! * on an SMP part (SH-4A multi-core), also exclude the other CPUs: a lock
//!   that one CPU holds at a time, taken after masking;
//! * nest on its own CPU: IMASK does not mask the user break, and a break
//!   taken inside a critical section may call into the manager (its handler
//!   may unregister, for example), which acquires again on the same CPU.
//!   Mark the nested acquire in the token and keep the lock until the outer
//!   release;
//! * be a compiler barrier.
//!
//! ```ignore
//! struct KernelCs;
//! critical_section::set_impl!(KernelCs);
//!
//! unsafe impl critical_section::Impl for KernelCs {
//!     unsafe fn acquire() -> u32 {
//!         let sr = read_sr();                 // stc sr, Rn
//!         write_sr(sr | 0xf0);                // IMASK = 15; BL untouched
//!         sr                                  // (+ SMP lock and NESTED mark)
//!     }
//!     unsafe fn release(sr: u32) {
//!         let now = read_sr();
//!         write_sr((now & !0xf0) | (sr & 0xf0)); // only IMASK back
//!     }
//! }
//! ```
//!
//! ## 3. The manager and bring-up
//!
//! The UBC is reached through a [`UbcBus`]: [`Mmio`] for the real
//! registers (P4 area, privileged mode). Clear the UBC's module-stop bit
//! first (see [`ShBackend`], "Module clock"). `init(nr_cpus)` once
//! (discovery from PVR/PRR, else a probe; or name the part with
//! [`ShBackend::with_variant`]), then `cpu_online(cpu)` on every CPU, on
//! that CPU.
//!
//! ## 4. After a change: `sync` on the CPUs it names
//!
//! `register`, `modify`, `enable`, `disable`, `unregister`, `fork`, `exit`
//! and the reservations return a `CpuSet`: call `sync(cpu)` on each of those
//! CPUs, on that CPU — directly for the calling CPU, through an IPI whose
//! handler calls `sync(this_cpu)` for the others. A caller that must know the
//! breakpoint is armed (or gone) everywhere waits for those IPIs.
//!
//! ## 5. The exception vector and `Resume`
//!
//! In the general exception handler (VBR + 0x100), EXPEVT `0x1E0` is the
//! user break ([`variant::USER_BREAK_EXPEVT`]); hand EXPEVT and SPC (and the
//! operand address, if you decode it from the instruction at SPC) to the
//! manager, then `RTE`:
//!
//! ```no_run
//! use hwbp_core::{Action, Manager};
//! use hwbp_sh::{Mmio, ShBackend, ShException};
//!
//! // SAFETY: privileged, the P4 UBC registers, nothing else uses the UBC.
//! static HWBP: Manager<ShBackend<Mmio>> = Manager::new(unsafe { ShBackend::new(Mmio) }, ());
//!
//! /// From the general exception vector; returns whether the exception was
//! /// the breakpoint layer's alone (else hand it on: a TRAPA, another
//! /// exception, a debugger's break).
//! fn on_general_exception(cpu: u16, expevt: u32, spc: u32) -> bool {
//!     let resume = HWBP.handle_exception(cpu, &ShException { expevt, spc, data_addr: None });
//!     // The UBC steps over before-execution breaks itself (below): the
//!     // CPU only ever has to return.
//!     debug_assert_eq!(resume.action, Action::Return);
//!     resume.is_ours() && !resume.pass_on
//! }
//! # on_general_exception(0, 0x1e0, 0x8c00_0000);
//! ```
//!
//! `resume.action` is always `Return` on SuperH; `resume.pass_on` (with
//! `is_ours()` false) marks an exception that is not a user break of a
//! channel this backend drives: hand it to the next handler.
//!
//! ## 6. The step-over protocol
//!
//! A before-execution instruction break returns to the instruction itself,
//! which would break again at once. The backend handles it with the UBC:
//! the fired channel is switched to break *after* execution and the
//! instruction's PC is kept in the CPU's [`ShCpuState`]; the next break of
//! that channel ends the step and switches it back. Nothing is asked of the
//! embedder, but the step must complete on the CPU that took the break (do
//! not migrate the task in between); see [`ShBackend`] for the exact rules
//! on ranges and branches.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod bus;
pub mod decode;
mod display;
pub mod encode;
pub mod exception;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod sh4;
pub mod sh4a;
pub mod slot;
pub mod variant;

pub use backend::{ShBackend, ShCpuState};
pub use bus::{Mmio, UbcBus};
pub use encode::{Encoder, RangePolicy, SizePolicy};
pub use exception::ShException;
pub use slot::{BreakTiming, BusCommand, CycleSelect, OperandSize, UbcSlot};
pub use variant::{discover, identify, probe, Layout, Part, Variant};
