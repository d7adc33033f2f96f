//! The contract between the generic core and one CPU family's debug hardware.
//!
//! An [`Arch`] implementation only parses, encodes, installs and decodes; the
//! core decides what may be on the hardware (the constraint table) and what is
//! on it now (the scheduler). This split is the one Linux makes between
//! `kernel/events/hw_breakpoint.c` and `arch/*/kernel/hw_breakpoint.c`.

use crate::{Access, BpType, BreakpointAttr, Error};
use heapless::Vec;

/// Compile-time upper bound on the registers of one pool (Arm allows 16
/// breakpoints and 16 watchpoints).
pub const MAX_SLOTS: usize = 16;

/// How many debug registers a CPU has, as discovered at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotCounts {
    /// Instruction and data breakpoints share one pool of registers (x86, SuperH).
    Shared(u8),
    /// Instruction and data breakpoints have separate registers (Arm).
    Separate {
        /// Instruction breakpoint registers.
        inst: u8,
        /// Data watchpoint registers.
        data: u8,
    },
}

impl SlotCounts {
    /// Number of pools: 1 when shared, 2 when separate.
    pub const fn pools(self) -> usize {
        match self {
            SlotCounts::Shared(_) => 1,
            SlotCounts::Separate { .. } => 2,
        }
    }

    /// The pool a breakpoint type is counted in.
    pub const fn pool_of(self, ty: BpType) -> Pool {
        match (self, ty) {
            (SlotCounts::Shared(_), _) => Pool(0),
            (SlotCounts::Separate { .. }, BpType::Inst) => Pool(0),
            (SlotCounts::Separate { .. }, BpType::Data) => Pool(1),
        }
    }

    /// Registers in `pool` (0 for a pool that does not exist).
    pub const fn slots(self, pool: Pool) -> u8 {
        match (self, pool.0) {
            (SlotCounts::Shared(n), 0) => n,
            (SlotCounts::Separate { inst, .. }, 0) => inst,
            (SlotCounts::Separate { data, .. }, 1) => data,
            _ => 0,
        }
    }

    /// Check that every pool has at least one register and at most
    /// [`MAX_SLOTS`].
    pub fn validate(self) -> Result<(), Error> {
        let ok = |n: u8| n >= 1 && usize::from(n) <= MAX_SLOTS;
        let good = match self {
            SlotCounts::Shared(n) => ok(n),
            SlotCounts::Separate { inst, data } => ok(inst) && ok(data),
        };
        if good {
            Ok(())
        } else {
            Err(Error::NoDebugHardware)
        }
    }
}

/// Index of a register pool: 0 for the shared pool or the instruction pool, 1 for
/// the data pool when pools are separate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pool(pub u8);

impl Pool {
    /// As an array index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Whether an address range lies in user or kernel space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddressSpace {
    /// Entirely in user space.
    User,
    /// At least partly in kernel space.
    Kernel,
}

/// One register's worth of an encoded request: the value to put in one slot, and
/// the addresses that the hardware will actually match with it (which can be
/// larger than the requested region, for example a whole Arm doubleword or a
/// masked range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Piece<S> {
    /// The slot value (register image) that enables this piece.
    pub slot: S,
    /// First byte the hardware matches.
    pub hw_addr: u64,
    /// Number of bytes the hardware matches.
    pub hw_len: u64,
}

/// A request encoded for the hardware: one piece per register it needs.
/// Its weight is the number of pieces.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encoding<S> {
    /// The breakpoint type, which selects the pool.
    pub ty: BpType,
    /// The registers, at least one.
    pub pieces: Vec<Piece<S>, MAX_SLOTS>,
}

impl<S> Encoding<S> {
    /// How many registers the request needs.
    pub fn weight(&self) -> u8 {
        // MAX_SLOTS is 16, so the length always fits.
        self.pieces.len() as u8
    }
}

/// The desired or current contents of every slot of one CPU.
///
/// Pool `p`'s registers are `pools[p]`, indexed by physical slot number; a
/// slot that holds `S::default()` is disabled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Image<S> {
    /// Per pool, the value of each register.
    pub pools: [Vec<S, MAX_SLOTS>; 2],
}

impl<S: Copy + Default> Image<S> {
    /// An image with every slot disabled, sized for `counts`.
    pub fn empty(counts: SlotCounts) -> Self {
        let mut pools = [Vec::new(), Vec::new()];
        for (p, regs) in pools.iter_mut().enumerate() {
            // Cannot fail: slots() is at most MAX_SLOTS after validation and
            // truncated here otherwise.
            let n = usize::from(counts.slots(Pool(p as u8))).min(MAX_SLOTS);
            regs.resize(n, S::default()).ok();
        }
        Image { pools }
    }

    /// The value of one slot, if it exists.
    pub fn get(&self, pool: Pool, slot: usize) -> Option<S> {
        self.pools.get(pool.index())?.get(slot).copied()
    }
}

/// Which slots a debug exception reports as fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fired {
    /// The exception was not caused by a breakpoint slot (single-step, software
    /// breakpoint, a step-over completing, …).
    None,
    /// The hardware says exactly which slots fired (x86 DR6.B0–B3, SH match flags).
    Slots {
        /// The pool the bits refer to.
        pool: Pool,
        /// Bit `n` set: slot `n` fired.
        mask: u32,
    },
    /// The hardware does not say which slot fired (Arm): the core matches the
    /// reported address against every occupied slot of the pool — slots whose
    /// event region contains the address first, else the closest one.
    ByAddress {
        /// The pool to search.
        pool: Pool,
    },
    /// A slot of the pool fired, but the hardware says neither which one nor
    /// what address was accessed (Arm with `ESR_ELx.FnV` set and no
    /// watchpoint number). The core delivers the hit only when exactly one
    /// breakpoint occupies the pool (of the access kind, when it is known)
    /// and counts it as stray otherwise: it is never credited to a breakpoint
    /// that may not have fired. [`Decoded::addr`] is meaningless with it; the
    /// sample reports the start of the breakpoint's region.
    Unattributed {
        /// The pool the slot belongs to.
        pool: Pool,
    },
}

/// What the CPU must do to return from the debug exception without losing the
/// next hit or looping on this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resume {
    /// Return normally (x86 data breakpoints are traps: the access completed).
    Return,
    /// Set the resume flag (x86 RFLAGS.RF) in the saved flags before returning, so
    /// the faulting instruction breakpoint does not fire again.
    SetResumeFlag,
    /// The backend disabled the fired slots and armed a single step; the saved
    /// state must have its step bit set (Arm SPSR.SS) so the instruction
    /// completes and the step exception re-enables the slots.
    SingleStep,
    /// The exception does not belong to the breakpoint layer (a foreign step or a
    /// software breakpoint): hand it to the next handler.
    NotOurs,
    /// Our slots fired and were handled, and the same exception also reports
    /// an event that is not the breakpoint layer's (x86: a single step, `BS`,
    /// or `BD`/`BT`, trapped together with a data breakpoint; a debugger's
    /// reserved register): return as for [`Resume::Return`], after handing the
    /// exception to the next handler too (the debugger).
    ReturnAndPassOn,
    /// [`Resume::SetResumeFlag`], and hand the exception on as well (a
    /// debugger's reserved register fired with one of ours).
    SetResumeFlagAndPassOn,
    /// [`Resume::SingleStep`], and hand the exception on as well (on
    /// address-only hardware, a hit that may be a debugger's: the backend has
    /// masked its slots and the step must still run).
    SingleStepAndPassOn,
}

impl Resume {
    /// The same CPU action, with the exception also handed on.
    #[must_use]
    pub const fn and_pass_on(self) -> Resume {
        match self {
            Resume::Return | Resume::ReturnAndPassOn => Resume::ReturnAndPassOn,
            Resume::SetResumeFlag | Resume::SetResumeFlagAndPassOn => {
                Resume::SetResumeFlagAndPassOn
            }
            Resume::SingleStep | Resume::SingleStepAndPassOn => Resume::SingleStepAndPassOn,
            Resume::NotOurs => Resume::NotOurs,
        }
    }

    /// Whether the next handler must see the exception too.
    pub const fn passes_on(self) -> bool {
        matches!(
            self,
            Resume::NotOurs
                | Resume::ReturnAndPassOn
                | Resume::SetResumeFlagAndPassOn
                | Resume::SingleStepAndPassOn
        )
    }

    /// Whether the saved flags need the resume flag (x86 RFLAGS.RF).
    pub const fn sets_resume_flag(self) -> bool {
        matches!(self, Resume::SetResumeFlag | Resume::SetResumeFlagAndPassOn)
    }

    /// Whether the saved state needs its step bit (Arm SPSR.SS).
    pub const fn single_steps(self) -> bool {
        matches!(self, Resume::SingleStep | Resume::SingleStepAndPassOn)
    }
}

/// A debug exception as decoded by the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Decoded {
    /// Which slots fired.
    pub fired: Fired,
    /// The data address accessed (watchpoints) or the instruction address
    /// (breakpoints), as far as the hardware reports it.
    pub addr: u64,
    /// The instruction pointer at the exception.
    pub ip: u64,
    /// The kind of access the hardware reports, if it does (empty if unknown).
    pub access: Access,
    /// How to continue.
    pub resume: Resume,
}

/// One CPU family's debug hardware.
///
/// Methods take `&self`: a backend for real hardware is a zero-sized owner token
/// (constructing it is `unsafe` and asserts the right privilege level), and
/// per-CPU state it needs (a pending step-over, say) lives in its own per-CPU
/// storage. [`Arch::install`] and [`Arch::decode`] are only ever called on the CPU
/// they name.
pub trait Arch {
    /// The contents of one debug register slot (for example an address and its
    /// DR7 field on x86, a value/control register pair on Arm).
    /// `Default` is the disabled slot.
    type Slot: Copy + Eq + Default + core::fmt::Debug;

    /// The raw exception state the embedder's trap handler hands in (status
    /// registers, fault address, saved PC…).
    type Exception;

    /// The registers this CPU family has, discovered at run time.
    fn slot_counts(&self) -> SlotCounts;

    /// Validate `attr` against the hardware's rules and encode it into register
    /// values. The generic rules have already been checked by the core.
    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<Self::Slot>, Error>;

    /// Prepare the debug hardware of `cpu` (the calling CPU) when it comes
    /// online: enable debug exceptions where the architecture needs it, clear
    /// every slot (their reset values may be UNKNOWN), and check that the CPU
    /// has at least the slots [`Arch::slot_counts`] reported.
    ///
    /// The default does nothing, for hardware whose reset state is known clear.
    fn init_cpu(&self, cpu: u16) -> Result<(), Error> {
        let _ = cpu;
        Ok(())
    }

    /// Classify `len` bytes at `addr` (which does not wrap) as user or kernel
    /// space.
    fn address_space(&self, addr: u64, len: u64) -> AddressSpace;

    /// Make the debug registers of `cpu` (the calling CPU) hold `desired`.
    ///
    /// `current` is what the core last installed. A backend writes only the
    /// registers that differ, in an order that never leaves a half-written slot
    /// enabled.
    fn install(&self, cpu: u16, current: &Image<Self::Slot>, desired: &Image<Self::Slot>);

    /// Decode a debug exception taken on `cpu` (the calling CPU), acknowledge it
    /// in the hardware (clear status bits) and prepare the continuation.
    ///
    /// Must not block or allocate: it runs in exception context.
    fn decode(&self, cpu: u16, raw: &Self::Exception) -> Decoded;
}
