//! The text of report.md: the sections of `crate::sections` in order, once
//! for an unswept experiment and once per group of a swept one, then the
//! landscape and lesion sections and the charts. Every number comes from the results
//! directory; the only numbers written in the report are He et al.'s
//! (marked as theirs, in `sections::paper`).

use std::fmt::Write as _;
use std::path::Path;

use crate::runs::{sweep_label, Loaded};
use crate::sections::{
    charts, findings, glorot, gradients, header, paper, runs_table, sweep_comparison,
};

pub(crate) fn render(root: &Path, loaded: &Loaded, problems: &[String]) -> String {
    let mut md = String::new();
    header(&mut md, root, loaded);
    let groups = loaded.sweep_groups();
    if groups.len() == 1 {
        sections(&mut md, loaded, problems);
    } else {
        // A swept experiment: the groups side by side first, then every
        // section once per group, comparing the variants and depths within
        // it (the runs of one group share every setting but depth and
        // variant, as an unswept experiment's do).
        sweep_comparison(&mut md, loaded, &groups);
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
            let mut section = String::new();
            sections(&mut section, &part, &own);
            mdln!(md, "## {}", sweep_label(g));
            mdln!(md);
            // One heading level down, under the group's own.
            for l in section.lines() {
                if l.starts_with('#') {
                    mdln!(md, "#{l}");
                } else {
                    mdln!(md, "{l}");
                }
            }
        }
    }
    crate::landscape::section(&mut md, root);
    crate::lesion::section(&mut md, root);
    charts(&mut md, root);
    md
}

/// The sections that compare the variants and depths of one set of runs.
fn sections(md: &mut String, loaded: &Loaded, problems: &[String]) {
    runs_table(md, loaded, problems);
    findings(md, loaded);
    gradients(md, loaded);
    paper(md, loaded);
    glorot(md, loaded);
}
