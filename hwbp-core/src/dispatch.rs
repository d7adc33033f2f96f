//! The debug exception path: the dispatch decision
//! ([`crate::Manager::handle_exception`]: which breakpoint fired, whom to
//! deliver to, what the CPU does next) and the lock-free state it reads.
//!
//! The exception path may run in NMI or debug-exception context on any CPU while
//! another CPU registers or unregisters, so it takes no lock and allocates
//! nothing. It reads two kinds of atomics:
//!
//! * per CPU and physical slot, which event occupies it ([`SlotMap`]), written
//!   only by that CPU's scheduler;
//! * per event, a generation tag, an in-flight count, the hit counter, the
//!   sample period and the watched region ([`EventCell`]).
//!
//! Unregistering an event *hides* its cell (stores tag 0) and never waits. A
//! deliverer increments the in-flight count *before* it checks the tag, so
//! (with sequentially consistent ordering on both sides) either it sees the
//! hidden tag and backs out, or it was already in flight when the cell was
//! hidden: no delivery starts after the hide. Once a hidden cell has been
//! seen idle (nothing in flight), every delivery that saw its old tag is
//! over; until then the manager keeps the cell *retiring* and does not reuse
//! it, so a slot map entry that still names the old generation can never be
//! credited to a newer event in the same cell. Nothing here spins for another
//! CPU, so a handler may unregister any breakpoint, its own included; an
//! embedder that must know a handler has finished polls [`EventCell::idle`]
//! through the manager, outside handler context.
//!
//! Generations are 64-bit (see [`crate::Handle`]) without 64-bit atomics: the
//! tag is the generation's low half (never 0: the manager skips generations
//! whose low half is 0) and the cell keeps the high half beside it, written
//! before the tag is published and stable while a delivery is in flight.
//!
//! Hit counts, sample periods and addresses are 64-bit atomics. On targets
//! without 64-bit atomic instructions (Cortex-M, 32-bit RISC-V) they are
//! kept in critical sections instead ([`crate::atomic`]): the dispatcher
//! then enters the embedder's critical section for a few instructions, which
//! on those single-core targets masks interrupts.

cfg_if::cfg_if! {
    if #[cfg(loom)] {
        use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
    } else if #[cfg(target_has_atomic = "64")] {
        use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, Ordering};
    } else {
        // Cortex-M, 32-bit RISC-V: 64-bit values in critical sections.
        use core::sync::atomic::{fence, AtomicU32, AtomicU8, Ordering};
        use crate::atomic::AtomicU64;
    }
}

use crate::arch::{Action, Arch, Fired, Pool, Resume, MAX_SLOTS};
use crate::attribution::{contains, distance, Class, Match, Rule};
use crate::handle::Handle;
use crate::manager::Manager;
use crate::Access;

// The exception handler on any CPU reads these while another CPU writes
// them (with the critical-section fallback for 64-bit values too).
static_assertions::assert_impl_all!(EventCell: Send, Sync);
static_assertions::assert_impl_all!(SlotMap: Send, Sync);

/// How often [`EventCell::region`] re-reads a region that is being modified.
#[cfg(not(loom))]
const REGION_RETRIES: u32 = 1 << 12;
/// Under loom the writer always gets to finish (the reader yields), so the
/// protocol itself is checked without the bound.
#[cfg(loom)]
const REGION_RETRIES: u32 = u32::MAX;

/// The dispatch-visible state of one event cell.
#[derive(Debug)]
pub(crate) struct EventCell {
    /// Low half of the generation of the live event in this cell; 0 when
    /// free or hidden.
    tag: AtomicU32,
    /// High half of the generation published last.
    gen_hi: AtomicU32,
    /// Deliveries currently between their tag check and their end.
    inflight: AtomicU32,
    hits: AtomicU64,
    period: AtomicU64,
    /// Sequence count of the region (odd while `update` writes it), so that a
    /// dispatcher never pairs a new address with an old length.
    seq: AtomicU32,
    addr: AtomicU64,
    len: AtomicU64,
    access: AtomicU8,
}

impl EventCell {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        EventCell {
            tag: AtomicU32::new(0),
            gen_hi: AtomicU32::new(0),
            inflight: AtomicU32::new(0),
            hits: AtomicU64::new(0),
            period: AtomicU64::new(1),
            seq: AtomicU32::new(0),
            addr: AtomicU64::new(0),
            len: AtomicU64::new(0),
            access: AtomicU8::new(0),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        EventCell {
            tag: AtomicU32::new(0),
            gen_hi: AtomicU32::new(0),
            inflight: AtomicU32::new(0),
            hits: AtomicU64::new(0),
            period: AtomicU64::new(1),
            seq: AtomicU32::new(0),
            addr: AtomicU64::new(0),
            len: AtomicU64::new(0),
            access: AtomicU8::new(0),
        }
    }

    /// Make a fresh event visible under `generation` (its low half
    /// non-zero). The cell must be hidden and idle (tag 0, nothing in flight
    /// since it was hidden).
    pub(crate) fn publish(
        &self,
        generation: u64,
        addr: u64,
        len: u64,
        access: Access,
        period: u64,
    ) {
        self.hits.store(0, Ordering::Relaxed);
        self.update(addr, len, access, period);
        self.gen_hi
            .store((generation >> 32) as u32, Ordering::Relaxed);
        // Publishes everything above to a deliverer that reads this tag.
        self.tag.store(tag_of(generation), Ordering::SeqCst);
    }

    /// Change the region and period of a live event (modify). Writers are
    /// serialized by the manager's critical section.
    pub(crate) fn update(&self, addr: u64, len: u64, access: Access, period: u64) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.addr.store(addr, Ordering::Relaxed);
        self.len.store(len, Ordering::Relaxed);
        self.access.store(access.bits(), Ordering::Relaxed);
        self.period.store(period.max(1), Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Hide the event and wait until every delivery that saw it has finished
    /// (what an embedder's wait for a quiesced breakpoint amounts to).
    #[cfg(any(test, loom))]
    pub(crate) fn retire(&self) {
        self.hide();
        while !self.idle() {
            spin();
        }
    }

    /// Hide the event: no delivery that starts from now on reaches it. Never
    /// waits (the manager does it inside its critical section, possibly from
    /// a handler); deliveries already in flight finish on their own.
    pub(crate) fn hide(&self) {
        self.tag.store(0, Ordering::SeqCst);
        // The fence (paired with the one in `enter`) is what makes the
        // store-then-load handshake hold; SeqCst accesses alone would too, but
        // loom only models the handshake through SeqCst fences.
        fence(Ordering::SeqCst);
    }

    /// No delivery is in flight right now. Once a hidden cell was seen idle,
    /// every delivery that saw its old tag is over: the cell may be reused.
    pub(crate) fn idle(&self) -> bool {
        self.inflight.load(Ordering::SeqCst) == 0
    }

    /// Start a delivery for generation `tag`; `None` if the event is gone. The
    /// returned guard ends the delivery when dropped.
    pub(crate) fn enter(&self, tag: u32) -> Option<Delivery<'_>> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if tag == 0 || self.tag.load(Ordering::SeqCst) != tag {
            self.inflight.fetch_sub(1, Ordering::Release);
            return None;
        }
        Some(Delivery { cell: self, tag })
    }

    /// Hits counted so far.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The access kinds of the region published last (one load; no need
    /// to pair it with the address and length).
    #[inline]
    pub(crate) fn access(&self) -> Access {
        Access::from_bits_truncate(self.access.load(Ordering::Relaxed))
    }

    /// The region and access the event watches, as the dispatcher sees it: a
    /// consistent snapshot, unless a `modify` on another CPU keeps the region
    /// changing through every retry (then the last reading, which may mix the
    /// old and the new region). The retries are bounded because the writer
    /// may be the interrupted code on this very CPU.
    #[inline]
    pub(crate) fn region(&self) -> (u64, u64, Access) {
        let mut last = (0, 0, Access::empty());
        for _ in 0..REGION_RETRIES {
            let before = self.seq.load(Ordering::Acquire);
            last = (
                self.addr.load(Ordering::Relaxed),
                self.len.load(Ordering::Relaxed),
                Access::from_bits_truncate(self.access.load(Ordering::Relaxed)),
            );
            fence(Ordering::Acquire);
            if before & 1 == 0 && self.seq.load(Ordering::Relaxed) == before {
                break;
            }
            spin();
        }
        last
    }
}

/// An in-flight delivery: while it lives, the event cannot finish retiring.
pub(crate) struct Delivery<'a> {
    cell: &'a EventCell,
    tag: u32,
}

impl Delivery<'_> {
    /// The full generation of the event being delivered. The cell cannot be
    /// published again while this delivery lives, so the high half read here
    /// is the one published with the tag the delivery matched.
    pub(crate) fn generation(&self) -> u64 {
        (u64::from(self.cell.gen_hi.load(Ordering::Relaxed)) << 32) | u64::from(self.tag)
    }

    /// Count one hit; returns the hit count including this one and whether
    /// this hit completes a sample period.
    pub(crate) fn count(&self) -> (u64, bool) {
        let hits = self
            .cell
            .hits
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        let period = self.cell.period.load(Ordering::Relaxed).max(1);
        (hits, hits.is_multiple_of(period))
    }

    /// The watched region and access.
    pub(crate) fn region(&self) -> (u64, u64, Access) {
        self.cell.region()
    }
}

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        self.cell.inflight.fetch_sub(1, Ordering::Release);
    }
}

/// The dispatch tag of a generation: its low half.
pub(crate) const fn tag_of(generation: u64) -> u32 {
    generation as u32
}

/// The generation after `g`, skipping those whose tag would be 0 (the tag of
/// a hidden cell).
pub(crate) const fn next_generation(g: u64) -> u64 {
    let n = g.wrapping_add(1);
    if tag_of(n) == 0 {
        n.wrapping_add(1)
    } else {
        n
    }
}

/// Pack an event cell index and generation tag into one slot-map word (0 = empty).
pub(crate) const fn pack(index: u16, tag: u32) -> u64 {
    ((tag as u64) << 32) | (index as u64 + 1)
}

/// Unpack a slot-map word into (cell index, generation).
pub(crate) const fn unpack(word: u64) -> Option<(u16, u32)> {
    let low = (word & 0xffff_ffff) as u32;
    if low == 0 || low > u16::MAX as u32 + 1 {
        return None;
    }
    Some(((low - 1) as u16, (word >> 32) as u32))
}

/// One physical slot as the dispatcher sees it.
#[derive(Debug)]
pub(crate) struct SlotEntry {
    occupant: AtomicU64,
    hw_addr: AtomicU64,
    hw_len: AtomicU64,
}

impl SlotEntry {
    #[cfg(not(loom))]
    const fn new() -> Self {
        SlotEntry {
            occupant: AtomicU64::new(0),
            hw_addr: AtomicU64::new(0),
            hw_len: AtomicU64::new(0),
        }
    }
    #[cfg(loom)]
    fn new() -> Self {
        SlotEntry {
            occupant: AtomicU64::new(0),
            hw_addr: AtomicU64::new(0),
            hw_len: AtomicU64::new(0),
        }
    }

    /// Occupant (cell index, generation) and the bytes its hardware matches.
    #[inline]
    pub(crate) fn load(&self) -> Option<(u16, u32, u64, u64)> {
        let (idx, tag) = unpack(self.occupant.load(Ordering::Acquire))?;
        Some((
            idx,
            tag,
            self.hw_addr.load(Ordering::Relaxed),
            self.hw_len.load(Ordering::Relaxed),
        ))
    }

    pub(crate) fn set(&self, index: u16, tag: u32, hw_addr: u64, hw_len: u64) {
        self.hw_addr.store(hw_addr, Ordering::Relaxed);
        self.hw_len.store(hw_len, Ordering::Relaxed);
        self.occupant.store(pack(index, tag), Ordering::Release);
    }

    pub(crate) fn clear(&self) {
        self.occupant.store(0, Ordering::Release);
    }
}

/// Which event sits in each physical slot of one CPU, plus its counters.
#[derive(Debug)]
pub(crate) struct SlotMap {
    pools: [[SlotEntry; MAX_SLOTS]; 2],
    /// Per pool, the slots a debugger reserved (bit n: slot n).
    reserved: [AtomicU32; 2],
    stray: AtomicU64,
    /// Debug exceptions handed to [`Manager::handle_exception`] on this CPU.
    exceptions: AtomicU64,
    /// Of those, the ones answered with a single step ([`Action::SingleStep`]).
    step_overs: AtomicU64,
    /// Of those, the ones handed on to the next handler ([`Resume::pass_on`]).
    passed_on: AtomicU64,
}

/// What the exception path counted on one CPU since the manager was built
/// ([`Manager::counters`]). Plain relaxed counters: each is exact, but a
/// snapshot taken while exceptions arrive may mix moments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct CpuCounters {
    /// Debug exceptions handled ([`Manager::handle_exception`] calls).
    pub exceptions: u64,
    /// Hits that matched no live breakpoint (or fell outside its region) and
    /// were not delivered.
    pub stray: u64,
    /// Exceptions answered with a single step (a step-over of a breakpoint
    /// that fires before the access or instruction).
    pub step_overs: u64,
    /// Exceptions handed on to the next handler (not ours, a debugger's
    /// register, or ours together with someone else's event).
    pub passed_on: u64,
}

impl SlotMap {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        SlotMap {
            pools: [const { [const { SlotEntry::new() }; MAX_SLOTS] }; 2],
            reserved: [const { AtomicU32::new(0) }; 2],
            stray: AtomicU64::new(0),
            exceptions: AtomicU64::new(0),
            step_overs: AtomicU64::new(0),
            passed_on: AtomicU64::new(0),
        }
    }
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        SlotMap {
            pools: core::array::from_fn(|_| core::array::from_fn(|_| SlotEntry::new())),
            reserved: core::array::from_fn(|_| AtomicU32::new(0)),
            stray: AtomicU64::new(0),
            exceptions: AtomicU64::new(0),
            step_overs: AtomicU64::new(0),
            passed_on: AtomicU64::new(0),
        }
    }

    pub(crate) fn entry(&self, pool: usize, slot: usize) -> Option<&SlotEntry> {
        self.pools.get(pool)?.get(slot)
    }

    pub(crate) fn pool(&self, pool: usize) -> &[SlotEntry] {
        self.pools.get(pool).map_or(&[], |p| &p[..])
    }

    /// Record which slots of `pool` a debugger holds.
    pub(crate) fn set_reserved(&self, pool: usize, mask: u32) {
        if let Some(r) = self.reserved.get(pool) {
            r.store(mask, Ordering::Relaxed);
        }
    }

    /// The slots of `pool` a debugger holds.
    pub(crate) fn reserved(&self, pool: usize) -> u32 {
        self.reserved
            .get(pool)
            .map_or(0, |r| r.load(Ordering::Relaxed))
    }

    pub(crate) fn count_stray(&self) {
        self.stray.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stray(&self) -> u64 {
        self.stray.load(Ordering::Relaxed)
    }

    /// Count one handled exception and what it asked the CPU to do.
    fn count_exception(&self, r: Resume) {
        self.exceptions.fetch_add(1, Ordering::Relaxed);
        if r.action == Action::SingleStep {
            self.step_overs.fetch_add(1, Ordering::Relaxed);
        }
        if r.pass_on {
            self.passed_on.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn counters(&self) -> CpuCounters {
        CpuCounters {
            exceptions: self.exceptions.load(Ordering::Relaxed),
            stray: self.stray(),
            step_overs: self.step_overs.load(Ordering::Relaxed),
            passed_on: self.passed_on.load(Ordering::Relaxed),
        }
    }
}

#[cfg(not(loom))]
fn spin() {
    core::hint::spin_loop();
}

#[cfg(loom)]
fn spin() {
    loom::thread::yield_now();
}

/// What a handler receives for a delivered hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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
/// the manager, [`Manager::unregister`] and [`Manager::exit`] included: neither
/// waits for a handler, so a handler may unregister another CPU's breakpoint
/// while that breakpoint's handler unregisters its own, or unregister the
/// breakpoint being delivered (a one-shot breakpoint). A call from a handler
/// is refused with [`Error::Busy`](crate::Error::Busy) when the exception interrupted a manager
/// call on the same CPU. The one thing a handler must not call is
/// [`Manager::wait_quiesced`]: it waits for handlers to finish.
///
/// Once [`Manager::unregister`] has returned, no new delivery to the breakpoint
/// starts, but one that started earlier on another CPU may still be
/// running; [`Manager::quiesced`] / [`Manager::wait_quiesced`] tell when it is
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

impl<A: Arch, H: Handler, const CPUS: usize, const EVENTS: usize, const TASKS: usize>
    Manager<A, H, CPUS, EVENTS, TASKS>
{
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
        let mut done: heapless::Vec<u16, MAX_SLOTS> = heapless::Vec::new();
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
                // delivered to the event it was matched against. A slot's
                // region is read (a sequence-counted read) only when its
                // hardware range contains the address: the rest are judged
                // by their hardware ranges alone (see `Rule`, and there when
                // this differs from `match_address`: only for a slot whose
                // event was modified and this CPU not synced since).
                let mut who: [Option<(u16, u32)>; MAX_SLOTS] = [None; MAX_SLOTS];
                let mut rule = Rule::new(d.addr, d.access);
                for (s, e) in map.pool(pool.index()).iter().enumerate() {
                    let Some((idx, tag, hw_addr, hw_len)) = e.load() else {
                        continue;
                    };
                    let Some(cell) = self.cells.get(usize::from(idx)) else {
                        continue;
                    };
                    let (Some(w), Ok(slot)) = (who.get_mut(s), u8::try_from(s)) else {
                        continue;
                    };
                    if !rule.wants(slot, cell.access()) {
                        continue;
                    }
                    *w = Some((idx, tag));
                    let hw = (hw_addr, hw_len);
                    let class = if contains(hw, d.addr) {
                        let (ra, rl, _) = cell.region();
                        if contains((ra, rl), d.addr) {
                            Class::Exact
                        } else {
                            Class::Filtered
                        }
                    } else {
                        rule.outside_region(hw)
                    };
                    rule.add(slot, class);
                }
                match rule.finish() {
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
        let r = if !foreign {
            r
        } else if done.is_empty() && r.is_ours() && !r.pass_on && r.action != Action::SingleStep {
            // Nothing of ours fired and the backend has no step to finish:
            // wholly the debugger's.
            Resume::NOT_OURS
        } else {
            r.and_pass_on()
        };
        map.count_exception(r);
        r
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn pack_roundtrip() {
        for (i, t) in [(0u16, 1u32), (7, 0xffff_ffff), (u16::MAX, 3)] {
            assert_eq!(unpack(pack(i, t)), Some((i, t)));
        }
        assert_eq!(unpack(0), None);
    }

    #[test]
    fn retired_cell_refuses_delivery() {
        let c = EventCell::new();
        c.publish(5, 0x10, 4, Access::WRITE, 2);
        let d = c.enter(5).unwrap();
        assert_eq!(d.count(), (1, false));
        assert_eq!(d.count(), (2, true));
        drop(d);
        assert!(c.enter(4).is_none(), "wrong generation");
        c.retire();
        assert!(c.enter(5).is_none(), "retired");
        assert_eq!(c.hits(), 2);
    }

    #[test]
    fn generations_skip_a_zero_tag() {
        assert_eq!(next_generation(1), 2);
        assert_eq!(next_generation(u64::from(u32::MAX)), (1 << 32) | 1);
        assert_eq!(next_generation(u64::MAX), 1);
        let c = EventCell::new();
        let g = (7 << 32) | 5;
        c.publish(g, 0x10, 4, Access::WRITE, 1);
        let d = c.enter(tag_of(g)).unwrap();
        assert_eq!(d.generation(), g);
    }
}

/// Model checking of the lock-free protocol with loom (issue 3). Every
/// interleaving of the threads below is explored:
///
/// ```text
/// RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p hwbp-core --release --lib loom
/// ```
///
/// `--lib` is needed: the integration tests and doc tests keep `Manager` in
/// `static`s, which `--cfg loom` cannot build. Without the preemption bound
/// the search is exhaustive and takes about a minute instead of a second.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;
    use loom::thread;

    /// A dispatcher reading the region while `modify` rewrites it sees the
    /// old region or the new one, never a mix.
    #[test]
    fn loom_region_is_read_whole() {
        loom::model(|| {
            let cell = Arc::new(EventCell::new());
            cell.publish(1, 0x1000, 4, Access::WRITE, 1);
            let c = cell.clone();
            let reader = thread::spawn(move || c.region());
            cell.update(0x2000, 8, Access::READ, 1);
            let r = reader.join().unwrap();
            assert!(
                r == (0x1000, 4, Access::WRITE) || r == (0x2000, 8, Access::READ),
                "torn region {r:?}"
            );
        });
    }

    /// No handler runs for an event once its hidden cell has been seen idle
    /// (`retire` = hide, then wait for idle: what `wait_quiesced` waits
    /// for after `unregister`): a delivery that got in holds it back until
    /// it ends.
    #[test]
    fn loom_no_handler_after_retire_returned() {
        loom::model(|| {
            let cell = Arc::new(EventCell::new());
            cell.publish(1, 0x1000, 4, Access::WRITE, 1);
            let retired = Arc::new(AtomicBool::new(false));
            let (c, r) = (cell.clone(), retired.clone());
            let deliverer = thread::spawn(move || {
                if let Some(d) = c.enter(1) {
                    d.count();
                    // The "handler": unregister must not have returned yet.
                    assert!(
                        !r.load(Ordering::SeqCst),
                        "handler ran after retire returned"
                    );
                }
            });
            cell.retire();
            retired.store(true, Ordering::SeqCst);
            deliverer.join().unwrap();
            assert!(cell.enter(1).is_none());
        });
    }

    /// No delivery starts once `hide` (inside `unregister`, which never
    /// waits) has returned: a deliverer that saw the hide done before it
    /// tried to enter is always refused.
    #[test]
    fn loom_no_delivery_starts_after_hide() {
        loom::model(|| {
            let cell = Arc::new(EventCell::new());
            cell.publish(1, 0x1000, 4, Access::WRITE, 1);
            let hidden = Arc::new(AtomicBool::new(false));
            let (c, h) = (cell.clone(), hidden.clone());
            let deliverer = thread::spawn(move || {
                let was_hidden = h.load(Ordering::SeqCst);
                if let Some(d) = c.enter(1) {
                    assert!(!was_hidden, "delivery started after hide returned");
                    d.count();
                }
            });
            cell.hide();
            hidden.store(true, Ordering::SeqCst);
            deliverer.join().unwrap();
            assert!(cell.enter(1).is_none());
            assert!(cell.idle());
        });
    }

    /// The generation a delivery reports (the tag it matched plus the high
    /// half) is the one whose hit counter it counted on, even when the cell
    /// is republished under a generation with the same tag (the low half
    /// wrapped): the high half cannot change under a delivery.
    #[test]
    fn loom_delivery_names_the_generation_it_counted_for() {
        const OLD: u64 = (1 << 32) | 9;
        const NEW: u64 = (2 << 32) | 9;
        loom::model(|| {
            let cell = Arc::new(EventCell::new());
            cell.publish(OLD, 0x1000, 4, Access::WRITE, 1);
            let c = cell.clone();
            let deliverer = thread::spawn(move || {
                let d = c.enter(tag_of(OLD))?;
                let (hits, _) = d.count();
                Some((d.generation(), hits))
            });
            cell.retire();
            cell.publish(NEW, 0x2000, 8, Access::READ, 1);
            let got = deliverer.join().unwrap();
            match got {
                // Counted on the old event, whose count the new one reset.
                Some((OLD, 1)) => assert_eq!(cell.hits(), 0),
                // Counted on the new event.
                Some((NEW, 1)) => assert_eq!(cell.hits(), 1),
                None => assert_eq!(cell.hits(), 0),
                other => panic!("delivery reported {other:?}"),
            }
        });
    }

    /// A slot-map entry that still names the old generation is never credited
    /// to a newer event that reuses the cell; an entry naming the new
    /// generation is credited to it. The writer follows the manager's order:
    /// hide the slot, hide the cell, reuse it only once it was seen idle
    /// (`retire`), publish the new event, point the slot at it.
    #[test]
    fn loom_stale_slot_entry_never_credits_newer_event() {
        loom::model(|| {
            let cell = Arc::new(EventCell::new());
            let slot = Arc::new(SlotEntry::new());
            cell.publish(1, 0x1000, 4, Access::WRITE, 1);
            slot.set(0, 1, 0x1000, 4);
            let (c, s) = (cell.clone(), slot.clone());
            let deliverer = thread::spawn(move || {
                // A debug exception on this CPU: read the slot, then deliver.
                let Some((idx, tag, _, _)) = s.load() else {
                    return None;
                };
                assert_eq!(idx, 0);
                let d = c.enter(tag)?;
                d.count();
                Some(tag)
            });
            slot.clear();
            cell.retire();
            cell.publish(2, 0x2000, 8, Access::READ, 1);
            slot.set(0, 2, 0x2000, 8);
            let credited = deliverer.join().unwrap();
            // Only a delivery that read generation 2 may count against it.
            let expect = u64::from(credited == Some(2));
            assert_eq!(cell.hits(), expect, "credited {credited:?}");
        });
    }

    /// Two CPUs delivering hits to the same event while it is being retired:
    /// every delivery that got in is counted exactly once, and with a sample
    /// period of 2 exactly one of two counted hits is due.
    #[test]
    fn loom_concurrent_deliverers_lose_no_hits() {
        loom::model(|| {
            let cell = Arc::new(EventCell::new());
            cell.publish(7, 0x1000, 4, Access::RW, 2);
            let spawn = |c: Arc<EventCell>| thread::spawn(move || c.enter(7).map(|d| d.count()));
            let a = spawn(cell.clone());
            let b = spawn(cell.clone());
            let (ra, rb) = (a.join().unwrap(), b.join().unwrap());
            let mut seen: Vec<u64> = [ra, rb].iter().flatten().map(|&(h, _)| h).collect();
            seen.sort_unstable();
            assert_eq!(seen, vec![1, 2], "hit counts returned {ra:?} {rb:?}");
            let due = [ra, rb].iter().flatten().filter(|&&(_, due)| due).count();
            assert_eq!(due, 1);
            assert_eq!(cell.hits(), 2);
        });
    }

    /// The same race with `retire` on a third thread: the hit counter equals
    /// the number of deliveries that got in, and none got in after retire.
    #[test]
    fn loom_deliverers_racing_retire() {
        loom::model(|| {
            let cell = Arc::new(EventCell::new());
            cell.publish(3, 0x1000, 4, Access::WRITE, 1);
            let spawn =
                |c: Arc<EventCell>| thread::spawn(move || c.enter(3).map(|d| d.count()).is_some());
            let a = spawn(cell.clone());
            let b = spawn(cell.clone());
            cell.retire();
            let after = cell.hits();
            let got = u64::from(a.join().unwrap()) + u64::from(b.join().unwrap());
            // Everything that got in finished before retire returned.
            assert_eq!(after, got);
            assert_eq!(cell.hits(), got);
        });
    }
}
