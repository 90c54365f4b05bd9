//! Glorot and Bengio (2010): per-layer saturation and gradient spread of sigmoid and
//! tanh MLPs.

use super::{cells, cfg_str, note, sci};
use crate::analysis::{gradient_spread, layer_rows, LayerRow};
use crate::page::Block;
use crate::runs::Loaded;

/// A saturated fraction below this (half a percent) counts as none: the
/// report does not rank layers by noise.
const SAT_NONE: f64 = 0.005;

pub(crate) fn glorot(loaded: &Loaded) -> Vec<Block> {
    let config = loaded.config();
    let activation = loaded.setting("activation").unwrap_or_default();
    if cfg_str(config, "/model/family") != Some("mlp")
        || !["sigmoid", "tanh"].contains(&activation.as_str())
    {
        return Vec::new();
    }
    let init = loaded.setting("init").unwrap_or_else(|| "?".into());
    let seed = loaded.entries.iter().map(|e| e.seed).min().unwrap_or(0);
    let mut out = vec![
        Block::Heading(
            2,
            "Saturation and gradients per layer (Glorot & Bengio 2010)".to_owned(),
        ),
        Block::Para(format!(
            "**Theirs** (Glorot & Bengio 2010, Fig. 2 and §4.2–4.3): in a sigmoid net with the standard \
             init U[−1/√n, 1/√n] (`pytorch-default` here) the top hidden layer saturates early \
             (its outputs pushed to 0) and recovers only slowly; with the normalized init (`glorot`) \
             the back-propagated gradients stay more even across layers. **Ours**, `{activation}` with \
             init `{init}`, deepest depth, seed {seed}:"
        )),
    ];
    if loaded.variants().iter().any(|v| v == "residual") {
        out.push(Block::Para(
            "What is measured: each layer's response is `act(norm(h))`, the value the next weight \
             layer reads. In the residual net h is the residual stream, the running sum of every \
             block's output, so its units saturate as the sum grows; that says nothing against the \
             residual net training well (the gradient reaches the input through the shortcuts, not \
             through these units)."
                .to_owned(),
        ));
    }
    let Some(&depth) = loaded.depths().last() else {
        return out;
    };
    for variant in loaded.variants() {
        let Some(run) = loaded
            .group(&variant, depth)
            .iter()
            .find_map(|e| loaded.csv_run(&e.name))
        else {
            note(
                &mut out,
                format!("{variant}-{depth}: no activations.csv or gradients.csv to read."),
            );
            continue;
        };
        let rows = layer_rows(run);
        if rows.is_empty() {
            note(
                &mut out,
                format!("{}: no activation rows.", run.summary.run),
            );
            continue;
        }
        out.extend(layer_table(&run.summary.run, &rows));
        let said = sentences(&rows, &activation);
        if !said.is_empty() {
            out.push(Block::Para(said.join(" ")));
        }
    }
    out
}

/// One run's table: per layer, saturation and mean at the first and last
/// probe and at their extremes, and the gradient at initialization.
fn layer_table(run: &str, rows: &[LayerRow]) -> [Block; 2] {
    let f = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.3}"));
    let at = |v: Option<(f64, u64)>| v.map_or("—".into(), |(v, s)| format!("{v:.3} ({s})"));
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.layer.to_string(),
                f(r.sat_first),
                at(r.sat_peak),
                f(r.sat_last),
                f(r.mean_first),
                at(r.mean_min),
                f(r.mean_last),
                r.grad_init.map_or("—".into(), sci),
            ]
        })
        .collect();
    [
        Block::Para(format!(
            "{run} (layer 0 is nearest the input; the last row is the top hidden layer):"
        )),
        Block::Table(
            cells(&[
                "layer",
                "saturated at first probe",
                "peak saturated (step)",
                "saturated at last probe",
                "mean at first probe",
                "lowest mean (step)",
                "mean at last probe",
                "rms of dL/dh at init",
            ]),
            rows,
        ),
    ]
}

/// What one run's rows say against Glorot & Bengio: whether the top hidden
/// layer is the most saturated (no layer past `SAT_NONE` reads as none
/// saturated), how far its mean sinks, and how uneven the gradient is at
/// initialization. Empty when the rows hold none of these readings.
fn sentences(rows: &[LayerRow], activation: &str) -> Vec<String> {
    // The caller skips a run without rows; this keeps the slice below safe.
    if rows.is_empty() {
        return Vec::new();
    }
    let top = rows.last().and_then(|r| r.sat_peak);
    let others = rows[..rows.len() - 1]
        .iter()
        .filter_map(|r| r.sat_peak.map(|p| p.0))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let mut said = Vec::new();
    if let (Some((tp, ts)), Some(op)) = (top, others) {
        said.push(if tp < SAT_NONE && op < SAT_NONE {
            format!("No hidden layer has more than {:.1}% of its units past the saturation bar at any probe (sigmoid < 0.01 or > 0.99, tanh |a| > 0.99).", 100.0 * SAT_NONE)
        } else {
            format!(
                "The top hidden layer's saturation peaks at {tp:.3} (step {ts}); the other hidden layers peak at {op:.3} at most, so the top layer {} the most saturated.",
                if tp > op { "is" } else if tp == op { "ties as" } else { "is not" }
            )
        });
    }
    if let (Some(r), Some(f), Some((m, s))) = (
        rows.last(),
        rows.last().and_then(|r| r.mean_first),
        rows.last().and_then(|r| r.mean_min),
    ) {
        said.push(format!(
            "The top hidden layer's mean activation (layer {}) goes from {f:.3} at the first probe to {m:.3} at its lowest (step {s}){}.",
            r.layer,
            if activation == "sigmoid" {
                "; Glorot & Bengio's sigmoid top layer sinks toward 0, the flat end of the sigmoid"
            } else {
                ""
            }
        ));
    }
    if let Some(s) = gradient_spread(rows) {
        said.push(format!(
            "At initialization the largest hidden-layer rms of dL/dh is {}× the smallest (1 = perfectly even); compare this with the matching run of the other init.",
            if s >= 100.0 { format!("{s:.1e}") } else { format!("{s:.1}") }
        ));
    }
    said
}

#[cfg(test)]
mod tests {
    use super::{glorot, sentences};
    use crate::analysis::LayerRow;
    use crate::page::Block;
    use crate::sections::fixture::{loaded, trained};
    use serde_json::json;

    fn row(layer: usize, sat_peak: f64, grad_init: f64) -> LayerRow {
        LayerRow {
            layer,
            name: format!("h{layer}"),
            sat_first: None,
            sat_peak: Some((sat_peak, 100)),
            sat_last: None,
            mean_first: None,
            mean_min: None,
            mean_last: None,
            grad_init: Some(grad_init),
        }
    }

    /// Glorot & Bengio's claim (Fig. 2, §4.2) is that the top hidden layer
    /// saturates most; the sentence says "is", "ties as" or "is not" by
    /// comparing its peak with the other layers' highest, and calls nothing
    /// saturated where every peak is below `SAT_NONE` (half a percent).
    #[test]
    fn top_layer_is_called_most_saturated_only_when_it_is() {
        let top_most = sentences(&[row(0, 0.1, 1.0), row(1, 0.6, 1.0)], "sigmoid");
        assert!(
            top_most[0].contains("so the top layer is the most saturated"),
            "{top_most:?}"
        );
        let not = sentences(&[row(0, 0.6, 1.0), row(1, 0.1, 1.0)], "sigmoid");
        assert!(
            not[0].contains("the top layer is not the most saturated"),
            "{not:?}"
        );
        let tie = sentences(&[row(0, 0.3, 1.0), row(1, 0.3, 1.0)], "tanh");
        assert!(tie[0].contains("ties as the most saturated"), "{tie:?}");
        let none = sentences(&[row(0, 0.001, 1.0), row(1, 0.004, 1.0)], "tanh");
        assert!(
            none[0].starts_with("No hidden layer has more than 0.5%"),
            "{none:?}"
        );
        assert!(sentences(&[], "sigmoid").is_empty());
    }

    /// The gradient's unevenness is the largest over the smallest hidden
    /// layer rms (`analysis::gradient_spread`), written in scientific
    /// notation from 100× on.
    #[test]
    fn gradient_spread_switches_to_scientific_notation_at_100() {
        let even = sentences(&[row(0, 0.1, 1.0), row(1, 0.6, 2.5)], "sigmoid");
        assert!(
            even.last().unwrap().contains("is 2.5× the smallest"),
            "{even:?}"
        );
        let uneven = sentences(&[row(0, 0.1, 1e-4), row(1, 0.6, 2.0)], "sigmoid");
        assert!(
            uneven.last().unwrap().contains("is 2.0e4× the smallest"),
            "{uneven:?}"
        );
    }

    /// Glorot & Bengio studied sigmoid and tanh MLPs: other activations
    /// and families get no section. Without the per-run CSV files (the
    /// published folders) each variant is a note, one list for all.
    #[test]
    fn the_section_is_for_sigmoid_and_tanh_mlps() {
        let of = |family: &str, activation: &str| {
            let config =
                json!({"model": {"family": family, "activation": activation, "init": "glorot"}});
            glorot(&loaded(
                &config,
                vec![
                    ("plain", 6, 0, trained(0.1)),
                    ("residual", 6, 0, trained(0.1)),
                ],
            ))
        };
        assert!(of("mlp", "relu").is_empty());
        assert!(of("cnn", "tanh").is_empty());
        let tanh = of("mlp", "tanh");
        assert!(
            matches!(&tanh[1], Block::Para(t) if t.contains("**Ours**, `tanh` with init `glorot`"))
        );
        assert!(matches!(&tanh[2], Block::Para(t) if t.starts_with("What is measured")));
        assert_eq!(
            tanh[3],
            Block::TightList(vec![
                "plain-6: no activations.csv or gradients.csv to read.".into(),
                "residual-6: no activations.csv or gradients.csv to read.".into()
            ])
        );
        assert_eq!(tanh.len(), 4);
    }
}
