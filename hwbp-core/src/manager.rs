//! [`Hwbp`]: the breakpoint manager an embedder keeps (usually in a `static`).

use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, Ordering};

use critical_section::Mutex;
use heapless::Vec;

use crate::arch::{Action, Arch, Fired, Image, Pool, Resume, SlotCounts, MAX_SLOTS};
use crate::attribution::{distance, match_address, Candidate as Slot, Match};
use crate::dispatch::{next_generation, tag_of, EventCell, SlotMap};
use crate::sched::{plan, Candidate, CpuState};
use crate::table::{ConstraintTable, Demand};
use crate::{Access, BpType, BreakpointAttr, Encoding, Error, Target, TaskId};

/// Names one registered breakpoint of one manager.
///
/// Every call that takes a handle refuses it with [`Error::StaleHandle`]
/// once the breakpoint is unregistered, even if its storage is reused, and
/// when the handle comes from another manager (a handle carries the identity
/// its manager took in [`Hwbp::init`]).
///
/// Storage is reused lowest index first, so one index can be reused very
/// often (a debugger setting and clearing one watchpoint in a loop). The
/// generation that tells its occupants apart is therefore 64-bit: an old
/// handle could only become valid again after 2⁶⁴ reuses of its index
/// (centuries at one reuse per nanosecond). A 32-bit generation would have
/// let a handle kept by mistake name another user's breakpoint after 2³²
/// reuses, about an hour of such a loop. No 64-bit atomics are needed:
/// the exception path matches the low half and reads the high half only to
/// name the breakpoint in [`Sample::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Handle {
    index: u16,
    manager: u32,
    generation: u64,
}

impl Handle {
    /// The storage index (stable while the breakpoint lives).
    pub const fn index(self) -> u16 {
        self.index
    }
}

/// A set of CPUs (at most 64) whose registers must be brought up to date by
/// calling [`Hwbp::sync`] on each of them (in a kernel: an IPI).
#[must_use = "the CPUs in the set must be synced (Hwbp::sync) for the change to reach their registers"]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CpuSet(u64);

impl CpuSet {
    /// The empty set.
    pub const EMPTY: CpuSet = CpuSet(0);

    /// Whether `cpu` is in the set.
    pub const fn contains(self, cpu: u16) -> bool {
        cpu < 64 && self.0 & (1 << cpu) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw bit mask (bit n = CPU n).
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The CPUs in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u16> {
        (0..64u16).filter(move |&c| self.contains(c))
    }

    fn insert(&mut self, cpu: usize) {
        if cpu < 64 {
            self.0 |= 1 << cpu;
        }
    }

    fn union(self, other: CpuSet) -> CpuSet {
        CpuSet(self.0 | other.0)
    }
}

/// A successful registration.
#[must_use = "the CPUs in `sync` must be synced (Hwbp::sync) for the breakpoint to reach their registers"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Registered {
    /// The new breakpoint.
    pub handle: Handle,
    /// CPUs to [`Hwbp::sync`] so the breakpoint reaches the hardware now.
    pub sync: CpuSet,
}

/// Registers set aside for a debugger on one CPU: slots `first..first + count` of
/// `pool`, which the scheduler never touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reservation {
    /// The pool.
    pub pool: Pool,
    /// First reserved physical slot.
    pub first: u8,
    /// Number of reserved slots.
    pub count: u8,
}

/// Scheduler ticks during which an event could run (its context was on a CPU
/// and it was enabled) and did run (it sat in a slot). `running / enabled`
/// scales counts of multiplexed events, as perf does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Times {
    /// Ticks the event was eligible.
    pub enabled: u64,
    /// Ticks the event was on the hardware.
    pub running: u64,
}

/// What a handler receives for a delivered hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sample {
    /// The breakpoint.
    pub handle: Handle,
    /// The CPU that hit it.
    pub cpu: u16,
    /// The address accessed or executed, as precisely as the hardware reports.
    pub addr: u64,
    /// Instruction pointer at the exception.
    pub ip: u64,
    /// The access kind the hardware reports (empty if it does not).
    pub access: Access,
    /// Hits counted so far, this one included.
    pub hits: u64,
    /// The region the user asked for (first byte).
    pub region_addr: u64,
    /// The region the user asked for (length).
    pub region_len: u64,
}

/// Receives samples from the exception path.
///
/// Runs in debug-exception (possibly NMI-like) context: it must not block for
/// long. It may take critical sections (to record the sample, say) and call
/// the manager, [`Hwbp::unregister`] and [`Hwbp::exit`] included: neither
/// waits for a handler, so a handler may unregister another CPU's breakpoint
/// while that breakpoint's handler unregisters its own, or unregister the
/// breakpoint being delivered (a one-shot breakpoint). A call from a handler
/// is refused with [`Error::Busy`] when the exception interrupted a manager
/// call on the same CPU. The one thing a handler must not call is
/// [`Hwbp::wait_quiesced`]: it waits for handlers to finish.
///
/// Once [`Hwbp::unregister`] has returned, no new delivery to the breakpoint
/// starts, but one that started earlier on another CPU may still be
/// running; [`Hwbp::quiesced`] / [`Hwbp::wait_quiesced`] tell when it is
/// over (before freeing what the handler uses).
pub trait Handler {
    /// Called every `sample_period` hits of a breakpoint.
    fn on_sample(&self, sample: &Sample);
}

impl Handler for () {
    fn on_sample(&self, _: &Sample) {}
}

impl<F: Fn(&Sample)> Handler for F {
    fn on_sample(&self, sample: &Sample) {
        self(sample)
    }
}

#[derive(Clone, Debug)]
struct Event<S> {
    attr: BreakpointAttr,
    enc: Encoding<S>,
    pool: Pool,
    enabled: bool,
    times: Times,
}

impl<S> Event<S> {
    fn demand(&self) -> Demand {
        Demand {
            pool: self.pool,
            weight: self.enc.weight(),
            pinned: self.attr.pinned,
            target: self.attr.target,
        }
    }

    fn eligible(&self, cpu: u16, task: Option<TaskId>) -> bool {
        self.enabled
            && match self.attr.target {
                Target::Cpu(c) => c == cpu,
                Target::AllCpus => true,
                Target::Task { task: t, cpu: c } => Some(t) == task && c.is_none_or(|c| c == cpu),
            }
    }
}

struct State<S, const CPUS: usize, const EVENTS: usize, const TASKS: usize> {
    events: [Option<Event<S>>; EVENTS],
    /// Every index below this one is occupied, so the lowest free index is
    /// found from here (registering N breakpoints in a row costs O(N), not
    /// O(N²)).
    free_hint: usize,
    /// Occupied entries of `events`.
    used: usize,
    /// Free entries whose cell was hidden but may still have a delivery in
    /// flight on another CPU: not reusable until the cell is seen idle.
    retiring: [bool; EVENTS],
    /// How many entries of `retiring` are set.
    retiring_n: usize,
    /// Per entry, the generation of its current (or, when free, next)
    /// occupant; see [`Handle`].
    generations: [u64; EVENTS],
    cpus: [CpuState<S>; CPUS],
}

/// The hardware breakpoint manager.
///
/// * `A`: the CPU family's backend.
/// * `H`: receives samples.
/// * `CPUS`: maximum CPUs (1 to 64; default 1), `EVENTS`: maximum
///   breakpoints (1 to 65535; default 64), `TASKS`: maximum tasks holding
///   pinned breakpoints at once (a power of two; default 64).
///
/// The backend's per-CPU state ([`Arch::CpuState`]) is kept here, one per
/// CPU, so the CPU count is written once: `Hwbp<ArmBackend<_>, H, 4>`.
///
/// Mutations are serialized with [`critical_section`]; [`Hwbp::handle_exception`]
/// takes no lock. See the crate documentation for who calls what.
pub struct Hwbp<
    A: Arch,
    H = (),
    const CPUS: usize = 1,
    const EVENTS: usize = 64,
    const TASKS: usize = 64,
> {
    arch: A,
    /// The backend's state for each CPU, handed to it on that CPU.
    backend_cpus: [A::CpuState; CPUS],
    handler: H,
    state: Mutex<RefCell<State<A::Slot, CPUS, EVENTS, TASKS>>>,
    /// Apart from `state` so a mutation borrows both in place: the table is
    /// large (it grows with `TASKS`) and is never moved or copied per call.
    table: Mutex<RefCell<Option<ConstraintTable<CPUS, TASKS>>>>,
    /// This manager's identity, carried by its handles; 0 until
    /// [`Hwbp::init`]. An atomic so the exception path can name handles
    /// without a lock (32-bit: see `crate::id`).
    id: AtomicU32,
    cells: [EventCell; EVENTS],
    maps: [SlotMap; CPUS],
}

impl<A: Arch, H: Handler, const CPUS: usize, const EVENTS: usize, const TASKS: usize>
    Hwbp<A, H, CPUS, EVENTS, TASKS>
{
    const SHAPE_OK: () = {
        assert!(CPUS >= 1 && CPUS <= 64, "CPUS must be 1..=64");
        assert!(
            EVENTS >= 1 && EVENTS <= u16::MAX as usize,
            "EVENTS must be 1..=65535"
        );
        assert!(
            TASKS >= 2 && TASKS.is_power_of_two(),
            "TASKS must be a power of two >= 2"
        );
    };

    /// A manager with no CPUs set up yet; call [`Hwbp::init`] next.
    #[cfg(not(loom))]
    pub const fn new(arch: A, handler: H) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::SHAPE_OK;
        Hwbp {
            arch,
            backend_cpus: [const { A::CPU_STATE_INIT }; CPUS],
            handler,
            state: Mutex::new(RefCell::new(State {
                events: [const { None }; EVENTS],
                free_hint: 0,
                used: 0,
                retiring: [false; EVENTS],
                retiring_n: 0,
                generations: [1; EVENTS],
                cpus: [const { CpuState::OFFLINE }; CPUS],
            })),
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
        Hwbp {
            arch,
            backend_cpus: [const { A::CPU_STATE_INIT }; CPUS],
            handler,
            state: Mutex::new(RefCell::new(State {
                events: [const { None }; EVENTS],
                free_hint: 0,
                used: 0,
                retiring: [false; EVENTS],
                retiring_n: 0,
                generations: [1; EVENTS],
                cpus: [const { CpuState::OFFLINE }; CPUS],
            })),
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
    fn with_parts<R>(
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

    fn with<R>(
        &self,
        f: impl FnOnce(&mut State<A::Slot, CPUS, EVENTS, TASKS>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.with_parts(|st, _| f(st))
    }

    fn with_table<R>(
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
    /// [`Hwbp::cpu_online`] on that CPU. Calling it again once breakpoints exist
    /// is refused with [`Error::Busy`]. Without usable debug hardware the
    /// backend's reason is returned ([`Error::Hardware`]).
    ///
    /// The first `init` also gives the manager the identity its handles
    /// carry, so that no other manager accepts them.
    pub fn init(&self, nr_cpus: u16) -> Result<(), Error> {
        let counts = self.arch.discover()?;
        let table = ConstraintTable::new(counts, nr_cpus)?;
        self.with_parts(|st, slot| {
            if st.used != 0 {
                return Err(Error::Busy);
            }
            for cpu in st.cpus.iter_mut() {
                *cpu = CpuState::OFFLINE;
                cpu.installed = Image::empty(counts);
            }
            for map in &self.maps {
                map.set_reserved(0, 0);
                map.set_reserved(1, 0);
            }
            *slot = Some(table);
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
            *cs = CpuState::OFFLINE;
            cs.installed = Image::empty(table.counts());
            cs.online = true;
            cs.task = task;
            cs.cursor = cursor;
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
            let empty = Image::empty(counts);
            if cs.installed != empty {
                if let Some(bs) = self.backend_cpus.get(c) {
                    self.arch.install(cpu, bs, &cs.installed, &empty);
                }
            }
            *cs = CpuState::OFFLINE;
            cs.installed = empty;
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
    /// reaches the hardware at the next [`Hwbp::sync`] / [`Hwbp::sched_in`] of the
    /// CPUs in [`Registered::sync`]. On failure nothing changed.
    pub fn register(&self, attr: &BreakpointAttr) -> Result<Registered, Error> {
        self.with_table(|st, table| {
            let (enc, pool) = self.encode(table, attr)?;
            let index = self.free_index(st).ok_or(Error::TooManyEvents)?;
            let ev = Event {
                attr: *attr,
                enc,
                pool,
                enabled: !attr.disabled,
                times: Times::default(),
            };
            table.take(&ev.demand())?;
            let handle = self.install_event(st, index, ev);
            Ok(Registered {
                handle,
                sync: affected(st, attr.target),
            })
        })
    }

    /// The lowest reusable storage index (free, and not retiring with a
    /// delivery still in flight). Entries below `free_hint` are occupied.
    fn free_index(&self, st: &mut State<A::Slot, CPUS, EVENTS, TASKS>) -> Option<usize> {
        for i in st.free_hint.min(EVENTS)..EVENTS {
            if st.events.get(i).is_some_and(Option::is_some) {
                continue;
            }
            if self.reclaimable(st, i) {
                return Some(i);
            }
        }
        None
    }

    /// Whether free entry `i` may be reused now; a retiring entry whose cell
    /// is idle stops retiring.
    fn reclaimable(&self, st: &mut State<A::Slot, CPUS, EVENTS, TASKS>, i: usize) -> bool {
        let Some(r) = st.retiring.get_mut(i) else {
            return false;
        };
        if !*r {
            return true;
        }
        if self.cells.get(i).is_some_and(EventCell::idle) {
            *r = false;
            st.retiring_n -= 1;
            return true;
        }
        false
    }

    /// Stop retiring every entry whose cell is idle.
    fn reclaim(&self, st: &mut State<A::Slot, CPUS, EVENTS, TASKS>) {
        if st.retiring_n == 0 {
            return;
        }
        for i in 0..EVENTS {
            if st.retiring.get(i) == Some(&true) {
                self.reclaimable(st, i);
            }
        }
    }

    fn install_event(
        &self,
        st: &mut State<A::Slot, CPUS, EVENTS, TASKS>,
        index: usize,
        ev: Event<A::Slot>,
    ) -> Handle {
        let generation = st.generations.get(index).copied().unwrap_or(1);
        // (Generations start at 1 and skip tags of 0: see `next_generation`.)
        if let Some(cell) = self.cells.get(index) {
            cell.publish(
                generation,
                ev.attr.addr,
                ev.attr.len,
                ev.attr.access,
                ev.attr.sample_period,
            );
        }
        if let Some(slot) = st.events.get_mut(index) {
            if slot.is_none() {
                st.used += 1;
            }
            *slot = Some(ev);
        }
        while st.events.get(st.free_hint).is_some_and(Option::is_some) {
            st.free_hint += 1;
        }
        Handle {
            index: index as u16,
            manager: self.id.load(Ordering::Relaxed),
            generation,
        }
    }

    /// The live breakpoint `h` names: refused as stale when it was
    /// unregistered or `h` is another manager's.
    fn lookup<'s>(
        &self,
        st: &'s mut State<A::Slot, CPUS, EVENTS, TASKS>,
        h: Handle,
    ) -> Result<&'s mut Event<A::Slot>, Error> {
        let i = usize::from(h.index);
        if h.manager != self.id.load(Ordering::Relaxed)
            || st.generations.get(i) != Some(&h.generation)
        {
            return Err(Error::StaleHandle);
        }
        st.events
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(Error::StaleHandle)
    }

    /// Unregister a breakpoint ("hide now, reclaim later"). When this
    /// returns, no delivery to its handler starts any more on any CPU: hits
    /// that still arrive before the CPUs in the returned set are synced are
    /// counted as stray. A delivery that had already started on another CPU
    /// may still be running; its storage is not reused until it is over.
    ///
    /// Never waits, so it may be called from any handler, the breakpoint's
    /// own included. To know that the handler has finished (before freeing
    /// what it uses), ask [`Hwbp::quiesced`] or call [`Hwbp::wait_quiesced`]
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

    /// Wait until [`Hwbp::quiesced`] says the unregistered breakpoint `h`
    /// named has no delivery running on any CPU. Refused as
    /// [`Hwbp::quiesced`] refuses.
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
    /// such as the copies [`Hwbp::fork`] made, after [`Hwbp::exit`]). Poll it
    /// outside handler context; while other CPUs keep unregistering
    /// breakpoints that are being hit it may stay `false`, and then
    /// [`Hwbp::quiesced`] on a particular handle is the answer.
    pub fn all_quiesced(&self) -> Result<bool, Error> {
        self.with(|st| {
            self.reclaim(st);
            Ok(st.retiring_n == 0)
        })
    }

    fn free_event(
        &self,
        st: &mut State<A::Slot, CPUS, EVENTS, TASKS>,
        index: usize,
        target: Target,
    ) -> CpuSet {
        if let Some(cell) = self.cells.get(index) {
            cell.hide();
        }
        if let Some(e) = st.events.get_mut(index) {
            if e.take().is_some() {
                st.used -= 1;
                st.free_hint = st.free_hint.min(index);
                if let Some(r) = st.retiring.get_mut(index) {
                    if !*r {
                        *r = true;
                        st.retiring_n += 1;
                    }
                }
            }
        }
        if let Some(g) = st.generations.get_mut(index) {
            *g = next_generation(*g);
        }
        affected(st, target)
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
            let ev = self.lookup(st, h)?;
            *ev = new;
            Ok(affected(st, old.attr.target).union(affected(st, attr.target)))
        })
    }

    /// `parent` forked `child`: copy the parent's inheritable breakpoints to the
    /// child, all of them or none.
    pub fn fork(&self, parent: TaskId, child: TaskId) -> Result<CpuSet, Error> {
        self.with_table(|st, table| {
            let mut copies: Vec<Event<A::Slot>, EVENTS> = Vec::new();
            for ev in st.events.iter().flatten() {
                if let Target::Task { task, cpu } = ev.attr.target {
                    if task == parent && ev.attr.inherit {
                        let mut e = ev.clone();
                        e.attr.target = Target::Task { task: child, cpu };
                        e.times = Times::default();
                        copies.push(e).map_err(|_| Error::TooManyEvents)?;
                    }
                }
            }
            self.reclaim(st);
            if copies.len() > EVENTS - st.used - st.retiring_n {
                return Err(Error::TooManyEvents);
            }
            for (n, e) in copies.iter().enumerate() {
                if let Err(err) = table.take(&e.demand()) {
                    for undo in copies.iter().take(n) {
                        table.give_back(&undo.demand());
                    }
                    return Err(err);
                }
            }
            for e in copies {
                let index = self.free_index(st).ok_or(Error::TooManyEvents)?;
                self.install_event(st, index, e);
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
    /// [`Hwbp::unregister`] does for each (in one critical section: all of
    /// them or, if refused, none). Never waits for a handler, so a handler
    /// may call it, for its own task too. To know that their handlers have
    /// finished, use [`Hwbp::quiesced`] with their handles, or
    /// [`Hwbp::all_quiesced`] for copies made by [`Hwbp::fork`].
    pub fn exit(&self, task: TaskId) -> Result<CpuSet, Error> {
        self.with_table(|st, table| {
            let mut set = CpuSet::EMPTY;
            for i in 0..EVENTS {
                let Some(ev) = st.events.get(i).and_then(Option::as_ref) else {
                    continue;
                };
                if ev.attr.task() == Some(task) {
                    let (d, target) = (ev.demand(), ev.attr.target);
                    table.give_back(&d);
                    set = set.union(self.free_event(st, i, target));
                }
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
    /// reserved, [`Hwbp::handle_exception`] hands the exception on
    /// ([`Resume::NOT_OURS`], or the resume with [`Resume::pass_on`] set if a
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

    /// The context on `cpu` is leaving (context switch). The registers are not
    /// written yet: the next [`Hwbp::sched_in`] writes only what differs, so
    /// switching between contexts with the same breakpoints costs nothing.
    pub fn sched_out(&self, cpu: u16) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            if let Some(cs) = st.cpus.get_mut(c) {
                cs.task = None;
            }
            Ok(())
        })
    }

    /// `task` (or no task) now runs on `cpu`; call it on that CPU. Assigns slots
    /// (CPU pinned, task pinned, then flexible round-robin) and writes only the
    /// registers that change.
    pub fn sched_in(&self, cpu: u16, task: Option<TaskId>) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            if let Some(cs) = st.cpus.get_mut(c) {
                cs.task = task;
            }
            self.reschedule(st, table, c);
            Ok(())
        })
    }

    /// Bring `cpu`'s registers up to date after a mutation named it; call it on
    /// that CPU.
    pub fn sync(&self, cpu: u16) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            self.reschedule(st, table, c);
            Ok(())
        })
    }

    /// Scheduler tick on `cpu` (call it on that CPU): account enabled/running
    /// time of every eligible event, then rotate flexible events if some had to
    /// wait.
    pub fn rotate(&self, cpu: u16) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            let (task, assign) = match st.cpus.get(c) {
                Some(cs) if cs.online => (cs.task, cs.assign),
                _ => return Ok(()),
            };
            for (i, slot) in st.events.iter_mut().enumerate() {
                let Some(ev) = slot.as_mut() else { continue };
                if !ev.eligible(cpu, task) {
                    continue;
                }
                ev.times.enabled += 1;
                if assign
                    .iter()
                    .flatten()
                    .flatten()
                    .any(|&(idx, _)| usize::from(idx) == i)
                {
                    ev.times.running += 1;
                }
            }
            if self.reschedule(st, table, c) {
                if let Some(cs) = st.cpus.get_mut(c) {
                    cs.cursor = cs.cursor.wrapping_add(1);
                }
                self.reschedule(st, table, c);
            }
            Ok(())
        })
    }

    /// Recompute and install `cpu`'s assignment; returns whether some flexible
    /// event had to wait.
    fn reschedule(
        &self,
        st: &mut State<A::Slot, CPUS, EVENTS, TASKS>,
        table: &ConstraintTable<CPUS, TASKS>,
        c: usize,
    ) -> bool {
        let counts = table.counts();
        let cpu = c as u16;
        let Some(cs) = st.cpus.get(c) else {
            return false;
        };
        if !cs.online {
            return false;
        }
        let task = cs.task;
        let mut pinned: Vec<Candidate, EVENTS> = Vec::new();
        let mut flexible: Vec<Candidate, EVENTS> = Vec::new();
        // CPU-bound pinned first, then task pinned (both always fit by the
        // table's promise), then flexible.
        for pass in 0..3 {
            for (i, ev) in st.events.iter().enumerate() {
                let Some(ev) = ev.as_ref().filter(|e| e.eligible(cpu, task)) else {
                    continue;
                };
                let is_task = ev.attr.task().is_some();
                let want = match pass {
                    0 => ev.attr.pinned && !is_task,
                    1 => ev.attr.pinned && is_task,
                    _ => !ev.attr.pinned,
                };
                if want {
                    let cand = Candidate {
                        index: i as u16,
                        pool: ev.pool,
                        weight: ev.enc.weight(),
                    };
                    let list = if pass < 2 { &mut pinned } else { &mut flexible };
                    let _ = list.push(cand);
                }
            }
        }
        let reserved = [table.reserved(cpu, Pool(0)), table.reserved(cpu, Pool(1))];
        let plan = plan(counts, reserved, &pinned, &flexible, cs.cursor, &cs.assign);

        let mut desired = Image::empty(counts);
        for (p, row) in plan.assign.iter().enumerate() {
            for (s, occ) in row.iter().enumerate() {
                let Some((idx, piece)) = *occ else { continue };
                let value = st
                    .events
                    .get(usize::from(idx))
                    .and_then(Option::as_ref)
                    .and_then(|e| e.enc.pieces.get(usize::from(piece)));
                if let (Some(v), Some(reg)) =
                    (value, desired.pools.get_mut(p).and_then(|r| r.get_mut(s)))
                {
                    *reg = v.slot;
                }
            }
        }
        let map = self.maps.get(c);
        let Some(cs) = st.cpus.get_mut(c) else {
            return plan.starved;
        };
        // Hide slots whose occupant changes before the hardware changes, so a hit
        // in between is stray rather than credited to the wrong event.
        if let Some(map) = map {
            for p in 0..2 {
                for s in 0..MAX_SLOTS {
                    if cs.assign[p][s] != plan.assign[p][s] {
                        if let Some(e) = map.entry(p, s) {
                            e.clear();
                        }
                    }
                }
            }
        }
        if desired != cs.installed {
            if let Some(bs) = self.backend_cpus.get(c) {
                self.arch.install(cpu, bs, &cs.installed, &desired);
            }
            cs.installed = desired;
        }
        if let Some(map) = map {
            // Dispatch hands hits on debugger registers on from now on, when
            // the hardware matches the reservation.
            for (p, &n) in reserved.iter().enumerate() {
                let slots = counts.slots(Pool(p as u8));
                let n = n.min(slots);
                let mask = ((1u32 << n) - 1) << (slots - n);
                map.set_reserved(p, mask);
            }
            for (p, row) in plan.assign.iter().enumerate() {
                for (s, occ) in row.iter().enumerate() {
                    let Some((idx, piece)) = *occ else { continue };
                    let i = usize::from(idx);
                    let tag = st.generations.get(i).copied().map_or(0, tag_of);
                    let hw = st
                        .events
                        .get(i)
                        .and_then(Option::as_ref)
                        .and_then(|e| e.enc.pieces.get(usize::from(piece)));
                    if let (Some(hw), Some(e)) = (hw, map.entry(p, s)) {
                        e.set(idx, tag, hw.hw_addr, hw.hw_len);
                    }
                }
            }
        }
        cs.assign = plan.assign;
        plan.starved
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

    /// Number of live breakpoints.
    pub fn len(&self) -> usize {
        self.with(|st| Ok(st.used)).unwrap_or(0)
    }

    /// Whether no breakpoint is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the constraint table (for inspection and tests).
    pub fn table(&self) -> Result<ConstraintTable<CPUS, TASKS>, Error> {
        self.with_parts(|_, table| table.clone().ok_or(Error::NotInitialized))
    }

    /// The occupied slots of `pool` on a CPU whose breakpoint watches the
    /// reported access kind (any kind when `access` is empty): event index,
    /// tag, the slot's hardware range and the breakpoint's region.
    fn candidates<'a>(
        &'a self,
        map: &'a SlotMap,
        pool: Pool,
        access: Access,
    ) -> impl Iterator<Item = (u16, u32, (u64, u64), (u64, u64))> + 'a {
        map.pool(pool.index()).iter().filter_map(move |e| {
            let (idx, tag, hw_addr, hw_len) = e.load()?;
            let (ra, rl, racc) = self.cells.get(usize::from(idx)).map(EventCell::region)?;
            (access.is_empty() || racc.intersects(access)).then_some((
                idx,
                tag,
                (hw_addr, hw_len),
                (ra, rl),
            ))
        })
    }

    /// The debug exception handler's entry point. Takes no lock and allocates
    /// nothing, so it may run in NMI or debug-exception context on `cpu` (the
    /// calling CPU).
    ///
    /// Decodes `raw` through the backend, counts a hit on every breakpoint that
    /// fired (once per breakpoint even if several of its registers fired), calls
    /// the handler every `sample_period` hits, counts stray hits, and returns
    /// what the CPU must do to continue.
    pub fn handle_exception(&self, cpu: u16, raw: &A::Exception) -> Resume {
        let (Some(map), Some(bs)) = (
            self.maps.get(usize::from(cpu)),
            self.backend_cpus.get(usize::from(cpu)),
        ) else {
            // No such CPU: nothing of ours can have fired there.
            return Resume::NOT_OURS;
        };
        let d = self.arch.decode(cpu, bs, raw);
        let mut done: Vec<u16, MAX_SLOTS> = Vec::new();
        let mut deliver = |idx: u16, tag: u32, addr: u64| {
            if done.contains(&idx) {
                return;
            }
            let _ = done.push(idx);
            let delivered = self
                .cells
                .get(usize::from(idx))
                .and_then(|c| c.enter(tag))
                .map(|g| {
                    let (hits, due) = g.count();
                    if due {
                        let (region_addr, region_len, _) = g.region();
                        let sample = Sample {
                            handle: Handle {
                                index: idx,
                                manager: self.id.load(Ordering::Relaxed),
                                generation: g.generation(),
                            },
                            cpu,
                            addr,
                            ip: d.ip,
                            access: d.access,
                            hits,
                            region_addr,
                            region_len,
                        };
                        self.handler.on_sample(&sample);
                    }
                });
            if delivered.is_none() {
                map.count_stray();
            }
        };
        // A slot a debugger reserved fired: its exception too.
        let mut foreign = false;
        match d.fired {
            Fired::None => {}
            Fired::Slots { pool, mask } => {
                let reserved = map.reserved(pool.index());
                for s in (0..MAX_SLOTS).filter(|s| mask & (1 << s) != 0) {
                    if reserved & (1 << s) != 0 {
                        foreign = true;
                        continue;
                    }
                    match map.entry(pool.index(), s).and_then(|e| e.load()) {
                        Some((idx, tag, hw_addr, _)) => {
                            let region = self.cells.get(usize::from(idx)).map(EventCell::region);
                            let addr = match region {
                                Some((a, l, _)) if distance(d.addr, a, l) == 0 => d.addr,
                                _ => hw_addr,
                            };
                            deliver(idx, tag, addr)
                        }
                        None => map.count_stray(),
                    }
                }
            }
            Fired::ByAddress { pool } => {
                // The slots' occupants as loaded, so a slot the rule picks is
                // delivered to the event it was matched against.
                let mut who: [Option<(u16, u32)>; MAX_SLOTS] = [None; MAX_SLOTS];
                let slots = map
                    .pool(pool.index())
                    .iter()
                    .enumerate()
                    .filter_map(|(s, e)| {
                        let (idx, tag, hw_addr, hw_len) = e.load()?;
                        let (ra, rl, racc) =
                            self.cells.get(usize::from(idx)).map(EventCell::region)?;
                        *who.get_mut(s)? = Some((idx, tag));
                        Some(Slot {
                            slot: s as u8,
                            region: (ra, rl),
                            hw: (hw_addr, hw_len),
                            access: racc,
                        })
                    });
                match match_address(slots, d.addr, d.access) {
                    Match::Exact(mask) => {
                        for (s, occ) in who.iter().enumerate() {
                            if let (true, Some((idx, tag))) = (mask & (1 << s) != 0, *occ) {
                                deliver(idx, tag, d.addr);
                            }
                        }
                    }
                    Match::Filtered => map.count_stray(),
                    // Maybe the debugger's: no guess, no stray; hand it on.
                    Match::Closest(_) | Match::NoCandidate if map.reserved(pool.index()) != 0 => {
                        foreign = true
                    }
                    Match::Closest(s) => match who.get(usize::from(s)).copied().flatten() {
                        Some((idx, tag)) => deliver(idx, tag, d.addr),
                        None => map.count_stray(),
                    },
                    Match::NoCandidate => map.count_stray(),
                }
            }
            // Maybe the debugger's, and nothing says which: hand it on.
            Fired::Unattributed { pool } if map.reserved(pool.index()) != 0 => foreign = true,
            Fired::Unattributed { pool } => {
                // The one breakpoint that can explain the hit, if there is
                // exactly one (a split breakpoint occupies several slots).
                let mut only: Option<(u16, u32, u64)> = None;
                let mut several = false;
                for (idx, tag, _, (ra, _)) in self.candidates(map, pool, d.access) {
                    match only {
                        Some((i, _, _)) if i != idx => several = true,
                        _ => only = Some((idx, tag, ra)),
                    }
                }
                match only {
                    Some((idx, tag, addr)) if !several => deliver(idx, tag, addr),
                    _ => map.count_stray(),
                }
            }
        }
        let r = d.resume;
        if !foreign {
            r
        } else if done.is_empty() && r.is_ours() && !r.pass_on && r.action != Action::SingleStep {
            // Nothing of ours fired and the backend has no step to finish:
            // wholly the debugger's.
            Resume::NOT_OURS
        } else {
            r.and_pass_on()
        }
    }
}

fn cpu_index<const CPUS: usize, const TASKS: usize>(
    table: &ConstraintTable<CPUS, TASKS>,
    cpu: u16,
) -> Result<usize, Error> {
    if cpu < table.nr_cpus() {
        Ok(usize::from(cpu))
    } else {
        Err(Error::CpuOutOfRange { cpu })
    }
}

/// Online CPUs whose registers may change because of a breakpoint on `target`.
fn affected<S, const CPUS: usize, const EVENTS: usize, const TASKS: usize>(
    st: &State<S, CPUS, EVENTS, TASKS>,
    target: Target,
) -> CpuSet {
    let mut set = CpuSet::EMPTY;
    for (c, cs) in st.cpus.iter().enumerate() {
        if !cs.online {
            continue;
        }
        let hit = match target {
            Target::Cpu(n) => usize::from(n) == c,
            Target::AllCpus => true,
            Target::Task { task, cpu } => {
                cs.task == Some(task) && cpu.is_none_or(|n| usize::from(n) == c)
            }
        };
        if hit {
            set.insert(c);
        }
    }
    set
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::mock::{Mock, MockConfig};
    use std::sync::Mutex;

    static SAMPLES: Mutex<std::vec::Vec<Sample>> = Mutex::new(std::vec::Vec::new());

    fn record(s: &Sample) {
        SAMPLES.lock().unwrap().push(*s);
    }

    type Small = Hwbp<Mock, fn(&Sample), 1, 2, 2>;

    /// Storage index 0 reused until its generation passes 2³²: the first
    /// handle of that index must stay stale, and hits on the breakpoint now
    /// there must name its handle (whose generation's low half wrapped).
    #[test]
    fn a_handle_stays_stale_after_2_pow_32_reuses_of_its_index() {
        let hw: Box<Small> = Box::new(Hwbp::new(Mock::new(MockConfig::X86_LIKE), record));
        hw.init(1).unwrap();
        hw.cpu_online(0).unwrap();
        let w = BreakpointAttr::watch(0x1000, 4, Access::WRITE).target(Target::Cpu(0));
        let first = hw.register(&w).unwrap().handle;
        let _ = hw.unregister(first).unwrap();
        // As if index 0 had been registered and unregistered 2³² − 2 times
        // more (too slow to do for real).
        hw.with(|st| {
            st.generations[0] = u32::MAX.into();
            Ok(())
        })
        .unwrap();
        let last32 = hw.register(&w).unwrap().handle;
        let _ = hw.unregister(last32).unwrap();
        let now = hw.register(&w).unwrap();
        assert_eq!(now.handle.index(), first.index());
        assert_eq!(
            hw.attr(first),
            Err(Error::StaleHandle),
            "old handle valid again"
        );
        assert_eq!(hw.attr(last32), Err(Error::StaleHandle));
        assert_ne!(now.handle, first);
        hw.sync(0).unwrap();
        hw.access(0, 0x1000, 4, Access::WRITE, 0x4000);
        assert_eq!(hw.hits(now.handle), Ok(1));
        let samples = SAMPLES.lock().unwrap().clone();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].handle, now.handle);
    }
}
