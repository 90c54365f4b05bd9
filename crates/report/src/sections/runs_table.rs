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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::fixture::{loaded, trained};
    use serde_json::json;

    /// A group's status counts each status once, in the order met, and
    /// puts every status but "completed" in bold: those runs are left out
    /// of the means beside it.
    #[test]
    fn unfinished_runs_are_counted_in_bold() {
        let runs = loaded(
            &json!({}),
            vec![
                ("plain", 8, 0, trained(0.1)),
                ("plain", 8, 1, json!({"status": "running"})),
                ("plain", 8, 2, trained(0.2)),
                ("plain", 8, 3, json!({"status": "diverged"})),
            ],
        );
        let group = runs.group("plain", 8);
        assert_eq!(
            status_cell(&group),
            "2 completed, **1 running**, **1 diverged**"
        );
        // The mean is over the completed seeds only.
        let blocks = runs_table(&runs, &[]);
        let Block::Table(_, rows) = &blocks[2] else {
            panic!("{blocks:?}")
        };
        assert_eq!(rows[0][3], "15.00 ± 7.07");
        assert_eq!(blocks.len(), 3, "no problems, no list of them");
        let with = runs_table(&runs, &["plain-d8-s1: still running".to_owned()]);
        assert_eq!(with[3], Block::Heading(3, "Missing or unfinished".into()));
        assert_eq!(
            with[5],
            Block::List(vec!["plain-d8-s1: still running".into()])
        );
    }
}
