//! The report's loss-landscape section (Li et al. 2018), when
//! `gradscope landscape` has written `landscape_summary.csv`: the readings
//! of each run's surface, plain against residual at each depth, and the
//! two charts, redrawn first when a landscape file is newer than them.

use std::fmt::Write as _;
use std::path::Path;

use gradscope_format::files::RUN_JSON;
use gradscope_format::files::{LANDSCAPE_CSV, LANDSCAPE_SUMMARY_CSV, PLOTS_DIR, RUNS_DIR};
use gradscope_format::landscape::{
    read_summary, restricted, LandscapeRow, LandscapeSummaryRow, Restricted, Surface,
};
use gradscope_plot::{LOSS_LANDSCAPE, LOSS_SLICE};

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
            .map(|r| root.join(RUNS_DIR).join(&r.run).join(LANDSCAPE_CSV)),
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

/// How one reading compares: "smoother" when the residual's is lower.
fn compare(what: &str, plain: Option<f64>, residual: Option<f64>, digits: usize) -> (String, i32) {
    match (plain, residual) {
        (Some(p), Some(r)) if p.is_finite() && r.is_finite() => {
            let word = if r < p {
                "lower for the residual net"
            } else if r > p {
                "higher for the residual net"
            } else {
                "the same"
            };
            // A ratio only where both show at the printed precision: one of
            // 0.000 against 0.014 is no ratio to print.
            let shown = 0.1f64.powi(digits as i32);
            let ratio = if r.min(p) >= shown {
                format!(", {:.1}×", p.max(r) / p.min(r))
            } else {
                String::new()
            };
            (
                format!("{what} {word} ({p:.digits$} plain, {r:.digits$} residual{ratio})"),
                (r < p) as i32 - (r > p) as i32,
            )
        }
        _ => (format!("{what}: not comparable"), 0),
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
        _ => dataset.get("classes")?.as_f64(),
    }
}

/// The readings of one run's grid restricted to the central half of the
/// grid and to losses below chance (ln(classes)), from its landscape.csv.
fn restricted_readings(root: &Path, r: &LandscapeSummaryRow) -> Option<Restricted> {
    let path = root.join(RUNS_DIR).join(&r.run).join(LANDSCAPE_CSV);
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

/// The section, when there is a `landscape_summary.csv`.
pub(crate) fn section(md: &mut String, root: &Path) {
    let rows = match read_summary(root) {
        Ok(Some(rows)) if !rows.is_empty() => rows,
        Ok(_) => return,
        Err(e) => {
            mdln!(md, "## Loss landscape");
            mdln!(md);
            mdln!(md, "Not read: {e}");
            mdln!(md);
            return;
        }
    };
    mdln!(md, "## Loss landscape (Li et al. 2018)");
    mdln!(md);
    let r0 = &rows[0];
    mdln!(
        md,
        "`gradscope landscape` evaluated the training loss L(θ + αδ + βη) of each run on a {g}×{g} grid over α, β ∈ [−{s}, {s}], on the first {n} training images in eval mode, around its trained weights θ, along two random directions δ, η (seed {seed}) that are filter-normalized as Li et al. do (each filter rescaled to the norm of the same filter of θ; BatchNorm and bias entries 0). \
Its readings: **local minima**, grid points below all eight neighbours (a bowl has one); **slice non-convexity**, the share of inner points where the finite-difference Hessian of the 2-D slice has a clearly negative eigenvalue (a reading of this slice only, not Li et al.'s |λmin/λmax| of the full Hessian, §6); **roughness**, the decades of loss that a row or column of the grid climbs and falls beyond one valley, averaged over the rows and columns (0 for any bowl, however deep; every extra bump adds twice its height).",
        g = r0.grid,
        s = r0.span,
        n = r0.samples,
        seed = r0.direction_seed
    );
    mdln!(md);
    // One grid per run is one sample: no spread over training seeds or
    // directions, and a reading on a plateau at or above chance says little
    // about the minimum.
    let seeds: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
    let directions: std::collections::BTreeSet<u64> =
        rows.iter().map(|r| r.direction_seed).collect();
    if seeds.len() < 2 || directions.len() < 2 {
        mdln!(
            md,
            "**Each reading below is a single sample**: {} training seed{} and {} pair{} of directions, so there is no spread to tell a difference from chance, and a count such as \"9× the minima\" is one draw. Points far from θ, where the loss is above chance, enter every reading as much as the basin does.",
            seeds.len(),
            if seeds.len() == 1 { "" } else { "s" },
            directions.len(),
            if directions.len() == 1 { "" } else { "s" }
        );
        mdln!(md);
    }
    mdln!(
        md,
        "| run | depth | loss at θ | loss range on the grid | local minima | slice non-convexity | roughness (decades) | not finite | time |"
    );
    mdln!(md, "|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        mdln!(
            md,
            "| {} | {} | {} | {} – {} | {} | {} | {} | {} | {} s |",
            r.run,
            r.depth,
            num(r.centre_loss, 4),
            sig(r.min_loss),
            sig(r.max_loss),
            r.local_minima,
            pct(r.nonconvex_fraction),
            num(r.roughness, 3),
            r.nonfinite,
            num(r.elapsed_s, 0)
        );
    }
    mdln!(md);

    // Plain against residual at each depth (same seed where both exist).
    let mut depths: Vec<u32> = rows.iter().map(|r| r.depth).collect();
    depths.dedup();
    let find = |variant: &str, depth: u32| {
        rows.iter()
            .filter(|r| r.variant == variant && r.depth == depth)
            .min_by_key(|r| r.seed)
    };
    // The same readings where they speak of the basin: the central half
    // of the grid, below chance.
    let near: Vec<(&LandscapeSummaryRow, Restricted)> = rows
        .iter()
        .filter_map(|r| Some((r, restricted_readings(root, r)?)))
        .collect();
    if !near.is_empty() {
        mdln!(
            md,
            "**Near the minimum.** The whole-grid readings above count dips on a plateau at or above chance and the far corners as much as the basin. Below, the same two readings are taken only at points inside the central window |α|, |β| ≤ {} and below chance, ln(classes) = {:.2} (the loss of predicting the class prior), with how much of the grid that region is:",
            near[0].1.window,
            near[0].1.chance
        );
        mdln!(md);
        mdln!(
            md,
            "| run | depth | grid below chance | grid in the window and below chance | local minima there | slice non-convexity there |"
        );
        mdln!(md, "|---|---|---|---|---|---|");
        for (r, x) in &near {
            mdln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                r.run,
                r.depth,
                pct1(x.below_chance),
                pct1(x.region),
                x.local_minima,
                pct(x.nonconvex_fraction)
            );
        }
        mdln!(md);
        // Per depth, the twins near their minima, in numbers only: one
        // grid each is no ground for ranking them (see above).
        let mut depths: Vec<u32> = near.iter().map(|(r, _)| r.depth).collect();
        depths.dedup();
        for d in depths {
            let at = |v: &str| near.iter().find(|(r, _)| r.depth == d && r.variant == v);
            if let (Some((_, p)), Some((_, r))) = (at("plain"), at("residual")) {
                let whole_p = rows.iter().find(|x| x.depth == d && x.variant == "plain");
                mdln!(
                    md,
                    "- Depth {d}, near the minimum: plain {} local minimum{} and {} slice non-convexity over {} of its grid, residual {} and {} over {}{}.",
                    p.local_minima,
                    if p.local_minima == 1 { "" } else { "a" },
                    pct(p.nonconvex_fraction),
                    pct1(p.region),
                    r.local_minima,
                    pct(r.nonconvex_fraction),
                    pct1(r.region),
                    match whole_p {
                        Some(w) if w.local_minima == p.local_minima + 1 => "; the plain grid's other minimum lies outside that region (above chance, or far from θ)".to_owned(),
                        Some(w) if w.local_minima > p.local_minima => format!(
                            "; the plain grid's other {} minima lie outside that region (above chance, or far from θ)",
                            w.local_minima - p.local_minima
                        ),
                        _ => String::new(),
                    }
                );
            }
        }
        mdln!(md);
    }
    let mut said = false;
    for &d in &depths {
        let (Some(p), Some(r)) = (find("plain", d), find("residual", d)) else {
            continue;
        };
        said = true;
        let readings = [
            compare("roughness", p.roughness, r.roughness, 3),
            compare(
                "local minima",
                Some(p.local_minima as f64),
                Some(r.local_minima as f64),
                0,
            ),
            compare(
                "slice non-convexity",
                p.nonconvex_fraction,
                r.nonconvex_fraction,
                2,
            ),
        ];
        let smoother = readings.iter().filter(|(_, s)| *s > 0).count();
        let rougher = readings.iter().filter(|(_, s)| *s < 0).count();
        let verdict = match (smoother, rougher) {
            (3, _) => "smoother by all three readings",
            (s, 0) if s > 0 => "smoother or as smooth by every reading",
            (0, _) => "not smoother by any reading",
            _ => "smoother by some readings and rougher by others",
        };
        let list: Vec<String> = readings.into_iter().map(|(t, _)| t).collect();
        mdln!(
            md,
            "- **Depth {d}, whole grid: the residual surface is {verdict}**: {}.",
            list.join("; ")
        );
    }
    // Does the plain net's surface roughen with depth (Li et al. Fig. 5)?
    let plains: Vec<&LandscapeSummaryRow> =
        depths.iter().filter_map(|&d| find("plain", d)).collect();
    if let (Some(lo), Some(hi)) = (plains.first(), plains.last()) {
        if lo.depth != hi.depth {
            let (_, sign) = compare("roughness", hi.roughness, lo.roughness, 3);
            let word = if sign > 0 {
                "rougher"
            } else if sign < 0 {
                "smoother"
            } else {
                "as rough"
            };
            mdln!(
                md,
                "- **Whole grid: the plain net's surface is {word} at depth {} than at depth {}**: roughness {} against {} decades, {} against {} local minima, slice non-convexity {} against {}. Li et al. (Fig. 5, CIFAR-10) see the plain net's surface turn chaotic between 20 and 56 layers.",
                hi.depth,
                lo.depth,
                num(hi.roughness, 3),
                num(lo.roughness, 3),
                hi.local_minima,
                lo.local_minima,
                pct(hi.nonconvex_fraction),
                pct(lo.nonconvex_fraction)
            );
            said = true;
        }
    }
    if said {
        mdln!(md);
    }
    mdln!(md, "### {LOSS_LANDSCAPE}");
    mdln!(md);
    mdln!(
        md,
        "*log10 of the training loss over (α, β), one colour scale for every panel, with contour lines; the cross is the trained weights.*"
    );
    mdln!(md);
    mdln!(md, "![{LOSS_LANDSCAPE}](plots/{LOSS_LANDSCAPE}.png)");
    mdln!(md);
    mdln!(md, "### {LOSS_SLICE}");
    mdln!(md);
    mdln!(
        md,
        "*The training loss along δ alone (β = 0), every run on one log axis.*"
    );
    mdln!(md);
    mdln!(md, "![{LOSS_SLICE}](plots/{LOSS_SLICE}.png)");
    mdln!(md);
}
