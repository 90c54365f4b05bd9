//! The report's page: the sections of `crate::sections` in order, once for
//! an unswept experiment and once per group of a swept one, then the
//! landscape and lesion sections and the charts, as `page::Block`s that
//! report.md and report.html are both written from. Every number comes
//! from the results directory; the only numbers written in the report are
//! He et al.'s (marked as theirs, in `sections::paper`).

use std::path::Path;

use crate::page::{self, Block};
use crate::runs::{sweep_label, Loaded};
use crate::sections::{
    charts, criticality, findings, forward, glorot, gradients, header, is_recurrent,
    is_transformer, paper, recurrent, runs_table, sweep_comparison, transformer,
};

pub(crate) fn blocks(root: &Path, loaded: &Loaded, problems: &[String]) -> Vec<Block> {
    let mut out = header(root, loaded);
    // A swept variance init over σ_w² and depth: the phase diagram's
    // verdict first (empty for any other experiment).
    out.extend(criticality(loaded));
    let groups = loaded.sweep_groups();
    let recurrent_or_transformer = is_recurrent(loaded) || is_transformer(loaded);
    if recurrent_or_transformer {
        // The cells (the layouts) are this family's twins: one section
        // compares them along the length (the depth) and across the swept
        // settings; each setting's own runs follow.
        if is_recurrent(loaded) {
            out.extend(recurrent(loaded));
        } else {
            out.extend(transformer(loaded));
        }
        for g in &groups {
            if g.is_empty() {
                out.extend(runs_table(loaded, problems));
                continue;
            }
            out.push(Block::Heading(2, sweep_label(g)));
            out.extend(
                runs_table(&loaded.only(g), problems)
                    .into_iter()
                    .map(|b| match b {
                        Block::Heading(level, text) => Block::Heading(level + 1, text),
                        other => other,
                    }),
            );
        }
    } else if groups.len() == 1 {
        out.extend(sections(loaded, problems));
    } else {
        // A swept experiment: the groups side by side first, then every
        // section once per group, comparing the variants and depths within
        // it (the runs of one group share every setting but depth and
        // variant, as an unswept experiment's do).
        out.extend(sweep_comparison(loaded, &groups));
        for g in &groups {
            let part = loaded.only(g);
            let names: Vec<String> = part
                .entries
                .iter()
                .map(|e| format!("{}: ", e.name))
                .collect();
            let own: Vec<String> = problems
                .iter()
                .filter(|p| names.iter().any(|n| p.starts_with(n.as_str())))
                .cloned()
                .collect();
            out.push(Block::Heading(2, sweep_label(g)));
            // One heading level down, under the group's own.
            out.extend(sections(&part, &own).into_iter().map(|b| match b {
                Block::Heading(level, text) => Block::Heading(level + 1, text),
                other => other,
            }));
        }
    }
    out.extend(crate::landscape::section(root));
    out.extend(crate::lesion::section(root));
    out.extend(crate::jacobian::section(root));
    out.extend(charts(root, is_recurrent(loaded), is_transformer(loaded)));
    out
}

/// The sections that compare the variants and depths of one set of runs.
fn sections(loaded: &Loaded, problems: &[String]) -> Vec<Block> {
    let mut out = runs_table(loaded, problems);
    out.extend(findings(loaded));
    out.extend(gradients(loaded));
    out.extend(forward(loaded));
    out.extend(paper(loaded));
    out.extend(glorot(loaded));
    out
}

/// report.md: [`page::markdown`] of the blocks, ending in one newline
/// rather than the blank line that follows every block (report.md as
/// published; compare.md keeps it).
pub(crate) fn markdown(blocks: &[Block]) -> String {
    let mut md = page::markdown(blocks);
    while md.ends_with("\n\n") {
        md.pop();
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::fixture::{swept, trained};
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A swept experiment: the groups side by side, then each group under
    /// its own level-2 heading with its sections one level down; the page
    /// ends with the charts (here all missing: notes), and report.md with
    /// one newline.
    #[test]
    fn a_swept_experiments_sections_go_one_level_down() {
        let config = json!({
            "model": {"family": "mlp", "activation": "relu", "init": ["glorot", "kaiming"]},
            "variants": ["plain"]
        });
        let init = |v: &str| BTreeMap::from([("init".to_owned(), v.to_owned())]);
        let runs = swept(
            &config,
            vec![
                (init("glorot"), ("plain", 4, 0, trained(0.1))),
                (init("kaiming"), ("plain", 4, 0, trained(0.2))),
            ],
        );
        let root = tempfile::tempdir().unwrap();
        let page = blocks(root.path(), &runs, &[]);
        let headings: Vec<(u8, &str)> = page
            .iter()
            .filter_map(|b| match b {
                Block::Heading(l, t) => Some((*l, t.as_str())),
                _ => None,
            })
            .collect();
        let at = |h: (u8, &str)| {
            headings
                .iter()
                .position(|x| *x == h)
                .unwrap_or_else(|| panic!("{h:?} in {headings:?}"))
        };
        let glorot = sweep_label(&init("glorot"));
        let kaiming = sweep_label(&init("kaiming"));
        assert!(at((2, "Across the sweep")) < at((2, &glorot)));
        assert!(at((2, &glorot)) < at((3, "Runs")));
        assert_eq!(headings.iter().filter(|h| **h == (3, "Runs")).count(), 2);
        assert!(at((2, &kaiming)) < at((2, "Charts")));
        assert!(headings
            .iter()
            .all(|(l, t)| *l != 2 || !t.starts_with("Runs")));
        assert!(matches!(page.last(), Some(Block::TightList(_))));
        let md = markdown(&page);
        assert!(md.ends_with("(see the problems above).\n"), "{md}");
        assert!(md.contains("\n#### He et al. (2016) §4.1"), "{md}");
    }
}
