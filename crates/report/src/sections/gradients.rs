//! The gradient section: first/last-layer ratios of dL/dh and the decay per layer,
//! each as mean ± sd over seeds, with the forward signal beside them.

use super::he_4_1::he_section_4_1;
use super::theory::{theory_table, trunk_words};
use super::{cells, sci};
use crate::analysis::{flow, stat, Stat, VANISH_SPREAD};
use crate::page::Block;
use crate::runs::{GradientEnds, Loaded, RunEntry};

/// The run whose gradient_ends stand for (variant, depth): smallest seed
/// among completed runs, else among any run that has them.
pub(crate) fn gradient_run<'a>(
    loaded: &'a Loaded,
    variant: &str,
    depth: u32,
) -> Option<&'a RunEntry> {
    let group = loaded.group(variant, depth);
    let has = |e: &&&RunEntry| {
        e.record
            .as_ref()
            .is_some_and(|r| r.gradient_ends.init_ratio().is_some())
    };
    group
        .iter()
        .filter(|e| e.is_completed())
        .find(has)
        .or_else(|| group.iter().find(has))
        .copied()
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or("—".into(), sci)
}

/// Decades, signed, two decimals (never `-0.00`); `∞` for an infinite
/// spread.
pub(crate) fn decades(v: f64) -> String {
    if v == f64::INFINITY {
        "∞ (first point exactly 0 in float32)".into()
    } else {
        format!("{:.2}", round2(v))
    }
}

/// `v` rounded to two decimals with the sign of a rounded zero dropped.
fn round2(v: f64) -> f64 {
    let r = (v * 100.0).round() / 100.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// `0.85 ± 0.01` over the seeds' readings (infinite values shown as such
/// when every seed has one), or `—`.
pub(crate) fn decades_stat(values: &[f64]) -> String {
    decades_stat_or(values, &decades(f64::INFINITY))
}

/// What an infinite forward fall means: the last trunk point's outputs
/// are the same for every example in float32 (q exactly 0).
const FORWARD_INF: &str = "∞ (last point identical across the batch in float32)";

/// The forward fall over the seeds, as [`decades_stat`] reads the spread.
fn forward_stat(values: &[f64]) -> String {
    decades_stat_or(values, FORWARD_INF)
}

/// [`decades_stat`] with `inf` for an infinite reading; where only some
/// seeds read infinite, the finite ones' mean and the count of the rest.
fn decades_stat_or(values: &[f64], inf: &str) -> String {
    let infinite = values.iter().filter(|v| **v == f64::INFINITY).count();
    if !values.is_empty() && infinite == values.len() {
        return inf.to_owned();
    }
    let finite = match stat(values.iter().map(|v| Some(*v))) {
        Some(Stat {
            mean,
            std: Some(sd),
            ..
        }) => format!("{:.2} ± {:.2}", round2(mean), round2(sd)),
        Some(s) => decades(s.mean),
        None => "—".into(),
    };
    if infinite > 0 {
        format!("{finite}; ∞ in {infinite} of {} seeds", values.len())
    } else {
        finite
    }
}

/// The readings of the completed runs (else of any run) of a group.
pub(crate) fn group_readings<'a>(
    loaded: &'a Loaded,
    variant: &str,
    depth: u32,
) -> Vec<&'a GradientEnds> {
    let group = loaded.group(variant, depth);
    let completed: Vec<&GradientEnds> = group
        .iter()
        .filter(|e| e.is_completed())
        .filter_map(|e| e.record.as_ref().map(|r| &r.gradient_ends))
        .collect();
    if completed.is_empty() {
        group
            .iter()
            .filter_map(|e| e.record.as_ref().map(|r| &r.gradient_ends))
            .collect()
    } else {
        completed
    }
}

pub(crate) fn pick(ends: &[&GradientEnds], f: impl Fn(&GradientEnds) -> Option<f64>) -> Vec<f64> {
    ends.iter().filter_map(|g| f(g)).collect()
}

pub(crate) fn gradients(loaded: &Loaded) -> Vec<Block> {
    let variants = loaded.variants();
    let depths = loaded.depths();
    let mut out = vec![
        Block::Heading(2, "Gradients: decay per layer".to_owned()),
        Block::Para(format!(
            "dL/dh is the gradient flowing back into a layer's output, read as its rms per element \
             (accumulated in float64, so a value reads 0 only when the float32 tensor is all zeros). \
             **Decay per layer** is the least-squares slope of log10 rms(dL/dh) over the trunk points \
             ({}), in decades per layer, positive when the gradient shrinks toward the input; the \
             input layer and the head are left out, since their own factors are not depth. **Spread** \
             is log10 of the last trunk point's rms over the first one's. The **forward signal** beside \
             it is √q, the spread across the batch of each unit's output at the same points \
             (`q` in activations.csv: the variance across the batch, averaged over units); its \
             **fall** is log10 of the first trunk point's √q over the last one's, positive when the \
             inputs grow less distinguishable toward the output (above {VANISH_SPREAD:.0} decades: \
             forward collapse). \"Init\" is the median over the first five probe steps, \"end\" \
             over the last five; mean ± std over completed seeds.",
            trunk_words(loaded)
        )),
    ];
    out.extend(decay_table(loaded, &variants, &depths));
    out.extend(deepest_sentence(loaded, &variants, &depths));
    out.extend(theory_table(loaded));
    out.extend(older_ratios(loaded, &variants, &depths));
    out.extend(he_section_4_1(loaded));
    out
}

/// The decay, spread and forward fall per depth and variant, mean ± sd over
/// seeds; a note instead where the runs predate the decay's reading.
fn decay_table(loaded: &Loaded, variants: &[String], depths: &[u32]) -> Vec<Block> {
    let header = cells(&[
        "depth",
        "variant",
        "decay at init",
        "decay at end",
        "spread at init",
        "spread at end",
        "forward fall at init",
        "forward fall at end",
        "seeds",
    ]);
    let mut rows = Vec::new();
    for &d in depths {
        for v in variants {
            let ends = group_readings(loaded, v, d);
            if ends
                .iter()
                .all(|g| g.decay_init.is_none() && g.spread_init.is_none())
            {
                continue;
            }
            rows.push(vec![
                d.to_string(),
                v.clone(),
                decades_stat(&pick(&ends, |g| g.decay_init)),
                decades_stat(&pick(&ends, |g| g.decay_final)),
                decades_stat(&pick(&ends, |g| g.spread_init)),
                decades_stat(&pick(&ends, |g| g.spread_final)),
                forward_stat(&pick(&ends, |g| g.forward_spread_init)),
                forward_stat(&pick(&ends, |g| g.forward_spread_final)),
                ends.len().to_string(),
            ]);
        }
    }
    if !rows.is_empty() {
        return vec![Block::Table(header, rows)];
    }
    let dashes = vec!["—".to_owned(); header.len()];
    vec![
        Block::Table(header, vec![dashes]),
        Block::Para(
            "These runs were recorded before gradscope measured the decay per layer (their run.json has no `decay_init`): rerun the experiment to get it. The older first/last ratios follow."
                .to_owned(),
        ),
    ]
}

/// The deepest depth every variant has, in words: each variant's decay at
/// initialization and how far its first trunk point lies below the last.
fn deepest_sentence(loaded: &Loaded, variants: &[String], depths: &[u32]) -> Option<Block> {
    let &d = depths.iter().rev().find(|&&d| {
        variants.iter().all(|v| {
            group_readings(loaded, v, d)
                .iter()
                .any(|g| g.spread_init.is_some())
        })
    })?;
    let parts: Vec<String> = variants
        .iter()
        .filter_map(|v| {
            let ends = group_readings(loaded, v, d);
            let decay = stat(pick(&ends, |g| g.decay_init).into_iter().map(Some))?;
            let spread = pick(&ends, |g| g.spread_init);
            let spread_med = gradscope_format::decay::median(spread.iter().copied())?;
            Some(deepest_words(v, decay.mean, spread_med))
        })
        .collect();
    (!parts.is_empty()).then(|| Block::Para(format!("At depth {d}, {}.", parts.join("; "))))
}

/// One variant's part of [`deepest_sentence`]: its mean decay at
/// initialization, and where its first trunk point lies against the last
/// (the median spread: positive when the first is below).
fn deepest_words(variant: &str, decay: f64, spread: f64) -> String {
    format!(
        "the {variant} net's decay at initialization is {} decades per layer and {}",
        decades(decay),
        if spread == f64::INFINITY {
            "its first trunk point is exactly 0 in float32 (the float32 backward pass itself underflowed there)".to_owned()
        } else {
            format!(
                "its first trunk point is {} decades {} the last ({})",
                decades(spread.abs()),
                if spread >= 0.0 { "below" } else { "above" },
                flow(spread).describe()
            )
        }
    )
}

/// The first/last-point ratios that results published before the decay per
/// layer carry, kept so that they can be compared.
fn older_ratios(loaded: &Loaded, variants: &[String], depths: &[u32]) -> Vec<Block> {
    let seed = loaded
        .entries
        .iter()
        .filter(|e| e.is_completed())
        .map(|e| e.seed)
        .min()
        .unwrap_or(0);
    let mut header = vec!["depth".to_owned()];
    for v in variants {
        header.push(format!("{v} at init"));
        header.push(format!("{v} at end"));
    }
    let rows = depths
        .iter()
        .map(|&d| {
            let mut row = vec![d.to_string()];
            for v in variants {
                let g = gradient_run(loaded, v, d).and_then(|e| e.record.as_ref());
                row.push(ratio_cell(g.and_then(|r| r.gradient_ends.init_ratio())));
                row.push(ratio_cell(g.and_then(|r| r.gradient_ends.final_ratio())));
            }
            row
        })
        .collect();
    vec![
        Block::Heading(
            3,
            "The older reading: first over last probe point".to_owned(),
        ),
        Block::Para(format!(
            "Kept for comparison with results published before the decay per layer: the L2 norm of \
             dL/dh at the first probe point over the last one's, at step 0 and at the last probed \
             step, on one minibatch, seed {seed} (the first completed seed). The last point is the \
             head, so its own factor enters the ratio, and the two tensors differ in size."
        )),
        Block::Table(header, rows),
    ]
}

#[cfg(test)]
mod tests {
    use super::{decades, decades_stat, decay_table, deepest_words, forward_stat};
    use crate::page::Block;
    use crate::sections::fixture::{loaded, trained};
    use serde_json::json;

    /// A decay is ∞ where the first point is exactly 0 in float32 (the
    /// probe's reading of an underflowed gradient, `format::decay`); over
    /// seeds, infinite readings are counted apart from the finite mean, and
    /// every seed infinite reads as ∞ alone.
    #[test]
    fn infinite_decays_are_counted_apart_from_the_mean() {
        let inf = f64::INFINITY;
        assert_eq!(decades_stat(&[inf, inf]), decades(inf));
        assert_eq!(
            decades_stat(&[0.5, inf, 0.7]),
            "0.60 ± 0.14; ∞ in 1 of 3 seeds"
        );
        assert_eq!(decades_stat(&[0.5]), "0.50");
        assert_eq!(decades_stat(&[]), "—");
        assert!(forward_stat(&[inf]).contains("identical across the batch"));
    }

    /// A reading that rounds to zero is written "0.00", never "-0.00": the
    /// table's sign is a claim (growth or decay), which noise must not make.
    #[test]
    fn readings_that_round_to_zero_carry_no_sign() {
        assert_eq!(decades(-0.001), "0.00");
        assert_eq!(decades_stat(&[-0.001, 0.001]), "0.00 ± 0.00");
        assert_eq!(decades(-0.016), "-0.02");
    }

    /// The spread is log10 of the last trunk point's rms over the first's:
    /// positive means the first point (nearest the input) lies below the
    /// last, and the words say which way and how the flow reads; an
    /// infinite spread is a first point that is exactly 0 in float32.
    #[test]
    fn the_deepest_sentence_says_which_end_is_lower() {
        let shrinking = deepest_words("plain", 0.31, 3.0);
        assert!(
            shrinking.contains("decay at initialization is 0.31 decades per layer")
                && shrinking.contains("its first trunk point is 3.00 decades below the last"),
            "{shrinking}"
        );
        let growing = deepest_words("residual", -0.02, -0.5);
        assert!(growing.contains("0.50 decades above the last"), "{growing}");
        let zero = deepest_words("plain", 1.0, f64::INFINITY);
        assert!(zero.contains("exactly 0 in float32"), "{zero}");
    }

    /// Runs recorded before the decay was measured get a row of dashes and
    /// a note to rerun, not an empty table.
    #[test]
    fn runs_without_the_decay_get_a_note() {
        let runs = loaded(&json!({}), vec![("plain", 8, 0, trained(0.1))]);
        let old = decay_table(&runs, &runs.variants(), &runs.depths());
        assert_eq!(old.len(), 2, "{old:?}");
        assert!(
            matches!(&old[0], Block::Table(h, rows) if rows == &vec![vec!["—".to_owned(); h.len()]])
        );
        assert!(matches!(&old[1], Block::Para(t) if t.contains("rerun the experiment")));
        let runs = loaded(
            &json!({}),
            vec![(
                "plain",
                8,
                0,
                json!({"gradient_ends": {"decay_init": 0.25, "spread_init": 1.5}}),
            )],
        );
        let new = decay_table(&runs, &runs.variants(), &runs.depths());
        let [Block::Table(_, rows)] = new.as_slice() else {
            panic!("{new:?}")
        };
        assert_eq!(rows[0][..4], ["8", "plain", "0.25", "—"]);
    }
}
