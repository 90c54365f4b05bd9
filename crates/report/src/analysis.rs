//! The numbers behind the report's sentences: error over seeds, the trend
//! of error with depth, how healthy a first/last gradient ratio is, and the
//! per-layer saturation and gradient of one run.
//!
//! The thresholds are stated here once, so the report's wording can be
//! checked against them.

use std::collections::BTreeMap;

use gradscope_format::decay::{readings_of, Readings};
use gradscope_plot::RunData;

use crate::runs::{FinalMetrics, Loaded, RunEntry};

/// A change of final training error with depth smaller than this (one
/// percentage point), or than the seeds' spread, is "no change".
pub const RISE_TOL: f64 = 0.01;

/// A first/last ‖dL/dh‖ ratio inside [1/RATIO_BAND, RATIO_BAND] is healthy:
/// the gradient reaching the first layer is within two orders of magnitude
/// of the last layer's. Below it vanishes toward the input; above it grows.
pub const RATIO_BAND: f64 = 100.0;

/// A spread over the trunk of more than this many decades (the first hidden
/// point's rms 100× below the last one's) is a gradient vanishing toward
/// the input; below minus this, one growing toward it. The same factor of
/// 100 as [`RATIO_BAND`].
pub const VANISH_SPREAD: f64 = 2.0;

/// How a spread over the trunk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The first trunk point is exactly 0 in float32 (infinite spread).
    ExactZero,
    Vanishing,
    Even,
    Growing,
}

pub fn flow(spread: f64) -> Flow {
    if spread == f64::INFINITY {
        Flow::ExactZero
    } else if spread > VANISH_SPREAD {
        Flow::Vanishing
    } else if spread < -VANISH_SPREAD {
        Flow::Growing
    } else {
        Flow::Even
    }
}

impl Flow {
    pub fn describe(self) -> &'static str {
        match self {
            Flow::ExactZero => "vanished: the first hidden point is exactly 0 in float32",
            Flow::Vanishing => "vanishing toward the input",
            Flow::Even => "even: within two decades",
            Flow::Growing => "growing toward the input",
        }
    }
}

/// The scale-free readings of one run, from its `gradients.csv`: decay and
/// spread of ‖∇W‖·‖W‖ over the weight layers between the input layer and
/// the head. With BatchNorm after a layer, rescaling W changes nothing but
/// dL/dW, which scales as 1/‖W‖; the product does not change, so a fall in
/// it is a vanishing gradient and not a growing weight. `None` when the
/// file has no `weight_norm` column (written before it existed).
pub fn scale_free_readings(run: &RunData) -> Option<Readings> {
    let rows = run.gradients.as_deref()?;
    let weighted: Vec<usize> = rows
        .iter()
        .filter(|r| r.scale_free().is_some())
        .map(|r| r.layer)
        .collect();
    let (first, last) = (*weighted.iter().min()?, *weighted.iter().max()?);
    let readings = readings_of(rows, |r| {
        (r.layer != first && r.layer != last)
            .then(|| r.scale_free())
            .flatten()
    });
    readings.spread_init.or(readings.decay_init)?;
    Some(readings)
}

/// The effective learning rate's spread over the same weight layers as
/// [`scale_free_readings`]: log10 of the top layer's lr·‖∇W‖/‖W‖ over the
/// bottom one's (`relative` in gradients.csv; one step's lr is common to
/// every layer, so it cancels in the spread), positive when the bottom
/// moves less. For a weight followed by BatchNorm, lr·‖∇W‖/‖W‖ is how far
/// one SGD step turns it (Philipp et al. 2018). Returns the spread at step
/// 0 alone (the five-step median would already hold what the first step
/// did) and the median over the last five probe steps; `None` without the
/// `relative` column.
pub fn effective_lr_spreads(run: &RunData) -> Option<(Option<f64>, Option<f64>)> {
    let rows = run.gradients.as_deref()?;
    let weighted: Vec<usize> = rows
        .iter()
        .filter(|r| r.relative.is_some())
        .map(|r| r.layer)
        .collect();
    let (first, last) = (*weighted.iter().min()?, *weighted.iter().max()?);
    let inner = |r: &gradscope_format::GradientRow| {
        (r.layer != first && r.layer != last)
            .then_some(r.relative)
            .flatten()
    };
    let mut step0: Vec<&gradscope_format::GradientRow> = rows
        .iter()
        .filter(|r| r.step == 0 && inner(r).is_some())
        .collect();
    step0.sort_by_key(|r| r.layer);
    let profile: Vec<f64> = step0.iter().filter_map(|r| inner(r)).collect();
    let at0 = gradscope_format::decay::spread(&profile);
    let end = readings_of(rows, inner).spread_final;
    (at0.is_some() || end.is_some()).then_some((at0, end))
}

/// Mean and sample standard deviation of the finite values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// `None` for a single value.
    pub std: Option<f64>,
    pub n: usize,
}

/// Mean ± sample std (n − 1) of the finite values; `None` if there are none.
pub fn stat(values: impl IntoIterator<Item = Option<f64>>) -> Option<Stat> {
    // The same sums as the landscape's replicates, which format computes.
    let r = gradscope_format::landscape::Replicates::of(values.into_iter().flatten())?;
    Some(Stat {
        mean: r.mean,
        std: (r.n > 1).then_some(r.sd),
        n: r.n,
    })
}

/// Which way a variant's error goes from its shallowest to its deepest net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Rises,
    Flat,
    Falls,
}

/// Final training error against depth for one variant (completed runs).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthTrend {
    pub variant: String,
    /// (depth, error over seeds), ascending depth, depths with data only.
    pub points: Vec<(u32, Stat)>,
    /// The rise of the least-squares line through every depth's mean, from
    /// the shallowest depth to the deepest (equal to deepest − shallowest
    /// with two depths).
    pub rise: f64,
    /// The change that counts: the larger of [`RISE_TOL`] and the two end
    /// points' seed spreads added.
    pub tolerance: f64,
    pub trend: Trend,
    /// Whether every deeper net has a higher mean error than the one before.
    pub monotonic: bool,
}

impl DepthTrend {
    pub fn shallowest(&self) -> (u32, Stat) {
        self.points[0]
    }
    pub fn deepest(&self) -> (u32, Stat) {
        self.points[self.points.len() - 1]
    }
}

/// The experiment's model family (`mlp` when no record says).
fn family(loaded: &Loaded) -> String {
    loaded
        .config()
        .and_then(|c| c.pointer("/model/family"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("mlp")
        .to_owned()
}

/// Whether the plain net and its residual twin are one network at this
/// depth: an MLP of depth 2 has no hidden layer for a shortcut to skip.
pub fn twins_identical(family: &str, depth: u32) -> bool {
    family == "mlp" && depth <= 2
}

/// The final-training-error trend of `variant`, from its completed runs;
/// `None` when fewer than two depths have one. Depths where the twins are
/// one network are left out. The rise is that of the least-squares line
/// through every depth's mean (depths at equal spacing, as the sweeps are
/// laid out), so one odd depth in the middle or at an end does not decide
/// the verdict alone.
pub fn depth_trend(loaded: &Loaded, variant: &str) -> Option<DepthTrend> {
    let family = family(loaded);
    let points: Vec<(u32, Stat)> = loaded
        .depths()
        .into_iter()
        .filter(|&d| !twins_identical(&family, d))
        .filter_map(|d| Some((d, completed(&loaded.group(variant, d), train_error)?)))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0].1, points[points.len() - 1].1);
    let n = points.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = points.iter().map(|p| p.1.mean).sum::<f64>() / n;
    let (sxy, sxx) = points
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(sxy, sxx), (i, p)| {
            let dx = i as f64 - mx;
            (sxy + dx * (p.1.mean - my), sxx + dx * dx)
        });
    let rise = sxy / sxx * (n - 1.0);
    let tolerance = RISE_TOL.max(first.std.unwrap_or(0.0) + last.std.unwrap_or(0.0));
    let trend = if rise > tolerance {
        Trend::Rises
    } else if rise < -tolerance {
        Trend::Falls
    } else {
        Trend::Flat
    };
    let monotonic = points.windows(2).all(|w| w[1].1.mean > w[0].1.mean);
    Some(DepthTrend {
        variant: variant.to_owned(),
        points,
        rise,
        tolerance,
        trend,
        monotonic,
    })
}

/// A run whose training loss stopped falling while it was still far from
/// fitting: over the last quarter of its training rows the loss fell by
/// less than [`STALL_FALL`] of its value, and that value is above
/// [`STALL_SHARE`] of the first row's. Returns (first, last) loss.
pub fn stalled(run: &RunData) -> Option<(f64, f64)> {
    let losses: Vec<f64> = run
        .metrics
        .as_deref()?
        .iter()
        .filter(|m| m.split == gradscope_plot::SPLIT_TRAIN)
        .filter_map(|m| m.loss)
        .filter(|l| l.is_finite())
        .collect();
    if losses.len() < 8 {
        return None;
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    let quarter = losses[losses.len() * 3 / 4];
    let stopped = quarter - last < STALL_FALL * quarter;
    (stopped && last > STALL_SHARE * first).then_some((first, last))
}

/// See [`stalled`]: a fall of under 5% over the last quarter of training…
pub const STALL_FALL: f64 = 0.05;
/// …at a loss above a tenth of where it started.
pub const STALL_SHARE: f64 = 0.1;

/// Mean ± std of a final metric (`train_error`, `test_error`) over the
/// completed runs of a group: what every table and verdict averages.
pub fn completed(group: &[&RunEntry], metric: fn(&FinalMetrics) -> Option<f64>) -> Option<Stat> {
    stat(
        group
            .iter()
            .filter(|e| e.is_completed())
            .map(|e| e.record.as_ref().and_then(|r| metric(&r.final_metrics))),
    )
}

pub fn train_error(m: &FinalMetrics) -> Option<f64> {
    m.train_error
}

pub fn test_error(m: &FinalMetrics) -> Option<f64> {
    m.test_error
}

/// How a first/last ‖dL/dh‖ ratio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Exactly 0 at the first layer: the float32 tensor is all zeros.
    Underflow,
    /// Below 1/[`RATIO_BAND`]: vanishing toward the input.
    Vanishing,
    Healthy,
    /// Above [`RATIO_BAND`]: growing toward the input.
    Exploding,
}

pub fn health(ratio: f64) -> Health {
    if ratio == 0.0 {
        Health::Underflow
    } else if ratio < 1.0 / RATIO_BAND {
        Health::Vanishing
    } else if ratio > RATIO_BAND {
        Health::Exploding
    } else {
        Health::Healthy
    }
}

impl Health {
    pub fn describe(self) -> &'static str {
        match self {
            Health::Underflow => "the first layer's gradient is exactly 0 in float32",
            Health::Vanishing => "vanishing toward the input",
            Health::Healthy => "healthy: within two orders of magnitude",
            Health::Exploding => "exploding: growing toward the input",
        }
    }
}

/// One hidden layer of one run: the Glorot & Bengio view.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// Probe-point index, 0 nearest the input.
    pub layer: usize,
    pub name: String,
    /// Saturated fraction at the first probed step.
    pub sat_first: Option<f64>,
    /// Highest saturated fraction over the run and the step it was seen.
    pub sat_peak: Option<(f64, u64)>,
    /// Saturated fraction at the last probed step.
    pub sat_last: Option<f64>,
    /// Mean response at the first probed step.
    pub mean_first: Option<f64>,
    /// Lowest mean response over the run and the step it was seen (the
    /// sigmoid top layer of Glorot & Bengio sinks toward 0).
    pub mean_min: Option<(f64, u64)>,
    /// Mean response at the last probed step.
    pub mean_last: Option<f64>,
    /// ‖dL/dh‖ at step 0 at this layer's output.
    pub grad_init: Option<f64>,
}

/// The layers that have a response (activations.csv) in `run`, with their
/// saturation over training and their back-propagated gradient at step 0.
pub fn layer_rows(run: &RunData) -> Vec<LayerRow> {
    let mut rows: BTreeMap<usize, LayerRow> = BTreeMap::new();
    let acts = run.activations.as_deref().unwrap_or_default();
    let first = acts.iter().map(|a| a.step).min();
    let last = acts.iter().map(|a| a.step).max();
    for a in acts.iter().filter(|a| a.is_layer_response()) {
        let row = rows.entry(a.layer).or_insert_with(|| LayerRow {
            layer: a.layer,
            name: a.name.clone(),
            sat_first: None,
            sat_peak: None,
            sat_last: None,
            mean_first: None,
            mean_min: None,
            mean_last: None,
            grad_init: None,
        });
        let sat = a.saturation.filter(|s| s.is_finite());
        if Some(a.step) == first {
            row.sat_first = sat;
            row.mean_first = a.mean;
        }
        if Some(a.step) == last {
            row.sat_last = sat;
            row.mean_last = a.mean;
        }
        if let Some(m) = a.mean.filter(|m| m.is_finite()) {
            if row.mean_min.is_none_or(|(p, _)| m < p) {
                row.mean_min = Some((m, a.step));
            }
        }
        if let Some(s) = sat {
            if row.sat_peak.is_none_or(|(p, _)| s > p) {
                row.sat_peak = Some((s, a.step));
            }
        }
    }
    for g in run.gradients.iter().flatten() {
        if g.step == 0 && g.is_output() {
            if let Some(row) = rows.get_mut(&g.layer) {
                row.grad_init = g.rms.or(g.l2);
            }
        }
    }
    rows.into_values().collect()
}

/// Largest over smallest ‖dL/dh‖ at step 0 across `rows` (positive finite
/// values only): 1 means perfectly even back-propagated gradients.
pub fn gradient_spread(rows: &[LayerRow]) -> Option<f64> {
    let v: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.grad_init)
        .filter(|g| g.is_finite() && *g > 0.0)
        .collect();
    if v.len() < 2 {
        return None;
    }
    let max = v.iter().copied().fold(f64::MIN, f64::max);
    let min = v.iter().copied().fold(f64::MAX, f64::min);
    Some(max / min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_uses_sample_std_and_skips_non_finite() {
        let s = stat([Some(0.1), Some(0.3), None, Some(f64::NAN)]).unwrap();
        assert_eq!(s.n, 2);
        assert!((s.mean - 0.2).abs() < 1e-12);
        // Sample std of {0.1, 0.3}: sqrt(0.02 / 1).
        assert!((s.std.unwrap() - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!(stat([Some(0.5)]).unwrap().std, None);
        assert!(stat([None, Some(f64::INFINITY)]).is_none());
    }

    #[test]
    fn ratios_are_classed_by_two_decades() {
        assert_eq!(health(0.0), Health::Underflow);
        assert_eq!(health(1e-3), Health::Vanishing);
        assert_eq!(health(0.05), Health::Healthy);
        assert_eq!(health(50.0), Health::Healthy);
        assert_eq!(health(1e4), Health::Exploding);
    }

    fn run_with_losses(losses: &[f64]) -> RunData {
        use gradscope_plot::{MetricRow, SummaryRow};
        let summary: SummaryRow = csv::Reader::from_reader(
            "run,variant,depth,seed,status\nresidual-d32-s0,residual,32,0,completed\n".as_bytes(),
        )
        .deserialize()
        .next()
        .unwrap()
        .unwrap();
        RunData {
            summary,
            diverged_at_step: None,
            metrics: Some(
                losses
                    .iter()
                    .enumerate()
                    .map(|(i, &l)| MetricRow {
                        step: 50 * i as u64,
                        epoch: None,
                        split: gradscope_plot::SPLIT_TRAIN.to_owned(),
                        loss: Some(l),
                        error: None,
                        lr: None,
                        grad_norm: None,
                        elapsed_s: None,
                    })
                    .collect(),
            ),
            gradients: None,
            activations: None,
        }
    }

    /// Issue 12, §3: a run whose loss plateaus far above where a fit ends
    /// (the identity task's residual-32 at PyTorch's default init stopped at
    /// 0.69 of its start) is "did not converge"; a run that keeps falling,
    /// or one that fell to a tenth of its start, is not.
    #[test]
    fn stalled_runs_are_those_whose_loss_stopped_high() {
        let plateau: Vec<f64> = (0..20)
            .map(|i| if i < 5 { 1.0 - 0.06 * i as f64 } else { 0.7 })
            .collect();
        assert_eq!(stalled(&run_with_losses(&plateau)), Some((1.0, 0.7)));
        let falling: Vec<f64> = (0..20).map(|i| 0.9f64.powi(i)).collect();
        assert_eq!(stalled(&run_with_losses(&falling)), None);
        let fitted: Vec<f64> = (0..20)
            .map(|i| if i < 5 { 1.0 - 0.19 * i as f64 } else { 0.05 })
            .collect();
        assert_eq!(stalled(&run_with_losses(&fitted)), None);
        // Too few rows to judge.
        assert_eq!(stalled(&run_with_losses(&[1.0, 1.0, 1.0])), None);
    }

    #[test]
    fn only_mlp_depth_two_makes_identical_twins() {
        assert!(twins_identical("mlp", 2));
        assert!(!twins_identical("mlp", 3));
        assert!(!twins_identical("cnn", 8));
    }
}
