//! `gradscope merge DIR... --out OUT`: the runs of several results
//! directories (the shards of one sweep) gathered into one.
//!
//! Every run folder of every `DIR/runs/` is a candidate. Copies of one run
//! must have been trained with the same settings (else the merge is
//! refused, naming the run and the fields); of several copies the merge
//! takes a `completed` one, then a `diverged` one, then the one with the
//! most steps. Each chosen run is copied to `OUT/runs/RUN.partial/` and
//! renamed into place, so a merge cut short leaves every run whole; a run
//! whose files are already there byte for byte is left alone, which makes
//! merging again idempotent. `summary.csv` is then written in the
//! experiment's plan order, and the runs that no directory has are listed.
//!
//! Like `gradscope run`, the merge holds `OUT`'s lock while it writes.
//!
//! Shards come from other machines and other people, so nothing read from
//! them is a path: a run's name is its folder's name, a `run.json` whose
//! `run` says otherwise (`../../elsewhere`, an absolute path, another
//! run's name) or that the plan does not have is refused, every folder the
//! merge writes is checked to lie inside `OUT/runs/`, and only regular
//! files are copied (a symbolic link is refused by name, not followed).
//! What a merge killed between its renames left (`RUN.partial/`,
//! `RUN.old/`) is put right before anything else is written.

use gradscope_format::files::{RUNS_DIR, RUN_JSON, SUMMARY_CSV};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::holdings::changed_settings;
use crate::lock::{Holder, ResultsLock};
use crate::plan::plan;
use crate::record::{read_record, write_summary, RunRecord, Status};
use crate::spec::Experiment;
use crate::TrainError;

/// What a merge did.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The experiment's name.
    pub experiment: String,
    /// Runs now in `OUT/runs/` that the plan has, in plan order.
    pub runs: Vec<String>,
    /// Runs copied (new, or replacing a different copy) by this merge.
    pub copied: Vec<String>,
    /// Planned runs that no directory had.
    pub missing: Vec<String>,
    /// `OUT/summary.csv`.
    pub summary: PathBuf,
}

/// One run folder found in one of the directories.
struct Candidate {
    dir: PathBuf,
    record: RunRecord,
}

/// Merges the runs of `dirs` into `out` (see the module's text).
pub fn merge(dirs: &[PathBuf], out: &Path, command: &str) -> Result<Merged, TrainError> {
    if dirs.is_empty() {
        return Err(refuse(out, "give the results directories to merge"));
    }
    if out.exists() && !out.is_dir() {
        return Err(refuse(out, "is a file; --out must be a folder"));
    }
    let mut by_run: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for dir in dirs {
        for c in candidates(dir, out)? {
            let name = c.record.run.clone();
            by_run.entry(name).or_default().push(c);
        }
    }
    let experiment = one_experiment(&by_run, &dirs[0])?;
    let planned = plan(&experiment);
    let names: Vec<String> = planned.iter().map(|r| r.name()).collect();
    only_planned(&by_run, &names, &experiment)?;
    out_holds_only(out, &experiment)?;

    std::fs::create_dir_all(out.join(RUNS_DIR)).map_err(TrainError::io(out))?;
    let (_lock, _) = ResultsLock::acquire(out, &Holder::current(command))?;
    for name in &names {
        recover(&out.join(RUNS_DIR).join(name))?;
    }
    let copied = copy_best(&by_run, out)?;

    let mut records = Vec::new();
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    for spec in &planned {
        let name = spec.name();
        let json = out.join(RUNS_DIR).join(&name).join(RUN_JSON);
        match json.exists().then(|| read_record(&json)).transpose()? {
            Some(r) => {
                records.push(r);
                runs.push(name);
            }
            None => missing.push(name),
        }
    }
    let summary = out.join(SUMMARY_CSV);
    write_summary(&summary, &records)?;
    Ok(Merged {
        experiment: experiment.name.clone(),
        runs,
        copied,
        missing,
        summary,
    })
}

fn refuse(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Merge {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The finished run folders of one results directory `dir`, each with its
/// record, checked: `dir` is a results directory that neither is nor holds
/// `out`, and every run folder is a real folder whose record names it.
fn candidates(dir: &Path, out: &Path) -> Result<Vec<Candidate>, TrainError> {
    let runs = dir.join(RUNS_DIR);
    if !dir.exists() {
        return Err(refuse(dir, "no such folder"));
    }
    if !runs.is_dir() {
        return Err(refuse(
            dir,
            "not a gradscope results directory: it has no runs/ folder",
        ));
    }
    if absolute(out).starts_with(absolute(dir)) && !same_dir(dir, out) {
        return Err(refuse(
            out,
            format!(
                "is inside {}, one of the merged folders; merge into a folder of its own",
                dir.display()
            ),
        ));
    }
    if same_dir(dir, out) {
        return Err(refuse(
            dir,
            "is also the --out directory; merge into another one",
        ));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map_err(TrainError::io(&runs))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    let mut found = Vec::new();
    for run_dir in entries {
        // A symbolic link to a folder is not a run folder: it would copy
        // in files from anywhere.
        if std::fs::symlink_metadata(&run_dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refuse(
                &run_dir,
                "is a symbolic link; a merge copies run folders only",
            ));
        }
        let Some(name) = run_dir.file_name().and_then(|n| n.to_str()) else {
            return Err(refuse(
                &run_dir,
                "is not a run folder: its name is not UTF-8",
            ));
        };
        // Folders of a run still training (or killed while it did).
        if name.starts_with('.') || gradscope_format::files::is_transient(name) {
            continue;
        }
        let json = run_dir.join(RUN_JSON);
        let record = read_record(&json)?;
        // The name is the folder's; the record must agree with it, or
        // it is another run's record (or a path in disguise).
        if record.run != name {
            return Err(refuse(
                &json,
                format!(
                    "says \"run\": {:?}, but its folder is {name:?}; a run's name is its folder's, so the copy is refused",
                    record.run
                ),
            ));
        }
        found.push(Candidate {
            dir: run_dir,
            record,
        });
    }
    Ok(found)
}

/// The experiment every copy was trained under: one experiment, with the
/// same settings in every copy.
fn one_experiment(
    by_run: &BTreeMap<String, Vec<Candidate>>,
    first_dir: &Path,
) -> Result<Experiment, TrainError> {
    let Some(first) = by_run.values().flatten().next() else {
        return Err(refuse(first_dir, "none of the directories has a run"));
    };
    let experiment = first.record.config.clone();
    for c in by_run.values().flatten() {
        if c.record.experiment != experiment.name {
            return Err(refuse(
                &c.dir,
                format!(
                    "is a run of experiment {:?}, the others of {:?}; merge one experiment at a time",
                    c.record.experiment, experiment.name
                ),
            ));
        }
        let fields = changed_settings(&experiment, &c.record.config);
        if !fields.is_empty() {
            return Err(refuse(
                &c.dir,
                format!(
                    "was trained with other settings than {} ({}); the copies cannot be merged",
                    first.dir.display(),
                    fields.join(", ")
                ),
            ));
        }
    }
    Ok(experiment)
}

/// Only the plan's runs are merged: a folder of another name is not one
/// of this experiment's runs, whatever its record says.
fn only_planned(
    by_run: &BTreeMap<String, Vec<Candidate>>,
    names: &[String],
    experiment: &Experiment,
) -> Result<(), TrainError> {
    for (run, candidates) in by_run {
        if !names.contains(run) {
            return Err(refuse(
                &candidates[0].dir,
                format!(
                    "is not a run of experiment {:?}'s plan; merge only the folders a sweep wrote",
                    experiment.name
                ),
            ));
        }
    }
    Ok(())
}

/// What OUT already holds must be this experiment with these settings:
/// merging into another sweep's folder would mix or replace its runs.
fn out_holds_only(out: &Path, experiment: &Experiment) -> Result<(), TrainError> {
    let Ok(entries) = std::fs::read_dir(out.join(RUNS_DIR)) else {
        return Ok(());
    };
    let mut held: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    held.sort();
    for run_dir in held.iter().filter(|p| p.join(RUN_JSON).is_file()) {
        let Ok(r) = read_record(&run_dir.join(RUN_JSON)) else {
            continue;
        };
        let fields = changed_settings(experiment, &r.config);
        if r.experiment != experiment.name || !fields.is_empty() {
            return Err(refuse(
                out,
                format!(
                    "already holds {} ({}), which is not experiment {:?} with these settings{}; merge into another folder",
                    run_dir.display(),
                    r.experiment,
                    experiment.name,
                    if fields.is_empty() { String::new() } else { format!(" (it differs in {})", fields.join(", ")) }
                ),
            ));
        }
    }
    Ok(())
}

/// Copies the best copy of each run into OUT's runs/ (unless OUT holds it
/// or a copy as good); returns the runs copied.
fn copy_best(
    by_run: &BTreeMap<String, Vec<Candidate>>,
    out: &Path,
) -> Result<Vec<String>, TrainError> {
    let runs_abs = absolute(&out.join(RUNS_DIR));
    let mut copied = Vec::new();
    for (run, candidates) in by_run {
        let best = candidates
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| {
                // The first directory given wins a tie.
                (rank(&c.record), std::cmp::Reverse(*i))
            })
            .map(|(_, c)| c)
            .expect("a run has at least one copy");
        let dest = out.join(RUNS_DIR).join(run);
        // The plan's names are plain folder names; checked all the same,
        // since what is written here replaces a folder.
        if !gradscope_format::names::is_folder_name(run)
            || absolute(&dest).parent() != Some(runs_abs.as_path())
        {
            return Err(refuse(
                &dest,
                format!("would lie outside {}; refused", runs_abs.display()),
            ));
        }
        if same_files(&best.dir, &dest)? {
            continue;
        }
        // A copy OUT already holds is replaced only by a better one (a
        // merge after a task timed out must not undo an earlier merge).
        if let Ok(held) = read_record(&dest.join(RUN_JSON)) {
            if rank(&held) >= rank(&best.record) {
                continue;
            }
        }
        copy_run(&best.dir, &dest)?;
        copied.push(run.clone());
    }
    Ok(copied)
}

/// How good a copy of a run is: completed, then diverged (both final),
/// then the most steps.
fn rank(r: &RunRecord) -> (u8, usize) {
    let status = match r.status {
        Status::Completed => 2,
        Status::Diverged => 1,
        _ => 0,
    };
    (status, r.steps_done)
}

/// `p` made absolute without needing it to exist: its nearest existing
/// ancestor canonicalized, the rest appended.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => absolute(parent).join(name),
        (_, Some(name)) => std::env::current_dir().unwrap_or_default().join(name),
        _ => p.to_path_buf(),
    }
}

/// Whether two paths are one directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What a merge killed between `publish`'s two renames left of one run
/// in `OUT`, put right before the merge goes on. `RUN.old/` is the sign:
/// `RUN/` had been moved aside, and `RUN.partial/` is then the new copy,
/// whole (it is renamed only once every file is in), so the publish is
/// finished; with no new copy, the old one goes back. A `RUN.partial/`
/// without a `RUN.old/` is left as it is: it may be a killed sweep's, with
/// a checkpoint to resume, and a merge that copies the run clears it.
fn recover(dir: &Path) -> Result<(), TrainError> {
    let (partial, old) = (crate::sweep::partial_dir(dir), crate::sweep::old_dir(dir));
    if !old.exists() {
        return Ok(());
    }
    if !dir.exists() && partial.exists() {
        gradscope_format::durable::move_to(&partial, dir).map_err(TrainError::io(dir))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&old).map_err(TrainError::io(&old))
    } else {
        gradscope_format::durable::move_to(&old, dir).map_err(TrainError::io(dir))
    }
}

/// The files a merge copies: every file of a run folder but its
/// checkpoint's temporary files. Only regular files: a symbolic link (or
/// a folder, a pipe) is refused by name, since following a link would
/// copy in a file from outside the shard.
fn run_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, TrainError> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(TrainError::io(dir))? {
        let path = entry.map_err(TrainError::io(dir))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A writer's temporary file (a checkpoint being saved when the
        // shard was killed) is not part of the run.
        if gradscope_format::durable::temp_writer(&name).is_some() {
            continue;
        }
        let kind = std::fs::symlink_metadata(&path)
            .map_err(TrainError::io(&path))?
            .file_type();
        if !kind.is_file() {
            let what = if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_dir() {
                "a folder"
            } else {
                "not a regular file"
            };
            return Err(TrainError::Merge {
                path,
                message: format!("is {what}; a merge copies regular files only"),
            });
        }
        files.insert(name, path);
    }
    Ok(files)
}

/// Whether `dest` holds exactly `src`'s files, byte for byte.
fn same_files(src: &Path, dest: &Path) -> Result<bool, TrainError> {
    if !dest.is_dir() {
        return Ok(false);
    }
    let (a, b) = (run_files(src)?, run_files(dest)?);
    if a.keys().ne(b.keys()) {
        return Ok(false);
    }
    for (name, path) in &a {
        let read = |p: &Path| std::fs::read(p).map_err(TrainError::io(p));
        if read(path)? != read(&b[name])? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies a run folder to `dest` through `dest.partial/` and a rename, so
/// `dest` is never half copied.
fn copy_run(src: &Path, dest: &Path) -> Result<(), TrainError> {
    let partial = crate::sweep::partial_dir(dest);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(TrainError::io(&partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(TrainError::io(&partial))?;
    for (name, path) in run_files(src)? {
        let to = partial.join(&name);
        std::fs::copy(&path, &to).map_err(TrainError::io(&to))?;
    }
    crate::sweep::publish(dest)
}
