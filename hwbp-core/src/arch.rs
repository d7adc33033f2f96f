//! The contract between the generic core and one CPU family's debug hardware.
//!
//! An [`Arch`] implementation only parses, encodes, installs and decodes; the
//! core decides what may be on the hardware (the constraint table) and what is
//! on it now (the scheduler). This split is the one Linux makes between
//! `kernel/events/hw_breakpoint.c` and `arch/*/kernel/hw_breakpoint.c`.

use crate::{Access, BpType, BreakpointAttr, Error, HardwareError};
use heapless::Vec;

/// Compile-time upper bound on the registers of one pool (Arm allows 16
/// breakpoints and 16 watchpoints).
pub const MAX_SLOTS: usize = 16;

// Weights and slot counts are `u8`s (`Encoding::weight`, `SlotCounts`), and
// the dispatcher keeps a 32-bit mask of reserved slots per pool.
static_assertions::const_assert!(MAX_SLOTS <= u8::MAX as usize);
static_assertions::const_assert!(MAX_SLOTS <= u32::BITS as usize);

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
            Err(Error::Hardware(HardwareError::NoDebugHardware))
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
        // At most MAX_SLOTS, which fits in a u8 (checked at compile time).
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

/// One line per register, `pool P slot N: <slot>`, with the backend's
/// decoding of each slot (`Display` of the slot type: every field, addresses
/// in hex); no trailing newline.
impl<S: core::fmt::Display> core::fmt::Display for Image<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        for (p, regs) in self.pools.iter().enumerate() {
            for (n, slot) in regs.iter().enumerate() {
                if !first {
                    f.write_str("\n")?;
                }
                first = false;
                write!(f, "pool {p} slot {n}: {slot}")?;
            }
        }
        Ok(())
    }
}

/// Which slots a debug exception reports as fired.
///
/// `#[non_exhaustive]`: backends build these, and only the core must handle
/// every variant, so a later version may add a way of reporting a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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

/// What the CPU itself must do to leave the debug exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// Return normally (x86 data breakpoints are traps: the access completed).
    Return,
    /// Set the resume flag (x86 RFLAGS.RF) in the saved flags before
    /// returning, so the faulting instruction breakpoint does not fire again.
    SetResumeFlag,
    /// The backend disabled the fired slots and armed a single step; the
    /// saved state must have its step bit set (Arm SPSR.SS) so the
    /// instruction completes and the step exception re-enables the slots.
    SingleStep,
}

/// How to continue after a debug exception: what the CPU must do
/// ([`Resume::action`]) and whether the exception must also be handed to the
/// next handler, a debugger say ([`Resume::pass_on`]).
///
/// Build one from the constants and [`Resume::and_pass_on`]:
///
/// | value | meaning |
/// |---|---|
/// | [`Resume::RETURN`] | ours, handled: return |
/// | [`Resume::SET_RESUME_FLAG`] | ours, handled: set RF, return |
/// | [`Resume::SINGLE_STEP`] | ours, handled: set the step bit, return |
/// | `X.and_pass_on()` | as `X`, and the next handler sees the exception too (x86: a data hit merged with someone's single step; a debugger's reserved register fired with ours) |
/// | [`Resume::NOT_OURS`] | nothing of the breakpoint layer's: hand it on; the next handler decides what the CPU does |
///
/// [`Resume::NOT_OURS`] and `RETURN.and_pass_on()` both ask the CPU for
/// nothing and pass the exception on; they differ in [`Resume::is_ours`]: an
/// exception the layer does not claim at all (a foreign step, a software
/// breakpoint, only a debugger's register firing) is not the same report as
/// a hit of ours that came with someone else's event.
#[must_use = "the CPU must do what the Resume says, and pass the exception on when asked"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Resume {
    /// What the CPU must do to return.
    pub action: Action,
    /// Whether the next handler must see the exception too.
    pub pass_on: bool,
    /// `false` only for [`Resume::NOT_OURS`].
    ours: bool,
}

impl Resume {
    /// Ours: return normally.
    pub const RETURN: Resume = Resume::ours(Action::Return);
    /// Ours: set the resume flag, then return.
    pub const SET_RESUME_FLAG: Resume = Resume::ours(Action::SetResumeFlag);
    /// Ours: set the step bit, then return.
    pub const SINGLE_STEP: Resume = Resume::ours(Action::SingleStep);
    /// The exception does not belong to the breakpoint layer (a foreign step
    /// or a software breakpoint): hand it to the next handler, which decides
    /// what the CPU does.
    pub const NOT_OURS: Resume = Resume {
        action: Action::Return,
        pass_on: true,
        ours: false,
    };

    /// The exception was the breakpoint layer's and the CPU must do `action`.
    pub const fn ours(action: Action) -> Resume {
        Resume {
            action,
            pass_on: false,
            ours: true,
        }
    }

    /// The same CPU action, with the exception also handed on.
    pub const fn and_pass_on(self) -> Resume {
        Resume {
            pass_on: true,
            ..self
        }
    }

    /// Whether the breakpoint layer claimed the exception (a hit, a stray
    /// hit, a step-over of its own); `false` only for [`Resume::NOT_OURS`].
    pub const fn is_ours(self) -> bool {
        self.ours
    }

    /// Whether the next handler must see the exception too.
    pub const fn passes_on(self) -> bool {
        self.pass_on
    }

    /// Whether the saved flags need the resume flag (x86 RFLAGS.RF).
    pub const fn sets_resume_flag(self) -> bool {
        matches!(self.action, Action::SetResumeFlag)
    }

    /// Whether the saved state needs its step bit (Arm SPSR.SS).
    pub const fn single_steps(self) -> bool {
        matches!(self.action, Action::SingleStep)
    }
}

/// A debug exception as decoded by the backend.
///
/// Build one with [`Decoded::new`] and the builder methods
/// ([`addr`](Self::addr), [`ip`](Self::ip), [`access`](Self::access)); the
/// fields are public for reading, and the struct is `#[non_exhaustive]`, so
/// a later version may add fields (with a default) without breaking backends.
///
/// ```
/// use hwbp_core::{Access, Decoded, Fired, Pool, Resume};
/// let d = Decoded::new(Fired::Slots { pool: Pool(0), mask: 0b10 }, Resume::RETURN)
///     .addr(0x1000)
///     .ip(0x40_0000)
///     .access(Access::WRITE);
/// assert_eq!((d.addr, d.ip, d.access), (0x1000, 0x40_0000, Access::WRITE));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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

impl Decoded {
    /// An exception in which `fired` fired, to be continued as `resume`;
    /// address, instruction pointer 0 and access unknown until set.
    pub const fn new(fired: Fired, resume: Resume) -> Self {
        Decoded {
            fired,
            addr: 0,
            ip: 0,
            access: Access::empty(),
            resume,
        }
    }

    /// The exception that is not the breakpoint layer's: nothing fired,
    /// [`Resume::NOT_OURS`].
    pub const NOT_OURS: Decoded = Decoded::new(Fired::None, Resume::NOT_OURS);

    /// Set the data or instruction address the hardware reports.
    #[must_use]
    pub const fn addr(mut self, addr: u64) -> Self {
        self.addr = addr;
        self
    }

    /// Set the instruction pointer at the exception.
    #[must_use]
    pub const fn ip(mut self, ip: u64) -> Self {
        self.ip = ip;
        self
    }

    /// Set the kind of access the hardware reports.
    #[must_use]
    pub const fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }
}

/// One CPU family's debug hardware.
///
/// Every backend boots the same way:
///
/// 1. It is built by a `const fn` (an `unsafe` one for real hardware: the
///    value is the owner token of the debug registers), so the manager can
///    live in a `static`.
/// 2. [`Manager::init`](crate::Manager::init) calls [`Arch::discover`] on the boot
///    CPU: the backend identifies the hardware and returns its register
///    counts, or the typed reason it cannot be used.
/// 3. [`Manager::cpu_online`](crate::Manager::cpu_online) calls [`Arch::init_cpu`]
///    on each CPU.
///
/// Methods take `&self`. State a backend keeps per CPU (a pending step-over,
/// say) is its [`Arch::CpuState`]: the manager stores one per CPU, built from
/// [`Arch::CPU_STATE_INIT`], and hands the calling CPU's to
/// [`Arch::init_cpu`], [`Arch::install`] and [`Arch::decode`], which are only
/// ever called on the CPU they name.
pub trait Arch {
    /// The contents of one debug register slot (for example an address and its
    /// DR7 field on x86, a value/control register pair on Arm).
    /// `Default` is the disabled slot.
    type Slot: Copy + Eq + Default + core::fmt::Debug;

    /// The raw exception state the embedder's trap handler hands in (status
    /// registers, fault address, saved PC…).
    type Exception;

    /// What the backend keeps per CPU (`()` when nothing). Touched only on
    /// its own CPU, but shared through the manager's `static`, hence `Sync`.
    type CpuState: Sync;

    /// The state of a CPU that has not come online yet.
    const CPU_STATE_INIT: Self::CpuState;

    /// Identify the debug hardware (on the boot CPU, from
    /// [`Manager::init`](crate::Manager::init)) and return the registers the core
    /// may use, or why there are none: [`Error::Hardware`] with the reason.
    fn discover(&self) -> Result<SlotCounts, Error>;

    /// Validate `attr` against the hardware's rules and encode it into register
    /// values. The pieces' hardware ranges ([`Piece::hw_addr`],
    /// [`Piece::hw_len`]) must together cover the requested region: a backend
    /// that reports [`Fired::ByAddress`] has a hit judged by the hardware
    /// ranges first, and reads a region only for a slot whose range contains
    /// the address.
    ///
    /// The core checks the generic rules first
    /// ([`BreakpointAttr::validate_request`]); an implementation adds only its
    /// architecture's rules. It must not panic on a request that breaks the
    /// generic rules (it may refuse it with any error).
    fn encode(&self, attr: &BreakpointAttr) -> Result<Encoding<Self::Slot>, Error>;

    /// Prepare the debug hardware of `cpu` (the calling CPU) when it comes
    /// online: enable debug exceptions where the architecture needs it, clear
    /// every slot (their reset values may be UNKNOWN), check that the CPU
    /// has at least the slots [`Arch::discover`] reported, and reset `state`.
    ///
    /// The default does nothing, for hardware whose reset state is known clear.
    fn init_cpu(&self, cpu: u16, state: &Self::CpuState) -> Result<(), Error> {
        let _ = (cpu, state);
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
    fn install(
        &self,
        cpu: u16,
        state: &Self::CpuState,
        current: &Image<Self::Slot>,
        desired: &Image<Self::Slot>,
    );

    /// Decode a debug exception taken on `cpu` (the calling CPU), acknowledge it
    /// in the hardware (clear status bits) and prepare the continuation.
    ///
    /// Must not block or allocate: it runs in exception context.
    fn decode(&self, cpu: u16, state: &Self::CpuState, raw: &Self::Exception) -> Decoded;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_display_lists_every_slot_of_every_pool() {
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        struct Reg(u64);
        impl core::fmt::Display for Reg {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "reg={:#x}", self.0)
            }
        }
        let mut image = Image::<Reg>::empty(SlotCounts::Separate { inst: 1, data: 2 });
        image.pools[1][1] = Reg(0xdead_0000);
        assert_eq!(
            image.to_string(),
            "pool 0 slot 0: reg=0x0\npool 1 slot 0: reg=0x0\npool 1 slot 1: reg=0xdead0000"
        );
        assert_eq!(Image::<Reg>::empty(SlotCounts::Shared(0)).to_string(), "");
    }

    #[test]
    fn resume_is_an_action_plus_pass_on() {
        for (r, action) in [
            (Resume::RETURN, Action::Return),
            (Resume::SET_RESUME_FLAG, Action::SetResumeFlag),
            (Resume::SINGLE_STEP, Action::SingleStep),
        ] {
            assert_eq!((r.action, r.pass_on, r.is_ours()), (action, false, true));
            let on = r.and_pass_on();
            assert_eq!((on.action, on.pass_on, on.is_ours()), (action, true, true));
            assert_eq!(on.and_pass_on(), on);
            assert_eq!(on.sets_resume_flag(), action == Action::SetResumeFlag);
            assert_eq!(on.single_steps(), action == Action::SingleStep);
        }
        // Not ours: pass on, ask nothing of the CPU, and stay apart from
        // "ours, and someone else's too".
        let n = Resume::NOT_OURS;
        assert_eq!(
            (n.action, n.pass_on, n.is_ours()),
            (Action::Return, true, false)
        );
        assert_ne!(n, Resume::RETURN.and_pass_on());
        assert_eq!(n.and_pass_on(), n);
    }
}
