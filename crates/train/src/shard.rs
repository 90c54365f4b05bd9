//! Shards: the runs of one experiment split over N processes (a Slurm job
//! array's tasks), with no coordinator.
//!
//! [`assign`] is a pure function of the runs' costs and N, so every task
//! computes the same assignment from the experiment file alone. It balances
//! cost, not count: a run costs its steps × multiplications per example
//! (a CNN-56 run costs several CNN-20 runs). Longest first, each run goes
//! to the shard with the least cost so far (ties: the lower shard), which
//! keeps the largest shard within 4/3 of the best split (Graham 1969).

use crate::TrainError;

/// Shard `index` of `count`, 0-based as `--array=0-(N-1)` and
/// `SLURM_ARRAY_TASK_ID` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` (`--shard 2/8`), refusing `N = 0`, `I ≥ N` and anything
    /// that is not two whole numbers.
    pub fn parse(text: &str) -> Result<Shard, TrainError> {
        let bad = |message: String| TrainError::Invalid {
            field: "--shard".into(),
            message,
        };
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| bad(format!("{text:?} is not I/N (e.g. 0/4: shard 0 of 4)")))?;
        let num = |s: &str, what: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!(
                    "{text:?}: {what} {s:?} is not a whole number (write I/N, e.g. 0/4)"
                )));
            }
            s.parse::<usize>()
                .map_err(|_| bad(format!("{text:?}: {what} {s} is too large")))
        };
        let (index, count) = (num(i, "shard index")?, num(n, "shard count")?);
        if count == 0 {
            return Err(bad(format!("{text:?}: the shard count must be at least 1")));
        }
        if index >= count {
            return Err(bad(format!(
                "{text:?}: shards are numbered 0 to {} (0-based, like SLURM_ARRAY_TASK_ID)",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }
}

/// The shard of each run, given each run's cost (in plan order).
pub fn assign(costs: &[f64], count: usize) -> Vec<usize> {
    // More shards than runs: the runs take the first shards one each, the
    // rest are empty; no need to keep a load for every empty one.
    let count = count.clamp(1, costs.len().max(1));
    let mut order: Vec<usize> = (0..costs.len()).collect();
    // Longest first; equal costs in plan order, so the result never
    // depends on the sort's stability.
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]).then(a.cmp(&b)));
    let mut load = vec![0.0f64; count];
    let mut shard_of = vec![0; costs.len()];
    for run in order {
        let lightest = (0..count)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[lightest] += costs[run];
        shard_of[run] = lightest;
    }
    shard_of
}

/// The cost [`assign`] balances: steps × multiplications per example.
pub fn cost(steps: usize, mults: i64) -> f64 {
    steps as f64 * mults.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_what_is_not_a_shard() {
        assert_eq!(Shard::parse("2/8").unwrap(), Shard { index: 2, count: 8 });
        for (text, says) in [
            ("8/8", "numbered 0 to 7"),
            ("0/0", "at least 1"),
            ("1", "is not I/N"),
            ("a/4", "shard index \"a\""),
            ("1/-4", "shard count \"-4\""),
            (" 1/4", "shard index \" 1\""),
            ("+1/4", "shard index \"+1\""),
            ("0/99999999999999999999999", "too large"),
        ] {
            let e = Shard::parse(text).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("--shard"), "{text}: {e}");
        }
    }

    #[test]
    fn balances_cost_not_count() {
        // One run as costly as the other four together: it gets a shard
        // to itself.
        let costs = [1.0, 1.0, 4.0, 1.0, 1.0];
        let shard = assign(&costs, 2);
        assert_eq!(shard[2], 0);
        assert!(shard.iter().enumerate().all(|(i, &s)| i == 2 || s == 1));
        // Every run is in exactly one shard, and the split is a function of
        // the input alone.
        assert_eq!(assign(&costs, 2), shard);
        assert_eq!(assign(&costs, 1), vec![0; 5]);
        // More shards than runs: the extra shards are empty.
        assert_eq!(assign(&[3.0, 2.0], 4), vec![0, 1]);
        // A shard count far beyond the runs allocates nothing for it.
        assert_eq!(assign(&[3.0, 2.0], usize::MAX), vec![0, 1]);
    }
}
