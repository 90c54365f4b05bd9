//! `gradscope compare DIR... --out OUT`: runs from several results folders
//! on one page, `OUT/compare.md` and `OUT/compare.html`.
//!
//! The charts come from [`gradscope_plot::compare`]: one set, every run
//! labelled by its folder, every panel of a chart on the same axes. The
//! page adds the settings that differ between the folders, the final
//! errors and gradient decay per folder, group and depth (mean ± std over
//! completed seeds), and every run with its status.

use gradscope_format::files::PLOTS_DIR;
use std::path::{Path, PathBuf};

use gradscope_plot::compare::{self, Comparison};
use gradscope_plot::{RunData, Style, STATUS_COMPLETED};

use crate::analysis::{stat, Stat};
use crate::page::{self, Block};
use crate::{write_file, ReportError};

pub use gradscope_format::files::{COMPARE_HTML, COMPARE_MD};

/// What [`write_comparison`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// `OUT/compare.md`.
    pub markdown: PathBuf,
    /// `OUT/compare.html`.
    pub html: PathBuf,
    /// Runs over all folders.
    pub runs: usize,
    /// The settings that differ, as `model.activation`.
    pub differing: Vec<String>,
}

/// Loads `dirs`, draws the comparison's charts into `out/plots/` and writes
/// `out/compare.md` and `out/compare.html`.
///
/// Errors: those of [`gradscope_plot::compare::load`] (fewer than two
/// folders, one without runs, different tasks), an `out` that is one of
/// the compared folders (its own charts would be replaced), and I/O.
pub fn write_comparison(
    dirs: &[PathBuf],
    out: &Path,
    style: Style,
) -> Result<Compared, ReportError> {
    for dir in dirs {
        if same_dir(dir, out) {
            return Err(ReportError::Compare {
                path: out.to_path_buf(),
                message: "the output folder is one of the compared folders; its charts would be replaced (give another --out)".to_owned(),
            });
        }
    }
    if out.exists() && !out.is_dir() {
        return Err(ReportError::Compare {
            path: out.to_path_buf(),
            message: "is a file; --out must be a folder".to_owned(),
        });
    }
    let comparison = compare::load(dirs, out)?;
    std::fs::create_dir_all(out.join(PLOTS_DIR)).map_err(|source| ReportError::Io {
        path: out.join(PLOTS_DIR),
        source,
    })?;
    compare::render(&comparison, style)?;
    let blocks = blocks(&comparison, dirs);
    let title = format!("Comparison: {}", names(&comparison).join(" vs "));
    let markdown = out.join(COMPARE_MD);
    write_file(&markdown, page::markdown(&blocks).as_bytes())?;
    let html = out.join(COMPARE_HTML);
    write_file(&html, page::html(&title, &blocks, out).as_bytes())?;
    Ok(Compared {
        markdown,
        html,
        runs: comparison.combined.runs.len(),
        differing: comparison
            .differing
            .iter()
            .map(|d| d.setting.clone())
            .collect(),
    })
}

/// Whether two paths are one directory (compared canonically when both
/// exist).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn names(c: &Comparison) -> Vec<String> {
    c.folders.iter().map(|f| f.name.clone()).collect()
}

/// `12.34 ± 0.56` (percent), `12.34` for one value, `—` for none.
fn pct(s: Option<Stat>) -> String {
    match s {
        Some(Stat {
            mean,
            std: Some(sd),
            ..
        }) => format!("{:.2} ± {:.2}", 100.0 * mean, 100.0 * sd),
        Some(s) => format!("{:.2}", 100.0 * s.mean),
        None => "—".to_owned(),
    }
}

/// Decades per layer, `0.123 ± 0.004`.
fn decades(s: Option<Stat>) -> String {
    match s {
        Some(Stat {
            mean,
            std: Some(sd),
            ..
        }) => format!("{mean:.3} ± {sd:.3}"),
        Some(s) => format!("{:.3}", s.mean),
        None => "—".to_owned(),
    }
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |v| format!("{:.2}", 100.0 * v))
}

fn blocks(c: &Comparison, dirs: &[PathBuf]) -> Vec<Block> {
    let mut out = folder_blocks(c, dirs);
    out.extend(settings_blocks(c));
    out.extend(error_blocks(c));
    out.extend(chart_blocks());
    out.extend(run_blocks(c));
    out
}

/// The title, the folders compared, and a warning where they learn
/// different things.
fn folder_blocks(c: &Comparison, dirs: &[PathBuf]) -> Vec<Block> {
    let mut out = vec![Block::Heading(
        1,
        format!("Comparison: {}", names(c).join(" vs ")),
    )];
    out.push(Block::List(
        c.folders
            .iter()
            .zip(dirs)
            .map(|(f, dir)| {
                let experiment = f
                    .results
                    .record
                    .as_ref()
                    .and_then(|r| r.get("experiment"))
                    .and_then(|e| e.as_str())
                    .unwrap_or("?");
                format!(
                    "**{}**: `{}`, experiment `{experiment}`, {} runs",
                    f.name,
                    dir.display(),
                    f.results.runs.len()
                )
            })
            .collect(),
    ));

    let unlike: Vec<String> = c
        .differing
        .iter()
        .filter(|d| d.setting == "task" || d.setting.starts_with("dataset."))
        .map(|d| format!("`{}` {}", d.setting, values_text(c, d)))
        .collect();
    if !unlike.is_empty() {
        out.push(Block::Para(format!(
            "**Not like for like**: these folders differ in what they learn ({}), so their \
             errors and gradients compare as trends, not as numbers.",
            unlike.join("; ")
        )));
    }
    out
}

/// The settings that differ between the folders, and the verdict on them.
fn settings_blocks(c: &Comparison) -> Vec<Block> {
    let mut out = Vec::new();
    out.push(Block::Heading(2, "Settings that differ".to_owned()));
    if c.differing.is_empty() {
        out.push(Block::Para(
            "None: every folder's `run.json` has the same `config`.".to_owned(),
        ));
    } else {
        let mut header = vec!["setting".to_owned()];
        header.extend(names(c));
        let rows = c
            .differing
            .iter()
            .map(|d| {
                let mut row = vec![format!("`{}`", d.setting)];
                row.extend(
                    d.values
                        .iter()
                        .map(|v| v.clone().unwrap_or("(absent)".into())),
                );
                row
            })
            .collect();
        out.push(Block::Table(header, rows));
    }

    if !c.differing.is_empty() {
        out.push(Block::Heading(2, "What the comparison shows".to_owned()));
        // Which nets a folder trains (depths, seeds, variants) and how it
        // probes them change no net's training: the verdict is about the
        // rest, together where several differ.
        let treatments: Vec<&compare::Difference> = c
            .differing
            .iter()
            .filter(|d| {
                !["depths", "seeds", "variants", "name", "description"]
                    .contains(&d.setting.as_str())
                    && !d.setting.starts_with("probe.")
            })
            .collect();
        out.push(Block::Para(setting_verdict(c, &treatments)));
        out.push(Block::Para(format!(
            "(Rule: the folders are compared at every net they share (group and depth), {}.)",
            crate::verdict::PAIRED_TEST
                .replace("a twin", "a folder")
                .replace("than plain", "than the first folder")
        )));
    }
    out
}

/// Final errors and the decay per layer per folder, group and depth.
fn error_blocks(c: &Comparison) -> Vec<Block> {
    let mut out = Vec::new();
    out.push(Block::Heading(
        2,
        "Final error and gradient decay".to_owned(),
    ));
    out.push(Block::Para(
        "Per folder, group and depth, over completed seeds (mean ± std). Errors in percent, \
         after the last step. Decay: decades per layer that ‖dL/dh‖ loses toward the input \
         over the trunk (head excluded), at init (first five probe steps) and trained (last five)."
            .to_owned(),
    ));
    let header = [
        "group",
        "depth",
        "seeds",
        "train error %",
        "test error %",
        "decay at init",
        "decay trained",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut rows = Vec::new();
    let runs = &c.combined.runs;
    for group in c.combined.groups() {
        for depth in c.combined.depths() {
            let at: Vec<&RunData> = runs
                .iter()
                .filter(|r| r.summary.group() == group && r.summary.depth == depth)
                .collect();
            if at.is_empty() {
                continue;
            }
            let done: Vec<&&RunData> = at
                .iter()
                .filter(|r| r.summary.status == STATUS_COMPLETED)
                .collect();
            let of = |f: fn(&RunData) -> Option<f64>| stat(done.iter().map(|r| f(r)));
            rows.push(vec![
                group.clone(),
                depth.to_string(),
                format!("{}/{}", done.len(), at.len()),
                pct(of(|r| r.summary.final_train_error)),
                pct(of(|r| r.summary.final_test_error)),
                decades(of(|r| r.summary.grad_decay_init)),
                decades(of(|r| r.summary.grad_decay_final)),
            ]);
        }
    }
    out.push(Block::Table(header, rows));
    out
}

/// The comparison's charts, each with its caption.
fn chart_blocks() -> Vec<Block> {
    let mut out = Vec::new();
    out.push(Block::Heading(2, "Charts".to_owned()));
    out.push(Block::Para(
        "One panel per folder and group; every panel of a chart shares its axes.".to_owned(),
    ));
    for name in compare::COMPARE_CHARTS {
        out.push(Block::Chart(name.to_owned(), caption(name).to_owned()));
    }
    out
}

/// Every run of every folder.
fn run_blocks(c: &Comparison) -> Vec<Block> {
    let mut out = Vec::new();
    let runs = &c.combined.runs;
    out.push(Block::Heading(2, "Runs".to_owned()));
    let header = [
        "folder",
        "run",
        "status",
        "steps",
        "train error %",
        "test error %",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = runs
        .iter()
        .map(|r| {
            let s = &r.summary;
            vec![
                s.source.clone().unwrap_or_default(),
                s.run.clone(),
                s.status.clone(),
                s.steps_done.map_or("—".to_owned(), |n| n.to_string()),
                opt_pct(s.final_train_error),
                opt_pct(s.final_test_error),
            ]
        })
        .collect();
    out.push(Block::Table(header, rows));
    out
}

/// "sigmoid (glorot-sigmoid) against tanh (glorot-tanh)".
fn values_text(c: &Comparison, d: &compare::Difference) -> String {
    d.values
        .iter()
        .zip(names(c))
        .map(|(v, f)| format!("{} ({f})", v.as_deref().unwrap_or("absent")))
        .collect::<Vec<_>>()
        .join(" against ")
}

/// The verdict on the settings that change how nets train: at every net
/// (group without the folder, and depth) that the first folder and
/// another both have, their final train errors paired by seed with the
/// report's sign rule ([`crate::verdict::paired`]). Several such settings
/// are named together: a difference is then not any one's alone.
fn setting_verdict(c: &Comparison, treatments: &[&compare::Difference]) -> String {
    let mut text = match treatments {
        [] => "The folders train their shared nets the same way (they differ only in which nets they train or how they probe them), so a difference at a shared net is seed noise or none.".to_owned(),
        [d] => format!("`{}`: {}.", d.setting, values_text(c, d)),
        many => format!(
            "The folders differ in {} together, so a difference below is not any one setting's alone.",
            many.iter()
                .map(|d| format!("`{}` {}", d.setting, values_text(c, d)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let label = |fi: usize| match treatments {
        [d] => d.values[fi].clone().unwrap_or_else(|| "absent".into()),
        _ => c.folders[fi].name.clone(),
    };
    let net = |r: &RunData| {
        let mut s = r.summary.clone();
        s.source = None;
        (s.group(), s.depth)
    };
    let error = |r: &RunData| {
        (r.summary.status == STATUS_COMPLETED)
            .then_some(r.summary.final_train_error)
            .flatten()
            .filter(|v| v.is_finite())
    };
    let first = &c.folders[0];
    let mut parts = Vec::new();
    for (fi, other) in c.folders.iter().enumerate().skip(1) {
        let (a, b) = (label(0), label(fi));
        let mut nets: Vec<(String, u32)> = first.results.runs.iter().map(net).collect();
        nets.dedup();
        for (group, depth) in nets {
            let pairs: Vec<(f64, f64)> = first
                .results
                .runs
                .iter()
                .filter(|r| net(r) == (group.clone(), depth))
                .filter_map(|r| {
                    let o = other.results.runs.iter().find(|o| {
                        net(o) == (group.clone(), depth) && o.summary.seed == r.summary.seed
                    })?;
                    Some((error(r)?, error(o)?))
                })
                .collect();
            let Some(p) = crate::verdict::paired(depth, &pairs) else {
                continue;
            };
            let seeds = if p.pairs == 1 {
                ", one seed: no spread"
            } else {
                ""
            };
            let said = match p.outcome {
                crate::verdict::Outcome::Better => format!(
                    "lower train error with {b} ({:+.2} points{seeds})",
                    100.0 * p.mean_diff
                ),
                crate::verdict::Outcome::Worse => format!(
                    "higher train error with {b} ({:+.2} points{seeds})",
                    100.0 * p.mean_diff
                ),
                crate::verdict::Outcome::Tie => format!(
                    "{a} and {b} tie ({:+.2} points{seeds})",
                    100.0 * p.mean_diff
                ),
            };
            parts.push(format!("{group} d{depth}: {said}"));
        }
    }
    if parts.is_empty() {
        text += " No net (group and depth) has completed runs of the same seed in two folders, so nothing is compared.";
    } else {
        text += &format!(
            " Final train error, {} minus {}, paired by seed: {}.",
            names(c)[1..].join(" / "),
            names(c)[0],
            parts.join("; ")
        );
    }
    text
}

/// The report's caption, or the decay chart's, which only a comparison has.
fn caption(name: &str) -> &'static str {
    match name {
        compare::DECAY_VS_DEPTH => "Decay per layer of rms dL/dh over the trunk (head excluded) against depth: at init (solid) and trained (dashed), mean over seeds with min–max bars; grey: the mean-field prediction at init, where it applies (plain MLPs).",
        other => crate::sections::caption(other),
    }
}
