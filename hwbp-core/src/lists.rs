//! Index structures over event storage, so that every operation costs what
//! it touches rather than the `EVENTS` / `TASKS` / `CPUS` capacities:
//!
//! * intrusive doubly linked lists threaded through storage indices
//!   ([`Link`], one per entry): every live event sits in exactly one list,
//!   chosen by its target (one per CPU for `Cpu(c)`, one for `AllCpus`, one
//!   per task) and split pinned / flexible; free entries that are still
//!   retiring sit in the retiring list. Lists are kept in ascending index
//!   order, so the scheduler and `fork` see events in the same order as a
//!   walk of the whole storage would, and appending a higher index (the
//!   usual case) is O(1);
//! * [`Merge`]: an index-ordered walk over up to four lists at once;
//! * [`FreeSet`]: the reusable storage indices, lowest first (a binary heap
//!   of recycled indices plus a never-used tail), O(log EVENTS) per change;
//! * [`TaskMap`]: a fixed-capacity open-addressing map keyed by [`TaskId`]
//!   (linear probing, backward-shift deletion, at most half full), for the
//!   per-task list heads and for "which CPU runs this task".
//!
//! Nothing here allocates or holds anything sized by a capacity on the
//! stack.

use crate::TaskId;

/// "No index": the end of a list. Storage indices are below `EVENTS`, at
/// most 65 535, so they never reach it.
pub(crate) const NIL: u16 = u16::MAX;

/// One storage entry's place in its list. The head's `prev` names the
/// list's tail (so appending is O(1)); the tail's `next` is [`NIL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    prev: u16,
    next: u16,
}

impl Link {
    /// Not in any list.
    pub(crate) const NONE: Link = Link {
        prev: NIL,
        next: NIL,
    };
}

/// A list: its first index, or [`NIL`] when empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct List(u16);

impl List {
    /// The empty list.
    pub(crate) const EMPTY: List = List(NIL);

    /// The first (lowest) index.
    pub(crate) fn first(self) -> Option<u16> {
        (self.0 != NIL).then_some(self.0)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == NIL
    }
}

fn link(links: &[Link], i: u16) -> Link {
    links.get(usize::from(i)).copied().unwrap_or(Link::NONE)
}

fn set(links: &mut [Link], i: u16, f: impl FnOnce(&mut Link)) {
    if let Some(l) = links.get_mut(usize::from(i)) {
        f(l);
    }
}

/// The index after `i` in its list.
pub(crate) fn next(links: &[Link], i: u16) -> Option<u16> {
    let n = link(links, i).next;
    (n != NIL).then_some(n)
}

/// Insert `i` (in no list) keeping `list` in ascending order: O(1) when `i`
/// is above the tail or below the head, otherwise a walk to its place.
pub(crate) fn insert(links: &mut [Link], list: &mut List, i: u16) {
    let Some(head) = list.first() else {
        return push(links, list, i);
    };
    if i > link(links, head).prev {
        return push(links, list, i);
    }
    if i < head {
        let tail = link(links, head).prev;
        set(links, i, |l| {
            *l = Link {
                prev: tail,
                next: head,
            }
        });
        set(links, head, |l| l.prev = i);
        *list = List(i);
        return;
    }
    // head < i < tail: the first element above `i` exists.
    let mut at = head;
    while at < i {
        match next(links, at) {
            Some(n) => at = n,
            None => return,
        }
    }
    let prev = link(links, at).prev;
    set(links, prev, |l| l.next = i);
    set(links, i, |l| *l = Link { prev, next: at });
    set(links, at, |l| l.prev = i);
}

/// Append `i` (in no list) at the tail of `list`, in O(1), whatever its
/// order (for a list whose order does not matter, or when `i` is above the
/// tail).
pub(crate) fn push(links: &mut [Link], list: &mut List, i: u16) {
    let Some(head) = list.first() else {
        set(links, i, |l| *l = Link { prev: i, next: NIL });
        *list = List(i);
        return;
    };
    let tail = link(links, head).prev;
    set(links, tail, |l| l.next = i);
    set(links, i, |l| {
        *l = Link {
            prev: tail,
            next: NIL,
        }
    });
    set(links, head, |l| l.prev = i);
}

/// Take `i` out of `list` (which holds it), in O(1).
pub(crate) fn remove(links: &mut [Link], list: &mut List, i: u16) {
    let Link { prev, next: after } = link(links, i);
    match list.first() {
        Some(head) if head == i => {
            if after != NIL {
                // `prev` is the tail.
                set(links, after, |l| l.prev = prev);
            }
            *list = List(after);
        }
        Some(head) => {
            set(links, prev, |l| l.next = after);
            if after != NIL {
                set(links, after, |l| l.prev = prev);
            } else {
                // `i` was the tail.
                set(links, head, |l| l.prev = prev);
            }
        }
        None => {}
    }
    set(links, i, |l| *l = Link::NONE);
}

/// An ascending walk over the union of up to four disjoint lists: each step
/// takes the lowest of the lists' current indices ([`NIL`] sorts last).
/// Holds no borrow, so the storage may change between steps as long as the
/// lists being walked do not.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Merge {
    cur: [u16; 4],
}

impl Merge {
    pub(crate) fn new(lists: &[List]) -> Merge {
        let mut cur = [NIL; 4];
        for (c, l) in cur.iter_mut().zip(lists) {
            *c = l.0;
        }
        Merge { cur }
    }

    /// The next index, in ascending order.
    pub(crate) fn next(&mut self, links: &[Link]) -> Option<u16> {
        let (k, &i) = self.cur.iter().enumerate().min_by_key(|&(_, &i)| i)?;
        if i == NIL {
            return None;
        }
        if let Some(c) = self.cur.get_mut(k) {
            *c = link(links, i).next;
        }
        Some(i)
    }

    /// As an iterator over `links`.
    pub(crate) fn iter(self, links: &[Link]) -> MergeIter<'_> {
        MergeIter { merge: self, links }
    }
}

/// [`Merge`] borrowing the links.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MergeIter<'a> {
    merge: Merge,
    links: &'a [Link],
}

impl Iterator for MergeIter<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        self.merge.next(self.links)
    }
}

/// The reusable storage indices, lowest first: indices at or above `fresh`
/// were never used; recycled ones below it sit in a binary min-heap.
#[derive(Debug)]
pub(crate) struct FreeSet<const N: usize> {
    heap: [u16; N],
    len: usize,
    fresh: usize,
}

impl<const N: usize> FreeSet<N> {
    pub(crate) const NEW: Self = FreeSet {
        heap: [0; N],
        len: 0,
        fresh: 0,
    };

    /// The lowest reusable index.
    pub(crate) fn lowest(&self) -> Option<usize> {
        let recycled = (self.len > 0)
            .then(|| self.heap.first().copied())
            .flatten()
            .map(usize::from);
        match recycled {
            Some(r) => Some(r),
            None => (self.fresh < N).then_some(self.fresh),
        }
    }

    /// Take the lowest reusable index.
    pub(crate) fn pop(&mut self) -> Option<usize> {
        if self.len == 0 {
            if self.fresh < N {
                self.fresh += 1;
                return Some(self.fresh - 1);
            }
            return None;
        }
        let top = self.heap.first().copied().map(usize::from);
        self.len -= 1;
        self.heap.swap(0, self.len);
        // Sift down.
        let mut i = 0;
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            for c in [l, r] {
                if c < self.len && self.heap.get(c) < self.heap.get(m) {
                    m = c;
                }
            }
            if m == i {
                break;
            }
            self.heap.swap(i, m);
            i = m;
        }
        top
    }

    /// Make `i` (below `fresh`, not already in the set) reusable again.
    pub(crate) fn push(&mut self, i: usize) {
        let Some(slot) = self.heap.get_mut(self.len) else {
            return;
        };
        *slot = i as u16;
        let mut at = self.len;
        self.len += 1;
        while at > 0 {
            let up = (at - 1) / 2;
            if self.heap.get(up) <= self.heap.get(at) {
                break;
            }
            self.heap.swap(up, at);
            at = up;
        }
    }
}

/// One bucket of a [`TaskMap`].
#[derive(Clone, Copy, Debug)]
struct Bucket<V> {
    used: bool,
    key: TaskId,
    val: V,
}

/// A map from [`TaskId`] to `V` with `2 × N` buckets, for at most `N`
/// entries (callers keep to that bound, so it is at most half full and a
/// lookup probes a handful of buckets). Linear probing from a multiplicative
/// hash; deletion shifts the rest of the cluster back, so there are no
/// tombstones and a lookup never walks the whole table.
#[derive(Debug)]
pub(crate) struct TaskMap<V, const N: usize> {
    buckets: [[Bucket<V>; 2]; N],
    len: usize,
}

impl<V: Copy, const N: usize> TaskMap<V, N> {
    pub(crate) const fn new(empty: V) -> Self {
        TaskMap {
            buckets: [[Bucket {
                used: false,
                key: TaskId(0),
                val: empty,
            }; 2]; N],
            len: 0,
        }
    }

    const CAP: usize = 2 * N;

    fn home(key: TaskId) -> usize {
        // Fibonacci hashing, reduced to the bucket count by a multiply-high.
        let h = key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((u128::from(h) * Self::CAP as u128) >> 64) as usize
    }

    fn bucket(&self, b: usize) -> Option<&Bucket<V>> {
        self.buckets.get(b / 2)?.get(b % 2)
    }

    fn bucket_mut(&mut self, b: usize) -> Option<&mut Bucket<V>> {
        self.buckets.get_mut(b / 2)?.get_mut(b % 2)
    }

    /// The bucket holding `key`, or the empty one where it would go.
    fn find(&self, key: TaskId) -> Option<(usize, bool)> {
        let mut b = Self::home(key);
        for _ in 0..Self::CAP {
            let e = self.bucket(b)?;
            if !e.used {
                return Some((b, false));
            }
            if e.key == key {
                return Some((b, true));
            }
            b = (b + 1) % Self::CAP;
        }
        None
    }

    pub(crate) fn get(&self, key: TaskId) -> Option<&V> {
        match self.find(key)? {
            (b, true) => self.bucket(b).map(|e| &e.val),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: TaskId) -> Option<&mut V> {
        match self.find(key)? {
            (b, true) => self.bucket_mut(b).map(|e| &mut e.val),
            _ => None,
        }
    }

    /// The value for `key`, inserting `new` first if absent; `None` only
    /// when all `N` entries are taken.
    pub(crate) fn get_or_insert(&mut self, key: TaskId, new: V) -> Option<&mut V> {
        let (b, found) = self.find(key)?;
        if !found {
            if self.len >= N {
                return None;
            }
            self.len += 1;
            *self.bucket_mut(b)? = Bucket {
                used: true,
                key,
                val: new,
            };
        }
        self.bucket_mut(b).map(|e| &mut e.val)
    }

    /// Remove `key`'s entry, if any.
    pub(crate) fn remove(&mut self, key: TaskId) {
        let Some((mut hole, true)) = self.find(key) else {
            return;
        };
        self.len -= 1;
        // Backward shift: move later members of the cluster into the hole
        // when that keeps them reachable from their home bucket.
        let mut b = hole;
        loop {
            b = (b + 1) % Self::CAP;
            let Some(&e) = self.bucket(b) else { break };
            if !e.used {
                break;
            }
            let home = Self::home(e.key);
            // Distance from home to b vs. to the hole, cyclically.
            let d_b = (b + Self::CAP - home) % Self::CAP;
            let d_hole = (hole + Self::CAP - home) % Self::CAP;
            if d_hole <= d_b {
                if let Some(h) = self.bucket_mut(hole) {
                    *h = e;
                }
                hole = b;
            }
        }
        if let Some(h) = self.bucket_mut(hole) {
            h.used = false;
        }
    }

    /// Forget every entry (O(N): for `init`, never on a hot path).
    pub(crate) fn clear(&mut self) {
        for e in self.buckets.iter_mut().flatten() {
            e.used = false;
        }
        self.len = 0;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(links: &[Link], l: List) -> std::vec::Vec<u16> {
        Merge::new(&[l]).iter(links).collect()
    }

    #[test]
    fn lists_stay_sorted_and_remove_anywhere() {
        let mut links = [Link::NONE; 16];
        let mut l = List::EMPTY;
        for i in [5u16, 9, 2, 7, 12, 0, 8] {
            insert(&mut links, &mut l, i);
        }
        assert_eq!(walk(&links, l), [0, 2, 5, 7, 8, 9, 12]);
        for i in [0u16, 12, 7] {
            remove(&mut links, &mut l, i);
        }
        assert_eq!(walk(&links, l), [2, 5, 8, 9]);
        insert(&mut links, &mut l, 15);
        insert(&mut links, &mut l, 1);
        assert_eq!(walk(&links, l), [1, 2, 5, 8, 9, 15]);
        for i in [1u16, 2, 5, 8, 9, 15] {
            remove(&mut links, &mut l, i);
        }
        assert!(l.is_empty());
        assert!(links.iter().all(|&k| k == Link::NONE));
    }

    #[test]
    fn merge_walks_lists_in_index_order() {
        let mut links = [Link::NONE; 16];
        let (mut a, mut b, mut c) = (List::EMPTY, List::EMPTY, List::EMPTY);
        for i in [1u16, 4, 10] {
            insert(&mut links, &mut a, i);
        }
        for i in [0u16, 11] {
            insert(&mut links, &mut b, i);
        }
        insert(&mut links, &mut c, 6);
        let got: std::vec::Vec<u16> = Merge::new(&[a, b, c]).iter(&links).collect();
        assert_eq!(got, [0, 1, 4, 6, 10, 11]);
    }

    #[test]
    fn free_set_hands_out_the_lowest_index() {
        let mut f = FreeSet::<6>::NEW;
        assert_eq!(
            (f.pop(), f.pop(), f.pop(), f.pop()),
            (Some(0), Some(1), Some(2), Some(3))
        );
        f.push(2);
        f.push(0);
        assert_eq!(f.lowest(), Some(0));
        assert_eq!((f.pop(), f.pop(), f.pop()), (Some(0), Some(2), Some(4)));
        assert_eq!((f.pop(), f.pop()), (Some(5), None));
        f.push(3);
        assert_eq!((f.lowest(), f.pop(), f.lowest()), (Some(3), Some(3), None));
    }

    #[test]
    fn task_map_survives_churn_at_capacity() {
        let mut m = TaskMap::<u32, 8>::new(0);
        let mut model = std::collections::BTreeMap::new();
        let mut x = 12345u64;
        // Fewer steps under Miri, which is a thousand times slower.
        let steps: u32 = if cfg!(miri) { 500 } else { 5000 };
        for step in 0..steps {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = TaskId((x >> 33) % 13);
            if (x >> 20).is_multiple_of(3) {
                m.remove(k);
                model.remove(&k);
            } else if let Some(v) = m.get_or_insert(k, step) {
                model.entry(k).or_insert(step);
                *v += 0;
            } else {
                assert_eq!(model.len(), 8, "refused below capacity");
                assert!(!model.contains_key(&k));
            }
            assert_eq!(m.len(), model.len());
            for k in 0..13 {
                assert_eq!(m.get(TaskId(k)), model.get(&TaskId(k)));
            }
        }
    }
}
