//! The deterministic draws warmup makes (words, recipients, times): SplitMix64, a tiny
//! well-mixed generator, so a plan or a message recomputed from the same seed comes out the same.

/// SplitMix64 over a seed.
pub struct Draw(u64);

impl Draw {
    #[must_use]
    pub fn new(seed: u64) -> Draw {
        Draw(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0 or less).
    pub fn below(&mut self, bound: i64) -> i64 {
        let Ok(bound) = u64::try_from(bound) else {
            return 0;
        };
        if bound == 0 {
            return 0;
        }
        i64::try_from(self.next_u64() % bound).unwrap_or(0)
    }

    /// An index into a slice of `len` items (0 when empty).
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(i64::try_from(len).unwrap_or(i64::MAX))).unwrap_or(0)
    }

    /// The numbers `0..len` in a drawn order (Fisher-Yates).
    pub fn shuffled(&mut self, len: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        for i in (1..len).rev() {
            order.swap(i, self.index(i + 1));
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_repeat_for_a_seed_and_stay_in_bounds() {
        let a: Vec<i64> = {
            let mut d = Draw::new(5);
            (0..50).map(|_| d.below(7)).collect()
        };
        let b: Vec<i64> = {
            let mut d = Draw::new(5);
            (0..50).map(|_| d.below(7)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|n| (0..7).contains(n)));
        assert!((0..7).all(|n| a.contains(&n)), "{a:?}");
        let mut draw = Draw::new(1);
        assert_eq!((draw.below(0), draw.below(-4), draw.index(0)), (0, 0, 0));
        let mut order = draw.shuffled(10);
        order.sort_unstable();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }
}
