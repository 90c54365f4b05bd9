//! The table of runs by variant and depth, and the runs that are missing or unfinished.

use super::{cells, pct_stat, seconds};
use crate::analysis::{completed, stat, test_error, train_error};
use crate::page::Block;
use crate::runs::{Loaded, RunEntry};

pub(crate) fn runs_table(loaded: &Loaded, problems: &[String]) -> Vec<Block> {
    let header = [
        "variant",
        "depth",
        "seeds",
        "final train error %",
        "final test error %",
        "params",
        "wall time per run",
        "status",
    ];
    let mut rows = Vec::new();
    for variant in loaded.variants() {
        for depth in loaded.depths() {
            let group = loaded.group(&variant, depth);
            if group.is_empty() {
                continue;
            }
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
            rows.push(vec![
                variant.clone(),
                depth.to_string(),
                seeds.join(", "),
                pct_stat(completed(&group, train_error)),
                pct_stat(completed(&group, test_error)),
                params,
                wall,
                status_cell(&group),
            ]);
        }
    }
    let mut out = vec![
        Block::Heading(2, "Runs".to_owned()),
        Block::Para(
            "Final errors are full passes over each split after the last step (eval mode), \
             in percent, mean ± sample std over the completed seeds."
                .to_owned(),
        ),
        Block::Table(cells(&header), rows),
    ];
    if !problems.is_empty() {
        out.push(Block::Heading(3, "Missing or unfinished".to_owned()));
        out.push(Block::Para(
            "These runs are in the table but left out of the means; rerun the experiment to complete them."
                .to_owned(),
        ));
        out.push(Block::List(problems.to_vec()));
    }
    out
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
