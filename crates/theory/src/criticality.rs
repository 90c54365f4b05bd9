//! Order and chaos in a wide plain net at initialization (Poole et al.
//! 2016; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep
//! Information Propagation"): the fixed points of the forward maps and the
//! depth scales they set.
//!
//! - The length map q' = σ_w²·E[φ(√q·z)²] + σ_b² has a fixed point q*.
//! - The correlation map of two inputs at q*,
//!   c' = (σ_w²·E[φ(u₁)φ(u₂)] + σ_b²) / q*, with u₁ = √q*·z₁ and
//!   u₂ = √q*·(c·z₁ + √(1−c²)·z₂), always has c = 1 as a fixed point; its
//!   slope there, χ₁ = σ_w²·E[φ'(√q*·z)²], is the per-layer factor of the
//!   squared gradient that the decay prediction uses. For χ₁ < 1 (order)
//!   c = 1 attracts and inputs become indistinguishable with depth; for
//!   χ₁ > 1 (chaos) a fixed point c* < 1 does.
//! - Correlations approach c* as e^(−l/ξ_c), with ξ_c = −1/ln χ_c and
//!   χ_c = σ_w²·E[φ'(u₁)φ'(u₂)] at c*; ξ_c diverges at χ₁ = 1. Schoenholz et
//!   al. find that nets deeper than about 6ξ_c do not train. Lengths
//!   approach q* as e^(−l/ξ_q), with
//!   ξ_q = −1/ln(χ₁ + σ_w²·E[φ''(√q*·z)·φ(√q*·z)]).
//!
//! Expectations over one Gaussian use [`crate::gauss`]; over two, a
//! product rule of the same composite Gauss–Legendre quadrature (fewer
//! panels, since it is nested), except for ReLU, whose two-input
//! expectation has a closed form (the arc-cosine kernel of Cho & Saul
//! 2009) and whose kink would cost the quadrature its accuracy.

use crate::{gauss, gauss_panels, Act};

/// The fixed points and depth scales of one (φ, σ_w², σ_b²).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criticality {
    /// The length map's fixed point (∞ where lengths grow without bound).
    pub q_star: f64,
    /// The correlation map's stable fixed point.
    pub c_star: f64,
    /// The slope of the correlation map at c = 1.
    pub chi_1: f64,
    /// The slope of the correlation map at c*.
    pub chi_c: f64,
    /// Layers over which correlations approach c* (∞ at χ₁ = 1).
    pub xi_c: f64,
    /// Layers over which lengths approach q*.
    pub xi_q: f64,
}

/// Where q grows past this the length map has no finite fixed point.
const Q_MAX: f64 = 1e12;

impl Act {
    fn d2phi(self, x: f64) -> f64 {
        match self {
            Act::Sigmoid => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 - s) * (1.0 - 2.0 * s)
            }
            Act::Tanh => {
                let t = x.tanh();
                -2.0 * t * (1.0 - t * t)
            }
            Act::Relu => 0.0,
        }
    }
}

/// q' from q.
pub fn q_map(act: Act, sw: f64, sb: f64, q: f64) -> f64 {
    sw * gauss(q, |h| act.phi(h).powi(2)) + sb
}

/// The length map's fixed point, iterated from q = 1 (the unit-variance
/// input gradscope's data have). Where the map is the identity (ReLU at
/// σ_w² = 2, σ_b² = 0) every q is fixed and q = 1 is returned.
pub fn q_star(act: Act, sw: f64, sb: f64) -> f64 {
    let mut q = 1.0;
    for _ in 0..10_000 {
        let next = q_map(act, sw, sb, q);
        // NaN too: a map that overflowed has no finite fixed point.
        if next.is_nan() || next >= Q_MAX {
            return f64::INFINITY;
        }
        if (next - q).abs() <= 1e-14 * q.max(1e-300) {
            return next;
        }
        q = next;
    }
    q
}

/// E[f(u₁, u₂)] for u₁ = √q·z₁, u₂ = √q·(c·z₁ + √(1−c²)·z₂).
fn pair(q: f64, c: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
    let (sq, s) = (q.sqrt(), (1.0 - c * c).max(0.0).sqrt());
    coarse(|z1| coarse(|z2| f(sq * z1, sq * (c * z1 + s * z2))))
}

/// E[f(z)] for z ~ N(0, 1) on 96 panels of [0, 12]: the inner and outer
/// rule of [`pair`] (error near 1e-10 for tanh and sigmoid).
fn coarse(f: impl Fn(f64) -> f64) -> f64 {
    gauss_panels(1.0, 96, f)
}

/// E[φ(u₁)φ(u₂)], in closed form for ReLU: q/(2π)·(√(1−c²) + (π − arccos c)·c).
fn phi_phi(act: Act, q: f64, c: f64) -> f64 {
    match act {
        Act::Relu => {
            let c = c.clamp(-1.0, 1.0);
            q / (2.0 * std::f64::consts::PI)
                * ((1.0 - c * c).sqrt() + (std::f64::consts::PI - c.acos()) * c)
        }
        _ => pair(q, c, |a, b| act.phi(a) * act.phi(b)),
    }
}

/// E[φ'(u₁)φ'(u₂)], in closed form for ReLU: (π − arccos c)/(2π).
fn dphi_dphi(act: Act, q: f64, c: f64) -> f64 {
    match act {
        Act::Relu => {
            (std::f64::consts::PI - c.clamp(-1.0, 1.0).acos()) / (2.0 * std::f64::consts::PI)
        }
        _ => pair(q, c, |a, b| act.dphi(a) * act.dphi(b)),
    }
}

/// c' from c, at the length q (q* in a deep net).
pub fn c_map(act: Act, sw: f64, sb: f64, q: f64, c: f64) -> f64 {
    (sw * phi_phi(act, q, c) + sb) / q
}

/// The forward signal at one layer of a plain net, as the length and
/// correlation maps carry it from the layer below.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// The pre-activation's second moment per unit, q.
    pub q: f64,
    /// The correlation of two inputs' pre-activations, c.
    pub c: f64,
    /// 1 − c, computed without the cancellation of subtracting c from 1
    /// (what a log axis and a 1e-3 threshold read near c = 1).
    pub gap: f64,
}

/// The next layer's [`Signal`] from this one's, away from the fixed point
/// as well as at it: q' = σ_w²·E[φ(u₁)²] + σ_b² and
/// q'_ab = σ_w²·E[φ(u₁)φ(u₂)] + σ_b², with u₁, u₂ of length q and
/// correlation c, and c' = q'_ab/q'.
/// [`c_map`] is the same map with q' = q. The gap 1 − c' is
/// σ_w²·½E[(φ(u₁) − φ(u₂))²]/q', whose integrand is small where u₁ ≈ u₂,
/// so a gap of 1e-12 keeps its digits; for ReLU the arc-cosine kernel's
/// closed form, with θ = arccos c taken from the gap.
pub fn signal_step(act: Act, sw: f64, sb: f64, s: Signal) -> Signal {
    let (q, gap) = (s.q, s.gap.clamp(0.0, 2.0));
    let q_next = q_map(act, sw, sb, q);
    let half_sq = match act {
        Act::Relu => {
            // E[φ²] − E[φφ] = q/(2π)·(π(1−c) + θc − sin θ).
            let theta = 2.0 * (gap / 2.0).sqrt().asin();
            let sin = (gap * (2.0 - gap)).sqrt();
            q / (2.0 * std::f64::consts::PI)
                * (std::f64::consts::PI * gap + (theta - sin) - theta * gap)
        }
        _ => {
            let (sq, along, across) = (q.sqrt(), 1.0 - gap, (gap * (2.0 - gap)).sqrt());
            0.5 * coarse(|z1| {
                coarse(|z2| {
                    let d = act.phi(sq * z1) - act.phi(sq * (along * z1 + across * z2));
                    d * d
                })
            })
        }
    };
    let gap_next = if q_next > 0.0 {
        (sw * half_sq / q_next).clamp(0.0, 2.0)
    } else {
        f64::NAN
    };
    Signal {
        q: q_next,
        c: 1.0 - gap_next,
        gap: gap_next,
    }
}

/// The signal at each of `layers + 1` layers of a plain net, from `first`
/// (the first layer's pre-activation) through `layers` applications of
/// [`signal_step`] with the hidden layers' σ_w² (`sw`) and σ_b² (`sb`).
pub fn signal_profile(act: Act, sw: f64, sb: f64, first: Signal, layers: usize) -> Vec<Signal> {
    let mut out = Vec::with_capacity(layers + 1);
    out.push(first);
    for _ in 0..layers {
        let next = signal_step(act, sw, sb, *out.last().unwrap_or(&first));
        out.push(next);
    }
    out
}

/// The fixed points and depth scales of a plain net with nonlinearity
/// `act`, weights of variance σ_w²/fan_in (`sw`) and biases of variance
/// σ_b² (`sb`). `None` where lengths have no finite fixed point (q* is ∞
/// or 0 with σ_b² = 0, where correlations are undefined).
pub fn criticality(act: Act, sw: f64, sb: f64) -> Option<Criticality> {
    let q = q_star(act, sw, sb);
    if !q.is_finite() || q < 1e-12 {
        return None;
    }
    let chi_1 = sw * gauss(q, |h| act.dphi(h).powi(2));
    // In the ordered phase c = 1 is the stable fixed point. In the chaotic
    // phase c' − c is σ_b²/q* > 0 at c = 0 and below 0 just under 1 (the
    // slope there is above 1): bisect for the root between, since
    // iterating the map converges as slowly as χ_c is close to 1.
    let c_star = if chi_1 <= 1.0 {
        1.0
    } else {
        let gap = |c: f64| c_map(act, sw, sb, q, c) - c;
        let (mut lo, mut hi) = (0.0, 1.0 - 1e-9);
        if gap(hi) >= 0.0 {
            hi = 1.0;
        } else {
            for _ in 0..50 {
                let mid = 0.5 * (lo + hi);
                if gap(mid) > 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
        0.5 * (lo + hi)
    };
    let chi_c = if c_star >= 1.0 {
        chi_1
    } else {
        sw * dphi_dphi(act, q, c_star)
    };
    let xi_c = depth_scale(chi_c);
    let xi_q = depth_scale(chi_1 + sw * gauss(q, |h| act.d2phi(h) * act.phi(h)));
    Some(Criticality {
        q_star: q,
        c_star,
        chi_1,
        chi_c,
        xi_c,
        xi_q,
    })
}

/// χ₁ = σ_w²·E[φ'(√q*·z)²] at q* of (σ_w², σ_b²). Where lengths grow
/// without bound (ReLU above σ_w² = 2) q* is taken as [`Q_MAX`]: ReLU's
/// E[φ'²] = ½ does not depend on q, and the bounded nonlinearities never
/// get there.
fn chi_1(act: Act, sw: f64, sb: f64) -> f64 {
    let q = q_star(act, sw, sb);
    let q = if q.is_finite() { q } else { Q_MAX };
    sw * gauss(q, |h| act.dphi(h).powi(2))
}

/// The σ_w² at which χ₁ = 1 for biases of variance `sb` (σ_b²): the
/// order-to-chaos edge, where ξ_c diverges and Schoenholz et al. 2017 find
/// the deepest trainable nets. Found by bisection between a σ_w² in order
/// (χ₁ < 1) and one in chaos (χ₁ > 1), searched from σ_w² = 1 by halving
/// and doubling; `None` where no such pair lies within [2⁻²⁰, 2²⁰] (a
/// sigmoid net with large σ_b², say) or `sb` is negative or not finite.
pub fn critical_weight_variance(act: Act, sb: f64) -> Option<f64> {
    if !sb.is_finite() || sb < 0.0 {
        return None;
    }
    let mut lo = 1.0;
    while chi_1(act, lo, sb) >= 1.0 {
        lo /= 2.0;
        if lo < 1e-6 {
            return None;
        }
    }
    let mut hi = 1.0;
    while chi_1(act, hi, sb) <= 1.0 {
        hi *= 2.0;
        if hi > 1e6 {
            return None;
        }
    }
    // χ₁ rises with σ_w² across the edge. Each evaluation iterates the
    // length map to its fixed point, which is slow near σ_b² = 0, so the
    // bracket is halved to 1e-9 of σ_w² (about 30 halvings), far below
    // what a sweep's grid resolves, rather than to f64's resolution.
    while hi - lo > 1e-9 * hi {
        let mid = 0.5 * (lo + hi);
        if chi_1(act, mid, sb) < 1.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// −1/ln χ: ∞ at χ = 1 (and for χ > 1, where nothing converges).
fn depth_scale(chi: f64) -> f64 {
    if chi >= 1.0 {
        f64::INFINITY
    } else {
        -1.0 / chi.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    /// The two-input quadrature against what it must give: at c = 1 the
    /// correlation map is the length map over q (so 1 at q*), at c = 0 an
    /// odd φ gives E[φ(u₁)]E[φ(u₂)] = 0 (so σ_b²/q*), and ReLU's closed
    /// form gives 1 at c = 1 with σ_b² = 0.
    #[test]
    fn the_correlation_map_is_exact_where_it_is_known() {
        for (sw, sb) in [(1.5, 0.05), (3.0, 0.3), (0.8, 0.1)] {
            let q = q_star(Act::Tanh, sw, sb);
            assert!(close(c_map(Act::Tanh, sw, sb, q, 1.0), 1.0, 1e-9), "{sw}");
            assert!(
                close(c_map(Act::Tanh, sw, sb, q, 0.0), sb / q, 1e-9),
                "{sw}"
            );
            // The quadrature's own E[φ'²] at c = 1 equals the 1D one.
            let one = pair(q, 1.0, |a, b| Act::Tanh.dphi(a) * Act::Tanh.dphi(b));
            let d1 = gauss(q, |h| Act::Tanh.dphi(h).powi(2));
            assert!(close(one, d1, 1e-9), "{one} {d1}");
        }
        assert!(close(c_map(Act::Relu, 2.0, 0.0, 1.0, 1.0), 1.0, 1e-12));
        assert!(close(dphi_dphi(Act::Relu, 1.0, 1.0), 0.5, 1e-12));
    }

    /// ReLU: q' = σ_w²/2·q + σ_b², so q* = σ_b²/(1 − σ_w²/2), χ₁ = σ_w²/2
    /// (He et al. 2015's σ_w² = 2 is the edge), and ξ_q = −1/ln(σ_w²/2).
    #[test]
    fn relu_has_its_closed_forms() {
        let c = criticality(Act::Relu, 1.5, 0.1).unwrap();
        assert!(close(c.q_star, 0.1 / (1.0 - 0.75), 1e-10), "{c:?}");
        assert!(close(c.chi_1, 0.75, 1e-10), "{c:?}");
        assert_eq!(c.c_star, 1.0);
        assert!(close(c.xi_c, -1.0 / 0.75f64.ln(), 1e-10), "{c:?}");
        assert!(close(c.xi_q, -1.0 / 0.75f64.ln(), 1e-10), "{c:?}");
        assert!(
            criticality(Act::Relu, 2.5, 0.1).is_none(),
            "lengths explode"
        );
    }

    /// The edge χ₁ = 1 where it is known in closed form: tanh with σ_b² = 0
    /// at σ_w² = 1 (φ'(0) = 1 and q* → 0 there; issue 36: "for tanh with
    /// σ_w² = 1 and σ_b² = 0, χ_c = 1"), and ReLU at σ_w² = 2 for any σ_b²
    /// (χ₁ = σ_w²/2, He et al. 2015). For tanh with σ_b² = 0.05 it is
    /// Poole et al. 2016's edge between 1 and 2 (1.76 in issue 36's pilot),
    /// and it moves to larger σ_w² as σ_b² grows (their Fig. 1's phase
    /// boundary).
    #[test]
    fn the_critical_weight_variance_is_where_it_is_known() {
        let tanh0 = critical_weight_variance(Act::Tanh, 0.0).unwrap();
        assert!((tanh0 - 1.0).abs() < 1e-2, "{tanh0}");
        for sb in [0.0, 0.1, 1.0] {
            let relu = critical_weight_variance(Act::Relu, sb).unwrap();
            assert!(close(relu, 2.0, 1e-9), "{sb}: {relu}");
        }
        let edge = critical_weight_variance(Act::Tanh, 0.05).unwrap();
        assert!((1.7..1.82).contains(&edge), "{edge}");
        let c = criticality(Act::Tanh, edge, 0.05).unwrap();
        assert!((c.chi_1 - 1.0).abs() < 1e-6, "{c:?}");
        let wider = critical_weight_variance(Act::Tanh, 0.3).unwrap();
        assert!(wider > edge, "{wider} {edge}");
        assert_eq!(critical_weight_variance(Act::Tanh, -1.0), None);
        assert_eq!(critical_weight_variance(Act::Tanh, f64::NAN), None);
    }

    /// Cho & Saul 2009's arc-cosine kernel of degree 1, which is ReLU's
    /// correlation map at σ_w² = 2, σ_b² = 0 (q* = q): c' = (√(1−c²) +
    /// (π − arccos c)·c)/π, so c' = 1/π at c = 0 and (√3/2 + π/3)/π at
    /// c = ½; c = −1 maps to 0. [`signal_step`] gives the same c' and
    /// q' = q, and its gap keeps its digits where 1 − c' would not: from
    /// a gap of 1e-12 ReLU's next gap is 1e-12 − (2√2/(3π))·1e-18 (the
    /// series of π(1−c) + θc − sin θ), not 0 or noise.
    #[test]
    fn relu_correlation_map_is_the_arc_cosine_kernel() {
        let pi = std::f64::consts::PI;
        let kernel = |c: f64| ((1.0 - c * c).sqrt() + (pi - c.acos()) * c) / pi;
        assert!(close(c_map(Act::Relu, 2.0, 0.0, 0.7, 0.0), 1.0 / pi, 1e-14));
        for c in [-1.0, -0.5, 0.0, 0.5, 0.9] {
            assert!(
                close(c_map(Act::Relu, 2.0, 0.0, 1.3, c), kernel(c), 1e-14),
                "{c}"
            );
            let s = signal_step(
                Act::Relu,
                2.0,
                0.0,
                Signal {
                    q: 1.3,
                    c,
                    gap: 1.0 - c,
                },
            );
            assert!(close(s.q, 1.3, 1e-12), "{s:?}");
            assert!(close(s.c, kernel(c), 1e-12), "{c} {s:?}");
        }
        assert!(close(
            kernel(0.5),
            (3f64.sqrt() / 2.0 + pi / 3.0) / pi,
            1e-15
        ));
        assert!(close(kernel(-1.0), 0.0, 1e-15));
        let tiny = signal_step(
            Act::Relu,
            2.0,
            0.0,
            Signal {
                q: 1.0,
                c: 1.0,
                gap: 1e-12,
            },
        );
        let want = 1e-12 - 2.0 * 2f64.sqrt() / (3.0 * pi) * 1e-18;
        // The d^(3/2) term to 1% (θ − sin θ loses ε·θ ≈ 3e-22 of it).
        assert!((tiny.gap - want).abs() < 1e-2 * 1e-18, "{tiny:?}");
    }

    /// Tanh at σ_w² = 1, σ_b² = 0 is the edge: tanh'(0) = 1, so χ₁ =
    /// E[tanh'(h)²] → 1 as q → 0, and q* is 0 (tanh² < h²), reached only
    /// as 1/l: q_star's 10,000 iterations leave q near 5e-5, where χ₁ is
    /// above 0.999 and ξ_c in the thousands (it diverges with the depth).
    /// Near c = 1 the gap shrinks by the map's slope at c = 1,
    /// σ_w²·E[φ'²]·q/q' (χ₁ at a fixed point), which the gap's form keeps
    /// at a gap of 1e-9.
    #[test]
    fn tanh_at_unit_weight_variance_has_chi_one() {
        let chi = |q: f64| gauss(q, |h| Act::Tanh.dphi(h).powi(2));
        assert!(close(chi(1e-8), 1.0, 1e-7), "{}", chi(1e-8));
        assert!(chi(1e-4) < chi(1e-6) && chi(1e-6) < 1.0);
        let c = criticality(Act::Tanh, 1.0, 0.0).unwrap();
        assert!(
            c.q_star < 1e-4 && c.chi_1 > 0.999 && c.xi_c > 1000.0,
            "{c:?}"
        );
        for (sw, sb) in [(1.0, 0.0), (1.5, 0.05)] {
            let q = q_star(Act::Tanh, sw, sb).max(0.3);
            let s = signal_step(
                Act::Tanh,
                sw,
                sb,
                Signal {
                    q,
                    c: 1.0,
                    gap: 1e-9,
                },
            );
            let slope = sw * chi(q) * q / s.q;
            assert!(close(s.gap / 1e-9, slope, 1e-6), "{s:?} {slope}");
            // Away from 1 the gap is 1 − the plain map's c' at q' (the
            // same integrals, taken two ways).
            let s = signal_step(
                Act::Tanh,
                sw,
                sb,
                Signal {
                    q,
                    c: 0.3,
                    gap: 0.7,
                },
            );
            let qab = sw * phi_phi(Act::Tanh, q, 0.3) + sb;
            assert!(close(s.c, qab / s.q, 1e-9), "{s:?}");
        }
    }

    /// Schoenholz et al. 2017 (Fig. 1, tanh, σ_b² = 0.05): order below the
    /// edge χ₁ = 1 (c* = 1), chaos above it (c* < 1), and ξ_c growing
    /// without bound toward the edge from both sides.
    #[test]
    fn tanh_has_an_order_to_chaos_edge_where_xi_c_diverges() {
        let sb = 0.05;
        let chi = |sw: f64| {
            let q = q_star(Act::Tanh, sw, sb);
            sw * gauss(q, |h| Act::Tanh.dphi(h).powi(2))
        };
        let (mut lo, mut hi) = (0.5, 4.0);
        assert!(chi(lo) < 1.0 && chi(hi) > 1.0);
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if chi(mid) < 1.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let edge = 0.5 * (lo + hi);
        // Poole et al. 2016's phase diagram puts the σ_b² = 0.05 edge
        // between σ_w² = 1 and 2.
        assert!((1.0..2.0).contains(&edge), "{edge}");
        let at = |sw: f64| criticality(Act::Tanh, sw, sb).unwrap();
        for (near, far) in [(edge - 0.01, edge - 0.3), (edge + 0.01, edge + 0.3)] {
            assert!(
                at(near).xi_c > 5.0 * at(far).xi_c,
                "{:?} {:?}",
                at(near),
                at(far)
            );
        }
        assert_eq!(at(edge - 0.3).c_star, 1.0);
        assert!(at(edge + 0.3).c_star < 0.999, "{:?}", at(edge + 0.3));
        assert!(at(edge + 0.3).chi_c < 1.0, "c* attracts");
    }
}
