//! The gradient through time of a tanh (Elman) RNN at initialization, in
//! mean field (Chen, Pennington & Schoenholz 2018, "Dynamical Isometry and
//! a Mean Field Theory of RNNs"; the vanishing product itself is Bengio,
//! Simard & Frasconi 1994 and Pascanu, Mikolov & Bengio 2013).
//!
//! A layer steps e_t = W h_{t−1} + U x_t + b, h_t = φ(e_t), from h = 0.
//! For a wide layer e_t is Gaussian with variance
//!
//! - q_t = σ_w²·E[φ(e)²] (e of variance q_{t−1}, the term absent at t = 0)
//!   + σ_u²·m_x + σ_b²,
//!
//! where σ_w² = hidden·Var(W), σ_u²·m_x = Var(U)·Σ_f E[x_f²] is what the
//! input adds each step (so the input's power enters q, unlike a
//! feed-forward net's hidden layers) and σ_b² the total bias variance.
//! In a stack, layer l's input power is hidden·E[φ(e)²] of layer l − 1 at
//! the same step.
//!
//! Backward, dL/dh_{t−1} = Wᵀ·(φ'(e_t) ⊙ dL/dh_t) where the loss reads only
//! the last step (the adding problem, sequences classified at their end),
//! so the squared rms of dL/dh shrinks by χ_t = σ_w²·E[φ'(e_t)²] per step
//! back in time: the same χ as a feed-forward layer's, with q set by the
//! recurrence and the input together. The profile and its decay are read
//! as the measured ones are ([`crate::Prediction`]).
//!
//! **Gated cells are not predicted here.** Chen et al. give mean-field
//! maps for gated cells only in their minimal form; for the LSTM the one
//! first-order statement is that its cell path multiplies dL/dc by the
//! forget gate f_t each step back, which starts near σ(forget bias) for
//! small weights ([`forget_gate_decay`]) and is learned from there.

use crate::{from_factors, gauss, Act, Prediction};

/// A tanh RNN (one layer or a stack) as the theory sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TanhRnn {
    /// hidden·Var(W_hh): the recurrent σ_w² of every layer.
    pub sigma_w: f64,
    /// Var(U_ih) per entry, for every layer (the input power is multiplied
    /// by it, see the module doc).
    pub input_weight_var: f64,
    /// Var(b_ih) + Var(b_hh).
    pub sigma_b: f64,
    /// The first layer's input power per step, Σ_f E[x_f²] (averaged over
    /// the steps).
    pub input_power: f64,
    /// Hidden size.
    pub width: f64,
    /// Stacked layers (1 or more).
    pub layers: usize,
    /// Time steps.
    pub length: usize,
}

const SOURCE: &str = "Chen, Pennington & Schoenholz 2018 (mean field theory of RNNs)";

/// q_t of the top layer at every step, from h = 0.
pub fn variances(net: &TanhRnn) -> Vec<f64> {
    let phi2 = |q: f64| gauss(q, |h| Act::Tanh.phi(h).powi(2));
    // Input power per step of the current layer: the data's for the first.
    let mut power = vec![net.input_power; net.length];
    let mut qs = Vec::new();
    for _ in 0..net.layers.max(1) {
        qs = Vec::with_capacity(net.length);
        for (t, p) in power.iter().enumerate() {
            let carried = if t == 0 {
                0.0
            } else {
                net.sigma_w * phi2(qs[t - 1])
            };
            qs.push(carried + net.input_weight_var * p + net.sigma_b);
        }
        power = qs.iter().map(|&q| net.width * phi2(q)).collect();
    }
    qs
}

/// The predicted profile of rms(dL/dh_t) over the top layer's steps, with
/// the decay per step, or `None` for fewer than 2 steps.
pub fn predict_tanh(net: &TanhRnn) -> Option<Prediction> {
    if net.length < 2 {
        return None;
    }
    let qs = variances(net);
    // From point t to point t − 1 the factor is χ at e_t (t = 1..T − 1).
    let chis: Vec<f64> = qs[1..]
        .iter()
        .map(|&q| net.sigma_w * gauss(q, |h| Act::Tanh.dphi(h).powi(2)))
        .collect();
    from_factors(&chis, SOURCE)
}

/// Decades per step of the LSTM's cell path at init when the forget gate
/// sits at σ(`forget_bias`): −log10 σ(b_f). A statement about the cell
/// path alone for small weights, not a prediction of dL/dh_t.
pub fn forget_gate_decay(forget_bias: f64) -> f64 {
    let f = 1.0 / (1.0 + (-forget_bias).exp());
    -f.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(sigma_w: f64, length: usize) -> TanhRnn {
        TanhRnn {
            sigma_w,
            input_weight_var: 1.0 / 96.0,
            sigma_b: 2.0 / 96.0,
            input_power: 1.0 / 3.0,
            width: 32.0,
            layers: 1,
            length,
        }
    }

    /// With no input and no bias, q stays 0, φ' = 1 and the recurrence is
    /// linear: χ = σ_w² exactly, so the decay is −½·log10 σ_w² per step
    /// (σ_w² = 1: none; Saxe et al. 2014's isometry in time).
    #[test]
    fn a_silent_recurrence_decays_by_half_log_sigma_w() {
        for sw in [0.25, 1.0, 2.0] {
            let n = TanhRnn {
                input_weight_var: 0.0,
                sigma_b: 0.0,
                ..net(sw, 20)
            };
            let p = predict_tanh(&n).unwrap();
            assert!(
                (p.decay + 0.5 * sw.log10()).abs() < 1e-12,
                "{sw}: {}",
                p.decay
            );
        }
    }

    /// PyTorch's default init (σ_w² = 1/3) at width 32 on the adding
    /// problem: q stays small, so tanh is nearly linear and χ sits just
    /// under 1/3: a decay just over ½·log10 3 ≈ 0.24 decades per step, a
    /// gradient 12 decades down after 50 steps (Bengio et al. 1994's
    /// vanishing, in numbers).
    #[test]
    fn the_default_init_vanishes_at_a_quarter_decade_per_step() {
        let p = predict_tanh(&net(1.0 / 3.0, 50)).unwrap();
        assert!(
            p.decay > 0.5 * 3f64.log10() && p.decay < 0.26,
            "{}",
            p.decay
        );
        assert!(p.spread > 11.5 && p.spread < 13.0, "{}", p.spread);
        assert_eq!(p.profile.len(), 50);
    }

    /// The input's power enters q: more input power, more saturation,
    /// smaller φ', faster decay (Chen et al. 2018, their q* with input).
    #[test]
    fn input_power_speeds_the_decay() {
        let quiet = predict_tanh(&net(1.0, 30)).unwrap();
        let loud = predict_tanh(&TanhRnn {
            input_weight_var: 1.0,
            input_power: 2.0,
            ..net(1.0, 30)
        })
        .unwrap();
        assert!(
            loud.decay > quiet.decay + 0.05,
            "{} vs {}",
            loud.decay,
            quiet.decay
        );
    }

    /// A stack's top layer sees the layer below's output power: its q is
    /// larger than a single layer's from the same data.
    #[test]
    fn a_stack_feeds_its_power_upward() {
        let one = variances(&net(1.0, 10));
        let two = variances(&TanhRnn {
            layers: 2,
            ..net(1.0, 10)
        });
        assert!(two[9] > one[9], "{} vs {}", two[9], one[9]);
    }

    /// σ(1) = 0.731: the LSTM's cell path at forget bias 1 (Jozefowicz et
    /// al. 2015) keeps 0.136 decades per step; at 0 it halves each step.
    #[test]
    fn forget_gate_decay_is_minus_log_sigma() {
        assert!((forget_gate_decay(1.0) - 0.1360).abs() < 1e-4);
        assert!((forget_gate_decay(0.0) - 2f64.log10()).abs() < 1e-12);
    }
}
