//! Event storage: the manager's breakpoints by storage index, the lowest
//! free index, and "hide now, reclaim later": an unregistered entry stays
//! *retiring* (in the retiring list) until no delivery is in flight, then it
//! is reused with the next generation (see [`crate::Handle`]). Taking or
//! freeing an entry costs O(log EVENTS) (the free set) plus the place in its
//! target's list; reclaiming walks only the retiring entries.
//!
//! The storage itself is part of the manager's locked state
//! ([`crate::manager`]); this module owns the rules for taking, freeing and
//! reusing entries.

use core::sync::atomic::Ordering;

use crate::arch::{Arch, Pool};
use crate::dispatch::{next_generation, EventCell, Handler};
use crate::handle::Handle;
use crate::lists;
use crate::manager::{affected, CpuSet, Manager, State};
use crate::sched::Times;
use crate::table::Demand;
use crate::{BreakpointAttr, Encoding, Error, Target, TaskId};

#[derive(Clone, Debug)]
pub(crate) struct Event<S> {
    pub(crate) attr: BreakpointAttr,
    pub(crate) enc: Encoding<S>,
    pub(crate) pool: Pool,
    pub(crate) enabled: bool,
    pub(crate) times: Times,
}

impl<S> Event<S> {
    pub(crate) fn demand(&self) -> Demand {
        Demand {
            pool: self.pool,
            weight: self.enc.weight(),
            pinned: self.attr.pinned,
            target: self.attr.target,
        }
    }

    pub(crate) fn eligible(&self, cpu: u16, task: Option<TaskId>) -> bool {
        self.enabled
            && match self.attr.target {
                Target::Cpu(c) => c == cpu,
                Target::AllCpus => true,
                Target::Task { task: t, cpu: c } => Some(t) == task && c.is_none_or(|c| c == cpu),
            }
    }
}

impl<A: Arch, H: Handler, const CPUS: usize, const EVENTS: usize, const TASKS: usize>
    Manager<A, H, CPUS, EVENTS, TASKS>
{
    /// The lowest reusable storage index (free, and not retiring with a
    /// delivery still in flight), after reclaiming what can be.
    pub(crate) fn free_index(&self, st: &mut State<A::Slot, CPUS, EVENTS, TASKS>) -> Option<usize> {
        self.reclaim(st);
        st.free.lowest()
    }

    /// Whether free entry `i` may be reused now; a retiring entry whose cell
    /// is idle stops retiring.
    pub(crate) fn reclaimable(
        &self,
        st: &mut State<A::Slot, CPUS, EVENTS, TASKS>,
        i: usize,
    ) -> bool {
        let Some(r) = st.retiring.get_mut(i) else {
            return false;
        };
        if !*r {
            return true;
        }
        if self.cells.get(i).is_some_and(EventCell::idle) {
            *r = false;
            st.retiring_n -= 1;
            lists::remove(&mut st.links, &mut st.retiring_list, i as u16);
            st.free.push(i);
            return true;
        }
        false
    }

    /// Stop retiring every entry whose cell is idle (walks the retiring
    /// entries only).
    pub(crate) fn reclaim(&self, st: &mut State<A::Slot, CPUS, EVENTS, TASKS>) {
        let mut at = st.retiring_list.first();
        while let Some(i) = at {
            at = lists::next(&st.links, i);
            self.reclaimable(st, usize::from(i));
        }
    }

    /// Store `ev` in the lowest reusable entry and publish it to dispatch;
    /// not yet in its target's list. `None` when storage is full.
    pub(crate) fn store_event(
        &self,
        st: &mut State<A::Slot, CPUS, EVENTS, TASKS>,
        ev: Event<A::Slot>,
    ) -> Option<u16> {
        let index = st.free.pop()?;
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
        let slot = st.events.get_mut(index)?;
        if slot.is_none() {
            st.used += 1;
        }
        *slot = Some(ev);
        Some(index as u16)
    }

    /// Store `ev` (as [`Self::store_event`]) and put it in its target's
    /// list.
    pub(crate) fn install_event(
        &self,
        st: &mut State<A::Slot, CPUS, EVENTS, TASKS>,
        ev: Event<A::Slot>,
    ) -> Option<Handle> {
        let index = self.store_event(st, ev)?;
        st.link(usize::from(index));
        Some(Handle {
            index,
            manager: self.id.load(Ordering::Relaxed),
            generation: st.generations.get(usize::from(index)).copied().unwrap_or(1),
        })
    }

    /// The live breakpoint `h` names: refused as stale when it was
    /// unregistered or `h` is another manager's.
    pub(crate) fn lookup<'s>(
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

    pub(crate) fn free_event(
        &self,
        st: &mut State<A::Slot, CPUS, EVENTS, TASKS>,
        index: usize,
        target: Target,
    ) -> CpuSet {
        if let Some(cell) = self.cells.get(index) {
            cell.hide();
        }
        st.unlink(index);
        if let Some(e) = st.events.get_mut(index) {
            if e.take().is_some() {
                st.used -= 1;
                if let Some(r) = st.retiring.get_mut(index) {
                    if !*r {
                        *r = true;
                        st.retiring_n += 1;
                        lists::push(&mut st.links, &mut st.retiring_list, index as u16);
                    }
                }
            }
        }
        if let Some(g) = st.generations.get_mut(index) {
            *g = next_generation(*g);
        }
        affected(st, target)
    }
}
