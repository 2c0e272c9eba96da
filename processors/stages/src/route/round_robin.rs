//! Smooth weighted round-robin (nginx's), the picker behind every ratio route uses (pure), and
//! its position kept in route's state store, so a restart picks on where it left off.

use switchyard_runtime::StateAccess;
use switchyard_schemas::StateEntry;

/// Prefix of a position's key in the state store.
const KEY_PREFIX: &str = "rr\u{241F}";

/// A stored position: its current values, comma-separated.
fn parse_position(text: &str) -> Result<Vec<i64>, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|n| n.trim().parse()).collect()
}

/// Pick an index of `weights` with the picker stored under `key` in `state`, and store where
/// it moved to. A position that cannot be read starts over (and is logged).
pub fn pick_stored(state: &mut dyn StateAccess, key: &str, weights: &[i64]) -> Option<usize> {
    let state_key = format!("{KEY_PREFIX}{key}");
    let mut picker = match state.get(&state_key).and_then(|e| e.text.as_deref()) {
        None => SmoothRoundRobin::default(),
        Some(text) => match parse_position(text) {
            Ok(current) => SmoothRoundRobin::at(current),
            Err(e) => {
                tracing::warn!(stage = "route", key, error = %e, "round-robin position unreadable; starting over");
                SmoothRoundRobin::default()
            }
        },
    };
    let before = picker.current().to_vec();
    let chosen = picker.pick(weights);
    if picker.current() != before.as_slice() {
        state.put(
            &state_key,
            StateEntry {
                text: Some(
                    picker
                        .current()
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                amount: 0,
                expires_at: None,
            },
        );
    }
    chosen
}

/// Every pick adds each weight to its current value, takes the largest, and subtracts the
/// total from it. Over one cycle each item is picked exactly `weight` times, spread out as
/// evenly as possible. A weight of 0 (a group with no usable sender just now) is skipped
/// without disturbing the others, so the remaining items keep their ratios among themselves.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SmoothRoundRobin {
    current: Vec<i64>,
}

impl SmoothRoundRobin {
    /// The picker at the position `current` (as [`SmoothRoundRobin::current`] gave it).
    pub fn at(current: Vec<i64>) -> Self {
        SmoothRoundRobin { current }
    }

    /// Its position: what to store to pick on exactly where it left off.
    pub fn current(&self) -> &[i64] {
        &self.current
    }

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
    fn a_stored_position_picks_on_where_it_left_off() {
        let mut state = switchyard_runtime::PartitionState::default();
        let mut straight = SmoothRoundRobin::default();
        for _ in 0..9 {
            assert_eq!(
                pick_stored(&mut state, "acme/sms/skt", &[3, 1]),
                straight.pick(&[3, 1])
            );
        }
        // A fresh picker over the same state (a restart) goes on with the same sequence.
        let mut again = state.clone();
        for _ in 0..7 {
            assert_eq!(
                pick_stored(&mut again, "acme/sms/skt", &[3, 1]),
                straight.pick(&[3, 1])
            );
        }
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
