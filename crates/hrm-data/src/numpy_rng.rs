//! numpy's legacy global generator (`np.random.seed`, `RandomState`), draw for draw: MT19937 seeded by
//! `init_genrand` (numpy's `_legacy_seeding` sends an integer seed to `mt19937_seed`), `randint` of the default
//! int64 dtype (masked rejection sampling, 32-bit draws when the range fits in 32 bits) and `shuffle` /
//! `permutation` (Fisher–Yates from the end with `random_interval`). Follows numpy's `mtrand.pyx`,
//! `_bounded_integers.pyx` and `distributions.c`; TRM's `dataset/build_arc_dataset.py` draws from it.

use rand_mt::Mt;

/// numpy's `RandomState` after `seed(seed)`, for the draws TRM's ARC builder makes.
#[derive(Clone)]
pub struct LegacyRandomState {
    mt: Mt,
}

impl std::fmt::Debug for LegacyRandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegacyRandomState")
    }
}

/// The smallest all-ones bit mask covering `max`.
fn mask_of(max: u64) -> u64 {
    if max == 0 {
        0
    } else {
        u64::MAX >> max.leading_zeros()
    }
}

impl LegacyRandomState {
    /// `np.random.seed(seed)` for an integer seed (numpy accepts 0..=2^32-1).
    pub fn seed(seed: u32) -> Self {
        LegacyRandomState { mt: Mt::new(seed) }
    }

    /// One 32-bit output of MT19937 (`next_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// numpy's `mt19937_next64`: two 32-bit outputs, the first as the high half.
    pub fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        (hi << 32) | u64::from(self.next_u32())
    }

    /// `random_interval(max)`: uniform in `0..=max` by masked rejection (no draw when `max` is 0).
    pub fn random_interval(&mut self, max: u64) -> u64 {
        let mask = mask_of(max);
        if max == 0 {
            return 0;
        }
        loop {
            let v = if max <= u64::from(u32::MAX) {
                u64::from(self.next_u32()) & mask
            } else {
                self.next_u64() & mask
            };
            if v <= max {
                return v;
            }
        }
    }

    /// `np.random.randint(low, high)` with the default int64 dtype: uniform in `low..high`. The legacy
    /// masked method: no draw when the range holds one value, one full 32-bit draw for a range of 2^32,
    /// masked 32-bit draws for a smaller one, masked 64-bit draws otherwise.
    ///
    /// # Panics
    /// When `low >= high` (numpy raises `ValueError`).
    pub fn randint(&mut self, low: i64, high: i64) -> i64 {
        assert!(low < high, "randint: low {low} >= high {high}");
        let rng = (high as u64).wrapping_sub(low as u64).wrapping_sub(1);
        let off = low as u64;
        let v = if rng == 0 {
            0
        } else if rng == u64::from(u32::MAX) {
            u64::from(self.next_u32())
        } else if rng < u64::from(u32::MAX) {
            let mask = mask_of(rng);
            loop {
                let v = u64::from(self.next_u32()) & mask;
                if v <= rng {
                    break v;
                }
            }
        } else if rng == u64::MAX {
            self.next_u64()
        } else {
            let mask = mask_of(rng);
            loop {
                let v = self.next_u64() & mask;
                if v <= rng {
                    break v;
                }
            }
        };
        off.wrapping_add(v) as i64
    }

    /// `np.random.shuffle(x)` of a list or a 1-d array: for i from n-1 down to 1, swap x\[i\] with
    /// x\[random_interval(i)\].
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.random_interval(i as u64) as usize;
            x.swap(i, j);
        }
    }

    /// `np.random.permutation(arr)` of a 1-d array: a shuffled copy.
    pub fn permutation<T: Clone>(&mut self, x: &[T]) -> Vec<T> {
        let mut out = x.to_vec();
        self.shuffle(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by numpy 2.4 (`np.random.seed(42)`, then the same calls in this order).
    #[test]
    fn matches_numpy_legacy_stream() {
        let mut r = LegacyRandomState::seed(42);
        let ints: Vec<i64> = (0..5).map(|_| r.randint(0, 8)).collect();
        assert_eq!(ints, [6, 3, 4, 6, 2]);
        let perm = r.permutation(&(1u8..10).collect::<Vec<_>>());
        assert_eq!(perm, [6, 1, 4, 7, 3, 2, 9, 5, 8]);
        let mut list: Vec<u32> = (0..7).collect();
        r.shuffle(&mut list);
        assert_eq!(list, [6, 5, 0, 1, 2, 3, 4]);
        assert_eq!(r.randint(0, 1), 0);
        assert_eq!(r.randint(0, 30), 23);
        assert_eq!(r.randint(0, 1 << 33), 8_326_020_509);
        assert_eq!(r.randint(5, 6), 5);
        assert_eq!(r.randint(0, 1 << 32), 911_989_541);
    }

    /// Raw 32-bit outputs after `np.random.seed(s)` (`np.random.randint(0, 2**32)`): `init_genrand(s)`. An
    /// array seed `RandomState([42])` goes through `init_by_array` and gives another stream.
    #[test]
    fn seeding_is_init_genrand() {
        let mut r = LegacyRandomState::seed(42);
        let raw: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(raw, [1_608_637_542, 3_421_126_067, 4_083_286_876]);
        let mut r = LegacyRandomState::seed(u32::MAX);
        assert_eq!([r.next_u32(), r.next_u32()], [419_326_371, 479_346_978]);
        let mut by_array = Mt::new_with_key([42u32]);
        assert_eq!(
            [by_array.next_u32(), by_array.next_u32()],
            [2_746_317_213, 478_163_327]
        );
    }
}
