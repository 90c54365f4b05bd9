//! "What the numbers show": error against depth per variant, each twin against
//! plain paired by seed, and why a net failed (diverged, stalled, vanishing).

use super::gradients::{gradient_run, group_readings, pick};
use super::{cfg_str, pct};
use crate::analysis::{
    depth_trend, effective_lr_spreads, scale_free_readings, stalled, twins_identical, DepthTrend,
    Trend, RISE_TOL, STALL_FALL, STALL_SHARE, VANISH_SPREAD,
};
use crate::page::Block;
use crate::runs::{GradientEnds, Loaded, RunEntry};
use crate::verdict::{
    correlated_layer, depth_axis, failure, mechanism, paired, twin_reading, twin_summary, Failure,
    Mechanism, Outcome, Paired, Signals, TwinReading, CORRELATED_GAP, PAIRED_TEST,
};

/// What the error columns measure, in words that fit the task.
fn error_words(loaded: &Loaded) -> &'static str {
    if cfg_str(loaded.config(), "/task") == Some("identity") {
        "final relative reconstruction error ‖f(x) − x‖²/‖x‖² on the training set"
    } else {
        "final training error"
    }
}

fn trend_sentence(t: &DepthTrend, what: &str) -> String {
    let (d0, s0) = t.shallowest();
    let (d1, s1) = t.deepest();
    let v = &t.variant;
    let diff = 100.0 * t.rise;
    // A line through more than two depths names the axis it was fitted
    // against: the depths' positions in the sweep, which for power-of-two
    // depths is log2 depth.
    let fitted = if t.points.len() > 2 {
        let depths: Vec<u32> = t.points.iter().map(|p| p.0).collect();
        format!(
            " on the least-squares line through every depth's mean, against {}",
            depth_axis(&depths)
        )
    } else {
        String::new()
    };
    match t.trend {
        Trend::Rises => format!(
            "**{v}** nets' {what} rises with depth: {}% at depth {d0} → {}% at depth {d1} ({diff:+.2} points{fitted}{}).",
            pct(s0.mean),
            pct(s1.mean),
            if t.points.len() > 2 {
                if t.monotonic {
                    "; rising at every depth in between"
                } else {
                    "; not at every depth in between"
                }
            } else {
                ""
            }
        ),
        Trend::Flat => format!(
            "**{v}** nets' {what} does not change with depth beyond the noise: {}% at depth {d0}, {}% at depth {d1} ({diff:+.2} points{fitted}; changes within ±{:.2} points count as none).",
            pct(s0.mean),
            pct(s1.mean),
            100.0 * t.tolerance
        ),
        Trend::Falls => format!(
            "**{v}** nets' {what} falls with depth: {}% at depth {d0} → {}% at depth {d1} ({diff:+.2} points{fitted}).",
            pct(s0.mean),
            pct(s1.mean)
        ),
    }
}

/// Every shortcut twin (each variant but plain) against plain at every
/// depth where both have completed runs and they are not one network,
/// paired by seed ([`paired`]).
fn twin_comparisons(loaded: &Loaded) -> Vec<(String, Vec<Paired>)> {
    let family = cfg_str(loaded.config(), "/model/family").unwrap_or("mlp");
    let error_of = |e: &RunEntry| {
        e.is_completed()
            .then(|| e.record.as_ref()?.final_metrics.train_error)
            .flatten()
            .filter(|v| v.is_finite())
    };
    loaded
        .variants()
        .into_iter()
        .filter(|v| v != "plain")
        .map(|twin| {
            let depths = loaded
                .depths()
                .into_iter()
                .filter(|&d| !twins_identical(family, d))
                .filter_map(|d| {
                    let plain = loaded.group("plain", d);
                    let pairs: Vec<(f64, f64)> = loaded
                        .group(&twin, d)
                        .into_iter()
                        .filter_map(|t| {
                            let p = plain.iter().find(|p| p.seed == t.seed)?;
                            Some((error_of(p)?, error_of(t)?))
                        })
                        .collect();
                    paired(d, &pairs)
                })
                .collect();
            (twin, depths)
        })
        .filter(|(_, d): &(String, Vec<Paired>)| !d.is_empty())
        .collect()
}

/// The variants with diverged runs, each with `depth (k of n seeds, at
/// step s…)` per depth, in the experiment's order.
fn diverged_groups(loaded: &Loaded) -> Vec<(String, Vec<String>)> {
    loaded
        .variants()
        .into_iter()
        .filter_map(|v| {
            let cells: Vec<String> = loaded
                .depths()
                .into_iter()
                .filter_map(|d| {
                    let group = loaded.group(&v, d);
                    let steps: Vec<String> = group
                        .iter()
                        .filter(|e| e.status() == "diverged")
                        .map(|e| {
                            e.record
                                .as_ref()
                                .and_then(|r| r.diverged_at_step)
                                .map_or("?".into(), |s| s.to_string())
                        })
                        .collect();
                    (!steps.is_empty()).then(|| {
                        format!(
                            "{d} ({} of {} seeds, at step {})",
                            steps.len(),
                            group.len(),
                            steps.join(", ")
                        )
                    })
                })
                .collect();
            (!cells.is_empty()).then_some((v, cells))
        })
        .collect()
}

/// What the probe shows of (variant, depth): the medians over its
/// completed seeds of the dL/dh and forward spreads (run.json), and for
/// BatchNorm nets the scale-free and effective-lr spreads of its first
/// completed seed (gradients.csv, where it is kept).
pub(crate) fn signals(loaded: &Loaded, variant: &str, depth: u32) -> Signals {
    let ends = group_readings(loaded, variant, depth);
    let med = |f: fn(&GradientEnds) -> Option<f64>| gradscope_format::decay::median(pick(&ends, f));
    let batchnorm = loaded.setting("norm").as_deref() == Some("batchnorm");
    let mut s = Signals {
        batchnorm,
        backward: [med(|g| g.spread_init), med(|g| g.spread_final)],
        forward: [
            med(|g| g.forward_spread_init),
            med(|g| g.forward_spread_final),
        ],
        ..Signals::default()
    };
    // c at step 0, where activations.csv has it: inputs indistinguishable
    // by some trunk layer is forward collapse (`verdict::correlated_layer`).
    s.correlated_at = super::forward::step0_correlation(loaded, variant, depth)
        .and_then(|c| correlated_layer(&c));
    if batchnorm {
        let run = gradient_run(loaded, variant, depth).and_then(|e| loaded.csv_run(&e.name));
        if let Some(run) = run {
            s.scale_free_end = scale_free_readings(run).and_then(|r| r.spread_final);
            if let Some((at0, end)) = effective_lr_spreads(run) {
                s.effective_lr = [at0, end];
            }
        }
    }
    s
}

/// The verdict sentence on the plain nets' failure to fit.
fn failure_sentence(
    f: &Failure,
    what: &str,
    plain: &DepthTrend,
    mechanisms: &[(u32, Mechanism)],
) -> String {
    // Each mechanism once, with its depths and where it comes from.
    let named = |shown: &[(u32, Mechanism)]| -> (String, String) {
        let mut by: Vec<(Mechanism, Vec<String>)> = Vec::new();
        for (d, m) in shown {
            match by.iter_mut().find(|(k, _)| k == m) {
                Some((_, ds)) => ds.push(d.to_string()),
                None => by.push((*m, vec![d.to_string()])),
            }
        }
        let names: Vec<String> = by
            .iter()
            .map(|(m, ds)| format!("{} at depth {}", m.describe(), ds.join(", ")))
            .collect();
        let collapse = "forward collapse: the inputs become indistinguishable to the layers above (Poole et al. 2016; Schoenholz et al. 2017)";
        let mut sources: Vec<&str> = Vec::new();
        for (m, _) in &by {
            let these: Vec<&str> = match m {
                Mechanism::Vanishing { forward_collapse } => {
                    let mut v = vec!["the vanishing gradient (Hochreiter 1991; Bengio, Simard & Frasconi 1994)"];
                    if *forward_collapse {
                        v.push(collapse);
                    }
                    v
                }
                Mechanism::ForwardCollapse => vec![collapse],
                Mechanism::Exploding => vec!["the exploding gradient (Pascanu et al. 2013)"],
                Mechanism::ExplodingThenFrozen | Mechanism::Frozen => vec!["an effective learning rate that collapses at the bottom (Philipp et al. 2018, \"The exploding gradient problem demystified\")"],
                _ => vec![],
            };
            for t in these {
                if !sources.contains(&t) {
                    sources.push(t);
                }
            }
        }
        (names.join("; "), sources.join(", and "))
    };
    match f {
        Failure::NoRise(shown) if !shown.is_empty() => {
            let (names, sources) = named(shown);
            format!(
                "Plain {what} does not rise with depth beyond the noise here, so this sweep shows no degradation; the probe shows {names} in the plain nets, that is {sources}."
            )
        }
        Failure::NoRise(_) => format!(
            "**This experiment does not show the expected effect**: plain {what} does not rise with depth by more than {:.2} points here, and the plain nets' gradients stay healthy. With this budget (steps, data, seeds) the deeper plain nets keep up; He et al.'s gap opens over tens of thousands of iterations.",
            100.0 * plain.tolerance
        ),
        Failure::Explained(shown) => {
            let (names, sources) = named(shown);
            // Depths deeper than the shallowest whose error rose without a
            // mechanism past the bars are said, not explained away.
            let unnamed: Vec<String> = plain
                .points
                .iter()
                .skip(1)
                .filter(|(d, s)| {
                    s.mean - plain.shallowest().1.mean > plain.tolerance
                        && mechanisms
                            .iter()
                            .any(|(md, m)| md == d && *m == Mechanism::Healthy)
                })
                .map(|(d, _)| d.to_string())
                .collect();
            let rest = if unnamed.is_empty() {
                String::new()
            } else {
                format!(
                    " At depth {}, where the error also rose, no reading passes the {VANISH_SPREAD:.0}-decade bars: what raises it there is not named by these readings.",
                    unnamed.join(", ")
                )
            };
            format!(
                "The deeper plain nets fit their training set worse, and the probe shows why: {names}. He et al. (2016) define the degradation problem as the failure that is *not* caused by vanishing gradients, so **this is not degradation**: it is {sources}.{rest}"
            )
        }
        Failure::Mixed => "The plain nets' error rises with depth and the probe names no mechanism for it, but a shortcut twin is worse than plain beyond the tolerance at some depth (above), or diverged, so **the comparison is mixed** and this experiment does not show He et al.'s degradation problem cleanly.".to_owned(),
        Failure::Degradation => "**This is the degradation problem of He et al. (2016)**: the deeper plain nets fit their own training set worse while their gradient and forward signal stay within two decades over the trunk (no vanishing, exploding or collapse), and no shortcut twin is worse than plain beyond the tolerance at any depth.".to_owned(),
        Failure::Unmeasured => "Plain error rises with depth, but the readings that tell degradation from a vanishing or frozen gradient are not in these files for every depth (for BatchNorm nets they come from the per-run gradients.csv, which is not published), so neither a mechanism nor degradation is named: rerun the experiment to get them.".to_owned(),
    }
}

/// Twin runs whose training loss stopped falling far from a fit, as
/// `(run, depth, first loss, last loss)`: only where that twin is worse
/// than plain at that depth by the paired rule, since a run that ends
/// tied with its plain twin, or better, cannot pass for a shortcut that
/// does not help.
fn stalled_twins(loaded: &Loaded, twins: &[(String, Vec<Paired>)]) -> Vec<(String, u32, f64, f64)> {
    let worse = |v: &str, d: u32| {
        twins.iter().any(|(t, ps)| {
            t == v
                && ps
                    .iter()
                    .any(|p| p.depth == d && p.outcome == Outcome::Worse)
        })
    };
    loaded
        .entries
        .iter()
        .filter(|e| e.variant != "plain" && e.is_completed() && worse(&e.variant, e.depth))
        .filter_map(|e| {
            let (first, last) = stalled(loaded.csv_run(&e.name)?)?;
            Some((e.name.clone(), e.depth, first, last))
        })
        .collect()
}

pub(crate) fn findings(loaded: &Loaded) -> Vec<Block> {
    vec![
        Block::Heading(2, "What the numbers show".to_owned()),
        Block::Para(sentences(loaded).join(" ")),
        Block::Para(rules()),
    ]
}

/// The verdicts in page order: each variant's error against depth, each
/// twin against plain, what diverged, why the plain nets failed (or that
/// they did not), and the twins that did not converge.
fn sentences(loaded: &Loaded) -> Vec<String> {
    let what = error_words(loaded);
    let family = cfg_str(loaded.config(), "/model/family").unwrap_or("mlp");
    let trends: Vec<DepthTrend> = loaded
        .variants()
        .iter()
        .filter_map(|v| depth_trend(loaded, v))
        .collect();
    let twins = twin_comparisons(loaded);
    let mut para: Vec<String> = Vec::new();
    if trends.is_empty() {
        para.push(
            "Fewer than two depths have completed runs, so there is no depth comparison."
                .to_owned(),
        );
    }
    let same: Vec<String> = loaded
        .depths()
        .into_iter()
        .filter(|&d| twins_identical(family, d))
        .map(|d| d.to_string())
        .collect();
    if !same.is_empty() && !trends.is_empty() {
        para.push(format!(
            "At depth {} the plain net and its residual twin are one network (no hidden layer for a shortcut to skip), so that depth is left out of the comparison.",
            same.join(", ")
        ));
    }
    para.extend(trends.iter().map(|t| trend_sentence(t, what)));
    para.extend(twins.iter().filter_map(|(t, ps)| twin_summary(t, ps)));
    let diverged = diverged_groups(loaded);
    para.extend(diverged.iter().map(|(v, cells)| {
        format!(
            "**{v} diverged** (its loss or a gradient became NaN or infinite, and the run stopped) at depth {}.",
            cells.join(", ")
        )
    }));
    // A twin that diverged at a depth where plain trained is worse there.
    let twin_diverged = diverged.iter().any(|(v, _)| v != "plain");
    let mixed = twin_diverged
        || twins.iter().any(|(_, ps)| {
            matches!(
                twin_reading(ps),
                Some(TwinReading::Mixed | TwinReading::Worse)
            )
        });
    match trends.iter().find(|t| t.variant == "plain") {
        Some(p) => {
            let mechanisms: Vec<(u32, Mechanism)> = p
                .points
                .iter()
                .map(|(d, _)| (*d, mechanism(&signals(loaded, "plain", *d))))
                .collect();
            let f = failure(p.trend == Trend::Rises, &mechanisms, mixed);
            para.push(failure_sentence(&f, what, p, &mechanisms));
        }
        None if twins.is_empty() && !trends.is_empty() => para.push(
            "The experiment does not have both a plain net and a shortcut twin, so the shortcut's effect is not measured here.".to_owned(),
        ),
        None => {}
    }
    para.extend(super::forward::collapse_sentence(loaded));
    for (name, _, first, last) in stalled_twins(loaded, &twins) {
        para.push(format!(
            "**{name} did not converge**: its training loss stopped falling at {last:.3} (from {first:.3}) while it is worse than its plain twin, so at that depth this run says nothing about the shortcut; a smaller lr or more steps would tell."
        ));
    }
    para
}

/// The rules the verdicts follow, with their thresholds.
fn rules() -> String {
    format!(
        "(Rules: a change of error with depth counts when it exceeds {:.0} point or the end depths' seed spreads added, on the least-squares line through every depth's mean; a twin is compared with plain {PAIRED_TEST}; a mechanism is read on the probe: a vanishing gradient where dL/dh falls more than {VANISH_SPREAD:.0} decades over the trunk toward the input (BatchNorm nets: ‖∇W‖·‖W‖), forward collapse where √q falls that much toward the output or where c, the correlation between two inputs' pre-activations, comes within {CORRELATED_GAP:.0e} of 1 at some trunk layer at step 0, exploding where dL/dh grows that much, exploding then frozen where a BatchNorm net's effective lr lr·‖∇W‖/‖W‖ is that much higher at the bottom at step 0 and that much lower at the end; degradation is named only where the plain error rises, no plain depth shows a mechanism and no twin is worse; a run that did not converge is one whose training loss fell by under {:.0}% over its last quarter while still above {:.0}% of where it began, named only where it is worse than its plain twin.)",
        100.0 * RISE_TOL,
        100.0 * STALL_FALL,
        100.0 * STALL_SHARE
    )
}

#[cfg(test)]
mod tests {
    use super::{failure_sentence, findings, trend_sentence};
    use crate::analysis::{DepthTrend, Stat, Trend};
    use crate::page::Block;
    use crate::sections::fixture::loaded;
    use crate::verdict::{Failure, Mechanism};
    use serde_json::{json, Value};

    fn trend(points: &[(u32, f64)], trend: Trend, monotonic: bool) -> DepthTrend {
        let points: Vec<(u32, Stat)> = points
            .iter()
            .map(|&(d, mean)| {
                (
                    d,
                    Stat {
                        mean,
                        std: None,
                        n: 1,
                    },
                )
            })
            .collect();
        let rise = points[points.len() - 1].1.mean - points[0].1.mean;
        DepthTrend {
            variant: "plain".to_owned(),
            points,
            rise,
            tolerance: 0.01,
            trend,
            monotonic,
        }
    }

    /// A trend through more than two depths is a least-squares line, and the
    /// sentence names the axis it was fitted against (`verdict::depth_axis`)
    /// and whether the rise holds at every depth in between
    /// (`DepthTrend::monotonic`); through two depths it is their difference
    /// and says neither.
    #[test]
    fn trend_sentence_names_the_fitted_axis_only_for_a_line() {
        let two = trend_sentence(
            &trend(&[(8, 0.10), (32, 0.20)], Trend::Rises, true),
            "error",
        );
        assert_eq!(
            two,
            "**plain** nets' error rises with depth: 10.00% at depth 8 → 20.00% at depth 32 (+10.00 points)."
        );
        let line = trend(&[(8, 0.10), (16, 0.30), (32, 0.20)], Trend::Rises, false);
        let line = trend_sentence(&line, "error");
        assert!(line.contains("against log2 depth"), "{line}");
        assert!(line.contains("not at every depth in between"), "{line}");
        let flat = trend_sentence(
            &trend(&[(8, 0.10), (32, 0.105)], Trend::Flat, true),
            "error",
        );
        assert!(
            flat.contains("does not change with depth beyond the noise")
                && flat.contains("changes within ±1.00 points count as none"),
            "{flat}"
        );
        let falls = trend_sentence(&trend(&[(8, 0.3), (32, 0.1)], Trend::Falls, true), "error");
        assert!(
            falls.contains("falls with depth") && falls.contains("(-20.00 points)"),
            "{falls}"
        );
    }

    const VANISHING: Mechanism = Mechanism::Vanishing {
        forward_collapse: false,
    };

    /// He et al. (2016) call degradation the failure of deeper plain nets
    /// to fit that is *not* caused by vanishing gradients: where the probe
    /// names a mechanism the sentence says "not degradation" and cites the
    /// mechanism's source; degradation is named only as its own verdict.
    #[test]
    fn a_named_mechanism_is_not_degradation() {
        let plain = trend(&[(8, 0.10), (32, 0.40)], Trend::Rises, true);
        let vanishing = failure_sentence(
            &Failure::Explained(vec![(32, VANISHING)]),
            "error",
            &plain,
            &[(8, Mechanism::Healthy), (32, VANISHING)],
        );
        assert!(
            vanishing.contains("**this is not degradation**")
                && vanishing.contains("vanishing gradient at depth 32")
                && vanishing.contains("Hochreiter 1991; Bengio, Simard & Frasconi 1994")
                && !vanishing.contains("Poole"),
            "{vanishing}"
        );
        let collapse = failure_sentence(
            &Failure::Explained(vec![(
                32,
                Mechanism::Vanishing {
                    forward_collapse: true,
                },
            )]),
            "error",
            &plain,
            &[],
        );
        assert!(collapse.contains("Poole et al. 2016"), "{collapse}");
        let frozen = failure_sentence(
            &Failure::Explained(vec![(32, Mechanism::ExplodingThenFrozen)]),
            "error",
            &plain,
            &[],
        );
        assert!(frozen.contains("Philipp et al. 2018"), "{frozen}");
        let degradation = failure_sentence(&Failure::Degradation, "error", &plain, &[]);
        assert!(
            degradation.starts_with("**This is the degradation problem of He et al. (2016)**"),
            "{degradation}"
        );
    }

    /// A depth whose error rose past the tolerance while its readings are
    /// healthy is said to be unexplained, not folded into the mechanism
    /// named at another depth.
    #[test]
    fn a_rise_without_a_mechanism_is_left_unexplained() {
        let plain = trend(&[(8, 0.10), (16, 0.30), (32, 0.40)], Trend::Rises, true);
        let said = failure_sentence(
            &Failure::Explained(vec![(32, VANISHING)]),
            "error",
            &plain,
            &[
                (8, Mechanism::Healthy),
                (16, Mechanism::Healthy),
                (32, VANISHING),
            ],
        );
        assert!(
            said.contains(
                "At depth 16, where the error also rose, no reading passes the 2-decade bars"
            ),
            "{said}"
        );
        let flat = trend(&[(8, 0.10), (32, 0.105)], Trend::Flat, true);
        let none = failure_sentence(&Failure::NoRise(vec![]), "error", &flat, &[]);
        assert!(
            none.starts_with("**This experiment does not show the expected effect**")
                && none.contains("by more than 1.00 points"),
            "{none}"
        );
        let shown = failure_sentence(&Failure::NoRise(vec![(32, VANISHING)]), "error", &flat, &[]);
        assert!(
            shown.contains("shows no degradation; the probe shows vanishing gradient at depth 32"),
            "{shown}"
        );
    }

    fn run(error: f64, spread: f64) -> Value {
        json!({
            "final": {"train_error": error},
            "gradient_ends": {"spread_init": spread, "spread_final": spread}
        })
    }

    /// The findings paragraph: the plain nets' error rises with depth
    /// and the deepest one's gradient falls 5 decades (past the 2-decade
    /// bar), so the failure is named vanishing, not degradation; a
    /// residual twin that diverged where plain trained makes the
    /// comparison mixed, and is named.
    #[test]
    fn the_paragraph_names_the_mechanism_and_a_diverged_twin() {
        let config = json!({"model": {"family": "mlp"}, "variants": ["plain", "residual"]});
        let mut runs = vec![
            ("plain", 4, 0, run(0.10, 0.5)),
            ("plain", 4, 1, run(0.11, 0.5)),
            ("plain", 16, 0, run(0.50, 5.0)),
            ("plain", 16, 1, run(0.52, 5.0)),
            ("residual", 4, 0, run(0.10, 0.2)),
            ("residual", 4, 1, run(0.10, 0.2)),
            ("residual", 16, 0, run(0.09, 0.3)),
            ("residual", 16, 1, run(0.10, 0.3)),
        ];
        let blocks = findings(&loaded(&config, runs.clone()));
        let Block::Para(text) = &blocks[1] else {
            panic!("{blocks:?}")
        };
        assert!(
            text.contains("**plain** nets' final training error rises with depth"),
            "{text}"
        );
        assert!(text.contains("**this is not degradation**"), "{text}");
        assert!(!text.contains("diverged"), "{text}");
        // Healthy plain gradients, and a residual twin that diverged.
        for r in &mut runs[2..4] {
            r.3["gradient_ends"] = json!({"spread_init": 0.5, "spread_final": 0.5});
        }
        runs[7].3 = json!({"status": "diverged", "diverged_at_step": 40});
        let blocks = findings(&loaded(&config, runs));
        let Block::Para(text) = &blocks[1] else {
            panic!("{blocks:?}")
        };
        assert!(
            text.contains("**residual diverged** (its loss or a gradient became NaN or infinite, and the run stopped) at depth 16 (1 of 2 seeds, at step 40)."),
            "{text}"
        );
        assert!(text.contains("**the comparison is mixed**"), "{text}");
    }
}
