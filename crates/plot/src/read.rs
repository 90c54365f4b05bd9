//! Loading a results directory: `summary.csv` plus the per-run CSV files
//! described in `crates/README.md`, "The file contract".
//!
//! Numbers are parsed with Rust's float parser, which accepts the `NaN`,
//! `inf` and `-inf` that diverged runs write; empty fields become `None`.

use gradscope_format::files::{
    ACTIVATIONS_CSV, GRADIENTS_CSV, METRICS_CSV, PLOTS_DIR, RUNS_DIR, RUN_JSON, SUMMARY_CSV,
};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::PlotError;

/// The run status that the charts mark in their legends.
pub const STATUS_DIVERGED: &str = gradscope_format::run::Status::Diverged.as_str();
/// The status of a run that finished normally; it is the one status that is
/// not mentioned in legends.
pub const STATUS_COMPLETED: &str = gradscope_format::run::Status::Completed.as_str();

// The rows of the file contract, one definition for writers and readers
// (gradscope-format).
pub use gradscope_format::rows::{ActivationRow, MetricRow, SummaryRow, SPLIT_TRAIN};
pub use gradscope_format::{GradientRow, KIND_OUTPUT};

/// One run: its summary row and whatever per-run files exist.
///
/// A per-run file that is absent is `None` (a run that failed early or was
/// never started); the charts that need it simply have no line for this run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunData {
    /// The run's row of `summary.csv`.
    pub summary: SummaryRow,
    /// Rows of `runs/RUN/metrics.csv`, if the file exists.
    pub metrics: Option<Vec<MetricRow>>,
    /// Rows of `runs/RUN/gradients.csv`, if the file exists.
    pub gradients: Option<Vec<GradientRow>>,
    /// Rows of `runs/RUN/activations.csv`, if the file exists.
    pub activations: Option<Vec<ActivationRow>>,
    /// `runs/RUN/run.json`'s `diverged_at_step`: the step whose loss or
    /// probed gradient was first non-finite, which the charts name beside
    /// a diverged run's ✕. `None` for a run that did not diverge or whose
    /// record does not say.
    pub diverged_at_step: Option<u64>,
}

/// A loaded results directory: every run of `summary.csv`, in its order.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsDir {
    /// The directory that holds `summary.csv`.
    pub root: PathBuf,
    /// One entry per `summary.csv` row, in file order (plan order).
    pub runs: Vec<RunData>,
    /// The first `run.json` that parses, read once: the experiment's name
    /// and settings the charts label themselves with. `None` when no run
    /// folder has one.
    pub record: Option<serde_json::Value>,
    /// The size and text scale to draw the charts at.
    pub style: crate::figure::Style,
}

impl ResultsDir {
    /// Reads `PATH/summary.csv` and, for each of its rows, the CSV files in
    /// `PATH/runs/RUN/`.
    ///
    /// Errors: [`PlotError::NotResultsDir`] when there is no `summary.csv`,
    /// [`PlotError::Csv`] naming the file, line and column of a malformed
    /// record, [`PlotError::Io`] for other read failures.
    pub fn load(path: impl AsRef<Path>) -> Result<ResultsDir, PlotError> {
        let root = path.as_ref().to_path_buf();
        let summary_path = root.join(SUMMARY_CSV);
        let mut summary: Vec<(u64, SummaryRow)> = match read_csv(&summary_path)? {
            Some(rows) => rows,
            None => return Err(PlotError::NotResultsDir { path: root }),
        };
        read_swept_numbers(&summary_path, &mut summary)?;

        let mut runs = Vec::with_capacity(summary.len());
        for (line, row) in summary {
            if !is_plain_dir_name(&row.run) {
                return Err(PlotError::BadRunName {
                    path: summary_path,
                    line,
                    run: row.run,
                });
            }
            let dir = root.join(RUNS_DIR).join(&row.run);
            runs.push(RunData {
                diverged_at_step: diverged_at_step(&dir.join(RUN_JSON)),
                metrics: read_rows(&dir.join(METRICS_CSV))?,
                gradients: read_rows(&dir.join(GRADIENTS_CSV))?,
                activations: read_rows(&dir.join(ACTIVATIONS_CSV))?,
                summary: row,
            });
        }
        let record = runs.iter().find_map(|r| {
            let path = root.join(RUNS_DIR).join(&r.summary.run).join(RUN_JSON);
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
        });
        Ok(ResultsDir {
            root,
            runs,
            record,
            style: Default::default(),
        })
    }

    /// The experiment's task (`classify` or `identity`) from the first
    /// run's `run.json` (`config.task`); `classify` when none says
    /// otherwise. The identity task's error is a relative reconstruction
    /// error, and its charts say so.
    pub fn task(&self) -> String {
        self.config_str("/config/task")
            .unwrap_or_else(|| "classify".to_owned())
    }

    /// The model family (`mlp`, `cnn`, …) from the first run's `run.json`.
    pub fn family(&self) -> Option<String> {
        self.config_str("/config/model/family")
    }

    /// The nonlinearity whose flat part `saturation` and `dead` count: the
    /// MLP's `model.activation`; ReLU for the conv families.
    pub fn activation(&self) -> String {
        // `unknown` when no run.json says (then `saturation` is drawn).
        match self.family().as_deref() {
            Some("mlp") | None => self
                .config_str("/config/model/activation")
                .unwrap_or_else(|| "unknown".to_owned()),
            Some(_) => "relu".to_owned(),
        }
    }

    /// "mlp, sigmoid, init pytorch-default, no norm": the model settings
    /// that matter on a chart, from the first readable `run.json`; empty
    /// when none reads.
    pub fn settings(&self) -> String {
        let Some(family) = self.family() else {
            return String::new();
        };
        // A swept setting is a list in the config: "init pytorch-default or
        // glorot" (each panel or line says which).
        fn value(v: &serde_json::Value) -> String {
            match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(m) if m.contains_key("normal") => format!(
                    "normal(std {})",
                    m["normal"]["std"]
                        .as_f64()
                        .map_or("?".into(), |x| x.to_string())
                ),
                serde_json::Value::Object(m) if m.contains_key("orthogonal") => format!(
                    "orthogonal(gain {})",
                    m["orthogonal"]["gain"].as_f64().unwrap_or(1.0)
                ),
                serde_json::Value::Object(m) if m.contains_key("variance") => format!(
                    "variance(σw² {}, σb² {})",
                    m["variance"]["weight"], m["variance"]["bias"]
                ),
                serde_json::Value::Array(items) => {
                    items.iter().map(value).collect::<Vec<_>>().join(" or ")
                }
                other => other.to_string(),
            }
        }
        let mut parts = vec![family];
        if let Some(a) = self.config_value("/config/model/activation") {
            parts.push(value(&a));
        }
        if let Some(i) = self.config_value("/config/model/init") {
            parts.push(format!("init {}", value(&i)));
        }
        match self
            .config_value("/config/model/norm")
            .map(|n| value(&n))
            .as_deref()
        {
            Some("none") | None => parts.push("no norm".into()),
            Some(n) => parts.push(n.replace("none", "no norm")),
        }
        parts.join(", ")
    }

    /// The JSON value at `pointer` in [`ResultsDir::record`].
    pub(crate) fn config_value(&self, pointer: &str) -> Option<serde_json::Value> {
        self.record.as_ref()?.pointer(pointer).cloned()
    }

    /// A string at `pointer` in [`ResultsDir::record`].
    pub(crate) fn config_str(&self, pointer: &str) -> Option<String> {
        self.config_value(pointer)?.as_str().map(str::to_owned)
    }

    /// Default output directory of the charts, `ROOT/plots`.
    pub fn plots_dir(&self) -> PathBuf {
        self.root.join(PLOTS_DIR)
    }

    /// Distinct groups ([`SummaryRow::group`]: the variant, with the swept
    /// settings where there are any) in order of first appearance in
    /// `summary.csv`, so that the experiment file's order (plain before
    /// residual, then each list's order) is kept.
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for run in &self.runs {
            let group = run.summary.group();
            if !out.contains(&group) {
                out.push(group);
            }
        }
        out
    }

    /// Distinct depths over all runs, ascending.
    pub fn depths(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self.runs.iter().map(|r| r.summary.depth).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `diverged_at_step` of the `run.json` at `path`, if it reads and has one;
/// a record that cannot be read only loses the step from the legend.
fn diverged_at_step(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc.get("diverged_at_step")?.as_u64()
}

/// A run name is used as one path component; anything that could climb out
/// of `runs/` or nest deeper is refused.
fn is_plain_dir_name(name: &str) -> bool {
    gradscope_format::names::is_folder_name(name)
}

/// The swept numeric columns of `summary.csv` (`train.lr`, …), which serde
/// cannot name in advance: read again as plain records, row by row.
fn read_swept_numbers(path: &Path, rows: &mut [(u64, SummaryRow)]) -> Result<(), PlotError> {
    let file = File::open(path).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (mut reader, headers) = headed_reader(path, file)?;
    if !headers.iter().any(|h| h.contains('.')) {
        return Ok(());
    }
    for ((_, row), record) in rows.iter_mut().zip(reader.records()) {
        let record = record.map_err(|e| csv_error(path, Some(&headers), None, e))?;
        row.read_numbers(&headers, &record);
    }
    Ok(())
}

/// A CSV reader over `file` (read from `path`) and its header row.
fn headed_reader(
    path: &Path,
    file: File,
) -> Result<(csv::Reader<io::BufReader<File>>, csv::StringRecord), PlotError> {
    let mut reader = csv::ReaderBuilder::new()
        // Writers may pad with spaces; " NaN" must still parse.
        .trim(csv::Trim::All)
        .from_reader(io::BufReader::new(file));
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, None, None, e))?
        .clone();
    Ok((reader, headers))
}

/// Reads a per-run CSV, dropping the line numbers that only summary.csv needs.
pub(crate) fn read_rows<T: DeserializeOwned>(path: &Path) -> Result<Option<Vec<T>>, PlotError> {
    Ok(read_csv(path)?.map(|rows| rows.into_iter().map(|(_, row)| row).collect()))
}

/// Reads a headed CSV file into typed rows, each with its 1-based line.
/// `Ok(None)` when the file does not exist.
fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Option<Vec<(u64, T)>>, PlotError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PlotError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let (mut reader, headers) = headed_reader(path, file)?;

    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    // Records are read raw first so that each keeps its starting line, which
    // a deserialization error would otherwise not report.
    while reader
        .read_record(&mut record)
        .map_err(|e| csv_error(path, Some(&headers), None, e))?
    {
        let line = record.position().map_or(0, csv::Position::line);
        let row = record
            .deserialize(Some(&headers))
            .map_err(|e| csv_error(path, Some(&headers), Some(line), e))?;
        rows.push((line, row));
    }
    Ok(Some(rows))
}

/// Turns a csv error into one that names the file, line and column.
fn csv_error(
    path: &Path,
    headers: Option<&csv::StringRecord>,
    line: Option<u64>,
    source: csv::Error,
) -> PlotError {
    let line = source.position().map(csv::Position::line).or(line);
    let (column, message) = match source.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let column = err
                .field()
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| headers.and_then(|h| h.get(i)))
                .map(str::to_owned);
            (column, err.kind().to_string())
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => (
            None,
            format!("found {len} fields where the header has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { err, .. } => (
            headers.and_then(|h| h.get(err.field())).map(str::to_owned),
            "invalid UTF-8".to_owned(),
        ),
        _ => (None, source.to_string()),
    };
    PlotError::Csv {
        path: path.to_path_buf(),
        line,
        column,
        message,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_that_leave_runs_dir_are_refused() {
        assert!(is_plain_dir_name("plain-d32-s0"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b"] {
            assert!(!is_plain_dir_name(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn rows_carry_their_line_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            "step,epoch,split,loss,error,lr,elapsed_s\n\
             0,0,train,2.3,0.9,0.1,0.5\n\
             10,0,train,NaN,inf,,1.0\n",
        )
        .expect("write");
        let rows: Vec<(u64, MetricRow)> = read_csv(&path).expect("parse").expect("exists");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[1].0, 3);
        assert!(rows[1].1.loss.is_some_and(f64::is_nan));
        assert_eq!(rows[1].1.error, Some(f64::INFINITY));
        assert_eq!(rows[1].1.lr, None);
    }
}
