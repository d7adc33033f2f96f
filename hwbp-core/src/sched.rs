//! Per-CPU scheduling: which event sits in which physical slot right now.
//!
//! Slots are assigned when a context is scheduled in, not at registration (seed
//! 004: "the register used for a breakpoint can be different between two sched
//! atoms"). The order is CPU-bound pinned, task pinned, then flexible events
//! round-robin from a per-CPU cursor that [`crate::Hwbp::rotate`] advances, as
//! perf multiplexes counters. Events that stay selected keep their physical
//! slots, so an unchanged context produces an unchanged image and no register
//! is written.

use crate::arch::{Pool, SlotCounts, MAX_SLOTS};
use crate::{Image, TaskId};
use heapless::Vec;

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

/// Decide the slot assignment of one CPU.
///
/// `pinned` must list CPU-bound pinned events before task pinned ones; the
/// constraint table guarantees they all fit, but the planner does not rely on it
/// (an event that does not fit is simply left off). `flexible` is in a stable
/// order; selection starts at `cursor % flexible.len()`.
pub(crate) fn plan<const N: usize>(
    counts: SlotCounts,
    reserved: [u8; 2],
    pinned: &Vec<Candidate, N>,
    flexible: &Vec<Candidate, N>,
    cursor: u32,
    old: &Assign,
) -> Plan {
    let mut usable = [0usize; 2];
    for (p, u) in usable.iter_mut().enumerate() {
        let slots = counts.slots(Pool(p as u8));
        *u = usize::from(slots.saturating_sub(reserved[p])).min(MAX_SLOTS);
    }
    let mut free = usable;
    let mut selected: Vec<Candidate, N> = Vec::new();
    let mut take = |c: &Candidate, free: &mut [usize; 2]| -> bool {
        let p = c.pool.index().min(1);
        if usize::from(c.weight) <= free[p] {
            free[p] -= usize::from(c.weight);
            // Capacity N is the number of event cells: cannot overflow.
            let _ = selected.push(*c);
            true
        } else {
            false
        }
    };
    for c in pinned {
        take(c, &mut free);
    }
    let mut starved = false;
    let n = flexible.len();
    if n > 0 {
        let start = cursor as usize % n;
        for k in 0..n {
            if let Some(c) = flexible.get((start + k) % n) {
                if !take(c, &mut free) {
                    starved = true;
                }
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
        let p = plan(counts, [0, 0], &pinned, &flex, 0, &EMPTY_ASSIGN);
        assert!(p.starved);
        let occ = occupants(&p.assign, 0);
        assert_eq!(
            &occ[..4],
            &[Some((0, 0)), Some((0, 1)), Some((1, 0)), Some((2, 0))]
        );
        let q = plan(counts, [0, 0], &pinned, &flex, 1, &p.assign);
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
        let p = plan(counts, [1, 2], &pinned, &flex, 0, &EMPTY_ASSIGN);
        assert_eq!(&p.assign[1][..4], &[Some((0, 0)), Some((0, 1)), None, None]);
        assert_eq!(&p.assign[0][..2], &[Some((2, 0)), None]);
        assert!(p.starved);
    }

    #[test]
    fn unchanged_inputs_keep_the_assignment() {
        let counts = SlotCounts::Shared(4);
        let pinned = cands(&[(5, 0, 1), (9, 0, 2)]);
        let flex = Vec::new();
        let a = plan(counts, [0, 0], &pinned, &flex, 0, &EMPTY_ASSIGN);
        let b = plan(counts, [0, 0], &pinned, &flex, 7, &a.assign);
        assert_eq!(a.assign, b.assign);
        assert!(!b.starved);
    }
}
