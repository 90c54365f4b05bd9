//! Axes: linear or log scale, extent, tick positions and labels, and the
//! plotters coordinate that draws them.
//!
//! Log axes are drawn as linear axes over `log10(value)` with our own decade
//! ticks: plotters' own log coordinate places no tick at all when the data
//! span less than one decade. Values a log axis cannot show (zero, negative,
//! NaN, ±Inf) are dropped before plotters sees them, because plotters can
//! panic on them; an axis with [`Axis::zero_floor`] has exact zeros drawn as
//! markers on its bottom edge instead (see `figure.rs`).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    Linear,
    Log,
}

impl Scale {
    /// Whether a value can be placed on an axis of this scale.
    pub(crate) fn usable(self, v: f64) -> bool {
        v.is_finite() && (self == Scale::Linear || v > 0.0)
    }

    /// Value to drawing coordinate (log axes draw `log10(v)`).
    pub(crate) fn to_plot(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.log10(),
        }
    }
}

/// How an axis chooses its extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bounds {
    /// From the data (whole decades on log axes).
    Data,
    /// From 0 to a rounded bound above the data, at most 1 when the data
    /// are fractions: error rates read best against a zero baseline.
    Fraction,
    /// From 0 (or the lowest value, if negative) to the first tick step at
    /// or above the data plus 5%: magnitudes such as standard deviations,
    /// whose ratios read correctly only against a zero baseline.
    FromZero,
}

#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub label: String,
    pub scale: Scale,
    pub bounds: Bounds,
    /// Tick positions in data units; `None` picks them automatically.
    pub ticks: Option<Vec<f64>>,
    /// Automatic ticks at whole numbers only (steps, layer indices).
    pub integer: bool,
    /// On a log axis, values of exactly 0 (a float32 gradient tensor of zeros)
    /// are drawn as ▼ markers on the bottom edge instead of being dropped
    /// unseen; they do not affect the extent.
    pub zero_floor: bool,
}

impl Axis {
    /// Whether `v` is drawn on this axis' bottom edge rather than at its
    /// place: exactly 0 on a log axis with [`Axis::zero_floor`].
    pub(crate) fn on_floor(&self, v: f64) -> bool {
        self.zero_floor && self.scale == Scale::Log && v == 0.0
    }

    pub(crate) fn new(label: impl Into<String>, scale: Scale) -> Self {
        Axis {
            label: label.into(),
            scale,
            bounds: Bounds::Data,
            ticks: None,
            integer: false,
            zero_floor: false,
        }
    }
}

/// Extent of an axis in drawing coordinates, from the drawable values (and
/// the zeros it draws on its bottom edge, which only keep that edge clear).
pub(crate) fn axis_extent(axis: &Axis, values: &[f64]) -> (f64, f64) {
    let floor_zeros = values.iter().any(|&v| axis.on_floor(v));
    let plotted: Vec<f64> = values
        .iter()
        .copied()
        .filter(|&v| axis.scale.usable(v))
        .map(|v| axis.scale.to_plot(v))
        .collect();
    let min = plotted.iter().copied().fold(f64::INFINITY, f64::min);
    let max = plotted.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if plotted.is_empty() {
        // An empty chart still needs a sane frame for its "no data" note.
        return match (axis.scale, axis.bounds) {
            (Scale::Log, _) => (-1.0, 0.0),
            _ => (0.0, 1.0),
        };
    }
    let (lo, hi) = match (axis.scale, axis.bounds) {
        // Explicit ticks (depths) sit at the data; pad around them.
        (Scale::Log, _) if axis.ticks.is_some() => pad(min, max, 0.06),
        (Scale::Log, _) => {
            // Whole decades, rounded out further to the label step, so that
            // both ends of the axis carry a label: with thinned labels an end
            // between two labels (0.1 over a top label of 10⁻³) makes lines
            // that reach the top look as if they ran off the chart. With
            // zeros on the bottom edge, the edge stays half a decade clear
            // of the lowest value, so that a ▼ never reads as a tiny value.
            let lo = if floor_zeros { min - 0.5 } else { min }.floor();
            let hi = max.ceil();
            let hi = if hi > lo { hi } else { lo + 1.0 };
            let every = log_label_step(lo, hi) as f64;
            ((lo / every).floor() * every, (hi / every).ceil() * every)
        }
        (Scale::Linear, Bounds::Fraction) => {
            let top = if max <= 1.0 {
                nice_ceil(max * 1.1).clamp(0.05, 1.0)
            } else {
                nice_ceil(max * 1.05)
            };
            (min.min(0.0), top)
        }
        (Scale::Linear, Bounds::FromZero) => {
            let lo = min.min(0.0);
            let top = if max > 0.0 { max * 1.05 } else { max };
            if top > lo {
                // Round up to the step that `ticks` will use for the
                // rounded extent, so that the top carries a label.
                let mut hi = top;
                for _ in 0..4 {
                    let step = nice_step(hi - lo, 6.0);
                    let next = (top / step).ceil() * step;
                    if next == hi {
                        break;
                    }
                    hi = next;
                }
                (lo, hi)
            } else {
                (lo, lo + 1.0)
            }
        }
        (Scale::Linear, Bounds::Data) => {
            if axis.ticks.is_some() {
                pad(min, max, 0.06)
            } else if max > min {
                (min, max)
            } else {
                (min - 1.0, max + 1.0)
            }
        }
    };
    // Rounding and padding can overflow near f64::MAX (garbage data such as
    // an error of 1e308); fall back to the raw extent, then to a unit range.
    if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else if max > min && (max - min).is_finite() {
        (min, max)
    } else {
        (0.0, 1.0)
    }
}

fn pad(min: f64, max: f64, frac: f64) -> (f64, f64) {
    if max > min {
        let d = (max - min) * frac;
        (min - d, max + d)
    } else {
        (min - 0.5, max + 0.5)
    }
}

/// Smallest 1, 2 or 5 times a power of ten that is at least `v` (v > 0).
fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v * (1.0 - 1e-12) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// At most this many intervals between labelled decades on a log axis
/// (so at most one more label).
const MAX_LOG_INTERVALS: i64 = 8;

/// Decades between labelled ticks on a log axis over decades `lo..hi`: the
/// smallest round step (1, 2, 3, 5, 10, …) that, with the axis rounded out
/// to multiples of it, needs at most [`MAX_LOG_INTERVALS`] intervals. Both
/// [`axis_extent`] (to round out) and [`ticks`] (to label) use it, so the
/// ends of a log axis always fall on labels.
fn log_label_step(lo: f64, hi: f64) -> i64 {
    // log10 of a positive finite f64 lies in -324..309: i64 is ample.
    let (lo, hi) = (lo.floor() as i64, hi.ceil() as i64);
    let intervals = |k: i64| {
        let top = -(-hi).div_euclid(k);
        let bottom = lo.div_euclid(k);
        top - bottom
    };
    [1i64, 2, 3, 5, 10, 20, 50, 100, 200]
        .into_iter()
        .find(|&k| intervals(k) <= MAX_LOG_INTERVALS)
        .unwrap_or(500)
}

/// Step of about `target` ticks over `span`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = span / target;
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let m = raw / mag;
    let nice = if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ticks {
    pub bold: Vec<f64>,
    pub light: Vec<f64>,
    /// Decimals for linear labels.
    pub decimals: usize,
}

/// Tick positions in drawing coordinates for an axis spanning `lo..hi`.
pub(crate) fn ticks(axis: &Axis, lo: f64, hi: f64) -> Ticks {
    if let Some(explicit) = &axis.ticks {
        let bold = explicit
            .iter()
            .copied()
            .filter(|&v| axis.scale.usable(v))
            .map(|v| axis.scale.to_plot(v))
            .filter(|&v| v >= lo && v <= hi)
            .collect();
        return Ticks {
            bold,
            light: Vec::new(),
            decimals: 0,
        };
    }
    match axis.scale {
        Scale::Linear => {
            let mut step = nice_step(hi - lo, 6.0);
            if axis.integer {
                step = step.max(1.0).round();
            }
            let first = (lo / step).ceil();
            let last = (hi / step + 1e-9).floor();
            if !(last - first).is_finite() || last - first > 100.0 {
                // Only absurd data get here (a span of ±1e300); label the
                // ends rather than loop over billions of ticks.
                return Ticks {
                    bold: vec![lo, hi],
                    light: Vec::new(),
                    decimals: 3,
                };
            }
            let bold = (first as i64..=last as i64)
                .map(|k| k as f64 * step)
                .collect();
            let decimals = if step >= 1.0 {
                0
            } else {
                (-step.log10().floor()) as usize
            };
            Ticks {
                bold,
                light: Vec::new(),
                decimals,
            }
        }
        Scale::Log => {
            let first = lo.ceil() as i64;
            let last = hi.floor() as i64;
            let decades: Vec<i64> = (first..=last).collect();
            // At most ~8 labels, at round exponents (…, 10⁻¹⁰, 10⁻⁵, 1); the
            // skipped decades keep a light grid line.
            let every = log_label_step(lo, hi);
            let bold: Vec<f64> = decades
                .iter()
                .filter(|&&d| d.rem_euclid(every) == 0)
                .map(|&d| d as f64)
                .collect();
            let light: Vec<f64> = if every > 1 {
                decades
                    .iter()
                    .filter(|&&d| d.rem_euclid(every) != 0)
                    .map(|&d| d as f64)
                    .collect()
            } else if decades.len() <= 4 {
                (first - 1..=last)
                    .flat_map(|d| (2..10).map(move |m| d as f64 + f64::from(m).log10()))
                    .filter(|&v| v > lo && v < hi)
                    .collect()
            } else {
                Vec::new()
            };
            Ticks {
                bold,
                light,
                decimals: 0,
            }
        }
    }
}

/// A linear coordinate over `lo..hi` whose ticks are exactly [`Ticks`].
/// plotters' `with_key_points` would do, but over `f64` it loses the mesh's
/// label formatting support, so this small coordinate stands in for it.
#[derive(Debug, Clone)]
pub(crate) struct TickedAxis {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl TickedAxis {
    pub(crate) fn new((lo, hi): (f64, f64), ticks: &Ticks) -> Self {
        TickedAxis {
            lo,
            hi,
            bold: ticks.bold.clone(),
            light: ticks.light.clone(),
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let pixels = f64::from(limit.1 - limit.0);
        let t = (v - self.lo) / span;
        if !t.is_finite() || span <= 0.0 {
            // Degenerate range or value: the middle, never a wild coordinate.
            return limit.0 + (limit.1 - limit.0) / 2;
        }
        // Clamped so a stray value far outside cannot overflow the backend.
        let px = (pixels * t).round().clamp(-1.0e6, 1.0e6);
        limit.0 + px as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// Label of a tick at drawing coordinate `v`.
pub(crate) fn tick_label(scale: Scale, v: f64, decimals: usize) -> String {
    match scale {
        Scale::Linear => {
            let s = format!("{v:.decimals$}");
            // "-0" or "-0.0" from rounding reads as a bug.
            if s.trim_start_matches('-')
                .chars()
                .all(|c| c == '0' || c == '.')
            {
                s.trim_start_matches('-').to_owned()
            } else {
                s
            }
        }
        Scale::Log => {
            let e = v.round();
            if (v - e).abs() < 1e-9 {
                let e = e as i32;
                if (-2..=3).contains(&e) {
                    let d = usize::try_from(-e).unwrap_or(0);
                    format!("{:.d$}", 10f64.powi(e))
                } else {
                    format!("10{}", superscript(e))
                }
            } else {
                let raw = 10f64.powf(v);
                if (raw - raw.round()).abs() < 1e-6 * raw.max(1.0) {
                    format!("{}", raw.round())
                } else {
                    format!("{raw:.3}")
                }
            }
        }
    }
}

fn superscript(e: i32) -> String {
    e.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_spans_whole_decades_without_bad_values() {
        let axis = Axis::new("g", Scale::Log);
        let (lo, hi) = axis_extent(&axis, &[0.0, -1.0, f64::NAN, f64::INFINITY, 3e-5, 0.2]);
        assert_eq!((lo, hi), (-5.0, 0.0));
        // Inside one decade there is still a labelled decade at each end.
        let (lo, hi) = axis_extent(&axis, &[0.3, 0.8]);
        assert_eq!((lo, hi), (-1.0, 0.0));
        let t = ticks(&axis, lo, hi);
        assert_eq!(t.bold, vec![-1.0, 0.0]);
        assert!(!t.light.is_empty());
    }

    #[test]
    fn many_decades_are_thinned() {
        let axis = Axis::new("g", Scale::Log);
        let t = ticks(&axis, -30.0, 2.0);
        assert!(t.bold.len() <= 9, "{:?}", t.bold);
        // Labels at round exponents, including 10⁰.
        assert!(
            t.bold.contains(&-30.0) && t.bold.contains(&0.0),
            "{:?}",
            t.bold
        );
        assert_eq!(t.bold.len() + t.light.len(), 33);
    }

    /// Labels of a log axis over the extent of `values`, as decades.
    fn labelled(values: &[f64]) -> ((f64, f64), Vec<f64>) {
        let axis = Axis::new("g", Scale::Log);
        let (lo, hi) = axis_extent(&axis, values);
        ((lo, hi), ticks(&axis, lo, hi).bold)
    }

    #[test]
    fn log_axis_ends_on_labels_beyond_the_data() {
        // The quickstart profile: 1e-22 to 0.084, labels every 3 decades.
        // The axis used to stop at 0.1, unlabelled, over a top label of
        // 10⁻³, so the lines that reach 0.084 seemed to run off the top.
        let ((lo, hi), bold) = labelled(&[2.3e-22, 3.2e-22, 0.0843, 0.084]);
        assert_eq!((lo, hi), (-24.0, 0.0));
        assert_eq!(bold.first(), Some(&lo));
        assert_eq!(bold.last(), Some(&hi));
        assert!(bold.len() <= 9, "{bold:?}");

        // An enormous span is shown whole, thinned to at most 9 labels.
        let ((lo, hi), bold) = labelled(&[1e-40, 0.5]);
        assert_eq!((lo, hi), (-40.0, 0.0));
        assert_eq!(
            bold,
            [-40.0, -35.0, -30.0, -25.0, -20.0, -15.0, -10.0, -5.0, 0.0]
        );

        // Every decade labelled: nothing to round out.
        let ((lo, hi), bold) = labelled(&[3.8e-4, 0.12]);
        assert_eq!((lo, hi), (-4.0, 0.0));
        assert_eq!(bold.len(), 5);

        // The extremes of f64 still give a finite, labelled axis.
        let ((lo, hi), bold) = labelled(&[f64::MIN_POSITIVE / 1e10, f64::MAX]);
        assert!(lo <= -318.0 && hi >= 309.0, "{lo}..{hi}");
        assert!(bold.len() <= 9 && bold.first() == Some(&lo), "{bold:?}");
    }

    #[test]
    fn zeros_on_the_floor_keep_it_clear_of_the_data() {
        let mut axis = Axis::new("g", Scale::Log);
        axis.zero_floor = true;
        // 1e-30 would sit on the bottom edge, with the ▼ of the zeros.
        assert_eq!(axis_extent(&axis, &[1e-30, 0.1, 0.0]), (-35.0, 0.0));
        assert_eq!(axis_extent(&axis, &[1e-30, 0.1]), (-30.0, 0.0));
        // Quickstart chart (d): 3.8e-4 is over half a decade above 1e-4.
        assert_eq!(axis_extent(&axis, &[3.8e-4, 0.12, 0.0]), (-4.0, 0.0));
        // Zeros alone: the empty frame.
        assert_eq!(axis_extent(&axis, &[0.0]), (-1.0, 0.0));
        // Without zero_floor a zero is just an unusable value.
        axis.zero_floor = false;
        assert_eq!(axis_extent(&axis, &[1e-30, 0.1, 0.0]), (-30.0, 0.0));
    }

    #[test]
    fn fraction_axis_starts_at_zero_and_stops_at_one() {
        let mut axis = Axis::new("e", Scale::Linear);
        axis.bounds = Bounds::Fraction;
        assert_eq!(axis_extent(&axis, &[0.2, 0.95]), (0.0, 1.0));
        assert_eq!(axis_extent(&axis, &[0.01, 0.03]), (0.0, 0.05));
    }

    #[test]
    fn from_zero_axis_starts_at_zero_and_ends_on_a_tick() {
        let mut axis = Axis::new("std", Scale::Linear);
        axis.bounds = Bounds::FromZero;
        for (values, most) in [([0.4, 1.7], 2.0), ([2.0, 3.9], 5.0), ([0.01, 0.033], 0.04)] {
            let (lo, hi) = axis_extent(&axis, &values);
            assert_eq!(lo, 0.0);
            assert!(hi >= values[1] * 1.05 && hi <= most, "{values:?}: top {hi}");
            let top_tick = ticks(&axis, lo, hi).bold.last().copied();
            assert!(
                top_tick.is_some_and(|t| (t - hi).abs() < 1e-9 * hi),
                "{values:?}: top {hi}, last tick {top_tick:?}"
            );
        }
        // All zero: a unit frame rather than an empty one.
        assert_eq!(axis_extent(&axis, &[0.0]), (0.0, 1.0));
    }

    #[test]
    fn absurd_values_give_a_finite_axis() {
        let mut axis = Axis::new("e", Scale::Linear);
        axis.bounds = Bounds::Fraction;
        let (lo, hi) = axis_extent(&axis, &[0.5, 1e308]);
        assert!(lo.is_finite() && hi.is_finite() && hi > lo, "{lo}..{hi}");
        let axis = Axis::new("x", Scale::Linear);
        let (lo, hi) = axis_extent(&axis, &[-1.7e308, 1.7e308]);
        assert!(lo.is_finite() && hi.is_finite() && hi > lo, "{lo}..{hi}");
        assert!(ticks(&axis, lo, hi).bold.len() <= 101);
    }

    #[test]
    fn integer_axes_have_integer_ticks() {
        let mut axis = Axis::new("layer", Scale::Linear);
        axis.integer = true;
        let t = ticks(&axis, 0.0, 3.0);
        assert!(t.bold.iter().all(|v| v.fract() == 0.0), "{:?}", t.bold);
        assert_eq!(t.decimals, 0);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(Scale::Log, -5.0, 0), "10⁻⁵");
        assert_eq!(tick_label(Scale::Log, -2.0, 0), "0.01");
        assert_eq!(tick_label(Scale::Log, 1.0, 0), "10");
        assert_eq!(tick_label(Scale::Log, 4f64.log10(), 0), "4");
        assert_eq!(tick_label(Scale::Linear, -0.0001, 2), "0.00");
        assert_eq!(tick_label(Scale::Linear, 0.25, 2), "0.25");
    }
}
