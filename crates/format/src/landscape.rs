//! Loss-landscape slices (Li et al. 2018, "Visualizing the Loss Landscape
//! of Neural Nets"): the rows of `landscape.csv` and `landscape_summary.csv`,
//! and the readings that say in numbers what the picture shows.
//!
//! `gradscope landscape` evaluates the training loss at θ + αδ + βη on a
//! square grid of (α, β) around the trained weights θ, for two random
//! filter-normalized directions δ and η. From that grid:
//!
//! - [`local_minima`]: grid points lower than all eight neighbours (the
//!   edge is left out, since a point there has no outside neighbour). A
//!   bowl has one; Li et al.'s chaotic plain nets have many.
//! - [`nonconvex_fraction`]: the share of inner points where the surface
//!   curves down in some direction: the 2×2 finite-difference Hessian of
//!   the loss has a negative eigenvalue larger than 1% of its largest one
//!   in size. Li et al. (§6, Fig. 7) map |λmin/λmax| of the true Hessian
//!   the same way: near 0 where the surface is convex.
//! - [`roughness`]: how much the surface climbs and falls beyond one
//!   valley: along each row and column of the grid, the total variation of
//!   log10 loss less what a single valley needs, in decades, averaged. 0
//!   for any bowl, however deep or narrow; every extra bump adds twice its
//!   height.
//!
//! One grid is one sample: of the training seed, of the pair of directions,
//! and of the weights it is centred on. A results folder can hold several
//! grids per run (`--seed 0,1,2` for directions, `--at init` for the
//! untrained weights as a control), each a row of the summary and a file of
//! its own ([`landscape_file`]); [`Replicates`] gathers a reading over them.

use serde::{Deserialize, Serialize};

/// Which weights a grid is centred on: the run's trained weights (its
/// `model.ot`), or its initial weights (rebuilt from its seed), the control
/// that tells the architecture's surface from what training made of it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    #[default]
    Trained,
    Init,
}

impl Weights {
    pub fn as_str(self) -> &'static str {
        match self {
            Weights::Trained => "trained",
            Weights::Init => "init",
        }
    }
}

/// The file in `runs/RUN/` that holds one grid: `landscape.csv` for the
/// trained weights along the directions of seed 0 (the first grid of every
/// run), `landscape-dirS.csv` for another direction seed S, and
/// `landscape-init-dirS.csv` around the initial weights.
pub fn landscape_file(weights: Weights, direction_seed: u64) -> String {
    match (weights, direction_seed) {
        (Weights::Trained, 0) => crate::files::LANDSCAPE_CSV.to_owned(),
        (Weights::Trained, d) => format!("landscape-dir{d}.csv"),
        (Weights::Init, d) => format!("landscape-init-dir{d}.csv"),
    }
}

/// Columns of `landscape.csv`.
pub const LANDSCAPE_HEADER: [&str; 4] = ["alpha", "beta", "loss", "error"];

/// One grid point of `landscape.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandscapeRow {
    /// Step along the first direction δ.
    pub alpha: f64,
    /// Step along the second direction η.
    pub beta: f64,
    /// Mean training loss of the fixed sample (NaN or inf where it
    /// overflowed).
    #[serde(serialize_with = "crate::opt_num")]
    pub loss: Option<f64>,
    /// Training error of the same sample, a fraction.
    #[serde(serialize_with = "crate::opt_num")]
    pub error: Option<f64>,
}

/// One run's row of `landscape_summary.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandscapeSummaryRow {
    pub run: String,
    pub variant: String,
    pub depth: u32,
    pub seed: u64,
    /// The weights the grid is centred on (a summary written before there
    /// was a choice has no column: trained).
    #[serde(default)]
    pub weights: Weights,
    /// Points per side of the grid, the half-width of the grid in units of
    /// the (filter-normalized) directions, the training images the loss is
    /// the mean of, and the seed of the directions.
    pub grid: usize,
    pub span: f64,
    pub samples: usize,
    pub direction_seed: u64,
    /// The loss at the trained weights (α = β = 0) and the grid's range.
    #[serde(serialize_with = "crate::opt_num")]
    pub centre_loss: Option<f64>,
    #[serde(serialize_with = "crate::opt_num")]
    pub min_loss: Option<f64>,
    #[serde(serialize_with = "crate::opt_num")]
    pub max_loss: Option<f64>,
    /// [`local_minima`].
    pub local_minima: usize,
    /// [`nonconvex_fraction`].
    #[serde(serialize_with = "crate::opt_num")]
    pub nonconvex_fraction: Option<f64>,
    /// [`roughness`], in decades of loss.
    #[serde(serialize_with = "crate::opt_num")]
    pub roughness: Option<f64>,
    /// Grid points whose loss was not finite (left out of the readings).
    pub nonfinite: usize,
    /// Wall-clock seconds of the grid's evaluation.
    #[serde(serialize_with = "crate::opt_num")]
    pub elapsed_s: Option<f64>,
}

/// The rows of `results_dir/landscape_summary.csv`, `Ok(None)` when there
/// is none; `gradscope landscape` (to update it) and the report read it
/// here. The error names the file (and the csv crate's line and field).
pub fn read_summary(
    results_dir: &std::path::Path,
) -> Result<Option<Vec<LandscapeSummaryRow>>, String> {
    crate::read_optional_csv(&results_dir.join(crate::files::LANDSCAPE_SUMMARY_CSV))
}

/// What a landscape was evaluated on: the run and the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub run: String,
    pub variant: String,
    pub depth: u32,
    pub seed: u64,
    pub weights: Weights,
    pub grid: usize,
    pub span: f64,
    pub samples: usize,
    pub direction_seed: u64,
    pub elapsed_s: f64,
}

impl LandscapeSummaryRow {
    /// The summary row of a surface: its readings beside what it was
    /// evaluated on.
    pub fn read(surface: &Surface, grid: Grid) -> LandscapeSummaryRow {
        let finite: Vec<f64> = surface
            .loss
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        LandscapeSummaryRow {
            run: grid.run,
            variant: grid.variant,
            depth: grid.depth,
            seed: grid.seed,
            weights: grid.weights,
            grid: grid.grid,
            span: grid.span,
            samples: grid.samples,
            direction_seed: grid.direction_seed,
            centre_loss: Some(surface.centre()),
            min_loss: finite.iter().copied().reduce(f64::min),
            max_loss: finite.iter().copied().reduce(f64::max),
            local_minima: local_minima(surface),
            nonconvex_fraction: nonconvex_fraction(surface),
            roughness: roughness(surface),
            nonfinite: surface.loss.len() - finite.len(),
            elapsed_s: Some(grid.elapsed_s),
        }
    }
}

impl LandscapeSummaryRow {
    /// The file of this row's grid in `runs/RUN/` ([`landscape_file`]).
    pub fn file(&self) -> String {
        landscape_file(self.weights, self.direction_seed)
    }

    /// Rows with the same key describe the same grid; a new one replaces
    /// the old.
    pub fn key(&self) -> (&str, Weights, u64) {
        (&self.run, self.weights, self.direction_seed)
    }
}

/// A reading over the grids of one net (variant, depth, weights): every
/// training seed × direction seed there is. `min`/`max` bound it, so two
/// nets differ beyond the sampling only where their ranges do not overlap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replicates {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (0 for one grid).
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl Replicates {
    /// Over the finite values; `None` when there is none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Replicates> {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let sd = match n {
            1 => 0.0,
            _ => (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt(),
        };
        Some(Replicates {
            n,
            mean,
            sd,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// How `self` (the plain net's) stands against `other` (the residual
    /// net's): `Some(Greater)` when every grid of `self` reads above every
    /// grid of `other`, `Some(Less)` the other way round, `None` when the
    /// ranges overlap (including ties) or either side has a single grid, so
    /// that the difference is not told from the sampling.
    pub fn separated(&self, other: &Replicates) -> Option<std::cmp::Ordering> {
        if self.n < 2 || other.n < 2 {
            return None;
        }
        if self.min > other.max {
            Some(std::cmp::Ordering::Greater)
        } else if self.max < other.min {
            Some(std::cmp::Ordering::Less)
        } else {
            None
        }
    }
}

/// The largest span (and grid coordinate) a landscape takes. Beyond about
/// `f64::MAX / 2` the axis range is infinite and plotters' search for axis
/// key points never ends (it ignored SIGINT); far below that a span is
/// already meaningless for a loss landscape, so the bound leaves margin.
pub const MAX_SPAN: f64 = 1e300;
/// The smallest span: below it the grid's steps are not normal numbers,
/// and neighbouring coordinates may round to one.
pub const MIN_SPAN: f64 = 1e-300;

/// Why `span` cannot be the half-width of a landscape grid, if it cannot:
/// the grid's coordinates and the charts' axis range must be finite and
/// representable (see [`MAX_SPAN`], [`MIN_SPAN`]).
pub fn span_problem(span: f64) -> Option<String> {
    if !(span.is_finite() && span > 0.0) {
        return Some(format!("{span:e} must be a positive number"));
    }
    if !(MIN_SPAN..=MAX_SPAN).contains(&span) {
        return Some(format!(
            "{span:e} is outside {MIN_SPAN:e} to {MAX_SPAN:e}: the grid's coordinates and the charts' axis range must be finite and representable"
        ));
    }
    None
}

/// A square grid of losses: `loss[j * n + i]` at (`alphas[i]`, `betas[j]`),
/// NaN where the loss was not finite or is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Surface {
    pub alphas: Vec<f64>,
    pub betas: Vec<f64>,
    pub loss: Vec<f64>,
}

impl Surface {
    /// The grid the rows of a `landscape.csv` make, or why they do not make
    /// one (a missing point, a repeated one).
    pub fn from_rows(rows: &[LandscapeRow]) -> Result<Surface, String> {
        let axis = |f: fn(&LandscapeRow) -> f64| {
            let mut v: Vec<f64> = rows.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        };
        let (alphas, betas) = (axis(|r| r.alpha), axis(|r| r.beta));
        // Drawn, a coordinate out of bounds would hang the chart's axis.
        if let Some(bad) = alphas.iter().chain(&betas).find(|v| {
            let a = v.abs();
            !(a.is_finite() && (a == 0.0 || (MIN_SPAN / 1e3..=MAX_SPAN).contains(&a)))
        }) {
            return Err(format!(
                "the coordinate {bad:e} is not finite or outside {MIN_SPAN:e} to {MAX_SPAN:e} in size"
            ));
        }
        let (n, m) = (alphas.len(), betas.len());
        if n < 3 || m < 3 {
            return Err(format!(
                "{n}×{m} distinct (alpha, beta) values; a surface needs at least 3×3"
            ));
        }
        if rows.len() != n * m {
            return Err(format!(
                "{} rows for a {n}×{m} grid: points are missing or repeated",
                rows.len()
            ));
        }
        let mut loss = vec![f64::NAN; n * m];
        let mut seen = vec![false; n * m];
        for r in rows {
            let i = alphas.partition_point(|a| *a < r.alpha);
            let j = betas.partition_point(|b| *b < r.beta);
            if seen[j * n + i] {
                return Err(format!("the point ({}, {}) is repeated", r.alpha, r.beta));
            }
            seen[j * n + i] = true;
            loss[j * n + i] = r.loss.filter(|l| l.is_finite()).unwrap_or(f64::NAN);
        }
        Ok(Surface {
            alphas,
            betas,
            loss,
        })
    }

    /// The surface of `f(α, β)` on `n` points per side over [−span, span]
    /// (for tests and for the readings' reference cases).
    pub fn of(n: usize, span: f64, f: impl Fn(f64, f64) -> f64) -> Surface {
        let axis = grid_axis(n, span);
        let mut loss = Vec::with_capacity(n * n);
        for &b in &axis {
            for &a in &axis {
                let v = f(a, b);
                loss.push(if v.is_finite() { v } else { f64::NAN });
            }
        }
        Surface {
            alphas: axis.clone(),
            betas: axis,
            loss,
        }
    }

    /// The loss at (`alphas[i]`, `betas[j]`).
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.loss[j * self.alphas.len() + i]
    }

    /// The loss at the grid point nearest (0, 0): the trained weights.
    pub fn centre(&self) -> f64 {
        let nearest = |v: &[f64]| {
            (0..v.len())
                .min_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs()))
                .unwrap_or(0)
        };
        self.at(nearest(&self.alphas), nearest(&self.betas))
    }

    /// The 1-D slice along δ: (α, loss) on the row nearest β = 0.
    pub fn slice_alpha(&self) -> Vec<(f64, f64)> {
        let j = (0..self.betas.len())
            .min_by(|&a, &b| self.betas[a].abs().total_cmp(&self.betas[b].abs()))
            .unwrap_or(0);
        (0..self.alphas.len())
            .map(|i| (self.alphas[i], self.at(i, j)))
            .collect()
    }

    /// Grid points with a finite loss.
    pub fn finite(&self) -> usize {
        self.loss.iter().filter(|l| l.is_finite()).count()
    }
}

/// `n` evenly spaced values over [−span, span]; for odd `n` the middle one
/// is exactly 0, so the grid holds the trained weights themselves.
pub fn grid_axis(n: usize, span: f64) -> Vec<f64> {
    if n < 2 {
        return vec![0.0; n];
    }
    let half = (n - 1) as f64 / 2.0;
    (0..n).map(|i| span * (i as f64 - half) / half).collect()
}

/// Inner grid points whose loss is below that of all eight neighbours.
pub fn local_minima(s: &Surface) -> usize {
    local_minima_where(s, &|_, _| true)
}

/// [`local_minima`] counted only at the points `(i, j)` that `keep`
/// admits; their neighbours are compared whatever `keep` says of them.
fn local_minima_where(s: &Surface, keep: &dyn Fn(usize, usize) -> bool) -> usize {
    let (n, m) = (s.alphas.len(), s.betas.len());
    let mut count = 0;
    for j in 1..m.saturating_sub(1) {
        for i in 1..n.saturating_sub(1) {
            if !keep(i, j) {
                continue;
            }
            let v = s.at(i, j);
            if !v.is_finite() {
                continue;
            }
            let lowest = (-1i64..=1).all(|dj| {
                (-1i64..=1).all(|di| {
                    (di == 0 && dj == 0) || {
                        let w = s.at((i as i64 + di) as usize, (j as i64 + dj) as usize);
                        // A neighbour that overflowed is higher.
                        !w.is_finite() || v < w
                    }
                })
            });
            count += usize::from(lowest);
        }
    }
    count
}

/// The share of inner points whose finite-difference Hessian of the loss
/// has a negative eigenvalue of more than 1% of the larger one's size;
/// `None` when no inner point has all its neighbours finite.
pub fn nonconvex_fraction(s: &Surface) -> Option<f64> {
    nonconvex_fraction_where(s, &|_, _| true)
}

/// [`nonconvex_fraction`] over the inner points `keep` admits.
fn nonconvex_fraction_where(s: &Surface, keep: &dyn Fn(usize, usize) -> bool) -> Option<f64> {
    let (n, m) = (s.alphas.len(), s.betas.len());
    let (mut points, mut concave) = (0usize, 0usize);
    for j in 1..m.saturating_sub(1) {
        for i in 1..n.saturating_sub(1) {
            if !keep(i, j) {
                continue;
            }
            let l = |di: i64, dj: i64| s.at((i as i64 + di) as usize, (j as i64 + dj) as usize);
            let ha = s.alphas[i + 1] - s.alphas[i - 1];
            let hb = s.betas[j + 1] - s.betas[j - 1];
            let (ha2, hb2) = (ha / 2.0, hb / 2.0);
            let laa = (l(1, 0) - 2.0 * l(0, 0) + l(-1, 0)) / (ha2 * ha2);
            let lbb = (l(0, 1) - 2.0 * l(0, 0) + l(0, -1)) / (hb2 * hb2);
            let lab = (l(1, 1) - l(1, -1) - l(-1, 1) + l(-1, -1)) / (ha * hb);
            if !(laa.is_finite() && lbb.is_finite() && lab.is_finite()) {
                continue;
            }
            let mean = (laa + lbb) / 2.0;
            let radius = (((laa - lbb) / 2.0).powi(2) + lab * lab).sqrt();
            let (lo, hi) = (mean - radius, mean + radius);
            points += 1;
            if lo < 0.0 && -lo > 0.01 * hi.abs().max(-lo) {
                concave += 1;
            }
        }
    }
    (points > 0).then(|| concave as f64 / points as f64)
}

/// The readings of a surface where they speak of the basin around θ:
/// inside the central window |α|, |β| ≤ `window` and at points whose loss
/// is below `chance` (ln(classes): what predicting the class prior
/// scores). A dip on a plateau at or above chance is not a minimum a net
/// trains into, and the far corners of a grid (where a plain net's loss
/// reaches 10⁷) weigh as much in a whole-grid share as the basin does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Restricted {
    pub chance: f64,
    pub window: f64,
    /// Share of the grid's points below chance.
    pub below_chance: f64,
    /// Share of the grid inside the window and below chance: what the
    /// two readings below are taken over.
    pub region: f64,
    /// [`local_minima`] in that region.
    pub local_minima: usize,
    /// [`nonconvex_fraction`] in that region (`None` when no inner point
    /// of it has finite neighbours).
    pub nonconvex_fraction: Option<f64>,
}

/// [`Restricted`] readings of `s`.
pub fn restricted(s: &Surface, chance: f64, window: f64) -> Restricted {
    let total = s.loss.len().max(1) as f64;
    let inside = |i: usize, j: usize| {
        s.alphas[i].abs() <= window + 1e-12
            && s.betas[j].abs() <= window + 1e-12
            && s.at(i, j) < chance
    };
    let below = s.loss.iter().filter(|l| **l < chance).count();
    let n = s.alphas.len();
    let region = (0..s.loss.len()).filter(|k| inside(k % n, k / n)).count();
    Restricted {
        chance,
        window,
        below_chance: below as f64 / total,
        region: region as f64 / total,
        local_minima: local_minima_where(s, &inside),
        nonconvex_fraction: nonconvex_fraction_where(s, &inside),
    }
}

/// How much the surface climbs and falls beyond one valley, in decades:
/// for each row and each column of the grid, the total variation of
/// log10 loss along it (the sum of |steps|) less what a single valley
/// needs (down from the first point to the lowest, up to the last),
/// averaged over the rows and columns whose every point is finite and
/// positive; `None` when none is. Exactly 0 when every row and column has
/// one valley, whatever its depth or shape (a bowl, narrow or wide); each
/// extra bump adds twice its height.
pub fn roughness(s: &Surface) -> Option<f64> {
    let (n, m) = (s.alphas.len(), s.betas.len());
    let excess = |line: &[f64]| -> Option<f64> {
        if line.iter().any(|v| !(v.is_finite() && *v > 0.0)) || line.len() < 2 {
            return None;
        }
        let logs: Vec<f64> = line.iter().map(|v| v.log10()).collect();
        let tv: f64 = logs.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
        let low = logs.iter().copied().fold(f64::INFINITY, f64::min);
        let valley = (logs[0] - low) + (logs[logs.len() - 1] - low);
        // Rounding of the sums leaves ~1e-16 on a line with one valley;
        // anything below a billionth of a decade is that, not a bump.
        let extra = tv - valley;
        Some(if extra < 1e-9 { 0.0 } else { extra })
    };
    let rows = (0..m).map(|j| (0..n).map(|i| s.at(i, j)).collect::<Vec<_>>());
    let cols = (0..n).map(|i| (0..m).map(|j| s.at(i, j)).collect::<Vec<_>>());
    let lines: Vec<f64> = rows.chain(cols).filter_map(|l| excess(&l)).collect();
    (!lines.is_empty()).then(|| lines.iter().sum::<f64>() / lines.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 30 §5: a difference between two nets' landscapes is claimed
    /// only where every grid of one reads beyond every grid of the other;
    /// overlapping ranges, ties and single grids are no difference.
    #[test]
    fn replicated_readings_separate_only_without_overlap() {
        use std::cmp::Ordering::*;
        let r = |v: &[f64]| Replicates::of(v.iter().copied()).unwrap();
        let plain = r(&[0.30, 0.36, 0.41]);
        assert_eq!(plain.n, 3);
        assert!((plain.mean - 0.3566666).abs() < 1e-6);
        assert!((plain.sd - 0.0551).abs() < 1e-3);
        assert_eq!(plain.separated(&r(&[0.03, 0.05, 0.06])), Some(Greater));
        assert_eq!(r(&[0.03, 0.05]).separated(&plain), Some(Less));
        assert_eq!(plain.separated(&r(&[0.05, 0.31])), None, "overlap");
        assert_eq!(
            r(&[0.2, 0.3]).separated(&r(&[0.3, 0.4])),
            None,
            "a tie at the edge"
        );
        assert_eq!(r(&[0.9]).separated(&r(&[0.1, 0.2])), None, "one grid");
        assert_eq!(Replicates::of([f64::NAN]), None);
    }

    /// Each grid of a run has its own file; the first trained grid keeps
    /// the name every folder written before replication has.
    #[test]
    fn every_grid_has_its_own_file() {
        assert_eq!(landscape_file(Weights::Trained, 0), "landscape.csv");
        assert_eq!(landscape_file(Weights::Trained, 2), "landscape-dir2.csv");
        assert_eq!(landscape_file(Weights::Init, 0), "landscape-init-dir0.csv");
        let old = "run,variant,depth,seed,grid,span,samples,direction_seed,centre_loss,min_loss,max_loss,local_minima,nonconvex_fraction,roughness,nonfinite,elapsed_s\nplain-d20-s0,plain,20,0,25,1.0,1024,0,0.2,0.2,441.9,2,0.28,0.014,0,43.0\n";
        let rows: Vec<LandscapeSummaryRow> = csv::Reader::from_reader(old.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows[0].weights, Weights::Trained);
        assert_eq!(rows[0].file(), "landscape.csv");
    }

    /// Issue 30: plain-d56's extra minima sat at loss 2.9–4.5 on a plateau
    /// above chance (ln 10 = 2.30). Restricted to the central window and
    /// below chance, a bowl with bumps on a high plateau around it counts
    /// only the bowl's minimum; the shares say how much of the grid that
    /// is.
    #[test]
    fn restricted_readings_leave_out_the_plateau_above_chance() {
        let chance = 10f64.ln();
        // A bowl (loss 0.1 at θ) rising to a plateau at 3 with ripples.
        let s = Surface::of(25, 1.0, |a, b| {
            let r2 = a * a + b * b;
            if r2 < 0.09 {
                0.1 + 20.0 * r2
            } else {
                3.0 + 0.5 * ((13.0 * a).sin() * (11.0 * b).cos())
            }
        });
        assert!(local_minima(&s) > 1, "the plateau's ripples are minima");
        let r = restricted(&s, chance, 0.5);
        assert_eq!(r.local_minima, 1);
        assert!(r.below_chance > 0.0 && r.below_chance < 0.2, "{r:?}");
        assert!(r.region <= r.below_chance);
        // Only the bowl's rim, where it meets the plateau, curves down.
        let (inside, whole) = (
            r.nonconvex_fraction.unwrap(),
            nonconvex_fraction(&s).unwrap(),
        );
        assert!(inside < 0.1 && whole > 0.3, "{inside} {whole}");
    }

    /// Issue 38 §4: `--span 1e308` made a 2e308-wide axis (infinite), and
    /// drawing it hung in plotters; such spans and coordinates are refused.
    #[test]
    fn spans_and_coordinates_must_be_finite_and_representable() {
        assert_eq!(span_problem(1.0), None);
        assert_eq!(span_problem(1e-3), None);
        for bad in [
            1e308,
            9e307,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            0.0,
            -1.0,
            1e-310,
        ] {
            let why = span_problem(bad).unwrap_or_else(|| panic!("{bad:e} accepted"));
            assert!(!why.contains('\n'), "{why}");
        }
        let mut rows = Vec::new();
        for b in [-1e308, 0.0, 1e308] {
            for a in [-1.0, 0.0, 1.0] {
                rows.push(LandscapeRow {
                    alpha: a,
                    beta: b,
                    loss: Some(1.0),
                    error: Some(0.5),
                });
            }
        }
        let why = Surface::from_rows(&rows).unwrap_err();
        assert!(why.contains("1e308"), "{why}");
    }

    #[test]
    fn a_bowl_has_one_minimum_and_no_roughness() {
        // A convex quadratic bowl in log loss (its loss exp(q) is convex
        // too): one minimum, off centre, nowhere concave, one valley along
        // every row and column.
        let s = Surface::of(25, 1.0, |a, b| {
            10f64.powf(0.5 + 2.0 * (a - 0.2).powi(2) + (b + 0.1).powi(2) + 0.5 * a * b)
        });
        assert_eq!(local_minima(&s), 1);
        // Where the loss climbs tenfold in a few grid steps the finite
        // differences are coarse, and a few edge points (0.6% here) read
        // as curving down: a grid reading, not the surface's.
        assert!(nonconvex_fraction(&s).unwrap() < 0.01);
        assert_eq!(roughness(&s), Some(0.0));
        // A quadratic bowl in the loss itself, narrow along β: one minimum,
        // convex, and one valley along every row and column.
        let q = Surface::of(25, 1.0, |a, b| 0.1 + a * a + 20.0 * b * b);
        assert_eq!(local_minima(&q), 1);
        assert_eq!(nonconvex_fraction(&q), Some(0.0));
        assert_eq!(roughness(&q), Some(0.0));
        // One bump of half a decade on one row adds about a decade there
        // (up and down), so a fraction of a decade over the 50 lines.
        let bumped = Surface::of(25, 1.0, |a, b| {
            let bump = if b == 0.0 && (a - 0.5).abs() < 1e-9 {
                10f64.powf(0.5)
            } else {
                1.0
            };
            (0.1 + a * a + b * b) * bump
        });
        let r = roughness(&bumped).unwrap();
        assert!(r > 0.0 && r < 0.1, "{r}");
    }

    #[test]
    fn a_sum_of_sines_is_rough() {
        // sin(6πα)·sin(6πβ) over [−1, 1]² has 36 cells of each sign: 18
        // troughs inside the grid, and half the surface curves down.
        let s = Surface::of(49, 1.0, |a, b| {
            10f64.powf(
                1.0 + (6.0 * std::f64::consts::PI * a).sin()
                    * (6.0 * std::f64::consts::PI * b).sin(),
            )
        });
        assert!(local_minima(&s) >= 12, "{}", local_minima(&s));
        assert!(nonconvex_fraction(&s).unwrap() > 0.3);
        assert!(roughness(&s).unwrap() > 0.3, "{:?}", roughness(&s));
    }

    #[test]
    fn rows_make_a_grid_or_say_why_not() {
        let axis = grid_axis(5, 0.5);
        assert_eq!(axis[2], 0.0);
        assert_eq!((axis[0], axis[4]), (-0.5, 0.5));
        let mut rows = Vec::new();
        for &b in &axis {
            for &a in &axis {
                rows.push(LandscapeRow {
                    alpha: a,
                    beta: b,
                    loss: Some(1.0 + a * a + b * b),
                    error: Some(0.1),
                });
            }
        }
        let s = Surface::from_rows(&rows).unwrap();
        assert_eq!(s.centre(), 1.0);
        assert_eq!(s.slice_alpha()[0], (-0.5, 1.25));
        let mut short = rows.clone();
        short.pop();
        assert!(Surface::from_rows(&short)
            .unwrap_err()
            .contains("missing or repeated"));
        let mut twice = rows.clone();
        twice[1] = twice[0].clone();
        assert!(Surface::from_rows(&twice).is_err());
        // A loss that overflowed is no minimum and no part of the fit.
        rows[12].loss = Some(f64::INFINITY);
        let s = Surface::from_rows(&rows).unwrap();
        assert_eq!((s.finite(), local_minima(&s)), (24, 0));
    }
}
