//! [`Manager`]: the breakpoint manager an embedder keeps (usually in a `static`),
//! and its lifecycle API: init, hotplug, register / modify / enable / disable /
//! unregister, fork / exit, debugger reservations, quiescence and queries.
//!
//! Its other methods live with what they own: event storage in
//! [`crate::storage`], scheduling in [`crate::sched`], the dispatch decision in
//! [`crate::dispatch`].

use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, Ordering};

use critical_section::Mutex;

use crate::arch::{Arch, Image, Pool, SlotCounts};
use crate::dispatch::{tag_of, CpuCounters, EventCell, Handler, SlotMap};
use crate::handle::Handle;
use crate::lists::{self, FreeSet, Link, List, Merge, TaskMap};
use crate::sched::{CpuState, Times};
use crate::storage::Event;
use crate::table::ConstraintTable;
use crate::{BpType, BreakpointAttr, Encoding, Error, Target, TaskId};

/// A set of CPUs whose registers must be brought up to date by calling
/// [`Manager::sync`] on each of them (in a kernel: an IPI).
///
/// It stays a few bytes whatever the number of CPUs, because a change can
/// only concern: no CPU, the one CPU a CPU-bound breakpoint names or a task
/// runs on, two of those (a [`Manager::modify`] that moves a breakpoint),
/// or every online CPU (an [`Target::AllCpus`] breakpoint). In the last case
/// it names every CPU up to the highest online one: an offline CPU among
/// them needs nothing ([`Manager::sync`] returns at once there), so walking
/// the set is the work the change needs.
#[must_use = "the CPUs in the set must be synced (Manager::sync) for the change to reach their registers"]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CpuSet(Cpus);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Cpus {
    #[default]
    Empty,
    One(u16),
    /// Two distinct CPUs, lower first.
    Two(u16, u16),
    /// Every CPU below the bound (at least 1).
    Below(u16),
}

impl CpuSet {
    /// The empty set.
    pub const EMPTY: CpuSet = CpuSet(Cpus::Empty);

    /// The set of one CPU.
    pub const fn one(cpu: u16) -> CpuSet {
        CpuSet(Cpus::One(cpu))
    }

    /// Every CPU numbered below `n` (empty when `n` is 0).
    pub const fn below(n: u16) -> CpuSet {
        if n == 0 {
            CpuSet::EMPTY
        } else {
            CpuSet(Cpus::Below(n))
        }
    }

    /// Whether `cpu` is in the set.
    pub const fn contains(self, cpu: u16) -> bool {
        match self.0 {
            Cpus::Empty => false,
            Cpus::One(a) => a == cpu,
            Cpus::Two(a, b) => a == cpu || b == cpu,
            Cpus::Below(n) => cpu < n,
        }
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        matches!(self.0, Cpus::Empty)
    }

    /// How many CPUs the set names.
    pub const fn len(self) -> usize {
        match self.0 {
            Cpus::Empty => 0,
            Cpus::One(_) => 1,
            Cpus::Two(..) => 2,
            Cpus::Below(n) => n as usize,
        }
    }

    /// The CPUs in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u16> {
        let (pair, range) = match self.0 {
            Cpus::Empty => ([None, None], 0..0),
            Cpus::One(a) => ([Some(a), None], 0..0),
            Cpus::Two(a, b) => ([Some(a), Some(b)], 0..0),
            Cpus::Below(n) => ([None, None], 0..n),
        };
        pair.into_iter().flatten().chain(range)
    }

    /// Both sets' CPUs, or (when that is more than two CPUs that are not
    /// all CPUs up to some number) every CPU up to the highest of them.
    pub const fn union(self, other: CpuSet) -> CpuSet {
        const fn max(a: u16, b: u16) -> u16 {
            if a > b {
                a
            } else {
                b
            }
        }
        const fn highest(s: Cpus) -> u16 {
            match s {
                Cpus::Empty => 0,
                Cpus::One(a) => a,
                Cpus::Two(_, b) => b,
                Cpus::Below(n) => n - 1,
            }
        }
        match (self.0, other.0) {
            (Cpus::Empty, _) => other,
            (_, Cpus::Empty) => self,
            (Cpus::One(a), Cpus::One(b)) if a == b => self,
            (Cpus::One(a), Cpus::One(b)) if a < b => CpuSet(Cpus::Two(a, b)),
            (Cpus::One(a), Cpus::One(b)) => CpuSet(Cpus::Two(b, a)),
            (Cpus::Two(a, b), Cpus::One(c)) | (Cpus::One(c), Cpus::Two(a, b))
                if c == a || c == b =>
            {
                CpuSet(Cpus::Two(a, b))
            }
            (Cpus::Two(a, b), Cpus::Two(c, d)) if a == c && b == d => self,
            (x, y) => {
                let top = max(highest(x), highest(y));
                CpuSet(Cpus::Below(top.saturating_add(1)))
            }
        }
    }
}

/// A successful registration.
#[must_use = "the CPUs in `sync` must be synced (Manager::sync) for the breakpoint to reach their registers"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Registered {
    /// The new breakpoint.
    pub handle: Handle,
    /// CPUs to [`Manager::sync`] so the breakpoint reaches the hardware now.
    pub sync: CpuSet,
}

/// Registers set aside for a debugger on one CPU: slots `first..first + count` of
/// `pool`, which the scheduler never touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Reservation {
    /// The pool.
    pub pool: Pool,
    /// First reserved physical slot.
    pub first: u8,
    /// Number of reserved slots.
    pub count: u8,
}

impl Reservation {
    /// A reservation of slots `first..first + count` of `pool`, as
    /// [`Manager::reserve`] returns it: for a debugger that hands its
    /// reservations to an adapter (which checks them against the hardware).
    pub const fn new(pool: Pool, first: u8, count: u8) -> Self {
        Reservation { pool, first, count }
    }
}

pub(crate) struct State<S, const CPUS: usize, const EVENTS: usize, const TASKS: usize> {
    pub(crate) events: [Option<Event<S>>; EVENTS],
    /// Each entry's place in its list: a live event's target list, or the
    /// retiring list (see [`crate::lists`]).
    pub(crate) links: [Link; EVENTS],
    /// Reusable entries (free and not retiring), lowest first.
    pub(crate) free: FreeSet<EVENTS>,
    /// Occupied entries of `events`.
    pub(crate) used: usize,
    /// Free entries whose cell was hidden but may still have a delivery in
    /// flight on another CPU: not reusable until the cell is seen idle.
    pub(crate) retiring: [bool; EVENTS],
    /// The entries of `retiring` that are set, as a list.
    pub(crate) retiring_list: List,
    /// How many entries of `retiring` are set.
    pub(crate) retiring_n: usize,
    /// Per entry, the generation of its current (or, when free, next)
    /// occupant; see [`Handle`].
    pub(crate) generations: [u64; EVENTS],
    pub(crate) cpus: [CpuState<S>; CPUS],
    /// Per CPU, its `Target::Cpu` events: `[pinned, flexible]`.
    pub(crate) cpu_lists: [[List; 2]; CPUS],
    /// The `Target::AllCpus` events: `[pinned, flexible]`.
    pub(crate) all_lists: [List; 2],
    /// Per task with events, its events: `[pinned, flexible]`. At most
    /// `EVENTS` tasks have events, so it is never full.
    pub(crate) task_lists: TaskMap<[List; 2], EVENTS>,
    /// Per task running on some CPU, where (at most `CPUS` of them).
    pub(crate) running: TaskMap<Running, CPUS>,
    /// One more than the highest online CPU (0: none online).
    pub(crate) online_end: u16,
}

/// Where a task runs: `n` CPUs have it as their task; `cpu` is the one
/// while it never ran on two at once since it last ran nowhere.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    pub(crate) cpu: u16,
    pub(crate) n: u16,
    pub(crate) several: bool,
}

impl Running {
    const NONE: Running = Running {
        cpu: 0,
        n: 0,
        several: false,
    };
}

impl<S, const CPUS: usize, const EVENTS: usize, const TASKS: usize> State<S, CPUS, EVENTS, TASKS> {
    #[cfg(not(loom))]
    const NEW: Self = State {
        events: [const { None }; EVENTS],
        links: [Link::NONE; EVENTS],
        free: FreeSet::NEW,
        used: 0,
        retiring: [false; EVENTS],
        retiring_list: List::EMPTY,
        retiring_n: 0,
        generations: [1; EVENTS],
        cpus: [const { CpuState::OFFLINE }; CPUS],
        cpu_lists: [[List::EMPTY; 2]; CPUS],
        all_lists: [List::EMPTY; 2],
        task_lists: TaskMap::new([List::EMPTY; 2]),
        running: TaskMap::new(Running::NONE),
        online_end: 0,
    };

    #[cfg(loom)]
    fn new() -> Self {
        State {
            events: core::array::from_fn(|_| None),
            links: [Link::NONE; EVENTS],
            free: FreeSet::NEW,
            used: 0,
            retiring: [false; EVENTS],
            retiring_list: List::EMPTY,
            retiring_n: 0,
            generations: [1; EVENTS],
            cpus: core::array::from_fn(|_| CpuState::OFFLINE),
            cpu_lists: [[List::EMPTY; 2]; CPUS],
            all_lists: [List::EMPTY; 2],
            task_lists: TaskMap::new([List::EMPTY; 2]),
            running: TaskMap::new(Running::NONE),
            online_end: 0,
        }
    }

    /// The list event `i` with `target` and `pinned` belongs in, inserting
    /// a task's (empty) entry if `create`.
    fn list_of<'a>(
        cpu_lists: &'a mut [[List; 2]; CPUS],
        all_lists: &'a mut [List; 2],
        task_lists: &'a mut TaskMap<[List; 2], EVENTS>,
        target: Target,
        pinned: bool,
        create: bool,
    ) -> Option<&'a mut List> {
        let lists = match target {
            Target::Cpu(c) => cpu_lists.get_mut(usize::from(c))?,
            Target::AllCpus => all_lists,
            Target::Task { task, .. } if create => {
                task_lists.get_or_insert(task, [List::EMPTY; 2])?
            }
            Target::Task { task, .. } => task_lists.get_mut(task)?,
        };
        lists.get_mut(usize::from(!pinned))
    }

    /// Put live event `i` in the list of its target.
    pub(crate) fn link(&mut self, i: usize) {
        let Some(ev) = self.events.get(i).and_then(Option::as_ref) else {
            return;
        };
        let (target, pinned) = (ev.attr.target, ev.attr.pinned);
        let list = Self::list_of(
            &mut self.cpu_lists,
            &mut self.all_lists,
            &mut self.task_lists,
            target,
            pinned,
            true,
        );
        // (Never `None`: a task map entry per task with events fits.)
        if let Some(list) = list {
            lists::insert(&mut self.links, list, i as u16);
        }
    }

    /// Take live event `i` out of the list of its target.
    pub(crate) fn unlink(&mut self, i: usize) {
        let Some(ev) = self.events.get(i).and_then(Option::as_ref) else {
            return;
        };
        let (target, pinned) = (ev.attr.target, ev.attr.pinned);
        if let Some(list) = Self::list_of(
            &mut self.cpu_lists,
            &mut self.all_lists,
            &mut self.task_lists,
            target,
            pinned,
            false,
        ) {
            lists::remove(&mut self.links, list, i as u16);
        }
        if let Target::Task { task, .. } = target {
            if self
                .task_lists
                .get(task)
                .is_some_and(|l| l.iter().all(|l| l.is_empty()))
            {
                self.task_lists.remove(task);
            }
        }
    }

    /// A task's lists (empty ones when it has no events).
    pub(crate) fn task_lists(&self, task: Option<TaskId>) -> [List; 2] {
        task.and_then(|t| self.task_lists.get(t).copied())
            .unwrap_or([List::EMPTY; 2])
    }

    /// Make `task` the task of CPU `c`, keeping `running` in step.
    pub(crate) fn set_task(&mut self, c: usize, task: Option<TaskId>) {
        let Some(cs) = self.cpus.get_mut(c) else {
            return;
        };
        let old = core::mem::replace(&mut cs.task, task);
        if old == task {
            return;
        }
        if let Some(t) = old {
            let gone = self.running.get_mut(t).is_some_and(|r| {
                r.n = r.n.saturating_sub(1);
                r.n == 0
            });
            if gone {
                self.running.remove(t);
            }
        }
        if let Some(t) = task {
            // (Never `None`: a CPU runs one task at a time.)
            if let Some(r) = self.running.get_or_insert(t, Running::NONE) {
                r.several |= r.n > 0;
                r.n += 1;
                r.cpu = c as u16;
            }
        }
    }

    /// Every online CPU, as a set (up to the highest online one).
    pub(crate) fn all_online(&self) -> CpuSet {
        CpuSet::below(self.online_end)
    }

    fn online(&self, cpu: u16) -> CpuSet {
        if self.cpus.get(usize::from(cpu)).is_some_and(|cs| cs.online) {
            CpuSet::one(cpu)
        } else {
            CpuSet::EMPTY
        }
    }
}

/// The hardware breakpoint manager.
///
/// * `A`: the CPU family's backend.
/// * `H`: receives samples.
/// * `CPUS`: maximum CPUs (1 to 65535, as CPU numbers are `u16`; default
///   1), `EVENTS`: maximum breakpoints (1 to 65535: storage indices are
///   `u16`; default 64), `TASKS`: maximum tasks holding
///   pinned breakpoints at once (any number >= 1; default 64).
///
/// The backend's per-CPU state ([`Arch::CpuState`]) is kept here, one per
/// CPU, so the CPU count is written once: `Manager<ArmBackend<_>, H, 4>`.
///
/// Mutations are serialized with [`critical_section`]; [`Manager::handle_exception`]
/// takes no lock. See the crate documentation for who calls what.
pub struct Manager<
    A: Arch,
    H = (),
    const CPUS: usize = 1,
    const EVENTS: usize = 64,
    const TASKS: usize = 64,
> {
    pub(crate) arch: A,
    /// The backend's state for each CPU, handed to it on that CPU.
    pub(crate) backend_cpus: [A::CpuState; CPUS],
    pub(crate) handler: H,
    pub(crate) state: Mutex<RefCell<State<A::Slot, CPUS, EVENTS, TASKS>>>,
    /// Apart from `state` so a mutation borrows both in place: the table is
    /// large (it grows with `TASKS`) and is never moved or copied per call.
    pub(crate) table: Mutex<RefCell<Option<ConstraintTable<CPUS, TASKS>>>>,
    /// This manager's identity, carried by its handles; 0 until
    /// [`Manager::init`]. An atomic so the exception path can name handles
    /// without a lock (32-bit: see `crate::id`).
    pub(crate) id: AtomicU32,
    pub(crate) cells: [EventCell; EVENTS],
    pub(crate) maps: [SlotMap; CPUS],
}

impl<A: Arch, H: Handler, const CPUS: usize, const EVENTS: usize, const TASKS: usize>
    Manager<A, H, CPUS, EVENTS, TASKS>
{
    const SHAPE_OK: () = {
        // CPU numbers are `u16`, and so is the CPU count `init` takes.
        assert!(
            CPUS >= 1 && CPUS <= u16::MAX as usize,
            "CPUS must be 1..=65535"
        );
        assert!(
            EVENTS >= 1 && EVENTS <= u16::MAX as usize,
            "EVENTS must be 1..=65535"
        );
        assert!(TASKS >= 1, "TASKS must be at least 1");
    };

    /// A manager with no CPUs set up yet; call [`Manager::init`] next.
    #[cfg(not(loom))]
    pub const fn new(arch: A, handler: H) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::SHAPE_OK;
        Manager {
            arch,
            backend_cpus: [const { A::CPU_STATE_INIT }; CPUS],
            handler,
            state: Mutex::new(RefCell::new(State::NEW)),
            table: Mutex::new(RefCell::new(None)),
            id: AtomicU32::new(0),
            cells: [const { EventCell::new() }; EVENTS],
            maps: [const { SlotMap::new() }; CPUS],
        }
    }

    /// Under `--cfg loom` (model checking the dispatch path, tests only) the
    /// atomics are loom's, which cannot be built in a `const fn`.
    #[cfg(loom)]
    pub fn new(arch: A, handler: H) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::SHAPE_OK;
        Manager {
            arch,
            backend_cpus: [const { A::CPU_STATE_INIT }; CPUS],
            handler,
            state: Mutex::new(RefCell::new(State::new())),
            table: Mutex::new(RefCell::new(None)),
            id: AtomicU32::new(0),
            cells: core::array::from_fn(|_| EventCell::new()),
            maps: core::array::from_fn(|_| SlotMap::new()),
        }
    }

    /// The backend.
    pub fn arch(&self) -> &A {
        &self.arch
    }

    /// The backend's state for `cpu` ([`Arch::CpuState`]), for calls the
    /// backend offers beyond the [`Arch`] contract (Arm's manual step-over
    /// completion, say). [`Error::CpuOutOfRange`] for `cpu >= CPUS`.
    pub fn backend_cpu(&self, cpu: u16) -> Result<&A::CpuState, Error> {
        self.backend_cpus
            .get(usize::from(cpu))
            .ok_or(Error::CpuOutOfRange { cpu })
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Run `f` on the state and the (possibly not yet built) table, in a
    /// critical section; a re-entrant call is refused with [`Error::Busy`].
    pub(crate) fn with_parts<R>(
        &self,
        f: impl FnOnce(
            &mut State<A::Slot, CPUS, EVENTS, TASKS>,
            &mut Option<ConstraintTable<CPUS, TASKS>>,
        ) -> Result<R, Error>,
    ) -> Result<R, Error> {
        critical_section::with(|cs| {
            let st = self.state.borrow(cs).try_borrow_mut();
            let table = self.table.borrow(cs).try_borrow_mut();
            match (st, table) {
                (Ok(mut st), Ok(mut table)) => f(&mut st, &mut table),
                _ => Err(Error::Busy),
            }
        })
    }

    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut State<A::Slot, CPUS, EVENTS, TASKS>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.with_parts(|st, _| f(st))
    }

    pub(crate) fn with_table<R>(
        &self,
        f: impl FnOnce(
            &mut State<A::Slot, CPUS, EVENTS, TASKS>,
            &mut ConstraintTable<CPUS, TASKS>,
        ) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.with_parts(|st, table| f(st, table.as_mut().ok_or(Error::NotInitialized)?))
    }

    /// Discover the debug hardware ([`Arch::discover`]; call it on the boot
    /// CPU) and build the constraint table for `nr_cpus` CPUs from the slot
    /// counts found. All CPUs start offline; bring each up with
    /// [`Manager::cpu_online`] on that CPU. Calling it again once breakpoints exist
    /// is refused with [`Error::Busy`]. Without usable debug hardware the
    /// backend's reason is returned ([`Error::Hardware`]).
    ///
    /// The first `init` also gives the manager the identity its handles
    /// carry, so that no other manager accepts them.
    pub fn init(&self, nr_cpus: u16) -> Result<(), Error> {
        let counts = self.arch.discover()?;
        ConstraintTable::<CPUS, TASKS>::validate(counts, nr_cpus)?;
        self.with_parts(|st, slot| {
            if st.used != 0 {
                return Err(Error::Busy);
            }
            // Built in place (it can be megabytes): copied from a constant
            // on the first init (a whole constant, so no temporary), then
            // reset where it lies; never on the stack.
            if slot.is_none() {
                *slot = const { Some(ConstraintTable::UNCONFIGURED) };
            }
            if let Some(table) = slot {
                table.reset(counts, nr_cpus)?;
            }
            for cpu in st.cpus.iter_mut() {
                *cpu = CpuState::OFFLINE;
                cpu.installed = Image::empty(counts);
            }
            st.running.clear();
            st.online_end = 0;
            for map in &self.maps {
                map.set_reserved(0, 0);
                map.set_reserved(1, 0);
            }
            if self.id.load(Ordering::Relaxed) == 0 {
                self.id.store(crate::id::next(), Ordering::Relaxed);
            }
            Ok(())
        })
    }

    /// The slot counts in use, once initialized.
    pub fn slot_counts(&self) -> Result<SlotCounts, Error> {
        self.with_parts(|_, table| {
            table
                .as_ref()
                .map(ConstraintTable::counts)
                .ok_or(Error::NotInitialized)
        })
    }

    /// Bring `cpu` online. Call it on that CPU: the backend initializes the
    /// CPU's debug hardware (clearing every slot) and the CPU receives every
    /// breakpoint that applies to it, including all-CPU ones registered earlier.
    ///
    /// On a CPU that is online already (resuming from a low-power state that
    /// lost the debug registers) the task running there stays the running
    /// task, so its breakpoints are back at once, and flexible rotation
    /// carries on where it was. Debugger reservations stay reserved, but
    /// their registers were cleared with the rest: the debugger reprograms
    /// them.
    pub fn cpu_online(&self, cpu: u16) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            self.arch.init_cpu(cpu, self.backend_cpu(cpu)?)?;
            let cs = st.cpus.get_mut(c).ok_or(Error::CpuOutOfRange { cpu })?;
            // The hardware is blank again: so is what dispatch believes is on
            // it (this CPU may have been online already).
            self.clear_map(c);
            let (task, cursor) = if cs.online {
                (cs.task, cs.cursor)
            } else {
                (None, 0)
            };
            st.set_task(c, task);
            let cs = st.cpus.get_mut(c).ok_or(Error::CpuOutOfRange { cpu })?;
            *cs = CpuState::OFFLINE;
            cs.installed = Image::empty(table.counts());
            cs.online = true;
            cs.task = task;
            cs.cursor = cursor;
            st.online_end = st.online_end.max(cpu + 1);
            self.reschedule(st, table, c);
            Ok(())
        })
    }

    /// Take `cpu` offline. Call it on that CPU: its slots are cleared and it
    /// stops receiving breakpoints. Breakpoints bound to it stay registered and
    /// return when it comes back.
    pub fn cpu_offline(&self, cpu: u16) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            let counts = table.counts();
            let cs = st.cpus.get_mut(c).ok_or(Error::CpuOutOfRange { cpu })?;
            if !cs.online {
                return Ok(());
            }
            self.clear_map(c);
            let old_task = cs.task;
            let empty = Image::empty(counts);
            if cs.installed != empty {
                if let Some(bs) = self.backend_cpus.get(c) {
                    self.arch.install(cpu, bs, &cs.installed, &empty);
                }
            }
            *cs = CpuState::OFFLINE;
            cs.installed = empty;
            // (CpuState::OFFLINE has no task: tell `running`.)
            cs.task = old_task;
            st.set_task(c, None);
            if st.online_end == cpu + 1 {
                // Hotplug only: find the highest CPU still online.
                st.online_end = st
                    .cpus
                    .iter()
                    .rposition(|cs| cs.online)
                    .map_or(0, |n| n as u16 + 1);
            }
            Ok(())
        })
    }

    /// Forget every slot occupant dispatch knows of on CPU `c`.
    fn clear_map(&self, c: usize) {
        if let Some(map) = self.maps.get(c) {
            for p in 0..2 {
                for e in map.pool(p) {
                    e.clear();
                }
            }
        }
    }

    fn encode(
        &self,
        table: &ConstraintTable<CPUS, TASKS>,
        attr: &BreakpointAttr,
    ) -> Result<(Encoding<A::Slot>, Pool), Error> {
        attr.validate_request(Some(table.nr_cpus()), |a, l| self.arch.address_space(a, l))?;
        let enc = self.arch.encode(attr)?;
        let counts = table.counts();
        let pool = counts.pool_of(enc.ty);
        let slots = counts.slots(pool);
        if enc.pieces.is_empty() {
            return Err(Error::UnsupportedLength { len: attr.len });
        }
        if enc.weight() > slots {
            return Err(Error::RangeTooLarge {
                weight: enc.weight(),
                slots,
            });
        }
        Ok((enc, pool))
    }

    /// Register a breakpoint. On success it is reserved in the constraint table
    /// (pinned: guaranteed to be on the hardware whenever its context runs) and
    /// reaches the hardware at the next [`Manager::sync`] / [`Manager::sched_in`] of the
    /// CPUs in [`Registered::sync`]. On failure nothing changed.
    pub fn register(&self, attr: &BreakpointAttr) -> Result<Registered, Error> {
        self.with_table(|st, table| {
            let (enc, pool) = self.encode(table, attr)?;
            self.free_index(st).ok_or(Error::TooManyEvents)?;
            let ev = Event {
                attr: *attr,
                enc,
                pool,
                enabled: !attr.disabled,
                times: Times::default(),
            };
            table.take(&ev.demand())?;
            let handle = self.install_event(st, ev).ok_or(Error::TooManyEvents)?;
            Ok(Registered {
                handle,
                sync: affected(st, attr.target),
            })
        })
    }

    /// Unregister a breakpoint ("hide now, reclaim later"). When this
    /// returns, no delivery to its handler starts any more on any CPU: hits
    /// that still arrive before the CPUs in the returned set are synced are
    /// counted as stray. A delivery that had already started on another CPU
    /// may still be running; its storage is not reused until it is over.
    ///
    /// Never waits, so it may be called from any handler, the breakpoint's
    /// own included. To know that the handler has finished (before freeing
    /// what it uses), ask [`Manager::quiesced`] or call [`Manager::wait_quiesced`]
    /// outside handler context.
    pub fn unregister(&self, h: Handle) -> Result<CpuSet, Error> {
        self.with_table(|st, table| {
            let ev = self.lookup(st, h)?;
            let (demand, target) = (ev.demand(), ev.attr.target);
            table.give_back(&demand);
            Ok(self.free_event(st, usize::from(h.index), target))
        })
    }

    /// Whether the breakpoint `h` named is unregistered and none of its
    /// deliveries is still running on any CPU: from then on its handler
    /// never runs for it again and what the handler uses for it may be freed.
    ///
    /// Refused with [`Error::StillRegistered`] while the breakpoint is
    /// registered, and with [`Error::StaleHandle`] for another manager's
    /// handle. It may answer `false` a little longer than needed: while a
    /// later breakpoint that reused the storage was unregistered too and a
    /// delivery of that one is running.
    pub fn quiesced(&self, h: Handle) -> Result<bool, Error> {
        self.with(|st| {
            let i = usize::from(h.index);
            let current = st.generations.get(i).copied().ok_or(Error::StaleHandle)?;
            let occupied = st.events.get(i).is_some_and(Option::is_some);
            if h.manager != self.id.load(Ordering::Relaxed) || h.generation > current {
                return Err(Error::StaleHandle);
            }
            if h.generation == current {
                // Live, or (free and this generation never issued) forged.
                return Err(if occupied {
                    Error::StillRegistered
                } else {
                    Error::StaleHandle
                });
            }
            // Unregistered: its storage stays retiring until its cell has been
            // seen idle after the hide, and after that no delivery that saw
            // its tag is running. A later occupant means it was seen idle.
            Ok(occupied || self.reclaimable(st, i))
        })
    }

    /// Wait until [`Manager::quiesced`] says the unregistered breakpoint `h`
    /// named has no delivery running on any CPU. Refused as
    /// [`Manager::quiesced`] refuses.
    ///
    /// Must not be called from a [`Handler`] (nor anywhere a handler can be
    /// held up, such as with the debug exception masked on a CPU where one
    /// is pending): it waits for handlers, possibly this one. It takes the
    /// manager's critical section only briefly, once per check.
    pub fn wait_quiesced(&self, h: Handle) -> Result<(), Error> {
        while !self.quiesced(h)? {
            core::hint::spin_loop();
        }
        Ok(())
    }

    /// Whether every breakpoint unregistered so far has no delivery running
    /// on any CPU (for breakpoints whose handles the embedder does not hold,
    /// such as the copies [`Manager::fork`] made, after [`Manager::exit`]). Poll it
    /// outside handler context; while other CPUs keep unregistering
    /// breakpoints that are being hit it may stay `false`, and then
    /// [`Manager::quiesced`] on a particular handle is the answer.
    pub fn all_quiesced(&self) -> Result<bool, Error> {
        self.with(|st| {
            self.reclaim(st);
            Ok(st.retiring_n == 0)
        })
    }

    /// Enable a breakpoint (it takes part in scheduling again).
    pub fn enable(&self, h: Handle) -> Result<CpuSet, Error> {
        self.set_enabled(h, true)
    }

    /// Disable a breakpoint: it keeps its reservation but leaves the hardware.
    pub fn disable(&self, h: Handle) -> Result<CpuSet, Error> {
        self.set_enabled(h, false)
    }

    fn set_enabled(&self, h: Handle, on: bool) -> Result<CpuSet, Error> {
        self.with(|st| {
            let ev = self.lookup(st, h)?;
            ev.enabled = on;
            let target = ev.attr.target;
            Ok(affected(st, target))
        })
    }

    /// Change a live breakpoint (address, length, access, target, period…).
    /// The new form is validated, encoded and checked against the table with the
    /// old form's reservation given back; if anything is refused the breakpoint
    /// stays exactly as it was.
    pub fn modify(&self, h: Handle, attr: &BreakpointAttr) -> Result<CpuSet, Error> {
        self.with_table(|st, table| {
            let old = self.lookup(st, h)?.clone();
            let (enc, pool) = self.encode(table, attr)?;
            let new = Event {
                attr: *attr,
                enc,
                pool,
                enabled: !attr.disabled,
                times: old.times,
            };
            table.give_back(&old.demand());
            if let Err(e) = table.take(&new.demand()) {
                // Giving the old reservation back cannot fail: it was there.
                let _ = table.take(&old.demand());
                return Err(e);
            }
            if let Some(cell) = self.cells.get(usize::from(h.index)) {
                cell.update(attr.addr, attr.len, attr.access, attr.sample_period);
            }
            let i = usize::from(h.index);
            st.unlink(i);
            *self.lookup(st, h)? = new;
            st.link(i);
            Ok(affected(st, old.attr.target).union(affected(st, attr.target)))
        })
    }

    /// `parent` forked `child`: copy the parent's inheritable breakpoints to the
    /// child, all of them or none. Costs what the parent has: it walks the
    /// parent's breakpoints (in storage order) to reserve each copy in the
    /// constraint table, walks them again to give the reservations back if
    /// one is refused, and otherwise once more to store the copies.
    pub fn fork(&self, parent: TaskId, child: TaskId) -> Result<CpuSet, Error> {
        self.with_table(|st, table| {
            let from = Merge::new(&st.task_lists(Some(parent)));
            // The copy of inheritable event `i`, as the table sees it.
            let copy = |st: &State<A::Slot, CPUS, EVENTS, TASKS>, i: u16| {
                let ev = st.events.get(usize::from(i))?.as_ref()?;
                let Target::Task { cpu, .. } = ev.attr.target else {
                    return None;
                };
                let target = Target::Task { task: child, cpu };
                ev.attr.inherit.then(|| crate::table::Demand {
                    target,
                    ..ev.demand()
                })
            };
            let n = from
                .iter(&st.links)
                .filter(|&i| copy(st, i).is_some())
                .count();
            self.reclaim(st);
            if n > EVENTS - st.used - st.retiring_n {
                return Err(Error::TooManyEvents);
            }
            // Account the copies in batches (see `ConstraintTable::merged`).
            // A refused batch is undone, and the copies are retried one by
            // one from the start, for the error a one-by-one fork gives.
            let give_back_before = |table: &mut ConstraintTable<CPUS, TASKS>, stop: u16| {
                for j in from.iter(&st.links).take_while(|&j| j != stop) {
                    if let Some(d) = copy(st, j) {
                        table.give_back(&d);
                    }
                }
            };
            // The batch being gathered, and the copy it starts at.
            let mut batch: Option<(crate::table::Demand, u16)> = None;
            let mut refused: Option<u16> = None;
            for i in from.iter(&st.links) {
                let Some(d) = copy(st, i) else { continue };
                if let Some((b, first)) = batch {
                    if let Some(m) = table.merged(&b, &d) {
                        batch = Some((m, first));
                        continue;
                    }
                    if table.take(&b).is_err() {
                        refused = Some(first);
                        break;
                    }
                }
                batch = Some((d, i));
            }
            if let (None, Some((b, first))) = (refused, batch) {
                if table.take(&b).is_err() {
                    refused = Some(first);
                }
            }
            if let Some(first) = refused {
                give_back_before(table, first);
                for i in from.iter(&st.links) {
                    let Some(d) = copy(st, i) else { continue };
                    if let Err(err) = table.take(&d) {
                        give_back_before(table, i);
                        return Err(err);
                    }
                }
            }
            // The copies take the lowest free entries, in ascending order:
            // gather them in lists of their own (each append O(1)), then
            // move them to the child (the parent's lists, walked here, may
            // be the child's).
            let mut copies = [List::EMPTY; 2];
            let mut walk = from;
            while let Some(i) = walk.next(&st.links) {
                let Some(ev) = st.events.get(usize::from(i)).and_then(Option::as_ref) else {
                    continue;
                };
                let Target::Task { cpu, .. } = ev.attr.target else {
                    continue;
                };
                if !ev.attr.inherit {
                    continue;
                }
                let mut e = ev.clone();
                e.attr.target = Target::Task { task: child, cpu };
                e.times = Times::default();
                let pinned = e.attr.pinned;
                let Some(index) = self.store_event(st, e) else {
                    break;
                };
                if let Some(list) = copies.get_mut(usize::from(!pinned)) {
                    lists::insert(&mut st.links, list, index);
                }
            }
            for mut list in copies {
                while let Some(i) = list.first() {
                    lists::remove(&mut st.links, &mut list, i);
                    st.link(usize::from(i));
                }
            }
            Ok(affected(
                st,
                Target::Task {
                    task: child,
                    cpu: None,
                },
            ))
        })
    }

    /// `task` exited: unregister all of its breakpoints, as
    /// [`Manager::unregister`] does for each (in one critical section: all of
    /// them or, if refused, none). Never waits for a handler, so a handler
    /// may call it, for its own task too. To know that their handlers have
    /// finished, use [`Manager::quiesced`] with their handles, or
    /// [`Manager::all_quiesced`] for copies made by [`Manager::fork`].
    /// Costs what the task has: it walks only the task's breakpoints.
    pub fn exit(&self, task: TaskId) -> Result<CpuSet, Error> {
        self.with_table(|st, table| {
            let mut set = CpuSet::EMPTY;
            // Given back in batches (see `ConstraintTable::merged`).
            let mut batch: Option<crate::table::Demand> = None;
            while let Some(i) = Merge::new(&st.task_lists(Some(task))).next(&st.links) {
                let i = usize::from(i);
                let Some(ev) = st.events.get(i).and_then(Option::as_ref) else {
                    break;
                };
                let (d, target) = (ev.demand(), ev.attr.target);
                batch = match batch {
                    None => Some(d),
                    Some(b) => table.merged(&b, &d).or_else(|| {
                        table.give_back(&b);
                        Some(d)
                    }),
                };
                set = set.union(self.free_event(st, i, target));
            }
            if let Some(b) = batch {
                table.give_back(&b);
            }
            Ok(set)
        })
    }

    /// Set aside `count` registers for breakpoints of type `ty` on `cpu` for a
    /// debugger (kgdb, a gdb stub), replacing any earlier reservation there. The
    /// reserved slots are the highest-numbered ones; the scheduler never uses
    /// them, and the debugger programs them through the backend: installs
    /// leave registers whose image entry does not change alone. Refused if it
    /// would break a pinned promise. Sync `cpu` afterwards.
    ///
    /// When a backend names the slots that fired (x86, SH) and one of them is
    /// reserved, [`Manager::handle_exception`] hands the exception on
    /// ([`Resume::NOT_OURS`](crate::Resume::NOT_OURS), or the resume with [`Resume::pass_on`](crate::Resume::pass_on) set if a
    /// breakpoint of ours fired too). When it only reports an address (Arm), a hit that no
    /// breakpoint of ours contains is left to the debugger (neither guessed
    /// nor counted as stray), which matches the address against its own.
    pub fn reserve(&self, cpu: u16, ty: BpType, count: u8) -> Result<Reservation, Error> {
        self.with_table(|_, table| {
            let counts = table.counts();
            let pool = counts.pool_of(ty);
            table.set_reserved(cpu, pool, count)?;
            let first = counts.slots(pool) - count;
            Ok(Reservation { pool, first, count })
        })
    }

    /// Give back the debugger registers of type `ty` on `cpu`. The debugger
    /// disables them first: the manager believes they are clear and only
    /// writes a register again when it schedules a breakpoint there. Refused with
    /// [`Error::CpuOutOfRange`] for a CPU the manager does not have and with
    /// [`Error::NotReserved`] when nothing of that type is reserved there.
    pub fn unreserve(&self, cpu: u16, ty: BpType) -> Result<(), Error> {
        self.with_table(|_, table| {
            cpu_index(table, cpu)?;
            let pool = table.counts().pool_of(ty);
            if table.reserved(cpu, pool) == 0 {
                return Err(Error::NotReserved);
            }
            table.set_reserved(cpu, pool, 0)
        })
    }

    /// The register image installed on `cpu` (for a hypervisor to save before
    /// running a guest with its own debug registers).
    pub fn image(&self, cpu: u16) -> Result<Image<A::Slot>, Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            st.cpus
                .get(c)
                .map(|cs| cs.installed.clone())
                .ok_or(Error::CpuOutOfRange { cpu })
        })
    }

    /// The hardware of `cpu` now holds `clobbered` (for example a guest's debug
    /// registers): put the manager's image back, writing only the registers that
    /// differ. Call it on that CPU.
    pub fn restore(&self, cpu: u16, clobbered: &Image<A::Slot>) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            let cs = st.cpus.get(c).ok_or(Error::CpuOutOfRange { cpu })?;
            if cs.online && *clobbered != cs.installed {
                self.arch
                    .install(cpu, self.backend_cpu(cpu)?, clobbered, &cs.installed);
            }
            Ok(())
        })
    }

    /// Hits counted for a breakpoint.
    pub fn hits(&self, h: Handle) -> Result<u64, Error> {
        self.with(|st| {
            self.lookup(st, h)?;
            Ok(self
                .cells
                .get(usize::from(h.index))
                .map_or(0, EventCell::hits))
        })
    }

    /// Enabled/running ticks of a breakpoint.
    pub fn times(&self, h: Handle) -> Result<Times, Error> {
        self.with(|st| Ok(self.lookup(st, h)?.times))
    }

    /// The attr a breakpoint was registered (or last modified) with.
    pub fn attr(&self, h: Handle) -> Result<BreakpointAttr, Error> {
        self.with(|st| Ok(self.lookup(st, h)?.attr))
    }

    /// The weight (registers needed) of a breakpoint.
    pub fn weight(&self, h: Handle) -> Result<u8, Error> {
        self.with(|st| Ok(self.lookup(st, h)?.enc.weight()))
    }

    /// The physical slots a breakpoint occupies on `cpu` now, as a bit mask
    /// over its pool (0: not on the hardware).
    pub fn slots_on(&self, h: Handle, cpu: u16) -> Result<u32, Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            let ev = self.lookup(st, h)?;
            let p = ev.pool.index();
            let cs = st.cpus.get(c).ok_or(Error::CpuOutOfRange { cpu })?;
            let mut mask = 0u32;
            // The assignment names storage indices only; a CPU that has not
            // been resynced since the breakpoint's storage was freed and
            // reused still holds the old occupant, so check its generation.
            let map = self.maps.get(c);
            for (s, occ) in cs.assign[p].iter().enumerate() {
                let current = map
                    .and_then(|m| m.entry(p, s))
                    .and_then(|e| e.load())
                    .is_some_and(|(_, tag, _, _)| tag == tag_of(h.generation));
                if matches!(occ, Some((i, _)) if *i == h.index) && current {
                    mask |= 1 << s;
                }
            }
            Ok(mask)
        })
    }

    /// Stray hits counted on `cpu`: exceptions that matched no live breakpoint
    /// (or fell outside its region) and were not delivered.
    pub fn stray(&self, cpu: u16) -> u64 {
        self.maps.get(usize::from(cpu)).map_or(0, SlotMap::stray)
    }

    /// What the exception path counted on `cpu`: exceptions handled, stray
    /// hits, step-overs and exceptions passed on. Lock-free (relaxed loads),
    /// so it may be read from anywhere, a handler included.
    pub fn counters(&self, cpu: u16) -> Result<CpuCounters, Error> {
        self.maps
            .get(usize::from(cpu))
            .map(SlotMap::counters)
            .ok_or(Error::CpuOutOfRange { cpu })
    }

    /// Number of live breakpoints.
    pub fn len(&self) -> usize {
        self.with(|st| Ok(st.used)).unwrap_or(0)
    }

    /// Whether no breakpoint is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Run `f` on the constraint table, in place (for inspection and
    /// tests): O(1) stack and no copy, whatever `TASKS` and `CPUS` are. `f`
    /// runs inside the manager's critical section, so it should be short;
    /// clone the table inside it (`hw.inspect_table(Clone::clone)`) to keep a
    /// snapshot, which costs the table's size wherever the copy is put.
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialized`] before [`Manager::init`];
    /// [`Error::Busy`] when called from inside another call of this manager
    /// (a handler, say).
    pub fn inspect_table<R>(
        &self,
        f: impl FnOnce(&ConstraintTable<CPUS, TASKS>) -> R,
    ) -> Result<R, Error> {
        self.with_parts(|_, table| table.as_ref().map(f).ok_or(Error::NotInitialized))
    }
}

pub(crate) fn cpu_index<const CPUS: usize, const TASKS: usize>(
    table: &ConstraintTable<CPUS, TASKS>,
    cpu: u16,
) -> Result<usize, Error> {
    if cpu < table.nr_cpus() {
        Ok(usize::from(cpu))
    } else {
        Err(Error::CpuOutOfRange { cpu })
    }
}

/// Online CPUs whose registers may change because of a breakpoint on
/// `target`: O(1), whatever the number of CPUs (a task runs on one CPU at a
/// time; if the embedder ran it on several at once, every online CPU).
pub(crate) fn affected<S, const CPUS: usize, const EVENTS: usize, const TASKS: usize>(
    st: &State<S, CPUS, EVENTS, TASKS>,
    target: Target,
) -> CpuSet {
    match target {
        Target::Cpu(n) => st.online(n),
        Target::AllCpus => st.all_online(),
        Target::Task { task, cpu } => match (st.running.get(task), cpu) {
            (None, _) => CpuSet::EMPTY,
            (Some(r), Some(n)) if r.several || r.cpu == n => st.online(n),
            (Some(_), Some(_)) => CpuSet::EMPTY,
            (Some(r), None) if r.several => st.all_online(),
            (Some(r), None) => st.online(r.cpu),
        },
    }
}
