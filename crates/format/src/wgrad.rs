//! The weight-gradient decay per layer (`wgrad_decay_init`,
//! `wgrad_decay_final` of `summary.csv`).
//!
//! It is the least-squares slope of log10 ‖∇W‖ of each trunk layer's
//! **main weight** against the layer's position on the trunk, fitted and
//! summarized exactly as the decay of dL/dh is ([`crate::decay`]): decades
//! per layer, positive when the gradient shrinks toward the input, the
//! median over the first (last) [`crate::decay::WINDOW`] probe steps, norms
//! that are 0 or not finite left out at their own positions, and no value
//! with fewer than two points. dL/dh and ∇W need not agree: ∇W of a layer
//! is its input times dL/dh there, so a forward signal that grows or
//! shrinks with depth tilts one and not the other. Xiong et al. 2020's
//! Fig. 3 is this reading: at init a post-LN Transformer's FFN weight
//! gradients grow toward the output (a positive decay), a pre-LN one's are
//! flat (near 0).
//!
//! ‖∇W‖ is the L2 norm of the whole weight gradient (the `l2` of its
//! `weight` row), not the per-element rms, as Xiong et al. plot it; the
//! main weights of one net's trunk have one shape in the families this is
//! read for, apart from the stride-2 stage changes of the conv families.
//!
//! # The main weight of a trunk point
//!
//! In point order (input side first), a trunk point's main weight is the
//! last point with a weight at or before it and after the previous trunk
//! point ([`main_weights`]). So:
//!
//! - MLP: a hidden layer's own weight (`layer03.linear`);
//! - CNN, ResNet bottleneck: the block's last conv on the residual branch
//!   (`layer07.conv` before `block03.out`, `stage2.block1.conv3`). A
//!   shortcut's projection (a point whose name ends in `.proj`, He et al.'s
//!   option B) is not the branch and is passed over;
//! - Inception: the module's last listed branch conv (`pool_proj`), one of
//!   four parallel branches, since a module has no single last conv;
//! - Transformer: the block's FFN output weight W² (`block03.mlp`, fc2),
//!   the weight of Xiong et al.'s Fig. 3;
//! - rnn: none. Its trunk is time and every step applies the same
//!   weights; the probe attaches the last layer's W_hh to `t000.h` alone,
//!   so the rule gives one point, and one point has no slope. The training
//!   loop does not keep the profile for the rnn family at all.
//!
//! A trunk point with no weighted point since the previous one has no main
//! weight, and is left out of the fit like a point whose norm is 0.

use crate::decay::{ProfileWindow, Readings};
use crate::GradientRow;

/// A probe point as the main-weight rule reads it: what `gradients.csv`
/// (a `weight` row, the `trunk` flag) and the probe both know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point<'a> {
    pub name: &'a str,
    /// Whether the point has a weight (a `weight` row).
    pub weight: bool,
    pub trunk: bool,
}

/// Whether `name` is a shortcut's projection (`block03.proj`,
/// `stage3.block0.proj`): a weight beside the residual branch, not on it.
fn is_projection(name: &str) -> bool {
    name.rsplit('.').next() == Some("proj")
}

/// For each trunk point of `points` (input side first), in order: the
/// index of its main weight's point, or `None` where it has none (see the
/// module docs).
pub fn main_weights(points: &[Point]) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    let mut last = None;
    for (i, p) in points.iter().enumerate() {
        if p.weight && !is_projection(p.name) {
            last = Some(i);
        }
        if p.trunk {
            // A weight serves one trunk point: the next starts afresh.
            out.push(last.take());
        }
    }
    out
}

/// The profile that is fitted: per trunk point, ‖∇W‖ of its main weight
/// (`norm(point index)`), NaN where it has none or `norm` gives none, so
/// the fit leaves it out at its own position.
pub fn profile(main: &[Option<usize>], norm: impl Fn(usize) -> Option<f64>) -> Vec<f64> {
    main.iter()
        .map(|m| m.and_then(&norm).unwrap_or(f64::NAN))
        .collect()
}

/// The weight-gradient decay of one run from its `gradients.csv` rows, the
/// way the training loop reads it from the probe: each probe step's points
/// (by `layer`) go through [`main_weights`], and the `l2` of their weight
/// rows make the step's profile. Only `decay_init` and `decay_final` of
/// the result are meant (the spreads of ‖∇W‖ are not a reading of
/// gradscope's). Files from before the `trunk` column have no trunk, so
/// no value.
pub fn readings_of(rows: &[GradientRow]) -> Readings {
    let mut window = ProfileWindow::new();
    for step in rows.chunk_by(|a, b| a.step == b.step) {
        let mut step: Vec<&GradientRow> = step.iter().collect();
        step.sort_by_key(|r| r.layer);
        // One point per layer: its weight row and its output row (either
        // may be missing) say together whether it has a weight and is on
        // the trunk.
        let points: Vec<Vec<&GradientRow>> = step
            .chunk_by(|a, b| a.layer == b.layer)
            .map(<[&GradientRow]>::to_vec)
            .collect();
        let shape: Vec<Point> = points
            .iter()
            .map(|rows| Point {
                name: &rows[0].name,
                weight: weight_row(rows).is_some(),
                trunk: rows.iter().any(|r| r.trunk),
            })
            .collect();
        let main = main_weights(&shape);
        if main.is_empty() {
            continue;
        }
        window.push(profile(&main, |i| weight_row(&points[i])?.l2));
    }
    window.readings()
}

/// The weight row among one point's rows, if it has one.
fn weight_row<'a>(rows: &[&'a GradientRow]) -> Option<&'a GradientRow> {
    rows.iter().copied().find(|r| !r.is_output())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decay::decay_per_layer;

    fn pt(name: &str, weight: bool, trunk: bool) -> Point<'_> {
        Point {
            name,
            weight,
            trunk,
        }
    }

    #[test]
    fn a_geometric_wgrad_profile_has_its_ratio_as_slope_in_the_sign_of_grad_decay() {
        // ‖∇W‖ = 10^(−a·(n−1−i)) at trunk position i (0 = input side): a
        // decades lost per layer toward the input, which is what a
        // positive grad_decay says of dL/dh (see decay.rs's test of the
        // same profile). Growth toward the output is therefore positive.
        let (a, n) = (0.85, 12);
        let shrinking_to_input: Vec<f64> = (0..n)
            .map(|i| 10f64.powf(-a * (n - 1 - i) as f64))
            .collect();
        let d = decay_per_layer(&shrinking_to_input).unwrap();
        assert!((d - a).abs() < 1e-12, "{d}");
        // 10^(−a·i) from the input side grows toward the input: −a.
        let growing_to_input: Vec<f64> = (0..n).map(|i| 10f64.powf(-a * i as f64)).collect();
        let d = decay_per_layer(&growing_to_input).unwrap();
        assert!((d + a).abs() < 1e-12, "{d}");
        // Flat (pre-LN's FFN weights at init, Xiong et al. Fig. 3): 0.
        assert_eq!(decay_per_layer(&[0.3; 6]), Some(0.0));
        // A point without a main weight (NaN) is left out at its position:
        // the slope of the others is unchanged.
        let mut gap = shrinking_to_input.clone();
        gap[4] = f64::NAN;
        assert!((decay_per_layer(&gap).unwrap() - a).abs() < 1e-12);
    }

    #[test]
    fn main_weights_of_each_family_layout() {
        // MLP depth 5: layer00 (input layer) and layer04 (head) off the
        // trunk; each hidden layer's own weight.
        let names: Vec<String> = (0..5).map(|l| format!("layer{l:02}.linear")).collect();
        let mlp: Vec<Point> = (0..5)
            .map(|l| pt(&names[l], true, l > 0 && l < 4))
            .collect();
        assert_eq!(main_weights(&mlp), [Some(1), Some(2), Some(3)]);

        // CNN: stem, then blocks of two convs and an output; the second
        // block downsamples with a projection, listed after its convs.
        let cnn = [
            pt("layer00.conv", true, false),
            pt("layer01.conv", true, false),
            pt("layer02.conv", true, false),
            pt("block00.out", false, true),
            pt("layer03.conv", true, false),
            pt("layer04.conv", true, false),
            pt("block01.proj", true, false),
            pt("block01.out", false, true),
            pt("layer05.fc", true, false),
        ];
        assert_eq!(main_weights(&cnn), [Some(2), Some(5)]);

        // Transformer block: q, k, v weight-only, the attention
        // probabilities without a weight, W_o, fc1, fc2, then the block's
        // trunk point: fc2 (`block00.mlp`).
        let layout = [
            (".attn.q", true, false),
            (".attn.k", true, false),
            (".attn.v", true, false),
            (".attn.probs", false, false),
            (".attn", true, false),
            (".mlp.fc1", true, false),
            (".mlp", true, false),
            ("", false, true),
        ];
        let mut names = vec![("embed".to_owned(), true, false)];
        for b in ["block00", "block01"] {
            names.extend(layout.map(|(s, w, t)| (format!("{b}{s}"), w, t)));
        }
        names.push(("head".to_owned(), true, false));
        let tf: Vec<Point> = names.iter().map(|(n, w, t)| pt(n, *w, *t)).collect();
        let main = main_weights(&tf);
        assert_eq!(main, [Some(7), Some(15)]);
        assert_eq!(
            main.iter().map(|m| tf[m.unwrap()].name).collect::<Vec<_>>(),
            ["block00.mlp", "block01.mlp"]
        );

        // A trunk point with no weight since the previous one has none.
        let bare = [
            pt("a", true, false),
            pt("a.out", false, true),
            pt("b.out", false, true),
        ];
        assert_eq!(main_weights(&bare), [Some(0), None]);

        // rnn (tanh, 4 steps): h_t on the trunk, t000.h carrying the
        // shared W_hh, then the head and the weight blocks off the trunk.
        // At most one trunk point has a weight: no slope, an empty column.
        let rnn = [
            pt("t000.h", true, true),
            pt("t001.h", false, true),
            pt("t002.h", false, true),
            pt("t003.h", false, true),
            pt("head.linear", true, false),
            pt("cell0.w_ih", true, false),
            pt("cell0.w_hh", true, false),
        ];
        let main = main_weights(&rnn);
        assert_eq!(main, [Some(0), None, None, None]);
        assert_eq!(decay_per_layer(&profile(&main, |_| Some(1.0))), None);
    }

    fn row(step: u64, layer: usize, name: &str, kind: &str, trunk: bool, l2: f64) -> GradientRow {
        GradientRow {
            step,
            layer,
            name: name.into(),
            kind: kind.into(),
            trunk,
            l2: Some(l2),
            rms: Some(l2),
            zero_fraction: Some(0.0),
            weight_norm: (kind == crate::KIND_WEIGHT).then_some(1.0),
            relative: None,
        }
    }

    #[test]
    fn readings_from_gradients_csv_rows_follow_the_rule() {
        // A CNN-like net of three blocks whose last convs' ‖∇W‖ fall by a
        // decade per block toward the input, and whose first convs and
        // stem read something else entirely: only the last convs count.
        let mut rows = Vec::new();
        for step in 0..7u64 {
            rows.push(row(step, 0, "stem", "weight", false, 5.0));
            rows.push(row(step, 0, "stem", "output", false, 5.0));
            for b in 0..3 {
                let layer = 1 + 3 * b;
                rows.push(row(step, layer, "first", "weight", false, 7.0));
                rows.push(row(
                    step,
                    layer + 1,
                    "last",
                    "weight",
                    false,
                    10f64.powi(b as i32),
                ));
                rows.push(row(step, layer + 1, "last", "output", false, 1.0));
                rows.push(row(step, layer + 2, "out", "output", true, 1.0));
            }
        }
        let r = readings_of(&rows);
        assert!((r.decay_init.unwrap() - 1.0).abs() < 1e-12, "{r:?}");
        assert!((r.decay_final.unwrap() - 1.0).abs() < 1e-12, "{r:?}");
        // Before the `trunk` column: nothing to fit.
        for r in &mut rows {
            r.trunk = false;
        }
        assert_eq!(readings_of(&rows).decay_init, None);
    }
}
