//! He et al. (2016) §4.1: whether BatchNorm nets' gradients are healthy, and so
//! whether degradation is a vanishing-gradient problem, on two scale-free measures.

use super::cells;
use super::findings::signals;
use super::gradients::{decades, gradient_run, group_readings, pick};
use crate::analysis::{depth_trend, flow, scale_free_readings, Trend, VANISH_SPREAD};
use crate::page::Block;
use crate::runs::Loaded;
use crate::verdict::{mechanism, Mechanism};

/// He et al. §4.1: with BatchNorm, is the plain nets' degradation a
/// vanishing gradient? Judged on the scale-free ‖∇W‖·‖W‖, since dL/dh
/// before a BN layer scales as 1/‖W‖ and weights grow during training.
pub(crate) fn he_section_4_1(loaded: &Loaded) -> Vec<Block> {
    let norm = loaded.setting("norm").unwrap_or_else(|| "none".into());
    let mut out = vec![Block::Heading(
        3,
        "He et al. (2016) §4.1: is degradation vanishing gradient?".to_owned(),
    )];
    if norm != "batchnorm" {
        out.push(Block::Para(no_batchnorm(loaded, &norm)));
        return out;
    }
    let theirs = "He et al. trained their plain nets with BatchNorm and checked that the backward \
                  gradients keep healthy norms, so they argue that the plain nets' degradation is not \
                  caused by vanishing gradients.";
    out.push(Block::Para(format!(
        "{theirs} Before a BatchNorm layer, dL/dh and dL/dW scale as 1/‖W‖, so a weight that grows \
         during training makes them shrink although the network's function, and how strongly the \
         loss depends on the weight's direction, do not change. The scale-free measure used here \
         is **‖∇W‖·‖W‖** (the gradient with respect to the weight's direction) of every weight \
         layer between the input layer and the head, from `gradients.csv` (`l2` × `weight_norm`); \
         its decay and spread are read like those of dL/dh above. That measures how strongly the \
         loss depends on each layer, not how far SGD moves it: for a weight followed by BatchNorm, \
         one step turns it by the **effective learning rate** lr·‖∇W‖/‖W‖ (`relative` in \
         gradients.csv, times the step's lr, which is the same for every layer and cancels in a \
         spread). Its spread is log10 of the top weight layer's over the bottom one's: positive \
         when the bottom moves less. It is read at step 0 on its own (the first step's blow-up is \
         what the five-step median would hide) and over the last five probe steps (Philipp et al. \
         2018, \"The exploding gradient problem demystified\")."
    )));
    let (table, readings, missing) = scale_free_table(loaded);
    out.push(table);
    if readings.is_empty() {
        out.push(Block::Para(
            "No plain run here has `gradients.csv` with the `weight_norm` column (files written before it, or not kept): rerun the experiment to judge this on the scale-free measures."
                .to_owned(),
        ));
        return out;
    }
    if missing {
        out.push(Block::Para(
            "(Some plain runs have no such gradients.csv and are left out.)".to_owned(),
        ));
    }
    let plain_trend = depth_trend(loaded, "plain").map(|t| t.trend);
    out.push(Block::Para(verdict_4_1(plain_trend, &readings)));
    out
}

/// Nets without BatchNorm: He et al.'s argument does not apply; what the
/// plain nets' gradients did at the end of training, per depth.
fn no_batchnorm(loaded: &Loaded, norm: &str) -> String {
    let plain_flows: Vec<String> = loaded
        .depths()
        .iter()
        .filter_map(|&d| {
            let ends = group_readings(loaded, "plain", d);
            let s = gradscope_format::decay::median(pick(&ends, |g| g.spread_final))?;
            Some(format!("depth {d}: {}", flow(s).describe()))
        })
        .collect();
    format!(
        "These nets have no BatchNorm (`norm` {norm}), so He et al.'s argument, made for BatchNorm nets, does not apply.{}",
        if plain_flows.is_empty() {
            String::new()
        } else {
            format!(" The plain nets' gradients at the end of training: {}.", plain_flows.join("; "))
        }
    )
}

/// Each plain depth on the scale-free measures, with its reading; the
/// readings, and whether some plain run lacked the gradients.csv to read.
fn scale_free_table(loaded: &Loaded) -> (Block, Vec<(u32, Mechanism)>, bool) {
    let header = cells(&[
        "plain depth",
        "scale-free decay at init",
        "at end",
        "spread at init",
        "at end",
        "effective-lr spread at step 0",
        "at end",
        "dL/dh spread at end",
        "reading",
    ]);
    let mut rows = Vec::new();
    let mut readings: Vec<(u32, Mechanism)> = Vec::new();
    let mut missing = false;
    for d in loaded.depths() {
        let Some(entry) = gradient_run(loaded, "plain", d) else {
            continue;
        };
        let raw = entry
            .record
            .as_ref()
            .and_then(|r| r.gradient_ends.spread_final);
        let Some(r) = loaded.csv_run(&entry.name).and_then(scale_free_readings) else {
            missing = true;
            continue;
        };
        let s = signals(loaded, "plain", d);
        let m = mechanism(&s);
        readings.push((d, m));
        let cell = |v: Option<f64>| v.map_or("—".into(), decades);
        rows.push(vec![
            d.to_string(),
            cell(r.decay_init),
            cell(r.decay_final),
            cell(r.spread_init),
            cell(r.spread_final),
            cell(s.effective_lr[0]),
            cell(s.effective_lr[1]),
            cell(raw),
            m.describe().to_owned(),
        ]);
    }
    (Block::Table(header, rows), readings, missing)
}

/// The §4.1 verdict from the plain nets' error against depth (`None`:
/// fewer than two plain depths) and each plain depth's reading on the
/// scale-free measures: healthy (‖∇W‖·‖W‖ and the effective lr within
/// two decades over the trunk), exploding then frozen (or frozen), or
/// vanishing. He et al. make two claims: plain BatchNorm nets keep healthy
/// gradients, and so their degradation is not vanishing gradient. A
/// reading other than healthy contradicts the first whatever the error
/// does; only where the error rises with depth does it speak to the
/// second.
pub(crate) fn verdict_4_1(trend: Option<Trend>, readings: &[(u32, Mechanism)]) -> String {
    let degrading = trend == Some(Trend::Rises);
    let degradation = match trend {
        Some(Trend::Rises) => "Plain training error rises with depth here",
        Some(_) => "Plain training error does not rise with depth here beyond the seeds' spread",
        None => "With one plain depth, this experiment cannot show degradation",
    };
    let at = |want: &dyn Fn(Mechanism) -> bool| -> Vec<String> {
        readings
            .iter()
            .filter(|(_, m)| want(*m))
            .map(|(d, _)| d.to_string())
            .collect()
    };
    let healthy = at(&|m| !m.explains_failure());
    let frozen = at(&|m| matches!(m, Mechanism::ExplodingThenFrozen | Mechanism::Frozen));
    let blown = at(&|m| m == Mechanism::ExplodingThenFrozen);
    let vanishing = at(&|m| matches!(m, Mechanism::Vanishing { .. }));
    if frozen.is_empty() && vanishing.is_empty() {
        let agree = if degrading {
            "**our data agree with He et al.** that this degradation is not a vanishing or frozen gradient."
        } else {
            "**our data agree with He et al.** that plain BatchNorm nets keep healthy gradients (with no degradation here, there is nothing for it to explain)."
        };
        return format!(
            "{degradation}, and **every plain BatchNorm net is healthy on both scale-free measures** at depth {}: ‖∇W‖·‖W‖ and the effective learning rate stay within {VANISH_SPREAD:.0} decades over the trunk. So {agree}",
            healthy.join(", ")
        );
    }
    let mut parts = Vec::new();
    if !frozen.is_empty() {
        parts.push(format!(
            "**{} at depth {}**: the bottom layers' effective learning rate ends more than {VANISH_SPREAD:.0} decades below the top's{}, so SGD barely moves them although their scale-free gradient does not vanish",
            if blown.len() == frozen.len() { "exploding then frozen" } else { "frozen at the bottom" },
            frozen.join(", "),
            if blown.is_empty() {
                String::new()
            } else {
                format!(
                    ", after a step 0 at which it was more than {VANISH_SPREAD:.0} decades above (depth {}): the first updates blow the bottom weights up, and BatchNorm then divides their gradient by that norm",
                    blown.join(", ")
                )
            }
        ));
    }
    if !vanishing.is_empty() {
        parts.push(format!(
            "**vanishing at depth {}**: ‖∇W‖·‖W‖ of the first hidden layer ends more than {VANISH_SPREAD:.0} decades below the last",
            vanishing.join(", ")
        ));
    }
    if !healthy.is_empty() {
        parts.push(format!("healthy at depth {}", healthy.join(", ")));
    }
    let disagree = if degrading {
        "so **our data do not agree** with He et al. that plain BatchNorm nets keep healthy gradients, and the failure with depth comes with it: it is not degradation in their sense."
    } else {
        "so **our data do not agree** with He et al. that plain BatchNorm nets keep healthy gradients. Whether that is what degrades deep plain nets, these runs cannot say: they show no degradation."
    };
    format!(
        "{degradation}. The plain BatchNorm nets are {}; {disagree}",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::{he_section_4_1, verdict_4_1};
    use crate::analysis::Trend;
    use crate::page::Block;
    use crate::sections::fixture::loaded;
    use crate::verdict::Mechanism;
    use serde_json::json;

    /// He et al. §4.1 has two claims (healthy gradients in plain
    /// BatchNorm nets; so degradation is not vanishing gradient). A
    /// verdict speaks to the second only where plain error rises with
    /// depth (`resnet50-signs-shape`, one depth, once read "degradation
    /// comes with vanishing"), and it has three outcomes per depth (issue
    /// 30): healthy, exploding then frozen, vanishing.
    #[test]
    fn section_4_1_verdict_has_three_outcomes_and_claims_degradation_only_where_error_rises() {
        let v = Mechanism::Vanishing {
            forward_collapse: false,
        };
        let one_depth = verdict_4_1(None, &[(50, v)]);
        assert!(one_depth.contains("cannot show degradation"), "{one_depth}");
        assert!(one_depth.contains("vanishing at depth 50"), "{one_depth}");
        assert!(one_depth.contains("our data do not agree"), "{one_depth}");
        let flat = verdict_4_1(Some(Trend::Flat), &[(50, v)]);
        assert!(flat.contains("they show no degradation"), "{flat}");
        let frozen = verdict_4_1(
            Some(Trend::Rises),
            &[
                (8, Mechanism::Healthy),
                (64, Mechanism::ExplodingThenFrozen),
            ],
        );
        assert!(
            frozen.contains("exploding then frozen at depth 64")
                && frozen.contains("healthy at depth 8")
                && frozen.contains("not degradation"),
            "{frozen}"
        );
        let healthy = verdict_4_1(Some(Trend::Rises), &[(20, Mechanism::Healthy)]);
        assert!(
            healthy.contains("agree with He et al.") && healthy.contains("not a vanishing"),
            "{healthy}"
        );
        let healthy_flat = verdict_4_1(Some(Trend::Flat), &[(20, Mechanism::Healthy)]);
        assert!(
            healthy_flat.contains("nothing for it to explain"),
            "{healthy_flat}"
        );
    }

    /// He et al.'s argument is made for BatchNorm nets: without BatchNorm
    /// the section says it does not apply and gives the plain nets' raw
    /// gradient flow; with BatchNorm but no per-run gradients.csv (the
    /// published folders) it gives no verdict and says why.
    #[test]
    fn the_verdict_needs_batchnorm_and_the_scale_free_readings() {
        let run = |spread: f64| json!({"gradient_ends": {"spread_final": spread}});
        let plain = loaded(
            &json!({"model": {"norm": "none"}}),
            vec![("plain", 8, 0, run(0.5)), ("plain", 32, 0, run(4.0))],
        );
        let blocks = he_section_4_1(&plain);
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        let Block::Para(text) = &blocks[1] else {
            panic!("{blocks:?}")
        };
        assert!(
            text.starts_with("These nets have no BatchNorm (`norm` none)"),
            "{text}"
        );
        assert!(
            text.contains("depth 8: ") && text.contains("; depth 32: "),
            "{text}"
        );
        let bn = loaded(
            &json!({"model": {"norm": "batchnorm"}}),
            vec![("plain", 8, 0, run(0.5))],
        );
        let blocks = he_section_4_1(&bn);
        assert!(
            matches!(&blocks[2], Block::Table(_, rows) if rows.is_empty()),
            "{blocks:?}"
        );
        assert!(
            matches!(blocks.last(), Some(Block::Para(t)) if t.starts_with("No plain run here has `gradients.csv`")),
            "{blocks:?}"
        );
    }
}
