//! What a results directory already holds, read before a sweep writes into
//! it: which experiment each run folder belongs to, and whether it was
//! trained with the settings the experiment file gives now.
//!
//! Run names (`plain-d4-s0`) say nothing about the experiment, so two
//! experiments sent to one `--out` share them. Each folder's `run.json`
//! records the experiment's `name` and its resolved `config`; that is what
//! lets `gradscope run` say "this folder holds experiment A" instead of
//! taking A's runs for its own.

use crate::spec::Experiment;
use crate::TrainError;
use gradscope_format::files::RUN_JSON;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// One folder of `runs/` (`RUN`, `RUN.partial` or `RUN.old`).
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The folder's name.
    pub folder: String,
    /// The run it holds: the folder name without `.partial` or `.old`.
    pub run: String,
    /// The experiment its `run.json` names; `None` when there is no
    /// readable `run.json` (a run killed before its first write).
    pub experiment: Option<String>,
    /// The experiment file its `run.json` names, when recorded.
    pub experiment_file: Option<String>,
    /// Settings (dotted paths such as `model.init`) in which its recorded
    /// config differs from the experiment's; empty when none do, `None`
    /// when it has no readable config.
    pub differs: Option<Vec<String>>,
}

/// Every folder of `runs/` that is a run's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holdings {
    pub runs: Vec<Held>,
}

/// The settings that make a run what it is, as JSON: the experiment without
/// the fields that only list or describe the runs (a sweep may be extended
/// with more depths, seeds or variants and resumed).
pub(crate) fn run_settings(exp: &Experiment) -> serde_json::Map<String, Value> {
    settings_of(serde_json::to_value(exp).unwrap_or(Value::Null))
}

/// The settings (dotted paths, as [`differing_paths`] names them) in
/// which `theirs` trains something other than `ours`; empty when a run of
/// one is a run of the other.
pub(crate) fn changed_settings(ours: &Experiment, theirs: &Experiment) -> Vec<String> {
    let mut fields = Vec::new();
    differing_paths(
        &Value::Object(run_settings(ours)),
        &Value::Object(run_settings(theirs)),
        "",
        &mut fields,
    );
    fields
}

fn settings_of(value: Value) -> serde_json::Map<String, Value> {
    let mut v = match value {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for k in ["name", "description", "variants", "depths", "seeds"] {
        v.remove(k);
    }
    // How often a run saves a checkpoint does not change what it trains.
    if let Some(Value::Object(train)) = v.get_mut("train") {
        train.remove("checkpoint_every");
    }
    v
}

/// The dotted paths at which two JSON values differ (`model.init`,
/// `train.lr`), objects compared key by key, anything else whole.
pub(crate) fn differing_paths(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                differing_paths(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &path,
                    out,
                );
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// Splits `plain-d4-s0.partial` into the run name and whether the folder
/// looks like a run's at all (`VARIANT-dDEPTH-sSEED`, optionally suffixed).
fn run_name(folder: &str) -> Option<String> {
    let run = gradscope_format::files::run_of_folder(folder);
    let (rest, seed) = run.rsplit_once("-s")?;
    let (variant, depth) = rest.rsplit_once("-d")?;
    (!variant.is_empty() && depth.parse::<usize>().is_ok() && seed.parse::<u64>().is_ok())
        .then(|| run.to_string())
}

impl Holdings {
    /// Reads every run folder of `runs_dir` (none when it does not exist),
    /// comparing each recorded config with `exp`'s. Folders that are not a
    /// run's (no run name, no `run.json`) are left out: they are not ours
    /// to judge or delete.
    pub fn scan(runs_dir: &Path, exp: &Experiment) -> Result<Holdings, TrainError> {
        let entries = match std::fs::read_dir(runs_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Holdings::default()),
            Err(e) => return Err(TrainError::io(runs_dir)(e)),
        };
        let ours = Value::Object(run_settings(exp));
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(TrainError::io(runs_dir))?;
            if !entry.path().is_dir() {
                continue;
            }
            let folder = entry.file_name().to_string_lossy().into_owned();
            let record: Option<Value> = std::fs::read_to_string(entry.path().join(RUN_JSON))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            let Some(run) = run_name(&folder).or_else(|| {
                record
                    .as_ref()
                    .and_then(|r| r.get("run")?.as_str().map(str::to_string))
            }) else {
                continue;
            };
            let text = |k: &str| {
                record
                    .as_ref()
                    .and_then(|r| r.get(k)?.as_str().map(str::to_string))
            };
            let differs = record.as_ref().and_then(|r| r.get("config")).map(|c| {
                // Parsed as an experiment first, so that fields an older
                // gradscope did not write compare as their defaults.
                let theirs = serde_json::from_value::<Experiment>(c.clone())
                    .map(|e| run_settings(&e))
                    .unwrap_or_else(|_| settings_of(c.clone()));
                let mut paths = Vec::new();
                differing_paths(&ours, &Value::Object(theirs), "", &mut paths);
                paths
            });
            runs.push(Held {
                folder,
                run,
                experiment: text("experiment"),
                experiment_file: text("experiment_file"),
                differs,
            });
        }
        runs.sort_by(|a, b| a.folder.cmp(&b.folder));
        Ok(Holdings { runs })
    }

    /// Folders whose `run.json` names another experiment than `name`.
    pub fn others(&self, name: &str) -> Vec<&Held> {
        self.runs
            .iter()
            .filter(|h| h.experiment.as_deref().is_some_and(|e| e != name))
            .collect()
    }

    /// Folders of experiment `name` (by `run.json`) or, without a readable
    /// `run.json`, whose run is one of `planned`.
    pub fn ours<'a>(&'a self, name: &str, planned: &[String]) -> Vec<&'a Held> {
        self.runs
            .iter()
            .filter(|h| match &h.experiment {
                Some(e) => e == name,
                None => planned.contains(&h.run),
            })
            .collect()
    }

    /// The settings in which any of `held` differs from the experiment,
    /// sorted, each once.
    pub fn changed_settings(held: &[&Held]) -> Vec<String> {
        let set: BTreeSet<&String> = held
            .iter()
            .flat_map(|h| h.differs.iter().flatten())
            .collect();
        set.into_iter().cloned().collect()
    }

    /// "4 run(s) of experiment "a" (from exp-a.json; its settings differ in
    /// model.init)", one clause per experiment, for messages.
    pub fn describe(held: &[&Held]) -> String {
        let mut names: Vec<&str> = Vec::new();
        for h in held {
            let n = h.experiment.as_deref().unwrap_or("?");
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let parts: Vec<String> = names
            .iter()
            .map(|n| {
                let of: Vec<&&Held> = held
                    .iter()
                    .filter(|h| h.experiment.as_deref().unwrap_or("?") == *n)
                    .collect();
                let files: BTreeSet<&str> = of
                    .iter()
                    .filter_map(|h| h.experiment_file.as_deref())
                    .collect();
                let differs =
                    Holdings::changed_settings(&of.iter().map(|h| **h).collect::<Vec<_>>());
                let mut detail = Vec::new();
                if !files.is_empty() {
                    detail.push(format!(
                        "from {}",
                        files.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
                if !differs.is_empty() {
                    detail.push(format!(
                        "its settings differ in {}",
                        crate::sweep::list_some(&differs)
                    ));
                }
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", detail.join("; "))
                };
                format!("{} run(s) of experiment {n:?}{detail}", of.len())
            })
            .collect();
        parts.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differing_paths_name_the_leaf_that_changed() {
        let a = json!({"model": {"init": "glorot", "width": 16}, "train": {"lr": 0.1}});
        let b = json!({"model": {"init": {"normal": {"std": 0.05}}, "width": 16}, "train": {"lr": 0.1}, "task": "identity"});
        let mut out = Vec::new();
        differing_paths(&a, &b, "", &mut out);
        assert_eq!(out, ["model.init", "task"]);
    }

    #[test]
    fn run_folders_are_told_by_name() {
        assert_eq!(run_name("plain-d4-s0").as_deref(), Some("plain-d4-s0"));
        assert_eq!(
            run_name("residual-d16-s3.partial").as_deref(),
            Some("residual-d16-s3")
        );
        assert_eq!(run_name("plain-d4-s0.old").as_deref(), Some("plain-d4-s0"));
        for not in ["notes", "plain-dx-s0", "-d4-s0", "plain-d4"] {
            assert_eq!(run_name(not), None, "{not}");
        }
    }
}
