//! What Xiong et al. (2020, "On Layer Normalization in the Transformer
//! Architecture", Theorems 1 and 2) prove about the gradient at a
//! Transformer's top at initialization, as a scaling in the number of
//! blocks L to draw beside what the probe measures.
//!
//! For the last block's FFN output weight W^(2,L) (the transformer
//! family's `blockNN.mlp` weight), with high probability at init:
//!
//! - **post-LN** (x ← LN(x + F(x))): ‖∂L/∂W^(2,L)‖_F = O(d·√(ln d)),
//!   independent of L. The gradient near the output does not shrink as
//!   the net deepens, which is why a large learning rate at the start
//!   needs a warm-up;
//! - **pre-LN** (x ← x + F(LN(x)), final LN): O(d·√(ln d / L)), shrinking
//!   as 1/√L: every block adds to the residual stream's scale, and the
//!   final LN divides by it.
//!
//! These are bounds up to constants, so what can be compared with a
//! measurement is the exponent of L, not a value: [`scaling`] draws the
//! predicted power law through one measured anchor, and [`log_log_slope`]
//! fits the measured exponent the same way on both.

/// A layout Xiong et al.'s theorems cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    PostLn,
    PreLn,
}

impl Layout {
    /// The variant's name in an experiment file (`post-ln`, `pre-ln`);
    /// `None` for a layout the theorems do not cover.
    pub fn of_variant(variant: &str) -> Option<Layout> {
        match variant {
            "post-ln" => Some(Layout::PostLn),
            "pre-ln" => Some(Layout::PreLn),
            _ => None,
        }
    }

    /// The exponent of L in the bound on the top FFN weight's gradient
    /// norm: 0 for post-LN, −½ for pre-LN.
    pub fn top_ffn_exponent(self) -> f64 {
        match self {
            Layout::PostLn => 0.0,
            Layout::PreLn => -0.5,
        }
    }
}

/// The predicted power law through `anchor` = (L₀, value at L₀):
/// value(L) = value(L₀)·(L/L₀)^exponent. `None` for a non-positive depth
/// or anchor (no power law passes through them).
pub fn scaling(layout: Layout, anchor: (f64, f64), depth: f64) -> Option<f64> {
    let (l0, v0) = anchor;
    let drawable = l0 > 0.0 && v0 > 0.0 && depth > 0.0 && v0.is_finite();
    if !drawable {
        return None;
    }
    Some(v0 * (depth / l0).powf(layout.top_ffn_exponent()))
}

/// The least-squares slope of ln(value) against ln(depth): the measured
/// exponent of a power law. Points with a non-positive or non-finite
/// depth or value are left out; `None` with fewer than two distinct
/// depths left.
pub fn log_log_slope(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(l, v)| *l > 0.0 && *v > 0.0 && l.is_finite() && v.is_finite())
        .map(|(l, v)| (l.ln(), v.ln()))
        .collect();
    let n = logs.len() as f64;
    if logs.len() < 2 {
        return None;
    }
    let mx = logs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = logs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = logs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Xiong et al. 2020, Theorems 1 and 2: post-LN's bound does not
    /// depend on L, pre-LN's shrinks as 1/√L.
    #[test]
    fn the_exponents_are_xiongs() {
        assert_eq!(Layout::PostLn.top_ffn_exponent(), 0.0);
        assert_eq!(Layout::PreLn.top_ffn_exponent(), -0.5);
        assert_eq!(Layout::of_variant("pre-ln"), Some(Layout::PreLn));
        assert_eq!(Layout::of_variant("post-ln"), Some(Layout::PostLn));
        assert_eq!(Layout::of_variant("plain"), None);
    }

    /// The line passes through its anchor; pre-LN at 4× the depth is half
    /// the anchor's value, post-LN the same.
    #[test]
    fn the_scaling_passes_through_its_anchor() {
        for layout in [Layout::PostLn, Layout::PreLn] {
            assert_eq!(scaling(layout, (6.0, 0.3), 6.0), Some(0.3));
        }
        assert!((scaling(Layout::PreLn, (6.0, 0.3), 24.0).unwrap() - 0.15).abs() < 1e-15);
        assert_eq!(scaling(Layout::PostLn, (6.0, 0.3), 24.0), Some(0.3));
        assert_eq!(scaling(Layout::PreLn, (6.0, 0.0), 24.0), None);
        assert_eq!(scaling(Layout::PreLn, (0.0, 1.0), 24.0), None);
    }

    /// A power law's exponent is recovered exactly, from the same points
    /// the scaling draws; fewer than two depths give none.
    #[test]
    fn the_log_log_slope_recovers_a_power_law() {
        let pts: Vec<(f64, f64)> = [2.0, 6.0, 18.0]
            .iter()
            .map(|&l| (l, scaling(Layout::PreLn, (2.0, 0.8), l).unwrap()))
            .collect();
        assert!((log_log_slope(&pts).unwrap() + 0.5).abs() < 1e-12);
        let flat = [(2.0, 0.4), (6.0, 0.4), (18.0, 0.4)];
        assert!(log_log_slope(&flat).unwrap().abs() < 1e-12);
        assert_eq!(log_log_slope(&[(2.0, 1.0), (2.0, 3.0)]), None);
        assert_eq!(log_log_slope(&[(2.0, 1.0), (6.0, 0.0)]), None);
    }
}
