//! The sections of the report, one module per section, each building its
//! `page::Block`s with the rules that pick its words (the verdicts
//! themselves are `crate::verdict`'s, the numbers `crate::analysis`'s);
//! `crate::assemble` puts them in order.
//!
//! - `header`: the experiment and how to rerun it;
//! - `sweep`: a swept experiment's groups side by side;
//! - `runs_table`: runs by variant and depth, and the missing or unfinished;
//! - `findings`: what the numbers show (error against depth, twins against
//!   plain, why a net failed);
//! - `forward`: the correlation c between inputs per layer, where it
//!   comes within 1e-3 of 1 (forward collapse), its measured depth beside
//!   mean-field theory's ξ_c;
//! - `gradients`: first/last-layer ratios and the decay per layer, followed
//!   by `theory` (the mean-field prediction) and `he_4_1` (He et al. §4.1);
//! - `recurrent`: the rnn family's page (error against sequence length,
//!   vanishing through time, theory), in place of the feed-forward sections;
//! - `transformer`: the transformer family's page (post-LN against
//!   pre-LN, the warm-up, rank collapse, Xiong et al.'s scaling), in place
//!   of the feed-forward sections;
//! - `paper`: He et al. Table 6 beside our CNN numbers;
//! - `glorot`: saturation and gradient spread per layer (Glorot & Bengio);
//! - `criticality`: trainable depth against σ_w² for a swept variance
//!   init (Schoenholz et al. 2017's phase diagram), before the sweep;
//! - `charts`: every chart of `plots/` with its caption.
//!
//! This file holds the number formats every section shares, so that a
//! percentage or a wall time reads the same in each, and two helpers for
//! building blocks.

use serde_json::Value;

use crate::analysis::Stat;
use crate::page::Block;

mod charts;
mod criticality;
mod findings;
mod forward;
mod glorot;
mod gradients;
mod he_4_1;
mod header;
mod paper;
mod recurrent;
mod runs_table;
mod sweep;
mod theory;
mod transformer;

pub(crate) use charts::{caption, charts};
pub(crate) use criticality::criticality;
pub(crate) use findings::findings;
pub(crate) use forward::forward;
pub(crate) use glorot::glorot;
pub(crate) use gradients::gradients;
pub(crate) use header::header;
pub(crate) use paper::paper;
pub(crate) use recurrent::{is_recurrent, recurrent};
pub(crate) use runs_table::runs_table;
pub(crate) use sweep::sweep_comparison;
pub(crate) use transformer::{is_transformer, transformer};

/// A table's header cells.
pub(crate) fn cells(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Adds a note on something missing: to the notes just before it, or as
/// a new [`Block::TightList`].
pub(crate) fn note(out: &mut Vec<Block>, text: String) {
    match out.last_mut() {
        Some(Block::TightList(items)) => items.push(text),
        _ => out.push(Block::TightList(vec![text])),
    }
}

pub(crate) fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

/// `12.34 ± 0.56` (percent), or `12.34` for one seed, or `—`.
pub(crate) fn pct_stat(s: Option<Stat>) -> String {
    match s {
        Some(Stat {
            mean,
            std: Some(sd),
            ..
        }) => format!("{} ± {}", pct(mean), pct(sd)),
        Some(s) => pct(s.mean),
        None => "—".into(),
    }
}

/// A gradient ratio in scientific notation; 0 is called out.
pub(crate) fn sci(v: f64) -> String {
    if v == 0.0 {
        "0 (exactly 0 in float32)".into()
    } else {
        format!("{v:.1e}")
    }
}

/// A wall time: milliseconds below a second (tiny runs would all read
/// "0 s"), one decimal below ten seconds, minutes from two minutes on.
pub(crate) fn seconds(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else if s >= 10.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

pub(crate) fn cfg_str<'a>(config: Option<&'a Value>, pointer: &str) -> Option<&'a str> {
    config
        .and_then(|c| c.pointer(pointer))
        .and_then(Value::as_str)
}

/// Loaded results folders built in memory, for the sections' tests.
#[cfg(test)]
pub(crate) mod fixture {
    use crate::runs::{Loaded, RunEntry};
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    /// One run: variant, depth, seed and its run.json without `config`
    /// (`status` completed unless it says otherwise).
    pub(crate) type Run = (&'static str, u32, u64, Value);

    /// A results folder without per-run CSV files: every run's record
    /// carries `config`.
    pub(crate) fn loaded(config: &Value, runs: Vec<Run>) -> Loaded {
        swept(
            config,
            runs.into_iter().map(|r| (BTreeMap::new(), r)).collect(),
        )
    }

    /// [`loaded`] with each run's values of the swept settings.
    pub(crate) fn swept(config: &Value, runs: Vec<(BTreeMap<String, String>, Run)>) -> Loaded {
        let entries = runs
            .into_iter()
            .map(|(swept, (variant, depth, seed, mut record))| {
                record["config"] = config.clone();
                if record.get("status").is_none() {
                    record["status"] = json!("completed");
                }
                RunEntry {
                    name: format!("{variant}-d{depth}-s{seed}"),
                    variant: variant.to_owned(),
                    swept,
                    depth,
                    seed,
                    record: Some(serde_json::from_value(record).expect("a run.json")),
                    problem: None,
                }
            })
            .collect();
        Loaded {
            entries,
            csv: None,
            csv_problem: None,
        }
    }

    /// A completed run's record with its final train error.
    pub(crate) fn trained(train_error: f64) -> Value {
        json!({ "final": { "train_error": train_error, "test_error": train_error } })
    }
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn wall_times_keep_their_digits_at_every_scale() {
        assert_eq!(seconds(0.0374), "37 ms");
        assert_eq!(seconds(3.31), "3.3 s");
        assert_eq!(seconds(42.4), "42 s");
        assert_eq!(seconds(600.0), "10.0 min");
    }
}
