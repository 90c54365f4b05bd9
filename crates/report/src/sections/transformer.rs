//! The transformer family's page (issue 35): where the LayerNorm sits,
//! the warm-up, and what the tokens do without shortcuts.
//!
//! - **Error**: a layout *solves* the task at a depth where every seed's
//!   final training error is at most [`SOLVED`] of chance, sits *at
//!   chance* where every seed's is at least [`AT_CHANCE`] of it, and is
//!   *between* otherwise (the recurrent page's rule); a diverged run is at
//!   chance. Two layouts (or one with and without a warm-up) are compared
//!   paired by seed: worse only where every seed's error is higher by more
//!   than [`RISE_TOL`] ([`paired_words`]).
//! - **Xiong et al.'s Fig. 3 at initialization**: how many decades the
//!   FFN output weight's gradient ‖∇W‖ changes from the first block to the
//!   last at step 0 ([`ffn_tilt`]): *grows toward the output* where every
//!   seed's is above [`FLAT_TOL`], *shrinks toward the output* where every
//!   seed's is below minus it, *flat* where every seed's is within it.
//! - **Rank collapse** (Dong, Cordonnier & Loukas 2021): the last block's
//!   `rank1`, ‖X − 1·x̄ᵀ‖_F / ‖X‖_F, at the first and last probed step;
//!   the tokens have *collapsed toward one vector* where every seed's is
//!   below [`COLLAPSED`].
//! - **Theory**: the top block's FFN gradient at step 0 against depth,
//!   the exponent of a power-law fit beside Xiong et al.'s (0 for post-LN,
//!   −½ for pre-LN): bounds up to constants, so only the exponent is
//!   compared, and it *agrees* within [`EXPONENT_TOL`].

use super::recurrent::{chance, outcome, Outcome};
use super::{cells, pct, pct_stat};
use crate::analysis::{stat, RISE_TOL};
use crate::page::Block;
use crate::runs::{sweep_label, Loaded, RunEntry};
use gradscope_format::tokens::{ffn_gradients, probed_steps, rank1_profile};
use gradscope_theory::transformer::{log_log_slope, Layout};
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) use super::recurrent::{AT_CHANCE, SOLVED};

/// A change of the FFN gradient from the first block to the last within
/// this many decades (a factor of 1.26) is flat.
pub(crate) const FLAT_TOL: f64 = 0.1;
/// A last block's rank-collapse residual below this: its tokens are
/// within 10% of one vector.
pub(crate) const COLLAPSED: f64 = 0.1;
/// A fitted exponent within this of Xiong et al.'s agrees with it.
pub(crate) const EXPONENT_TOL: f64 = 0.15;

/// The layouts in the order the page names them.
const LAYOUTS: [&str; 5] = ["plain", "residual", "rezero", "post-ln", "pre-ln"];

/// Whether `loaded` holds the transformer family's runs.
pub(crate) fn is_transformer(loaded: &Loaded) -> bool {
    loaded
        .config()
        .and_then(|c| c.pointer("/model/family"))
        .and_then(Value::as_str)
        == Some("transformer")
}

/// The direction of a profile's change from the first block to the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tilt {
    Grows,
    Shrinks,
    Flat,
    /// The seeds disagree.
    Mixed,
}

/// log10 of the last block's FFN ‖∇W‖ over the first block's; `None`
/// with fewer than two blocks read.
pub(crate) fn ffn_tilt(profile: &[(usize, f64)]) -> Option<f64> {
    let (first, last) = (profile.first()?, profile.last()?);
    (profile.len() >= 2 && first.1 > 0.0 && last.1 > 0.0).then(|| (last.1 / first.1).log10())
}

/// [`Tilt`] of every seed's change in decades.
pub(crate) fn tilt(changes: &[f64]) -> Option<Tilt> {
    if changes.is_empty() {
        return None;
    }
    Some(if changes.iter().all(|c| *c > FLAT_TOL) {
        Tilt::Grows
    } else if changes.iter().all(|c| *c < -FLAT_TOL) {
        Tilt::Shrinks
    } else if changes.iter().all(|c| c.abs() <= FLAT_TOL) {
        Tilt::Flat
    } else {
        Tilt::Mixed
    })
}

fn tilt_words(t: Tilt) -> &'static str {
    match t {
        Tilt::Grows => "grows toward the output",
        Tilt::Shrinks => "shrinks toward the output",
        Tilt::Flat => "is flat",
        Tilt::Mixed => "differs between seeds",
    }
}

/// Xiong et al.'s Fig. 3 at one depth: post-LN's and pre-LN's tilt,
/// with whether it is what they found (post-LN growing toward the output,
/// pre-LN flat).
pub(crate) fn fig3_words(depth: u32, post: &[f64], pre: &[f64]) -> Option<String> {
    let (tp, tq) = (tilt(post)?, tilt(pre)?);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let verdict = match (tp, tq) {
        (Tilt::Grows, Tilt::Flat) => "as Xiong et al.'s Fig. 3 shows",
        (Tilt::Grows, _) => "post-LN as Xiong et al.'s Fig. 3 shows; pre-LN not flat as theirs is",
        (_, Tilt::Flat) => "pre-LN flat as in Xiong et al.'s Fig. 3; post-LN does not grow toward the output as theirs does",
        _ => "not what Xiong et al.'s Fig. 3 shows (post-LN growing toward the output, pre-LN flat)",
    };
    Some(format!(
        "Depth {depth}, at initialization: post-LN's FFN weight gradient {} ({:+.2} decades from the first block to the last), pre-LN's {} ({:+.2}): {verdict}.",
        tilt_words(tp),
        mean(post),
        tilt_words(tq),
        mean(pre)
    ))
}

/// Two sets of final errors paired by seed: `a` worse (higher by more
/// than [`RISE_TOL`] at every seed), better, or tied.
pub(crate) fn paired_words(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<&'static str> {
    let diffs: Vec<f64> = a
        .iter()
        .filter_map(|(s, ea)| Some(ea - b.iter().find(|(t, _)| t == s)?.1))
        .collect();
    if diffs.is_empty() {
        return None;
    }
    Some(if diffs.iter().all(|d| *d > RISE_TOL) {
        "worse than"
    } else if diffs.iter().all(|d| *d < -RISE_TOL) {
        "better than"
    } else {
        "tied with"
    })
}

fn outcome_words(o: Outcome) -> &'static str {
    match o {
        Outcome::Solved => "solves the task",
        Outcome::AtChance => "is at chance",
        Outcome::Between => "learns part of it",
    }
}

/// Whether a fitted exponent agrees with Xiong et al.'s for its layout.
pub(crate) fn exponent_words(layout: Layout, fitted: f64) -> String {
    let theirs = layout.top_ffn_exponent();
    let agrees = (fitted - theirs).abs() <= EXPONENT_TOL;
    format!(
        "L^{fitted:.2} against Xiong et al.'s L^{theirs} ({})",
        if agrees {
            "agrees within 0.15"
        } else {
            "does not agree"
        }
    )
}

/// One run's readings: its final training error (a diverged run at 1,
/// worse than any chance) and the per-block readings of its CSV files.
#[derive(Debug, Clone, Default)]
struct Reading {
    seed: u64,
    error: Option<f64>,
    diverged: bool,
    ffn_tilt: Option<f64>,
    top_ffn: Option<f64>,
    rank1: [Option<f64>; 2],
    wgrad_decay: Option<f64>,
}

fn reading(loaded: &Loaded, e: &RunEntry) -> Reading {
    let record = e.record.as_ref();
    let diverged = e.status() == "diverged";
    let mut r = Reading {
        seed: e.seed,
        diverged,
        error: if diverged {
            Some(1.0)
        } else if e.is_completed() {
            record.and_then(|r| r.final_metrics.train_error)
        } else {
            None
        },
        wgrad_decay: record.and_then(|r| r.gradient_ends.wgrad_decay_init),
        ..Reading::default()
    };
    let Some(run) = loaded.csv_run(&e.name) else {
        return r;
    };
    if let Some(rows) = &run.gradients {
        let ffn = ffn_gradients(rows, 0);
        r.ffn_tilt = ffn_tilt(&ffn);
        r.top_ffn = ffn.last().map(|p| p.1);
    }
    if let Some(rows) = &run.activations {
        if let Some((first, last)) = probed_steps(rows) {
            for (i, step) in [first, last].into_iter().enumerate() {
                r.rank1[i] = rank1_profile(rows, step).last().map(|p| p.1);
            }
        }
    }
    r
}

/// Every run's reading by (group label, layout, depth).
type Readings = BTreeMap<(String, String, u32), Vec<Reading>>;

fn readings(loaded: &Loaded) -> (Vec<String>, Readings) {
    let mut groups = Vec::new();
    let mut out: Readings = BTreeMap::new();
    for g in loaded.sweep_groups() {
        let label = sweep_label(&g);
        let part = loaded.only(&g);
        for e in &part.entries {
            out.entry((label.clone(), e.variant.clone(), e.depth))
                .or_default()
                .push(reading(&part, e));
        }
        groups.push(label);
    }
    (groups, out)
}

fn layouts_of(loaded: &Loaded) -> Vec<String> {
    let have = loaded.variants();
    LAYOUTS
        .iter()
        .filter(|l| have.iter().any(|v| v == *l))
        .map(|l| (*l).to_owned())
        .collect()
}

fn mean_of(v: impl Iterator<Item = Option<f64>>) -> String {
    stat(v).map_or("—".to_owned(), |s| format!("{:.3}", s.mean))
}

pub(crate) fn transformer(loaded: &Loaded) -> Vec<Block> {
    let config = loaded.config().cloned().unwrap_or(Value::Null);
    let chance = chance(&config);
    let layouts = layouts_of(loaded);
    let (groups, readings) = readings(loaded);
    let depths = loaded.depths();
    let mut out = vec![
        Block::Heading(2, "Transformers: where the LayerNorm sits".to_owned()),
        Block::Para(format!(
            "A Transformer block adds attention and an MLP to a stream of token vectors. **post-LN** \
             normalizes after the shortcut's sum, x ← LN(x + F(x)) (Vaswani et al. 2017), so the \
             shortcut itself passes through every LN; **pre-LN** normalizes the branch's input, \
             x ← x + F(LN(x)), with a final LN, and keeps the identity path clean (Xiong et al. 2020); \
             **plain** is post-LN without its shortcut, x ← LN(F(x)). Xiong et al. prove that post-LN's \
             gradient near the output is large at initialization, so a large learning rate needs a \
             warm-up; Dong, Cordonnier & Loukas (2021) that attention without shortcuts pulls the \
             tokens toward one vector. **FFN tilt** is log10 of the last block's FFN output weight \
             gradient ‖∇W‖ over the first block's at step 0 (Xiong et al.'s Fig. 3); **rank1** is the \
             last block's ‖X − 1·x̄ᵀ‖_F / ‖X‖_F, 0 when every token is the same vector, at the first \
             and the last probed step. Errors are final full passes in percent{}.",
            chance
                .as_ref()
                .map(|(level, words)| format!(" (chance {}%: {words})", pct(*level)))
                .unwrap_or_default()
        )),
    ];
    let header = cells(&[
        "setting",
        "depth",
        "layout",
        "seeds",
        "final train error %",
        "diverged",
        "FFN tilt at init",
        "wgrad decay, first 5 probes",
        "rank1 first",
        "rank1 last",
    ]);
    let mut rows = Vec::new();
    for g in &groups {
        for &d in &depths {
            for l in &layouts {
                let Some(rs) = readings.get(&(g.clone(), l.clone(), d)) else {
                    continue;
                };
                rows.push(vec![
                    if g.is_empty() {
                        "—".into()
                    } else {
                        g.clone()
                    },
                    d.to_string(),
                    l.clone(),
                    rs.len().to_string(),
                    pct_stat(stat(rs.iter().map(|r| r.error.filter(|_| !r.diverged)))),
                    rs.iter().filter(|r| r.diverged).count().to_string(),
                    mean_of(rs.iter().map(|r| r.ffn_tilt)),
                    mean_of(rs.iter().map(|r| r.wgrad_decay)),
                    mean_of(rs.iter().map(|r| r.rank1[0])),
                    mean_of(rs.iter().map(|r| r.rank1[1])),
                ]);
            }
        }
    }
    out.push(Block::Table(header, rows));
    let mut verdicts = Vec::new();
    // Fig. 3: step 0 precedes any update, so every setting's runs read it.
    for &d in &depths {
        let tilts = |layout: &str| -> Vec<f64> {
            let mut by_seed: BTreeMap<u64, f64> = BTreeMap::new();
            for g in &groups {
                for r in readings
                    .get(&(g.clone(), layout.to_owned(), d))
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = r.ffn_tilt {
                        by_seed.entry(r.seed).or_insert(t);
                    }
                }
            }
            by_seed.into_values().collect()
        };
        if let Some(w) = fig3_words(d, &tilts("post-ln"), &tilts("pre-ln")) {
            verdicts.push(w);
        }
    }
    if let Some((level, _)) = chance {
        verdicts.extend(error_words(&groups, &layouts, &depths, &readings, level));
    }
    verdicts.extend(collapse_words(&groups, &layouts, &depths, &readings));
    if !verdicts.is_empty() {
        out.push(Block::List(verdicts));
    }
    out.extend(theory_words(&groups, &depths, &readings));
    out.push(Block::Para(format!(
        "(Rules: solved and at chance every seed, at most {:.0}% and at least {:.0}% of chance, a \
         diverged run at chance; worse or better only where every seed's pair differs by more than \
         {:.0} point the same way; FFN tilt grows or shrinks where every seed's is beyond {FLAT_TOL} \
         decades, flat where every seed's is within it; collapsed where every seed's rank1 is below \
         {COLLAPSED}; an exponent agrees within {EXPONENT_TOL}.)",
        100.0 * SOLVED,
        100.0 * AT_CHANCE,
        100.0 * RISE_TOL
    )));
    out
}

/// Per depth and setting, each layout's outcome; then, per depth, post-LN
/// against pre-LN in each setting and each against itself across
/// settings (a warm-up against none).
fn error_words(
    groups: &[String],
    layouts: &[String],
    depths: &[u32],
    readings: &Readings,
    level: f64,
) -> Vec<String> {
    let errors = |g: &str, l: &str, d: u32| -> Vec<(u64, f64)> {
        readings
            .get(&(g.to_owned(), l.to_owned(), d))
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.seed, r.error?)))
            .collect()
    };
    let mut out = Vec::new();
    for &d in depths {
        for g in groups {
            let parts: Vec<String> = layouts
                .iter()
                .filter_map(|l| {
                    let e = errors(g, l, d);
                    let values: Vec<f64> = e.iter().map(|p| p.1).collect();
                    let o = outcome(&values, level)?;
                    let list: Vec<String> =
                        values.iter().map(|v| format!("{}%", pct(*v))).collect();
                    Some(format!("{l} {} ({})", outcome_words(o), list.join(", ")))
                })
                .collect();
            if parts.is_empty() {
                continue;
            }
            let cmp = paired_words(&errors(g, "post-ln", d), &errors(g, "pre-ln", d))
                .map(|w| format!("; post-LN is {w} pre-LN, paired by seed"))
                .unwrap_or_default();
            let at = if g.is_empty() {
                String::new()
            } else {
                format!(", {g}")
            };
            out.push(format!("Depth {d}{at}: {}{cmp}.", parts.join("; ")));
        }
        if let [first, second] = groups {
            if let Some(w) = warmup_claim(
                d,
                [first, second],
                [&errors(first, "post-ln", d), &errors(second, "post-ln", d)],
                &errors(first, "pre-ln", d),
                level,
            ) {
                out.push(w);
            }
            for l in layouts {
                if let Some(w) = paired_words(&errors(first, l, d), &errors(second, l, d)) {
                    out.push(format!(
                        "Depth {d}, {l}: {first} is {w} {second}, paired by seed."
                    ));
                }
            }
        }
    }
    out
}

/// Xiong et al.'s claim at one depth, from two settings (`without`, then
/// `with`: the file's order, a warm-up of 0 steps first): post-LN needs
/// the warm-up where, paired by seed, post-LN without it is worse than
/// with it and worse than pre-LN without it, and pre-LN without it is not
/// at chance. `None` where post-LN is not worse without the setting.
pub(crate) fn warmup_claim(
    depth: u32,
    settings: [&str; 2],
    post: [&[(u64, f64)]; 2],
    pre_without: &[(u64, f64)],
    chance: f64,
) -> Option<String> {
    let [without, with] = settings;
    if paired_words(post[0], post[1]) != Some("worse than") {
        return None;
    }
    let pre_errors: Vec<f64> = pre_without.iter().map(|p| p.1).collect();
    let pre = outcome(&pre_errors, chance)?;
    let list = |v: &[(u64, f64)]| -> String {
        v.iter()
            .map(|p| format!("{}%", pct(p.1)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pre_trains =
        pre != Outcome::AtChance && paired_words(post[0], pre_without) == Some("worse than");
    Some(if pre_trains {
        format!(
            "Depth {depth}: **post-LN needs the warm-up** ({} with {without}, {} with {with}) while pre-LN trains without it ({}), as Xiong et al. found.",
            list(post[0]),
            list(post[1]),
            list(pre_without)
        )
    } else {
        format!(
            "Depth {depth}: post-LN is worse with {without} than with {with} ({} against {}), but so is pre-LN's training without it ({}): not the post-LN-only need Xiong et al. found.",
            list(post[0]),
            list(post[1]),
            list(pre_without)
        )
    })
}

/// The last block's rank1 per layout at the deepest and the shallowest
/// depth, at the first probed step and at the last, and whether the
/// tokens have collapsed.
fn collapse_words(
    groups: &[String],
    layouts: &[String],
    depths: &[u32],
    readings: &Readings,
) -> Vec<String> {
    let (Some(&lo), Some(&hi)) = (depths.first(), depths.last()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Step 0 precedes any update, so every setting's runs read the same
    // start; the end is each setting's own.
    let mut readings_at: Vec<(usize, String, Vec<String>)> =
        vec![(0, "at initialization".to_owned(), groups.to_vec())];
    for g in groups {
        let when = if g.is_empty() {
            "at the end".to_owned()
        } else {
            format!("at the end, {g}")
        };
        readings_at.push((1, when, vec![g.clone()]));
    }
    for l in layouts {
        for (i, when, part) in &readings_at {
            let at = |d: u32| -> Vec<f64> {
                part.iter()
                    .flat_map(|g| {
                        readings
                            .get(&(g.clone(), l.clone(), d))
                            .into_iter()
                            .flatten()
                    })
                    .filter(|r| !r.diverged)
                    .filter_map(|r| r.rank1[*i])
                    .collect()
            };
            let (a, b) = (at(lo), at(hi));
            if a.is_empty() || b.is_empty() || lo == hi {
                continue;
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let collapsed = b.iter().all(|v| *v < COLLAPSED);
            out.push(format!(
                "{l}, {when}: the last block's rank1 is {:.3} at depth {lo} and {:.3} at depth {hi}{}.",
                mean(&a),
                mean(&b),
                if collapsed {
                    format!(": at depth {hi} the tokens have **collapsed toward one vector** (every run below {COLLAPSED})")
                } else {
                    String::new()
                }
            ));
        }
    }
    out
}

/// The top block's FFN gradient at step 0 against depth, fitted as a
/// power law, beside Xiong et al.'s exponent.
fn theory_words(groups: &[String], depths: &[u32], readings: &Readings) -> Vec<Block> {
    let mut lines = Vec::new();
    for layout in ["post-ln", "pre-ln"] {
        let Some(l) = Layout::of_variant(layout) else {
            continue;
        };
        let points: Vec<(f64, f64)> = depths
            .iter()
            .filter_map(|&d| {
                let v: Vec<f64> = groups
                    .iter()
                    .flat_map(|g| {
                        readings
                            .get(&(g.clone(), layout.to_owned(), d))
                            .into_iter()
                            .flatten()
                    })
                    .filter_map(|r| r.top_ffn)
                    .collect();
                (!v.is_empty()).then(|| (f64::from(d), v.iter().sum::<f64>() / v.len() as f64))
            })
            .collect();
        if let Some(fit) = log_log_slope(&points) {
            let values: Vec<String> = points
                .iter()
                .map(|(d, v)| format!("{v:.3} at {d}"))
                .collect();
            lines.push(format!(
                "{layout}: the top block's FFN ‖∇W‖ at step 0 is {} blocks, a fit of {}.",
                values.join(", "),
                exponent_words(l, fit)
            ));
        }
    }
    if lines.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading(
            3,
            "Theory: the top block's gradient against depth".to_owned(),
        ),
        Block::Para(
            "Xiong et al. (2020, Theorems 1 and 2) bound the last block's FFN weight gradient at \
             initialization by O(d√(ln d)) for post-LN, independent of the number of blocks L, and \
             by O(d√(ln d / L)) for pre-LN. These are scalings up to constants, not values: the \
             chart `top_ffn_gradient_vs_depth` draws them through the shallowest depth's \
             measurement, and the exponents below are fitted the same way to the measurements \
             (means over seeds and settings; step 0 precedes any update)."
                .to_owned(),
        ),
        Block::List(lines),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Xiong et al.'s Fig. 3 reading: every seed beyond the tolerance, or
    /// within it, or the seeds disagree.
    #[test]
    fn the_ffn_tilt_is_read_with_a_tolerance_every_seed() {
        assert_eq!(tilt(&[0.2, 0.3]), Some(Tilt::Grows));
        assert_eq!(tilt(&[-0.2, -0.3]), Some(Tilt::Shrinks));
        assert_eq!(tilt(&[0.05, -0.09]), Some(Tilt::Flat));
        assert_eq!(tilt(&[0.2, 0.05]), Some(Tilt::Mixed));
        assert_eq!(tilt(&[]), None);
        assert!((ffn_tilt(&[(0, 0.1), (1, 0.5), (2, 1.0)]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(ffn_tilt(&[(0, 0.1)]), None);
    }

    /// The sentence says whether the data are what Xiong et al. show, and
    /// never claims agreement for a layout that does not show it.
    #[test]
    fn fig3_names_agreement_only_where_both_layouts_show_it() {
        let w = fig3_words(18, &[0.3, 0.2], &[0.01, -0.02]).unwrap();
        assert!(w.contains("grows toward the output"), "{w}");
        assert!(w.contains(": as Xiong et al.'s Fig. 3 shows"), "{w}");
        let w = fig3_words(18, &[0.3, 0.2], &[-0.2, -0.3]).unwrap();
        assert!(w.contains("pre-LN not flat"), "{w}");
        let w = fig3_words(18, &[0.01, 0.02], &[0.0, 0.0]).unwrap();
        assert!(w.contains("post-LN does not grow"), "{w}");
        let w = fig3_words(18, &[-0.3, -0.2], &[0.3, 0.2]).unwrap();
        assert!(w.contains("not what Xiong"), "{w}");
        assert_eq!(fig3_words(18, &[], &[0.0]), None);
    }

    /// Paired by seed: worse or better only when every pair differs by
    /// more than the tolerance the same way; seeds without a pair are
    /// left out.
    #[test]
    fn errors_are_compared_paired_by_seed() {
        let a = [(0, 0.9), (1, 0.8)];
        assert_eq!(paired_words(&a, &[(0, 0.1), (1, 0.2)]), Some("worse than"));
        assert_eq!(paired_words(&[(0, 0.1), (1, 0.2)], &a), Some("better than"));
        assert_eq!(paired_words(&a, &[(0, 0.1), (1, 0.805)]), Some("tied with"));
        assert_eq!(paired_words(&a, &[(2, 0.1)]), None);
    }

    /// The warm-up claim: named only where post-LN is worse without the
    /// warm-up at every seed, and attributed to post-LN alone only where
    /// pre-LN without it trains and beats post-LN.
    #[test]
    fn the_warm_up_claim_needs_post_ln_worse_without_it_and_pre_ln_training() {
        let s = ["warmup 0", "warmup 200"];
        let stuck = [(0, 0.937), (1, 0.937)];
        let trained = [(0, 0.04), (1, 0.05)];
        let w = warmup_claim(18, s, [&stuck, &trained], &[(0, 0.07), (1, 0.02)], 0.706).unwrap();
        assert!(w.contains("**post-LN needs the warm-up**"), "{w}");
        let w = warmup_claim(18, s, [&stuck, &trained], &[(0, 0.93), (1, 0.93)], 0.706).unwrap();
        assert!(w.contains("not the post-LN-only need"), "{w}");
        assert_eq!(
            warmup_claim(18, s, [&trained, &stuck], &trained, 0.706),
            None
        );
        assert_eq!(
            warmup_claim(18, s, [&trained, &trained], &trained, 0.706),
            None
        );
    }

    /// An exponent agrees with Xiong et al.'s within the tolerance only.
    #[test]
    fn exponents_agree_within_the_tolerance() {
        assert!(exponent_words(Layout::PreLn, -0.4).contains("agrees"));
        assert!(exponent_words(Layout::PreLn, -0.1).contains("does not agree"));
        assert!(exponent_words(Layout::PostLn, 0.1).contains("agrees"));
        assert!(exponent_words(Layout::PostLn, -0.5).contains("does not agree"));
    }

    /// Rank collapse is named only where every run at the deepest depth
    /// is below the bar.
    #[test]
    fn collapse_is_named_only_below_the_bar_at_every_run() {
        let r = |seed, v: f64| Reading {
            seed,
            rank1: [Some(v), Some(v)],
            ..Reading::default()
        };
        let mut readings: Readings = BTreeMap::new();
        let key = |d| (String::new(), "plain".to_owned(), d);
        readings.insert(key(2), vec![r(0, 0.5), r(1, 0.4)]);
        readings.insert(key(18), vec![r(0, 0.05), r(1, 0.02)]);
        let groups = vec![String::new()];
        let layouts = vec!["plain".to_owned()];
        let w = collapse_words(&groups, &layouts, &[2, 18], &readings);
        assert_eq!(w.len(), 2);
        assert!(
            w[0].contains("0.450 at depth 2 and 0.035 at depth 18"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("collapsed toward one vector"), "{}", w[0]);
        readings.insert(key(18), vec![r(0, 0.05), r(1, 0.2)]);
        let w = collapse_words(&groups, &layouts, &[2, 18], &readings);
        assert!(!w[0].contains("collapsed"), "{}", w[0]);
    }
}
