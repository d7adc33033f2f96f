//! A fixed-capacity hash map for the constraint table: open addressing with
//! linear probing over `2 × N` buckets, backward-shift deletion.
//!
//! * Any `N` from 1 to 2³¹ − 1 works (not only powers of two); anything else
//!   is a compile-time error. Bucket positions are computed in `usize` from
//!   a 64-bit hash and stored nowhere, so no narrower position type can wrap.
//! * At most `N` entries live in `2 × N` buckets: the load factor never
//!   exceeds 50 %, so a lookup or an insertion at 99 % of `N` probes about as
//!   many buckets as at 1 % (expected < 2.5 for a miss with linear probing at
//!   half load), and every probe sequence ends at an empty bucket.
//! * Deletion shifts the following entries of the cluster back instead of
//!   leaving tombstones, so the table never degrades with churn.
//! * Every loop is bounded by the bucket count: no input makes it spin.

/// A key: hashable to 64 bits, with a constant to fill empty buckets.
pub(crate) trait Key: Copy + Eq {
    /// Filler for unused buckets (never compared: `used` says).
    const BLANK: Self;
    /// A well-mixed 64-bit hash.
    fn hash(&self) -> u64;
}

/// A value, with a constant to fill empty buckets.
pub(crate) trait Value: Copy {
    /// Filler for unused buckets.
    const BLANK: Self;
}

/// The `splitmix64` finaliser: consecutive ids land far apart.
pub(crate) const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Key for u64 {
    const BLANK: Self = 0;
    fn hash(&self) -> u64 {
        mix(*self)
    }
}

impl Key for (u64, u16) {
    const BLANK: Self = (0, 0);
    fn hash(&self) -> u64 {
        mix(self.0 ^ mix(u64::from(self.1).wrapping_add(0x9e37_79b9_7f4a_7c15)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket<K, V> {
    used: bool,
    key: K,
    val: V,
}

/// At most `N` entries in `2 × N` buckets.
#[derive(Clone)]
pub(crate) struct FixedMap<K, V, const N: usize> {
    buckets: [[Bucket<K, V>; 2]; N],
    len: u32,
}

impl<K: Key, V: Value, const N: usize> FixedMap<K, V, N> {
    /// `N` must be at least 1, and `2 × N` buckets must be countable in a
    /// `u32` (so the entry count and every histogram count fit one).
    const CAPACITY_OK: () = assert!(
        N >= 1 && N <= (u32::MAX / 2) as usize,
        "a table capacity (TASKS) must be 1..=2^31-1"
    );

    const BLANK: Bucket<K, V> = Bucket {
        used: false,
        key: K::BLANK,
        val: V::BLANK,
    };

    /// An empty map (a constant: placed in static storage it is never built
    /// on the stack).
    pub(crate) const EMPTY: Self = {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        FixedMap {
            buckets: [[Self::BLANK; 2]; N],
            len: 0,
        }
    };

    /// Remove every entry, in place.
    pub(crate) fn clear(&mut self) {
        for b in self.buckets.as_flattened_mut() {
            *b = Self::BLANK;
        }
        self.len = 0;
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether another new key would fit.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= N
    }

    fn slots(&self) -> &[Bucket<K, V>] {
        self.buckets.as_flattened()
    }

    /// Where `key`'s probe sequence starts: the hash scaled onto `0..2N`
    /// (multiply-high, so any bucket count works).
    fn home(key: &K) -> usize {
        let nb = 2 * N as u128;
        ((u128::from(key.hash()) * nb) >> 64) as usize
    }

    fn next(i: usize) -> usize {
        if i + 1 >= 2 * N {
            0
        } else {
            i + 1
        }
    }

    /// `Ok(bucket)` holding `key`, or `Err(bucket)`: the empty bucket where
    /// it would go (`None` only if no bucket is empty, which the load
    /// factor rules out).
    fn find(&self, key: &K) -> Result<usize, Option<usize>> {
        let slots = self.slots();
        let mut i = Self::home(key);
        for _ in 0..slots.len() {
            match slots.get(i) {
                Some(b) if !b.used => return Err(Some(i)),
                Some(b) if b.key == *key => return Ok(i),
                Some(_) => i = Self::next(i),
                None => return Err(None),
            }
        }
        Err(None)
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let i = self.find(key).ok()?;
        self.slots().get(i).map(|b| &b.val)
    }

    /// The value of `key`, to change in place.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key).ok()?;
        self.buckets
            .as_flattened_mut()
            .get_mut(i)
            .map(|b| &mut b.val)
    }

    /// Set `key` to `val`. `Err(val)` if `key` is new and the map is full.
    pub(crate) fn insert(&mut self, key: K, val: V) -> Result<(), V> {
        let full = self.is_full();
        match self.find(&key) {
            Ok(i) => {
                if let Some(b) = self.buckets.as_flattened_mut().get_mut(i) {
                    b.val = val;
                }
                Ok(())
            }
            Err(Some(i)) if !full => {
                let Some(b) = self.buckets.as_flattened_mut().get_mut(i) else {
                    return Err(val);
                };
                *b = Bucket {
                    used: true,
                    key,
                    val,
                };
                self.len += 1;
                Ok(())
            }
            Err(_) => Err(val),
        }
    }

    /// Remove `key`, returning its value. The entries after it in its
    /// cluster move back so that every probe sequence stays unbroken.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let mut hole = self.find(key).ok()?;
        let nb = 2 * N;
        let slots = self.buckets.as_flattened_mut();
        let old = slots.get(hole)?.val;
        let mut j = Self::next(hole);
        for _ in 0..nb {
            let Some(&b) = slots.get(j) else { break };
            if !b.used {
                break;
            }
            // `b` may fill the hole iff the hole lies on its probe path,
            // i.e. strictly closer to its home than its own bucket is.
            let home = Self::home(&b.key);
            let dist = |from: usize, to: usize| {
                if to >= from {
                    to - from
                } else {
                    nb - from + to
                }
            };
            if dist(home, hole) < dist(home, j) {
                if let Some(h) = slots.get_mut(hole) {
                    *h = b;
                }
                hole = j;
            }
            j = Self::next(j);
        }
        if let Some(h) = slots.get_mut(hole) {
            *h = Self::BLANK;
        }
        self.len -= 1;
        Some(old)
    }

    /// Every entry, in bucket order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + Clone {
        self.slots()
            .iter()
            .filter(|b| b.used)
            .map(|b| (&b.key, &b.val))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Value for u32 {
        const BLANK: Self = 0;
    }

    /// Every key can be found, the count is right, and no entry sits
    /// behind an empty bucket on its probe path (the invariant lookups rely
    /// on).
    fn check<const N: usize>(
        m: &FixedMap<u64, u32, N>,
        model: &std::collections::BTreeMap<u64, u32>,
    ) {
        assert_eq!(m.len(), model.len());
        for (k, v) in model {
            assert_eq!(m.get(k), Some(v), "key {k}");
        }
        assert_eq!(m.iter().count(), model.len());
        let slots = m.slots();
        for (i, b) in slots.iter().enumerate().filter(|(_, b)| b.used) {
            let mut p = FixedMap::<u64, u32, N>::home(&b.key);
            while p != i {
                assert!(slots[p].used, "gap at {p} before {i}");
                p = FixedMap::<u64, u32, N>::next(p);
            }
        }
    }

    fn fill_then_delete<const N: usize>(keys: &[u64], order: &[usize]) {
        let mut m = FixedMap::<u64, u32, N>::EMPTY;
        let mut model = std::collections::BTreeMap::new();
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(m.insert(k, n as u32), Ok(()));
            model.insert(k, n as u32);
            check(&m, &model);
        }
        assert!(m.is_full());
        assert_eq!(m.insert(u64::MAX, 7), Err(7), "a new key past capacity");
        // An existing key can still be updated when full.
        assert_eq!(m.insert(keys[0], 99), Ok(()));
        model.insert(keys[0], 99);
        check(&m, &model);
        for &i in order {
            let k = keys[i];
            assert_eq!(m.remove(&k), model.remove(&k));
            assert_eq!(m.remove(&k), None);
            check(&m, &model);
        }
        assert_eq!(m.len(), 0);
        // Reinsert everything: the emptied map is as good as new.
        for &k in keys {
            m.insert(k, 1).unwrap();
        }
        assert!(m.is_full());
        m.clear();
        assert_eq!(m.len(), 0);
        assert_eq!(m.iter().count(), 0);
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for at in 0..=p.len() {
                let mut q = p.clone();
                q.insert(at, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn fill_to_capacity_and_delete_in_every_order() {
        // 5 keys (not a power of two) in 10 buckets, every deletion order.
        let keys = [0u64, 1, 2, 10, 1 << 40];
        for order in permutations(keys.len()) {
            fill_then_delete::<5>(&keys, &order);
        }
        // Capacity 1 and 3.
        fill_then_delete::<1>(&[42], &[0]);
        for order in permutations(3) {
            fill_then_delete::<3>(&[5, 6, 7], &order);
        }
    }

    #[test]
    fn colliding_keys_wrap_around_the_end() {
        // Keys whose probe sequences all start in the last buckets, so the
        // cluster wraps to bucket 0: deletion must shift across the wrap.
        const N: usize = 7;
        let mut keys: Vec<u64> = (0..10_000u64)
            .filter(|k| FixedMap::<u64, u32, N>::home(k) >= 2 * N - 2)
            .take(N)
            .collect();
        assert_eq!(keys.len(), N);
        for order in [
            (0..N).collect::<Vec<_>>(),
            (0..N).rev().collect(),
            vec![3, 0, 6, 1, 5, 2, 4],
        ] {
            fill_then_delete::<N>(&keys, &order);
        }
        keys.reverse();
        fill_then_delete::<N>(&keys, &[6, 5, 4, 3, 2, 1, 0]);
    }

    #[test]
    fn churn_at_full_capacity_stays_exact() {
        // Large, not a power of two, churned at 100 % for many rounds
        // (fewer under Miri, which checks the same code a thousand times
        // slower).
        const N: usize = if cfg!(miri) { 100 } else { 1000 };
        const ROUNDS: usize = if cfg!(miri) { 300 } else { 5000 };
        let mut m = FixedMap::<u64, u32, N>::EMPTY;
        let mut model = std::collections::BTreeMap::new();
        let mut next = 0u64;
        for _ in 0..N {
            m.insert(next, next as u32).unwrap();
            model.insert(next, next as u32);
            next += 1;
        }
        let mut x = 12345u64;
        for _ in 0..ROUNDS {
            x = mix(x);
            let victim = *model.keys().nth((x % model.len() as u64) as usize).unwrap();
            assert_eq!(m.remove(&victim), model.remove(&victim));
            m.insert(next, 3).unwrap();
            model.insert(next, 3);
            next += 1;
            assert!(m.is_full());
        }
        check(&m, &model);
    }

    #[test]
    fn pair_keys_with_the_same_task_differ() {
        let mut m = FixedMap::<(u64, u16), u32, 4>::EMPTY;
        for c in 0..4u16 {
            m.insert((9, c), u32::from(c)).unwrap();
        }
        for c in 0..4u16 {
            assert_eq!(m.get(&(9, c)), Some(&u32::from(c)));
        }
        assert_eq!(m.get(&(8, 0)), None);
    }
}
