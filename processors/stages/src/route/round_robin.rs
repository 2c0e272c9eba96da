//! Smooth weighted round-robin (nginx's), the picker behind every ratio route uses (pure).

/// Every pick adds each weight to its current value, takes the largest, and subtracts the
/// total from it. Over one cycle each item is picked exactly `weight` times, spread out as
/// evenly as possible. A weight of 0 (a group with no usable sender just now) is skipped
/// without disturbing the others, so the remaining items keep their ratios among themselves.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SmoothRoundRobin {
    current: Vec<i64>,
}

impl SmoothRoundRobin {
    /// Pick an index of `weights` (weights ≤ 0 are never picked); None if all are ≤ 0.
    pub fn pick(&mut self, weights: &[i64]) -> Option<usize> {
        if self.current.len() != weights.len() {
            self.current = vec![0; weights.len()];
        }
        let total: i64 = weights.iter().filter(|w| **w > 0).sum();
        if total == 0 {
            return None;
        }
        let mut best: Option<usize> = None;
        for (i, &w) in weights.iter().enumerate() {
            if w <= 0 {
                continue;
            }
            self.current[i] += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        self.current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_round_robin_is_exact_and_spread() {
        let mut rr = SmoothRoundRobin::default();
        let picks: Vec<usize> = (0..10).filter_map(|_| rr.pick(&[1, 1])).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 5);
        assert_eq!(picks, vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        let mut rr = SmoothRoundRobin::default();
        let picks: Vec<usize> = (0..7).filter_map(|_| rr.pick(&[5, 1, 1])).collect();
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0], "nginx's example sequence");
        assert_eq!(SmoothRoundRobin::default().pick(&[0, 0]), None);
    }

    #[test]
    fn a_group_at_zero_leaves_the_others_in_their_ratio() {
        let mut rr = SmoothRoundRobin::default();
        let mut counts = [0; 3];
        for _ in 0..40 {
            counts[rr.pick(&[3, 0, 1]).expect("picks")] += 1;
        }
        assert_eq!(counts, [30, 0, 10]);
    }
}
