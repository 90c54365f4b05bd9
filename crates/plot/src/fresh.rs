//! Whether the charts in `plots/` still show the files they were drawn
//! from.
//!
//! [`render_all`](crate::render_all) records what it drew from in
//! `plots/inputs.json`: the size and an FNV-1a 64-bit hash of `summary.csv`
//! and, for every run listed there, of `runs/RUN/run.json`, `metrics.csv`,
//! `gradients.csv` and `activations.csv`. [`check`] compares that record
//! with the files on disk now.
//!
//! Content, not modification times: a `git checkout` or a copy gives every
//! file a new mtime (published results would look stale, or fresh, at
//! random), and two sweeps that run within the file system's timestamp
//! granularity would look alike. Reading the files costs about what loading
//! them for the charts costs, and only `gradscope report` asks.
//!
//! The rule: the charts are stale when a recorded file changed, or a file
//! appeared that the record lacks (a new run, or CSV files that were not
//! there). A recorded file that is now *absent* does not make them stale:
//! the per-step CSVs of published results are not committed, and redrawing
//! from less data than the charts were drawn from would only lose lines.

use gradscope_format::files::{
    ACTIVATIONS_CSV, GRADIENTS_CSV, METRICS_CSV, PLOTS_DIR, RUN_JSON, SUMMARY_CSV,
};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::PlotError;
use crate::figure::Style;

pub use gradscope_format::files::INPUTS_FILE;

/// The per-run files a chart may read, besides `summary.csv`. `run.json`
/// is not read by the charts, but it names the attempt: a run trained
/// again has a new one even where its CSVs came out byte-identical.
pub const RUN_FILES: [&str; 4] = [RUN_JSON, METRICS_CSV, GRADIENTS_CSV, ACTIVATIONS_CSV];

/// One input file: its length and content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMark {
    pub bytes: u64,
    pub fnv1a64: u64,
}

/// The inputs of a results directory's charts, by path relative to it
/// (`summary.csv`, `runs/plain-d4-s0/gradients.csv`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub files: BTreeMap<String, FileMark>,
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Every chart exists and its inputs are as recorded.
    UpToDate,
    /// A chart's PNG or SVG is missing (named).
    Missing(String),
    /// The charts exist but there is no record of their inputs (drawn by a
    /// gradscope older than the record, or copied without it).
    NoRecord,
    /// An input changed or appeared since the charts were drawn; the
    /// string names the first such file and which it is
    /// (`summary.csv changed`, `runs/plain-d8-s0/gradients.csv is new`).
    Stale(String),
}

impl Freshness {
    /// Whether the charts should be drawn again.
    pub fn needs_drawing(&self) -> bool {
        !matches!(self, Freshness::UpToDate)
    }

    /// Why the charts need drawing, for a message; empty when they do not.
    pub fn reason(&self) -> String {
        match self {
            Freshness::UpToDate => String::new(),
            Freshness::Missing(f) => format!("plots/{f} is missing"),
            Freshness::NoRecord => {
                format!("plots/{INPUTS_FILE} does not say what they were drawn from")
            }
            Freshness::Stale(f) => format!("{f} since they were drawn"),
        }
    }
}

/// FNV-1a, 64 bits: a hash that is the same on every platform and every
/// Rust version (std's `DefaultHasher` promises neither), which a record
/// kept on disk needs. It only tells changed files apart; nothing here
/// guards against a file crafted to collide.
fn fnv1a64(reader: &mut dyn Read) -> io::Result<(u64, u64)> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        bytes += n as u64;
    }
    Ok((bytes, hash))
}

/// The mark of `path`, or `None` when it does not exist.
fn mark(path: &Path) -> Result<Option<FileMark>, PlotError> {
    let io_err = |source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let (bytes, fnv1a64) = fnv1a64(&mut file).map_err(io_err)?;
    Ok(Some(FileMark { bytes, fnv1a64 }))
}

/// The run names of `summary.csv`, in order, read leniently (only the
/// `run` column): whether the rest parses is the loader's business.
fn summary_runs(root: &Path) -> Result<Vec<String>, PlotError> {
    let path = root.join(SUMMARY_CSV);
    let mut reader = match csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(&path)
    {
        Ok(r) => r,
        Err(e) => match e.kind() {
            csv::ErrorKind::Io(io) if io.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            _ => {
                return Err(PlotError::Io {
                    path,
                    source: io::Error::other(e.to_string()),
                })
            }
        },
    };
    let col = reader
        .headers()
        .ok()
        .and_then(|h| h.iter().position(|c| c == "run"));
    let Some(col) = col else {
        return Ok(Vec::new());
    };
    Ok(reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|r| r.get(col).map(str::to_owned))
        // The same guard as the loader: a name that climbs out of runs/ is
        // not an input (the loader refuses the directory).
        .filter(|n| !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\\', '\0']))
        .collect())
}

/// Hashes the files the charts of `root` are drawn from, as they are now.
pub fn inputs(root: &Path) -> Result<Inputs, PlotError> {
    let mut files = BTreeMap::new();
    if let Some(m) = mark(&root.join(SUMMARY_CSV))? {
        files.insert(SUMMARY_CSV.to_owned(), m);
    }
    for run in summary_runs(root)? {
        for f in RUN_FILES {
            let rel = format!("runs/{run}/{f}");
            if let Some(m) = mark(&root.join(&rel))? {
                files.insert(rel, m);
            }
        }
    }
    Ok(Inputs { files })
}

impl Inputs {
    /// Whether any per-step CSV file is among them (the charts draw lines
    /// only from those; `summary.csv` alone gives chart (b) and "no data"
    /// panels).
    pub fn has_run_csvs(&self) -> bool {
        self.files
            .keys()
            .any(|k| k.ends_with(".csv") && k != SUMMARY_CSV)
    }

    /// The first file that is new or changed in `now` against this record
    /// (`summary.csv` first, the most telling), as "FILE changed" or "FILE
    /// is new"; files of the record that `now` lacks do not count (see the
    /// module docs).
    pub fn first_change(&self, now: &Inputs) -> Option<String> {
        let summary = now.files.get_key_value(SUMMARY_CSV);
        summary
            .into_iter()
            .chain(now.files.iter())
            .find(|(k, m)| self.files.get(*k) != Some(m))
            .map(|(k, _)| match self.files.contains_key(k) {
                true => format!("{k} changed"),
                false => format!("{k} is new"),
            })
    }

    fn to_json(&self, style: &Style) -> String {
        let files: serde_json::Map<String, serde_json::Value> = self
            .files
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    serde_json::json!({"bytes": m.bytes, "fnv1a64": format!("{:016x}", m.fnv1a64)}),
                )
            })
            .collect();
        let doc = serde_json::json!({
            "about": "What the charts of this folder were drawn from (gradscope report redraws them when one of these files changes or a run's file appears).",
            "files": files,
            // The size the charts were drawn at, so that a redraw by
            // `gradscope report` keeps it.
            "style": style,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    /// Parses a record; `None` when it is not one (then the charts count as
    /// unrecorded and are drawn again).
    fn from_json(text: &str) -> Option<Inputs> {
        let doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let mut files = BTreeMap::new();
        for (k, v) in doc.get("files")?.as_object()? {
            let bytes = v.get("bytes")?.as_u64()?;
            let hash = u64::from_str_radix(v.get("fnv1a64")?.as_str()?, 16).ok()?;
            files.insert(
                k.clone(),
                FileMark {
                    bytes,
                    fnv1a64: hash,
                },
            );
        }
        Some(Inputs { files })
    }
}

/// Reads `plots/inputs.json`, if there is a readable one.
pub fn recorded(root: &Path) -> Option<Inputs> {
    let text = std::fs::read_to_string(root.join(PLOTS_DIR).join(INPUTS_FILE)).ok()?;
    Inputs::from_json(&text)
}

/// The size and text scale the charts of `root` were last drawn at
/// (`plots/inputs.json`); the default when none is recorded.
pub fn recorded_style(root: &Path) -> Style {
    std::fs::read_to_string(root.join(PLOTS_DIR).join(INPUTS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|doc| serde_json::from_value(doc.get("style")?.clone()).ok())
        .unwrap_or_default()
}

/// Writes `plots/inputs.json` durably and atomically.
pub(crate) fn record(
    plots_dir: &Path,
    inputs: &Inputs,
    style: &Style,
) -> Result<PathBuf, PlotError> {
    let path = plots_dir.join(INPUTS_FILE);
    gradscope_format::durable::write_atomic(&path, inputs.to_json(style).as_bytes())
        .map_err(|(path, source)| PlotError::Io { path, source })?;
    Ok(path)
}

/// Whether the charts of `root` exist and show its files as they are now.
pub fn check(root: &Path) -> Result<Freshness, PlotError> {
    let plots = root.join(PLOTS_DIR);
    for name in crate::CHART_NAMES {
        for ext in ["png", "svg"] {
            let f = format!("{name}.{ext}");
            if !plots.join(&f).is_file() {
                return Ok(Freshness::Missing(f));
            }
        }
    }
    let Some(record) = recorded(root) else {
        return Ok(Freshness::NoRecord);
    };
    Ok(match record.first_change(&inputs(root)?) {
        Some(f) => Freshness::Stale(f),
        None => Freshness::UpToDate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference (Fowler, Noll, Vo): "" and "a", 64-bit FNV-1a.
        let h = |s: &str| fnv1a64(&mut s.as_bytes()).unwrap();
        assert_eq!(h(""), (0, 0xcbf2_9ce4_8422_2325));
        assert_eq!(h("a"), (1, 0xaf63_dc4c_8601_ec8c));
        assert_eq!(h("foobar"), (6, 0x8594_4171_f739_67e8));
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn a_changed_or_new_file_is_a_change_and_a_vanished_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "summary.csv", "run,variant\nplain-d4-s0,plain\n");
        write(root, "runs/plain-d4-s0/run.json", "{}");
        write(root, "runs/plain-d4-s0/gradients.csv", "step\n0\n");
        // Not listed in summary.csv: not an input.
        write(root, "runs/other-d4-s0/gradients.csv", "step\n0\n");
        let before = inputs(root).unwrap();
        assert_eq!(
            before.files.keys().collect::<Vec<_>>(),
            [
                "runs/plain-d4-s0/gradients.csv",
                "runs/plain-d4-s0/run.json",
                "summary.csv"
            ]
        );
        assert!(before.has_run_csvs());
        let round = Inputs::from_json(&before.to_json(&Style::default())).unwrap();
        assert_eq!(round, before);
        assert_eq!(before.first_change(&inputs(root).unwrap()), None);

        std::fs::remove_file(root.join("runs/plain-d4-s0/gradients.csv")).unwrap();
        assert_eq!(before.first_change(&inputs(root).unwrap()), None);

        write(root, "runs/plain-d4-s0/metrics.csv", "step\n0\n");
        assert_eq!(
            before.first_change(&inputs(root).unwrap()).as_deref(),
            Some("runs/plain-d4-s0/metrics.csv is new")
        );
        write(root, "summary.csv", "run,variant\nplain-d4-s0,residual\n");
        assert_eq!(
            before.first_change(&inputs(root).unwrap()).as_deref(),
            Some("summary.csv changed")
        );
    }
}
