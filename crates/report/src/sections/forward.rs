//! The forward signal's correlation between inputs (issue 36 §1): per net,
//! where c (activations.csv's `c`, Poole et al. 2016's correlation of two
//! inputs' pre-activations) comes within `verdict::CORRELATED_GAP` of 1 at
//! step 0, the measured correlation depth beside mean-field theory's ξ_c
//! (summary.csv's `xi_c`), and the sentence that names forward collapse
//! apart from a vanishing gradient.

use super::gradients::gradient_run;
use super::{cells, sci};
use crate::page::Block;
use crate::runs::Loaded;
use crate::verdict::{correlated_layer, CORRELATED_GAP};

/// Gaps |c_l − c_last| the measured depth is fitted over: below the upper
/// one the correlation map is near its fixed point (linear, where ξ_c is
/// its rate); above the lower one float32's rounding of the
/// pre-activations does not yet dominate (two inputs' vectors must differ
/// by more than ~1e-7 relative, a gap of ~1e-14, and a margin above it).
pub(crate) const FIT_GAPS: (f64, f64) = (1e-10, 0.1);

/// The c of each trunk layer at step 0 of the first completed seed of
/// (variant, depth) that has its activations.csv, input side first
/// (`None` where a layer's c is empty); `None` without such a run or
/// without any c read.
pub(crate) fn step0_correlation(
    loaded: &Loaded,
    variant: &str,
    depth: u32,
) -> Option<Vec<Option<f64>>> {
    let entry = gradient_run(loaded, variant, depth)?;
    let rows = loaded.csv_run(&entry.name)?.activations.as_ref()?;
    let trunk = entry
        .record
        .as_ref()
        .map(|r| r.gradient_ends.trunk_points.clone())
        .unwrap_or_default();
    let mut at0: Vec<(usize, Option<f64>)> = rows
        .iter()
        .filter(|r| r.step == 0 && r.is_layer_response())
        .filter(|r| trunk.is_empty() || trunk.contains(&r.name))
        .map(|r| (r.layer, r.c))
        .collect();
    at0.sort_by_key(|(layer, _)| *layer);
    at0.dedup_by_key(|(layer, _)| *layer);
    let c: Vec<Option<f64>> = at0.into_iter().map(|(_, c)| c).collect();
    c.iter().any(Option::is_some).then_some(c)
}

/// The measured correlation depth, in layers: with g_l = |c_l − c_last|
/// over the trunk layers before the last, the least-squares slope b of
/// ln g_l against l over the layers whose g_l lies within [`FIT_GAPS`],
/// and −1/b (c approaches its last value as e^(−l/depth), which is how
/// ξ_c is defined). `None` with fewer than two such layers or a slope
/// that is not negative.
pub(crate) fn correlation_depth(c: &[Option<f64>]) -> Option<f64> {
    let last = (*c.last()?)?;
    let points: Vec<(f64, f64)> = c[..c.len() - 1]
        .iter()
        .enumerate()
        .filter_map(|(l, v)| {
            let g = (v.as_ref()? - last).abs();
            (g > FIT_GAPS.0 && g < FIT_GAPS.1).then(|| (l as f64, g.ln()))
        })
        .collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    let slope = sxy / sxx;
    (slope < 0.0).then(|| -1.0 / slope)
}

fn depth_cell(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_infinite() => "∞".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "—".into(),
    }
}

fn c_cell(c: Option<f64>) -> String {
    match c {
        // Every pair's vectors parallel to float64's precision: in the
        // quickstart's collapsed layers the float32 rows are identical.
        Some(1.0) => "1 (exactly)".into(),
        // Near 1 the gap is what reads.
        Some(c) if c > 0.99 => format!("1 − {}", sci(1.0 - c)),
        Some(c) => format!("{c:.3}"),
        None => "—".into(),
    }
}

/// Every (variant, depth) with c read: where c comes within the gap of 1,
/// as `(variant, depth, layer)`, in the experiment's order.
pub(crate) fn collapses(loaded: &Loaded) -> Vec<(String, u32, usize)> {
    let mut out = Vec::new();
    for v in loaded.variants() {
        for d in loaded.depths() {
            if let Some(layer) = step0_correlation(loaded, &v, d).and_then(|c| correlated_layer(&c))
            {
                out.push((v.clone(), d, layer));
            }
        }
    }
    out
}

/// The verdict's sentence on forward collapse by c, or `None` where no net
/// has c within the gap of 1.
pub(crate) fn collapse_sentence(loaded: &Loaded) -> Option<String> {
    let found = collapses(loaded);
    if found.is_empty() {
        return None;
    }
    let mut by: Vec<(String, Vec<String>)> = Vec::new();
    for (v, d, layer) in found {
        let cell = format!("depth {d} by trunk layer {layer}");
        match by.iter_mut().find(|(k, _)| *k == v) {
            Some((_, cs)) => cs.push(cell),
            None => by.push((v, vec![cell])),
        }
    }
    let parts: Vec<String> = by
        .iter()
        .map(|(v, cs)| format!("{v} at {}", cs.join(", ")))
        .collect();
    Some(format!(
        "**Forward collapse**: at step 0 the inputs become indistinguishable (c, the correlation between two inputs' pre-activations, within {CORRELATED_GAP:.0e} of 1) in {}. This is a failure of the forward pass, named apart from a vanishing gradient: the layers above that point see one input whatever the example, so no gradient, however large, can tell the classes apart there (Poole et al. 2016; Schoenholz et al. 2017).",
        parts.join("; ")
    ))
}

/// The section: a row per (variant, depth) with c read (the verdict's
/// sentence, [`collapse_sentence`], is in "What the numbers show").
pub(crate) fn forward(loaded: &Loaded) -> Vec<Block> {
    let mut rows = Vec::new();
    for v in loaded.variants() {
        for d in loaded.depths() {
            let Some(c) = step0_correlation(loaded, &v, d) else {
                continue;
            };
            let xi =
                gradient_run(loaded, &v, d).and_then(|e| e.record.as_ref()?.gradient_ends.xi_c);
            let first = c.iter().copied().flatten().next();
            let last = c.last().copied().flatten();
            rows.push(vec![
                v.clone(),
                d.to_string(),
                c_cell(first),
                c_cell(last),
                correlated_layer(&c).map_or("—".into(), |l| l.to_string()),
                depth_cell(correlation_depth(&c)),
                depth_cell(xi),
            ]);
        }
    }
    if rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading(2, "Forward signal: correlation between inputs".to_owned()),
        Block::Para(format!(
            "**c** is the correlation between two inputs' pre-activations at a trunk layer at step 0, q_ab/√(q_aa·q_bb) with q_ab the mean over units of h_a·h_b (Poole et al. 2016), averaged over 32 fixed pairs of the probed batch, for the first completed seed. **Collapsed by** is the first trunk layer (1 at the input side) where c is within {CORRELATED_GAP:.0e} of 1: the inputs are indistinguishable from there on. The **measured depth** is −1/slope of ln|c_l − c_last| against the layer, over the layers whose gap lies between {:.0e} and {:.1} (near the fixed point, above float32's rounding); **ξ_c** is mean-field theory's −1/ln χ_c for the run's activation and init (Schoenholz et al. 2017; plain nets without normalization; ∞ at the edge of chaos).",
            FIT_GAPS.0, FIT_GAPS.1
        )),
        Block::Table(
            cells(&[
                "variant",
                "depth",
                "c, first trunk layer",
                "c, last trunk layer",
                "collapsed by",
                "measured depth",
                "ξ_c (theory)",
            ]),
            rows,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// c approaching 1 as 1 − 0.5·e^(−l/0.8) (gap 0.5 at the first layer)
    /// reads a depth of 0.8 over the layers whose gap is within the fit's
    /// window; a flat c, one layer, or a last layer that was not read has
    /// none.
    #[test]
    fn the_measured_depth_is_the_rate_of_approach() {
        let c: Vec<Option<f64>> = (0..40)
            .map(|l| Some(1.0 - 0.5 * (-(l as f64) / 0.8).exp()))
            .collect();
        let d = correlation_depth(&c).unwrap();
        assert!((d - 0.8).abs() < 1e-6, "{d}");
        assert_eq!(correlation_depth(&[Some(0.3); 6]), None);
        assert_eq!(correlation_depth(&c[..1]), None);
        let mut unread = c.clone();
        unread.push(None);
        assert_eq!(correlation_depth(&unread), None);
        assert_eq!(c_cell(Some(1.0 - 2e-5)), "1 − 2.0e-5");
        assert_eq!(c_cell(Some(1.0)), "1 (exactly)");
        assert_eq!(depth_cell(Some(f64::INFINITY)), "∞");
    }
}
