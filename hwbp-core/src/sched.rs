//! Per-CPU scheduling: which event sits in which physical slot right now.
//!
//! Slots are assigned when a context is scheduled in, not at registration (seed
//! 004: "the register used for a breakpoint can be different between two sched
//! atoms"). The order is CPU-bound pinned, task pinned, then flexible events
//! round-robin from a per-CPU cursor that [`crate::Manager::rotate`] advances, as
//! perf multiplexes counters. Events that stay selected keep their physical
//! slots, so an unchanged context produces an unchanged image and no register
//! is written.
//!
//! This module owns both halves: the pure decision ([`plan`]) and the
//! manager's scheduling entry points ([`crate::Manager::sched_in`],
//! [`crate::Manager::sched_out`], [`crate::Manager::sync`],
//! [`crate::Manager::rotate`]), which gather the eligible events, plan, install
//! the register image through the backend and publish the new slot occupants
//! to dispatch (`reschedule`).

use crate::arch::{Arch, Pool, SlotCounts, MAX_SLOTS};
use crate::dispatch::{tag_of, Handler};
use crate::lists::{List, Merge, MergeIter};
use crate::manager::{cpu_index, Manager, State};
use crate::storage::Event;
use crate::table::ConstraintTable;
use crate::{Error, Image, TaskId};
use heapless::Vec;

/// Scheduler ticks during which an event could run (its context was on a CPU
/// and it was enabled) and did run (it sat in a slot). `running / enabled`
/// scales counts of multiplexed events, as perf does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Times {
    /// Ticks the event was eligible.
    pub enabled: u64,
    /// Ticks the event was on the hardware.
    pub running: u64,
}

/// Occupant of each physical slot: (event cell index, piece index).
pub(crate) type Assign = [[Option<(u16, u8)>; MAX_SLOTS]; 2];

/// The empty assignment.
pub(crate) const EMPTY_ASSIGN: Assign = [[None; MAX_SLOTS]; 2];

/// One CPU's scheduling state.
#[derive(Debug)]
pub(crate) struct CpuState<S> {
    pub(crate) online: bool,
    /// The task whose events are eligible (None: only CPU events).
    pub(crate) task: Option<TaskId>,
    /// What is on the hardware now, slot by slot.
    pub(crate) assign: Assign,
    /// The register image last installed.
    pub(crate) installed: Image<S>,
    /// Rotation cursor over the eligible flexible events.
    pub(crate) cursor: u32,
}

impl<S> CpuState<S> {
    pub(crate) const OFFLINE: Self = CpuState {
        online: false,
        task: None,
        assign: EMPTY_ASSIGN,
        installed: Image {
            pools: [Vec::new(), Vec::new()],
        },
        cursor: 0,
    };
}

/// An event that may run on the CPU being planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) index: u16,
    pub(crate) pool: Pool,
    pub(crate) weight: u8,
}

/// Result of planning one CPU.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) assign: Assign,
    /// Some eligible flexible event did not fit (rotation has work to do).
    pub(crate) starved: bool,
}

/// At most this many events can be selected on one CPU: each takes at
/// least one of at most [`MAX_SLOTS`] slots in each of the two pools.
const MAX_SELECTED: usize = 2 * MAX_SLOTS;

/// Decide the slot assignment of one CPU.
///
/// `pinned` must yield CPU-bound pinned events before task pinned ones; the
/// constraint table guarantees they all fit, but the planner does not rely on it
/// (an event that does not fit is simply left off). `flexible` yields in a
/// stable order; selection starts at `cursor % n` for the `n` it yields.
/// Both are streamed: nothing here grows with the number of candidates.
pub(crate) fn plan(
    counts: SlotCounts,
    reserved: [u8; 2],
    pinned: impl Iterator<Item = Candidate>,
    flexible: impl Iterator<Item = Candidate> + Clone,
    cursor: u32,
    old: &Assign,
) -> Plan {
    let mut usable = [0usize; 2];
    for (p, u) in usable.iter_mut().enumerate() {
        let slots = counts.slots(Pool(p as u8));
        *u = usize::from(slots.saturating_sub(reserved[p])).min(MAX_SLOTS);
    }
    let mut free = usable;
    let mut selected: Vec<Candidate, MAX_SELECTED> = Vec::new();
    let mut take = |c: &Candidate, free: &mut [usize; 2]| -> bool {
        let p = c.pool.index().min(1);
        if c.weight > 0 && usize::from(c.weight) <= free[p] {
            free[p] -= usize::from(c.weight);
            // At most MAX_SELECTED weights of 1 or more fit: cannot overflow.
            let _ = selected.push(*c);
            true
        } else {
            false
        }
    };
    for c in pinned {
        take(&c, &mut free);
    }
    let mut starved = false;
    let n = flexible.clone().count();
    if n > 0 {
        let start = cursor as usize % n;
        let order = flexible.clone().skip(start).chain(flexible.take(start));
        for (k, c) in order.enumerate() {
            if free == [0, 0] {
                // Every slot is taken and `n - k` events remain.
                starved |= k < n;
                break;
            }
            if !take(&c, &mut free) {
                starved = true;
            }
        }
    }

    // Place pieces: keep what is already in place, then fill the lowest free
    // slots.
    let mut assign = EMPTY_ASSIGN;
    for c in &selected {
        let p = c.pool.index().min(1);
        for (s, occ) in old[p].iter().enumerate().take(usable[p]) {
            if let Some((idx, piece)) = *occ {
                if idx == c.index && piece < c.weight {
                    assign[p][s] = Some((idx, piece));
                }
            }
        }
    }
    for c in &selected {
        let p = c.pool.index().min(1);
        for piece in 0..c.weight {
            // (Pieces can outnumber events: look in the assignment itself.)
            if assign[p].contains(&Some((c.index, piece))) {
                continue;
            }
            if let Some(s) = assign[p].iter().take(usable[p]).position(Option::is_none) {
                assign[p][s] = Some((c.index, piece));
            }
        }
    }
    Plan { assign, starved }
}

/// The eligible events of some lists, as candidates, in storage order.
struct Candidates<'a, S> {
    events: &'a [Option<Event<S>>],
    walk: MergeIter<'a>,
    cpu: u16,
    task: Option<TaskId>,
}

impl<S> Clone for Candidates<'_, S> {
    fn clone(&self) -> Self {
        Candidates { ..*self }
    }
}

impl<S> Iterator for Candidates<'_, S> {
    type Item = Candidate;

    fn next(&mut self) -> Option<Candidate> {
        loop {
            let i = self.walk.next()?;
            let Some(ev) = self.events.get(usize::from(i)).and_then(Option::as_ref) else {
                continue;
            };
            if ev.eligible(self.cpu, self.task) {
                return Some(Candidate {
                    index: i,
                    pool: ev.pool,
                    weight: ev.enc.weight(),
                });
            }
        }
    }
}

impl<A: Arch, H: Handler, const CPUS: usize, const EVENTS: usize, const TASKS: usize>
    Manager<A, H, CPUS, EVENTS, TASKS>
{
    /// The context on `cpu` is leaving (context switch). The registers are not
    /// written yet: the next [`Manager::sched_in`] writes only what differs, so
    /// switching between contexts with the same breakpoints costs nothing.
    pub fn sched_out(&self, cpu: u16) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            st.set_task(c, None);
            Ok(())
        })
    }

    /// `task` (or no task) now runs on `cpu`; call it on that CPU. Assigns slots
    /// (CPU pinned, task pinned, then flexible round-robin) and writes only the
    /// registers that change.
    pub fn sched_in(&self, cpu: u16, task: Option<TaskId>) -> Result<(), Error> {
        self.with_table(|st, table| {
            let c = cpu_index(table, cpu)?;
            st.set_task(c, task);
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
            // Only the events that may run here: this CPU's, the all-CPU
            // ones and the running task's.
            let [cp, cf] = st.cpu_lists.get(c).copied().unwrap_or([List::EMPTY; 2]);
            let [ap, af] = st.all_lists;
            let [tp, tf] = st.task_lists(task);
            let mut walk = Merge::new(&[cp, ap, tp]);
            let mut flexible = Merge::new(&[cf, af, tf]);
            while let Some(i) = walk.next(&st.links).or_else(|| flexible.next(&st.links)) {
                let Some(ev) = st.events.get_mut(usize::from(i)).and_then(Option::as_mut) else {
                    continue;
                };
                if !ev.eligible(cpu, task) {
                    continue;
                }
                ev.times.enabled += 1;
                if assign.iter().flatten().flatten().any(|&(idx, _)| idx == i) {
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
    pub(crate) fn reschedule(
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
        // CPU-bound pinned first, then task pinned (both always fit by the
        // table's promise), then flexible; each in storage order, streamed
        // from the lists of what may run here.
        let [cp, cf] = st.cpu_lists.get(c).copied().unwrap_or([List::EMPTY; 2]);
        let [ap, af] = st.all_lists;
        let [tp, tf] = st.task_lists(task);
        let stream = |lists: &[List]| Candidates {
            events: &st.events,
            walk: Merge::new(lists).iter(&st.links),
            cpu,
            task,
        };
        let pinned = stream(&[cp, ap]).chain(stream(&[tp]));
        let reserved = [table.reserved(cpu, Pool(0)), table.reserved(cpu, Pool(1))];
        let plan = plan(
            counts,
            reserved,
            pinned,
            stream(&[cf, af, tf]),
            cs.cursor,
            &cs.assign,
        );

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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(list: &[(u16, u8, u8)]) -> Vec<Candidate, 16> {
        list.iter()
            .map(|&(index, pool, weight)| Candidate {
                index,
                pool: Pool(pool),
                weight,
            })
            .collect()
    }

    fn occupants(a: &Assign, pool: usize) -> std::vec::Vec<Option<(u16, u8)>> {
        a[pool].to_vec()
    }

    #[test]
    fn pinned_first_then_flexible_round_robin() {
        let counts = SlotCounts::Shared(4);
        let pinned = cands(&[(0, 0, 2)]);
        let flex = cands(&[(1, 0, 1), (2, 0, 1), (3, 0, 1)]);
        let p = plan(
            counts,
            [0, 0],
            pinned.iter().copied(),
            flex.iter().copied(),
            0,
            &EMPTY_ASSIGN,
        );
        assert!(p.starved);
        let occ = occupants(&p.assign, 0);
        assert_eq!(
            &occ[..4],
            &[Some((0, 0)), Some((0, 1)), Some((1, 0)), Some((2, 0))]
        );
        let q = plan(
            counts,
            [0, 0],
            pinned.iter().copied(),
            flex.iter().copied(),
            1,
            &p.assign,
        );
        let occ = occupants(&q.assign, 0);
        // Event 2 stays in slot 3; event 3 takes the slot event 1 left.
        assert_eq!(
            &occ[..4],
            &[Some((0, 0)), Some((0, 1)), Some((3, 0)), Some((2, 0))]
        );
    }

    #[test]
    fn reserved_slots_are_never_used() {
        let counts = SlotCounts::Separate { inst: 2, data: 4 };
        let pinned = cands(&[(0, 1, 2)]);
        let flex = cands(&[(1, 1, 1), (2, 0, 1)]);
        let p = plan(
            counts,
            [1, 2],
            pinned.iter().copied(),
            flex.iter().copied(),
            0,
            &EMPTY_ASSIGN,
        );
        assert_eq!(&p.assign[1][..4], &[Some((0, 0)), Some((0, 1)), None, None]);
        assert_eq!(&p.assign[0][..2], &[Some((2, 0)), None]);
        assert!(p.starved);
    }

    #[test]
    fn unchanged_inputs_keep_the_assignment() {
        let counts = SlotCounts::Shared(4);
        let pinned = cands(&[(5, 0, 1), (9, 0, 2)]);
        let flex: Vec<Candidate, 16> = Vec::new();
        let a = plan(
            counts,
            [0, 0],
            pinned.iter().copied(),
            flex.iter().copied(),
            0,
            &EMPTY_ASSIGN,
        );
        let b = plan(
            counts,
            [0, 0],
            pinned.iter().copied(),
            flex.iter().copied(),
            7,
            &a.assign,
        );
        assert_eq!(a.assign, b.assign);
        assert!(!b.starved);
    }
}
