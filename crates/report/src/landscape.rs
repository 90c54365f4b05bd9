//! The report's loss-landscape section (Li et al. 2018), when
//! `gradscope landscape` has written `landscape_summary.csv`: the readings
//! of each grid, the same readings gathered over the grids of each net
//! (training seeds × direction seeds) with plain against residual at each
//! depth, the control around the initial weights where there is one, and
//! the two charts, redrawn first when a landscape file is newer than them.
//!
//! The rule for a verdict (issue 30 §5): a net's surface is called smoother
//! or rougher than its twin's by a reading only where the two nets' grids
//! do not overlap on it (every grid of one beyond every grid of the other,
//! [`Replicates::separated`]), with at least two grids each; one grid per
//! net gives numbers and no verdict.

use std::path::Path;

use gradscope_format::files::RUN_JSON;
use gradscope_format::files::{LANDSCAPE_SUMMARY_CSV, PLOTS_DIR, RUNS_DIR};
use gradscope_format::landscape::{
    read_summary, restricted, LandscapeRow, LandscapeSummaryRow, Replicates, Restricted, Surface,
    Weights,
};
use gradscope_plot::{LOSS_LANDSCAPE, LOSS_SLICE};

use crate::page::Block;

/// Draws the landscape charts when a landscape file is newer than them or
/// one is missing; a chart that cannot be drawn is a problem in the report.
pub(crate) fn draw_stale(root: &Path, problems: &mut Vec<String>) {
    let rows = match read_summary(root) {
        Ok(Some(rows)) => rows,
        Ok(None) => return,
        Err(e) => {
            problems.push(e);
            return;
        }
    };
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let inputs = std::iter::once(root.join(LANDSCAPE_SUMMARY_CSV)).chain(
        rows.iter()
            // A name read from a file is never a path; drawing refuses it.
            .filter(|r| gradscope_format::names::is_folder_name(&r.run))
            .map(|r| root.join(RUNS_DIR).join(&r.run).join(r.file())),
    );
    let newest = inputs.filter_map(|p| modified(&p)).max();
    let drawn = [LOSS_LANDSCAPE, LOSS_SLICE]
        .iter()
        .map(|n| modified(&root.join(PLOTS_DIR).join(format!("{n}.png"))))
        .min()
        .flatten();
    let stale = match (drawn, newest) {
        (None, _) => true,
        (Some(d), Some(n)) => n > d,
        (Some(_), None) => false,
    };
    if stale {
        let style = gradscope_plot::fresh::recorded_style(root);
        if let Err(e) = gradscope_plot::render_landscape(root, style) {
            problems.push(format!("landscape charts not drawn: {e}"));
        }
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".to_owned(),
    }
}

/// Three significant digits; powers of ten above 10⁴ (a far corner of a
/// plain net's grid reaches 10⁷).
fn sig(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v.abs() >= 1e4 => format!("{v:.1e}"),
        Some(v) if v.is_finite() && v != 0.0 => {
            let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
            format!("{v:.digits$}")
        }
        Some(v) if v.is_finite() => "0".to_owned(),
        _ => "–".to_owned(),
    }
}

/// A share with one decimal, `1.4%` (a region can be a sliver of the grid).
fn pct1(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{:.0}%", v * 100.0),
        _ => "–".to_owned(),
    }
}

/// The classes a run's dataset has, from its run.json (`None` for the
/// identity task, which has no chance level, or a record that does not say).
fn classes(root: &Path, run: &str) -> Option<f64> {
    let text = std::fs::read_to_string(root.join(RUNS_DIR).join(run).join(RUN_JSON)).ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    let config = record.get("config")?;
    if config.get("task").and_then(|t| t.as_str()) == Some("identity") {
        return None;
    }
    let dataset = config.get("dataset")?;
    match dataset.get("kind")?.as_str()? {
        "mnist" | "fashion-mnist" | "cifar10" => Some(10.0),
        // The copy task's loss is per recalled symbol: chance ln(symbols).
        "copy" => dataset.get("symbols")?.as_f64(),
        _ => dataset.get("classes")?.as_f64(),
    }
}

/// The readings of one run's grid restricted to the central half of the
/// grid and to losses below chance (ln(classes)), from its landscape.csv.
fn restricted_readings(root: &Path, r: &LandscapeSummaryRow) -> Option<Restricted> {
    let path = root.join(RUNS_DIR).join(&r.run).join(r.file());
    let rows: Vec<LandscapeRow> = csv::Reader::from_path(path)
        .ok()?
        .deserialize()
        .collect::<Result<_, _>>()
        .ok()?;
    let surface = Surface::from_rows(&rows).ok()?;
    Some(restricted(
        &surface,
        classes(root, &r.run)?.ln(),
        r.span / 2.0,
    ))
}

/// One reading of a grid, by name, for the replicated table and verdicts.
struct Reading {
    what: &'static str,
    digits: usize,
    percent: bool,
    of: fn(&Grid) -> Option<f64>,
}

/// One grid: its summary row and its readings near the minimum.
struct Grid<'a> {
    row: &'a LandscapeSummaryRow,
    near: Option<Restricted>,
}

const READINGS: [Reading; 5] = [
    Reading {
        what: "local minima (whole grid)",
        digits: 1,
        percent: false,
        of: |g| Some(g.row.local_minima as f64),
    },
    Reading {
        what: "slice non-convexity (whole grid)",
        digits: 0,
        percent: true,
        of: |g| g.row.nonconvex_fraction,
    },
    Reading {
        what: "roughness (decades)",
        digits: 3,
        percent: false,
        of: |g| g.row.roughness,
    },
    Reading {
        what: "local minima near the minimum",
        digits: 1,
        percent: false,
        of: |g| g.near.map(|n| n.local_minima as f64),
    },
    Reading {
        what: "slice non-convexity near the minimum",
        digits: 0,
        percent: true,
        of: |g| g.near.and_then(|n| n.nonconvex_fraction),
    },
];

/// `mean ± sd` (or the one value), as a percentage where asked.
fn spread(r: &Replicates, digits: usize, percent: bool) -> String {
    let k = if percent { 100.0 } else { 1.0 };
    match r.n {
        1 => format!("{:.digits$}", r.mean * k),
        _ => format!("{:.digits$} ± {:.digits$}", r.mean * k, r.sd * k),
    }
}

/// A verdict sentence on one reading of two nets' grids: which is higher
/// where their ranges separate, "overlap" where they do not.
pub(crate) fn reading_verdict(
    what: &str,
    plain: &Replicates,
    residual: &Replicates,
    digits: usize,
    percent: bool,
) -> (String, i32) {
    let numbers = format!(
        "plain {}, residual {}",
        spread(plain, digits, percent),
        spread(residual, digits, percent)
    );
    match plain.separated(residual) {
        Some(std::cmp::Ordering::Greater) => (
            format!("{what} higher for the plain net in every grid ({numbers})"),
            1,
        ),
        Some(_) => (
            format!("{what} higher for the residual net in every grid ({numbers})"),
            -1,
        ),
        None if plain.n < 2 || residual.n < 2 => {
            (format!("{what}: one grid, no spread ({numbers})"), 0)
        }
        None => (format!("{what}: the grids overlap ({numbers})"), 0),
    }
}

/// Whether two nets' losses at the centre of their grids are close enough
/// for a matched-loss control: within 10% of the larger. At init both sit
/// near chance (ln 10 = 2.30 for ten classes) when neither has blown up.
pub(crate) fn matched_loss(a: f64, b: f64) -> bool {
    a.is_finite() && b.is_finite() && (a - b).abs() <= 0.1 * a.abs().max(b.abs())
}

/// The verdict over the readings' signs (+1: the residual net smoother).
pub(crate) fn surface_verdict(signs: &[i32]) -> &'static str {
    let smoother = signs.iter().filter(|s| **s > 0).count();
    let rougher = signs.iter().filter(|s| **s < 0).count();
    match (smoother, rougher) {
        (0, 0) => "not told apart from its twin's by any reading",
        (s, 0) if s == signs.len() => "smoother by every reading, beyond the spread of the grids",
        (_, 0) => "smoother by some readings beyond the spread of the grids; the others overlap",
        (0, _) => "rougher by some readings beyond the spread of the grids",
        _ => "smoother by some readings and rougher by others",
    }
}

/// The section, when there is a `landscape_summary.csv`.
pub(crate) fn section(root: &Path) -> Vec<Block> {
    let rows = match read_summary(root) {
        Ok(Some(rows)) if !rows.is_empty() => rows,
        Ok(_) => return Vec::new(),
        Err(e) => {
            return vec![
                Block::Heading(2, "Loss landscape".to_owned()),
                Block::Para(format!("Not read: {e}")),
            ]
        }
    };
    let mut out = intro(&rows);
    let grids: Vec<Grid> = rows
        .iter()
        .map(|row| Grid {
            row,
            near: restricted_readings(root, row),
        })
        .collect();
    out.extend(grid_table(&grids));
    // Each net (variant, depth, weights) over its grids.
    let mut nets: Vec<(u32, String, Weights)> = rows
        .iter()
        .map(|r| (r.depth, r.variant.clone(), r.weights))
        .collect();
    nets.sort();
    nets.dedup();
    out.extend(net_table(&grids, &nets));
    out.extend(verdicts(&grids, &nets));
    out.extend(chart_links());
    out
}

/// The section's opening: what was evaluated, how it is read, and whether
/// there are enough grids for a verdict.
fn intro(rows: &[LandscapeSummaryRow]) -> Vec<Block> {
    let mut out = vec![Block::Heading(
        2,
        "Loss landscape (Li et al. 2018)".to_owned(),
    )];
    let r0 = &rows[0];
    let set = |f: fn(&LandscapeSummaryRow) -> u64, w: Weights| -> Vec<u64> {
        let s: std::collections::BTreeSet<u64> =
            rows.iter().filter(|r| r.weights == w).map(f).collect();
        s.into_iter().collect()
    };
    let seeds = set(|r| r.seed, Weights::Trained);
    let directions = set(|r| r.direction_seed, Weights::Trained);
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let has_init = rows.iter().any(|r| r.weights == Weights::Init);
    out.push(Block::Para(format!(
        "`gradscope landscape` evaluated the training loss L(θ + αδ + βη) on {g}×{g} grids over α, β ∈ [−{s}, {s}], on the first {n} training images in eval mode, around each run's trained weights θ, along pairs of random directions δ, η that are filter-normalized as Li et al. do (each filter rescaled to the norm of the same filter of θ; BatchNorm and bias entries 0): training seeds {} × direction seeds {}{}. \
Its readings: **local minima**, grid points below all eight neighbours (a bowl has one); **slice non-convexity**, the share of inner points where the finite-difference Hessian of the 2-D slice has a clearly negative eigenvalue (a reading of this slice only, not Li et al.'s |λmin/λmax| of the full Hessian, §6); **roughness**, the decades of loss that a row or column of the grid climbs and falls beyond one valley, averaged over the rows and columns (0 for any bowl, however deep; every extra bump adds twice its height).",
        list(&seeds),
        list(&directions),
        if has_init {
            ", and as a control the same grids around each run's initial weights θ₀ (rebuilt from its seed), where every net's loss sits near chance"
        } else {
            ""
        },
        g = r0.grid,
        s = r0.span,
        n = r0.samples,
    )));
    let fewest = {
        let mut per_net = std::collections::BTreeMap::new();
        for r in rows.iter().filter(|r| r.weights == Weights::Trained) {
            *per_net
                .entry((r.depth, r.variant.as_str()))
                .or_insert(0usize) += 1;
        }
        per_net.into_values().min().unwrap_or(0)
    };
    if fewest < 2 {
        out.push(Block::Para(format!(
            "**Too few grids for a verdict**: {} training seed{} and {} pair{} of directions. A reading is told apart from its twin's only where every grid of one net lies beyond every grid of the other, which needs at least two grids of each net; a count such as \"9× the minima\" from one grid is one draw.",
            seeds.len(),
            if seeds.len() == 1 { "" } else { "s" },
            directions.len(),
            if directions.len() == 1 { "" } else { "s" }
        )));
    } else if seeds.len() < 2 {
        out.push(Block::Para(
            "**One training seed**: the spread below is over directions only, around one set of trained weights; it says nothing of how another training run would land."
                .to_owned(),
        ));
    }
    out
}

/// One row per grid: its whole-grid readings and those near the minimum.
fn grid_table(grids: &[Grid]) -> Vec<Block> {
    let mut out = Vec::new();
    if let Some(n) = grids.iter().find_map(|g| g.near) {
        out.push(Block::Para(format!(
            "Whole-grid readings count dips on a plateau at or above chance and the far corners as much as the basin, so each is also taken **near the minimum**: only at points inside the central window |α|, |β| ≤ {} whose loss is below chance, ln(classes) = {:.2} (the loss of predicting the class prior). The table gives how much of the grid that region is.",
            n.window,
            n.chance
        )));
    }
    let header = [
        "run",
        "weights",
        "directions",
        "loss at θ",
        "loss range on the grid",
        "local minima",
        "slice non-convexity",
        "roughness (decades)",
        "grid below chance",
        "near the minimum: share of grid, local minima, non-convexity",
        "time",
    ];
    let mut rows = Vec::new();
    for g in grids {
        let r = g.row;
        let near = match &g.near {
            Some(x) => format!(
                "{}, {}, {}",
                pct1(x.region),
                x.local_minima,
                pct(x.nonconvex_fraction)
            ),
            None => "–".to_owned(),
        };
        rows.push(vec![
            r.run.clone(),
            r.weights.as_str().to_owned(),
            r.direction_seed.to_string(),
            num(r.centre_loss, 4),
            format!("{} – {}", sig(r.min_loss), sig(r.max_loss)),
            r.local_minima.to_string(),
            pct(r.nonconvex_fraction),
            num(r.roughness, 3),
            g.near.map_or("–".to_owned(), |x| pct1(x.below_chance)),
            near,
            format!("{} s", num(r.elapsed_s, 0)),
        ]);
    }
    out.push(Block::Table(
        header.iter().map(|h| (*h).to_owned()).collect(),
        rows,
    ));
    out
}

/// The grids of one net (depth, variant, weights).
fn of_net<'g, 'a>(
    grids: &'g [Grid<'a>],
    depth: u32,
    variant: &str,
    w: Weights,
) -> Vec<&'g Grid<'a>> {
    grids
        .iter()
        .filter(|g| g.row.depth == depth && g.row.variant == variant && g.row.weights == w)
        .collect()
}

/// One reading over a net's grids.
fn rep(gs: &[&Grid], f: fn(&Grid) -> Option<f64>) -> Option<Replicates> {
    Replicates::of(gs.iter().filter_map(|g| f(g)))
}

/// Each net (variant, depth, weights) over its grids, mean ± sd.
fn net_table(grids: &[Grid], nets: &[(u32, String, Weights)]) -> [Block; 2] {
    let mut header: Vec<String> = ["net", "weights", "grids", "loss at θ"]
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    header.extend(READINGS.iter().map(|r| r.what.to_owned()));
    let mut rows = Vec::new();
    for (depth, variant, w) in nets {
        let gs = of_net(grids, *depth, variant, *w);
        let centre = rep(&gs, |g| g.row.centre_loss).map_or("–".into(), |r| spread(&r, 3, false));
        let mut row = vec![
            format!("{variant}, depth {depth}"),
            w.as_str().to_owned(),
            gs.len().to_string(),
            centre,
        ];
        row.extend(
            READINGS
                .iter()
                .map(|x| rep(&gs, x.of).map_or("–".into(), |r| spread(&r, x.digits, x.percent))),
        );
        rows.push(row);
    }
    [
        Block::Para("Each net over its grids (mean ± standard deviation):".to_owned()),
        Block::Table(header, rows),
    ]
}

/// The verdicts: per depth, the residual surface against the plain one
/// (trained, then the control at init), and whether the plain net's
/// surface roughens with depth.
fn verdicts(grids: &[Grid], nets: &[(u32, String, Weights)]) -> Option<Block> {
    let mut depths: Vec<u32> = nets.iter().map(|n| n.0).collect();
    depths.dedup();
    let mut said = Vec::new();
    for w in [Weights::Trained, Weights::Init] {
        for &d in &depths {
            let (p, r) = (
                of_net(grids, d, "plain", w),
                of_net(grids, d, "residual", w),
            );
            if p.is_empty() || r.is_empty() {
                continue;
            }
            let readings: Vec<(String, i32)> = READINGS
                .iter()
                .filter_map(|x| {
                    let (a, b) = (rep(&p, x.of)?, rep(&r, x.of)?);
                    Some(reading_verdict(x.what, &a, &b, x.digits, x.percent))
                })
                .collect();
            let signs: Vec<i32> = readings.iter().map(|(_, s)| *s).collect();
            let text: Vec<String> = readings.into_iter().map(|(t, _)| t).collect();
            let centre = |gs: &[&Grid]| rep(gs, |g| g.row.centre_loss).map(|r| r.mean);
            let at = match (w, centre(&p), centre(&r)) {
                (Weights::Trained, _, _) => String::new(),
                (Weights::Init, Some(a), Some(b)) => format!(
                    " at init, the control ({}: loss at θ₀ {a:.3} plain, {b:.3} residual)",
                    if matched_loss(a, b) {
                        "matched in loss, before any training"
                    } else {
                        "not matched in loss, so the comparison is not like for like"
                    }
                ),
                (Weights::Init, _, _) => " at init, the control".to_owned(),
            };
            said.push(format!(
                "**Depth {d}{at}: the residual surface is {}**: {}.",
                surface_verdict(&signs),
                text.join("; ")
            ));
        }
    }
    // Does the plain net's surface roughen with depth (Li et al. Fig. 5)?
    let plain_depths: Vec<u32> = depths
        .iter()
        .copied()
        .filter(|&d| !of_net(grids, d, "plain", Weights::Trained).is_empty())
        .collect();
    if let (Some(&lo), Some(&hi)) = (plain_depths.first(), plain_depths.last()) {
        if lo != hi {
            let (a, b) = (
                of_net(grids, hi, "plain", Weights::Trained),
                of_net(grids, lo, "plain", Weights::Trained),
            );
            let x = &READINGS[2];
            if let (Some(deep), Some(shallow)) = (rep(&a, x.of), rep(&b, x.of)) {
                let word = match deep.separated(&shallow) {
                    Some(std::cmp::Ordering::Greater) => "rougher",
                    Some(_) => "smoother",
                    None => "not told apart in roughness",
                };
                said.push(format!(
                    "**The plain net's surface at depth {hi} is {word} than at depth {lo}** (roughness {} against {} decades). Li et al. (Fig. 5, CIFAR-10) see the plain net's surface turn chaotic between 20 and 56 layers.",
                    spread(&deep, 3, false),
                    spread(&shallow, 3, false)
                ));
            }
        }
    }
    (!said.is_empty()).then_some(Block::List(said))
}

/// The two landscape charts, each with its caption in italics above it.
fn chart_links() -> Vec<Block> {
    let mut out = Vec::new();
    for (name, caption) in [
        (LOSS_LANDSCAPE, "log10 of the training loss over (α, β) around the trained weights (the cross), one colour scale for every panel, with contour lines: the first grid of each net (its lowest training seed and direction seed)."),
        (LOSS_SLICE, "The training loss along δ alone (β = 0), every run on one log axis."),
    ] {
        out.push(Block::Heading(3, name.to_owned()));
        out.push(Block::Para(format!("*{caption}*")));
        out.push(Block::Chart(name.to_owned(), String::new()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &[f64]) -> Replicates {
        Replicates::of(v.iter().copied()).unwrap()
    }

    /// Issue 30 §5: "9× the minima" from one grid was a single draw. A
    /// reading earns a verdict only where every grid of one net reads
    /// beyond every grid of its twin; one grid, or overlapping grids, give
    /// the numbers and no direction.
    #[test]
    fn a_landscape_verdict_needs_separated_grids() {
        let (t, s) = reading_verdict(
            "roughness",
            &r(&[0.2, 0.3, 0.25]),
            &r(&[0.0, 0.01]),
            3,
            false,
        );
        assert_eq!(s, 1);
        assert!(t.contains("higher for the plain net in every grid"), "{t}");
        let (t, s) = reading_verdict("roughness", &r(&[0.2, 0.3]), &r(&[0.25, 0.26]), 3, false);
        assert_eq!(s, 0);
        assert!(t.contains("overlap"), "{t}");
        let (t, s) = reading_verdict("local minima", &r(&[9.0]), &r(&[1.0]), 1, false);
        assert_eq!(s, 0, "one grid each is no verdict");
        assert!(t.contains("one grid, no spread"), "{t}");
        assert_eq!(
            surface_verdict(&[0, 0, 0]),
            "not told apart from its twin's by any reading"
        );
        assert!(surface_verdict(&[1, 1]).starts_with("smoother by every"));
        assert!(surface_verdict(&[1, 0]).contains("the others overlap"));
        assert!(surface_verdict(&[1, -1]).contains("rougher by others"));
        // The control is matched in loss only where the centres agree.
        assert!(matched_loss(2.31, 2.35));
        assert!(!matched_loss(2.31, 4.1));
        assert!(!matched_loss(f64::NAN, 2.3));
    }
}
