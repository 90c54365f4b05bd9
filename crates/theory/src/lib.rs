//! gradscope-theory: what mean-field signal propagation predicts for the
//! gradient's decay per layer, to set beside what the probe measures.
//!
//! For a plain fully connected net without normalization (Poole et al.
//! 2016; Schoenholz et al. 2017, "Deep Information Propagation"), a
//! pre-activation h of a wide layer is Gaussian with variance q, and
//!
//! - forward: q(l) = σ_w² · E[φ(h)²] + σ_b², h ~ N(0, q(l−1));
//! - backward: the squared rms of dL/dh is multiplied by
//!   χ(l) = σ_w² · E[φ'(h)²] going from layer l to layer l − 1,
//!
//! where σ_w² = fan_in · Var(W) and σ_b² = Var(b) come from the init. The
//! predicted profile of log10 rms(dL/dh) over the hidden layers is the sum
//! of ½·log10 χ; its least-squares slope, sign flipped, is the predicted
//! decay per layer, read exactly as gradscope reads the measured one
//! (`gradscope_format::decay`). The input to the first layer is taken to
//! have unit second moment per feature, as gradscope's synthetic and
//! normalized datasets do.
//!
//! With BatchNorm and ReLU in a plain MLP, Yang et al. 2019 ("A mean field
//! theory of batch normalization") predict gradient *growth* toward the
//! input of √(π/(π−1)) ≈ 1.21 per layer at initialization.
//!
//! Where none of this applies (residual nets, conv nets, other
//! normalizations) there is no prediction: [`predict`] returns `None`
//! rather than forcing a number.
//!
//! Beside the MLP: [`recurrent`] (the tanh RNN's decay per time step),
//! [`criticality`] (fixed points and correlation depths), and
//! [`transformer`] (Xiong et al. 2020's scaling of the top block's FFN
//! gradient with depth, post-LN against pre-LN).
//!
//! The Gaussian expectations are computed by composite Gauss–Legendre
//! quadrature on each half-line, which is exact to about 1e-12 for smooth
//! integrands and handles ReLU's kink at 0, since no node sits on it.
//!
//! [`chance`] holds the token tasks' chance levels, which the data crate
//! and the report (no tch) both read from here.

#![forbid(unsafe_code)]

pub mod chance;
pub mod criticality;
pub mod recurrent;
pub mod transformer;

/// A nonlinearity the theory knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Sigmoid,
    Tanh,
    Relu,
}

impl Act {
    fn phi(self, x: f64) -> f64 {
        match self {
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
            Act::Relu => x.max(0.0),
        }
    }

    fn dphi(self, x: f64) -> f64 {
        match self {
            Act::Sigmoid => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 - s)
            }
            Act::Tanh => 1.0 - x.tanh().powi(2),
            Act::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// The weight and bias variances of an init, as σ_w² = fan_in·Var(W) and
/// σ_b² = Var(b), for a layer of the given fans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitKind {
    /// PyTorch's default: W and b ~ U(±1/√fan_in).
    PytorchDefault,
    /// Glorot & Bengio's normalized init, U(±√6/√(fan_in + fan_out)); b = 0.
    Glorot,
    /// N(0, 2/fan_in); b = 0.
    Kaiming,
    /// N(0, std²); b = 0.
    Normal { std: f64 },
    /// The mean-field convention of Poole et al. 2016: W ~ N(0, σ_w²/fan_in)
    /// and b ~ N(0, σ_b²), given as σ_w² (`weight`) and σ_b² (`bias`).
    Variance { weight: f64, bias: f64 },
    /// Orthogonal weights with a gain, zero biases.
    Orthogonal { gain: f64 },
}

impl InitKind {
    /// (σ_w², σ_b²) of a layer with these fans.
    pub fn variances(self, fan_in: f64, fan_out: f64) -> (f64, f64) {
        match self {
            InitKind::PytorchDefault => (1.0 / 3.0, 1.0 / (3.0 * fan_in)),
            InitKind::Glorot => (2.0 * fan_in / (fan_in + fan_out), 0.0),
            InitKind::Kaiming => (2.0, 0.0),
            InitKind::Normal { std } => (fan_in * std * std, 0.0),
            InitKind::Variance { weight, bias } => (weight, bias),
            // An orthogonal n×n matrix scaled by g has rows of norm g: each
            // pre-activation's variance is g²·q/n·n, as for σ_w² = g².
            // The mean-field χ (and so this prediction) is the same;
            // orthogonality changes the spectrum, not the mean (Saxe et
            // al. 2014; Pennington et al. 2017). Biases are 0. A tall
            // matrix (fan_out > fan_in, as torch.nn.init.orthogonal_ makes
            // it) has orthonormal columns instead: its rows have norm²
            // g²·fan_in/fan_out.
            InitKind::Orthogonal { gain } => (gain * gain * (fan_in / fan_in.max(fan_out)), 0.0),
        }
    }
}

/// A plain MLP as the theory sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mlp {
    pub act: Act,
    pub init: InitKind,
    /// Whether BatchNorm sits before each nonlinearity.
    pub batchnorm: bool,
    /// Input features.
    pub input_dim: f64,
    pub width: f64,
    /// Weight layers (the input layer, depth − 2 hidden layers, the head).
    pub depth: usize,
}

/// What the theory predicts for one net.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Decades per layer, positive when the gradient shrinks toward the
    /// input: the least-squares slope of [`Prediction::profile`], sign kept
    /// as gradscope's measured decay.
    pub decay: f64,
    /// log10 of the last hidden layer's rms over the first one's.
    pub spread: f64,
    /// log10 rms(dL/dh) at each hidden layer, input side first, relative
    /// to the last hidden layer (whose value is 0).
    pub profile: Vec<f64>,
    /// The papers the number comes from.
    pub source: &'static str,
}

/// √(π/(π−1)): Yang et al. 2019's gradient growth per layer toward the
/// input of a plain BatchNorm + ReLU MLP at initialization.
pub fn batchnorm_relu_growth() -> f64 {
    (std::f64::consts::PI / (std::f64::consts::PI - 1.0)).sqrt()
}

/// The prediction for a plain MLP, or `None` where the theory does not
/// apply (fewer than two hidden layers, BatchNorm with sigmoid or tanh).
pub fn predict(net: &Mlp) -> Option<Prediction> {
    let hidden = net.depth.checked_sub(2)?;
    if hidden < 2 {
        return None;
    }
    // log10 rms at hidden layer i (1..=hidden), relative, built backwards
    // from the last hidden layer.
    let mut chis: Vec<f64> = Vec::with_capacity(hidden - 1);
    let source;
    if net.batchnorm {
        if net.act != Act::Relu {
            return None;
        }
        let g = batchnorm_relu_growth();
        chis.resize(hidden - 1, g * g);
        source = "Yang et al. 2019 (mean field theory of batch normalization)";
    } else {
        // Forward: the input layer's pre-activation, then the hidden ones.
        let (sw_in, sb_in) = net.init.variances(net.input_dim, net.width);
        let (sw, sb) = net.init.variances(net.width, net.width);
        let mut q = sw_in + sb_in; // unit second moment per input feature
                                   // q_prev[i] = variance of the pre-activation h(i), i = 0..hidden.
        let mut qs = vec![q];
        for _ in 1..=hidden {
            q = sw * gauss(q, |h| net.act.phi(h).powi(2)) + sb;
            qs.push(q);
        }
        // dL/dh(i−1) = φ'(h(i−1)) ⊙ W(i)ᵀ dL/dh(i): between hidden layers
        // i − 1 and i (both 1..=hidden) the factor is χ at h(i − 1).
        for i in 2..=hidden {
            chis.push(sw * gauss(qs[i - 1], |h| net.act.dphi(h).powi(2)));
        }
        source = "Poole et al. 2016; Schoenholz et al. 2017 (mean-field signal propagation)";
    }
    from_factors(&chis, source)
}

/// The prediction whose profile multiplies the squared rms by `chis[i]`
/// going from point i + 1 to point i (the profile is 0 at the last point,
/// each step toward the input adds ½·log10 χ), fitted as the measured one
/// is. `None` when a factor is not positive and finite.
pub(crate) fn from_factors(chis: &[f64], source: &'static str) -> Option<Prediction> {
    let points = chis.len() + 1;
    let mut profile = vec![0.0; points];
    for i in (0..points - 1).rev() {
        profile[i] = profile[i + 1] + 0.5 * chis[i].log10();
    }
    if profile.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = points as f64;
    let mx = (n - 1.0) / 2.0;
    let my = profile.iter().sum::<f64>() / n;
    let (sxy, sxx) = profile
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(a, b), (i, y)| {
            let dx = i as f64 - mx;
            (a + dx * (y - my), b + dx * dx)
        });
    Some(Prediction {
        decay: sxy / sxx,
        spread: profile[points - 1] - profile[0],
        profile,
        source,
    })
}

/// E[f(h)] for h ~ N(0, q): composite 3-point Gauss–Legendre on [0, 12σ]
/// for f(x) + f(−x), weighted by the normal density.
pub fn gauss(q: f64, f: impl Fn(f64) -> f64) -> f64 {
    gauss_panels(q, 600, f)
}

/// [`gauss`] on `panels` panels (fewer where the rule is nested).
pub(crate) fn gauss_panels(q: f64, panels: usize, f: impl Fn(f64) -> f64) -> f64 {
    if q <= 0.0 {
        return f(0.0);
    }
    let sigma = q.sqrt();
    let upper = 12.0 * sigma;
    let h = upper / panels as f64;
    let nodes = [-(0.6f64).sqrt(), 0.0, (0.6f64).sqrt()];
    let weights = [5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0];
    let pdf = |x: f64| (-0.5 * x * x / q).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt());
    let mut total = 0.0;
    for p in 0..panels {
        let mid = (p as f64 + 0.5) * h;
        for (t, w) in nodes.iter().zip(weights) {
            let x = mid + t * h / 2.0;
            total += w * (f(x) + f(-x)) * pdf(x);
        }
    }
    total * h / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Closed forms: E[1] = 1, E[h²] = q, ReLU E[φ'²] = ½ and E[φ²] = q/2,
    /// and for sigmoid the symmetry E[σ(h)] = ½.
    #[test]
    fn quadrature_matches_closed_forms() {
        for q in [0.01, 0.3, 1.0, 4.0] {
            assert!(close(gauss(q, |_| 1.0), 1.0, 1e-12), "{q}");
            assert!(close(gauss(q, |h| h * h), q, 1e-12 * q.max(1.0)));
            assert!(close(gauss(q, |h| Act::Relu.dphi(h).powi(2)), 0.5, 1e-12));
            assert!(close(
                gauss(q, |h| Act::Relu.phi(h).powi(2)),
                q / 2.0,
                1e-12
            ));
            assert!(close(gauss(q, |h| Act::Sigmoid.phi(h)), 0.5, 1e-12));
        }
    }

    /// Issue 17's examples: sigmoid with PyTorch's default init about 0.85
    /// decades per layer; ReLU with Kaiming init 0 (χ = 2 · ½ = 1); tanh
    /// with Glorot init near 0; BN + ReLU growth 1.21 per layer.
    #[test]
    fn predictions_match_the_issue_examples() {
        let net = |act, init, batchnorm| Mlp {
            act,
            init,
            batchnorm,
            input_dim: 64.0,
            width: 64.0,
            depth: 32,
        };
        let sigmoid = predict(&net(Act::Sigmoid, InitKind::PytorchDefault, false)).unwrap();
        assert!((0.8..0.9).contains(&sigmoid.decay), "{}", sigmoid.decay);
        // 29 layer steps at about 0.85 decades: about 25 decades.
        assert!((23.0..27.0).contains(&sigmoid.spread), "{}", sigmoid.spread);
        let relu = predict(&net(Act::Relu, InitKind::Kaiming, false)).unwrap();
        assert!(relu.decay.abs() < 1e-9, "{}", relu.decay);
        let relu_default = predict(&net(Act::Relu, InitKind::PytorchDefault, false)).unwrap();
        assert!(close(
            relu_default.decay,
            -0.5 * (1.0f64 / 6.0).log10(),
            1e-9
        ));
        let tanh_glorot = predict(&net(Act::Tanh, InitKind::Glorot, false)).unwrap();
        assert!(tanh_glorot.decay.abs() < 0.05, "{}", tanh_glorot.decay);
        let bn = predict(&net(Act::Relu, InitKind::Kaiming, true)).unwrap();
        assert!(close(10f64.powf(-bn.decay), 1.2112, 1e-4), "{}", bn.decay);
        // No prediction where the theory does not apply.
        assert!(predict(&net(Act::Tanh, InitKind::Kaiming, true)).is_none());
        assert!(predict(&Mlp {
            depth: 3,
            ..net(Act::Tanh, InitKind::Glorot, false)
        })
        .is_none());
    }

    /// torch.nn.init.orthogonal_ on a tall matrix (more rows than
    /// columns) makes the columns orthonormal, so each row has norm²
    /// fan_in/fan_out: a 16 → 64 layer's σ_w² is ¼, not 1; a square or
    /// wide one's is g².
    #[test]
    fn a_tall_orthogonal_matrix_has_short_rows() {
        let o = InitKind::Orthogonal { gain: 1.0 };
        assert!(close(o.variances(16.0, 64.0).0, 0.25, 1e-15));
        assert!(close(o.variances(64.0, 64.0).0, 1.0, 1e-15));
        assert!(close(o.variances(784.0, 64.0).0, 1.0, 1e-15));
    }

    /// Issue 31: the mean-field inits. ReLU at σ_w² = 2, σ_b² = 0 is
    /// Kaiming's χ = 1 (decay 0); σ_w² = 1 halves the squared gradient per
    /// layer, log10(√2) ≈ 0.151 decades (χ = σ_w²·½, Poole et al. 2016);
    /// orthogonal weights with gain g predict what σ_w² = g² does (the same
    /// mean-field χ).
    #[test]
    fn variance_and_orthogonal_inits_predict_by_sigma_w() {
        let net = |act, init, batchnorm| Mlp {
            act,
            init,
            batchnorm,
            input_dim: 64.0,
            width: 64.0,
            depth: 32,
        };
        let kaiming = predict(&net(Act::Relu, InitKind::Kaiming, false)).unwrap();
        let v2 = InitKind::Variance {
            weight: 2.0,
            bias: 0.0,
        };
        assert!(close(
            predict(&net(Act::Relu, v2, false)).unwrap().decay,
            kaiming.decay,
            1e-12
        ));
        let v1 = InitKind::Variance {
            weight: 1.0,
            bias: 0.0,
        };
        let d = predict(&net(Act::Relu, v1, false)).unwrap().decay;
        assert!(close(d, 0.5 * 2f64.log10(), 1e-9), "{d}");
        let o = InitKind::Orthogonal { gain: 2f64.sqrt() };
        assert!(close(
            predict(&net(Act::Relu, o, false)).unwrap().decay,
            kaiming.decay,
            1e-9
        ));
        // A bias variance moves tanh's fixed point, and so its χ.
        let tanh = |bias| {
            predict(&net(
                Act::Tanh,
                InitKind::Variance { weight: 1.5, bias },
                false,
            ))
            .unwrap()
            .decay
        };
        assert!(tanh(0.05) != tanh(0.0));
    }
}
