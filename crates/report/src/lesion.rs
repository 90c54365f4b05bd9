//! The report's lesion section (Veit, Wilber & Belongie 2016), when
//! `gradscope lesion` has written `lesion_summary.csv`: each run's error
//! intact and after deleting one block or k blocks, the path study's
//! effective lengths, and a verdict per depth, plain against residual.
//!
//! The rules, each unit-tested here:
//! - one deletion **breaks** a run when the median test error over its
//!   single-block deletions is at least halfway from its intact error to
//!   chance ([`single_reading`]); it is **taken in stride** when that
//!   median is at most [`FEW_POINTS`] above the intact error (Veit et al.:
//!   residual nets lose a few points, plain nets fall to chance). A net
//!   gets the word only when every seed's run gets it;
//! - the error **rises smoothly** with k when no step from k to k + 1
//!   raises the mean error by more than a quarter of the distance from
//!   the intact error to chance ([`smooth_in_k`]);
//! - the gradient comes **mostly through short paths** when the shortest
//!   range of lengths holding 90% of it ends at or below half the blocks
//!   ([`short_paths`]; Veit et al. found 5–17 of 54).

use std::collections::BTreeSet;
use std::path::Path;

use gradscope_format::files::{LESION_CSV, LESION_SUMMARY_CSV, PATHS_CSV, PLOTS_DIR, RUNS_DIR};
use gradscope_format::lesion::{LesionKind, LesionRow, LesionSummaryRow, EFFECTIVE_SHARE};
use gradscope_plot::{LESION_K, LESION_SINGLE, PATH_GRADIENT};

use crate::page::Block;

/// "A few points" of test error (a fraction): the most one deletion may
/// add for a net to take it in stride.
pub(crate) const FEW_POINTS: f64 = 0.05;

/// How one run took the deletion of single blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Single {
    /// The median deletion left the error within [`FEW_POINTS`].
    InStride,
    /// The median deletion took the error halfway to chance or beyond.
    Breaks,
    /// Neither.
    Between,
}

pub(crate) fn single_reading(intact: f64, median: f64, chance: f64) -> Single {
    if median >= intact + 0.5 * (chance - intact) {
        Single::Breaks
    } else if median - intact <= FEW_POINTS {
        Single::InStride
    } else {
        Single::Between
    }
}

/// Whether the mean errors by k (k = 0 the intact net) never jump by more
/// than a quarter of the way from the intact error to chance; `None` with
/// fewer than two points.
pub(crate) fn smooth_in_k(errors: &[f64], chance: f64) -> Option<bool> {
    let (first, _) = errors.split_first()?;
    if errors.len() < 2 {
        return None;
    }
    let step = 0.25 * (chance - first);
    Some(errors.windows(2).all(|w| w[1] - w[0] <= step))
}

/// Whether the effective lengths end at or below half of `n` blocks.
pub(crate) fn short_paths(hi: usize, n: usize) -> bool {
    2 * hi <= n
}

/// Draws the lesion charts when a lesion file is newer than them or one is
/// missing; a chart that cannot be drawn is a problem in the report.
pub(crate) fn draw_stale(root: &Path, problems: &mut Vec<String>) {
    let summary = root.join(LESION_SUMMARY_CSV);
    if !summary.is_file() {
        return;
    }
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let newest = std::fs::read_dir(root.join(RUNS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|e| [e.path().join(LESION_CSV), e.path().join(PATHS_CSV)])
        .chain([summary])
        .filter_map(|p| modified(&p))
        .max();
    let drawn = [LESION_SINGLE, LESION_K]
        .iter()
        .map(|n| modified(&root.join(PLOTS_DIR).join(format!("{n}.png"))))
        .min()
        .flatten();
    if drawn.is_none() || newest > drawn {
        let style = gradscope_plot::fresh::recorded_style(root);
        if let Err(e) = gradscope_plot::render_lesion(root, style) {
            problems.push(format!("lesion charts not drawn: {e}"));
        }
    }
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{:.2}", 100.0 * v),
        _ => "–".into(),
    }
}

/// A run's mean test error per k of `delete_k` (k = 0: intact).
fn errors_by_k(root: &Path, run: &str) -> Vec<f64> {
    let path = root.join(RUNS_DIR).join(run).join(LESION_CSV);
    let Ok(mut r) = csv::Reader::from_path(&path) else {
        return Vec::new();
    };
    let rows: Vec<LesionRow> = r.deserialize().filter_map(Result::ok).collect();
    let mut out: Vec<f64> = rows
        .iter()
        .filter(|l| l.lesion == LesionKind::None)
        .map(|l| l.test_error)
        .take(1)
        .collect();
    let max_k = rows.iter().map(|l| l.k).max().unwrap_or(0);
    for k in 1..=max_k {
        let e: Vec<f64> = rows
            .iter()
            .filter(|l| l.lesion == LesionKind::DeleteK && l.k == k)
            .map(|l| l.test_error)
            .collect();
        if !e.is_empty() {
            out.push(e.iter().sum::<f64>() / e.len() as f64);
        }
    }
    out
}

pub(crate) fn section(root: &Path) -> Vec<Block> {
    let path = root.join(LESION_SUMMARY_CSV);
    if !path.is_file() {
        return Vec::new();
    }
    let mut out = vec![Block::Heading(
        2,
        "Lesions and paths (Veit et al. 2016)".to_owned(),
    )];
    let rows: Vec<LesionSummaryRow> = match csv::Reader::from_path(&path)
        .and_then(|mut r| r.deserialize().collect::<Result<Vec<_>, _>>())
    {
        Ok(rows) => rows,
        Err(e) => {
            out.push(Block::Para(format!("Not read: {}: {e}", path.display())));
            return out;
        }
    };
    let Some(r0) = rows.first() else {
        return out;
    };
    out.push(Block::Para(format!(
        "`gradscope lesion` loaded each run's trained weights and measured train and test error on the first {} images of each split in eval mode: intact; after deleting each block whose input and output shapes match (a residual block keeps only its shortcut, a plain block becomes the identity; the downsampling blocks stay, as in Veit et al.); after deleting k blocks drawn at random; and after swapping k random pairs of blocks of one shape. \
On the residual nets it then measured, for each path length k, the gradient that reaches the first block through paths of k residual branches (the rest through their shortcuts): the mean over the measured paths times their number C(n, k), at the trained weights and at the initial ones.",
        r0.samples
    )));
    out.push(Block::Para("What the paper found (CIFAR-10, ResNet-110 against VGG-15): deleting one block of the residual net raised its error by a few points at most, while the plain net fell to chance; deleting more blocks raised the residual net's error smoothly; and most of the gradient came through paths of 5 to 17 of its 54 blocks.".to_owned()));
    out.push(run_table(&rows));
    out.push(Block::Para("What the numbers show:".to_owned()));
    out.push(verdicts(root, &rows));
    for (name, caption) in [
        (LESION_SINGLE, "Test error after deleting each single block, every run a line, one panel per depth (Veit et al. Fig. 3)."),
        (LESION_K, "Mean test error after deleting k blocks at random (Veit et al. Fig. 5)."),
        (PATH_GRADIENT, "Per path length: the share of all paths (dashed), and the share of the gradient that reaches the first block through them, trained and at init (Veit et al. Fig. 6)."),
    ] {
        if root.join(PLOTS_DIR).join(format!("{name}.png")).is_file() {
            out.push(Block::Heading(3, name.to_owned()));
            out.push(Block::Para(format!("*{caption}*")));
            out.push(Block::Chart(name.to_owned(), String::new()));
        }
    }
    out
}

/// One row per run: its error intact and after deletions, and its paths.
fn run_table(rows: &[LesionSummaryRow]) -> Block {
    let header = vec![
        "run".to_owned(),
        "blocks (deletable)".to_owned(),
        "intact test error %".to_owned(),
        "one block deleted: median %".to_owned(),
        "worst %".to_owned(),
        "chance %".to_owned(),
        format!(
            "{:.0}% of the gradient through paths of",
            100.0 * EFFECTIVE_SHARE
        ),
        "most from k".to_owned(),
    ];
    let rows = rows
        .iter()
        .map(|r| {
            let paths = match (r.effective_lo, r.effective_hi) {
                (Some(lo), Some(hi)) => format!("{lo}–{hi} of {}", r.blocks),
                _ => "–".into(),
            };
            vec![
                r.run.clone(),
                format!("{} ({})", r.blocks, r.deletable),
                pct(Some(r.intact_test_error)),
                pct(r.delete_median_test_error),
                pct(r.delete_max_test_error),
                pct(Some(r.chance_error)),
                paths,
                r.peak_k.map_or("–".into(), |k| k.to_string()),
            ]
        })
        .collect();
    Block::Table(header, rows)
}

/// One bullet per depth: plain and residual under the rules above.
fn verdicts(root: &Path, rows: &[LesionSummaryRow]) -> Block {
    let depths: BTreeSet<u32> = rows.iter().map(|r| r.depth).collect();
    let mut items = Vec::new();
    for depth in depths {
        let mut words = Vec::new();
        for variant in ["plain", "residual"] {
            let runs: Vec<&LesionSummaryRow> = rows
                .iter()
                .filter(|r| r.depth == depth && r.variant == variant)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let readings: Vec<Single> = runs
                .iter()
                .filter_map(|r| {
                    Some(single_reading(
                        r.intact_test_error,
                        r.delete_median_test_error?,
                        r.chance_error,
                    ))
                })
                .collect();
            let seeds = runs.len();
            let single = if readings.len() < seeds || readings.is_empty() {
                "has no block that can be deleted".to_owned()
            } else if readings.iter().all(|s| *s == Single::Breaks) {
                format!("**breaks when one block is deleted** (median error at least halfway to chance, in all {seeds} seeds)")
            } else if readings.iter().all(|s| *s == Single::InStride) {
                format!("**takes the deletion of one block in stride** (median error within {:.0} points of intact, in all {seeds} seeds)", 100.0 * FEW_POINTS)
            } else {
                format!("is between the two readings after one deletion (its {seeds} seeds read {readings:?})")
            };
            let smooth: Vec<Option<bool>> = runs
                .iter()
                .map(|r| smooth_in_k(&errors_by_k(root, &r.run), r.chance_error))
                .collect();
            let in_k = if smooth.iter().all(|s| *s == Some(true)) {
                ", and its error rises smoothly as more blocks are deleted"
            } else if smooth.iter().all(|s| *s == Some(false)) {
                ", and its error jumps as more blocks are deleted (a step of more than a quarter of the way to chance)"
            } else {
                ""
            };
            let paths: Vec<bool> = runs
                .iter()
                .filter_map(|r| Some(short_paths(r.effective_hi?, r.blocks)))
                .collect();
            let path_words = if paths.is_empty() || paths.len() < seeds {
                String::new()
            } else if paths.iter().all(|p| *p) {
                format!(
                    "; {:.0}% of its gradient comes through paths of at most half its blocks",
                    100.0 * EFFECTIVE_SHARE
                )
            } else if paths.iter().all(|p| !*p) {
                format!(
                    "; the paths that carry {:.0}% of its gradient reach beyond half its blocks",
                    100.0 * EFFECTIVE_SHARE
                )
            } else {
                "; its seeds disagree on whether the gradient comes through short paths".into()
            };
            words.push(format!("the {variant} net {single}{in_k}{path_words}"));
        }
        items.push(format!("Depth {depth}: {}.", words.join("; ")));
    }
    Block::List(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Veit et al. Fig. 3: a plain net at chance after one deletion breaks;
    /// a residual net a point worse takes it in stride; halfway is the line.
    #[test]
    fn one_deletion_is_read_against_chance_and_a_few_points() {
        assert_eq!(single_reading(0.10, 0.88, 0.90), Single::Breaks);
        assert_eq!(single_reading(0.10, 0.50, 0.90), Single::Breaks);
        assert_eq!(single_reading(0.10, 0.49, 0.90), Single::Between);
        assert_eq!(single_reading(0.10, 0.12, 0.90), Single::InStride);
        assert_eq!(single_reading(0.10, 0.15, 0.90), Single::InStride);
        assert_eq!(single_reading(0.10, 0.16, 0.90), Single::Between);
    }

    /// Veit et al. Fig. 5: a rise of a few points per k is smooth; one
    /// jump of a quarter of the way to chance is not.
    #[test]
    fn smoothness_in_k_is_the_largest_step() {
        assert_eq!(smooth_in_k(&[0.1, 0.12, 0.15, 0.2, 0.3], 0.9), Some(true));
        assert_eq!(smooth_in_k(&[0.1, 0.12, 0.35, 0.4], 0.9), Some(false));
        assert_eq!(smooth_in_k(&[0.1], 0.9), None);
        assert_eq!(smooth_in_k(&[], 0.9), None);
    }

    /// Veit et al. Fig. 6: 17 of 54 is short; 30 of 54 is not.
    #[test]
    fn short_paths_end_at_half_the_blocks() {
        assert!(short_paths(17, 54));
        assert!(short_paths(27, 54));
        assert!(!short_paths(28, 54));
    }
}
