//! The recurrent family's page (issue 34): the tanh RNN against its gated
//! twins, the LSTM and the GRU, along the sequence length, which is this
//! family's depth.
//!
//! - **Error against length**: a cell *solves* a length where every seed's
//!   final training error is at most [`SOLVED`] of the task's chance level,
//!   and sits *at chance* where every seed's is at least [`AT_CHANCE`] of
//!   it (the adding problem's chance is 1: predicting the mean). A cell
//!   fails "from length L on" only when every longer length is at chance
//!   too.
//! - **Vanishing through time** is named at a length where the tanh RNN's
//!   dL/dh_t falls more than [`VANISH_SPREAD`] decades from the last step
//!   to the first and no gated cell's does (means over seeds), at
//!   initialization and at the end apart. Where a gated cell's falls that
//!   far too, the sentence says so instead of naming it.
//! - **The LSTM's cell path**: how many decades dL/dc_t falls from the
//!   last step to the first at the first and the last probed step, read
//!   from `gradients.csv`'s `tNNN.c` rows (Hochreiter & Schmidhuber's
//!   constant-error carousel is this path).
//! - **Theory**: the tanh RNN's measured decay per step at initialization
//!   beside the mean-field prediction (Chen, Pennington & Schoenholz 2018)
//!   in `summary.csv`'s `grad_decay_theory`.

use super::gradients::{decades, decades_stat, group_readings, pick};
use super::{cells, pct, pct_stat};
use crate::analysis::{stat, VANISH_SPREAD};
use crate::page::Block;
use crate::runs::Loaded;
use gradscope_format::rows::ActivationRow;
use gradscope_format::run::{FinalMetrics, GradientEnds};
use gradscope_format::GradientRow;
use serde_json::Value;
use std::collections::BTreeMap;

/// At most this fraction of chance at every seed: the task is solved.
pub(crate) const SOLVED: f64 = 0.1;
/// At least this fraction of chance at every seed: the net is at chance.
pub(crate) const AT_CHANCE: f64 = 0.9;

/// Whether `loaded` holds the recurrent family's runs.
pub(crate) fn is_recurrent(loaded: &Loaded) -> bool {
    loaded
        .config()
        .and_then(|c| c.pointer("/model/family"))
        .and_then(Value::as_str)
        == Some("rnn")
}

/// The task's chance level and what it means, from the experiment's
/// config: the adding problem's error is the MSE over the target's
/// variance (1 = predicting the mean); a classifier's is 1 − 1/classes;
/// the sort task's, whose targets are order statistics and not uniform,
/// the best input-ignoring guess at each position (gradscope-theory).
pub(crate) fn chance(config: &Value) -> Option<(f64, String)> {
    if config.pointer("/task").and_then(Value::as_str) == Some("regression") {
        return Some((
            1.0,
            "an error of 100% is predicting the target's mean".to_owned(),
        ));
    }
    let kind = config.pointer("/dataset/kind").and_then(Value::as_str)?;
    // run.json's config holds every dataset field, defaults filled in.
    let field = |name: &str| config.pointer(&format!("/dataset/{name}"))?.as_u64();
    let classes = match kind {
        "copy" => config
            .pointer("/dataset/symbols")
            .and_then(Value::as_f64)
            .unwrap_or(8.0),
        "reverse" | "copy-offset" => field("vocab")? as f64,
        "sort" => {
            let (length, vocab) = (field("length")?, field("vocab")?);
            let level =
                gradscope_theory::chance::sorted_tokens_error(length as usize, vocab as usize)?;
            return Some((
                level,
                format!(
                    "the best guess that ignores the input, the likeliest token at each sorted position of {length} over {vocab} symbols, scores {}%",
                    pct(level)
                ),
            ));
        }
        "fashion-mnist" | "mnist" | "cifar10" => 10.0,
        _ => return None,
    };
    let level = 1.0 - 1.0 / classes;
    Some((
        level,
        format!("guessing among {classes:.0} classes scores {}%", pct(level)),
    ))
}

/// How a cell's final training errors at one length read against chance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Solved,
    AtChance,
    Between,
}

/// [`Outcome`] of every seed's final training error.
pub(crate) fn outcome(errors: &[f64], chance: f64) -> Option<Outcome> {
    if errors.is_empty() {
        return None;
    }
    Some(if errors.iter().all(|e| *e <= SOLVED * chance) {
        Outcome::Solved
    } else if errors.iter().all(|e| *e >= AT_CHANCE * chance) {
        Outcome::AtChance
    } else {
        Outcome::Between
    })
}

/// One cell's error against length in words, from its outcome at each
/// length (ascending).
pub(crate) fn length_words(cell: &str, outcomes: &[(u32, Outcome)]) -> String {
    let list = |o: Outcome| -> Vec<String> {
        outcomes
            .iter()
            .filter(|(_, x)| *x == o)
            .map(|(l, _)| l.to_string())
            .collect()
    };
    // The shortest length from which every longer one is at chance too.
    let from = outcomes
        .iter()
        .rposition(|(_, o)| *o != Outcome::AtChance)
        .map_or(0, |i| i + 1);
    let mut parts = Vec::new();
    let solved = list(Outcome::Solved);
    if solved.len() == outcomes.len() {
        return format!("{cell} solves every length ({})", solved.join(", "));
    }
    if !solved.is_empty() {
        parts.push(format!("solves length {}", solved.join(", ")));
    }
    if let Some((l, _)) = outcomes.get(from) {
        parts.push(format!("is at chance from length {l} on"));
    }
    let between: Vec<String> = outcomes[..from]
        .iter()
        .filter(|(_, o)| *o != Outcome::Solved)
        .map(|(l, _)| l.to_string())
        .collect();
    if !between.is_empty() {
        parts.push(format!(
            "neither solves nor is at chance at length {} (the seeds differ, or the error is between)",
            between.join(", ")
        ));
    }
    format!("{cell} {}", parts.join("; "))
}

/// The vanishing-through-time verdict at one length and one reading
/// (`when`: "at initialization" or "at the end"), from the mean spread of
/// dL/dh_t over the sequence of the tanh RNN and of each gated cell.
pub(crate) fn through_time(length: u32, when: &str, tanh: f64, gated: &[(String, f64)]) -> String {
    let others: Vec<String> = gated
        .iter()
        .map(|(c, s)| format!("{c}'s {}", decades(*s)))
        .collect();
    let falls = format!(
        "the tanh RNN's dL/dh_t falls {} decades from the last step to the first",
        decades(tanh)
    );
    let also: Vec<&str> = gated
        .iter()
        .filter(|(_, s)| *s > VANISH_SPREAD)
        .map(|(c, _)| c.as_str())
        .collect();
    if tanh <= VANISH_SPREAD {
        format!(
            "Length {length}, {when}: no vanishing through time: {falls} (at most {VANISH_SPREAD:.0}); {}.",
            others.join(", ")
        )
    } else if also.is_empty() {
        format!(
            "Length {length}, {when}: **vanishing through time**: {falls}, the gated cells' at most {VANISH_SPREAD:.0} ({}).",
            others.join(", ")
        )
    } else {
        format!(
            "Length {length}, {when}: {falls}, and {} too ({}): every cell loses more than {VANISH_SPREAD:.0} decades, so the shortcut through time is not yet open here.",
            also.join(" and "),
            others.join(", ")
        )
    }
}

/// The cells swept (`model.cell`), tanh first.
fn cells_of(loaded: &Loaded) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in &loaded.entries {
        if let Some(c) = e
            .swept
            .get("cell")
            .cloned()
            .or_else(|| loaded.setting("cell"))
        {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out.sort_by_key(|c| (c != "tanh", c.clone()));
    out
}

/// The runs of one cell (every other swept setting as the experiment has
/// it), as a [`Loaded`] of their own.
fn of_cell(loaded: &Loaded, cell: &str) -> Loaded {
    let only = loaded.setting("cell");
    Loaded {
        entries: loaded
            .entries
            .iter()
            .filter(|e| {
                e.swept
                    .get("cell")
                    .map_or(only.as_deref() == Some(cell), |c| c == cell)
            })
            .cloned()
            .collect(),
        csv: None,
        csv_problem: None,
    }
}

pub(crate) fn recurrent(loaded: &Loaded) -> Vec<Block> {
    let cells_swept = cells_of(loaded);
    let config = loaded.config().cloned().unwrap_or(Value::Null);
    let chance = chance(&config);
    let mut out = vec![
        Block::Heading(2, "Through time: the tanh RNN against gated cells".to_owned()),
        Block::Para(format!(
            "A recurrent net's depth is the sequence length: the gradient of a loss read at the \
             last step reaches step t through every step after it, dL/dh_(t−1) = W_hhᵀ·(φ'(e_t) ⊙ \
             dL/dh_t) for the tanh RNN, while the LSTM's cell state and the GRU's update gate add \
             a path through time (Hochreiter & Schmidhuber 1997; Cho et al. 2014). **Decay per step** \
             is the least-squares slope of log10 rms(dL/dh_t) over the time steps, positive when the \
             gradient shrinks toward the first step; **spread** is how many decades the first step's \
             lies below the last. Errors are final full passes in percent{}. A cell solves a length \
             where every seed's training error is at most {:.0}% of chance and is at chance where \
             every seed's is at least {:.0}% of it.",
            chance
                .as_ref()
                .map(|(_, words)| format!(" ({words})"))
                .unwrap_or_default(),
            100.0 * SOLVED,
            100.0 * AT_CHANCE
        )),
    ];
    out.push(length_table(loaded, &cells_swept));
    let mut verdicts = Vec::new();
    if let Some((level, _)) = chance {
        for cell in &cells_swept {
            let part = of_cell(loaded, cell);
            let outcomes: Vec<(u32, Outcome)> = part
                .depths()
                .into_iter()
                .filter_map(|d| {
                    let errors: Vec<f64> = part
                        .group("plain", d)
                        .iter()
                        .filter(|e| e.is_completed())
                        .filter_map(|e| e.record.as_ref()?.final_metrics.train_error)
                        .collect();
                    Some((d, outcome(&errors, level)?))
                })
                .collect();
            if !outcomes.is_empty() {
                verdicts.push(format!("{}.", length_words(cell, &outcomes)));
            }
        }
    }
    verdicts.extend(time_verdicts(loaded, &cells_swept));
    verdicts.extend(cell_path_words(loaded));
    verdicts.extend(gate_words(loaded, &cells_swept));
    if !verdicts.is_empty() {
        out.push(Block::List(verdicts));
    }
    out.push(Block::Para(format!(
        "(Rules: solved and at chance as above, every seed; vanishing through time where the tanh \
         RNN's spread over the sequence exceeds {VANISH_SPREAD:.0} decades and no gated cell's does, \
         means over completed seeds, at initialization (median of the first five probe steps) and \
         at the end (the last five) apart.)"
    )));
    out.extend(theory_words(loaded));
    out
}

/// Length × cell: errors, decay and spread (mean ± sd over seeds).
fn length_table(loaded: &Loaded, cells_swept: &[String]) -> Block {
    let header = cells(&[
        "length",
        "cell",
        "seeds",
        "final train error %",
        "final test error %",
        "decay per step at init",
        "theory",
        "spread at init",
        "spread at end",
    ]);
    let parts: Vec<(&String, Loaded)> = cells_swept
        .iter()
        .map(|c| (c, of_cell(loaded, c)))
        .collect();
    let mut rows = Vec::new();
    for &d in &loaded.depths() {
        for (cell, part) in &parts {
            let done: Vec<_> = part
                .group("plain", d)
                .into_iter()
                .filter(|e| e.is_completed())
                .collect();
            let metric = |f: fn(&FinalMetrics) -> Option<f64>| {
                stat(
                    done.iter()
                        .map(|e| e.record.as_ref().and_then(|r| f(&r.final_metrics))),
                )
            };
            let ends = group_readings(part, "plain", d);
            if ends.is_empty() && done.is_empty() {
                continue;
            }
            let theory = pick(&ends, |g| g.decay_theory);
            rows.push(vec![
                d.to_string(),
                (*cell).clone(),
                done.len().to_string(),
                pct_stat(metric(|m| m.train_error)),
                pct_stat(metric(|m| m.test_error)),
                decades_stat(&pick(&ends, |g| g.decay_init)),
                theory.first().map_or("—".to_owned(), |t| decades(*t)),
                decades_stat(&pick(&ends, |g| g.spread_init)),
                decades_stat(&pick(&ends, |g| g.spread_final)),
            ]);
        }
    }
    Block::Table(header, rows)
}

/// [`through_time`] at every length where the tanh RNN and a gated cell
/// both have readings, at initialization and at the end.
fn time_verdicts(loaded: &Loaded, cells_swept: &[String]) -> Vec<String> {
    let parts: Vec<(&str, Loaded)> = cells_swept
        .iter()
        .map(|c| (c.as_str(), of_cell(loaded, c)))
        .collect();
    let mean = |cell: &str, d: u32, f: fn(&GradientEnds) -> Option<f64>| {
        let (_, part) = parts.iter().find(|(c, _)| *c == cell)?;
        let ends = group_readings(part, "plain", d);
        let values: Vec<f64> = pick(&ends, f)
            .into_iter()
            .filter(|v| v.is_finite())
            .collect();
        stat(values.into_iter().map(Some)).map(|s| s.mean)
    };
    let mut out = Vec::new();
    if !cells_swept.iter().any(|c| c == "tanh") {
        return out;
    }
    type Reading = fn(&GradientEnds) -> Option<f64>;
    let readings: [(&str, Reading); 2] = [
        ("at initialization", |g| g.spread_init),
        ("at the end", |g| g.spread_final),
    ];
    for d in loaded.depths() {
        for (when, f) in readings {
            let Some(tanh) = mean("tanh", d, f) else {
                continue;
            };
            let gated: Vec<(String, f64)> = cells_swept
                .iter()
                .filter(|c| *c != "tanh")
                .filter_map(|c| Some((c.clone(), mean(c, d, f)?)))
                .collect();
            if !gated.is_empty() {
                out.push(through_time(d, when, tanh, &gated));
            }
        }
    }
    out
}

/// log10 of rms(dL/dc) at the last step over the first, at the first and
/// at the last probed step of one run's `gradients.csv` rows (the LSTM's
/// `tNNN.c` points); `None` where a reading is missing or 0.
pub(crate) fn cell_path_spread(rows: &[GradientRow]) -> (Option<f64>, Option<f64>) {
    let cell: Vec<&GradientRow> = rows
        .iter()
        .filter(|g| g.is_output() && g.name.ends_with(".c"))
        .collect();
    let at = |step: u64| {
        let mut points: Vec<(usize, f64)> = cell
            .iter()
            .filter(|g| g.step == step)
            .filter_map(|g| Some((g.layer, g.rms?)))
            .collect();
        points.sort_by_key(|p| p.0);
        let (first, last) = (points.first()?.1, points.last()?.1);
        (points.len() >= 2 && first > 0.0 && last > 0.0).then(|| (last / first).log10())
    };
    let steps = || cell.iter().map(|g| g.step);
    match (steps().min(), steps().max()) {
        (Some(lo), Some(hi)) => (at(lo), at(hi)),
        _ => (None, None),
    }
}

/// The LSTM's cell path at each length, mean over the seeds whose
/// `gradients.csv` loaded.
fn cell_path_words(loaded: &Loaded) -> Vec<String> {
    let part = of_cell(loaded, "lstm");
    let mut out = Vec::new();
    for d in part.depths() {
        let (mut init, mut end) = (Vec::new(), Vec::new());
        for e in part.group("plain", d).iter().filter(|e| e.is_completed()) {
            let Some(rows) = loaded.csv_run(&e.name).and_then(|r| r.gradients.as_ref()) else {
                continue;
            };
            let (i, f) = cell_path_spread(rows);
            init.extend(i);
            end.extend(f);
        }
        let mean = |v: &[f64]| stat(v.iter().map(|x| Some(*x))).map(|s| s.mean);
        if let (Some(i), Some(f)) = (mean(&init), mean(&end)) {
            let n = init.len().min(end.len());
            out.push(format!(
                "Length {d}, the LSTM's cell path: dL/dc_t falls {} decades from the last step to the first at the first probed step and {} at the last ({n} seed{}).",
                decades(i),
                decades(f),
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    out
}

/// Each gate's mean over the second half of the sequence (steps T/2 to
/// T − 1, where the adding problem's second marker and the recall sit),
/// at the first and at the last probed step of one run's
/// `activations.csv` rows: gate → (first, last).
pub(crate) fn gate_means(rows: &[ActivationRow], length: usize) -> BTreeMap<String, (f64, f64)> {
    let gates: Vec<(u64, &str, f64)> = rows
        .iter()
        .filter_map(|r| {
            let (t, gate) = r.gate()?;
            (t >= length / 2).then_some((r.step, gate, r.mean?))
        })
        .collect();
    let (Some(first), Some(last)) = (
        gates.iter().map(|g| g.0).min(),
        gates.iter().map(|g| g.0).max(),
    ) else {
        return BTreeMap::new();
    };
    let mean_at = |step: u64, gate: &str| {
        let v: Vec<f64> = gates
            .iter()
            .filter(|g| g.0 == step && g.1 == gate)
            .map(|g| g.2)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let names: std::collections::BTreeSet<&str> = gates.iter().map(|g| g.1).collect();
    names
        .into_iter()
        .map(|g| (g.to_owned(), (mean_at(first, g), mean_at(last, g))))
        .collect()
}

/// The gated cells' gates at the longest length, mean over the seeds
/// whose `activations.csv` loaded.
fn gate_words(loaded: &Loaded, cells_swept: &[String]) -> Vec<String> {
    let Some(&d) = loaded.depths().last() else {
        return Vec::new();
    };
    let word = |g: &str| -> String {
        match g {
            "f" => "forget",
            "i" => "input",
            "o" => "output",
            "z" => "update",
            "r" => "reset",
            other => other,
        }
        .to_owned()
    };
    let mut parts = Vec::new();
    for cell in cells_swept.iter().filter(|c| *c != "tanh") {
        let part = of_cell(loaded, cell);
        let mut sums: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
        for e in part.group("plain", d).iter().filter(|e| e.is_completed()) {
            let Some(rows) = loaded.csv_run(&e.name).and_then(|r| r.activations.as_ref()) else {
                continue;
            };
            for (g, (a, b)) in gate_means(rows, d as usize) {
                let s = sums.entry(g).or_default();
                (s.0, s.1, s.2) = (s.0 + a, s.1 + b, s.2 + 1);
            }
        }
        let gates: Vec<String> = sums
            .iter()
            .map(|(g, (a, b, n))| {
                let n = *n as f64;
                format!("{} {:.2} → {:.2}", word(g), a / n, b / n)
            })
            .collect();
        if !gates.is_empty() {
            parts.push(format!("{cell}: {}", gates.join(", ")));
        }
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "Length {d}, the gates' means over the second half of the sequence, first probed step → last, mean over seeds: {}. These are means over units and steps: they do not show how single units moved.",
        parts.join("; ")
    )]
}

/// The tanh RNN's measured decay at initialization against mean-field
/// theory, as the ratio at each length, and what is not predicted.
fn theory_words(loaded: &Loaded) -> Vec<Block> {
    let part = of_cell(loaded, "tanh");
    let mut parts = Vec::new();
    for d in part.depths() {
        let ends = group_readings(&part, "plain", d);
        let (Some(m), Some(t)) = (
            stat(pick(&ends, |g| g.decay_init).into_iter().map(Some)),
            pick(&ends, |g| g.decay_theory).first().copied(),
        ) else {
            continue;
        };
        if t > 0.0 {
            parts.push(format!(
                "length {d}: {} measured, {} predicted ({:.2}×)",
                decades(m.mean),
                decades(t),
                m.mean / t
            ));
        }
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![Block::Para(format!(
        "Mean-field theory (Chen, Pennington & Schoenholz 2018; the input's power enters q) \
         predicts the tanh RNN's decay per step at initialization from its init and data alone; \
         measured at initialization against predicted, in decades per step: {}. It does not \
         predict the gated cells: for the LSTM it says only that the cell path's direct term \
         multiplies dL/dc by the forget gate each step back, which starts near σ(forget bias) and \
         is learned; the paths through h_t add to it.",
        parts.join("; ")
    ))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The adding problem's chance is predicting the mean (error 1, Le et
    /// al. 2015's baseline); a classifier's is 1 − 1/classes.
    #[test]
    fn chance_is_the_tasks_own() {
        let adding = json!({"task": "regression", "dataset": {"kind": "adding"}});
        assert_eq!(chance(&adding).unwrap().0, 1.0);
        let copy = json!({"task": "classify", "dataset": {"kind": "copy", "symbols": 4}});
        assert_eq!(chance(&copy).unwrap().0, 0.75);
        let fashion = json!({"task": "classify", "dataset": {"kind": "fashion-mnist"}});
        assert!((chance(&fashion).unwrap().0 - 0.9).abs() < 1e-12);
        assert!(chance(&json!({"dataset": {"kind": "synthetic"}})).is_none());
        // The token tasks: uniform targets for reverse and copy-offset,
        // order statistics for sort (2 tokens over 2 symbols: min and max
        // are each 3/4 likely to be 0 and 1, so chance errs 1/4).
        let tokens = |kind: &str, length: u64, vocab: u64| {
            let config = json!({"task": "classify",
                "dataset": {"kind": kind, "length": length, "vocab": vocab, "offset": 1}});
            chance(&config).unwrap().0
        };
        assert_eq!(tokens("reverse", 16, 4), 0.75);
        assert_eq!(tokens("copy-offset", 16, 8), 0.875);
        assert!((tokens("sort", 2, 2) - 0.25).abs() < 1e-15);
        assert!(tokens("sort", 16, 8) < 0.875);
        let no_vocab = json!({"dataset": {"kind": "sort", "length": 4}});
        assert!(chance(&no_vocab).is_none());
    }

    /// Solved and at chance hold at every seed, else the length is between.
    #[test]
    fn an_outcome_needs_every_seed() {
        assert_eq!(outcome(&[0.01, 0.05], 1.0), Some(Outcome::Solved));
        assert_eq!(outcome(&[0.95, 1.02], 1.0), Some(Outcome::AtChance));
        assert_eq!(outcome(&[0.01, 0.95], 1.0), Some(Outcome::Between));
        assert_eq!(outcome(&[0.5], 0.5), Some(Outcome::AtChance));
        assert_eq!(outcome(&[], 1.0), None);
    }

    /// "At chance from L on" needs every longer length at chance: a
    /// solved length after a failed one keeps the failure out of it.
    #[test]
    fn at_chance_from_a_length_on_means_every_longer_one() {
        use Outcome::*;
        let words = length_words(
            "tanh",
            &[(10, Solved), (25, Solved), (50, AtChance), (100, AtChance)],
        );
        assert_eq!(
            words,
            "tanh solves length 10, 25; is at chance from length 50 on"
        );
        let words = length_words("tanh", &[(10, AtChance), (25, Solved), (50, AtChance)]);
        assert!(words.contains("at chance from length 50 on"), "{words}");
        assert!(
            words.contains("neither solves nor is at chance at length 10"),
            "{words}"
        );
        let words = length_words("lstm", &[(10, Solved), (200, Solved)]);
        assert_eq!(words, "lstm solves every length (10, 200)");
        let words = length_words("gru", &[(10, Solved), (200, Between)]);
        assert!(
            words.contains("neither solves nor is at chance at length 200"),
            "{words}"
        );
        assert!(!words.contains("from length"), "{words}");
    }

    /// The cell path's spread is read on the `.c` rows alone, at the first
    /// and the last probed step, last step over first (positive when the
    /// first step's gradient is the smaller).
    #[test]
    fn the_cell_path_is_read_on_its_own_rows() {
        let row = |step: u64, layer: usize, name: &str, rms: f64| GradientRow {
            step,
            layer,
            name: name.to_owned(),
            kind: gradscope_format::KIND_OUTPUT.to_owned(),
            trunk: name.ends_with(".h"),
            l2: None,
            rms: Some(rms),
            zero_fraction: None,
            weight_norm: None,
            relative: None,
        };
        let rows = vec![
            row(0, 0, "t000.h", 1e-9),
            row(0, 1, "t001.h", 1.0),
            row(0, 2, "t000.c", 1e-3),
            row(0, 3, "t001.c", 1.0),
            row(50, 2, "t000.c", 0.5),
            row(50, 3, "t001.c", 1.0),
        ];
        let (init, end) = cell_path_spread(&rows);
        assert!((init.unwrap() - 3.0).abs() < 1e-12, "{init:?}");
        assert!((end.unwrap() - 2f64.log10()).abs() < 1e-12, "{end:?}");
        assert_eq!(cell_path_spread(&rows[..2]), (None, None));
    }

    /// A gate's mean is read over the sequence's second half, at the first
    /// and the last probed step; hidden-state rows are not gates.
    #[test]
    fn gate_means_read_the_second_half_at_both_ends() {
        let row = |step: u64, name: &str, mean: f64| ActivationRow {
            step,
            layer: 0,
            name: name.to_owned(),
            mean: Some(mean),
            std: None,
            saturation: None,
            dead: None,
            q: None,
            c: None,
            rank1: None,
            entropy: None,
        };
        let rows = vec![
            row(0, "t000.gate_f", 0.1),
            row(0, "t002.gate_f", 0.7),
            row(0, "t003.gate_f", 0.9),
            row(0, "t003.h", 0.5),
            row(9, "t002.gate_f", 0.95),
            row(9, "t003.gate_f", 0.97),
        ];
        let means = gate_means(&rows, 4);
        let (a, b) = means["f"];
        assert!(
            (a - 0.8).abs() < 1e-12 && (b - 0.96).abs() < 1e-12,
            "{means:?}"
        );
        assert_eq!(means.len(), 1);
    }

    /// Issue 34: "vanishing through time" only where tanh falls more than 2
    /// decades and no gated cell does; a gated cell past 2 decades is
    /// named instead of the verdict.
    #[test]
    fn vanishing_through_time_needs_the_gated_cells_to_keep_it() {
        let g = |l: f64, r: f64| vec![("lstm".to_owned(), l), ("gru".to_owned(), r)];
        let v = through_time(50, "at initialization", 12.4, &g(1.2, 0.6));
        assert!(v.contains("**vanishing through time**"), "{v}");
        let v = through_time(50, "at initialization", 12.4, &g(3.6, 0.6));
        assert!(!v.contains("vanishing through time"), "{v}");
        assert!(v.contains("and lstm too"), "{v}");
        let v = through_time(10, "at the end", 1.5, &g(0.2, 0.1));
        assert!(v.contains("no vanishing through time"), "{v}");
    }
}
