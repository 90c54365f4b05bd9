//! Unit tests of the charts' data selection and layout, on constructed runs.

use super::gradient_vs_step::*;
use super::gradients::*;
use super::layer_response_std::*;
use super::response_vs_step::*;
use super::train_error_vs_step::*;
use super::*;
use crate::axis::Bounds;
use crate::figure::{Layout, Marker};
use crate::read::{ActivationRow, GradientRow, MetricRow, SummaryRow, SPLIT_TRAIN};

fn summary(variant: &str, depth: u32, seed: u64, status: &str) -> SummaryRow {
    SummaryRow {
        run: format!("{variant}-d{depth}-s{seed}"),
        variant: variant.to_owned(),
        activation: None,
        init: None,
        norm: None,
        cell: None,
        depth,
        seed,
        status: status.to_owned(),
        steps_done: None,
        params: None,
        final_train_loss: None,
        final_train_error: None,
        final_test_loss: None,
        final_test_error: None,
        grad_decay_init: None,
        grad_decay_theory: None,
        grad_decay_final: None,
        wgrad_decay_init: None,
        wgrad_decay_final: None,
        grad_spread_init: None,
        grad_spread_final: None,
        grad_first_init: None,
        grad_last_init: None,
        grad_first_final: None,
        grad_last_final: None,
        fwd_spread_init: None,
        fwd_spread_final: None,
        xi_c: None,
        elapsed_s: None,
        source: None,
        numbers: Vec::new(),
    }
}

fn run(variant: &str, depth: u32, seed: u64, status: &str) -> RunData {
    RunData {
        summary: summary(variant, depth, seed, status),
        metrics: None,
        gradients: None,
        activations: None,
        diverged_at_step: None,
    }
}

fn train_row(step: u64, error: f64) -> MetricRow {
    MetricRow {
        step,
        epoch: None,
        split: SPLIT_TRAIN.to_owned(),
        loss: None,
        error: Some(error),
        lr: None,
        grad_norm: None,
        elapsed_s: None,
    }
}

fn grad_rows(depth: usize, step: u64) -> Vec<GradientRow> {
    (0..depth)
        .map(|layer| GradientRow {
            step,
            layer,
            name: format!("layer{layer:02}.linear"),
            kind: "output".to_owned(),
            trunk: layer > 0 && layer + 1 < depth,
            l2: Some(1.0),
            rms: Some(0.5),
            zero_fraction: Some(0.0),
            weight_norm: None,
            relative: None,
        })
        .collect()
}

#[test]
fn status_notes() {
    assert_eq!(status_note(["completed", "completed"]), "");
    assert_eq!(status_note(["diverged"]), " (diverged)");
    assert_eq!(status_note(["completed", "diverged"]), " (1/2 diverged)");
    assert_eq!(
        status_note(["failed", "diverged", "diverged"]),
        " (1/3 failed, 2/3 diverged)"
    );
}

#[test]
fn train_error_is_averaged_over_finite_seeds_at_equal_steps() {
    let mut a = run("plain", 4, 0, "completed");
    a.metrics = Some(vec![
        train_row(0, 0.8),
        train_row(10, 0.4),
        train_row(20, 0.2),
    ]);
    let mut b = run("plain", 4, 1, "diverged");
    b.metrics = Some(vec![
        train_row(0, 0.6),
        train_row(10, f64::NAN),
        // Test rows are not part of the training curve.
        MetricRow {
            split: "test".to_owned(),
            ..train_row(10, 0.0)
        },
    ]);
    let curve = mean_train_error(&[&a, &b]);
    assert_eq!(curve.len(), 3);
    assert!((curve[0].1 - 0.7).abs() < 1e-12);
    assert!((curve[1].1 - 0.4).abs() < 1e-12);
    assert!((curve[2].1 - 0.2).abs() < 1e-12);

    // A step where every seed is NaN stays, as a gap.
    let mut c = run("plain", 4, 2, "diverged");
    c.metrics = Some(vec![train_row(0, 0.5), train_row(10, f64::NAN)]);
    let curve = mean_train_error(&[&c]);
    assert!(curve[1].1.is_nan());
}

#[test]
fn layers_first_middle_last() {
    assert_eq!(
        three_layers(&[0, 1, 2, 3, 4, 5, 6, 7]),
        vec![(0, "first"), (4, "middle"), (7, "last")]
    );
    assert_eq!(three_layers(&[0, 1]), vec![(0, "first"), (1, "last")]);
    assert_eq!(three_layers(&[3]), vec![(3, "first")]);
    assert!(three_layers(&[]).is_empty());
}

#[test]
fn deepest_depth_prefers_one_every_variant_has() {
    let mut runs = Vec::new();
    for (variant, depth) in [
        ("plain", 8),
        ("plain", 32),
        ("residual", 8),
        ("residual", 16),
    ] {
        let mut r = run(variant, depth, 0, "completed");
        r.gradients = Some(grad_rows(depth as usize, 0));
        runs.push(r);
    }
    let results = ResultsDir {
        root: "r".into(),
        runs,
        record: None,
        style: Default::default(),
    };
    assert_eq!(deepest_probed_depth(&results), Some(8));

    // No common depth: the deepest any variant has.
    let results = ResultsDir {
        root: "r".into(),
        runs: results
            .runs
            .into_iter()
            .filter(|r| r.summary.depth != 8)
            .collect(),
        record: None,
        style: Default::default(),
    };
    assert_eq!(deepest_probed_depth(&results), Some(32));
}

#[test]
fn depth_colours_are_ordered_and_distinct() {
    let colours: Vec<RGBColor> = (0..6).map(|i| depth_color(i, 6)).collect();
    for w in colours.windows(2) {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
        let dist = d(w[0].0, w[1].0) + d(w[0].1, w[1].1) + d(w[0].2, w[1].2);
        assert!(dist > 60, "{:?} and {:?} look alike", w[0], w[1]);
    }
    assert_eq!(depth_color(0, 1), depth_color(0, 6));
}

#[test]
fn profile_uses_smallest_probed_seed_and_both_steps() {
    let mut s1 = run("plain", 4, 1, "completed");
    let mut rows = grad_rows(4, 0);
    rows.extend(grad_rows(4, 99));
    s1.gradients = Some(rows);
    // Seed 0 has no gradients.csv: seed 1 is the smallest present.
    let s0 = run("plain", 4, 0, "completed");
    let results = ResultsDir {
        root: "r".into(),
        runs: vec![s0, s1],
        record: None,
        style: Default::default(),
    };
    let fig = gradient_profile_figure(&results);
    assert_eq!(fig.panels.len(), 1);
    let panel = &fig.panels[0];
    assert_eq!(panel.series.len(), 2);
    assert!(!panel.series[0].dashed && panel.series[1].dashed);
    let labels: Vec<&str> = panel.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["d4", "step 0", "step 99"]);
}

#[test]
fn error_vs_depth_bars_only_with_several_seeds() {
    let mut a = run("plain", 4, 0, "completed");
    a.summary.final_train_error = Some(0.2);
    a.summary.final_test_error = Some(0.3);
    let mut b = run("plain", 4, 1, "completed");
    b.summary.final_train_error = Some(0.4);
    b.summary.final_test_error = Some(f64::NAN);
    // A diverged seed's final error is not a trained one: not in the mean.
    let mut c = run("plain", 4, 2, "diverged");
    c.summary.final_train_error = Some(0.9);
    let results = ResultsDir {
        root: "r".into(),
        runs: vec![a, b, c],
        record: None,
        style: Default::default(),
    };
    let fig = error_vs_depth_figure(&results);
    let panel = &fig.panels[0];
    let train = &panel.series[0];
    assert!((train.points[0].1 - 0.3).abs() < 1e-12);
    // Train has two finite seeds (a bar), test only one (no bar).
    assert_eq!(panel.error_bars.len(), 1);
    assert_eq!(panel.legend[0].label, "plain train (1/3 diverged)");
    assert_eq!(panel.legend[1].label, "plain test");
    assert!(
        panel.crosses.is_empty(),
        "not every run at depth 4 diverged"
    );
}

/// Issue 37 §2: a depth at which every run diverged breaks the line (no
/// straight segment across it) and gets a ✕ on the top edge, with a
/// legend entry that names the step.
#[test]
fn error_vs_depth_breaks_at_a_diverged_depth_and_marks_it() {
    let mut runs = Vec::new();
    for depth in [4, 8, 16] {
        let mut r = run("plain", depth, 0, "completed");
        r.summary.final_train_error = Some(0.1 * f64::from(depth) / 4.0);
        r.summary.final_test_error = Some(0.2);
        runs.push(r);
    }
    runs[1].summary.status = "diverged".to_owned();
    runs[1].diverged_at_step = Some(37);
    let results = ResultsDir {
        root: "r".into(),
        runs,
        record: None,
        style: Default::default(),
    };
    let fig = error_vs_depth_figure(&results);
    let panel = &fig.panels[0];
    let train = &panel.series[0].points;
    assert_eq!(train.len(), 3);
    assert!(train[1].1.is_nan(), "the line must break at d8: {train:?}");
    assert_eq!(panel.crosses.len(), 1);
    assert_eq!((panel.crosses[0].x, panel.crosses[0].y), (8.0, None));
    let labels: Vec<&str> = panel.legend.iter().map(|e| e.label.as_str()).collect();
    assert!(
        labels.contains(&"plain d8 (diverged at step 37)"),
        "{labels:?}"
    );
}

fn act_rows(step: u64, stds: &[f64]) -> Vec<ActivationRow> {
    stds.iter()
        .enumerate()
        .map(|(i, &std)| ActivationRow {
            dead: None,
            q: None,
            c: None,
            rank1: None,
            entropy: None,
            step,
            // Every third probe point has no response, as in a CNN.
            layer: i + i / 2,
            name: format!("layer{i:02}.conv"),
            mean: None,
            std: Some(std),
            saturation: None,
        })
        .collect()
}

fn response_results(plain: &[f64], residual: &[f64]) -> ResultsDir {
    let mut runs = Vec::new();
    for (variant, stds) in [("plain", plain), ("residual", residual)] {
        // Seed 1 comes first in the file but is not the one drawn.
        let mut s1 = run(variant, 8, 1, "completed");
        s1.activations = Some(act_rows(9, &[99.0; 3]));
        let mut s0 = run(variant, 8, 0, "interrupted");
        let mut rows = act_rows(0, &[1.0; 3]);
        rows.extend(act_rows(9, stds));
        s0.activations = Some(rows);
        runs.extend([s1, s0]);
    }
    ResultsDir {
        root: "r".into(),
        runs,
        record: None,
        style: Default::default(),
    }
}

#[test]
fn response_std_draws_smallest_seed_plain_dashed_residual_solid() {
    let fig = layer_response_std_figure(&response_results(&[0.5, 2.0, 1.0], &[0.8, 0.9]));
    assert_eq!(fig.layout, Layout::Column);
    assert_eq!(fig.panels.len(), 2);
    let (top, bottom) = (&fig.panels[0], &fig.panels[1]);
    assert_eq!(
        top.x_label.as_deref(),
        Some("layer index (responses in forward order)")
    );
    assert_eq!(
        bottom.x_label.as_deref(),
        Some("layer index (sorted by magnitude)")
    );
    let dashes: Vec<bool> = top.series.iter().map(|s| s.dashed).collect();
    assert_eq!(dashes, [true, false]);
    // Positions count from 0 on the input side, as in every chart.
    assert_eq!(top.series[0].points, [(0.0, 0.5), (1.0, 2.0), (2.0, 1.0)]);
    assert_eq!(
        bottom.series[0].points,
        [(0.0, 2.0), (1.0, 1.0), (2.0, 0.5)]
    );
    assert_eq!(bottom.series[1].points, [(0.0, 0.9), (1.0, 0.8)]);
    let labels: Vec<&str> = top.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        labels,
        ["plain d8 (interrupted)", "residual d8 (interrupted)"]
    );
    assert_eq!(fig.y.scale, Scale::Linear);
    assert_eq!(fig.y.bounds, Bounds::FromZero);
    assert!(fig.subtitle.is_some_and(|s| s.contains("step 9")));
}

/// A 64-layer legend is unreadable: chart (f) keeps at most eight,
/// evenly spaced, always with the input-side and the top layer.
#[test]
fn saturation_keeps_first_and_top_layers_when_thinning() {
    let all: Vec<usize> = (0..63).collect();
    let kept = spaced_layers(&all, 8);
    assert_eq!(kept.len(), 8);
    assert_eq!((kept[0], kept[7]), (0, 62));
    assert!(kept.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(spaced_layers(&[0, 1, 2], 8), vec![0, 1, 2]);
    assert!(spaced_layers(&[], 8).is_empty());
}

/// One line per layer of the deepest run, top layer labelled, and the
/// saturation of each step on the y axis.
#[test]
fn saturation_draws_each_layer_of_the_deepest_run() {
    let mut shallow = run("plain", 4, 0, "completed");
    shallow.activations = Some(act_rows(0, &[1.0; 3]));
    let mut deep = run("plain", 8, 0, "completed");
    let mut rows = Vec::new();
    for step in [0u64, 10] {
        for layer in 0..3 {
            rows.push(ActivationRow {
                dead: None,
                q: None,
                c: None,
                rank1: None,
                entropy: None,
                step,
                layer,
                name: format!("layer{layer:02}.linear"),
                mean: None,
                std: None,
                saturation: Some(0.1 * layer as f64 + step as f64 / 100.0),
            });
        }
    }
    deep.activations = Some(rows);
    let results = ResultsDir {
        root: "r".into(),
        runs: vec![shallow, deep],
        record: None,
        style: Default::default(),
    };
    let fig = saturation_figure(&results);
    assert_eq!(fig.title, "Saturation vs step, depth 8");
    let panel = &fig.panels[0];
    assert_eq!(panel.series.len(), 3);
    assert_eq!(
        panel.series[2].points,
        [(0.0, 0.2), (10.0, 0.30000000000000004)]
    );
    let labels: Vec<&str> = panel.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["layer 0", "layer 1", "layer 2 (top)"]);
    // Chart (g) draws the mean column of the same rows; these have none.
    let fig = response_figure(&results, ResponseStat::Mean);
    assert_eq!(fig.name, ACTIVATION_MEAN_VS_STEP);
    assert!(!fig.has_data());
}

#[test]
fn response_std_axis_turns_log_beyond_two_decades() {
    // 0.01 to 0.99: under two decades, linear.
    let fig = layer_response_std_figure(&response_results(&[0.01, 0.99], &[0.5]));
    assert_eq!(fig.y.scale, Scale::Linear);
    // 0.001 to 0.5: more than two decades, log; NaN and 0 do not count.
    let fig = layer_response_std_figure(&response_results(
        &[0.001, f64::NAN, 0.0],
        &[0.5, f64::INFINITY],
    ));
    assert_eq!(fig.y.scale, Scale::Log);
    assert!(fig.y.label.ends_with("log scale"), "{}", fig.y.label);
    // Nothing finite at all: no line, an entry that says so, no data.
    let fig = layer_response_std_figure(&response_results(&[f64::NAN], &[f64::NAN]));
    assert!(!fig.has_data());
    assert!(fig.panels[0].series.is_empty());
    assert_eq!(fig.panels[0].legend[0].marker, Some(Marker::Absent));
    assert!(fig.panels[0].legend[0]
        .label
        .ends_with("no finite std at step 9"));
}

fn fwd_row(layer: usize, q: f64, c: Option<f64>) -> ActivationRow {
    ActivationRow {
        step: 0,
        layer,
        name: format!("layer{layer:02}.linear"),
        mean: Some(0.5),
        std: Some(0.1),
        saturation: Some(0.0),
        dead: None,
        q: Some(q),
        c,
        rank1: None,
        entropy: None,
    }
}

/// A plain and a residual ReLU MLP at σ_w² = 2, σ_b² = 0 (from
/// run.json's config): a pair of panels per variant, the measured q
/// and 1 − c solid, theory dashed for plain alone, its first point the
/// first layer's measurement (q, 1 − c) and its second the arc-cosine
/// kernel's; a later step's rows and an unread c are not drawn.
#[test]
fn plain_gets_theory_and_every_variant_its_panels() {
    let mut runs = Vec::new();
    for variant in ["plain", "residual"] {
        let mut rows = vec![
            fwd_row(0, 0.5, Some(0.0)),
            fwd_row(1, 0.4, Some(0.3)),
            fwd_row(2, 0.3, None),
        ];
        rows.push(ActivationRow {
            step: 25,
            ..fwd_row(0, 9.0, Some(0.9))
        });
        let mut r = run(variant, 4, 0, "completed");
        r.activations = Some(rows);
        runs.push(r);
    }
    let results = ResultsDir {
        root: "r".into(),
        runs,
        record: Some(serde_json::json!({"config": {"model": {
            "family": "mlp", "width": 64, "activation": "relu",
            "norm": "none", "init": {"variance": {"weight": 2.0, "bias": 0.0}}
        }}})),
        style: Default::default(),
    };
    let fig = super::forward_signal::forward_signal_figure(&results);
    let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        ["plain: q", "plain: 1 − c", "residual: q", "residual: 1 − c"]
    );
    let (q, c) = (&fig.panels[0], &fig.panels[1]);
    assert_eq!(q.series.len(), 2, "measured and theory");
    assert!(!q.series[0].dashed && q.series[1].dashed);
    assert_eq!(q.series[0].points[..2], [(0.0, 0.5), (1.0, 0.4)]);
    assert!((c.series[0].points[1].1 - 0.7).abs() < 1e-12);
    assert!(c.series[0].points[2].1.is_nan(), "c not read");
    let theory = &c.series[1].points;
    assert_eq!(theory.len(), 3);
    assert!((theory[0].1 - 1.0).abs() < 1e-12);
    let pi = std::f64::consts::PI;
    assert!((theory[1].1 - (1.0 - 1.0 / pi)).abs() < 1e-12, "{theory:?}");
    assert_eq!(fig.panels[2].series.len(), 1, "no theory for residual");
}

/// Issue 37 §2: where the mean-field line lies on the step-0 measurement
/// it is drawn through (here both flat), the step-0 line gets dots and
/// the theory's legend entry says it is on them; a theory that departs
/// from the measurement is drawn as before.
#[test]
fn theory_on_step_0_is_said_and_dotted() {
    let profile = |decay: f64| {
        let mut r = run("plain", 6, 0, "completed");
        let mut rows = grad_rows(6, 0);
        rows.extend(grad_rows(6, 50));
        r.gradients = Some(rows);
        r.summary.grad_decay_theory = Some(decay);
        let results = ResultsDir {
            root: "r".into(),
            runs: vec![r],
            record: None,
            style: Default::default(),
        };
        gradient_profile_figure(&results)
    };
    let fig = profile(0.0);
    let panel = &fig.panels[0];
    let step0 = panel.series.iter().find(|s| !s.dashed).expect("step 0");
    assert_eq!(step0.marker, Some(Marker::Circle));
    let labels: Vec<&str> = panel.legend.iter().map(|e| e.label.as_str()).collect();
    assert!(
        labels.contains(&"theory (mean field, at init): on step 0's dots"),
        "{labels:?}"
    );

    let fig = profile(0.5);
    let panel = &fig.panels[0];
    let step0 = panel.series.iter().find(|s| !s.dashed).expect("step 0");
    assert_eq!(step0.marker, None);
    let labels: Vec<&str> = panel.legend.iter().map(|e| e.label.as_str()).collect();
    assert!(
        labels.contains(&"theory (mean field, at init)"),
        "{labels:?}"
    );
}
