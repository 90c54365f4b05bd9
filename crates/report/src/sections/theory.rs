//! The decay per layer that mean-field theory predicts at initialization, beside the
//! measured one.

use super::gradients::{decades, decades_stat, group_readings, pick};
use super::{cells, cfg_str};
use crate::analysis::stat;
use crate::page::Block;
use crate::runs::{Loaded, RunEntry};

/// The mean-field prediction for BatchNorm ReLU nets (Yang et al. 2019):
/// the gradient grows toward the input by √(π/(π−1)) per layer, a decay of
/// −log10 √(π/(π−1)) decades per layer, written as this.
const BATCHNORM_RELU_DECAY: &str = "−0.083";

/// A measured over predicted ratio is shown only where the prediction is
/// further than this from 0 (decades per layer): a ratio to nearly 0
/// means nothing.
const RATIO_MIN_PREDICTION: f64 = 0.02;

/// Measured decay at initialization beside the mean-field prediction, for
/// the plain nets the theory applies to.
pub(crate) fn theory_table(loaded: &Loaded) -> Vec<Block> {
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
    let rows: Vec<Vec<String>> = loaded
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
            Some(vec![
                d.to_string(),
                decades_stat(&at0),
                decades(theory),
                ratio_cell(&at0, theory),
                decades_stat(&pick(&ends, |g| g.decay_init)),
            ])
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        Block::Heading(3, "Theory beside measurement".to_owned()),
        Block::Para(format!(
            "{} The prediction is the least-squares slope of the predicted profile over the same hidden layers, read like the measured decay. Activation `{}`, init `{}`, norm `{}`.",
            prediction_words(loaded.setting("norm").as_deref() == Some("batchnorm")),
            loaded.setting("activation").unwrap_or_else(|| "?".into()),
            loaded.setting("init").unwrap_or_else(|| "?".into()),
            loaded.setting("norm").unwrap_or_else(|| "none".into())
        )),
    ];
    if loaded
        .setting("init")
        .is_some_and(|i| i.contains("orthogonal"))
    {
        out.push(Block::Para(
            "With orthogonal weights of gain g the mean-field χ is the one of σ_w² = g²: orthogonality shapes the spread of the Jacobian's singular values (Saxe et al. 2014; Pennington et al. 2017), not the mean factor this predicts."
                .to_owned(),
        ));
    }
    out.push(Block::Table(
        cells(&[
            "plain depth",
            "measured at step 0",
            "predicted",
            "measured / predicted",
            "measured, median of the first five probe steps",
        ]),
        rows,
    ));
    out.push(Block::Para(
        "(Step 0 is read from `gradients.csv`; \"—\" where the per-step files are not kept.)"
            .to_owned(),
    ));
    out.push(Block::Para(
        "Residual nets, conv nets and the head get no prediction: the theory is for plain stacks."
            .to_owned(),
    ));
    out
}

/// Which theory predicts the decay, and what it predicts.
fn prediction_words(batchnorm: bool) -> String {
    if batchnorm {
        format!("With BatchNorm and ReLU, mean-field theory (Yang et al. 2019, \"A mean field theory of batch normalization\") predicts that the gradient *grows* toward the input by √(π/(π−1)) ≈ 1.21 per layer at initialization, a decay of {BATCHNORM_RELU_DECAY} decades per layer.")
    } else {
        "Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017, \"Deep Information Propagation\") predicts the backward factor per layer of a plain net without normalization: the squared rms of dL/dh is multiplied by χ = σ_w²·E[φ'(h)²], h ~ N(0, q) with q from the forward recursion q ← σ_w²·E[φ(h)²] + σ_b², σ_w² and σ_b² from the init; the decay is −½·log10 χ decades per layer.".to_owned()
    }
}

/// The mean of the decays measured at step 0 over the predicted one, two
/// decimals; `—` without a measurement or where the prediction is within
/// [`RATIO_MIN_PREDICTION`] of 0.
fn ratio_cell(at0: &[f64], theory: f64) -> String {
    stat(at0.iter().map(|v| Some(*v)))
        .filter(|_| theory.abs() > RATIO_MIN_PREDICTION)
        .map_or("—".into(), |s| format!("{:.2}", s.mean / theory))
}

/// Which points the trunk is, in words, from the run records.
pub(crate) fn trunk_words(loaded: &Loaded) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::fixture::{loaded, trained};
    use serde_json::json;

    /// Yang et al. (2019, "A mean field theory of batch normalization"):
    /// a BatchNorm ReLU net's gradient grows by √(π/(π−1)) per layer at
    /// initialization; the sentence's 1.21 and its decay, −log10 of that,
    /// must be the same number rounded.
    #[test]
    fn the_batchnorm_prediction_is_yang_et_als_factor() {
        let pi = std::f64::consts::PI;
        let factor = (pi / (pi - 1.0)).sqrt();
        assert_eq!(format!("{factor:.2}"), "1.21");
        let decay = -factor.log10();
        assert_eq!(
            format!("{decay:.3}").replace('-', "−"),
            BATCHNORM_RELU_DECAY
        );
        assert!(
            prediction_words(true).contains(&format!("a decay of {BATCHNORM_RELU_DECAY} decades"))
        );
        assert!(prediction_words(false).contains("χ = σ_w²·E[φ'(h)²]"));
    }

    /// A ratio to a prediction within 0.02 decades of 0 would be noise over
    /// nearly nothing: it is not shown, nor without a measurement.
    #[test]
    fn the_ratio_needs_a_prediction_away_from_zero() {
        assert_eq!(ratio_cell(&[0.2, 0.4], 0.25), "1.20");
        assert_eq!(ratio_cell(&[0.2], -0.1), "-2.00");
        assert_eq!(ratio_cell(&[0.2], 0.02), "—");
        assert_eq!(ratio_cell(&[0.2], -0.015), "—");
        assert_eq!(ratio_cell(&[], 0.3), "—");
    }

    /// The table is there only where a plain run carries a prediction
    /// (`decay_theory` in run.json); without the per-step files the step-0
    /// column reads "—" and so does the ratio.
    #[test]
    fn the_table_needs_a_prediction() {
        let config = json!({"model": {"activation": "tanh", "init": "orthogonal", "norm": "none"}});
        let without = loaded(&config, vec![("plain", 8, 0, trained(0.1))]);
        assert!(theory_table(&without).is_empty());
        let with = loaded(
            &config,
            vec![(
                "plain",
                8,
                0,
                json!({"gradient_ends": {"decay_theory": 0.1, "decay_init": 0.12}}),
            )],
        );
        let blocks = theory_table(&with);
        assert!(matches!(&blocks[2], Block::Para(t) if t.starts_with("With orthogonal weights")));
        let Block::Table(_, rows) = &blocks[3] else {
            panic!("{blocks:?}")
        };
        assert_eq!(rows[0], ["8", "—", "0.10", "—", "0.12"]);
    }
}
