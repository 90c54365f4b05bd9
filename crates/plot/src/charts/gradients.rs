//! What the gradient charts (c), (d) and the heatmap read from `gradients.csv`: one kind of
//! trunk point per run, numbered from the input side, and which run of a group they draw.

use std::collections::BTreeMap;

use crate::axis::{Axis, Scale};
use crate::figure::{drawable, has_zeros};
use crate::read::{ResultsDir, RunData};

use super::{runs_of, LABEL_BLOCK};

const LABEL_LAYER: &str = "layer (0 = input side)";
/// A recurrent net's trunk: its time steps.
pub(crate) const LABEL_TIME: &str = "time step (0 = first)";

const LABEL_GRAD: &str = "rms of dL/dh per element";

/// Legend suffix of a gradient series whose values are all exactly 0: it has
/// no line, only ▼ on the bottom edge.
pub(crate) const ALL_ZERO: &str = " — all exactly 0 in float32";

/// The y axis of the gradient charts: log scale, with exact zeros (a float32
/// tensor of zeros: the backward pass itself underflowed, as in a sigmoid
/// plain net of depth 64) drawn on the bottom edge rather than silently
/// dropped. The probe accumulates in float64, so anything else reads its
/// true value however small.
pub(crate) fn gradient_axis() -> Axis {
    let mut y = Axis::new(LABEL_GRAD, Scale::Log);
    y.zero_floor = true;
    y
}

/// How a gradient series shows on [`gradient_axis`]: `None` when it has
/// nothing to show, else whether it has only zeros (no line, ▼ only).
pub(crate) fn gradient_series_kind(points: &[(f64, f64)]) -> Option<bool> {
    if drawable(points, Scale::Linear, Scale::Log) {
        Some(false)
    } else if has_zeros(points, Scale::Linear) {
        Some(true)
    } else {
        None
    }
}

/// The kind of probe point the gradient charts draw for a run: the name
/// suffix of its trunk points (`linear` for an MLP's layers, `out` for the
/// block outputs of a CNN or ResNet), so that one line never mixes block
/// outputs with the convs inside the blocks (the sawtooth of issue 12).
/// `None` for files without the `trunk` column: every point is drawn.
pub(crate) fn trunk_kind(run: &RunData) -> Option<&str> {
    run.gradients
        .iter()
        .flatten()
        .find(|r| r.trunk)
        .map(|r| r.name.rsplit('.').next().unwrap_or(&r.name))
}

/// Per-element rms of dL/dh of one run, as `step -> [(position, rms)]`
/// sorted by position: the points of the run's trunk kind (see
/// [`trunk_kind`]) numbered 0, 1, … from the input side. Rows without a
/// value are kept as NaN: the renderer drops them and breaks the line.
/// Files written before the rms column fall back to the L2 norm.
pub(crate) fn output_grads(run: &RunData) -> BTreeMap<u64, BTreeMap<usize, f64>> {
    let kind = trunk_kind(run);
    let rows: Vec<&crate::read::GradientRow> = run
        .gradients
        .iter()
        .flatten()
        .filter(|r| r.is_output())
        .filter(|r| kind.is_none_or(|k| r.name.rsplit('.').next() == Some(k)))
        .collect();
    let mut layers: Vec<usize> = rows.iter().map(|r| r.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    let mut out: BTreeMap<u64, BTreeMap<usize, f64>> = BTreeMap::new();
    for row in rows {
        let position = layers.binary_search(&row.layer).unwrap_or_default();
        out.entry(row.step)
            .or_default()
            .insert(position, row.rms.or(row.l2).unwrap_or(f64::NAN));
    }
    out
}

/// The x label of a gradient profile: layers of an MLP, block outputs of a
/// conv family.
pub(crate) fn profile_label(results: &ResultsDir) -> &'static str {
    if super::through_time(results) {
        return LABEL_TIME;
    }
    let kinds: Vec<&str> = results.runs.iter().filter_map(trunk_kind).collect();
    if kinds.is_empty() || kinds.iter().all(|k| *k == "linear") {
        LABEL_LAYER
    } else {
        LABEL_BLOCK
    }
}

/// The run of a (variant, depth) group with the smallest seed among those
/// that have dL/dh rows; one seed per line keeps the gradient charts about
/// one network rather than an average of several.
pub(crate) fn probed_run<'a>(
    results: &'a ResultsDir,
    variant: &str,
    depth: u32,
) -> Option<&'a RunData> {
    runs_of(results, variant, depth)
        .into_iter()
        .filter(|r| r.gradients.iter().flatten().any(|g| g.is_output()))
        .min_by_key(|r| r.summary.seed)
}

/// The depth chart (d) follows: the deepest depth every variant has dL/dh
/// for, so that the panels compare twins; else the deepest any variant has.
pub(crate) fn deepest_probed_depth(results: &ResultsDir) -> Option<u32> {
    let variants = results.groups();
    let probed = |v: &str, d: u32| probed_run(results, v, d).is_some();
    let depths = results.depths();
    depths
        .iter()
        .rev()
        .find(|&&d| variants.iter().all(|v| probed(v, d)))
        .or_else(|| {
            depths
                .iter()
                .rev()
                .find(|&&d| variants.iter().any(|v| probed(v, d)))
        })
        .copied()
}
