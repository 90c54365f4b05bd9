//! The report's voice: the rules that turn measured numbers into claims,
//! in one place, each with a unit test on constructed readings.
//!
//! - **Mechanism** ([`mechanism`]): what the probe shows about a net. A
//!   net without normalization whose dL/dh falls more than
//!   [`VANISH_SPREAD`] decades toward the input has a *vanishing
//!   gradient*, with *forward collapse* where the forward signal (√q, the
//!   spread of each unit's pre-activation across the batch) also falls
//!   more than that toward the output, or where the inputs become
//!   indistinguishable: c, the correlation between two inputs'
//!   pre-activations, within [`CORRELATED_GAP`] of 1 at some trunk layer
//!   at step 0 ([`correlated_layer`]); one whose dL/dh grows that much
//!   has an *exploding* gradient. A BatchNorm net is read on scale-free
//!   measures, since its dL/dh scales as 1/‖W‖: its gradient *vanishes*
//!   when ‖∇W‖·‖W‖ does, and it is *exploding then frozen* when the
//!   effective learning rate lr·‖∇W‖/‖W‖ is far larger at the bottom at
//!   step 0 and far smaller at the end (Philipp et al. 2018).
//! - **Degradation** ([`failure`]): He et al. (2016) name degradation the
//!   failure of deeper plain nets to fit their training set that is *not*
//!   caused by vanishing gradients. It is named only where the plain
//!   error rises with depth, no failing depth shows a mechanism, and no
//!   shortcut twin is worse than plain beyond the tolerance anywhere.
//! - **Twins** ([`paired`], [`twin_summary`]): every shortcut twin is
//!   compared with plain at every depth, paired by seed, with a sign rule:
//!   better (or worse) only when every seed's pair differs by more than
//!   [`RISE_TOL`] the same way; otherwise tied. A twin worse anywhere is
//!   "mixed". One seed says so: it has no spread.
//! - **Ties** ([`ranked_pair`]): two readings within the tolerance tie;
//!   the report does not rank them.
//! - **Axes** ([`depth_axis`]): a trend says what it was fitted against.

use crate::analysis::{RISE_TOL, VANISH_SPREAD};

/// What one net (a variant at a depth, readings averaged over seeds) shows
/// of its gradient and forward signal. Spreads are in decades, oriented
/// so that positive is bad: dL/dh and the effective lr shrinking toward
/// the input, √q shrinking toward the output.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    /// The net normalizes with BatchNorm: raw dL/dh is then not read.
    pub batchnorm: bool,
    /// dL/dh spread over the trunk, at the start (median of the first
    /// five probe steps) and at the end (of the last five).
    pub backward: [Option<f64>; 2],
    /// √q's fall over the trunk, at the start and at the end.
    pub forward: [Option<f64>; 2],
    /// BatchNorm nets: spread of ‖∇W‖·‖W‖ at the end.
    pub scale_free_end: Option<f64>,
    /// The first trunk layer (1 at the input side) whose c at step 0 is
    /// within [`CORRELATED_GAP`] of 1 ([`correlated_layer`]); `None` where
    /// none is, or c was not read.
    pub correlated_at: Option<usize>,
    /// BatchNorm nets: spread of the effective learning rate
    /// lr·‖∇W‖/‖W‖ at step 0 and at the end.
    pub effective_lr: [Option<f64>; 2],
}

/// The mechanism the data show for one net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// dL/dh (or, with BatchNorm, ‖∇W‖·‖W‖) falls more than
    /// [`VANISH_SPREAD`] decades toward the input.
    Vanishing {
        /// The forward signal also falls more than that toward the output.
        forward_collapse: bool,
    },
    /// The forward signal collapses (√q falls more than [`VANISH_SPREAD`]
    /// decades, or c comes within [`CORRELATED_GAP`] of 1) while the
    /// gradient does not vanish.
    ForwardCollapse,
    /// dL/dh grows more than [`VANISH_SPREAD`] decades toward the input.
    Exploding,
    /// BatchNorm: the bottom's effective lr is more than
    /// [`VANISH_SPREAD`] decades above the top's at step 0 and more than
    /// that below it at the end.
    ExplodingThenFrozen,
    /// BatchNorm: the bottom's effective lr ends more than
    /// [`VANISH_SPREAD`] decades below the top's, without the blow-up at
    /// step 0.
    Frozen,
    /// None of these: the gradient and the forward signal stay within
    /// [`VANISH_SPREAD`] decades over the trunk.
    Healthy,
    /// Not enough readings to say (a BatchNorm net without its per-run
    /// gradients.csv, or a run without a trunk).
    Unknown,
}

impl Mechanism {
    /// The mechanism in words, for a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Mechanism::Vanishing {
                forward_collapse: true,
            } => "vanishing gradient with forward collapse",
            Mechanism::Vanishing { .. } => "vanishing gradient",
            Mechanism::ForwardCollapse => "forward collapse",
            Mechanism::Exploding => "exploding gradient",
            Mechanism::ExplodingThenFrozen => "exploding then frozen",
            Mechanism::Frozen => "frozen bottom layers",
            Mechanism::Healthy => "healthy",
            Mechanism::Unknown => "not measured",
        }
    }

    /// Whether this mechanism explains a failure to fit (every one but
    /// healthy and unknown).
    pub fn explains_failure(self) -> bool {
        !matches!(self, Mechanism::Healthy | Mechanism::Unknown)
    }
}

/// How close to 1 the correlation c between two inputs' pre-activations
/// comes before the inputs count as indistinguishable: at 1 − 1e-3 two
/// unit vectors are 0.045 apart, and in the ordered phase the gap only
/// shrinks from there, as e^(−l/ξ_c) (Schoenholz et al. 2017).
pub const CORRELATED_GAP: f64 = 1e-3;

/// The first layer (1 at the input side) of `c` (each trunk layer's c at
/// step 0, input side first; `None` where not read) within
/// [`CORRELATED_GAP`] of 1: where forward collapse begins.
pub fn correlated_layer(c: &[Option<f64>]) -> Option<usize> {
    c.iter()
        .position(|c| c.is_some_and(|c| 1.0 - c <= CORRELATED_GAP))
        .map(|i| i + 1)
}

fn beyond(v: Option<f64>) -> bool {
    v.is_some_and(|v| v > VANISH_SPREAD)
}

fn below(v: Option<f64>) -> bool {
    v.is_some_and(|v| v < -VANISH_SPREAD)
}

/// The mechanism of one net (see the module's text). A spread that is
/// infinite (a trunk point exactly 0 in float32) counts as beyond.
pub fn mechanism(s: &Signals) -> Mechanism {
    if s.batchnorm {
        if beyond(s.scale_free_end) {
            return Mechanism::Vanishing {
                forward_collapse: false,
            };
        }
        let [at0, end] = s.effective_lr;
        if beyond(end) {
            return if below(at0) {
                Mechanism::ExplodingThenFrozen
            } else {
                Mechanism::Frozen
            };
        }
        return if s.scale_free_end.is_some() || end.is_some() {
            Mechanism::Healthy
        } else {
            Mechanism::Unknown
        };
    }
    let collapse = s.forward.iter().any(|f| beyond(*f)) || s.correlated_at.is_some();
    if s.backward.iter().any(|b| beyond(*b)) {
        return Mechanism::Vanishing {
            forward_collapse: collapse,
        };
    }
    if s.backward.iter().any(|b| below(*b)) {
        return Mechanism::Exploding;
    }
    if collapse {
        return Mechanism::ForwardCollapse;
    }
    if s.backward.iter().all(Option::is_none) {
        return Mechanism::Unknown;
    }
    Mechanism::Healthy
}

/// How a shortcut twin compares with plain at one depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Better,
    Worse,
    Tie,
}

/// A twin against plain at one depth, paired by seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    pub depth: u32,
    /// Mean over the pairs of twin − plain error: negative when the twin
    /// fits better.
    pub mean_diff: f64,
    /// Seeds with a completed run of both.
    pub pairs: usize,
    pub outcome: Outcome,
}

/// The sign rule on `(plain, twin)` errors of the same seeds: better
/// (worse) when every pair's twin error is more than [`RISE_TOL`] below
/// (above) plain's, else a tie. `None` without a pair.
pub fn paired(depth: u32, pairs: &[(f64, f64)]) -> Option<Paired> {
    if pairs.is_empty() {
        return None;
    }
    let diffs: Vec<f64> = pairs.iter().map(|(p, t)| t - p).collect();
    let outcome = if diffs.iter().all(|d| *d < -RISE_TOL) {
        Outcome::Better
    } else if diffs.iter().all(|d| *d > RISE_TOL) {
        Outcome::Worse
    } else {
        Outcome::Tie
    };
    Some(Paired {
        depth,
        mean_diff: diffs.iter().sum::<f64>() / diffs.len() as f64,
        pairs: pairs.len(),
        outcome,
    })
}

/// The test [`paired`] applies, in words for the report.
pub const PAIRED_TEST: &str = "paired by seed: a twin is better (or worse) than plain at a depth \
    only when it is so by more than 1 point at every seed that both completed; otherwise they tie";

/// The overall reading of one twin over the depths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwinReading {
    /// Better at every depth.
    Better,
    /// Better at some depths, tied at the others.
    BetterOrTied,
    /// Worse beyond the tolerance somewhere, not everywhere: the shortcut
    /// does not simply help.
    Mixed,
    /// Worse beyond the tolerance at every depth.
    Worse,
    /// Tied everywhere.
    Tied,
}

/// The twin's reading over its paired depths (`None` without one).
pub fn twin_reading(depths: &[Paired]) -> Option<TwinReading> {
    if depths.is_empty() {
        return None;
    }
    let count = |o: Outcome| depths.iter().filter(|p| p.outcome == o).count();
    Some(if count(Outcome::Worse) == depths.len() {
        TwinReading::Worse
    } else if count(Outcome::Worse) > 0 {
        TwinReading::Mixed
    } else if count(Outcome::Better) == depths.len() {
        TwinReading::Better
    } else if count(Outcome::Better) > 0 {
        TwinReading::BetterOrTied
    } else {
        TwinReading::Tied
    })
}

/// "residual against plain (…): better at depth 8, 16; tied at depth 4."
/// One seed says that it has no spread.
pub fn twin_summary(twin: &str, depths: &[Paired]) -> Option<String> {
    let reading = twin_reading(depths)?;
    let list = |o: Outcome| {
        let d: Vec<String> = depths
            .iter()
            .filter(|p| p.outcome == o)
            .map(|p| format!("{} ({:+.2} points)", p.depth, 100.0 * p.mean_diff))
            .collect();
        (!d.is_empty()).then(|| d.join(", "))
    };
    let mut parts = Vec::new();
    for (o, word) in [
        (Outcome::Better, "better"),
        (Outcome::Worse, "worse"),
        (Outcome::Tie, "tied"),
    ] {
        if let Some(d) = list(o) {
            parts.push(format!("{word} at depth {d}"));
        }
    }
    let head = match reading {
        TwinReading::Mixed => format!("**{twin} against plain is mixed**"),
        TwinReading::Worse => format!("**{twin} is worse than plain at every depth**"),
        TwinReading::Better => format!("**{twin} is better than plain at every depth**"),
        TwinReading::BetterOrTied => format!("**{twin} against plain**"),
        TwinReading::Tied => format!("**{twin} ties with plain at every depth**"),
    };
    let one_seed = if depths.iter().all(|p| p.pairs == 1) {
        " One seed: no spread, so a difference may be seed noise."
    } else {
        ""
    };
    Some(format!(
        "{head} (twin minus plain, paired by seed): {}.{one_seed}",
        parts.join("; ")
    ))
}

/// What the plain nets' failure to fit is, from the plain error trend and
/// the mechanism at each plain depth.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Plain error does not rise with depth: no degradation, whatever
    /// mechanisms the plain nets show (listed: a net that fails at every
    /// depth does not degrade with depth).
    NoRise(Vec<(u32, Mechanism)>),
    /// Plain error rises, and the depths where it is highest show a
    /// mechanism: name it, not degradation.
    Explained(Vec<(u32, Mechanism)>),
    /// Plain error rises with no mechanism in sight, but a twin is worse
    /// somewhere: no verdict on degradation.
    Mixed,
    /// Plain error rises, every plain depth is healthy, and no twin is
    /// worse: He et al.'s degradation problem.
    Degradation,
    /// Plain error rises and no depth's mechanism could be read.
    Unmeasured,
}

/// The failure verdict. `rises`: the plain error rises with depth;
/// `mechanisms`: each plain depth's mechanism, ascending depth; `mixed`:
/// some twin is worse than plain beyond the tolerance somewhere.
pub fn failure(rises: bool, mechanisms: &[(u32, Mechanism)], mixed: bool) -> Failure {
    let shown: Vec<(u32, Mechanism)> = mechanisms
        .iter()
        .copied()
        .filter(|(_, m)| m.explains_failure())
        .collect();
    if !rises {
        return Failure::NoRise(shown);
    }
    if !shown.is_empty() {
        return Failure::Explained(shown);
    }
    if mixed {
        return Failure::Mixed;
    }
    // Degradation is a claim about every depth: one not measured leaves
    // it open.
    if mechanisms.iter().any(|(_, m)| *m == Mechanism::Unknown) {
        return Failure::Unmeasured;
    }
    Failure::Degradation
}

/// A labelled reading: `("tanh", -0.04)`.
pub type Labelled<'a> = (&'a str, f64);

/// Which of two labelled readings is lower in magnitude, or a tie when
/// they are within `tolerance`: `Some((lower, higher))`, `None` for a tie.
pub fn ranked_pair<'a>(
    a: Labelled<'a>,
    b: Labelled<'a>,
    tolerance: f64,
) -> Option<(Labelled<'a>, Labelled<'a>)> {
    if (a.1.abs() - b.1.abs()).abs() <= tolerance {
        return None;
    }
    Some(if a.1.abs() < b.1.abs() {
        (a, b)
    } else {
        (b, a)
    })
}

/// How the depths of a sweep are spaced, for naming a trend's axis: the
/// least-squares lines are fitted against each depth's position in the
/// sweep.
pub fn depth_axis(depths: &[u32]) -> String {
    let list: Vec<String> = depths.iter().map(u32::to_string).collect();
    let list = list.join(", ");
    if depths.len() < 3 {
        return format!("depths {list}");
    }
    let ratio = depths[1] as f64 / depths[0] as f64;
    let step = depths[1] as i64 - depths[0] as i64;
    let geometric = depths
        .windows(2)
        .all(|w| (w[1] as f64 / w[0] as f64 - ratio).abs() < 1e-9);
    let even = depths.windows(2).all(|w| w[1] as i64 - w[0] as i64 == step);
    if even {
        format!("depth ({list}, evenly spaced)")
    } else if geometric {
        format!(
            "log{} depth (depths {list}, one step apart each in the sweep)",
            if (ratio - 2.0).abs() < 1e-9 {
                "2".to_string()
            } else {
                format!(" base {ratio}")
            }
        )
    } else {
        format!("the depth's position in the sweep ({list}, one step each)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(backward: f64, forward: f64) -> Signals {
        Signals {
            backward: [Some(backward), Some(backward)],
            forward: [Some(forward), Some(forward)],
            ..Signals::default()
        }
    }

    /// The quickstart's plain sigmoid nets (issue 30): dL/dh 24.7 decades
    /// down over depth 32, √q about as much: vanishing with forward
    /// collapse, never degradation.
    #[test]
    fn vanishing_with_collapse_is_not_degradation() {
        let m = mechanism(&plain(24.7, 24.0));
        assert_eq!(
            m,
            Mechanism::Vanishing {
                forward_collapse: true
            }
        );
        let f = failure(true, &[(8, m), (16, m)], false);
        assert_eq!(f, Failure::Explained(vec![(8, m), (16, m)]));
        // An exactly-0 first point (infinite spread) vanishes too.
        assert!(matches!(
            mechanism(&plain(f64::INFINITY, 0.1)),
            Mechanism::Vanishing {
                forward_collapse: false
            }
        ));
    }

    /// Issue 36: inputs indistinguishable (c within 1e-3 of 1 at some
    /// trunk layer) is forward collapse even where √q stays within the
    /// bar, named apart from vanishing: alone it is `ForwardCollapse`,
    /// with a vanishing dL/dh the vanishing gradient with collapse. A c of
    /// 0.998 is not within the gap; unread layers are passed over.
    #[test]
    fn correlated_inputs_are_forward_collapse() {
        let c = [Some(0.2), None, Some(0.998), Some(0.9995), Some(1.0)];
        assert_eq!(correlated_layer(&c), Some(4));
        assert_eq!(correlated_layer(&c[..3]), None);
        assert_eq!(correlated_layer(&[]), None);
        let collapsed = |backward| Signals {
            correlated_at: Some(4),
            ..plain(backward, 0.5)
        };
        assert_eq!(mechanism(&plain(0.3, 0.5)), Mechanism::Healthy);
        assert_eq!(mechanism(&collapsed(0.3)), Mechanism::ForwardCollapse);
        assert_eq!(
            mechanism(&collapsed(5.0)),
            Mechanism::Vanishing {
                forward_collapse: true
            }
        );
        assert_eq!(
            mechanism(&plain(5.0, 0.5)),
            Mechanism::Vanishing {
                forward_collapse: false
            }
        );
        assert!(Mechanism::ForwardCollapse.explains_failure());
    }

    /// Degradation only where no mechanism shows and no twin is worse.
    #[test]
    fn degradation_needs_healthy_gradients_and_no_worse_twin() {
        let healthy = mechanism(&plain(0.3, -0.2));
        assert_eq!(healthy, Mechanism::Healthy);
        assert_eq!(
            failure(true, &[(20, healthy), (56, healthy)], false),
            Failure::Degradation
        );
        assert_eq!(
            failure(true, &[(20, healthy), (56, healthy)], true),
            Failure::Mixed
        );
        assert_eq!(
            failure(false, &[(20, healthy)], false),
            Failure::NoRise(vec![])
        );
        // The quickstart's plain nets sit at chance from depth 8 on: no
        // rise, but the vanishing is still named.
        let v = mechanism(&plain(11.0, 10.0));
        assert_eq!(
            failure(false, &[(8, v), (16, v)], false),
            Failure::NoRise(vec![(8, v), (16, v)])
        );
        assert_eq!(
            failure(true, &[(20, Mechanism::Unknown)], false),
            Failure::Unmeasured
        );
        // One depth without readings (a BatchNorm net whose gradients.csv
        // is not kept) leaves degradation open.
        assert_eq!(
            failure(true, &[(20, healthy), (56, Mechanism::Unknown)], false),
            Failure::Unmeasured
        );
        assert_eq!(mechanism(&plain(-3.0, 0.0)), Mechanism::Exploding);
        assert_eq!(mechanism(&plain(0.5, 2.5)), Mechanism::ForwardCollapse);
    }

    /// fashion-mlp's plain-64 (issue 30, Philipp et al. 2018): the first
    /// hidden layer's relative gradient 5 decades above the last at step
    /// 0, 4.4 below at the end, scale-free spread healthy: exploding then
    /// frozen. Without the step-0 blow-up, frozen; raw dL/dh is not read
    /// in BatchNorm nets.
    #[test]
    fn batchnorm_nets_are_read_on_scale_free_and_effective_lr() {
        let bn = |sf: f64, at0: f64, end: f64| Signals {
            batchnorm: true,
            backward: [Some(9.0), Some(9.0)],
            scale_free_end: Some(sf),
            effective_lr: [Some(at0), Some(end)],
            ..Signals::default()
        };
        assert_eq!(
            mechanism(&bn(0.5, -5.1, 4.4)),
            Mechanism::ExplodingThenFrozen
        );
        assert_eq!(mechanism(&bn(0.5, 0.0, 4.4)), Mechanism::Frozen);
        assert_eq!(mechanism(&bn(0.5, -1.0, 1.0)), Mechanism::Healthy);
        assert_eq!(
            mechanism(&bn(3.0, -5.1, 4.4)),
            Mechanism::Vanishing {
                forward_collapse: false
            }
        );
        let unread = Signals {
            batchnorm: true,
            backward: [Some(9.0), Some(9.0)],
            ..Signals::default()
        };
        assert_eq!(mechanism(&unread), Mechanism::Unknown);
    }

    /// Inception (issue 30): a residual twin 6.99 points worse at 8
    /// modules makes the comparison mixed, whatever it does elsewhere.
    #[test]
    fn a_twin_worse_anywhere_is_mixed() {
        let better = paired(2, &[(0.30, 0.10), (0.28, 0.12)]).unwrap();
        let worse = paired(8, &[(0.20, 0.27), (0.21, 0.28)]).unwrap();
        assert_eq!(better.outcome, Outcome::Better);
        assert_eq!(worse.outcome, Outcome::Worse);
        let depths = [better, worse];
        assert_eq!(twin_reading(&depths), Some(TwinReading::Mixed));
        let text = twin_summary("residual", &depths).unwrap();
        assert!(
            text.contains("mixed") && text.contains("worse at depth 8"),
            "{text}"
        );
        assert!(!text.contains("One seed"), "{text}");
        // Worse at every depth is said as such, not as mixed (the
        // redesigned Inception twin at s = 1: worse at 2, 4, 8 and 16).
        let worse_too = paired(2, &[(0.15, 0.19), (0.16, 0.18)]).unwrap();
        let all_worse = [worse_too, paired(8, &[(0.20, 0.27), (0.21, 0.28)]).unwrap()];
        assert_eq!(twin_reading(&all_worse), Some(TwinReading::Worse));
        let text = twin_summary("residual", &all_worse).unwrap();
        assert!(
            text.starts_with("**residual is worse than plain at every depth**"),
            "{text}"
        );
    }

    /// The sign rule: one seed's pair the other way, or inside 1 point,
    /// is a tie; one seed says it has no spread.
    #[test]
    fn the_paired_sign_rule_and_one_seed() {
        let split = paired(16, &[(0.5, 0.1), (0.5, 0.52)]).unwrap();
        assert_eq!(split.outcome, Outcome::Tie);
        let small = paired(16, &[(0.5, 0.495), (0.5, 0.494)]).unwrap();
        assert_eq!(small.outcome, Outcome::Tie);
        assert!(paired(4, &[]).is_none());
        let one = paired(8, &[(0.9, 0.0)]).unwrap();
        assert_eq!(one.outcome, Outcome::Better);
        let text = twin_summary("rezero", &[one]).unwrap();
        assert!(text.contains("better than plain at every depth"), "{text}");
        assert!(text.contains("One seed: no spread"), "{text}");
        assert_eq!(
            twin_reading(&[split.clone(), small.clone()]),
            Some(TwinReading::Tied)
        );
    }

    /// glorot-tanh's sweep (issue 30): -0.04 against -0.04 decades per
    /// layer is a tie, not "most even with one, least with the other".
    #[test]
    fn ties_are_ties() {
        assert_eq!(ranked_pair(("tanh", -0.04), ("relu", -0.04), 0.01), None);
        assert_eq!(
            ranked_pair(("a", 0.5), ("b", -0.1), 0.01),
            Some((("b", -0.1), ("a", 0.5)))
        );
    }

    /// A trend names its axis: power-of-two depths are fitted against log2
    /// depth, He et al.'s 20, 32, 44, 56 against depth.
    #[test]
    fn a_trend_names_its_axis() {
        assert!(depth_axis(&[4, 8, 16, 32, 64]).starts_with("log2 depth"));
        assert!(depth_axis(&[20, 32, 44, 56]).starts_with("depth (20, 32, 44, 56, evenly"));
        assert!(depth_axis(&[2, 3, 7]).starts_with("the depth's position"));
        assert_eq!(depth_axis(&[20, 56]), "depths 20, 56");
    }
}
