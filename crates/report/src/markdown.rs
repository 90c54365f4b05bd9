//! The text of report.md. Every number comes from the results directory;
//! the only numbers written in here are He et al.'s (marked as theirs).

use gradscope_format::files::PLOTS_DIR;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use gradscope_format::names::{path, SWEPT_FIELDS};

use gradscope_plot::CHART_NAMES;
use serde_json::Value;

use crate::analysis::{
    completed, depth_trend, effective_lr_spreads, flow, gradient_spread, layer_rows,
    scale_free_readings, stalled, stat, test_error, train_error, twins_identical, DepthTrend, Stat,
    Trend, RISE_TOL, STALL_FALL, STALL_SHARE, VANISH_SPREAD,
};
use crate::runs::{sweep_label, GradientEnds, Loaded, RunEntry};
use crate::verdict::{
    depth_axis, failure, mechanism, paired, ranked_pair, twin_reading, twin_summary, Failure,
    Mechanism, Outcome, Paired, Signals, TwinReading, PAIRED_TEST,
};

/// He et al. 2016, Table 6: CIFAR-10 test error (%) of their ResNets.
pub(crate) const HE_TABLE6_RESNET: [(u32, f64); 5] =
    [(20, 8.75), (32, 7.51), (44, 7.17), (56, 6.97), (110, 6.43)];

/// A saturated fraction below this (half a percent) counts as none: the
/// report does not rank layers by noise.
const SAT_NONE: f64 = 0.005;

/// Experiments that a make target reruns (and publishes).
const MAKE_TARGETS: [(&str, &str); 3] = [
    ("fashion-", "make fashion"),
    ("glorot-", "make glorot"),
    ("landscape", "make landscape"),
];

fn pct(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

/// `12.34 ± 0.56` (percent), or `12.34` for one seed, or `—`.
fn pct_stat(s: Option<Stat>) -> String {
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
fn sci(v: f64) -> String {
    if v == 0.0 {
        "0 (exactly 0 in float32)".into()
    } else {
        format!("{v:.1e}")
    }
}

/// A wall time: milliseconds below a second (tiny runs would all read
/// "0 s"), one decimal below ten seconds, minutes from two minutes on.
fn seconds(s: f64) -> String {
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

fn cfg_str<'a>(config: Option<&'a Value>, pointer: &str) -> Option<&'a str> {
    config
        .and_then(|c| c.pointer(pointer))
        .and_then(Value::as_str)
}

pub(crate) fn render(root: &Path, loaded: &Loaded, problems: &[String]) -> String {
    let mut md = String::new();
    header(&mut md, root, loaded);
    let groups = loaded.sweep_groups();
    if groups.len() == 1 {
        sections(&mut md, loaded, problems);
    } else {
        // A swept experiment: the groups side by side first, then every
        // section once per group, comparing the variants and depths within
        // it (the runs of one group share every setting but depth and
        // variant, as an unswept experiment's do).
        sweep_comparison(&mut md, loaded, &groups);
        for g in &groups {
            let part = loaded.only(g);
            let names: Vec<String> = part
                .entries
                .iter()
                .map(|e| format!("{}: ", e.name))
                .collect();
            let own: Vec<String> = problems
                .iter()
                .filter(|p| names.iter().any(|n| p.starts_with(n.as_str())))
                .cloned()
                .collect();
            let mut section = String::new();
            sections(&mut section, &part, &own);
            mdln!(md, "## {}", sweep_label(g));
            mdln!(md);
            // One heading level down, under the group's own.
            for l in section.lines() {
                if l.starts_with('#') {
                    mdln!(md, "#{l}");
                } else {
                    mdln!(md, "{l}");
                }
            }
        }
    }
    crate::landscape::section(&mut md, root);
    charts(&mut md, root);
    md
}

/// The sections that compare the variants and depths of one set of runs.
fn sections(md: &mut String, loaded: &Loaded, problems: &[String]) {
    runs_table(md, loaded, problems);
    findings(md, loaded);
    gradients(md, loaded);
    paper(md, loaded);
    glorot(md, loaded);
}

/// The groups of a swept experiment side by side: per variant and depth,
/// each group's final train error and gradient readings, and which group
/// trains best and keeps the gradient most even, with the seeds' spread.
fn sweep_comparison(md: &mut String, loaded: &Loaded, groups: &[BTreeMap<String, String>]) {
    let fields: Vec<&str> = SWEPT_FIELDS
        .into_iter()
        .filter(|f| groups.iter().any(|g| g.contains_key(*f)))
        .collect();
    mdln!(md, "## Across the sweep");
    mdln!(md);
    mdln!(
        md,
        "The experiment sweeps {}: every combination is run, and the sections below repeat the \
         report for each one. Here they are side by side: final train error in percent and the \
         decay per layer of dL/dh (decades per layer, positive when the gradient shrinks toward \
         the input; see \"Gradients: decay per layer\" below), mean ± std over completed seeds.",
        fields
            .iter()
            .map(|f| format!("`{}`", path(f)))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    mdln!(md);
    mdln!(
        md,
        "| variant | depth | {} | seeds | final train error % | decay at init | decay at end | spread at init |",
        fields.join(" | ")
    );
    mdln!(
        md,
        "|---|---|{}---|---|---|---|---|",
        "---|".repeat(fields.len())
    );
    let mut verdicts = Vec::new();
    for variant in loaded.variants() {
        for depth in loaded.depths() {
            let mut rows: Vec<(String, Option<Stat>, Vec<f64>)> = Vec::new();
            for g in groups {
                let part = loaded.only(g);
                let group = part.group(&variant, depth);
                if group.is_empty() {
                    continue;
                }
                let done = group.iter().filter(|e| e.is_completed()).count();
                let train = completed(&group, train_error);
                let ends = group_readings(&part, &variant, depth);
                let decay_init = pick(&ends, |g| g.decay_init);
                let values: Vec<String> = fields
                    .iter()
                    .map(|f| g.get(*f).cloned().unwrap_or_default())
                    .collect();
                mdln!(
                    md,
                    "| {variant} | {depth} | {} | {} | {} | {} | {} | {} |",
                    values.join(" | "),
                    done,
                    pct_stat(train),
                    decades_stat(&decay_init),
                    decades_stat(&pick(&ends, |g| g.decay_final)),
                    decades_stat(&pick(&ends, |g| g.spread_init)),
                );
                rows.push((sweep_label(g), train, decay_init));
            }
            if rows.len() > 1 {
                verdicts.push(sweep_verdict(&variant, depth, &rows));
            }
        }
    }
    mdln!(md);
    for v in verdicts {
        mdln!(md, "- {v}");
    }
    mdln!(md);
}

/// One sentence per variant and depth: which group trained best, and
/// whether its lead is beyond the seeds' spread; which group's gradient
/// was most even at initialization.
fn sweep_verdict(variant: &str, depth: u32, rows: &[(String, Option<Stat>, Vec<f64>)]) -> String {
    let mut out = format!("{variant} d{depth}: ");
    let mut trained: Vec<(&str, Stat)> = rows
        .iter()
        .filter_map(|(label, s, _)| s.map(|s| (label.as_str(), s)))
        .collect();
    trained.sort_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
    match trained.as_slice() {
        [best, next, ..] => {
            // A lead counts as the twin gaps do: beyond 1 point and the two
            // groups' seed spreads added (one seed has no spread).
            let spread = best.1.std.unwrap_or(0.0) + next.1.std.unwrap_or(0.0);
            let tolerance = spread.max(RISE_TOL);
            let gap = next.1.mean - best.1.mean;
            let seeds = if best.1.std.is_some() && next.1.std.is_some() {
                ""
            } else {
                "; one seed each: no spread"
            };
            if gap > tolerance {
                out += &format!(
                    "lowest final train error with {} ({}%), {} points below {} ({}%), beyond the \
                     tolerance of {} points (1 point or the seeds' spreads added){seeds}",
                    best.0,
                    pct(best.1.mean),
                    pct(gap),
                    next.0,
                    pct(next.1.mean),
                    pct(tolerance)
                );
            } else {
                out += &format!(
                    "no lead in final train error: {} {}% and {} {}%, {} points apart, within the \
                     tolerance of {} points (1 point or the seeds' spreads added){seeds}",
                    best.0,
                    pct(best.1.mean),
                    next.0,
                    pct(next.1.mean),
                    pct(gap),
                    pct(tolerance)
                );
            }
        }
        _ => out += "fewer than two groups completed",
    }
    let mut even: Vec<(&str, Stat)> = rows
        .iter()
        .filter_map(|(label, _, d)| stat(d.iter().map(|v| Some(*v))).map(|s| (label.as_str(), s)))
        .collect();
    even.sort_by(|a, b| a.1.mean.abs().total_cmp(&b.1.mean.abs()));
    if let [most, .., least] = even.as_slice() {
        // Two readings within 0.01 decades (what the table shows) or the
        // seeds' spreads added tie: the report does not rank them.
        let tolerance = 0.01f64.max(most.1.std.unwrap_or(0.0) + least.1.std.unwrap_or(0.0));
        match ranked_pair((most.0, most.1.mean), (least.0, least.1.mean), tolerance) {
            Some((lo, hi)) => {
                out += &format!(
                    "; the gradient at initialization is most even with {} ({} decades per layer) and \
                     least with {} ({})",
                    lo.0,
                    decades(lo.1),
                    hi.0,
                    decades(hi.1)
                )
            }
            None => {
                out += &format!(
                    "; the gradient at initialization is as even with {} ({} decades per layer) as with \
                     {} ({}): a tie within {:.2} decades per layer",
                    most.0,
                    decades(most.1.mean),
                    least.0,
                    decades(least.1.mean),
                    tolerance
                )
            }
        }
    }
    out + "."
}

fn header(md: &mut String, root: &Path, loaded: &Loaded) {
    let record = loaded.first_record();
    let config = loaded.config();
    let dir_name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string());
    let name = record
        .and_then(|r| r.experiment.clone())
        .or_else(|| cfg_str(config, "/name").map(str::to_owned))
        .unwrap_or(dir_name);
    mdln!(md, "# Report: {name}");
    mdln!(md);
    mdln!(
        md,
        "Written by `gradscope report` from the files in `{}`. Every number is \
         ours unless it is marked as He et al.'s.",
        root.display()
    );
    mdln!(md);
    if let Some(d) = cfg_str(config, "/description").filter(|d| !d.is_empty()) {
        mdln!(md, "> {d}");
        mdln!(md);
    }
    let file = record.and_then(|r| r.experiment_file.clone());
    match &file {
        Some(f) => mdln!(md, "- Experiment file: `{f}`"),
        None => mdln!(
            md,
            "- Experiment file: not recorded in run.json; the resolved experiment \
             is the `config` field of any `runs/RUN/run.json`"
        ),
    }
    if let Some(c) = config {
        let model = c.get("model");
        let get = |k: &str| model.and_then(|m| m.get(k)).map(short_json);
        let fields: Vec<String> = ["family", "width", "activation", "norm", "init", "shortcut"]
            .iter()
            .filter_map(|k| get(k).map(|v| format!("{k} {v}")))
            .collect();
        mdln!(md, "- Model: {}", fields.join(", "));
        if let Some(ds) = c.get("dataset") {
            mdln!(md, "- Dataset: {}", short_json(ds));
        }
        if let Some(t) = c.get("train") {
            mdln!(md, "- Training: {}", short_json(t));
        }
    }
    if let Some(r) = record {
        mdln!(
            md,
            "- Device: {} with {} threads",
            r.device.as_deref().unwrap_or("?"),
            r.threads.map_or("?".into(), |t| t.to_string())
        );
    }
    mdln!(md);
    mdln!(md, "Rerun:");
    mdln!(md);
    mdln!(md, "```sh");
    let file = file.unwrap_or_else(|| format!("experiments/{name}.json"));
    mdln!(md, "gradscope run {file} --out {}", root.display());
    mdln!(md, "gradscope report {}", root.display());
    mdln!(md, "```");
    if let Some((_, target)) = MAKE_TARGETS.iter().find(|(p, _)| name.starts_with(p)) {
        mdln!(md);
        mdln!(
            md,
            "or `{target}`, which runs this experiment and its siblings and writes their reports."
        );
    }
    mdln!(md);
}

/// A JSON value on one line, strings without quotes; an object's null
/// fields (options left at "none") are left out.
fn short_json(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} {}", short_json(v)))
                .collect();
            parts.join(", ")
        }
        // A swept setting's list: `[pytorch-default, glorot]`.
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(short_json).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn runs_table(md: &mut String, loaded: &Loaded, problems: &[String]) {
    mdln!(md, "## Runs");
    mdln!(md);
    mdln!(
        md,
        "Final errors are full passes over each split after the last step (eval mode), \
         in percent, mean ± sample std over the completed seeds."
    );
    mdln!(md);
    mdln!(
        md,
        "| variant | depth | seeds | final train error % | final test error % | params | wall time per run | status |"
    );
    mdln!(md, "|---|---|---|---|---|---|---|---|");
    for variant in loaded.variants() {
        for depth in loaded.depths() {
            let group = loaded.group(&variant, depth);
            if group.is_empty() {
                continue;
            }
            let train = completed(&group, train_error);
            let test = completed(&group, test_error);
            let params = group
                .iter()
                .find_map(|e| e.record.as_ref().and_then(|r| r.params))
                .filter(|&p| p > 0)
                .map_or("—".into(), |p| p.to_string());
            let wall = stat(
                group
                    .iter()
                    .map(|e| e.record.as_ref().and_then(|r| r.elapsed_s)),
            )
            .map_or("—".into(), |s| seconds(s.mean));
            let seeds: Vec<String> = group.iter().map(|e| e.seed.to_string()).collect();
            mdln!(
                md,
                "| {variant} | {depth} | {} | {} | {} | {params} | {wall} | {} |",
                seeds.join(", "),
                pct_stat(train),
                pct_stat(test),
                status_cell(&group)
            );
        }
    }
    mdln!(md);
    if !problems.is_empty() {
        mdln!(md, "### Missing or unfinished");
        mdln!(md);
        mdln!(
            md,
            "These runs are in the table but left out of the means; rerun the experiment to complete them."
        );
        mdln!(md);
        for p in problems {
            mdln!(md, "- {p}");
        }
        mdln!(md);
    }
}

/// "3 completed" or "2 completed, 1 running".
fn status_cell(group: &[&RunEntry]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for e in group {
        match counts.iter_mut().find(|(s, _)| *s == e.status()) {
            Some((_, c)) => *c += 1,
            None => counts.push((e.status(), 1)),
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(s, c)| {
            if *s == "completed" {
                format!("{c} {s}")
            } else {
                format!("**{c} {s}**")
            }
        })
        .collect();
    parts.join(", ")
}

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
fn signals(loaded: &Loaded, variant: &str, depth: u32) -> Signals {
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

fn findings(md: &mut String, loaded: &Loaded) {
    mdln!(md, "## What the numbers show");
    mdln!(md);
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
    for (name, _, first, last) in stalled_twins(loaded, &twins) {
        para.push(format!(
            "**{name} did not converge**: its training loss stopped falling at {last:.3} (from {first:.3}) while it is worse than its plain twin, so at that depth this run says nothing about the shortcut; a smaller lr or more steps would tell."
        ));
    }
    mdln!(md, "{}", para.join(" "));
    mdln!(md);
    mdln!(
        md,
        "(Rules: a change of error with depth counts when it exceeds {:.0} point or the end depths' seed spreads added, on the least-squares line through every depth's mean; a twin is compared with plain {PAIRED_TEST}; a mechanism is read on the probe: a vanishing gradient where dL/dh falls more than {VANISH_SPREAD:.0} decades over the trunk toward the input (BatchNorm nets: ‖∇W‖·‖W‖), forward collapse where √q falls that much toward the output, exploding where dL/dh grows that much, exploding then frozen where a BatchNorm net's effective lr lr·‖∇W‖/‖W‖ is that much higher at the bottom at step 0 and that much lower at the end; degradation is named only where the plain error rises, no plain depth shows a mechanism and no twin is worse; a run that did not converge is one whose training loss fell by under {:.0}% over its last quarter while still above {:.0}% of where it began, named only where it is worse than its plain twin.)",
        100.0 * RISE_TOL,
        100.0 * STALL_FALL,
        100.0 * STALL_SHARE
    );
    mdln!(md);
}

/// The run whose gradient_ends stand for (variant, depth): smallest seed
/// among completed runs, else among any run that has them.
fn gradient_run<'a>(loaded: &'a Loaded, variant: &str, depth: u32) -> Option<&'a RunEntry> {
    let group = loaded.group(variant, depth);
    let has = |e: &&&RunEntry| {
        e.record
            .as_ref()
            .is_some_and(|r| r.gradient_ends.init_ratio().is_some())
    };
    group
        .iter()
        .filter(|e| e.is_completed())
        .find(has)
        .or_else(|| group.iter().find(has))
        .copied()
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or("—".into(), sci)
}

/// Decades, signed, two decimals (never `-0.00`); `∞` for an infinite
/// spread.
fn decades(v: f64) -> String {
    if v == f64::INFINITY {
        "∞ (first point exactly 0 in float32)".into()
    } else {
        format!("{:.2}", round2(v))
    }
}

/// `v` rounded to two decimals with the sign of a rounded zero dropped.
fn round2(v: f64) -> f64 {
    let r = (v * 100.0).round() / 100.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// `0.85 ± 0.01` over the seeds' readings (infinite values shown as such
/// when every seed has one), or `—`.
fn decades_stat(values: &[f64]) -> String {
    decades_stat_or(values, &decades(f64::INFINITY))
}

/// What an infinite forward fall means: the last trunk point's outputs
/// are the same for every example in float32 (q exactly 0).
const FORWARD_INF: &str = "∞ (last point identical across the batch in float32)";

/// The forward fall over the seeds, as [`decades_stat`] reads the spread.
fn forward_stat(values: &[f64]) -> String {
    decades_stat_or(values, FORWARD_INF)
}

/// [`decades_stat`] with `inf` for an infinite reading; where only some
/// seeds read infinite, the finite ones' mean and the count of the rest.
fn decades_stat_or(values: &[f64], inf: &str) -> String {
    let infinite = values.iter().filter(|v| **v == f64::INFINITY).count();
    if !values.is_empty() && infinite == values.len() {
        return inf.to_owned();
    }
    let finite = match stat(values.iter().map(|v| Some(*v))) {
        Some(Stat {
            mean,
            std: Some(sd),
            ..
        }) => format!("{:.2} ± {:.2}", round2(mean), round2(sd)),
        Some(s) => decades(s.mean),
        None => "—".into(),
    };
    if infinite > 0 {
        format!("{finite}; ∞ in {infinite} of {} seeds", values.len())
    } else {
        finite
    }
}

/// The readings of the completed runs (else of any run) of a group.
fn group_readings<'a>(loaded: &'a Loaded, variant: &str, depth: u32) -> Vec<&'a GradientEnds> {
    let group = loaded.group(variant, depth);
    let completed: Vec<&GradientEnds> = group
        .iter()
        .filter(|e| e.is_completed())
        .filter_map(|e| e.record.as_ref().map(|r| &r.gradient_ends))
        .collect();
    if completed.is_empty() {
        group
            .iter()
            .filter_map(|e| e.record.as_ref().map(|r| &r.gradient_ends))
            .collect()
    } else {
        completed
    }
}

fn pick(ends: &[&GradientEnds], f: impl Fn(&GradientEnds) -> Option<f64>) -> Vec<f64> {
    ends.iter().filter_map(|g| f(g)).collect()
}

fn gradients(md: &mut String, loaded: &Loaded) {
    let variants = loaded.variants();
    let depths = loaded.depths();
    mdln!(md, "## Gradients: decay per layer");
    mdln!(md);
    mdln!(
        md,
        "dL/dh is the gradient flowing back into a layer's output, read as its rms per element \
         (accumulated in float64, so a value reads 0 only when the float32 tensor is all zeros). \
         **Decay per layer** is the least-squares slope of log10 rms(dL/dh) over the trunk points \
         ({}), in decades per layer, positive when the gradient shrinks toward the input; the \
         input layer and the head are left out, since their own factors are not depth. **Spread** \
         is log10 of the last trunk point's rms over the first one's. The **forward signal** beside \
         it is √q, the spread across the batch of each unit's output at the same points \
         (`q` in activations.csv: the variance across the batch, averaged over units); its \
         **fall** is log10 of the first trunk point's √q over the last one's, positive when the \
         inputs grow less distinguishable toward the output (above {VANISH_SPREAD:.0} decades: \
         forward collapse). \"Init\" is the median over the first five probe steps, \"end\" \
         over the last five; mean ± std over completed seeds.",
        trunk_words(loaded)
    );
    mdln!(md);
    mdln!(
        md,
        "| depth | variant | decay at init | decay at end | spread at init | spread at end | forward fall at init | forward fall at end | seeds |"
    );
    mdln!(md, "|---|---|---|---|---|---|---|---|---|");
    let mut any = false;
    for &d in &depths {
        for v in &variants {
            let ends = group_readings(loaded, v, d);
            if ends
                .iter()
                .all(|g| g.decay_init.is_none() && g.spread_init.is_none())
            {
                continue;
            }
            any = true;
            mdln!(
                md,
                "| {d} | {v} | {} | {} | {} | {} | {} | {} | {} |",
                decades_stat(&pick(&ends, |g| g.decay_init)),
                decades_stat(&pick(&ends, |g| g.decay_final)),
                decades_stat(&pick(&ends, |g| g.spread_init)),
                decades_stat(&pick(&ends, |g| g.spread_final)),
                forward_stat(&pick(&ends, |g| g.forward_spread_init)),
                forward_stat(&pick(&ends, |g| g.forward_spread_final)),
                ends.len()
            );
        }
    }
    if !any {
        mdln!(
            md,
            "| — | — | — | — | — | — | — | — | — |\n\nThese runs were recorded before gradscope measured the decay per layer (their run.json has no `decay_init`): rerun the experiment to get it. The older first/last ratios follow."
        );
    }
    mdln!(md);

    // The deepest depth every variant has, in words.
    let deepest = depths.iter().rev().find(|&&d| {
        variants.iter().all(|v| {
            group_readings(loaded, v, d)
                .iter()
                .any(|g| g.spread_init.is_some())
        })
    });
    if let Some(&d) = deepest {
        let parts: Vec<String> = variants
            .iter()
            .filter_map(|v| {
                let ends = group_readings(loaded, v, d);
                let decay = stat(pick(&ends, |g| g.decay_init).into_iter().map(Some))?;
                let spread = pick(&ends, |g| g.spread_init);
                let spread_med = gradscope_format::decay::median(spread.iter().copied())?;
                Some(format!(
                    "the {v} net's decay at initialization is {} decades per layer and {}",
                    decades(decay.mean),
                    if spread_med == f64::INFINITY {
                        "its first trunk point is exactly 0 in float32 (the float32 backward pass itself underflowed there)".to_owned()
                    } else {
                        format!(
                            "its first trunk point is {} decades {} the last ({})",
                            decades(spread_med.abs()),
                            if spread_med >= 0.0 { "below" } else { "above" },
                            flow(spread_med).describe()
                        )
                    }
                ))
            })
            .collect();
        if !parts.is_empty() {
            mdln!(md, "At depth {d}, {}.", parts.join("; "));
            mdln!(md);
        }
    }

    theory_table(md, loaded);

    mdln!(md, "### The older reading: first over last probe point");
    mdln!(md);
    mdln!(
        md,
        "Kept for comparison with results published before the decay per layer: the L2 norm of \
         dL/dh at the first probe point over the last one's, at step 0 and at the last probed \
         step, on one minibatch, seed {} (the first completed seed). The last point is the \
         head, so its own factor enters the ratio, and the two tensors differ in size.",
        loaded
            .entries
            .iter()
            .filter(|e| e.is_completed())
            .map(|e| e.seed)
            .min()
            .unwrap_or(0)
    );
    mdln!(md);
    let mut head = String::from("| depth |");
    let mut rule = String::from("|---|");
    for v in &variants {
        let _ = write!(head, " {v} at init | {v} at end |");
        rule.push_str("---|---|");
    }
    mdln!(md, "{head}");
    mdln!(md, "{rule}");
    for &d in &depths {
        let mut row = format!("| {d} |");
        for v in &variants {
            let g = gradient_run(loaded, v, d).and_then(|e| e.record.as_ref());
            let _ = write!(
                row,
                " {} | {} |",
                ratio_cell(g.and_then(|r| r.gradient_ends.init_ratio())),
                ratio_cell(g.and_then(|r| r.gradient_ends.final_ratio()))
            );
        }
        mdln!(md, "{row}");
    }
    mdln!(md);
    he_section_4_1(md, loaded);
}

/// Measured decay at initialization beside the mean-field prediction, for
/// the plain nets the theory applies to.
fn theory_table(md: &mut String, loaded: &Loaded) {
    // Step 0 is the initialization the theory speaks of; the "init"
    // reading is a median over five probe steps, which in a deep BatchNorm
    // net already includes what its first updates did to the weights.
    let step0 = |e: &RunEntry| -> Option<f64> {
        let rows = loaded.csv_run(&e.name)?.gradients.as_deref()?;
        let profile: Vec<f64> = rows
            .iter()
            .filter(|g| g.step == 0 && g.trunk && g.is_output())
            .filter_map(|g| g.rms)
            .collect();
        gradscope_format::decay::decay_per_layer(&profile)
    };
    let rows: Vec<(u32, Vec<f64>, Vec<f64>, f64)> = loaded
        .depths()
        .into_iter()
        .filter_map(|d| {
            let ends = group_readings(loaded, "plain", d);
            let theory = ends.iter().find_map(|g| g.decay_theory)?;
            let at0: Vec<f64> = loaded
                .group("plain", d)
                .iter()
                .filter(|e| e.is_completed())
                .filter_map(|e| step0(e))
                .collect();
            Some((d, at0, pick(&ends, |g| g.decay_init), theory))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let batchnorm = loaded.setting("norm").as_deref() == Some("batchnorm");
    mdln!(md, "### Theory beside measurement");
    mdln!(md);
    mdln!(
        md,
        "{} The prediction is the least-squares slope of the predicted profile over the same hidden layers, read like the measured decay. Activation `{}`, init `{}`, norm `{}`.",
        if batchnorm {
            "With BatchNorm and ReLU, mean-field theory (Yang et al. 2019, \"A mean field theory of batch normalization\") predicts that the gradient *grows* toward the input by √(π/(π−1)) ≈ 1.21 per layer at initialization, a decay of −0.083 decades per layer."
        } else {
            "Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017, \"Deep Information Propagation\") predicts the backward factor per layer of a plain net without normalization: the squared rms of dL/dh is multiplied by χ = σ_w²·E[φ'(h)²], h ~ N(0, q) with q from the forward recursion q ← σ_w²·E[φ(h)²] + σ_b², σ_w² and σ_b² from the init; the decay is −½·log10 χ decades per layer."
        },
        loaded.setting("activation").unwrap_or_else(|| "?".into()),
        loaded.setting("init").unwrap_or_else(|| "?".into()),
        loaded.setting("norm").unwrap_or_else(|| "none".into())
    );
    if loaded
        .setting("init")
        .is_some_and(|i| i.contains("orthogonal"))
    {
        mdln!(md);
        mdln!(
            md,
            "With orthogonal weights of gain g the mean-field χ is the one of σ_w² = g²: orthogonality shapes the spread of the Jacobian's singular values (Saxe et al. 2014; Pennington et al. 2017), not the mean factor this predicts."
        );
    }
    mdln!(md);
    mdln!(
        md,
        "| plain depth | measured at step 0 | predicted | measured / predicted | measured, median of the first five probe steps |"
    );
    mdln!(md, "|---|---|---|---|---|");
    for (d, at0, init, theory) in rows {
        let ratio = stat(at0.iter().map(|v| Some(*v)))
            .filter(|_| theory.abs() > 0.02)
            .map_or("—".into(), |s| format!("{:.2}", s.mean / theory));
        mdln!(
            md,
            "| {d} | {} | {} | {ratio} | {} |",
            decades_stat(&at0),
            decades(theory),
            decades_stat(&init)
        );
    }
    mdln!(md);
    mdln!(
        md,
        "(Step 0 is read from `gradients.csv`; \"—\" where the per-step files are not kept.)"
    );
    mdln!(md);
    mdln!(
        md,
        "Residual nets, conv nets and the head get no prediction: the theory is for plain stacks."
    );
    mdln!(md);
}

/// Which points the trunk is, in words, from the run records.
fn trunk_words(loaded: &Loaded) -> String {
    let family = cfg_str(loaded.config(), "/model/family").unwrap_or("mlp");
    // The deepest run's trunk, the longest list.
    let record = loaded
        .entries
        .iter()
        .filter_map(|e| e.record.as_ref())
        .max_by_key(|r| r.gradient_ends.trunk_points.len());
    let names: Vec<&str> = record
        .map(|r| {
            r.gradient_ends
                .trunk_points
                .iter()
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    let kind = match family {
        "mlp" => "the hidden layers' outputs".to_owned(),
        "inception" => "the module outputs".to_owned(),
        _ => "the block outputs".to_owned(),
    };
    match (names.first(), names.last()) {
        (Some(a), Some(b)) => format!(
            "{kind}, `{a}` … `{b}` at depth {}",
            record.and_then(|r| r.depth).unwrap_or_default()
        ),
        _ => kind,
    }
}

/// He et al. §4.1: with BatchNorm, is the plain nets' degradation a
/// vanishing gradient? Judged on the scale-free ‖∇W‖·‖W‖, since dL/dh
/// before a BN layer scales as 1/‖W‖ and weights grow during training.
fn he_section_4_1(md: &mut String, loaded: &Loaded) {
    let norm = loaded.setting("norm").unwrap_or_else(|| "none".into());
    let depths = loaded.depths();
    mdln!(
        md,
        "### He et al. (2016) §4.1: is degradation vanishing gradient?"
    );
    mdln!(md);
    let theirs = "He et al. trained their plain nets with BatchNorm and checked that the backward \
                  gradients keep healthy norms, so they argue that the plain nets' degradation is not \
                  caused by vanishing gradients.";
    if norm != "batchnorm" {
        let plain_flows: Vec<String> = depths
            .iter()
            .filter_map(|&d| {
                let ends = group_readings(loaded, "plain", d);
                let s = gradscope_format::decay::median(pick(&ends, |g| g.spread_final))?;
                Some(format!("depth {d}: {}", flow(s).describe()))
            })
            .collect();
        mdln!(
            md,
            "These nets have no BatchNorm (`norm` {norm}), so He et al.'s argument, made for BatchNorm nets, does not apply.{}",
            if plain_flows.is_empty() {
                String::new()
            } else {
                format!(" The plain nets' gradients at the end of training: {}.", plain_flows.join("; "))
            }
        );
        mdln!(md);
        return;
    }
    mdln!(
        md,
        "{theirs} Before a BatchNorm layer, dL/dh and dL/dW scale as 1/‖W‖, so a weight that grows \
         during training makes them shrink although the network's function, and how strongly the \
         loss depends on the weight's direction, do not change. The scale-free measure used here \
         is **‖∇W‖·‖W‖** (the gradient with respect to the weight's direction) of every weight \
         layer between the input layer and the head, from `gradients.csv` (`l2` × `weight_norm`); \
         its decay and spread are read like those of dL/dh above. That measures how strongly the \
         loss depends on each layer, not how far SGD moves it: for a weight followed by BatchNorm, \
         one step turns it by the **effective learning rate** lr·‖∇W‖/‖W‖ (`relative` in \
         gradients.csv, times the step's lr, which is the same for every layer and cancels in a \
         spread). Its spread is log10 of the top weight layer's over the bottom one's: positive \
         when the bottom moves less. It is read at step 0 on its own (the first step's blow-up is \
         what the five-step median would hide) and over the last five probe steps (Philipp et al. \
         2018, \"The exploding gradient problem demystified\")."
    );
    mdln!(md);
    let plain_trend = depth_trend(loaded, "plain").map(|t| t.trend);
    mdln!(
        md,
        "| plain depth | scale-free decay at init | at end | spread at init | at end | effective-lr spread at step 0 | at end | dL/dh spread at end | reading |"
    );
    mdln!(md, "|---|---|---|---|---|---|---|---|---|");
    let mut readings: Vec<(u32, Mechanism)> = Vec::new();
    let mut missing = false;
    for &d in &depths {
        let Some(entry) = gradient_run(loaded, "plain", d) else {
            continue;
        };
        let raw = entry
            .record
            .as_ref()
            .and_then(|r| r.gradient_ends.spread_final);
        let Some(r) = loaded.csv_run(&entry.name).and_then(scale_free_readings) else {
            missing = true;
            continue;
        };
        let s = signals(loaded, "plain", d);
        let m = mechanism(&s);
        readings.push((d, m));
        let cell = |v: Option<f64>| v.map_or("—".into(), decades);
        mdln!(
            md,
            "| {d} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(r.decay_init),
            cell(r.decay_final),
            cell(r.spread_init),
            cell(r.spread_final),
            cell(s.effective_lr[0]),
            cell(s.effective_lr[1]),
            cell(raw),
            m.describe()
        );
    }
    mdln!(md);
    if readings.is_empty() {
        mdln!(
            md,
            "No plain run here has `gradients.csv` with the `weight_norm` column (files written before it, or not kept): rerun the experiment to judge this on the scale-free measures."
        );
        mdln!(md);
        return;
    }
    if missing {
        mdln!(
            md,
            "(Some plain runs have no such gradients.csv and are left out.)"
        );
        mdln!(md);
    }
    mdln!(md, "{}", verdict_4_1(plain_trend, &readings));
    mdln!(md);
}

/// The §4.1 verdict from the plain nets' error against depth (`None`:
/// fewer than two plain depths) and each plain depth's reading on the
/// scale-free measures: healthy (‖∇W‖·‖W‖ and the effective lr within
/// two decades over the trunk), exploding then frozen (or frozen), or
/// vanishing. He et al. make two claims: plain BatchNorm nets keep healthy
/// gradients, and so their degradation is not vanishing gradient. A
/// reading other than healthy contradicts the first whatever the error
/// does; only where the error rises with depth does it speak to the
/// second.
fn verdict_4_1(trend: Option<Trend>, readings: &[(u32, Mechanism)]) -> String {
    let degrading = trend == Some(Trend::Rises);
    let degradation = match trend {
        Some(Trend::Rises) => "Plain training error rises with depth here",
        Some(_) => "Plain training error does not rise with depth here beyond the seeds' spread",
        None => "With one plain depth, this experiment cannot show degradation",
    };
    let at = |want: &dyn Fn(Mechanism) -> bool| -> Vec<String> {
        readings
            .iter()
            .filter(|(_, m)| want(*m))
            .map(|(d, _)| d.to_string())
            .collect()
    };
    let healthy = at(&|m| !m.explains_failure());
    let frozen = at(&|m| matches!(m, Mechanism::ExplodingThenFrozen | Mechanism::Frozen));
    let blown = at(&|m| m == Mechanism::ExplodingThenFrozen);
    let vanishing = at(&|m| matches!(m, Mechanism::Vanishing { .. }));
    if frozen.is_empty() && vanishing.is_empty() {
        let agree = if degrading {
            "**our data agree with He et al.** that this degradation is not a vanishing or frozen gradient."
        } else {
            "**our data agree with He et al.** that plain BatchNorm nets keep healthy gradients (with no degradation here, there is nothing for it to explain)."
        };
        return format!(
            "{degradation}, and **every plain BatchNorm net is healthy on both scale-free measures** at depth {}: ‖∇W‖·‖W‖ and the effective learning rate stay within {VANISH_SPREAD:.0} decades over the trunk. So {agree}",
            healthy.join(", ")
        );
    }
    let mut parts = Vec::new();
    if !frozen.is_empty() {
        parts.push(format!(
            "**{} at depth {}**: the bottom layers' effective learning rate ends more than {VANISH_SPREAD:.0} decades below the top's{}, so SGD barely moves them although their scale-free gradient does not vanish",
            if blown.len() == frozen.len() { "exploding then frozen" } else { "frozen at the bottom" },
            frozen.join(", "),
            if blown.is_empty() {
                String::new()
            } else {
                format!(
                    ", after a step 0 at which it was more than {VANISH_SPREAD:.0} decades above (depth {}): the first updates blow the bottom weights up, and BatchNorm then divides their gradient by that norm",
                    blown.join(", ")
                )
            }
        ));
    }
    if !vanishing.is_empty() {
        parts.push(format!(
            "**vanishing at depth {}**: ‖∇W‖·‖W‖ of the first hidden layer ends more than {VANISH_SPREAD:.0} decades below the last",
            vanishing.join(", ")
        ));
    }
    if !healthy.is_empty() {
        parts.push(format!("healthy at depth {}", healthy.join(", ")));
    }
    let disagree = if degrading {
        "so **our data do not agree** with He et al. that plain BatchNorm nets keep healthy gradients, and the failure with depth comes with it: it is not degradation in their sense."
    } else {
        "so **our data do not agree** with He et al. that plain BatchNorm nets keep healthy gradients. Whether that is what degrades deep plain nets, these runs cannot say: they show no degradation."
    };
    format!(
        "{degradation}. The plain BatchNorm nets are {}; {disagree}",
        parts.join("; ")
    )
}

fn paper(md: &mut String, loaded: &Loaded) {
    let config = loaded.config();
    mdln!(md, "## Beside the paper");
    mdln!(md);
    let family = cfg_str(config, "/model/family").unwrap_or("?");
    let dataset = cfg_str(config, "/dataset/kind").unwrap_or("?");
    if family != "cnn" && family != "mlp" {
        mdln!(
            md,
            "He et al. (2016) Table 6 is for their CIFAR CNNs (family `cnn`); this family (`{family}`) has no numbers of theirs to set beside ours."
        );
        mdln!(md);
        return;
    }
    if family == "mlp" {
        mdln!(
            md,
            "He et al. (2016) report no MLP results. What carries over is the trend of their Fig. 6 \
             (theirs, CIFAR-10 CNNs): with BatchNorm, plain-56 has a higher training error than \
             plain-20 throughout training, while ResNet-56 has a lower one than ResNet-20. Our trend \
             is in \"What the numbers show\" above."
        );
        mdln!(md);
        return;
    }
    mdln!(
        md,
        "**Theirs**: He et al. (2016), Table 6, CIFAR-10 test error of ResNets trained 64k \
         iterations with augmentation; their plain nets (Fig. 6) get worse with depth, no table \
         values. **Ours**: this experiment ({dataset}, the budget above). The settings differ \
         (dataset, training length), so compare trends, not values."
    );
    mdln!(md);
    mdln!(
        md,
        "| depth | theirs: ResNet test error % (CIFAR-10) | ours: residual test % | ours: plain test % | ours: residual train % | ours: plain train % |"
    );
    mdln!(md, "|---|---|---|---|---|---|");
    let mut depths: Vec<u32> = loaded.depths();
    depths.extend(HE_TABLE6_RESNET.iter().map(|&(d, _)| d));
    depths.sort_unstable();
    depths.dedup();
    let ours = |v: &str, d: u32, test: bool| {
        pct_stat(stat(
            loaded
                .group(v, d)
                .iter()
                .filter(|e| e.is_completed())
                .map(|e| {
                    e.record.as_ref().and_then(|r| {
                        if test {
                            r.final_metrics.test_error
                        } else {
                            r.final_metrics.train_error
                        }
                    })
                }),
        ))
    };
    for d in depths {
        let theirs = HE_TABLE6_RESNET
            .iter()
            .find(|&&(pd, _)| pd == d)
            .map_or("—".into(), |&(_, e)| format!("{e:.2}"));
        mdln!(
            md,
            "| {d} | {theirs} | {} | {} | {} | {} |",
            ours("residual", d, true),
            ours("plain", d, true),
            ours("residual", d, false),
            ours("plain", d, false)
        );
    }
    mdln!(md);
}

fn glorot(md: &mut String, loaded: &Loaded) {
    let config = loaded.config();
    let activation = loaded.setting("activation").unwrap_or_default();
    if cfg_str(config, "/model/family") != Some("mlp")
        || !["sigmoid", "tanh"].contains(&activation.as_str())
    {
        return;
    }
    let init = loaded.setting("init").unwrap_or_else(|| "?".into());
    let seed = loaded.entries.iter().map(|e| e.seed).min().unwrap_or(0);
    mdln!(
        md,
        "## Saturation and gradients per layer (Glorot & Bengio 2010)"
    );
    mdln!(md);
    mdln!(
        md,
        "**Theirs** (Glorot & Bengio 2010, Fig. 2 and §4.2–4.3): in a sigmoid net with the standard \
         init U[−1/√n, 1/√n] (`pytorch-default` here) the top hidden layer saturates early \
         (its outputs pushed to 0) and recovers only slowly; with the normalized init (`glorot`) \
         the back-propagated gradients stay more even across layers. **Ours**, `{activation}` with \
         init `{init}`, deepest depth, seed {seed}:"
    );
    if loaded.variants().iter().any(|v| v == "residual") {
        mdln!(md);
        mdln!(
            md,
            "What is measured: each layer's response is `act(norm(h))`, the value the next weight \
             layer reads. In the residual net h is the residual stream, the running sum of every \
             block's output, so its units saturate as the sum grows; that says nothing against the \
             residual net training well (the gradient reaches the input through the shortcuts, not \
             through these units)."
        );
    }
    mdln!(md);
    let Some(&depth) = loaded.depths().last() else {
        return;
    };
    for variant in loaded.variants() {
        let Some(run) = loaded
            .group(&variant, depth)
            .iter()
            .find_map(|e| loaded.csv_run(&e.name))
        else {
            mdln!(
                md,
                "- {variant}-{depth}: no activations.csv or gradients.csv to read."
            );
            continue;
        };
        let rows = layer_rows(run);
        if rows.is_empty() {
            mdln!(md, "- {}: no activation rows.", run.summary.run);
            continue;
        }
        mdln!(
            md,
            "{} (layer 0 is nearest the input; the last row is the top hidden layer):",
            run.summary.run
        );
        mdln!(md);
        mdln!(
            md,
            "| layer | saturated at first probe | peak saturated (step) | saturated at last probe | mean at first probe | lowest mean (step) | mean at last probe | rms of dL/dh at init |"
        );
        mdln!(md, "|---|---|---|---|---|---|---|---|");
        let f = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.3}"));
        for r in &rows {
            mdln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.layer,
                f(r.sat_first),
                r.sat_peak
                    .map_or("—".into(), |(v, s)| format!("{v:.3} ({s})")),
                f(r.sat_last),
                f(r.mean_first),
                r.mean_min
                    .map_or("—".into(), |(v, s)| format!("{v:.3} ({s})")),
                f(r.mean_last),
                r.grad_init.map_or("—".into(), sci)
            );
        }
        mdln!(md);
        let top = rows.last().and_then(|r| r.sat_peak);
        let others = rows[..rows.len() - 1]
            .iter()
            .filter_map(|r| r.sat_peak.map(|p| p.0))
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let mut said = Vec::new();
        if let (Some((tp, ts)), Some(op)) = (top, others) {
            said.push(if tp < SAT_NONE && op < SAT_NONE {
                format!("No hidden layer has more than {:.1}% of its units past the saturation bar at any probe (sigmoid < 0.01 or > 0.99, tanh |a| > 0.99).", 100.0 * SAT_NONE)
            } else {
                format!(
                    "The top hidden layer's saturation peaks at {tp:.3} (step {ts}); the other hidden layers peak at {op:.3} at most, so the top layer {} the most saturated.",
                    if tp > op { "is" } else if tp == op { "ties as" } else { "is not" }
                )
            });
        }
        if let (Some(r), Some(f), Some((m, s))) = (
            rows.last(),
            rows.last().and_then(|r| r.mean_first),
            rows.last().and_then(|r| r.mean_min),
        ) {
            said.push(format!(
                "The top hidden layer's mean activation (layer {}) goes from {f:.3} at the first probe to {m:.3} at its lowest (step {s}){}.",
                r.layer,
                if activation == "sigmoid" {
                    "; Glorot & Bengio's sigmoid top layer sinks toward 0, the flat end of the sigmoid"
                } else {
                    ""
                }
            ));
        }
        if let Some(s) = gradient_spread(&rows) {
            said.push(format!(
                "At initialization the largest hidden-layer rms of dL/dh is {}× the smallest (1 = perfectly even); compare this with the matching run of the other init.",
                if s >= 100.0 { format!("{s:.1e}") } else { format!("{s:.1}") }
            ));
        }
        if !said.is_empty() {
            mdln!(md, "{}", said.join(" "));
            mdln!(md);
        }
    }
}

/// One line under each chart: what it shows.
pub(crate) fn caption(name: &str) -> &'static str {
    match name {
        "train_error_vs_step" => "Training error (on-the-fly minibatch mean) against step, one line per depth; plain and residual side by side (He et al. Fig. 6 layout).",
        "error_vs_depth" => "Final train (solid) and test (dashed) error against depth, mean over seeds with min–max bars.",
        "gradient_profile" => "rms of dL/dh per element at each point of one kind (an MLP's layers, a conv net's block outputs), log axis, at initialization (solid) and at the last probed step (dashed); ▼ marks values that are exactly 0 in float32.",
        "gradient_vs_step" => "rms of dL/dh of the first, middle and last layer (or block output) of the deepest net against step.",
        "gradient_heatmap" => "Every layer at every probed step: log10 rms of dL/dh per element as colour (one scale for all panels), input side at the bottom, for the deepest net (seed as titled); exact zeros in float32 in their own colour. Where and when the gradient vanishes shows as dark bands toward the input.",
        "layer_response_std" => "Std of each layer response at the last probed step, forward order and sorted (He et al. Fig. 7).",
        "saturation_vs_step" => "Fraction of saturated units per layer against step (Glorot & Bengio Fig. 2); for ReLU nets, the fraction of dead units (zero for every example of the probed batch) instead.",
        "activation_mean_vs_step" => "Mean of each layer response against step (Glorot & Bengio Fig. 2 plots the sigmoid outputs' mean: the top hidden layer's sinks toward 0).",
        _ => "",
    }
}

fn charts(md: &mut String, root: &Path) {
    mdln!(md, "## Charts");
    mdln!(md);
    let plots = root.join(PLOTS_DIR);
    let mut any = false;
    for name in CHART_NAMES {
        if !plots.join(format!("{name}.png")).is_file() {
            mdln!(md, "- `{name}`: not in plots/ (see the problems above).");
            continue;
        }
        any = true;
        mdln!(md, "### {name}");
        mdln!(md);
        mdln!(md, "{}", caption(name));
        mdln!(md);
        mdln!(md, "![{name}](plots/{name}.png)");
        mdln!(md);
    }
    if any {
        mdln!(md, "SVG versions sit beside each PNG in `plots/`.");
    }
}

#[cfg(test)]
mod tests {
    use super::{seconds, verdict_4_1, Mechanism, Trend};

    /// He et al. §4.1 has two claims (healthy gradients in plain
    /// BatchNorm nets; so degradation is not vanishing gradient). A
    /// verdict speaks to the second only where plain error rises with
    /// depth (`resnet50-signs-shape`, one depth, once read "degradation
    /// comes with vanishing"), and it has three outcomes per depth (issue
    /// 30): healthy, exploding then frozen, vanishing.
    #[test]
    fn section_4_1_verdict_has_three_outcomes_and_claims_degradation_only_where_error_rises() {
        let v = Mechanism::Vanishing {
            forward_collapse: false,
        };
        let one_depth = verdict_4_1(None, &[(50, v)]);
        assert!(one_depth.contains("cannot show degradation"), "{one_depth}");
        assert!(one_depth.contains("vanishing at depth 50"), "{one_depth}");
        assert!(one_depth.contains("our data do not agree"), "{one_depth}");
        let flat = verdict_4_1(Some(Trend::Flat), &[(50, v)]);
        assert!(flat.contains("they show no degradation"), "{flat}");
        let frozen = verdict_4_1(
            Some(Trend::Rises),
            &[
                (8, Mechanism::Healthy),
                (64, Mechanism::ExplodingThenFrozen),
            ],
        );
        assert!(
            frozen.contains("exploding then frozen at depth 64")
                && frozen.contains("healthy at depth 8")
                && frozen.contains("not degradation"),
            "{frozen}"
        );
        let healthy = verdict_4_1(Some(Trend::Rises), &[(20, Mechanism::Healthy)]);
        assert!(
            healthy.contains("agree with He et al.") && healthy.contains("not a vanishing"),
            "{healthy}"
        );
        let healthy_flat = verdict_4_1(Some(Trend::Flat), &[(20, Mechanism::Healthy)]);
        assert!(
            healthy_flat.contains("nothing for it to explain"),
            "{healthy_flat}"
        );
    }

    #[test]
    fn wall_times_keep_their_digits_at_every_scale() {
        assert_eq!(seconds(0.0374), "37 ms");
        assert_eq!(seconds(3.31), "3.3 s");
        assert_eq!(seconds(42.4), "42 s");
        assert_eq!(seconds(600.0), "10.0 min");
    }
}
