//! Loading the runs of a results directory for the report: every
//! `runs/RUN/run.json`, read leniently (a field that is absent or of the
//! wrong type is `None`, not an error), the runs the experiment planned but
//! that have no folder, and the per-run CSV files through gradscope-plot.

use gradscope_format::files::{RUNS_DIR, RUN_JSON, SUMMARY_CSV};
use std::path::Path;

use gradscope_format::names::{describe, pointer, run_name, SWEPT_FIELDS};
use gradscope_plot::{ResultsDir, RunData};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::ReportError;

// One definition for the writer and every reader (gradscope-format).
pub use gradscope_format::run::{FinalMetrics, GradientEnds};

/// run.json read leniently (gradscope-format's [`gradscope_format::run::RunJson`]):
/// every field optional, the experiment kept as JSON, since the report only
/// looks up a few of its fields (`model.family`, `model.norm`, …).
pub type RunJson = gradscope_format::run::RunJson<Value>;

/// `completed` in run.json.
pub const COMPLETED: &str = gradscope_format::run::Status::Completed.as_str();

/// One run of the report: a folder under `runs/`, or a planned run that has
/// none.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// `VARIANT-dDEPTH-sSEED`.
    pub name: String,
    pub variant: String,
    /// The run's values of the swept settings; empty when nothing is swept.
    pub swept: BTreeMap<String, String>,
    pub depth: u32,
    pub seed: u64,
    /// The parsed run.json, when there is one that parses.
    pub record: Option<RunJson>,
    /// Why this run is incomplete, e.g. "no run.json"; `None` for a
    /// completed run.
    pub problem: Option<String>,
}

impl RunEntry {
    /// The status shown in the table.
    pub fn status(&self) -> &str {
        match &self.record {
            Some(r) => r.status.as_deref().unwrap_or("unknown"),
            None if self.problem.as_deref() == Some(NOT_STARTED) => "not started",
            None => "no run.json",
        }
    }

    pub fn is_completed(&self) -> bool {
        self.status() == COMPLETED
    }
}

const NOT_STARTED: &str = "planned by the experiment but has no folder under runs/";

/// A loaded results directory.
#[derive(Debug)]
pub struct Loaded {
    /// Run folders and planned-but-missing runs, in plan order (depth, then
    /// variant, then seed) where the plan is known.
    pub entries: Vec<RunEntry>,
    /// The per-run CSV files (via summary.csv), when they load.
    pub csv: Option<ResultsDir>,
    /// Why the CSV files did not load, if they did not.
    pub csv_problem: Option<String>,
}

/// "tanh, init glorot, no norm": a combination of swept settings as the
/// report's headings and the charts' panels name it.
pub fn sweep_label(swept: &BTreeMap<String, String>) -> String {
    SWEPT_FIELDS
        .iter()
        .filter_map(|f| swept.get(*f).map(|v| describe(f, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Loaded {
    /// The combinations of swept settings among the runs, in plan order;
    /// a single empty one when the experiment sweeps nothing.
    pub fn sweep_groups(&self) -> Vec<BTreeMap<String, String>> {
        let mut out: Vec<BTreeMap<String, String>> = Vec::new();
        for e in &self.entries {
            if !out.contains(&e.swept) {
                out.push(e.swept.clone());
            }
        }
        if out.is_empty() {
            out.push(BTreeMap::new());
        }
        out
    }

    /// The runs of one combination of swept settings, with their CSV rows:
    /// what each section of a swept report compares within.
    pub fn only(&self, swept: &BTreeMap<String, String>) -> Loaded {
        let entries: Vec<RunEntry> = self
            .entries
            .iter()
            .filter(|e| e.swept == *swept)
            .cloned()
            .collect();
        let csv = self.csv.as_ref().map(|c| {
            let mut c = c.clone();
            c.runs
                .retain(|r| entries.iter().any(|e| e.name == r.summary.run));
            c
        });
        Loaded {
            entries,
            csv,
            csv_problem: self.csv_problem.clone(),
        }
    }

    /// A model setting (`activation`, `init`, `norm`) of these runs, as
    /// the experiment file writes it: the swept value where every run here
    /// has the same one (a group of a swept report), else the config's
    /// single value; `None` when the runs differ or the config lacks it.
    pub fn setting(&self, field: &str) -> Option<String> {
        let mut swept = self.entries.iter().map(|e| e.swept.get(field));
        if let Some(Some(first)) = swept.next() {
            return swept.all(|v| v == Some(first)).then(|| first.clone());
        }
        match self.config()?.pointer(&format!("/model/{field}"))? {
            Value::Array(_) => None,
            v => Some(setting_label(v)),
        }
    }

    /// The first run.json that parsed: the experiment's description.
    pub fn first_record(&self) -> Option<&RunJson> {
        self.entries.iter().find_map(|e| e.record.as_ref())
    }

    /// The resolved experiment config of the first readable run.json.
    pub fn config(&self) -> Option<&Value> {
        self.first_record().and_then(|r| r.config.as_ref())
    }

    /// One line per incomplete run and per unreadable file.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| e.problem.as_ref().map(|p| format!("{}: {p}", e.name)))
            .collect();
        if let Some(p) = &self.csv_problem {
            out.push(p.clone());
        }
        out
    }

    /// The CSV rows of a run, by name.
    pub fn csv_run(&self, name: &str) -> Option<&RunData> {
        self.csv
            .as_ref()
            .and_then(|c| c.runs.iter().find(|r| r.summary.run == name))
    }

    /// Variants in the experiment's order (or first appearance).
    pub fn variants(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(list) = self
            .config()
            .and_then(|c| c.get("variants"))
            .and_then(Value::as_array)
        {
            out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        for e in &self.entries {
            if !out.contains(&e.variant) {
                out.push(e.variant.clone());
            }
        }
        out
    }

    /// Depths present, ascending.
    pub fn depths(&self) -> Vec<u32> {
        let mut d: Vec<u32> = self.entries.iter().map(|e| e.depth).collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// Entries of one variant at one depth, in seed order.
    pub fn group(&self, variant: &str, depth: u32) -> Vec<&RunEntry> {
        let mut g: Vec<&RunEntry> = self
            .entries
            .iter()
            .filter(|e| e.variant == variant && e.depth == depth)
            .collect();
        g.sort_by_key(|e| e.seed);
        g
    }
}

/// Splits `plain-d32-s0` into (`plain`, 32, 0).
pub fn parse_run_name(name: &str) -> Option<(String, u32, u64)> {
    let (rest, seed) = name.rsplit_once("-s")?;
    let (variant, depth) = rest.rsplit_once("-d")?;
    if variant.is_empty() {
        return None;
    }
    Some((variant.to_owned(), depth.parse().ok()?, seed.parse().ok()?))
}

/// Reads every run folder of `root/runs`, adds the planned runs that have
/// none, and loads the CSV files when summary.csv is there.
pub fn load(root: &Path) -> Result<Loaded, ReportError> {
    let runs_dir = root.join(RUNS_DIR);
    let io = |source| ReportError::Io {
        path: runs_dir.clone(),
        source,
    };
    let mut names: Vec<String> = Vec::new();
    for item in std::fs::read_dir(&runs_dir).map_err(io)? {
        let item = item.map_err(io)?;
        if item.path().is_dir() {
            names.push(item.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();

    let mut entries = Vec::new();
    for name in names {
        let json = runs_dir.join(&name).join(RUN_JSON);
        let (record, mut problem) = match std::fs::read_to_string(&json) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                None,
                Some("no run.json (the run never started or its folder was damaged)".to_owned()),
            ),
            Err(e) => (None, Some(format!("{}: {e}", json.display()))),
            Ok(text) => match serde_json::from_str::<RunJson>(&text) {
                Ok(r) => (Some(r), None),
                Err(e) => (
                    None,
                    Some(format!("{} does not parse: {e}", json.display())),
                ),
            },
        };
        let from_name = parse_run_name(&name);
        let variant = record
            .as_ref()
            .and_then(|r| r.variant.clone())
            .or_else(|| from_name.as_ref().map(|n| n.0.clone()));
        let depth = record
            .as_ref()
            .and_then(|r| r.depth)
            .or(from_name.as_ref().map(|n| n.1));
        let seed = record
            .as_ref()
            .and_then(|r| r.seed)
            .or(from_name.as_ref().map(|n| n.2));
        let (Some(variant), Some(depth), Some(seed)) = (variant, depth, seed) else {
            // Not a run folder of ours (no record, no run name): say so.
            entries.push(RunEntry {
                name: name.clone(),
                variant: "?".into(),
                swept: BTreeMap::new(),
                depth: 0,
                seed: 0,
                record: None,
                problem: Some(problem.unwrap_or_else(|| {
                    "run.json lacks variant, depth or seed and the folder name is not VARIANT-dDEPTH-sSEED".into()
                })),
            });
            continue;
        };
        if let Some(r) = &record {
            problem = status_problem(r);
        }
        let swept = record.as_ref().map(|r| r.swept.clone()).unwrap_or_default();
        entries.push(RunEntry {
            name,
            variant,
            swept,
            depth,
            seed,
            record,
            problem,
        });
    }

    let settings = add_planned(&mut entries);
    // Plan order: depth, variant, the swept settings in the file's order,
    // seed.
    let rank = |e: &RunEntry| settings.iter().position(|s| *s == e.swept);
    entries.sort_by(|a, b| {
        (a.depth, &a.variant, rank(a), a.seed).cmp(&(b.depth, &b.variant, rank(b), b.seed))
    });

    let (csv, csv_problem) = if root.join(SUMMARY_CSV).is_file() {
        match ResultsDir::load(root) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(format!("per-run CSV files not read: {e}"))),
        }
    } else {
        (
            None,
            Some(format!(
                "{}: no summary.csv, so the per-layer sections are left out",
                root.display()
            )),
        )
    };
    Ok(Loaded {
        entries,
        csv,
        csv_problem,
    })
}

/// What is wrong with a run whose record parsed, by its status.
fn status_problem(r: &RunJson) -> Option<String> {
    let steps = match (r.steps_done, r.steps_planned) {
        (Some(d), Some(p)) => format!(" after {d} of {p} steps"),
        _ => String::new(),
    };
    match r.status.as_deref() {
        Some(COMPLETED) => None,
        Some("running") => Some(format!(
            "status running{steps}: still training, or killed before it could write its final record"
        )),
        Some("interrupted") => Some(format!("interrupted (Ctrl-C or SIGTERM){steps}")),
        Some("diverged") => Some(format!(
            "diverged (loss or gradient became NaN/inf){}",
            r.diverged_at_step
                .map(|s| format!(" at step {s}"))
                .unwrap_or_default()
        )),
        Some("failed") => Some(format!(
            "failed: {}",
            r.error.as_deref().unwrap_or("no error recorded")
        )),
        Some(other) => Some(format!("unknown status {other:?}")),
        None => Some("run.json has no status".into()),
    }
}

/// Adds an entry for every run of the plan (variants × depths × seeds of the
/// first readable config) that has no folder.
/// Adds the runs the experiment plans that have no folder, and returns the
/// swept settings' combinations in plan order (one empty map when nothing
/// is swept).
fn add_planned(entries: &mut Vec<RunEntry>) -> Vec<BTreeMap<String, String>> {
    let Some(config) = entries
        .iter()
        .find_map(|e| e.record.as_ref().and_then(|r| r.config.clone()))
    else {
        return vec![BTreeMap::new()];
    };
    let list = |key: &str| -> Vec<Value> {
        config
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let settings = swept_settings(&config);
    for depth in list("depths").iter().filter_map(Value::as_u64) {
        for variant in list("variants").iter().filter_map(Value::as_str) {
            for setting in &settings {
                for seed in list("seeds").iter().filter_map(Value::as_u64) {
                    let swept: Vec<(&str, String)> = setting
                        .iter()
                        .map(|(f, v)| (f.as_str(), v.clone()))
                        .collect();
                    let name = run_name(variant, &swept, depth as usize, seed);
                    if entries.iter().any(|e| e.name == name) {
                        continue;
                    }
                    let Ok(depth) = u32::try_from(depth) else {
                        continue;
                    };
                    entries.push(RunEntry {
                        name,
                        variant: variant.to_owned(),
                        swept: setting.clone(),
                        depth,
                        seed,
                        record: None,
                        problem: Some(NOT_STARTED.to_owned()),
                    });
                }
            }
        }
    }
    settings
}

/// A model setting's value as summary.csv and run names write it
/// (gradscope-models' `Label`): `"glorot"`, `{"normal": {"std": 0.05}}` as
/// `normal0.05`, `{"orthogonal": {"gain": 2}}` as `orthogonal2`,
/// `{"variance": {"weight": 2, "bias": 0.05}}` as `variance-w2-b0.05`.
pub fn setting_label(value: &Value) -> String {
    let num = |v: &Value| v.as_f64().map_or("?".into(), |x| x.to_string());
    match value {
        Value::String(s) => s.clone(),
        Value::Object(m) if m.contains_key("orthogonal") => {
            match m["orthogonal"].get("gain").and_then(Value::as_f64) {
                None | Some(1.0) => "orthogonal".to_string(),
                Some(g) => format!("orthogonal{g}"),
            }
        }
        Value::Object(m) if m.contains_key("variance") => format!(
            "variance-w{}-b{}",
            num(&m["variance"]["weight"]),
            num(&m["variance"]["bias"])
        ),
        Value::Object(m) if m.contains_key("normal") => format!(
            "normal{}",
            m["normal"]["std"]
                .as_f64()
                .map_or("?".into(), |x| x.to_string())
        ),
        other => other.to_string(),
    }
}

/// Every combination of the swept settings (the fields the config gives as
/// a list), in [`SWEPT_FIELDS`] order (activation outermost), in each
/// list's order.
fn swept_settings(config: &Value) -> Vec<BTreeMap<String, String>> {
    let mut out = vec![BTreeMap::new()];
    for field in SWEPT_FIELDS {
        let Some(Value::Array(values)) = config.pointer(&pointer(field)) else {
            continue;
        };
        if values.len() < 2 {
            continue;
        }
        out = out
            .into_iter()
            .flat_map(|base| {
                values.iter().map(move |v| {
                    let mut s = base.clone();
                    s.insert(field.to_string(), setting_label(v));
                    s
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_split_into_variant_depth_seed() {
        assert_eq!(
            parse_run_name("plain-d32-s0"),
            Some(("plain".into(), 32, 0))
        );
        // A variant may itself contain dashes.
        assert_eq!(
            parse_run_name("pre-act-d8-s12"),
            Some(("pre-act".into(), 8, 12))
        );
        for bad in ["plain", "plain-d-s0", "-d4-s0", "plain-dx-s1"] {
            assert_eq!(parse_run_name(bad), None, "{bad}");
        }
    }

    /// Records from other versions or cut short still read: unknown
    /// fields are ignored and missing ones are None.
    #[test]
    fn run_json_reads_leniently() {
        let r: RunJson = serde_json::from_str(
            r#"{"status": "completed", "depth": 8, "final": {"train_error": 0.1, "test_error": null}, "new_field": 1}"#,
        )
        .unwrap();
        assert_eq!(r.depth, Some(8));
        assert_eq!(r.final_metrics.train_error, Some(0.1));
        assert_eq!(r.final_metrics.test_error, None);
        assert_eq!(r.gradient_ends.init_ratio(), None);
    }

    #[test]
    fn gradient_ratios_need_a_positive_last_value() {
        let g = GradientEnds {
            decay_init: None,
            decay_final: None,
            decay_theory: None,
            spread_init: None,
            spread_final: None,
            trunk_points: Vec::new(),
            init_first: Some(1e-6),
            init_last: Some(1e-2),
            final_step: Some(9),
            final_first: Some(0.0),
            final_last: Some(0.0),
            ..GradientEnds::default()
        };
        assert!((g.init_ratio().unwrap() - 1e-4).abs() < 1e-12);
        assert_eq!(g.final_ratio(), None);
    }
}
