//! The commands that read a results directory: `report` (and its
//! `--watch`), `plot`, `export`, `compare`, `merge` and `verify`.

use super::print_stdout;
use anyhow::{bail, Context, Result};
use gradscope_format::files;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `gradscope verify`: the differences, then the one line.
pub(crate) fn verify(results: &Path, against: &Path) -> Result<ExitCode> {
    let a = gradscope_report::reproduce::verify(results, against)?;
    let mut text = String::new();
    const SHOWN: usize = 12;
    for d in a.differences.iter().take(SHOWN) {
        match d.tolerance {
            Some(t) => outln!(
                text,
                "  {}: {} {} against {} (tolerance {t:.4})",
                d.run,
                d.what,
                d.ours,
                d.reference
            ),
            None => outln!(
                text,
                "  {}: {} {} against {}",
                d.run,
                d.what,
                d.ours,
                d.reference
            ),
        }
    }
    if a.differences.len() > SHOWN {
        outln!(
            text,
            "  and {} more differences",
            a.differences.len() - SHOWN
        );
    }
    outln!(text, "{}", a.line());
    print_stdout(&text)?;
    Ok(if a.reproduced() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn export(results: &Path, out: Option<&Path>) -> Result<()> {
    let e = gradscope_report::export::export(results, out)?;
    for s in &e.skipped {
        eprintln!("export: skipped {s}");
    }
    let mut text = String::new();
    for (path, rows) in &e.files {
        outln!(
            text,
            "{} ({rows} rows from {} runs)",
            path.display(),
            e.runs
        );
    }
    if e.files.is_empty() {
        bail!("{}: no run has a CSV file to export", results.display());
    }
    print_stdout(&text)
}

pub(crate) fn plot(results: &Path, style: gradscope_plot::Style) -> Result<()> {
    let written = gradscope_plot::render_all_with(results, style)
        .with_context(|| format!("drawing the charts of {}", results.display()))?;
    let mut text = String::new();
    for f in written {
        outln!(text, "{}", f.display());
    }
    print_stdout(&text)
}

pub(crate) fn compare(results: &[PathBuf], out: &Path, style: gradscope_plot::Style) -> Result<()> {
    let c = gradscope_report::compare::write_comparison(results, out, style)?;
    let differing = if c.differing.is_empty() {
        "no settings differ".to_owned()
    } else {
        format!("settings that differ: {}", c.differing.join(", "))
    };
    eprintln!(
        "compare: {} runs from {} folders; {differing}",
        c.runs,
        results.len()
    );
    print_stdout(&format!("{}\n{}\n", c.markdown.display(), c.html.display()))
}

pub(crate) fn merge(results: &[PathBuf], out: &Path, no_plot: bool) -> Result<()> {
    let command: Vec<String> = std::env::args().collect();
    let m = gradscope_train::merge::merge(results, out, &command.join(" "))?;
    eprintln!(
        "merge: {} run(s) of {:?} in {} ({} copied now, {} already there)",
        m.runs.len(),
        m.experiment,
        out.display(),
        m.copied.len(),
        m.runs.len().saturating_sub(m.copied.len())
    );
    if !m.missing.is_empty() {
        eprintln!(
            "merge: {} planned run(s) are in none of the directories: {}",
            m.missing.len(),
            m.missing.join(", ")
        );
    }
    if !no_plot {
        gradscope_plot::render_all(out)
            .with_context(|| format!("drawing the charts of {}", out.display()))?;
        report(out)?;
    }
    print_stdout(&format!("{}\n", m.summary.display()))
}

/// `gradscope report --watch`: rewrites the report whenever the files it
/// is drawn from change (`plot::fresh::inputs`: sizes and hashes), while
/// the sweep holding RESULTS's lock runs; then once more, without the
/// reload, and ends.
pub(crate) fn watch(results: &Path, every: u64) -> Result<()> {
    if every == 0 {
        bail!("--watch: 0 seconds between checks would spin (give 1 or more)");
    }
    let mut seen = None;
    loop {
        let running = gradscope_train::lock::live_holder(results);
        let inputs = gradscope_plot::fresh::inputs(results).ok();
        if running.is_none() {
            let r = gradscope_report::write_report(results)?;
            eprintln!(
                "report --watch: no sweep is writing {}; final report written",
                results.display()
            );
            return print_stdout(&format!("{}\n", r.path.display()));
        }
        if inputs.is_some() && inputs != seen {
            // A reader that catches a file mid-write tries again next time.
            match gradscope_report::write_report_live(results, Some(every)) {
                Ok(r) => {
                    eprintln!(
                        "report --watch: {} and report.html rewritten",
                        r.path.display()
                    );
                    seen = inputs;
                }
                Err(e) => eprintln!("report --watch: {e}; trying again in {every} s"),
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(every));
    }
}

pub(crate) fn report(results: &Path) -> Result<()> {
    let r = gradscope_report::write_report(results)?;
    if let Some(note) = &r.charts_note {
        eprintln!("report: {note}");
    }
    for p in &r.problems {
        eprintln!("report: {p}");
    }
    // report.md, then the page to open in a browser beside it.
    let html = r.path.with_file_name(files::REPORT_HTML);
    print_stdout(&format!("{}\n{}\n", r.path.display(), html.display()))
}
