//! A swept experiment's groups side by side, with which group trains best and keeps
//! the gradient most even.

use super::gradients::{decades, decades_stat, group_readings, pick};
use super::{cells, pct, pct_stat};
use crate::analysis::{completed, stat, train_error, Stat, RISE_TOL};
use crate::page::Block;
use crate::runs::{sweep_label, Loaded};
use crate::verdict::ranked_pair;
use gradscope_format::names::{path, SWEPT_FIELDS};
use std::collections::BTreeMap;

/// The groups of a swept experiment side by side: per variant and depth,
/// each group's final train error and gradient readings, and which group
/// trains best and keeps the gradient most even, with the seeds' spread.
pub(crate) fn sweep_comparison(loaded: &Loaded, groups: &[BTreeMap<String, String>]) -> Vec<Block> {
    let fields: Vec<&str> = SWEPT_FIELDS
        .into_iter()
        .filter(|f| groups.iter().any(|g| g.contains_key(*f)))
        .collect();
    let mut header = cells(&["variant", "depth"]);
    header.extend(fields.iter().map(|f| (*f).to_owned()));
    header.extend(cells(&[
        "seeds",
        "final train error %",
        "decay at init",
        "decay at end",
        "spread at init",
    ]));
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    for variant in loaded.variants() {
        for depth in loaded.depths() {
            let mut ranked: Vec<(String, Option<Stat>, Vec<f64>)> = Vec::new();
            for g in groups {
                let part = loaded.only(g);
                let group = part.group(&variant, depth);
                if group.is_empty() {
                    continue;
                }
                let done = group.iter().filter(|e| e.is_completed()).count();
                let train = completed(&group, train_error);
                let ends = group_readings(&part, &variant, depth);
                let decay_init = pick(&ends, |g| g.decay_init);
                let mut row = vec![variant.clone(), depth.to_string()];
                row.extend(
                    fields
                        .iter()
                        .map(|f| g.get(*f).cloned().unwrap_or_default()),
                );
                row.extend([
                    done.to_string(),
                    pct_stat(train),
                    decades_stat(&decay_init),
                    decades_stat(&pick(&ends, |g| g.decay_final)),
                    decades_stat(&pick(&ends, |g| g.spread_init)),
                ]);
                rows.push(row);
                ranked.push((sweep_label(g), train, decay_init));
            }
            if ranked.len() > 1 {
                verdicts.push(sweep_verdict(&variant, depth, &ranked));
            }
        }
    }
    let mut out = vec![
        Block::Heading(2, "Across the sweep".to_owned()),
        Block::Para(format!(
            "The experiment sweeps {}: every combination is run, and the sections below repeat the \
             report for each one. Here they are side by side: final train error in percent and the \
             decay per layer of dL/dh (decades per layer, positive when the gradient shrinks toward \
             the input; see \"Gradients: decay per layer\" below), mean ± std over completed seeds.",
            fields
                .iter()
                .map(|f| format!("`{}`", path(f)))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
        Block::Table(header, rows),
    ];
    if !verdicts.is_empty() {
        out.push(Block::List(verdicts));
    }
    out
}

/// One sentence per variant and depth: which group trained best, and
/// whether its lead is beyond the seeds' spread; which group's gradient
/// was most even at initialization.
fn sweep_verdict(variant: &str, depth: u32, rows: &[(String, Option<Stat>, Vec<f64>)]) -> String {
    let mut out = format!("{variant} d{depth}: ");
    let mut trained: Vec<(&str, Stat)> = rows
        .iter()
        .filter_map(|(label, s, _)| s.map(|s| (label.as_str(), s)))
        .collect();
    trained.sort_by(|a, b| a.1.mean.total_cmp(&b.1.mean));
    match trained.as_slice() {
        [best, next, ..] => {
            // A lead counts as the twin gaps do: beyond 1 point and the two
            // groups' seed spreads added (one seed has no spread).
            let spread = best.1.std.unwrap_or(0.0) + next.1.std.unwrap_or(0.0);
            let tolerance = spread.max(RISE_TOL);
            let gap = next.1.mean - best.1.mean;
            let seeds = if best.1.std.is_some() && next.1.std.is_some() {
                ""
            } else {
                "; one seed each: no spread"
            };
            if gap > tolerance {
                out += &format!(
                    "lowest final train error with {} ({}%), {} points below {} ({}%), beyond the \
                     tolerance of {} points (1 point or the seeds' spreads added){seeds}",
                    best.0,
                    pct(best.1.mean),
                    pct(gap),
                    next.0,
                    pct(next.1.mean),
                    pct(tolerance)
                );
            } else {
                out += &format!(
                    "no lead in final train error: {} {}% and {} {}%, {} points apart, within the \
                     tolerance of {} points (1 point or the seeds' spreads added){seeds}",
                    best.0,
                    pct(best.1.mean),
                    next.0,
                    pct(next.1.mean),
                    pct(gap),
                    pct(tolerance)
                );
            }
        }
        _ => out += "fewer than two groups completed",
    }
    let mut even: Vec<(&str, Stat)> = rows
        .iter()
        .filter_map(|(label, _, d)| stat(d.iter().map(|v| Some(*v))).map(|s| (label.as_str(), s)))
        .collect();
    even.sort_by(|a, b| a.1.mean.abs().total_cmp(&b.1.mean.abs()));
    if let [most, .., least] = even.as_slice() {
        // Two readings within 0.01 decades (what the table shows) or the
        // seeds' spreads added tie: the report does not rank them.
        let tolerance = 0.01f64.max(most.1.std.unwrap_or(0.0) + least.1.std.unwrap_or(0.0));
        match ranked_pair((most.0, most.1.mean), (least.0, least.1.mean), tolerance) {
            Some((lo, hi)) => {
                out += &format!(
                    "; the gradient at initialization is most even with {} ({} decades per layer) and \
                     least with {} ({})",
                    lo.0,
                    decades(lo.1),
                    hi.0,
                    decades(hi.1)
                )
            }
            None => {
                out += &format!(
                    "; the gradient at initialization is as even with {} ({} decades per layer) as with \
                     {} ({}): a tie within {:.2} decades per layer",
                    most.0,
                    decades(most.1.mean),
                    least.0,
                    decades(least.1.mean),
                    tolerance
                )
            }
        }
    }
    out + "."
}

#[cfg(test)]
mod tests {
    use super::sweep_verdict;
    use crate::analysis::Stat;

    fn one(mean: f64) -> Option<Stat> {
        Some(Stat {
            mean,
            std: None,
            n: 1,
        })
    }

    fn seeds(mean: f64, sd: f64) -> Option<Stat> {
        Some(Stat {
            mean,
            std: Some(sd),
            n: 3,
        })
    }

    /// A group leads only as a twin does (`crate::verdict`'s gap rule,
    /// `analysis::RISE_TOL`): by more than one percentage point and more
    /// than the two groups' seed spreads added; one seed has no spread and
    /// the verdict says so.
    #[test]
    fn a_group_leads_only_beyond_a_point_and_the_seeds_spreads() {
        let rows = |a, b| {
            vec![
                ("lr 0.1".to_owned(), a, vec![]),
                ("lr 0.01".to_owned(), b, vec![]),
            ]
        };
        let close = sweep_verdict("plain", 8, &rows(one(0.10), one(0.105)));
        assert!(close.starts_with("plain d8: no lead"), "{close}");
        assert!(close.contains("one seed each: no spread"), "{close}");
        let clear = sweep_verdict("plain", 8, &rows(one(0.13), one(0.10)));
        assert!(
            clear.contains(
                "lowest final train error with lr 0.01 (10.00%), 3.00 points below lr 0.1"
            ),
            "{clear}"
        );
        // 3 points apart, but the spreads add to 4: no lead.
        let noisy = sweep_verdict("plain", 8, &rows(seeds(0.10, 0.02), seeds(0.13, 0.02)));
        assert!(
            noisy.contains("no lead") && noisy.contains("tolerance of 4.00 points"),
            "{noisy}"
        );
        assert!(!noisy.contains("one seed each"), "{noisy}");
        let alone = sweep_verdict("plain", 8, &rows(one(0.1), None));
        assert_eq!(alone, "plain d8: fewer than two groups completed.");
    }

    /// The gradient's evenness is ranked by the magnitude of the decay per
    /// layer (`verdict::ranked_pair`), and readings within 0.01 decades (the
    /// table's last digit) tie rather than rank.
    #[test]
    fn evenness_ranks_by_magnitude_and_ties_within_the_tables_digits() {
        let rows = |a: f64, b: f64| {
            vec![
                ("tanh".to_owned(), None, vec![a]),
                ("sigmoid".to_owned(), None, vec![b]),
            ]
        };
        let ranked = sweep_verdict("plain", 8, &rows(-0.30, 0.20));
        assert!(
            ranked.contains(
                "most even with sigmoid (0.20 decades per layer) and least with tanh (-0.30)"
            ),
            "{ranked}"
        );
        let tie = sweep_verdict("plain", 8, &rows(0.100, 0.105));
        assert!(
            tie.contains("as even with") && tie.contains("a tie within 0.01"),
            "{tie}"
        );
    }
}
