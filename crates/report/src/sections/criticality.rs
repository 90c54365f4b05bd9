//! The phase diagram of trainable depth (issue 36 §2; Schoenholz et al.
//! 2017, "Deep Information Propagation"): for an MLP experiment that
//! sweeps a `variance` init over σ_w² at one σ_b² and over depth, a table
//! of the final training error of each (σ_w², depth) cell with its
//! trainability and theory's prediction, and the count of cells where
//! they agree.
//!
//! The rules are gradscope-plot's `phase` (the chart `phase_diagram` draws
//! from the same readings):
//!
//! - **trainable**: the final training error is at least 10 points below
//!   chance, 1 − 1/classes (a diverged run is not trainable);
//! - **predicted trainable**: depth ≤ 6ξ_c, ξ_c from mean-field theory at
//!   the cell's (σ_w², σ_b²);
//! - **where the deepest trainable nets sit**: the σ_w² of the trainable
//!   cells at the deepest depth that has any, beside the σ_w² at which
//!   χ₁ = 1.

use super::pct;
use crate::page::Block;
use crate::runs::Loaded;
use gradscope_plot::phase::{phase_of, Phase, TRAINABLE_MARGIN, XI_MULTIPLE};

/// The section, when `loaded` has a phase diagram; nothing otherwise.
pub(crate) fn criticality(loaded: &Loaded) -> Vec<Block> {
    match loaded.csv.as_ref().map(phase_of) {
        Some(Ok(phase)) => section(&phase),
        _ => Vec::new(),
    }
}

/// "1.76", "4": a σ_w² as the table writes it.
fn weight(w: f64) -> String {
    let s = format!("{w:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// 6ξ_c as a depth: "∞" at the edge, a whole number of layers above 10.
fn limit_words(limit: Option<f64>) -> String {
    match limit {
        None => "—".to_owned(),
        Some(l) if !l.is_finite() || l > 1e6 => "∞".to_owned(),
        Some(l) if l >= 10.0 => format!("{l:.0}"),
        Some(l) => format!("{l:.1}"),
    }
}

/// The section's blocks for one diagram.
pub(crate) fn section(phase: &Phase) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Trainable depth against σ_w²".to_owned())];
    out.push(Block::Para(format!(
        "Schoenholz et al. 2017 (\"Deep Information Propagation\") find that a plain net trains only while its depth is within about {XI_MULTIPLE:.0}ξ_c, where ξ_c is the depth over which mean-field theory says the correlation between two inputs reaches its fixed point; ξ_c diverges at the order-to-chaos edge χ₁ = 1, so the deepest trainable nets sit there. Here a run is **trainable** when its final training error is at least {:.0} points below chance ({}%, 1 − 1/classes), that is at most {}%; a diverged run is not. Theory **predicts** a cell trainable when its depth ≤ {XI_MULTIPLE:.0}ξ_c, ξ_c computed for {} at the cell's σ_w² and σ_b² = {}.",
        TRAINABLE_MARGIN * 100.0,
        pct(phase.chance),
        pct(phase.chance - TRAINABLE_MARGIN),
        act_name(phase),
        phase.sb,
    )));

    // The table: a row per σ_w², a column per depth, and 6ξ_c.
    let mut header = vec!["σ_w²".to_owned(), format!("{XI_MULTIPLE:.0}ξ_c")];
    header.extend(phase.depths.iter().map(|d| format!("depth {d}")));
    let rows: Vec<Vec<String>> = phase
        .weights
        .iter()
        .zip(&phase.limits)
        .map(|(&w, &limit)| {
            let mut row = vec![weight(w), limit_words(limit)];
            row.extend(phase.depths.iter().map(|&d| match phase.cell(w, d) {
                None => "—".to_owned(),
                Some(c) => {
                    let err = match c.error {
                        Some(e) => format!("{}%", pct(e)),
                        None if c.diverged > 0 => "diverged".to_owned(),
                        None => "—".to_owned(),
                    };
                    let mark = match c.trainable {
                        Some(true) => " ✓",
                        Some(false) => " ✗",
                        None => "",
                    };
                    let miss = if c.agrees() == Some(false) {
                        " (against theory)"
                    } else {
                        ""
                    };
                    format!("{err}{mark}{miss}")
                }
            }));
            row
        })
        .collect();
    out.push(Block::Table(header, rows));
    out.push(Block::Para(
        "Final training error (mean over seeds where there are several); ✓ trainable, ✗ not; \"against theory\" where that disagrees with depth ≤ 6ξ_c.".to_owned(),
    ));
    out.extend(verdict(phase));
    out
}

fn act_name(phase: &Phase) -> &'static str {
    match phase.act {
        gradscope_theory::Act::Tanh => "tanh",
        gradscope_theory::Act::Sigmoid => "the sigmoid",
        gradscope_theory::Act::Relu => "ReLU",
    }
}

/// The count, and where the deepest trainable nets sit against χ₁ = 1.
fn verdict(phase: &Phase) -> Vec<Block> {
    let mut items = Vec::new();
    let (agree, judged) = phase.agreement();
    items.push(if judged == 0 {
        "No cell could be judged: no run has a final training error.".to_owned()
    } else {
        let wrong: Vec<String> = phase
            .cells
            .iter()
            .filter(|c| c.agrees() == Some(false))
            .map(|c| {
                format!(
                    "σ_w² {} at depth {} ({})",
                    weight(c.sw),
                    c.depth,
                    if c.trainable == Some(true) {
                        "trains beyond 6ξ_c"
                    } else {
                        "fails within 6ξ_c"
                    }
                )
            })
            .collect();
        let tail = if wrong.is_empty() {
            String::new()
        } else {
            format!("; the others: {}", wrong.join(", "))
        };
        format!(
            "**{agree} of {judged} runs agree** with the prediction trainable iff depth ≤ 6ξ_c{tail}."
        )
    });
    let edge = phase.edge.map(|e| format!("σ_w² = {e:.2}"));
    items.push(match (phase.deepest_trainable(), &edge) {
        (None, _) => "No cell is trainable.".to_owned(),
        (Some((depth, ws)), edge) => {
            let list: Vec<String> = ws.iter().map(|&w| weight(w)).collect();
            let nearest = phase.edge.and_then(|e| {
                phase
                    .weights
                    .iter()
                    .copied()
                    .min_by(|a, b| (a - e).abs().total_cmp(&(b - e).abs()))
            });
            let at_edge = match nearest {
                Some(n) if ws.contains(&n) => format!(
                    ", which includes the swept value nearest the edge ({})",
                    weight(n)
                ),
                Some(n) => format!(
                    ", which does not include the swept value nearest the edge ({})",
                    weight(n)
                ),
                None => String::new(),
            };
            let deepest_swept = phase.depths.last().copied().unwrap_or(depth);
            let reach = if depth == deepest_swept {
                " (the deepest swept, so the diagram does not show how much deeper they could go)"
            } else {
                ""
            };
            format!(
                "The deepest trainable nets are at depth {depth}{reach}, at σ_w² {}; χ₁ = 1 at {}{at_edge}.",
                list.join(", "),
                edge.as_deref().unwrap_or("no σ_w² theory finds"),
            )
        }
    });
    vec![Block::List(items)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::cells;
    use gradscope_plot::phase::Reading;
    use gradscope_theory::Act;

    fn reading(sw: f64, depth: u32, error: f64) -> Reading {
        Reading {
            sw,
            sb: 0.05,
            depth,
            error: Some(error),
            diverged: false,
        }
    }

    fn text(blocks: &[Block]) -> String {
        format!("{blocks:?}")
    }

    /// Constructed readings (tanh, σ_b² = 0.05, chance 0.9): σ_w² 0.5 has
    /// 6ξ_c under 10, so its depth-10 run at chance agrees and its
    /// depth-50 run that trains does not; 1.75 is near the edge (6ξ_c in
    /// the hundreds) and trains at both depths. Three of four agree, and
    /// the deepest trainable nets are at depth 50, at 0.5 and 1.75, the
    /// latter the swept value nearest χ₁ = 1.
    #[test]
    fn the_section_counts_agreement_and_places_the_deepest_net() {
        let phase = Phase::build(
            Act::Tanh,
            0.9,
            &[
                reading(0.5, 10, 0.89),
                reading(0.5, 50, 0.5),
                reading(1.75, 10, 0.2),
                reading(1.75, 50, 0.3),
            ],
        )
        .unwrap();
        let blocks = section(&phase);
        let all = text(&blocks);
        assert!(all.contains("**3 of 4 runs agree**"), "{all}");
        assert!(
            all.contains("σ_w² 0.5 at depth 50 (trains beyond 6ξ_c)"),
            "{all}"
        );
        assert!(all.contains("at most 80.00%"), "{all}");
        assert!(
            all.contains("deepest trainable nets are at depth 50 (the deepest swept"),
            "{all}"
        );
        assert!(all.contains("at σ_w² 0.5, 1.75"), "{all}");
        assert!(all.contains("which includes the swept value nearest the edge (1.75)"));
        let Some(Block::Table(header, rows)) =
            blocks.iter().find(|b| matches!(b, Block::Table(..)))
        else {
            panic!("{all}")
        };
        assert_eq!(
            header[..4],
            cells(&["σ_w²", "6ξ_c", "depth 10", "depth 50"])
        );
        assert_eq!(rows[0][2], "89.00% ✗");
        assert_eq!(rows[0][3], "50.00% ✓ (against theory)");
        assert_eq!(rows[1][2], "20.00% ✓");
    }

    /// Nothing trainable: said so, and a diverged cell reads "diverged".
    #[test]
    fn no_trainable_cell_is_said() {
        let phase = Phase::build(
            Act::Tanh,
            0.9,
            &[
                reading(0.5, 10, 0.9),
                reading(4.0, 100, 0.9),
                Reading {
                    error: None,
                    diverged: true,
                    ..reading(4.0, 10, 0.0)
                },
            ],
        )
        .unwrap();
        let all = text(&section(&phase));
        assert!(all.contains("No cell is trainable."), "{all}");
        assert!(all.contains("diverged ✗"), "{all}");
    }
}
