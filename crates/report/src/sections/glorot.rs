//! Glorot and Bengio (2010): per-layer saturation and gradient spread of sigmoid and
//! tanh MLPs.

use super::{cfg_str, sci};
use crate::analysis::{gradient_spread, layer_rows};
use crate::runs::Loaded;
use std::fmt::Write as _;

/// A saturated fraction below this (half a percent) counts as none: the
/// report does not rank layers by noise.
const SAT_NONE: f64 = 0.005;

pub(crate) fn glorot(md: &mut String, loaded: &Loaded) {
    let config = loaded.config();
    let activation = loaded.setting("activation").unwrap_or_default();
    if cfg_str(config, "/model/family") != Some("mlp")
        || !["sigmoid", "tanh"].contains(&activation.as_str())
    {
        return;
    }
    let init = loaded.setting("init").unwrap_or_else(|| "?".into());
    let seed = loaded.entries.iter().map(|e| e.seed).min().unwrap_or(0);
    mdln!(
        md,
        "## Saturation and gradients per layer (Glorot & Bengio 2010)"
    );
    mdln!(md);
    mdln!(
        md,
        "**Theirs** (Glorot & Bengio 2010, Fig. 2 and §4.2–4.3): in a sigmoid net with the standard \
         init U[−1/√n, 1/√n] (`pytorch-default` here) the top hidden layer saturates early \
         (its outputs pushed to 0) and recovers only slowly; with the normalized init (`glorot`) \
         the back-propagated gradients stay more even across layers. **Ours**, `{activation}` with \
         init `{init}`, deepest depth, seed {seed}:"
    );
    if loaded.variants().iter().any(|v| v == "residual") {
        mdln!(md);
        mdln!(
            md,
            "What is measured: each layer's response is `act(norm(h))`, the value the next weight \
             layer reads. In the residual net h is the residual stream, the running sum of every \
             block's output, so its units saturate as the sum grows; that says nothing against the \
             residual net training well (the gradient reaches the input through the shortcuts, not \
             through these units)."
        );
    }
    mdln!(md);
    let Some(&depth) = loaded.depths().last() else {
        return;
    };
    for variant in loaded.variants() {
        let Some(run) = loaded
            .group(&variant, depth)
            .iter()
            .find_map(|e| loaded.csv_run(&e.name))
        else {
            mdln!(
                md,
                "- {variant}-{depth}: no activations.csv or gradients.csv to read."
            );
            continue;
        };
        let rows = layer_rows(run);
        if rows.is_empty() {
            mdln!(md, "- {}: no activation rows.", run.summary.run);
            continue;
        }
        mdln!(
            md,
            "{} (layer 0 is nearest the input; the last row is the top hidden layer):",
            run.summary.run
        );
        mdln!(md);
        mdln!(
            md,
            "| layer | saturated at first probe | peak saturated (step) | saturated at last probe | mean at first probe | lowest mean (step) | mean at last probe | rms of dL/dh at init |"
        );
        mdln!(md, "|---|---|---|---|---|---|---|---|");
        let f = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.3}"));
        for r in &rows {
            mdln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.layer,
                f(r.sat_first),
                r.sat_peak
                    .map_or("—".into(), |(v, s)| format!("{v:.3} ({s})")),
                f(r.sat_last),
                f(r.mean_first),
                r.mean_min
                    .map_or("—".into(), |(v, s)| format!("{v:.3} ({s})")),
                f(r.mean_last),
                r.grad_init.map_or("—".into(), sci)
            );
        }
        mdln!(md);
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
        if let Some(s) = gradient_spread(&rows) {
            said.push(format!(
                "At initialization the largest hidden-layer rms of dL/dh is {}× the smallest (1 = perfectly even); compare this with the matching run of the other init.",
                if s >= 100.0 { format!("{s:.1e}") } else { format!("{s:.1}") }
            ));
        }
        if !said.is_empty() {
            mdln!(md, "{}", said.join(" "));
            mdln!(md);
        }
    }
}
