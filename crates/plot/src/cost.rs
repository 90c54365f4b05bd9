//! The chart of `gradscope cost`: does the multiplication count predict the
//! measured forward time? Log–log, one dot per layer (left) and per whole
//! target (right), one colour per target; a point on the diagonal trend
//! means time grows in proportion to the count.

use std::path::Path;

use crate::axis::{Axis, Scale};
use crate::charts::categorical;
use crate::error::PlotError;
use crate::figure::{Figure, Layout, LegendEntry, Marker, Panel, Rendered, Series};

/// File stem of the chart.
pub const COST_VS_TIME: &str = "cost_vs_time";

/// One measured row of `gradscope cost`.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPoint {
    pub target: String,
    /// Multiplications per example.
    pub mults: f64,
    /// Median forward time of one batch, milliseconds.
    pub ms: f64,
    /// A whole target (true) or one layer timed alone (false).
    pub total: bool,
}

/// Writes `DIR/cost_vs_time.png` and `.svg`; `subtitle` states batch,
/// threads and repeats.
pub fn cost_vs_time(
    points: &[CostPoint],
    dir: &Path,
    subtitle: &str,
) -> Result<Rendered, PlotError> {
    let mut targets: Vec<&str> = Vec::new();
    for p in points {
        if !targets.contains(&p.target.as_str()) {
            targets.push(&p.target);
        }
    }
    let mut layers = Panel::new("each layer alone (conv or fc)");
    let mut totals = Panel::new("whole target (with BN, ReLU, pooling)");
    for (i, target) in targets.iter().enumerate() {
        let color = categorical(i);
        for panel in [&mut layers, &mut totals] {
            panel.legend.push(LegendEntry {
                label: (*target).to_string(),
                color,
                dashed: false,
                marker: Some(Marker::Circle),
            });
        }
        for p in points.iter().filter(|p| p.target == *target) {
            // One series per point: a lone point is drawn as a dot, with no
            // line joining unrelated layers.
            let panel = if p.total { &mut totals } else { &mut layers };
            panel.series.push(Series {
                diverged: false,
                points: vec![(p.mults, p.ms)],
                color,
                dashed: false,
                marker: Some(Marker::Circle),
            });
        }
    }
    layers.empty_reason = Some("no layer was timed".into());
    totals.empty_reason = Some("no target was timed".into());
    Figure {
        name: COST_VS_TIME,
        title: "Multiplications against measured forward time".into(),
        subtitle: Some(subtitle.to_string()),
        x: Axis::new("multiplications per example", Scale::Log),
        y: Axis::new("median forward time per batch (ms)", Scale::Log),
        panels: vec![layers, totals],
        layout: Layout::Row,
    }
    .write(dir)
}
