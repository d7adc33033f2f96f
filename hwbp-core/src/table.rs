//! The constraint table: can a request *ever* fail to be on the hardware?
//!
//! This answers reservation, not installation. As in Linux (`bp_cpuinfo`,
//! seed 004 patch 4/5, and the 2022 histogram rework) it keeps counts, not a
//! list of requests, and every answer costs `O(MAX_SLOTS)` — whatever the
//! number of tasks and whatever the number of CPUs — except where a task has
//! requests restricted to particular CPUs, which costs one step per such CPU.
//!
//! # The worst case of a CPU
//!
//! Only one task runs on a CPU at a time, so for CPU `c` and a register pool
//! the registers that may be in use at once are
//!
//! ```text
//! W(c) = A + P(c) + R(c) + F(c) + T(c)
//! ```
//!
//! * `A`: pinned `AllCpus` weight — **one scalar per pool**;
//! * `P(c)`: pinned `Cpu(c)` weight; `R(c)`: registers set aside for a
//!   debugger ([`ConstraintTable::set_reserved`]);
//! * `F(c)`: 1 if any flexible request can run on `c`, else 0. Flexible
//!   `AllCpus` and task-everywhere requests are one global count `φ`;
//!   flexible `Cpu(c)` and task-on-`c` requests a count `φ(c)`:
//!   `F(c) = [φ > 0 ∨ φ(c) > 0]`. As in Linux, one register is kept for the
//!   flexible group whatever their weights;
//! * `T(c)`: the heaviest task on `c`. A task `t` weighs `a(t)` everywhere
//!   (its pinned `Task { cpu: None }` requests) plus `l(t, c)` on `c` (its
//!   pinned `Task { cpu: Some(c) }` requests). With `G = max_t a(t)` (read off
//!   one global histogram of the `a(t)`) and `L(c) = max { a(t) + l(t, c) :
//!   l(t, c) > 0 }` (a histogram per CPU, holding only the tasks with weight
//!   restricted to that CPU), `T(c) = max(G, L(c))`: a task with nothing
//!   restricted to `c` weighs `a(t) ≤ G` there.
//!
//! A pinned request is accepted only if `W(c)` stays within the pool's
//! registers on every CPU it can run on, so in every reachable state
//! `W(c) ≤ slots ≤ MAX_SLOTS` everywhere.
//!
//! # The worst case over all CPUs, in O(slots)
//!
//! Write `B(c) = P(c) + R(c)` and `f(c) = [φ(c) > 0]`. Four histograms *over
//! CPUs*, one pair of counters moved whenever a CPU's terms change, count
//! the CPUs by `B`, `B + f`, `B + L` and `B + f + L`. Since `max` distributes
//! over `+` and over `max`,
//!
//! ```text
//! max_c W(c) = A + 1 + max(G + max_c B,     max_c (B + L))       if φ > 0
//! max_c W(c) = A +     max(G + max_c (B+f), max_c (B + f + L))   if φ = 0
//! ```
//!
//! each `max_c` being the highest non-empty bucket of its histogram. So:
//!
//! * pinned `AllCpus` of weight `w`: `max_c W(c) + w ≤ slots`;
//! * pinned task-everywhere of weight `w` for a task weighing `a` everywhere:
//!   the task's new weight `a' = a + w` raises `G` to `G' = max(G, a')` —
//!   evaluate the formula with `G'` — and on each CPU `c` where the task has
//!   restricted weight `l`, its weight becomes `a' + l`, checked explicitly:
//!   `A + B(c) + F(c) + max(G', L(c), a' + l) ≤ slots`. Its old entry
//!   `a + l` in `L(c)` is lighter than the new one, so leaving it in the max
//!   changes nothing;
//! * flexible `AllCpus` / task-everywhere: free if `φ > 0`, otherwise every
//!   CPU must take one more register: the first formula (`+1` everywhere)
//!   within `slots`;
//! * pinned `Cpu(c)` or task-on-`c` and flexible on `c`: `W(c)` of that CPU,
//!   from its own counters.
//!
//! Registering or releasing `AllCpus` / task-everywhere requests touches only
//! the global scalars and the global task histogram, plus (for a task with
//! restricted weights) the CPUs where it has them; a CPU-bound request
//! touches its one CPU. Nothing walks the CPUs, except that a refusal names
//! the lowest-numbered CPU that would overflow and finding it walks them
//! (the refusal path only).
//!
//! Costs: `check` / `reserve` / `release` / `set_reserved` `O(MAX_SLOTS)`
//! plus one step per CPU where the task has restricted weight (expected
//! `O(1)` map probes at any fill level up to `TASKS`); `worst_case`,
//! `reserved`, `tasks` `O(1)`; `new`, `reset`, `clone` and `==`
//! `O(CPUS + TASKS)` (they touch the whole storage).
//!
//! # Memory and capacity
//!
//! A task entry is O(1) bytes (its two everywhere-weights and the head of the
//! list of CPUs where it has restricted weights). Restricted weights live in
//! a separate map keyed by (task, CPU), one entry per pair that has any,
//! linked per task by CPU number (so a task's CPUs can be walked without
//! walking every CPU). Both maps are fixed-capacity open-addressing tables
//! of `TASKS` entries in `2 × TASKS` buckets (`map.rs`): any `TASKS ≥ 1`
//! works, and a shape that cannot work (`TASKS = 0`, `CPUS = 0`, or more than
//! 2³¹ − 1 tasks) does not compile. `TASKS` bounds both the tasks holding
//! pinned requests and the (task, CPU) pairs holding pinned task requests
//! restricted to one CPU; going over either is [`Error::TooManyTasks`].
//!
//! The table can be several megabytes at large `TASKS`. [`ConstraintTable::new`]
//! returns it by value; to keep it off the stack, start from
//! [`ConstraintTable::UNCONFIGURED`] in static storage and configure it in
//! place with [`ConstraintTable::reset`].
//!
//! ```compile_fail
//! // TASKS = 0 cannot hold anything: refused at compile time.
//! let t = hwbp_core::ConstraintTable::<1, 0>::new(hwbp_core::SlotCounts::Shared(4), 1);
//! ```
//!
//! # Claims
//!
//! A reservation made through the public API comes back as a [`Claim`], and
//! only a claim this table issued can be released: the table keeps counts,
//! not a list of requests, so releasing a demand it never accounted would
//! silently take registers from the requests it did account and let a later
//! one over-commit the hardware.
//!
//! A flexible request that needs more registers than pinned ones leave free
//! is accepted but may never get running time (its [`crate::Times`] show
//! `running` staying 0), until pinned breakpoints go away.

mod map;

use crate::arch::{Pool, SlotCounts, MAX_SLOTS};
use crate::{Error, HardwareError, Target, TaskId};
use core::fmt;
use map::FixedMap;

/// What one registered request costs the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Demand {
    /// The pool the request is counted in.
    pub pool: Pool,
    /// Registers it needs at once.
    pub weight: u8,
    /// Pinned (promised) or flexible (best effort).
    pub pinned: bool,
    /// Where it runs.
    pub target: Target,
}

/// Histogram buckets: one per value `0..=MAX_SLOTS`, and one for anything
/// larger (never reached in a reachable state: any such value is already
/// more than a CPU has, so lumping them together changes no answer).
const BUCKETS: usize = MAX_SLOTS + 2;

/// A CPU in a task's list, stored as `cpu + 1` (CPU numbers are below
/// `nr_cpus`, a `u16`, so it fits); 0 ends the list. So an empty entry is
/// all zero bytes, and a table in a `static` needs no initialised data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link(u16);

impl Link {
    const END: Link = Link(0);

    fn to(cpu: u16) -> Link {
        Link(cpu.saturating_add(1))
    }

    fn cpu(self) -> Option<u16> {
        self.0.checked_sub(1)
    }
}

/// How many things have each small value, with the largest value present
/// kept up to date (so reading it is O(1); removing the last of the largest
/// value walks down to the next, at most `BUCKETS` steps).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Hist {
    counts: [u32; BUCKETS],
    top: u16,
}

impl Hist {
    const EMPTY: Self = Hist {
        counts: [0; BUCKETS],
        top: 0,
    };

    fn add(&mut self, v: u16) {
        let b = usize::from(v).min(BUCKETS - 1);
        if let Some(n) = self.counts.get_mut(b) {
            *n = n.saturating_add(1);
            self.top = self.top.max(b as u16);
        }
    }

    fn remove(&mut self, v: u16) {
        let b = usize::from(v).min(BUCKETS - 1);
        if let Some(n) = self.counts.get_mut(b) {
            *n = n.saturating_sub(1);
            if *n == 0 && b == usize::from(self.top) {
                self.top = self
                    .counts
                    .get(..b)
                    .and_then(|below| below.iter().rposition(|&n| n > 0))
                    .map_or(0, |v| v as u16);
            }
        }
    }

    /// The largest value present (0 when empty).
    fn max(&self) -> u16 {
        self.top
    }
}

impl fmt::Debug for Hist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the values present, as `value: count`.
        f.debug_map()
            .entries(self.counts.iter().enumerate().filter(|(_, &n)| n > 0))
            .finish()
    }
}

/// One CPU's own terms for one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CpuAccount {
    /// `P(c)`: pinned `Cpu(c)` weight.
    cpu_pinned: u8,
    /// `R(c)`: set aside for a debugger.
    reserved: u8,
    /// `φ(c)`: flexible requests restricted to this CPU.
    flexible: u32,
    /// `L(c)`, cached: the highest value in `local`.
    local_max: u8,
    /// `a(t) + l(t, c)` of every task with weight restricted to this CPU.
    local: Hist,
}

impl CpuAccount {
    const EMPTY: Self = CpuAccount {
        cpu_pinned: 0,
        reserved: 0,
        flexible: 0,
        local_max: 0,
        local: Hist::EMPTY,
    };

    /// `B(c)`.
    fn base(&self) -> u16 {
        u16::from(self.cpu_pinned) + u16::from(self.reserved)
    }

    /// This CPU's values in the four histograms over CPUs:
    /// `B`, `B + f`, `B + L`, `B + f + L`.
    fn keys(&self) -> [u16; 4] {
        let b = self.base();
        let f = u16::from(self.flexible > 0);
        let l = u16::from(self.local_max);
        [b, b + f, b + l, b + f + l]
    }
}

/// One pool's global terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PoolTotals {
    /// `A`: pinned `AllCpus` weight.
    all_pinned: u16,
    /// `φ`: flexible `AllCpus` and task-everywhere requests.
    flexible: u32,
    /// `G`, cached: the highest value in `tasks`.
    task_max: u8,
    /// `a(t)` of every task with an everywhere-weight.
    tasks: Hist,
    /// Over the CPUs: how many have each value of `B`, `B + f`, `B + L`,
    /// `B + f + L` (see [`CpuAccount::keys`]).
    over_cpus: [Hist; 4],
}

impl PoolTotals {
    const EMPTY: Self = PoolTotals {
        all_pinned: 0,
        flexible: 0,
        task_max: 0,
        tasks: Hist::EMPTY,
        over_cpus: [Hist::EMPTY; 4],
    };
}

/// A task holding pinned requests: its everywhere-weights and the first CPU
/// of its list of restricted weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TaskEntry {
    any: [u8; 2],
    first: Link,
}

impl TaskEntry {
    fn is_empty(&self) -> bool {
        self.any == [0; 2] && self.first == Link::END
    }
}

impl map::Value for TaskEntry {
    const BLANK: Self = TaskEntry {
        any: [0; 2],
        first: Link::END,
    };
}

/// A task's weights restricted to one CPU, linked to its other such CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PairEntry {
    weight: [u8; 2],
    prev: Link,
    next: Link,
}

impl map::Value for PairEntry {
    const BLANK: Self = PairEntry {
        weight: [0; 2],
        prev: Link::END,
        next: Link::END,
    };
}

fn step(v: u8, w: u8, add: bool) -> u8 {
    if add {
        v.saturating_add(w)
    } else {
        v.saturating_sub(w)
    }
}

fn step32(v: u32, add: bool) -> u32 {
    if add {
        v.saturating_add(1)
    } else {
        v.saturating_sub(1)
    }
}

/// A demand a [`ConstraintTable`] accounted: proof that it may be released.
///
/// Returned by [`ConstraintTable::reserve`] and consumed by
/// [`ConstraintTable::release`], so a reservation is released at most once,
/// and only into the table that made it. Dropping a claim keeps its registers
/// reserved.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "dropping a claim keeps its registers reserved for ever"]
pub struct Claim {
    demand: Demand,
    table: u32,
}

impl Claim {
    /// What was reserved.
    pub fn demand(&self) -> Demand {
        self.demand
    }
}

/// Per-CPU, per-pool accounting of every registered request.
///
/// `CPUS` (at least 1) bounds the number of CPUs. `TASKS` (any number from 1
/// to 2³¹ − 1) bounds the tasks that hold pinned requests at once, and
/// separately the (task, CPU) pairs that hold pinned task requests restricted
/// to one CPU. Memory: about 160 bytes per CPU and 80 bytes per unit of
/// `TASKS`, however many CPUs a task runs on (see the module documentation).
///
/// Equality compares the accounts. A clone accounts the same requests but is
/// another table: claims made by the original are refused by the clone.
pub struct ConstraintTable<const CPUS: usize, const TASKS: usize> {
    /// Identity carried by the claims this table issues (0 until configured).
    id: u32,
    counts: SlotCounts,
    nr_cpus: u16,
    totals: [PoolTotals; 2],
    cpus: [[CpuAccount; 2]; CPUS],
    /// Task id → everywhere-weights and list head.
    tasks: FixedMap<u64, TaskEntry, TASKS>,
    /// (task id, CPU) → weights restricted to that CPU.
    pairs: FixedMap<(u64, u16), PairEntry, TASKS>,
}

impl<const CPUS: usize, const TASKS: usize> ConstraintTable<CPUS, TASKS> {
    const SHAPE_OK: () = assert!(CPUS >= 1, "CPUS must be at least 1");

    /// A table that covers no CPU and accepts nothing until
    /// [`ConstraintTable::reset`] configures it. A constant, so a `static`
    /// (or a field of one) built from it is laid out at compile time and
    /// the table is never on the stack.
    pub const UNCONFIGURED: Self = {
        #[allow(clippy::let_unit_value)]
        let () = Self::SHAPE_OK;
        ConstraintTable {
            id: 0,
            counts: SlotCounts::Shared(0),
            nr_cpus: 0,
            totals: [PoolTotals::EMPTY; 2],
            cpus: [[CpuAccount::EMPTY; 2]; CPUS],
            tasks: FixedMap::EMPTY,
            pairs: FixedMap::EMPTY,
        }
    };

    /// Would [`ConstraintTable::reset`] accept this shape?
    pub(crate) fn validate(counts: SlotCounts, nr_cpus: u16) -> Result<(), Error> {
        counts.validate()?;
        if nr_cpus == 0 || usize::from(nr_cpus) > CPUS {
            return Err(Error::CpuOutOfRange { cpu: nr_cpus });
        }
        Ok(())
    }

    /// An empty table for `nr_cpus` CPUs with `counts` registers each.
    ///
    /// The table is returned by value, so it passes through the stack: at
    /// large capacities prefer [`ConstraintTable::reset`] on storage that
    /// already exists.
    pub fn new(counts: SlotCounts, nr_cpus: u16) -> Result<Self, Error> {
        Self::validate(counts, nr_cpus)?;
        let mut t = Self::UNCONFIGURED;
        t.reset(counts, nr_cpus)?;
        Ok(t)
    }

    /// Empty this table in place and configure it for `nr_cpus` CPUs with
    /// `counts` registers each, as [`ConstraintTable::new`] would build it.
    /// It becomes a new table: claims issued before are refused afterwards.
    /// A bad shape is refused ([`Error::CpuOutOfRange`] for `nr_cpus` 0 or
    /// above `CPUS`, or the [`SlotCounts::validate`] error) and changes
    /// nothing. Costs `O(CPUS + TASKS)` (it clears the storage).
    pub fn reset(&mut self, counts: SlotCounts, nr_cpus: u16) -> Result<(), Error> {
        Self::validate(counts, nr_cpus)?;
        self.id = crate::id::next();
        self.counts = counts;
        self.nr_cpus = nr_cpus;
        for c in self.cpus.iter_mut() {
            *c = [CpuAccount::EMPTY; 2];
        }
        for t in self.totals.iter_mut() {
            *t = PoolTotals::EMPTY;
            for h in t.over_cpus.iter_mut() {
                // Every CPU starts with all four values 0.
                h.counts[0] = u32::from(nr_cpus);
            }
        }
        self.tasks.clear();
        self.pairs.clear();
        Ok(())
    }

    /// The register counts the table was built for.
    pub fn counts(&self) -> SlotCounts {
        self.counts
    }

    /// Number of CPUs the table covers.
    pub fn nr_cpus(&self) -> u16 {
        self.nr_cpus
    }

    fn account(&self, cpu: usize, pool: usize) -> Option<&CpuAccount> {
        self.cpus.get(cpu)?.get(pool)
    }

    fn check_shape(&self, d: &Demand) -> Result<(), Error> {
        let slots = self.counts.slots(d.pool);
        if slots == 0 {
            return Err(Error::Hardware(HardwareError::NoDebugHardware));
        }
        if d.weight == 0 || d.weight > slots {
            return Err(Error::RangeTooLarge {
                weight: d.weight,
                slots,
            });
        }
        match d.target {
            Target::Cpu(c) | Target::Task { cpu: Some(c), .. } if c >= self.nr_cpus => {
                Err(Error::CpuOutOfRange { cpu: c })
            }
            _ => Ok(()),
        }
    }

    /// `W(c)` with the heaviest task on `c` taken as `max(g, L(c), extra)`:
    /// `g` for `G` (or what `G` would become), `extra` for one task's weight
    /// there (0 for none).
    fn worst_with(&self, cpu: usize, pool: usize, g: u16, extra: u16) -> u16 {
        let (Some(acc), Some(tot)) = (self.account(cpu, pool), self.totals.get(pool)) else {
            return 0;
        };
        let flexible = u16::from(tot.flexible > 0 || acc.flexible > 0);
        tot.all_pinned + acc.base() + flexible + g.max(u16::from(acc.local_max)).max(extra)
    }

    /// `G` of `pool`.
    fn task_max(&self, pool: usize) -> u16 {
        self.totals.get(pool).map_or(0, |t| u16::from(t.task_max))
    }

    /// `max_c W(c)` over all CPUs with `G` taken as `g`, and with one more
    /// flexible request that runs everywhere if `extra_flexible`: from the
    /// histograms over CPUs, `O(MAX_SLOTS)`.
    fn max_worst(&self, pool: usize, g: u16, extra_flexible: bool) -> u16 {
        let Some(tot) = self.totals.get(pool) else {
            return 0;
        };
        let [b, bf, bl, bfl] = tot.over_cpus.each_ref().map(Hist::max);
        let cpus = if tot.flexible > 0 || extra_flexible {
            1 + (g + b).max(bl)
        } else {
            (g + bf).max(bfl)
        };
        tot.all_pinned + cpus
    }

    /// The lowest-numbered CPU where `over(cpu)` holds (the refusal path:
    /// walks the CPUs).
    fn first_cpu(&self, over: impl Fn(usize) -> bool) -> Result<(), Error> {
        match (0..usize::from(self.nr_cpus)).find(|&c| over(c)) {
            Some(c) => Err(Error::NoSlot { cpu: c as u16 }),
            None => Ok(()),
        }
    }

    /// `task`'s restricted weight in `pool` on `cpu`.
    fn local(&self, task: u64, cpu: u16, pool: usize) -> u8 {
        self.pairs
            .get(&(task, cpu))
            .and_then(|p| p.weight.get(pool).copied())
            .unwrap_or(0)
    }

    /// Walk `task`'s CPUs with restricted weights, in list order, calling
    /// `f(cpu, weights)`; stops early when `f` returns false. Bounded by the
    /// number of pairs, so a damaged list cannot make it spin.
    fn walk(&self, first: Link, task: u64, mut f: impl FnMut(u16, [u8; 2]) -> bool) {
        let mut cur = first;
        for _ in 0..self.pairs.len() {
            let Some(c) = cur.cpu() else { return };
            let Some(p) = self.pairs.get(&(task, c)) else {
                return;
            };
            if !f(c, p.weight) {
                return;
            }
            cur = p.next;
        }
    }

    /// Would `d` fit together with everything already accounted?
    pub fn check(&self, d: &Demand) -> Result<(), Error> {
        self.check_shape(d)?;
        let pool = d.pool.index();
        let slots = u16::from(self.counts.slots(d.pool));
        let w = u16::from(d.weight);
        let g = self.task_max(pool);
        let entry = match d.target {
            Target::Task { task, .. } => self.tasks.get(&task.0).copied(),
            _ => None,
        };
        if let (true, Target::Task { task, cpu }) = (d.pinned, d.target) {
            if entry.is_none() && self.tasks.is_full() {
                return Err(Error::TooManyTasks);
            }
            if let Some(c) = cpu {
                if self.pairs.get(&(task.0, c)).is_none() && self.pairs.is_full() {
                    return Err(Error::TooManyTasks);
                }
            }
        }
        let any = u16::from(entry.map_or(0, |e| e.any.get(pool).copied().unwrap_or(0)));
        let flexible_everywhere = self.totals.get(pool).is_some_and(|t| t.flexible > 0);
        let flexible_here =
            |c: usize| flexible_everywhere || self.account(c, pool).is_some_and(|a| a.flexible > 0);
        match (d.pinned, d.target) {
            (true, Target::Cpu(c)) => {
                if self.worst_with(usize::from(c), pool, g, 0) + w > slots {
                    return Err(Error::NoSlot { cpu: c });
                }
            }
            (true, Target::AllCpus) => {
                if self.max_worst(pool, g, false) + w > slots {
                    return self.first_cpu(|c| self.worst_with(c, pool, g, 0) + w > slots);
                }
            }
            (true, Target::Task { task, cpu: Some(c) }) => {
                let mine = any + u16::from(self.local(task.0, c, pool)) + w;
                if self.worst_with(usize::from(c), pool, g, mine) > slots {
                    return Err(Error::NoSlot { cpu: c });
                }
            }
            (true, Target::Task { task, cpu: None }) => {
                // The task's everywhere-weight grows to `any + w`: `G` may
                // grow, and so does its weight on each of its own CPUs.
                let everywhere = any + w;
                let g2 = g.max(everywhere);
                let mut fits = self.max_worst(pool, g2, false) <= slots;
                if let (true, Some(e)) = (fits, entry) {
                    self.walk(e.first, task.0, |c, weight| {
                        let l = u16::from(weight.get(pool).copied().unwrap_or(0));
                        if l > 0
                            && self.worst_with(usize::from(c), pool, g2, everywhere + l) > slots
                        {
                            fits = false;
                        }
                        fits
                    });
                }
                if !fits {
                    return self.first_cpu(|c| {
                        let l = u16::from(self.local(task.0, c as u16, pool));
                        let mine = if l > 0 { everywhere + l } else { 0 };
                        self.worst_with(c, pool, g2, mine) > slots
                    });
                }
            }
            (false, Target::Cpu(c) | Target::Task { cpu: Some(c), .. }) => {
                // A flexible request needs one register kept free for the
                // flexible group; once one exists the others share it.
                let c = usize::from(c);
                if !flexible_here(c) && self.worst_with(c, pool, g, 0) >= slots {
                    return Err(Error::NoSlot { cpu: c as u16 });
                }
            }
            (false, Target::AllCpus | Target::Task { cpu: None, .. }) => {
                if !flexible_everywhere && self.max_worst(pool, g, true) > slots {
                    return self.first_cpu(|c| {
                        !flexible_here(c) && self.worst_with(c, pool, g, 0) >= slots
                    });
                }
            }
        }
        Ok(())
    }

    /// Account `d` if it fits; otherwise change nothing. The claim is what
    /// [`ConstraintTable::release`] takes back.
    pub fn reserve(&mut self, d: &Demand) -> Result<Claim, Error> {
        self.take(d)?;
        Ok(Claim {
            demand: *d,
            table: self.id,
        })
    }

    /// Give back what `claim` reserved. A claim this table did not issue
    /// (another table's, or the original's after this table was cloned or
    /// reset) is refused with [`Error::NotReserved`] and changes nothing.
    pub fn release(&mut self, claim: Claim) -> Result<(), Error> {
        if claim.table != self.id || self.id == 0 {
            return Err(Error::NotReserved);
        }
        self.give_back(&claim.demand);
        Ok(())
    }

    /// [`ConstraintTable::reserve`] for the manager, which keeps each
    /// event's demand itself and issues no claim.
    pub(crate) fn take(&mut self, d: &Demand) -> Result<(), Error> {
        self.check(d)?;
        self.apply(d, true);
        Ok(())
    }

    /// Give back a demand [`ConstraintTable::take`] accounted. Only the
    /// manager calls it, with the demand of an event it holds.
    pub(crate) fn give_back(&mut self, d: &Demand) {
        if self.check_shape(d).is_ok() {
            self.apply(d, false);
        }
    }

    /// `a` and `b` as one demand, when accounting it is the same as
    /// accounting both: pinned requests of one target in one pool add their
    /// weights (flexible requests are counted one by one), while the sum is
    /// a weight the pool can have. Fork and exit account a task's
    /// breakpoints in such batches: one check and one update instead of one
    /// per breakpoint. A batch that does not fit is refused like one of its
    /// parts would be, but maybe with another CPU named, so the manager
    /// retries a refused batch part by part for the exact error.
    pub(crate) fn merged(&self, a: &Demand, b: &Demand) -> Option<Demand> {
        let weight = a.weight.checked_add(b.weight)?;
        (a.pinned
            && b.pinned
            && a.pool == b.pool
            && a.target == b.target
            && weight <= self.counts.slots(a.pool))
        .then_some(Demand { weight, ..*a })
    }

    fn apply(&mut self, d: &Demand, add: bool) {
        let pool = d.pool.index();
        let w = d.weight;
        match (d.pinned, d.target) {
            (false, Target::Cpu(c) | Target::Task { cpu: Some(c), .. }) => {
                self.update_cpu(c, pool, |a| a.flexible = step32(a.flexible, add));
            }
            (false, Target::AllCpus | Target::Task { cpu: None, .. }) => {
                if let Some(t) = self.totals.get_mut(pool) {
                    t.flexible = step32(t.flexible, add);
                }
            }
            (true, Target::Cpu(c)) => {
                self.update_cpu(c, pool, |a| a.cpu_pinned = step(a.cpu_pinned, w, add));
            }
            (true, Target::AllCpus) => {
                if let Some(t) = self.totals.get_mut(pool) {
                    let all = u8::try_from(t.all_pinned).unwrap_or(u8::MAX);
                    t.all_pinned = u16::from(step(all, w, add));
                }
            }
            (true, Target::Task { task, cpu: None }) => self.change_any(task.0, pool, w, add),
            (true, Target::Task { task, cpu: Some(c) }) => {
                self.change_local(task.0, c, pool, w, add);
            }
        }
    }

    /// Change CPU `cpu`'s terms for `pool` with `f`, keeping `L(c)` and the
    /// histograms over CPUs in step: `O(MAX_SLOTS)`.
    fn update_cpu(&mut self, cpu: u16, pool: usize, f: impl FnOnce(&mut CpuAccount)) {
        let Some(acc) = self
            .cpus
            .get_mut(usize::from(cpu))
            .and_then(|a| a.get_mut(pool))
        else {
            return;
        };
        let before = acc.keys();
        f(acc);
        acc.local_max = acc.local.max() as u8;
        let after = acc.keys();
        if let Some(tot) = self.totals.get_mut(pool) {
            for ((h, b), a) in tot.over_cpus.iter_mut().zip(before).zip(after) {
                if b != a {
                    h.remove(b);
                    h.add(a);
                }
            }
        }
    }

    /// The pair `link` names in `task`'s list.
    fn pair_mut(&mut self, task: u64, link: Link) -> Option<&mut PairEntry> {
        self.pairs.get_mut(&(task, link.cpu()?))
    }

    /// Store `task`'s entry, or drop it once it holds nothing.
    fn store_task(&mut self, task: u64, e: TaskEntry) {
        if e.is_empty() {
            self.tasks.remove(&task);
        } else {
            // Room for a new task was checked by `check`.
            let _ = self.tasks.insert(task, e);
        }
    }

    /// Add `w` to (or take it from) `task`'s everywhere-weight in `pool`:
    /// the global histogram, and `L(c)` on each of the task's own CPUs.
    fn change_any(&mut self, task: u64, pool: usize, w: u8, add: bool) {
        let mut e = self
            .tasks
            .get(&task)
            .copied()
            .unwrap_or(<TaskEntry as map::Value>::BLANK);
        let Some(slot) = e.any.get_mut(pool) else {
            return;
        };
        let (old, new) = (*slot, step(*slot, w, add));
        if old == new {
            return;
        }
        *slot = new;
        if let Some(t) = self.totals.get_mut(pool) {
            if old > 0 {
                t.tasks.remove(u16::from(old));
            }
            if new > 0 {
                t.tasks.add(u16::from(new));
            }
            t.task_max = t.tasks.max() as u8;
        }
        let mut cur = e.first;
        for _ in 0..self.pairs.len() {
            let Some(c) = cur.cpu() else { break };
            let Some(p) = self.pairs.get(&(task, c)).copied() else {
                break;
            };
            let l = u16::from(p.weight.get(pool).copied().unwrap_or(0));
            if l > 0 {
                self.update_cpu(c, pool, |a| {
                    a.local.remove(u16::from(old) + l);
                    a.local.add(u16::from(new) + l);
                });
            }
            cur = p.next;
        }
        self.store_task(task, e);
    }

    /// Add `w` to (or take it from) `task`'s weight in `pool` restricted to
    /// `cpu`: that CPU's `L(c)`, and the task's list of CPUs.
    fn change_local(&mut self, task: u64, cpu: u16, pool: usize, w: u8, add: bool) {
        let mut e = self
            .tasks
            .get(&task)
            .copied()
            .unwrap_or(<TaskEntry as map::Value>::BLANK);
        let existing = self.pairs.get(&(task, cpu)).copied();
        let mut p = existing.unwrap_or(<PairEntry as map::Value>::BLANK);
        let Some(slot) = p.weight.get_mut(pool) else {
            return;
        };
        let (old, new) = (*slot, step(*slot, w, add));
        if old == new {
            return;
        }
        *slot = new;
        let any = u16::from(e.any.get(pool).copied().unwrap_or(0));
        self.update_cpu(cpu, pool, |a| {
            if old > 0 {
                a.local.remove(any + u16::from(old));
            }
            if new > 0 {
                a.local.add(any + u16::from(new));
            }
        });
        if existing.is_none() {
            // A new pair (room was checked by `check`): first in the list.
            p.prev = Link::END;
            p.next = e.first;
            if self.pairs.insert((task, cpu), p).is_err() {
                return;
            }
            if let Some(f) = self.pair_mut(task, e.first) {
                f.prev = Link::to(cpu);
            }
            e.first = Link::to(cpu);
        } else if p.weight == [0; 2] {
            // Its last weight here is gone: unlink and drop the pair.
            match self.pair_mut(task, p.prev) {
                Some(before) => before.next = p.next,
                None => e.first = p.next,
            }
            if let Some(after) = self.pair_mut(task, p.next) {
                after.prev = p.prev;
            }
            self.pairs.remove(&(task, cpu));
        } else {
            let _ = self.pairs.insert((task, cpu), p);
        }
        self.store_task(task, e);
    }

    /// Set aside `n` registers of `pool` on `cpu` for a debugger, replacing any
    /// earlier reservation there. Refused if it would break a pinned promise.
    pub fn set_reserved(&mut self, cpu: u16, pool: Pool, n: u8) -> Result<(), Error> {
        let slots = u16::from(self.counts.slots(pool));
        if cpu >= self.nr_cpus {
            return Err(Error::CpuOutOfRange { cpu });
        }
        let p = pool.index();
        let Some(acc) = self.account(usize::from(cpu), p) else {
            return Err(Error::CpuOutOfRange { cpu });
        };
        let others = self.worst_case(cpu, pool) - u16::from(acc.reserved);
        if slots == 0 || others + u16::from(n) > slots {
            return Err(Error::NoSlot { cpu });
        }
        self.update_cpu(cpu, p, |a| a.reserved = n);
        Ok(())
    }

    /// Registers of `pool` on `cpu` set aside for a debugger.
    pub fn reserved(&self, cpu: u16, pool: Pool) -> u8 {
        self.account(usize::from(cpu), pool.index())
            .map_or(0, |a| a.reserved)
    }

    /// Worst-case number of registers of `pool` in use at once on `cpu`
    /// (pinned CPU-bound + heaviest task + reserved + 1 if flexible requests
    /// exist); 0 for a CPU the table does not cover. `O(1)`.
    pub fn worst_case(&self, cpu: u16, pool: Pool) -> u16 {
        if cpu >= self.nr_cpus {
            return 0;
        }
        let p = pool.index();
        self.worst_with(usize::from(cpu), p, self.task_max(p), 0)
    }

    /// Number of tasks holding pinned requests.
    pub fn tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Number of (task, CPU) pairs holding pinned task requests restricted
    /// to that CPU (at most `TASKS`).
    pub fn task_cpu_pairs(&self) -> usize {
        self.pairs.len()
    }
}

impl<const CPUS: usize, const TASKS: usize> Clone for ConstraintTable<CPUS, TASKS> {
    fn clone(&self) -> Self {
        ConstraintTable {
            id: crate::id::next(),
            counts: self.counts,
            nr_cpus: self.nr_cpus,
            totals: self.totals,
            cpus: self.cpus,
            tasks: self.tasks.clone(),
            pairs: self.pairs.clone(),
        }
    }
}

impl<const CPUS: usize, const TASKS: usize> PartialEq for ConstraintTable<CPUS, TASKS> {
    fn eq(&self, other: &Self) -> bool {
        // The maps by content (bucket positions and list order depend on
        // the order of insertion, not on what is accounted).
        let same_tasks = self.tasks.len() == other.tasks.len()
            && self.tasks.iter().all(|(k, v)| {
                other.tasks.get(k).is_some_and(|o| {
                    o.any == v.any && (o.first == Link::END) == (v.first == Link::END)
                })
            });
        let same_pairs = self.pairs.len() == other.pairs.len()
            && self
                .pairs
                .iter()
                .all(|(k, v)| other.pairs.get(k).is_some_and(|o| o.weight == v.weight));
        self.counts == other.counts
            && self.nr_cpus == other.nr_cpus
            && self.totals == other.totals
            && self.cpus == other.cpus
            && same_tasks
            && same_pairs
    }
}

impl<const CPUS: usize, const TASKS: usize> Eq for ConstraintTable<CPUS, TASKS> {}

/// Lists a map's entries through `f` without copying them.
struct Entries<'a, I, F>(&'a I, F);

impl<'a, I, F, K, V, D> fmt::Debug for Entries<'a, I, F>
where
    I: Clone + Iterator<Item = (K, V)>,
    F: Fn(K, V) -> D,
    D: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.clone().map(|(k, v)| (self.1)(k, v)))
            .finish()
    }
}

impl<const CPUS: usize, const TASKS: usize> fmt::Debug for ConstraintTable<CPUS, TASKS> {
    /// The accounts of the covered CPUs and the occupied map entries only
    /// (not the empty capacity).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus = self.cpus.get(..usize::from(self.nr_cpus)).unwrap_or(&[]);
        let tasks = self.tasks.iter();
        let pairs = self.pairs.iter();
        f.debug_struct("ConstraintTable")
            .field("id", &self.id)
            .field("counts", &self.counts)
            .field("nr_cpus", &self.nr_cpus)
            .field("totals", &self.totals)
            .field("cpus", &cpus)
            .field(
                "tasks",
                &Entries(&tasks, |k: &u64, v: &TaskEntry| (TaskId(*k), v.any)),
            )
            .field(
                "task_cpu_pairs",
                &Entries(&pairs, |k: &(u64, u16), v: &PairEntry| {
                    (TaskId(k.0), k.1, v.weight)
                }),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86: SlotCounts = SlotCounts::Shared(4);
    const ARM: SlotCounts = SlotCounts::Separate { inst: 6, data: 4 };

    fn d(pool: u8, weight: u8, pinned: bool, target: Target) -> Demand {
        Demand {
            pool: Pool(pool),
            weight,
            pinned,
            target,
        }
    }
    fn task(t: u64) -> Target {
        Target::Task {
            task: TaskId(t),
            cpu: None,
        }
    }

    #[test]
    fn cpu_pinned_fills_then_refuses() {
        let mut t = ConstraintTable::<4, 8>::new(X86, 2).unwrap();
        for _ in 0..4 {
            t.take(&d(0, 1, true, Target::Cpu(0))).unwrap();
        }
        assert_eq!(
            t.take(&d(0, 1, true, Target::Cpu(0))),
            Err(Error::NoSlot { cpu: 0 })
        );
        // CPU 1 is untouched.
        t.take(&d(0, 4, true, Target::Cpu(1))).unwrap();
    }

    #[test]
    fn tasks_only_count_their_worst_against_cpu_requests() {
        let mut t = ConstraintTable::<2, 8>::new(X86, 1).unwrap();
        // Two tasks of weight 3 each: only one runs at a time.
        t.take(&d(0, 3, true, task(1))).unwrap();
        t.take(&d(0, 3, true, task(2))).unwrap();
        // A CPU request sees the worst task (3): 1 more fits, 2 do not.
        assert_eq!(
            t.check(&d(0, 2, true, Target::Cpu(0))),
            Err(Error::NoSlot { cpu: 0 })
        );
        t.take(&d(0, 1, true, Target::Cpu(0))).unwrap();
        // Task 1 cannot grow now, but a fresh task with weight 3 can be added.
        assert_eq!(
            t.check(&d(0, 1, true, task(1))),
            Err(Error::NoSlot { cpu: 0 })
        );
        t.take(&d(0, 3, true, task(3))).unwrap();
        assert_eq!(t.tasks(), 3);
    }

    #[test]
    fn separate_pools_are_independent() {
        let mut t = ConstraintTable::<1, 8>::new(ARM, 1).unwrap();
        t.take(&d(1, 4, true, Target::Cpu(0))).unwrap();
        assert_eq!(
            t.check(&d(1, 1, true, Target::Cpu(0))),
            Err(Error::NoSlot { cpu: 0 })
        );
        t.take(&d(0, 6, true, Target::Cpu(0))).unwrap();
        assert_eq!(
            t.check(&d(0, 1, true, Target::Cpu(0))),
            Err(Error::NoSlot { cpu: 0 })
        );
    }

    #[test]
    fn flexible_keeps_one_register() {
        let mut t = ConstraintTable::<1, 8>::new(X86, 1).unwrap();
        let f1 = t.reserve(&d(0, 1, false, Target::Cpu(0))).unwrap();
        let f2 = t.reserve(&d(0, 1, false, Target::Cpu(0))).unwrap();
        t.take(&d(0, 3, true, Target::Cpu(0))).unwrap();
        assert_eq!(
            t.check(&d(0, 1, true, Target::Cpu(0))),
            Err(Error::NoSlot { cpu: 0 })
        );
        t.release(f1).unwrap();
        t.release(f2).unwrap();
        t.take(&d(0, 1, true, Target::Cpu(0))).unwrap();
        // Now the table is full: a first flexible request is refused.
        assert_eq!(
            t.check(&d(0, 1, false, Target::Cpu(0))),
            Err(Error::NoSlot { cpu: 0 })
        );
    }

    #[test]
    fn all_cpus_is_all_or_nothing() {
        let mut t = ConstraintTable::<4, 8>::new(X86, 3).unwrap();
        t.take(&d(0, 4, true, Target::Cpu(2))).unwrap();
        let before = t.clone();
        assert_eq!(
            t.take(&d(0, 1, true, Target::AllCpus)),
            Err(Error::NoSlot { cpu: 2 })
        );
        assert_eq!(t, before);
    }

    #[test]
    fn release_restores_a_fresh_table() {
        let fresh = ConstraintTable::<2, 8>::new(X86, 2).unwrap();
        let mut t = fresh.clone();
        let all = [
            d(0, 2, true, Target::Cpu(1)),
            d(
                0,
                1,
                true,
                Target::Task {
                    task: TaskId(7),
                    cpu: Some(0),
                },
            ),
            d(0, 1, true, task(7)),
            d(0, 1, false, Target::AllCpus),
        ];
        let claims: Vec<Claim> = all.iter().map(|x| t.reserve(x).unwrap()).collect();
        assert_ne!(t, fresh);
        for (c, x) in claims.into_iter().rev().zip(all.iter().rev()) {
            assert_eq!(c.demand(), *x);
            t.release(c).unwrap();
        }
        assert_eq!(t, fresh);
    }

    #[test]
    fn task_table_capacity_is_a_typed_error() {
        let mut t = ConstraintTable::<1, 2>::new(SlotCounts::Shared(16), 1).unwrap();
        t.take(&d(0, 1, true, task(1))).unwrap();
        t.take(&d(0, 1, true, task(2))).unwrap();
        assert_eq!(t.check(&d(0, 1, true, task(3))), Err(Error::TooManyTasks));
        // An existing task can still grow.
        t.take(&d(0, 1, true, task(1))).unwrap();
    }

    fn on(t: u64, cpu: u16) -> Target {
        Target::Task {
            task: TaskId(t),
            cpu: Some(cpu),
        }
    }

    #[test]
    fn task_cpu_pairs_share_the_tasks_capacity() {
        // TASKS = 3 (not a power of two) bounds the tasks and, separately,
        // the (task, CPU) pairs with restricted pinned weight.
        let mut t = ConstraintTable::<4, 3>::new(SlotCounts::Shared(16), 4).unwrap();
        for c in 0..3 {
            t.take(&d(0, 1, true, on(1, c))).unwrap();
        }
        assert_eq!((t.tasks(), t.task_cpu_pairs()), (1, 3));
        assert_eq!(t.check(&d(0, 1, true, on(2, 3))), Err(Error::TooManyTasks));
        // An existing pair can grow; flexible and everywhere requests need no pair.
        t.take(&d(0, 1, true, on(1, 2))).unwrap();
        t.take(&d(0, 1, false, on(2, 3))).unwrap();
        t.take(&d(0, 1, true, task(2))).unwrap();
        assert_eq!((t.tasks(), t.task_cpu_pairs()), (2, 3));
        // Releasing a pair's last weight frees it, from the middle of the
        // task's list of CPUs.
        t.give_back(&d(0, 1, true, on(1, 1)));
        assert_eq!(t.task_cpu_pairs(), 2);
        t.take(&d(0, 1, true, on(2, 3))).unwrap();
        assert_eq!(t.worst_case(3, Pool(0)), 1 + 1 + 1);
    }

    #[test]
    fn everywhere_growth_is_checked_on_the_tasks_own_cpus() {
        // Task 1 weighs 2 on CPU 2 only; growing it everywhere by 2 makes 4
        // there (and 2 elsewhere): with 1 pinned on CPU 2 it no longer fits
        // there, and the refusal names CPU 2, not CPU 0.
        let mut t = ConstraintTable::<4, 8>::new(X86, 4).unwrap();
        t.take(&d(0, 2, true, on(1, 2))).unwrap();
        t.take(&d(0, 1, true, Target::Cpu(2))).unwrap();
        assert_eq!(
            t.check(&d(0, 2, true, task(1))),
            Err(Error::NoSlot { cpu: 2 })
        );
        // Another task may take 2 everywhere (it does not stack on task 1).
        t.take(&d(0, 2, true, task(3))).unwrap();
        // Task 1 may take 1 everywhere: 3 on CPU 2 with the CPU's 1 → 4.
        t.take(&d(0, 1, true, task(1))).unwrap();
        assert_eq!(t.worst_case(2, Pool(0)), 4);
        assert_eq!(t.worst_case(0, Pool(0)), 2);
        // Now CPU 2 is full: AllCpus refused there, CPU 0 has room.
        assert_eq!(
            t.check(&d(0, 1, true, Target::AllCpus)),
            Err(Error::NoSlot { cpu: 2 })
        );
        t.take(&d(0, 2, true, Target::Cpu(0))).unwrap();
        // Release task 1's everywhere weight: its CPU-2 weight falls back to 2.
        t.give_back(&d(0, 1, true, task(1)));
        assert_eq!(t.worst_case(2, Pool(0)), 3);
        assert_eq!(t.worst_case(1, Pool(0)), 2);
    }

    #[test]
    fn flexible_everywhere_needs_a_register_on_every_cpu() {
        let mut t = ConstraintTable::<3, 4>::new(X86, 3).unwrap();
        t.take(&d(0, 4, true, Target::Cpu(1))).unwrap();
        assert_eq!(
            t.check(&d(0, 1, false, Target::AllCpus)),
            Err(Error::NoSlot { cpu: 1 })
        );
        // A flexible one already on CPU 1 cannot exist (CPU 1 is full)...
        assert_eq!(
            t.check(&d(0, 1, false, Target::Cpu(1))),
            Err(Error::NoSlot { cpu: 1 })
        );
        t.give_back(&d(0, 1, true, Target::Cpu(1)));
        // ...but once CPU 1 has one, the group shares its register.
        t.take(&d(0, 1, false, Target::Cpu(1))).unwrap();
        t.take(&d(0, 1, false, task(5))).unwrap();
        assert_eq!(t.worst_case(1, Pool(0)), 4);
        assert_eq!(t.worst_case(0, Pool(0)), 1);
    }

    #[test]
    fn reset_reconfigures_in_place_and_voids_old_claims() {
        let mut t = ConstraintTable::<4, 5>::UNCONFIGURED;
        assert_eq!(t.nr_cpus(), 0);
        assert_eq!(
            t.check(&d(0, 1, true, Target::Cpu(0))),
            Err(Error::Hardware(HardwareError::NoDebugHardware))
        );
        assert_eq!(t.reset(X86, 5), Err(Error::CpuOutOfRange { cpu: 5 }));
        assert_eq!(t.nr_cpus(), 0, "a refused reset changed the table");
        t.reset(X86, 2).unwrap();
        let old = t.reserve(&d(0, 2, true, on(1, 1))).unwrap();
        t.reset(ARM, 4).unwrap();
        assert_eq!(t, ConstraintTable::<4, 5>::new(ARM, 4).unwrap());
        assert_eq!(t.release(old), Err(Error::NotReserved));
        assert_eq!(t.worst_case(1, Pool(0)), 0);
    }

    #[test]
    fn histograms_keep_their_largest_value() {
        let mut h = Hist::EMPTY;
        assert_eq!(h.max(), 0);
        for v in [3, 7, 7, 2, 40] {
            h.add(v);
        }
        // 40 lands in the last bucket.
        assert_eq!(usize::from(h.max()), BUCKETS - 1);
        h.remove(40);
        assert_eq!(h.max(), 7);
        h.remove(7);
        assert_eq!(h.max(), 7, "one 7 is left");
        h.remove(7);
        assert_eq!(h.max(), 3);
        h.remove(2);
        assert_eq!(h.max(), 3, "removing a lower value keeps the top");
        h.remove(3);
        assert_eq!((h.max(), h), (0, Hist::EMPTY));
    }

    proptest::proptest! {
        /// The kept maximum is the highest non-empty bucket after any mix of
        /// additions and removals: values in the lumped last bucket, values
        /// removed that were never added (the count stays 0), emptying and
        /// refilling. Two histograms with the same counts compare equal.
        #[test]
        #[cfg_attr(miri, ignore = "proptest persists failures under the working directory, which Miri's isolation refuses; runs natively")]
        fn histogram_top_follows_the_counts(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u16..(BUCKETS as u16 + 4)), 0..64),
            start in 0u32..3,
        ) {
            // Like `reset`: the zero bucket filled directly.
            let mut h = Hist::EMPTY;
            h.counts[0] = start;
            for (add, v) in ops {
                if add {
                    h.add(v);
                } else {
                    h.remove(v);
                }
                let top = h.counts.iter().rposition(|&n| n > 0).map_or(0, |v| v as u16);
                proptest::prop_assert_eq!(h.max(), top);
                let mut rebuilt = Hist::EMPTY;
                for (b, &n) in h.counts.iter().enumerate() {
                    for _ in 0..n {
                        rebuilt.add(b as u16);
                    }
                }
                proptest::prop_assert_eq!(rebuilt, h);
            }
        }
    }

    #[test]
    fn only_pinned_demands_of_one_target_and_pool_merge() {
        let t = ConstraintTable::<2, 8>::new(SlotCounts::Separate { inst: 2, data: 4 }, 2).unwrap();
        let a = d(1, 1, true, task(1));
        assert_eq!(
            t.merged(&a, &d(1, 2, true, task(1))),
            Some(d(1, 3, true, task(1)))
        );
        // Over the pool's 4 registers: kept apart (checked one by one).
        assert_eq!(
            t.merged(&d(1, 3, true, task(1)), &d(1, 2, true, task(1))),
            None
        );
        assert_eq!(t.merged(&a, &d(0, 1, true, task(1))), None, "another pool");
        assert_eq!(t.merged(&a, &d(1, 1, true, task(2))), None, "another task");
        assert_eq!(
            t.merged(&a, &d(1, 1, true, on(1, 0))),
            None,
            "restricted to a CPU"
        );
        // Flexible requests are counted one by one.
        assert_eq!(
            t.merged(&d(1, 1, false, task(1)), &d(1, 1, false, task(1))),
            None
        );
        assert_eq!(t.merged(&a, &d(1, 1, false, task(1))), None);
    }

    #[test]
    fn debugger_reservation_respects_promises() {
        let mut t = ConstraintTable::<1, 8>::new(X86, 1).unwrap();
        t.take(&d(0, 2, true, Target::Cpu(0))).unwrap();
        assert_eq!(t.set_reserved(0, Pool(0), 3), Err(Error::NoSlot { cpu: 0 }));
        t.set_reserved(0, Pool(0), 2).unwrap();
        assert_eq!(
            t.check(&d(0, 1, true, task(1))),
            Err(Error::NoSlot { cpu: 0 })
        );
        t.set_reserved(0, Pool(0), 0).unwrap();
        t.take(&d(0, 1, true, task(1))).unwrap();
    }

    #[test]
    fn release_of_an_unreserved_demand_never_over_commits() {
        // Another table's claim for a demand this table never reserved: on
        // the old `release(&Demand)` it was subtracted from the 4 registers
        // promised here, and then 2 more were promised on a 4-register CPU.
        let mut other = ConstraintTable::<1, 8>::new(X86, 1).unwrap();
        let foreign = other.reserve(&d(0, 2, true, Target::Cpu(0))).unwrap();
        let mut t = ConstraintTable::<1, 8>::new(X86, 1).unwrap();
        let mine = t.reserve(&d(0, 4, true, Target::Cpu(0))).unwrap();
        let before = t.clone();
        assert_eq!(t.release(foreign), Err(Error::NotReserved));
        assert_eq!(t, before, "a refused release changed the table");
        assert_eq!(
            t.reserve(&d(0, 2, true, Target::Cpu(0))),
            Err(Error::NoSlot { cpu: 0 }),
            "six registers promised on a four-register CPU"
        );
        assert_eq!(t.worst_case(0, Pool(0)), 4);
        // A clone is another table: the original's claims stay the original's.
        let mut copy = t.clone();
        assert_eq!(copy.release(mine), Err(Error::NotReserved));
        assert_eq!(copy.worst_case(0, Pool(0)), 4);
    }

    #[test]
    fn shape_errors() {
        let t = ConstraintTable::<2, 8>::new(X86, 2).unwrap();
        assert_eq!(
            t.check(&d(0, 5, true, Target::Cpu(0))),
            Err(Error::RangeTooLarge {
                weight: 5,
                slots: 4
            })
        );
        assert_eq!(
            t.check(&d(0, 1, true, Target::Cpu(2))),
            Err(Error::CpuOutOfRange { cpu: 2 })
        );
        assert!(ConstraintTable::<2, 8>::new(X86, 3).is_err());
        assert!(ConstraintTable::<2, 8>::new(SlotCounts::Shared(0), 1).is_err());
    }
}
