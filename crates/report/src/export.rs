//! `gradscope export RESULTS`: every run's CSV files as one long table per
//! kind, for pandas, R or a spreadsheet.
//!
//! `OUT/gradients.csv` holds the rows of every `runs/RUN/gradients.csv`,
//! each prefixed with `run,variant,depth,seed`; likewise `metrics.csv` and
//! `activations.csv`. The per-run columns are copied as their headers name
//! them, whatever they are, so columns added to the per-run files later
//! arrive without a change here. Runs whose files have different columns
//! (written by different versions) are joined on the union of the columns,
//! in order of first appearance, with empty fields where a run lacks one.
//!
//! Files are streamed record by record (a sweep's gradients can run to
//! hundreds of MB) and each output is written to a temporary file renamed
//! into place.

use gradscope_format::durable::{replace_with, ReplaceError};
use gradscope_format::files::{ACTIVATIONS_CSV, GRADIENTS_CSV, METRICS_CSV, RUNS_DIR, RUN_JSON};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::runs::{parse_run_name, RunJson};
use crate::ReportError;
use gradscope_format::names::SWEPT_FIELDS;

/// The per-run files that are exported, in this order.
pub const EXPORTED: [&str; 3] = [GRADIENTS_CSV, METRICS_CSV, ACTIVATIONS_CSV];

/// The columns put before each per-run file's own; a swept experiment's
/// settings (`activation`, `init`, `norm`) come after `variant`.
pub const LEADING: [&str; 4] = ["run", "variant", "depth", "seed"];

pub use gradscope_format::files::EXPORT_DIR;

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// Each file written, with its number of data rows.
    pub files: Vec<(PathBuf, u64)>,
    /// Runs exported.
    pub runs: usize,
    /// Folders of `runs/` left out, and why (unfinished runs, folders that
    /// are not a run's).
    pub skipped: Vec<String>,
}

/// One finished run folder.
struct Run {
    name: String,
    variant: String,
    /// The swept settings' values (empty when nothing is swept).
    swept: BTreeMap<String, String>,
    depth: u32,
    seed: u64,
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.to_path_buf();
    move |source| ReportError::Io { path, source }
}

fn csv_err(path: &Path, e: csv::Error) -> ReportError {
    let at = e
        .position()
        .map(|p| format!(", line {}", p.line()))
        .unwrap_or_default();
    ReportError::Csv {
        path: path.to_path_buf(),
        message: format!("{}{at}", e.kind_text()),
    }
}

/// A csv error's own words, without the position (named separately).
trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for csv::Error {
    fn kind_text(&self) -> String {
        match self.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("found {len} fields where the header has {expected_len}"),
            csv::ErrorKind::Io(e) => e.to_string(),
            _ => self.to_string(),
        }
    }
}

/// The finished runs of `root/runs`, by depth, variant and seed (as the
/// report orders them). `RUN.partial` and `RUN.old` folders are not
/// finished runs of their own and are skipped, and so are folders whose
/// name is not `VARIANT-dDEPTH-sSEED` and whose run.json does not say.
fn finished_runs(root: &Path, skipped: &mut Vec<String>) -> Result<Vec<Run>, ReportError> {
    let runs_dir = root.join(RUNS_DIR);
    if !root.is_dir() {
        return Err(ReportError::Missing {
            path: root.to_path_buf(),
        });
    }
    if !runs_dir.is_dir() {
        return Err(ReportError::NotResultsDir {
            path: root.to_path_buf(),
        });
    }
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(&runs_dir).map_err(io_err(&runs_dir))? {
        let entry = entry.map_err(io_err(&runs_dir))?;
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if gradscope_format::files::is_transient(&name) {
            skipped.push(format!("runs/{name}: not a finished run"));
            continue;
        }
        let record: RunJson = std::fs::read_to_string(dir.join(RUN_JSON))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let parsed = parse_run_name(&name);
        let variant = record
            .variant
            .clone()
            .or_else(|| parsed.as_ref().map(|p| p.0.clone()));
        let depth = record.depth.or(parsed.as_ref().map(|p| p.1));
        let seed = record.seed.or(parsed.as_ref().map(|p| p.2));
        match (variant, depth, seed) {
            (Some(variant), Some(depth), Some(seed)) => runs.push(Run {
                name,
                variant,
                swept: record.swept.clone(),
                depth,
                seed,
                dir,
            }),
            _ => skipped.push(format!(
                "runs/{name}: not VARIANT-dDEPTH-sSEED and no run.json saying so"
            )),
        }
    }
    runs.sort_by(|a, b| {
        (a.depth, &a.variant, &a.swept, a.seed).cmp(&(b.depth, &b.variant, &b.swept, b.seed))
    });
    Ok(runs)
}

/// The union of the runs' headers of `file`, in order of first appearance.
fn union_header(runs: &[Run], file: &str) -> Result<Vec<String>, ReportError> {
    let mut columns: Vec<String> = Vec::new();
    for run in runs {
        let path = run.dir.join(file);
        if !path.is_file() {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path).map_err(|e| csv_err(&path, e))?;
        for h in reader.headers().map_err(|e| csv_err(&path, e))? {
            if !columns.iter().any(|c| c == h) {
                columns.push(h.to_string());
            }
        }
    }
    Ok(columns)
}

/// Writes `out_dir/file` from every run's `file`; returns the rows written,
/// or `None` when no run has that file.
fn export_one(runs: &[Run], file: &str, out_dir: &Path) -> Result<Option<u64>, ReportError> {
    let columns = union_header(runs, file)?;
    if columns.is_empty() {
        return Ok(None);
    }
    // The swept settings any run has, after `variant` (as in summary.csv).
    let swept: Vec<&str> = SWEPT_FIELDS
        .into_iter()
        .filter(|f| runs.iter().any(|r| r.swept.contains_key(*f)))
        .collect();
    let mut leading: Vec<&str> = LEADING[..2].to_vec();
    leading.extend(&swept);
    leading.extend(&LEADING[2..]);
    // A per-run column that shares a leading column's name keeps its
    // values under a prefixed name rather than shadowing it.
    let out_names: Vec<String> = columns
        .iter()
        .map(|c| match leading.contains(&c.as_str()) {
            true => format!("{}.{c}", file.trim_end_matches(".csv")),
            false => c.clone(),
        })
        .collect();
    let dest = out_dir.join(file);
    let mut rows = 0u64;
    // Streamed into a temporary file that then replaces `dest` durably
    // (what an interrupted export left is cleaned first).
    let written = replace_with(&dest, |tmp: &Path| -> Result<(), ReportError> {
        let tmp = tmp.to_path_buf();
        let sink = BufWriter::new(File::create(&tmp).map_err(io_err(&tmp))?);
        let mut w = csv::Writer::from_writer(sink);
        let mut header: Vec<&str> = leading.clone();
        header.extend(out_names.iter().map(String::as_str));
        w.write_record(&header).map_err(|e| csv_err(&tmp, e))?;
        let mut record = csv::StringRecord::new();
        let mut row: Vec<String> = Vec::with_capacity(header.len());
        for run in runs {
            let path = run.dir.join(file);
            if !path.is_file() {
                continue;
            }
            let mut reader = csv::Reader::from_path(&path).map_err(|e| csv_err(&path, e))?;
            let theirs = reader.headers().map_err(|e| csv_err(&path, e))?.clone();
            // Where each of this run's columns goes in the union.
            let place: BTreeMap<usize, usize> = theirs
                .iter()
                .enumerate()
                .filter_map(|(i, h)| columns.iter().position(|c| c == h).map(|j| (j, i)))
                .collect();
            while reader
                .read_record(&mut record)
                .map_err(|e| csv_err(&path, e))?
            {
                row.clear();
                row.extend([run.name.clone(), run.variant.clone()]);
                row.extend(
                    swept
                        .iter()
                        .map(|f| run.swept.get(*f).cloned().unwrap_or_default()),
                );
                row.extend([run.depth.to_string(), run.seed.to_string()]);
                for j in 0..columns.len() {
                    let v = place.get(&j).and_then(|&i| record.get(i)).unwrap_or("");
                    row.push(v.to_string());
                }
                w.write_record(&row).map_err(|e| csv_err(&tmp, e))?;
                rows += 1;
            }
        }
        let sink = w
            .into_inner()
            .map_err(|e| io_err(&tmp)(std::io::Error::other(e.to_string())))?;
        sink.into_inner()
            .map(drop)
            .map_err(|e| io_err(&tmp)(std::io::Error::other(e.to_string())))
    });
    match written {
        Ok(()) => {}
        Err(ReplaceError::Write(_, e)) => return Err(e),
        Err(ReplaceError::Io(path, e)) => return Err(io_err(&path)(e)),
    }
    Ok(Some(rows))
}

/// Writes the long tables of `root`'s runs into `out` (default
/// `root/export`).
pub fn export(root: &Path, out: Option<&Path>) -> Result<Exported, ReportError> {
    let mut skipped = Vec::new();
    let runs = finished_runs(root, &mut skipped)?;
    let out_dir = out.map_or_else(|| root.join(EXPORT_DIR), Path::to_path_buf);
    std::fs::create_dir_all(&out_dir).map_err(io_err(&out_dir))?;
    let mut files = Vec::new();
    for file in EXPORTED {
        if let Some(rows) = export_one(&runs, file, &out_dir)? {
            files.push((out_dir.join(file), rows));
        }
    }
    // Flushed files are only durable once their folder entry is.
    if let Ok(d) = File::open(&out_dir) {
        let _ = d.sync_all();
    }
    Ok(Exported {
        files,
        runs: runs.len(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Two runs whose gradients.csv headers differ (an older run without
    /// the newer column `zero_fraction`): the union of the columns, blanks
    /// where a run lacks one, every row once, the leading columns from the
    /// run's name.
    #[test]
    fn runs_with_different_columns_are_joined_on_their_union() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "runs/plain-d4-s0/gradients.csv",
            "step,layer,name,kind,l2,rms\n0,0,layer00.linear,output,0.5,0.1\n",
        );
        write(
            root,
            "runs/residual-d4-s1/gradients.csv",
            "step,layer,name,kind,l2,rms,zero_fraction\n0,0,layer00.linear,output,0.7,0.2,0\n5,0,layer00.linear,output,0.6,0.2,0.25\n",
        );
        write(root, "runs/plain-d8-s0.partial/gradients.csv", "step\n0\n");
        let e = export(root, None).unwrap();
        assert_eq!(e.runs, 2);
        assert_eq!(e.skipped.len(), 1, "{:?}", e.skipped);
        assert_eq!(e.files, vec![(root.join("export/gradients.csv"), 3)]);
        let text = std::fs::read_to_string(root.join("export/gradients.csv")).unwrap();
        assert_eq!(
            text,
            "run,variant,depth,seed,step,layer,name,kind,l2,rms,zero_fraction\n\
             plain-d4-s0,plain,4,0,0,0,layer00.linear,output,0.5,0.1,\n\
             residual-d4-s1,residual,4,1,0,0,layer00.linear,output,0.7,0.2,0\n\
             residual-d4-s1,residual,4,1,5,0,layer00.linear,output,0.6,0.2,0.25\n"
        );
    }

    #[test]
    fn a_malformed_row_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "runs/plain-d4-s0/metrics.csv",
            "step,loss\n0,1\n1,2,3\n",
        );
        let err = export(root, None).unwrap_err().to_string();
        assert!(err.contains("runs/plain-d4-s0/metrics.csv"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(!root.join("export/metrics.csv").exists());
    }
}
