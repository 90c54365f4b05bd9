//! The headline readings of a gradient profile.
//!
//! A profile is the per-element rms of dL/dh at the trunk points of one
//! probe step, input side first (see [`crate::GradientRow::trunk`]). From it:
//!
//! - **decay per layer**: the least-squares slope of log10 rms against the
//!   point's position on the trunk, in decades per layer, positive when the
//!   gradient shrinks toward the input. A plain sigmoid MLP with PyTorch's
//!   default init loses about 0.85 decades per layer; an identity shortcut
//!   keeps it near 0.
//! - **spread**: log10 of the last trunk point's rms over the first one's.
//!
//! Both leave out the input layer and the head (their own factors are not
//! depth) and compare per-element values, so tensors of different sizes are
//! comparable. "Init" and "final" are medians over the first and last
//! [`WINDOW`] probe steps, not one minibatch.
//!
//! A point whose rms is exactly 0 (a float32 tensor of zeros: the backward
//! pass itself underflowed) has no logarithm. The slope is fitted over the
//! other points at their own positions; the spread is then infinite, which
//! is what it is.

use std::collections::VecDeque;

/// Probe steps in the "init" and "final" medians.
pub const WINDOW: usize = 5;

/// Least-squares slope of log10(rms) against the trunk position (0 = input
/// side), in decades per layer. Points that are 0 or not finite are left
/// out; `None` when fewer than two remain.
pub fn decay_per_layer(rms: &[f64]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = rms
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite() && **v > 0.0)
        .map(|(i, v)| (i as f64, v.log10()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    Some(sxy / sxx)
}

/// log10(last / first) over the trunk: +inf when only the first point is
/// exactly 0, `None` with fewer than two points, a non-finite value, or a
/// last point of 0.
pub fn spread(rms: &[f64]) -> Option<f64> {
    let (&first, &last) = (rms.first()?, rms.last()?);
    if rms.len() < 2 || !first.is_finite() || !last.is_finite() || last <= 0.0 || first < 0.0 {
        return None;
    }
    Some(if first == 0.0 {
        f64::INFINITY
    } else {
        (last / first).log10()
    })
}

/// Median of the values that are not NaN (infinities count); `None` when
/// there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    // Equal middle values (two infinities) are taken as they are, not
    // averaged.
    Some(if v.len() % 2 == 1 || v[m - 1] == v[m] {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Decay and spread at the start and the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Readings {
    pub decay_init: Option<f64>,
    pub decay_final: Option<f64>,
    pub spread_init: Option<f64>,
    pub spread_final: Option<f64>,
}

/// Keeps the profiles of the first and the last [`WINDOW`] probe steps of a
/// run, in constant memory, and reads their medians.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileWindow {
    first: Vec<Vec<f64>>,
    last: VecDeque<Vec<f64>>,
}

impl ProfileWindow {
    pub fn new() -> ProfileWindow {
        ProfileWindow::default()
    }

    /// Adds the profile of the next probe step.
    pub fn push(&mut self, profile: Vec<f64>) {
        if self.first.len() < WINDOW {
            self.first.push(profile.clone());
        }
        if self.last.len() == WINDOW {
            self.last.pop_front();
        }
        self.last.push_back(profile);
    }

    /// Medians of the per-step decay and spread over each window.
    pub fn readings(&self) -> Readings {
        let decay = |w: &mut dyn Iterator<Item = &Vec<f64>>| {
            median(w.filter_map(|p| decay_per_layer(p)).collect::<Vec<_>>())
        };
        let spr = |w: &mut dyn Iterator<Item = &Vec<f64>>| {
            median(w.filter_map(|p| spread(p)).collect::<Vec<_>>())
        };
        Readings {
            decay_init: decay(&mut self.first.iter()),
            decay_final: decay(&mut self.last.iter()),
            spread_init: spr(&mut self.first.iter()),
            spread_final: spr(&mut self.last.iter()),
        }
    }
}

/// The readings of one run from its `gradients.csv` rows: each probe step's
/// profile is `value` of the trunk rows that `value` accepts (in layer
/// order). Used by the report, e.g. with the scale-free weight measure.
pub fn readings_of(
    rows: &[crate::GradientRow],
    value: impl Fn(&crate::GradientRow) -> Option<f64>,
) -> Readings {
    let mut window = ProfileWindow::new();
    let mut at = 0;
    while at < rows.len() {
        let step = rows[at].step;
        let end = rows[at..]
            .iter()
            .position(|r| r.step != step)
            .map_or(rows.len(), |k| at + k);
        let mut step_rows: Vec<&crate::GradientRow> = rows[at..end].iter().collect();
        step_rows.sort_by_key(|r| r.layer);
        let profile: Vec<f64> = step_rows.iter().filter_map(|r| value(r)).collect();
        if !profile.is_empty() {
            window.push(profile);
        }
        at = end;
    }
    window.readings()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_geometric_profile_is_its_ratio_in_decades() {
        // Each layer toward the input 0.141 of the next: 0.85 decades.
        let rms: Vec<f64> = (0..14).map(|i| 0.141f64.powi(13 - i)).collect();
        let d = decay_per_layer(&rms).unwrap();
        assert!((d + 0.141f64.log10()).abs() < 1e-12, "{d}");
        let s = spread(&rms).unwrap();
        assert!((s - 13.0 * -(0.141f64.log10())).abs() < 1e-9);
        // Flat profile: 0.
        assert_eq!(decay_per_layer(&[2.0; 5]), Some(0.0));
    }

    #[test]
    fn exact_zeros_are_left_out_of_the_fit_and_make_the_spread_infinite() {
        let rms = [0.0, 0.0, 1e-3, 1e-2, 1e-1];
        let d = decay_per_layer(&rms).unwrap();
        assert!((d - 1.0).abs() < 1e-12);
        assert_eq!(spread(&rms), Some(f64::INFINITY));
        assert_eq!(decay_per_layer(&[0.0, 0.0, 1.0]), None);
        assert_eq!(spread(&[1.0]), None);
    }

    #[test]
    fn medians_over_the_first_and_last_five_steps() {
        let mut w = ProfileWindow::new();
        // Step k has a decay of k decades per layer; 12 steps.
        for k in 0..12 {
            w.push(vec![1.0, 10f64.powi(k)]);
        }
        let r = w.readings();
        assert_eq!(r.decay_init, Some(2.0)); // steps 0..4
        assert_eq!(r.decay_final, Some(9.0)); // steps 7..11
        assert_eq!(r.spread_final, Some(9.0));
        assert_eq!(median([1.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(
            median([f64::INFINITY, 1.0, f64::INFINITY]),
            Some(f64::INFINITY)
        );
        assert_eq!(median([]), None);
    }
}
