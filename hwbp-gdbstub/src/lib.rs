//! # hwbp-gdbstub — GDB's hardware breakpoints and watchpoints on hwbp
//!
//! A gdb stub (built with the [`gdbstub`] crate) that wants GDB's `hbreak`,
//! `watch`, `rwatch` and `awatch` should not keep its own "four slots, first
//! free" allocator beside the breakpoint layer: the registers are shared
//! with everything else that uses hwbp. [`GdbBreakpoints`] turns each GDB
//! request into an hwbp request, pinned, and answers GDB the way it expects:
//!
//! | GDB | here |
//! |---|---|
//! | `Z1`/`z1` (`hbreak`) | [`GdbBreakpoints::add`] / [`GdbBreakpoints::remove`] with [`Kind::Exec`] |
//! | `Z2`/`Z3`/`Z4` (`watch`, `rwatch`, `awatch`) | the same with [`Kind::Watch`] and gdbstub's [`WatchKind`] |
//! | the hardware is full, or the request cannot be encoded | the typed [`Error`]; the gdbstub glue ([`impl_hw_breakpoints!`]) answers `E22`, GDB prints "Could not insert hardware watchpoint N" and debugging goes on |
//! | a hit | [`GdbBreakpoints::stop_for`] → [`Stop`] → [`Stop::reason`]: `hwbreak`, or `watch`/`rwatch`/`awatch` with the address GDB asked for |
//! | `z` packets | removal is exact: the same kind, address and length, or [`Error::StaleHandle`] |
//!
//! ## Two ways to hold GDB's requests ([`Placement`])
//!
//! * [`Placement::Managed`] (the default): each request is registered with
//!   the manager as a pinned breakpoint on the stub's [`Target`] (every CPU
//!   by default). The constraint table decides whether it fits, so GDB's
//!   breakpoints and the system's own share the registers and neither can
//!   push the other out; hits come back through the manager's [`Handler`]
//!   as [`Sample`]s ([`HitLatch`] keeps the last one per CPU).
//! * [`Placement::Reserved`]: the embedder has set registers aside for the
//!   debugger with [`Manager::reserve`] on every CPU (the scheduler never
//!   touches them) and hands the [`Reservation`]s to
//!   [`GdbBreakpoints::use_reservation`]. Requests are still hwbp requests
//!   (validated with [`BreakpointAttr::validate_request`] and encoded by the
//!   backend's [`Arch::encode`], split over several registers when needed),
//!   but they are placed in the reserved registers only, first fit, and
//!   programmed through [`Arch::install`] with images in which only the
//!   reserved registers differ (backends leave unchanged entries alone).
//!   The system's breakpoints can then never take the debugger's registers,
//!   and the debugger can never take more than it was given. Hits in
//!   reserved registers are not the manager's: [`Manager::handle_exception`]
//!   passes them on ([`Resume::pass_on`]), and the stub names the one that
//!   fired with [`GdbBreakpoints::stop_for_slots`] (x86 `DR6.Bn`) or
//!   [`GdbBreakpoints::stop_for_address`] (Arm `FAR`).
//!
//! Either way, a change reaches the registers of the CPUs returned by
//! [`GdbBreakpoints::take_sync`] once [`GdbBreakpoints::sync`] has run on
//! each of them (on that CPU), before the target resumes.
//!
//! [`Resume::pass_on`]: hwbp_core::Resume::pass_on
#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_code)]

use core::cell::{Cell, RefCell};

use critical_section::Mutex;
use heapless::Vec;
use hwbp_core::{
    Access, Arch, BpType, BreakpointAttr, CpuSet, Handle, Handler, Image, Manager, Pool,
    Reservation, Sample, Target, MAX_SLOTS,
};

pub use gdbstub::target::ext::breakpoints::WatchKind;
pub use hwbp_core::Error;

/// What GDB asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `hbreak`: an instruction breakpoint.
    Exec,
    /// `watch` (write), `rwatch` (read), `awatch` (read or write).
    Watch(WatchKind),
}

impl Kind {
    /// The hwbp access kind first asked of the backend.
    pub const fn access(self) -> Access {
        match self {
            Kind::Exec => Access::EXEC,
            Kind::Watch(WatchKind::Write) => Access::WRITE,
            Kind::Watch(WatchKind::Read) => Access::READ,
            Kind::Watch(WatchKind::ReadWrite) => Access::RW,
        }
    }
}

/// One GDB request: a kind, an address and a length, exactly as GDB sent
/// them (`Z<type>,<addr>,<kind>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The kind.
    pub kind: Kind,
    /// The address GDB asked for.
    pub addr: u64,
    /// The length GDB asked for, in bytes, for watchpoints; 0 for `hbreak`
    /// (GDB's breakpoint "kind", the instruction size, is not needed).
    pub len: u64,
}

impl Request {
    /// The hwbp request for it on `target`: pinned, every hit delivered.
    /// `access` is [`Kind::access`] unless the backend had to widen it.
    fn attr(&self, target: Target, access: Access) -> BreakpointAttr {
        match self.kind {
            Kind::Exec => BreakpointAttr::exec(self.addr).target(target),
            Kind::Watch(_) => BreakpointAttr::watch(self.addr, self.len, access).target(target),
        }
    }
}

/// Where GDB's requests are held; see the crate documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Registered with the manager as pinned breakpoints.
    Managed,
    /// In the registers the embedder reserved for the debugger.
    Reserved,
}

/// Why the target stopped, in GDB's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// An `hbreak` fired (stop reply `hwbreak`).
    HwBreak,
    /// A watchpoint fired (stop reply `watch`/`rwatch`/`awatch`).
    Watch {
        /// The kind GDB asked for.
        kind: WatchKind,
        /// The address accessed when it lies in the region GDB asked for,
        /// else the start of that region (a region split over several
        /// registers is still one watchpoint, reported against GDB's
        /// region).
        addr: u64,
    },
}

impl Stop {
    /// As gdbstub's single-thread stop reason.
    pub fn reason<U: From<u64>>(self) -> gdbstub::stub::SingleThreadStopReason<U> {
        use gdbstub::stub::SingleThreadStopReason as R;
        match self {
            Stop::HwBreak => R::HwBreak(()),
            Stop::Watch { kind, addr } => R::Watch {
                tid: (),
                kind,
                addr: U::from(addr),
            },
        }
    }
}

/// How one request is held.
#[derive(Clone, Copy, Debug)]
enum Held {
    /// A breakpoint registered with the manager.
    Registered(Handle),
    /// Reserved registers of one pool (bit n: slot n).
    Reserved { pool: Pool, mask: u32 },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    req: Request,
    held: Held,
}

/// The reserved registers and what the adapter put in them.
struct Reserved<S, const CPUS: usize> {
    /// Per pool: the reserved slots (bit n: slot n).
    slots: [u32; 2],
    /// What every CPU's reserved registers should hold (other entries
    /// default, equal to `installed`'s, so never written).
    desired: Image<S>,
    /// What each CPU's reserved registers hold (`None`: not yet written).
    installed: [Option<Image<S>>; CPUS],
}

struct Inner<S, const CPUS: usize, const N: usize> {
    placement: Placement,
    target: Target,
    entries: Vec<Entry, N>,
    reserved: Option<Reserved<S, CPUS>>,
    /// CPUs to sync.
    sync: CpuSet,
}

/// GDB's hardware breakpoints and watchpoints on an hwbp manager; up to
/// `N` at once. All methods take `&self` (state behind a critical section),
/// so it can live in a `static` beside the manager.
pub struct GdbBreakpoints<
    'm,
    A: Arch,
    H,
    const CPUS: usize,
    const EVENTS: usize,
    const TASKS: usize,
    const N: usize,
> {
    hw: &'m Manager<A, H, CPUS, EVENTS, TASKS>,
    inner: Mutex<RefCell<Inner<A::Slot, CPUS, N>>>,
}

impl<
        'm,
        A: Arch,
        H: Handler,
        const CPUS: usize,
        const EVENTS: usize,
        const TASKS: usize,
        const N: usize,
    > GdbBreakpoints<'m, A, H, CPUS, EVENTS, TASKS, N>
{
    /// GDB's breakpoints on `hw`, registered as pinned breakpoints on every
    /// CPU ([`Placement::Managed`], [`Target::AllCpus`]).
    pub const fn new(hw: &'m Manager<A, H, CPUS, EVENTS, TASKS>) -> Self {
        GdbBreakpoints {
            hw,
            inner: Mutex::new(RefCell::new(Inner {
                placement: Placement::Managed,
                target: Target::AllCpus,
                entries: Vec::new(),
                reserved: None,
                sync: CpuSet::EMPTY,
            })),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &'m Manager<A, H, CPUS, EVENTS, TASKS> {
        self.hw
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner<A::Slot, CPUS, N>) -> R) -> R {
        critical_section::with(|cs| f(&mut self.inner.borrow_ref_mut(cs)))
    }

    /// Where requests are held now.
    pub fn placement(&self) -> Placement {
        self.with(|i| i.placement)
    }

    /// Register GDB's requests (with [`Placement::Managed`]) on `target`
    /// instead of every CPU (the CPU the debugged program is bound to, say).
    /// Refused with [`Error::Busy`] while requests are held.
    pub fn set_target(&self, target: Target) -> Result<(), Error> {
        self.with(|i| {
            if !i.entries.is_empty() {
                return Err(Error::Busy);
            }
            i.target = target;
            Ok(())
        })
    }

    /// Hold GDB's requests in the registers the embedder reserved for the
    /// debugger ([`Placement::Reserved`]): `reservations` are what
    /// [`Manager::reserve`] returned (the same on every CPU; one per pool at
    /// most). Refused with [`Error::Busy`] while requests are held, with
    /// [`Error::NotInitialized`] before [`Manager::init`] and with
    /// [`Error::NotReserved`] for an empty list or a reservation of no
    /// registers.
    pub fn use_reservation(&self, reservations: &[Reservation]) -> Result<(), Error> {
        let counts = self.hw.slot_counts()?;
        let mut slots = [0u32; 2];
        for r in reservations {
            let end = u32::from(r.first) + u32::from(r.count);
            let fits = r.count > 0
                && r.pool.index() < counts.pools()
                && end <= u32::from(counts.slots(r.pool))
                && end as usize <= MAX_SLOTS;
            if !fits {
                return Err(Error::NotReserved);
            }
            slots[r.pool.index()] |= ((1u32 << r.count) - 1) << r.first;
        }
        if slots == [0, 0] {
            return Err(Error::NotReserved);
        }
        self.with(|i| {
            if !i.entries.is_empty() {
                return Err(Error::Busy);
            }
            i.placement = Placement::Reserved;
            i.reserved = Some(Reserved {
                slots,
                desired: Image::empty(counts),
                installed: [const { None }; CPUS],
            });
            Ok(())
        })
    }

    /// Hold requests with the manager again ([`Placement::Managed`]).
    /// Refused with [`Error::Busy`] while requests are held. The embedder
    /// may then [`Manager::unreserve`] the registers (they are all clear).
    pub fn stop_using_reservation(&self) -> Result<(), Error> {
        self.with(|i| {
            if !i.entries.is_empty() {
                return Err(Error::Busy);
            }
            i.placement = Placement::Managed;
            i.reserved = None;
            Ok(())
        })
    }

    /// The requests held now.
    pub fn requests(&self) -> Vec<Request, N> {
        self.with(|i| i.entries.iter().map(|e| e.req).collect())
    }

    /// GDB asked for `req` (`Z1`–`Z4`). On success it reaches the registers
    /// once the CPUs of [`GdbBreakpoints::take_sync`] are synced. On failure
    /// nothing changed: [`Error::NoSlot`] / [`Error::RangeTooLarge`] when the
    /// hardware (or the reservation) is full or too small,
    /// [`Error::TooManyEvents`] when `N` requests are held, and the
    /// backend's refusal for a request it cannot encode.
    ///
    /// A read watchpoint (`rwatch`) on hardware that watches reads only
    /// together with writes (x86) is asked as read-or-write; GDB itself
    /// tells such a hit from a write by the value, as it does natively.
    pub fn add(&self, req: Request) -> Result<(), Error> {
        self.with(|i| {
            if i.entries.is_full() {
                return Err(Error::TooManyEvents);
            }
            let held = match i.placement {
                Placement::Managed => {
                    let r = self
                        .register(req, i.target, req.kind.access())
                        .or_else(|e| match (e, req.kind) {
                            (Error::UnsupportedAccess, Kind::Watch(WatchKind::Read)) => {
                                self.register(req, i.target, Access::RW)
                            }
                            _ => Err(e),
                        })?;
                    i.sync = i.sync.union(r.sync);
                    Held::Registered(r.handle)
                }
                Placement::Reserved => {
                    let held = self.place(i, req)?;
                    i.sync = i.sync.union(Self::all_cpus());
                    held
                }
            };
            // Cannot fail: checked not full above, and the critical section
            // keeps it so.
            let _ = i.entries.push(Entry { req, held });
            Ok(())
        })
    }

    fn register(
        &self,
        req: Request,
        target: Target,
        access: Access,
    ) -> Result<hwbp_core::Registered, Error> {
        self.hw.register(&req.attr(target, access))
    }

    /// Every CPU the manager may have.
    /// Every CPU the manager can have (the reserved registers are written on
    /// each; `sync` on an offline one returns at once).
    fn all_cpus() -> CpuSet {
        CpuSet::below(u16::try_from(CPUS).unwrap_or(u16::MAX))
    }

    /// Encode `req` as an hwbp request and place it in free reserved slots.
    fn place(&self, i: &mut Inner<A::Slot, CPUS, N>, req: Request) -> Result<Held, Error> {
        let arch = self.hw.arch();
        let encode = |access| {
            let attr = req.attr(Target::AllCpus, access);
            attr.validate_request(None, |a, l| arch.address_space(a, l))?;
            arch.encode(&attr)
        };
        let enc = encode(req.kind.access()).or_else(|e| match (e, req.kind) {
            (Error::UnsupportedAccess, Kind::Watch(WatchKind::Read)) => encode(Access::RW),
            _ => Err(e),
        })?;
        let counts = self.hw.slot_counts()?;
        let pool = counts.pool_of(enc.ty);
        let res = i.reserved.as_mut().ok_or(Error::NotReserved)?;
        let reserved = res.slots[pool.index()];
        let used = res.desired.pools[pool.index()]
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != A::Slot::default())
            .fold(0u32, |m, (n, _)| m | 1 << n);
        let free = reserved & !used;
        let weight = u32::from(enc.weight());
        if weight > reserved.count_ones() {
            return Err(Error::RangeTooLarge {
                weight: enc.weight(),
                slots: reserved.count_ones() as u8,
            });
        }
        if weight > free.count_ones() {
            return Err(Error::NoSlot { cpu: 0 });
        }
        let mut mask = 0u32;
        let mut slots = (0..MAX_SLOTS).filter(|n| free & (1 << n) != 0);
        for piece in &enc.pieces {
            // Cannot run out: `free` has at least `weight` slots.
            let Some(n) = slots.next() else {
                return Err(Error::NoSlot { cpu: 0 });
            };
            if let Some(s) = res.desired.pools[pool.index()].get_mut(n) {
                *s = piece.slot;
                mask |= 1 << n;
            }
        }
        Ok(Held::Reserved { pool, mask })
    }

    /// GDB removed `req` (`z1`–`z4`): the request with exactly this kind,
    /// address and length goes (the most recent one if GDB inserted it
    /// twice). [`Error::StaleHandle`] when no such request is held; nothing
    /// else is touched.
    pub fn remove(&self, req: Request) -> Result<(), Error> {
        self.with(|i| {
            let at = i
                .entries
                .iter()
                .rposition(|e| e.req == req)
                .ok_or(Error::StaleHandle)?;
            let e = i.entries[at];
            match e.held {
                Held::Registered(h) => {
                    let set = self.hw.unregister(h)?;
                    i.sync = i.sync.union(set);
                }
                Held::Reserved { pool, mask } => {
                    if let Some(res) = i.reserved.as_mut() {
                        for (n, s) in res.desired.pools[pool.index()].iter_mut().enumerate() {
                            if mask & (1 << n) != 0 {
                                *s = A::Slot::default();
                            }
                        }
                    }
                    i.sync = i.sync.union(Self::all_cpus());
                }
            }
            i.entries.remove(at);
            Ok(())
        })
    }

    /// Remove every request (GDB detached or the session ended).
    pub fn clear(&self) {
        for r in self.requests() {
            let _ = self.remove(r);
        }
    }

    /// The CPUs whose registers must be brought up to date with
    /// [`GdbBreakpoints::sync`] (each on its own CPU) before the target
    /// resumes; the set is emptied.
    pub fn take_sync(&self) -> impl Iterator<Item = u16> {
        self.with(|i| core::mem::replace(&mut i.sync, CpuSet::EMPTY))
            .iter()
    }

    /// Bring the calling CPU `cpu`'s registers up to date: the manager's
    /// ([`Manager::sync`]) and, with [`Placement::Reserved`], the reserved
    /// registers, written through [`Arch::install`].
    pub fn sync(&self, cpu: u16) -> Result<(), Error> {
        self.hw.sync(cpu)?;
        let state = self.hw.backend_cpu(cpu)?;
        self.with(|i| {
            let Some(res) = i.reserved.as_mut() else {
                return Ok(());
            };
            let Some(installed) = res.installed.get_mut(usize::from(cpu)) else {
                return Err(Error::CpuOutOfRange { cpu });
            };
            let counts = self.hw.slot_counts()?;
            let current = installed.get_or_insert_with(|| Image::empty(counts));
            self.hw.arch().install(cpu, state, current, &res.desired);
            *current = res.desired.clone();
            Ok(())
        })
    }

    /// The stop a hit of the manager's means, if it was one of GDB's
    /// requests ([`Placement::Managed`]); `None` for anyone else's.
    pub fn stop_for(&self, s: &Sample) -> Option<Stop> {
        self.with(|i| {
            let e = i
                .entries
                .iter()
                .find(|e| matches!(e.held, Held::Registered(h) if h == s.handle))?;
            Some(stop_of(&e.req, s.addr))
        })
    }

    /// The stop a hit in the reserved registers means ([`Placement::Reserved`]),
    /// for hardware that names the registers that fired (x86 `DR6.B0`–`B3`,
    /// pool 0): the first request holding one of `mask`'s slots of `pool`.
    /// `addr` is the address accessed, if known.
    pub fn stop_for_slots(&self, pool: Pool, mask: u32, addr: Option<u64>) -> Option<Stop> {
        self.with(|i| {
            let e = i.entries.iter().find(|e| {
                matches!(e.held, Held::Reserved { pool: p, mask: m } if p == pool && m & mask != 0)
            })?;
            Some(stop_of(&e.req, addr.unwrap_or(e.req.addr)))
        })
    }

    /// The stop a hit in the reserved registers means ([`Placement::Reserved`]),
    /// for hardware that reports only an address (Arm: the instruction
    /// address for breakpoints, `FAR` for watchpoints): the request of type
    /// `ty` whose region contains `addr`, else (an imprecise watchpoint
    /// address, `STP`) the closest one of that type.
    pub fn stop_for_address(&self, ty: BpType, addr: u64) -> Option<Stop> {
        self.with(|i| {
            let of_type = |e: &&Entry| {
                matches!(e.held, Held::Reserved { .. })
                    && (e.req.kind == Kind::Exec) == (ty == BpType::Inst)
            };
            let dist = |r: &Request| {
                let len = if r.kind == Kind::Exec {
                    1
                } else {
                    r.len.max(1)
                };
                if addr < r.addr {
                    r.addr - addr
                } else if addr - r.addr < len {
                    0
                } else {
                    addr - r.addr - len + 1
                }
            };
            let e = i
                .entries
                .iter()
                .filter(of_type)
                .min_by_key(|e| dist(&e.req))?;
            Some(stop_of(&e.req, addr))
        })
    }
}

/// The stop for a hit of `req` at `addr`.
fn stop_of(req: &Request, addr: u64) -> Stop {
    match req.kind {
        Kind::Exec => Stop::HwBreak,
        Kind::Watch(kind) => {
            let inside = addr >= req.addr && addr - req.addr < req.len.max(1);
            Stop::Watch {
                kind,
                addr: if inside { addr } else { req.addr },
            }
        }
    }
}

/// A [`Handler`] that keeps the last sample delivered on each CPU, for the
/// stub to turn into a stop ([`GdbBreakpoints::stop_for`]) when the debug
/// exception is over. Give the manager `&'static HitLatch<CPUS>`.
pub struct HitLatch<const CPUS: usize> {
    last: [Mutex<Cell<Option<Sample>>>; CPUS],
}

impl<const CPUS: usize> HitLatch<CPUS> {
    /// Nothing latched.
    pub const fn new() -> Self {
        HitLatch {
            last: [const { Mutex::new(Cell::new(None)) }; CPUS],
        }
    }

    /// Take the last sample delivered on `cpu` (`None` if none since the
    /// last take).
    pub fn take(&self, cpu: u16) -> Option<Sample> {
        let slot = self.last.get(usize::from(cpu))?;
        critical_section::with(|cs| slot.borrow(cs).take())
    }
}

impl<const CPUS: usize> Default for HitLatch<CPUS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CPUS: usize> Handler for HitLatch<CPUS> {
    fn on_sample(&self, s: &Sample) {
        if let Some(slot) = self.last.get(usize::from(s.cpu)) {
            critical_section::with(|cs| slot.borrow(cs).set(Some(*s)));
        }
    }
}

impl<const CPUS: usize> Handler for &HitLatch<CPUS> {
    fn on_sample(&self, s: &Sample) {
        (**self).on_sample(s)
    }
}

/// Implement gdbstub's `HwBreakpoint` and `HwWatchpoint` for a target type
/// by forwarding to a [`GdbBreakpoints`] the expression `$bps` reaches from
/// `self` (a field, or a `static`):
///
/// ```text
/// hwbp_gdbstub::impl_hw_breakpoints!(MyTarget, |t| &GDB_BPS);
/// ```
///
/// (`examples/gdb-common/session.rs` in the repository uses it.)
///
/// The target still implements `Breakpoints` itself, returning `Some(self)`
/// from `support_hw_breakpoint` and `support_hw_watchpoint`. A refused
/// request is answered `E22` (gdbstub's answer to `Ok(false)`), which GDB
/// reports as "Could not insert hardware breakpoint/watchpoint"; a removal
/// of something not held is answered the same.
#[macro_export]
macro_rules! impl_hw_breakpoints {
    ($target:ty, |$t:ident| $bps:expr) => {
        impl ::gdbstub::target::ext::breakpoints::HwBreakpoint for $target {
            fn add_hw_breakpoint(
                &mut self,
                addr: <Self::Arch as ::gdbstub::arch::Arch>::Usize,
                kind: <Self::Arch as ::gdbstub::arch::Arch>::BreakpointKind,
            ) -> ::gdbstub::target::TargetResult<bool, Self> {
                let _ = kind;
                let $t = &*self;
                Ok($bps
                    .add($crate::Request {
                        kind: $crate::Kind::Exec,
                        addr: addr as u64,
                        len: 0,
                    })
                    .is_ok())
            }

            fn remove_hw_breakpoint(
                &mut self,
                addr: <Self::Arch as ::gdbstub::arch::Arch>::Usize,
                kind: <Self::Arch as ::gdbstub::arch::Arch>::BreakpointKind,
            ) -> ::gdbstub::target::TargetResult<bool, Self> {
                let _ = kind;
                let $t = &*self;
                Ok($bps
                    .remove($crate::Request {
                        kind: $crate::Kind::Exec,
                        addr: addr as u64,
                        len: 0,
                    })
                    .is_ok())
            }
        }

        impl ::gdbstub::target::ext::breakpoints::HwWatchpoint for $target {
            fn add_hw_watchpoint(
                &mut self,
                addr: <Self::Arch as ::gdbstub::arch::Arch>::Usize,
                len: <Self::Arch as ::gdbstub::arch::Arch>::Usize,
                kind: ::gdbstub::target::ext::breakpoints::WatchKind,
            ) -> ::gdbstub::target::TargetResult<bool, Self> {
                let $t = &*self;
                Ok($bps
                    .add($crate::Request {
                        kind: $crate::Kind::Watch(kind),
                        addr: addr as u64,
                        len: len as u64,
                    })
                    .is_ok())
            }

            fn remove_hw_watchpoint(
                &mut self,
                addr: <Self::Arch as ::gdbstub::arch::Arch>::Usize,
                len: <Self::Arch as ::gdbstub::arch::Arch>::Usize,
                kind: ::gdbstub::target::ext::breakpoints::WatchKind,
            ) -> ::gdbstub::target::TargetResult<bool, Self> {
                let $t = &*self;
                Ok($bps
                    .remove($crate::Request {
                        kind: $crate::Kind::Watch(kind),
                        addr: addr as u64,
                        len: len as u64,
                    })
                    .is_ok())
            }
        }
    };
}
