//! The constraint table: can a request *ever* fail to be on the hardware?
//!
//! This answers reservation, not installation. For every CPU and register pool
//! it keeps (Linux's `bp_cpuinfo` idea, seed 004 patch 4/5):
//!
//! * the summed weight of pinned CPU-bound requests (`Cpu(n)` and `AllCpus`),
//! * a histogram of pinned task weights: `hist[w]` is the number of tasks whose
//!   pinned requests that can run on this CPU weigh `w` in total,
//! * the number of flexible requests that can run on this CPU,
//! * the registers set aside for a debugger.
//!
//! Only one task runs on a CPU at a time, so the worst case on a CPU is
//! `cpu_pinned + max task weight + reserved (+1 if any flexible exists)`; a pinned
//! request is accepted only if that stays within the CPU's registers on every CPU
//! it can run on. The largest task weight is read off the histogram, so the cost
//! of a check is `O(CPUs × MAX_SLOTS)` and never depends on how many tasks exist.
//!
//! A reservation made through the public API comes back as a [`Claim`], and
//! only a claim this table issued can be released: the table keeps counts,
//! not a list of requests, so releasing a demand it never accounted would
//! silently take registers from the requests it did account and let a later
//! one over-commit the hardware.
//!
//! As in Linux, one register is kept free for flexible requests whatever their
//! weight: a flexible request that needs more registers than pinned ones leave
//! free is accepted but may never get running time (its [`crate::Times`] show
//! `running` staying 0), until pinned breakpoints go away.

use crate::arch::{Pool, SlotCounts, MAX_SLOTS};
use crate::{Error, HardwareError, Target, TaskId};
use heapless::index_map::FnvIndexMap;

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

/// One CPU's account for one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PoolAccount {
    cpu_pinned: u8,
    /// `task_hist[w]`: tasks whose pinned weight on this CPU is `w` (index 0 unused).
    task_hist: [u16; MAX_SLOTS + 1],
    flexible: u16,
    reserved: u8,
}

impl PoolAccount {
    const EMPTY: Self = PoolAccount {
        cpu_pinned: 0,
        task_hist: [0; MAX_SLOTS + 1],
        flexible: 0,
        reserved: 0,
    };

    fn max_task(&self) -> u8 {
        // Scans MAX_SLOTS buckets: constant time whatever the number of tasks.
        self.task_hist
            .iter()
            .rposition(|&n| n > 0)
            .map_or(0, |w| w as u8)
    }

    fn flexible_reserve(&self) -> u8 {
        u8::from(self.flexible > 0)
    }

    /// Registers that may be in use at once in the worst case.
    fn worst_case(&self) -> u16 {
        u16::from(self.cpu_pinned)
            + u16::from(self.max_task())
            + u16::from(self.reserved)
            + u16::from(self.flexible_reserve())
    }
}

/// A task's pinned weights: `any[p]` for requests that follow the task on every
/// CPU, `on_cpu[c][p]` for requests restricted to CPU `c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TaskUsage<const CPUS: usize> {
    any: [u8; 2],
    on_cpu: [[u8; 2]; CPUS],
}

impl<const CPUS: usize> TaskUsage<CPUS> {
    const EMPTY: Self = TaskUsage {
        any: [0; 2],
        on_cpu: [[0; 2]; CPUS],
    };

    fn weight(&self, cpu: usize, pool: usize) -> u8 {
        let local = self
            .on_cpu
            .get(cpu)
            .and_then(|p| p.get(pool))
            .copied()
            .unwrap_or(0);
        self.any
            .get(pool)
            .copied()
            .unwrap_or(0)
            .saturating_add(local)
    }

    fn is_empty(&self) -> bool {
        *self == Self::EMPTY
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
/// `CPUS` bounds the number of CPUs; `TASKS` (a power of two) bounds the number
/// of tasks that hold pinned requests at once.
///
/// Equality compares the accounts. A clone accounts the same requests but is
/// another table: claims made by the original are refused by the clone.
#[derive(Debug)]
pub struct ConstraintTable<const CPUS: usize, const TASKS: usize> {
    /// Identity carried by the claims this table issues.
    id: u32,
    counts: SlotCounts,
    nr_cpus: u16,
    cpus: [[PoolAccount; 2]; CPUS],
    tasks: FnvIndexMap<TaskId, TaskUsage<CPUS>, TASKS>,
}

impl<const CPUS: usize, const TASKS: usize> ConstraintTable<CPUS, TASKS> {
    /// An empty table for `nr_cpus` CPUs with `counts` registers each.
    pub fn new(counts: SlotCounts, nr_cpus: u16) -> Result<Self, Error> {
        counts.validate()?;
        if nr_cpus == 0 || usize::from(nr_cpus) > CPUS {
            return Err(Error::CpuOutOfRange { cpu: nr_cpus });
        }
        Ok(ConstraintTable {
            id: crate::id::next(),
            counts,
            nr_cpus,
            cpus: [[PoolAccount::EMPTY; 2]; CPUS],
            tasks: FnvIndexMap::new(),
        })
    }

    /// The register counts the table was built for.
    pub fn counts(&self) -> SlotCounts {
        self.counts
    }

    /// Number of CPUs the table covers.
    pub fn nr_cpus(&self) -> u16 {
        self.nr_cpus
    }

    /// The CPUs a target can run on, as a range of CPU numbers.
    fn cpus_of(&self, target: Target) -> core::ops::Range<usize> {
        match target {
            Target::Cpu(c) | Target::Task { cpu: Some(c), .. } => {
                usize::from(c)..usize::from(c) + 1
            }
            Target::AllCpus | Target::Task { cpu: None, .. } => 0..usize::from(self.nr_cpus),
        }
    }

    fn account(&self, cpu: usize, pool: Pool) -> Option<&PoolAccount> {
        self.cpus.get(cpu)?.get(pool.index())
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
        let range = self.cpus_of(d.target);
        if range.end > usize::from(self.nr_cpus) {
            return Err(Error::CpuOutOfRange {
                cpu: range.start as u16,
            });
        }
        Ok(())
    }

    /// Would `d` fit together with everything already accounted?
    pub fn check(&self, d: &Demand) -> Result<(), Error> {
        self.check_shape(d)?;
        let slots = u16::from(self.counts.slots(d.pool));
        let task = match d.target {
            Target::Task { task, .. } => self.tasks.get(&task),
            _ => None,
        };
        if d.pinned {
            if let Target::Task { task: id, .. } = d.target {
                if task.is_none() && self.tasks.len() == self.tasks.capacity() {
                    let _ = id;
                    return Err(Error::TooManyTasks);
                }
            }
        }
        for cpu in self.cpus_of(d.target) {
            let Some(acc) = self.account(cpu, d.pool) else {
                return Err(Error::CpuOutOfRange { cpu: cpu as u16 });
            };
            let fits = if d.pinned {
                let task_part = match d.target {
                    Target::Task { .. } => {
                        let own = task.map_or(0, |t| t.weight(cpu, d.pool.index()));
                        u16::from(acc.max_task()).max(u16::from(own) + u16::from(d.weight))
                    }
                    _ => u16::from(acc.max_task()) + u16::from(d.weight),
                };
                u16::from(acc.cpu_pinned)
                    + task_part
                    + u16::from(acc.reserved)
                    + u16::from(acc.flexible_reserve())
                    <= slots
            } else {
                // A flexible request needs one register kept free for the
                // flexible group; once one exists the others share it.
                acc.flexible > 0 || acc.worst_case() < slots
            };
            if !fits {
                return Err(Error::NoSlot { cpu: cpu as u16 });
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
    /// (another table's, or the original's after this table was cloned) is
    /// refused with [`Error::NotReserved`] and changes nothing.
    pub fn release(&mut self, claim: Claim) -> Result<(), Error> {
        if claim.table != self.id {
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

    fn apply(&mut self, d: &Demand, add: bool) {
        let pool = d.pool.index();
        let range = self.cpus_of(d.target);
        if !d.pinned {
            for acc in self.cpus[range].iter_mut().filter_map(|c| c.get_mut(pool)) {
                acc.flexible = if add {
                    acc.flexible.saturating_add(1)
                } else {
                    acc.flexible.saturating_sub(1)
                };
            }
            return;
        }
        match d.target {
            Target::Cpu(_) | Target::AllCpus => {
                for acc in self.cpus[range].iter_mut().filter_map(|c| c.get_mut(pool)) {
                    acc.cpu_pinned = if add {
                        acc.cpu_pinned.saturating_add(d.weight)
                    } else {
                        acc.cpu_pinned.saturating_sub(d.weight)
                    };
                }
            }
            Target::Task { task, cpu } => {
                let old = self.tasks.get(&task).copied().unwrap_or(TaskUsage::EMPTY);
                let mut new = old;
                let slot = match cpu {
                    None => new.any.get_mut(pool),
                    Some(c) => new
                        .on_cpu
                        .get_mut(usize::from(c))
                        .and_then(|p| p.get_mut(pool)),
                };
                let Some(w) = slot else { return };
                *w = if add {
                    w.saturating_add(d.weight)
                } else {
                    w.saturating_sub(d.weight)
                };
                for c in range {
                    let (before, after) = (old.weight(c, pool), new.weight(c, pool));
                    if let Some(acc) = self.cpus.get_mut(c).and_then(|p| p.get_mut(pool)) {
                        if let Some(n) = acc
                            .task_hist
                            .get_mut(usize::from(before))
                            .filter(|_| before > 0)
                        {
                            *n = n.saturating_sub(1);
                        }
                        if let Some(n) = acc
                            .task_hist
                            .get_mut(usize::from(after))
                            .filter(|_| after > 0)
                        {
                            *n = n.saturating_add(1);
                        }
                    }
                }
                if new.is_empty() {
                    self.tasks.swap_remove(&task);
                } else {
                    // Capacity was checked by `check`; on release the entry exists.
                    let _ = self.tasks.insert(task, new);
                }
            }
        }
    }

    /// Set aside `n` registers of `pool` on `cpu` for a debugger, replacing any
    /// earlier reservation there. Refused if it would break a pinned promise.
    pub fn set_reserved(&mut self, cpu: u16, pool: Pool, n: u8) -> Result<(), Error> {
        let slots = u16::from(self.counts.slots(pool));
        if cpu >= self.nr_cpus {
            return Err(Error::CpuOutOfRange { cpu });
        }
        let Some(acc) = self
            .cpus
            .get_mut(usize::from(cpu))
            .and_then(|p| p.get_mut(pool.index()))
        else {
            return Err(Error::CpuOutOfRange { cpu });
        };
        let others = acc.worst_case() - u16::from(acc.reserved);
        if slots == 0 || others + u16::from(n) > slots {
            return Err(Error::NoSlot { cpu });
        }
        acc.reserved = n;
        Ok(())
    }

    /// Registers of `pool` on `cpu` set aside for a debugger.
    pub fn reserved(&self, cpu: u16, pool: Pool) -> u8 {
        self.account(usize::from(cpu), pool)
            .map_or(0, |a| a.reserved)
    }

    /// Worst-case number of registers of `pool` in use at once on `cpu`
    /// (pinned CPU-bound + heaviest task + reserved + 1 if flexible requests exist).
    pub fn worst_case(&self, cpu: u16, pool: Pool) -> u16 {
        self.account(usize::from(cpu), pool)
            .map_or(0, PoolAccount::worst_case)
    }

    /// Number of tasks holding pinned requests.
    pub fn tasks(&self) -> usize {
        self.tasks.len()
    }
}

impl<const CPUS: usize, const TASKS: usize> Clone for ConstraintTable<CPUS, TASKS> {
    fn clone(&self) -> Self {
        ConstraintTable {
            id: crate::id::next(),
            counts: self.counts,
            nr_cpus: self.nr_cpus,
            cpus: self.cpus,
            tasks: self.tasks.clone(),
        }
    }
}

impl<const CPUS: usize, const TASKS: usize> PartialEq for ConstraintTable<CPUS, TASKS> {
    fn eq(&self, other: &Self) -> bool {
        self.counts == other.counts
            && self.nr_cpus == other.nr_cpus
            && self.cpus == other.cpus
            && self.tasks == other.tasks
    }
}

impl<const CPUS: usize, const TASKS: usize> Eq for ConstraintTable<CPUS, TASKS> {}

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
