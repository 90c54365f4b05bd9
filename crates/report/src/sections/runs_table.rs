//! The table of runs by variant and depth, and the runs that are missing or unfinished.

use super::{pct_stat, seconds};
use crate::analysis::{completed, stat, test_error, train_error};
use crate::runs::{Loaded, RunEntry};
use std::fmt::Write as _;

pub(crate) fn runs_table(md: &mut String, loaded: &Loaded, problems: &[String]) {
    mdln!(md, "## Runs");
    mdln!(md);
    mdln!(
        md,
        "Final errors are full passes over each split after the last step (eval mode), \
         in percent, mean ± sample std over the completed seeds."
    );
    mdln!(md);
    mdln!(
        md,
        "| variant | depth | seeds | final train error % | final test error % | params | wall time per run | status |"
    );
    mdln!(md, "|---|---|---|---|---|---|---|---|");
    for variant in loaded.variants() {
        for depth in loaded.depths() {
            let group = loaded.group(&variant, depth);
            if group.is_empty() {
                continue;
            }
            let train = completed(&group, train_error);
            let test = completed(&group, test_error);
            let params = group
                .iter()
                .find_map(|e| e.record.as_ref().and_then(|r| r.params))
                .filter(|&p| p > 0)
                .map_or("—".into(), |p| p.to_string());
            let wall = stat(
                group
                    .iter()
                    .map(|e| e.record.as_ref().and_then(|r| r.elapsed_s)),
            )
            .map_or("—".into(), |s| seconds(s.mean));
            let seeds: Vec<String> = group.iter().map(|e| e.seed.to_string()).collect();
            mdln!(
                md,
                "| {variant} | {depth} | {} | {} | {} | {params} | {wall} | {} |",
                seeds.join(", "),
                pct_stat(train),
                pct_stat(test),
                status_cell(&group)
            );
        }
    }
    mdln!(md);
    if !problems.is_empty() {
        mdln!(md, "### Missing or unfinished");
        mdln!(md);
        mdln!(
            md,
            "These runs are in the table but left out of the means; rerun the experiment to complete them."
        );
        mdln!(md);
        for p in problems {
            mdln!(md, "- {p}");
        }
        mdln!(md);
    }
}

/// "3 completed" or "2 completed, 1 running".
fn status_cell(group: &[&RunEntry]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for e in group {
        match counts.iter_mut().find(|(s, _)| *s == e.status()) {
            Some((_, c)) => *c += 1,
            None => counts.push((e.status(), 1)),
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(s, c)| {
            if *s == "completed" {
                format!("{c} {s}")
            } else {
                format!("**{c} {s}**")
            }
        })
        .collect();
    parts.join(", ")
}
