//! The results directory of one experiment, and the runs that fill it.
//!
//! ```text
//! OUT/.gradscope.lock            held while a sweep writes here (see lock.rs)
//! OUT/summary.csv                one row per planned run that has ended
//! OUT/runs/RUN.partial/          the run being trained: run.json "running", CSVs
//! OUT/runs/RUN/run.json          a run that ended: completed, diverged, interrupted, failed
//! OUT/runs/RUN/{metrics,gradients,activations}.csv
//! ```
//!
//! Everything that can be checked is checked in [`Sweep::prepare`], before
//! any run folder exists, so a bad experiment never leaves a half-created
//! run behind.
//!
//! A run trains in `RUN.partial/` and, when it ends with any status, that
//! folder is renamed to `RUN/` (an older `RUN/` is first renamed to
//! `RUN.old/`, then removed). So `RUN/` always holds one whole run, old or
//! new, and never a mixture: its CSVs have each step once. A SIGKILL leaves a
//! `RUN.partial/` whose run.json says `running`; the next `--resume` or
//! `--restart` removes it (or, if the kill came between the two renames,
//! finishes the swap) before training.

use crate::check::measure;
use crate::checkpoint;
use crate::holdings::{changed_settings, Held, Holdings};
use crate::lock::{Holder, ResultsLock};
use crate::panics::catch_panic;
use crate::plan::{plan, RunSpec};
use crate::record::{
    current_versions, read_record, write_record, write_summary, RunRecord, Status,
};
use crate::shard::{self, Shard};
use crate::spec::{DatasetSpec, Experiment, ModelSpec};
use crate::train_loop::{build_network, train_run};
use crate::TrainError;
use gradscope_data::{Dataset, DatasetInfo};
use gradscope_format::files::{METRICS_CSV, PLOTS_DIR, RUNS_DIR, RUN_JSON, SUMMARY_CSV};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use tch::Device;

/// Builds or reads the dataset an experiment names (on the CPU), prepared
/// as the file asks ([`DatasetSpec::load`]).
pub fn load_dataset(spec: &DatasetSpec) -> Result<Dataset, TrainError> {
    Ok(spec.load()?)
}

/// What [`load_dataset`] would give, worked out without loading it
/// ([`DatasetSpec::info`]; `gradscope check`).
pub fn dataset_info(spec: &DatasetSpec) -> Result<DatasetInfo, TrainError> {
    Ok(spec.info()?)
}

/// The dataset of a run that sweeps a dataset field (`dataset.samples`),
/// or whose sequence data are made at its depth (the rnn family's depth is
/// the sequence length, see [`DatasetSpec::at_depth`]), loaded on the CPU;
/// `None` when it trains on the experiment's own.
pub(crate) fn own_dataset(exp: &Experiment, run: &RunSpec) -> Result<Option<Dataset>, TrainError> {
    let spec = run_dataset(exp, run);
    if spec == experiment_dataset(exp) {
        return Ok(None);
    }
    Ok(Some(load_dataset(&spec)?))
}

/// The dataset section a run trains on: its swept values, at its depth
/// where the depth is the sequence length (the rnn family).
pub fn run_dataset(exp: &Experiment, run: &RunSpec) -> DatasetSpec {
    at_depth(exp, exp.resolved(&run.setting).dataset, run.depth)
}

/// The experiment-wide dataset section (sizes and checks read it): a
/// sequence dataset at the first depth, for the rnn family.
pub fn experiment_dataset(exp: &Experiment) -> DatasetSpec {
    at_depth(
        exp,
        exp.dataset.clone(),
        exp.depths.first().copied().unwrap_or(2),
    )
}

/// `data` made at `depth` ([`DatasetSpec::at_depth`]) where a depth is a
/// sequence length: for the rnn family alone. A transformer's depth counts
/// blocks, and its sequence data have a length of their own.
fn at_depth(exp: &Experiment, data: DatasetSpec, depth: usize) -> DatasetSpec {
    match exp.model {
        ModelSpec::Rnn(_) => data.at_depth(depth),
        _ => data,
    }
}

/// The checks of an experiment that need the training split's size.
pub(crate) fn check_against_data(
    experiment: &Experiment,
    train_len: usize,
) -> Result<(), TrainError> {
    if experiment.train.batch_size > train_len {
        return Err(TrainError::Invalid {
            field: "train.batch_size".into(),
            message: format!(
                "{} is larger than the {train_len} training examples",
                experiment.train.batch_size
            ),
        });
    }
    Ok(())
}

/// A run on an image set read as a sequence (`dataset.sequence`): its
/// depth must be the sequence's length (the rnn family's depth is the
/// length), which is known once the files' headers give the image size.
pub(crate) fn check_sequence_length(
    experiment: &Experiment,
    run: &RunSpec,
    input_shape: &[i64],
) -> Result<(), TrainError> {
    let (Some(sequence), [length, features]) = (experiment.dataset.sequence(), input_shape) else {
        return Ok(());
    };
    if run.depth as i64 == *length {
        return Ok(());
    }
    let i = experiment.depths.iter().position(|&d| d == run.depth);
    let plural = if *features == 1 { "" } else { "s" };
    Err(TrainError::Invalid {
        field: format!("depths[{}]", i.unwrap_or(0)),
        message: format!(
            "{} is not the length of dataset.sequence {:?}, {length} steps of {features} feature{plural} (the rnn family's depth is the sequence length): write \"depths\": [{length}]",
            run.depth,
            sequence.as_str()
        ),
    })
}

/// What to do with runs that the results directory already holds.
///
/// Whatever it is, runs of *another* experiment (their `run.json` names
/// another experiment) are only ever deleted by [`Existing::Replace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse to start ([`TrainError::Existing`] and its siblings), so that
    /// a repeated command never replaces finished runs by accident.
    Refuse,
    /// Keep completed and diverged runs (final outcomes) trained with the
    /// same settings; train the missing, interrupted, failed and unfinished
    /// ones again.
    Resume,
    /// Train every run again: delete the charts, summary, report and export
    /// (they describe the old runs) and the run folders this plan does not
    /// have; each old planned run is replaced when its new one ends.
    /// Refused ([`TrainError::OtherExperiment`]) when the folder holds
    /// another experiment's runs.
    Restart,
    /// `--restart --force`: as [`Existing::Restart`], and another
    /// experiment's runs are deleted too.
    Replace,
}

/// An experiment ready to run into its results directory, which it holds
/// locked until dropped.
pub struct Sweep {
    pub(crate) experiment: Experiment,
    pub(crate) out: PathBuf,
    pub(crate) device: Device,
    pub(crate) threads: i32,
    pub(crate) data: Dataset,
    pub(crate) runs: Vec<RunSpec>,
    /// Each run's estimated cost ([`shard::cost`]), in `runs`' order.
    pub(crate) costs: Vec<f64>,
    /// Planned runs that `--resume` keeps, with their status.
    pub(crate) kept: Vec<(RunSpec, Status)>,
    /// Planned runs to train, in plan order.
    pub(crate) pending: Vec<RunSpec>,
    pub(crate) stale_lock: Option<Holder>,
    /// What the sweep was asked to do with existing runs; `--resume` also
    /// goes on from checkpoints.
    pub(crate) existing: Existing,
    /// `None` in a `run --jobs` worker, whose parent holds the lock.
    pub(crate) _lock: Option<ResultsLock>,
    /// Recorded in each run.json as `experiment_file`.
    pub(crate) experiment_file: Option<String>,
    /// What preparing did to the directory, one line each, for the user.
    pub(crate) notes: Vec<String>,
}

/// The folder a run trains in before it is renamed to `runs/RUN`.
pub(crate) fn partial_dir(dir: &Path) -> PathBuf {
    suffixed(dir, gradscope_format::files::PARTIAL_SUFFIX)
}

/// Where a replaced run sits for the moment between two renames.
pub(crate) fn old_dir(dir: &Path) -> PathBuf {
    suffixed(dir, gradscope_format::files::OLD_SUFFIX)
}

fn suffixed(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// The step of the last `train` row of a `metrics.csv`, if any.
pub(crate) fn last_train_step(path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|l| {
        let mut f = l.split(',');
        let step = f.next()?;
        (f.nth(1)? == "train").then(|| step.parse().ok())?
    })
}

/// The first few names of a list, for a message that stays one line.
pub fn list_some(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

fn remove_dir(dir: &Path) -> Result<(), TrainError> {
    std::fs::remove_dir_all(dir).map_err(TrainError::io(dir))
}

fn rename(from: &Path, to: &Path) -> Result<(), TrainError> {
    gradscope_format::durable::move_to(from, to).map_err(TrainError::io(to))
}

/// Puts a run that ended in `RUN.partial/` in place of `RUN/`.
pub(crate) fn publish(dir: &Path) -> Result<(), TrainError> {
    let (partial, old) = (partial_dir(dir), old_dir(dir));
    if old.exists() {
        remove_dir(&old)?;
    }
    if dir.exists() {
        rename(dir, &old)?;
    }
    rename(&partial, dir)?;
    if old.exists() {
        remove_dir(&old)?;
    }
    Ok(())
}

/// Cleans what a killed process left of one run: a `RUN.partial/` that was
/// still training is removed, unless it has a checkpoint and `keep_checkpoint`
/// (`--resume` goes on from it); one that had ended (killed between its last
/// write and the rename) is put in place; a `RUN.old/` goes back to `RUN/`
/// if nothing replaced it.
fn recover(dir: &Path, keep_checkpoint: bool) -> Result<(), TrainError> {
    let partial = partial_dir(dir);
    if partial.exists() {
        match read_record(&partial.join(RUN_JSON)) {
            Ok(r) if r.status != Status::Running => publish(dir)?,
            _ if keep_checkpoint && checkpoint::path(&partial).exists() => {}
            _ => remove_dir(&partial)?,
        }
    }
    let old = old_dir(dir);
    if old.exists() {
        if dir.exists() {
            remove_dir(&old)?;
        } else {
            rename(&old, dir)?;
        }
    }
    Ok(())
}

/// Removes a file or folder that is derived from the runs (charts,
/// summary, report, export), if it is there.
fn remove_derived(path: &Path) -> Result<bool, TrainError> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(TrainError::io(path)(e)),
    }
}

/// What `--restart` deletes before training, since it would describe the
/// old runs: `plots/`, `summary.csv`, every `report.*` and `export/`.
fn remove_derived_files(out: &Path) -> Result<Vec<String>, TrainError> {
    let mut names: Vec<String> = vec![
        PLOTS_DIR.into(),
        SUMMARY_CSV.into(),
        gradscope_format::files::EXPORT_DIR.into(),
    ];
    let entries = std::fs::read_dir(out).map_err(TrainError::io(out))?;
    for entry in entries {
        let name = entry
            .map_err(TrainError::io(out))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("report.") {
            names.push(name);
        }
    }
    let mut removed = Vec::new();
    for name in names {
        if remove_derived(&out.join(&name))? {
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

impl Sweep {
    /// Loads the data, moves it to `device`, makes sure `out` can be written
    /// (creating `out/runs`), takes the results directory's lock for
    /// `command`, and decides which runs to train given `existing`. With a
    /// `shard`, the sweep is only the runs [`shard::assign`] gives it.
    pub fn prepare(
        experiment: Experiment,
        out: &Path,
        device: Device,
        threads: i32,
        existing: Existing,
        shard: Option<Shard>,
        command: &str,
    ) -> Result<Sweep, TrainError> {
        let data = load_dataset(&experiment_dataset(&experiment))?;
        check_against_data(&experiment, data.train.len() as usize)?;
        let mut runs = plan(&experiment);
        // Build every network once on the CPU before any folder exists, so
        // a shape that cannot work (too small an input, a depth the family
        // cannot take) is refused up front, naming the layer or field. Its
        // size is the run's cost for sharding.
        let mut costs = Vec::with_capacity(runs.len());
        for run in &runs {
            // A run that sweeps a dataset field has data of its own.
            let own = own_dataset(&experiment, run)?;
            let data = own.as_ref().unwrap_or(&data);
            let resolved = experiment.resolved(&run.setting);
            check_against_data(&resolved, data.train.len() as usize)?;
            check_sequence_length(&resolved, run, &data.input_shape)?;
            let steps = resolved.train.total_steps(data.train.len() as usize);
            let built = catch_panic(|| {
                crate::train_loop::injected_panic(&run.name(), "build");
                let vs = tch::nn::VarStore::new(Device::Cpu);
                let net = build_network(&vs.root(), &experiment, data, run)?;
                Ok::<_, TrainError>(measure(&vs, net.as_ref()).1)
            })
            .map_err(|message| TrainError::Invalid {
                field: run.name(),
                message,
            })??;
            costs.push(shard::cost(steps, built));
        }
        if let Some(s) = shard {
            let of = shard::assign(&costs, s.count);
            (runs, costs) = runs
                .into_iter()
                .zip(costs)
                .zip(of)
                .filter(|(_, i)| *i == s.index)
                .map(|(run_cost, _)| run_cost)
                .unzip();
        }
        let data = data.to_device(device);
        std::fs::create_dir_all(out).map_err(TrainError::io(out))?;
        // create_dir_all succeeds on an existing read-only folder: the lock
        // file is the write check.
        let (lock, stale_lock) = ResultsLock::acquire(out, &Holder::current(command))?;
        let runs_dir = out.join(RUNS_DIR);
        std::fs::create_dir_all(&runs_dir).map_err(TrainError::io(&runs_dir))?;

        let holdings = Holdings::scan(&runs_dir, &experiment)?;
        let mut sweep = Sweep {
            experiment,
            out: out.to_path_buf(),
            device,
            threads,
            data,
            runs,
            costs,
            kept: Vec::new(),
            pending: Vec::new(),
            stale_lock,
            existing,
            _lock: Some(lock),
            experiment_file: None,
            notes: Vec::new(),
        };
        sweep.decide(&holdings, existing)?;
        Ok(sweep)
    }

    /// Decides what to train given what `runs/` holds and `existing`, and
    /// cleans what a restart replaces. Nothing is deleted before every
    /// refusal has been checked.
    fn decide(&mut self, holdings: &Holdings, existing: Existing) -> Result<(), TrainError> {
        let name = self.experiment.name.clone();
        // The whole plan, not only this shard's runs: a shard sharing a
        // folder with the others must not delete their runs as unplanned.
        let planned: Vec<String> = plan(&self.experiment).iter().map(RunSpec::name).collect();
        let others = holdings.others(&name);
        let ours = holdings.ours(&name, &planned);
        match existing {
            Existing::Refuse => {
                if !others.is_empty() {
                    return Err(self.other_experiment(&others, format!(
                        "use --out for a results directory of its own, or --restart --force to delete them and train {name:?} here"
                    )));
                }
                if ours.is_empty() {
                    self.pending = self.runs.clone();
                    return Ok(());
                }
                let changed = Holdings::changed_settings(&ours);
                if !changed.is_empty() {
                    return Err(TrainError::ExistingChanged {
                        out: self.out.clone(),
                        count: ours.len(),
                        name,
                        fields: list_some(&changed),
                    });
                }
                Err(TrainError::Existing {
                    out: self.out.clone(),
                    count: ours.len(),
                    name,
                    runs: folder_list(&ours),
                })
            }
            Existing::Restart | Existing::Replace => {
                if existing == Existing::Restart && !others.is_empty() {
                    return Err(self.other_experiment(&others,
                        "--restart would delete them: add --force to do that, or use --out for a results directory of its own".into()
                    ));
                }
                self.start_over(holdings, &planned, &others, &ours)
            }
            Existing::Resume => {
                if !others.is_empty() {
                    return Err(self.other_experiment(&others, format!(
                        "--resume continues a sweep of the same experiment; use --out for a results directory of its own, or --restart --force to delete them and train {name:?} here"
                    )));
                }
                self.resume_held()
            }
        }
    }

    /// The refusal of a results directory that holds `others`, another
    /// experiment's runs.
    fn other_experiment(&self, others: &[&Held], advice: String) -> TrainError {
        TrainError::OtherExperiment {
            out: self.out.clone(),
            held: Holdings::describe(others),
            ours: self.experiment.name.clone(),
            advice,
        }
    }

    /// `--restart` and `--replace`: every held run folder of this plan is
    /// trained again, and what is not this plan's goes.
    fn start_over(
        &mut self,
        holdings: &Holdings,
        planned: &[String],
        others: &[&Held],
        ours: &[&Held],
    ) -> Result<(), TrainError> {
        let name = &self.experiment.name;
        let changed = Holdings::changed_settings(ours);
        if !changed.is_empty() {
            self.notes.push(format!(
                "replacing {} run(s) of {name:?} that were trained with other settings ({})",
                ours.len(),
                list_some(&changed)
            ));
        }
        let removed = remove_derived_files(&self.out)?;
        if !removed.is_empty() {
            self.notes.push(format!(
                "removed {} (they describe the old runs)",
                removed.join(", ")
            ));
        }
        // Another experiment's runs go at once (with --force), even
        // where a planned run has the same name: a sweep stopped
        // half way must not leave two experiments mixed. So do the
        // folders of runs this plan no longer has.
        let gone: Vec<&Held> = holdings
            .runs
            .iter()
            .filter(|h| others.contains(h) || !planned.contains(&h.run))
            .collect();
        for h in &gone {
            remove_dir(&self.out.join(RUNS_DIR).join(&h.folder))?;
        }
        if !others.is_empty() {
            self.notes
                .push(format!("--force: deleted {}", Holdings::describe(others)));
        }
        let unplanned: Vec<&Held> = gone
            .iter()
            .copied()
            .filter(|h| !others.contains(h))
            .collect();
        if !unplanned.is_empty() {
            self.notes.push(format!(
                "deleted {} run folder(s) that this plan does not have ({})",
                unplanned.len(),
                folder_list(&unplanned)
            ));
        }
        for run in &self.runs {
            recover(&self.run_dir(run), false)?;
        }
        self.pending = self.runs.clone();
        Ok(())
    }

    /// `--resume`: finished runs of the same settings are kept, the rest
    /// trained (from their checkpoints where they have one).
    fn resume_held(&mut self) -> Result<(), TrainError> {
        for run in self.runs.clone() {
            let dir = self.run_dir(&run);
            recover(&dir, true)?;
            let json = dir.join(RUN_JSON);
            // An unreadable run.json (another version, an edit) is
            // an unfinished run: trained again, replaced atomically.
            let record = json.exists().then(|| read_record(&json).ok()).flatten();
            match record {
                Some(r) if matches!(r.status, Status::Completed | Status::Diverged) => {
                    let fields = changed_settings(&self.experiment, &r.config);
                    if !fields.is_empty() {
                        return Err(TrainError::ConfigChanged {
                            path: json,
                            fields: list_some(&fields),
                        });
                    }
                    self.kept.push((run, r.status));
                }
                _ => {
                    self.drop_unusable_checkpoint(&run);
                    self.pending.push(run);
                }
            }
        }
        Ok(())
    }

    /// What preparing did to the results directory (files removed by
    /// `--restart`, runs replaced that had other settings), one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Names the experiment file in every run.json this sweep writes.
    pub fn with_experiment_file(mut self, path: &Path) -> Sweep {
        self.experiment_file = Some(path.display().to_string());
        self
    }

    /// Optimizer steps per run (from `train.steps`, or `train.epochs` and
    /// the size of the training split).
    pub fn steps(&self) -> usize {
        self.experiment
            .train
            .total_steps(self.data.train.len() as usize)
    }

    /// Optimizer steps of one run: [`Sweep::steps`], unless the run sweeps
    /// `train.steps`, `train.epochs`, `train.batch_size` or a dataset field.
    pub fn run_steps(&self, run: &RunSpec) -> usize {
        let exp = self.experiment.resolved(&run.setting);
        let train_len = match exp.dataset == self.experiment.dataset {
            true => self.data.train.len() as usize,
            false => dataset_info(&exp.dataset).map_or(0, |i| i.train),
        };
        exp.train.total_steps(train_len)
    }

    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    /// Every planned run, in plan order.
    pub fn runs(&self) -> &[RunSpec] {
        &self.runs
    }

    /// The runs to train, in plan order.
    pub fn pending(&self) -> &[RunSpec] {
        &self.pending
    }

    /// The runs `--resume` keeps as they are, with their status.
    pub fn kept(&self) -> &[(RunSpec, Status)] {
        &self.kept
    }

    /// Who held the lock before, when it was left by a process that died.
    pub fn stale_lock(&self) -> Option<&Holder> {
        self.stale_lock.as_ref()
    }

    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The device as run.json records it (`cpu`, `cuda(0)`), which a
    /// checkpoint must match to be gone on from.
    fn device_name(&self) -> String {
        format!("{:?}", self.device).to_lowercase()
    }

    /// Where a run's files are once it has ended: `OUT/runs/RUN`.
    pub fn run_dir(&self, run: &RunSpec) -> PathBuf {
        self.out.join(RUNS_DIR).join(run.name())
    }

    /// Trains one run ([`Sweep::train`]), then refreshes `summary.csv`.
    pub fn run(
        &self,
        run: &RunSpec,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize),
    ) -> Result<RunRecord, TrainError> {
        let record = self.train(run, stop, progress)?;
        self.write_summary()?;
        Ok(record)
    }

    /// Trains one run into a fresh `runs/RUN.partial/`, writing `run.json`
    /// before (status `running`) and after, and renames it to `runs/RUN`
    /// (replacing an older one). A run that fails inside training is
    /// recorded as `failed` and returned, so the sweep can go on; only
    /// errors writing its own files are returned as `Err`. `summary.csv`
    /// is left alone: one writer (the process holding the lock) owns it.
    pub fn train(
        &self,
        run: &RunSpec,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize),
    ) -> Result<RunRecord, TrainError> {
        let final_dir = self.run_dir(run);
        let dir = partial_dir(&final_dir);
        // The resumes before this one, from the run.json they left.
        let mut resumed_from = Vec::new();
        if self.resumable(&final_dir)? {
            resumed_from = read_record(&dir.join(RUN_JSON))
                .map(|r| r.resumed_from)
                .unwrap_or_default();
        } else {
            if dir.exists() {
                remove_dir(&dir)?;
            }
            std::fs::create_dir_all(&dir).map_err(TrainError::io(&dir))?;
        }
        let json = dir.join(RUN_JSON);
        let mut record = self.new_record(run, resumed_from);
        write_record(&record, &json)?;

        // tch's methods panic on any libtorch error (out of memory, a CUDA
        // error, a shape that fails only at run time): caught here, the
        // failure stays inside this run, which is recorded as failed with
        // libtorch's reason, and the sweep goes on.
        let trained = catch_panic(|| {
            let own = own_dataset(&self.experiment, run)?.map(|d| d.to_device(self.device));
            let data = own.as_ref().unwrap_or(&self.data);
            train_run(&self.experiment, data, run, &dir, stop, progress)
        })
        .unwrap_or_else(|reason| Err(TrainError::Panic(reason)));
        match trained {
            Ok(o) => {
                record.status = o.status;
                record.steps_done = o.steps_done;
                record.resumed_from.extend(o.resumed_from);
                record.diverged_at_step = o.diverged_at_step;
                record.final_metrics = o.final_metrics;
                record.gradient_ends = o.gradient_ends;
                record.params = o.params;
                record.probe_points = o.probe_points;
                record.elapsed_s = o.elapsed_s;
            }
            Err(e) => {
                record.status = Status::Failed;
                let mut error = e.to_string();
                // A checkpoint that does not fit the run would fail every
                // resume: dropped, so the next one trains from step 0.
                if matches!(e, TrainError::Checkpoint { .. }) {
                    let _ = std::fs::remove_file(checkpoint::path(&dir));
                    error.push_str("; removed it, --resume trains the run again from step 0");
                }
                record.error = Some(error);
                // The loop's count is lost with it; its last training row
                // says how far the run got.
                record.steps_done = last_train_step(&dir.join(METRICS_CSV)).unwrap_or(0);
            }
        }
        write_record(&record, &json)?;
        publish(&final_dir)?;
        Ok(record)
    }

    /// The run.json of `run` as it starts: status `running`, nothing done.
    pub(crate) fn new_record(&self, run: &RunSpec, resumed_from: Vec<usize>) -> RunRecord {
        RunRecord {
            experiment: self.experiment.name.clone(),
            experiment_file: self.experiment_file.clone(),
            run: run.name(),
            variant: run.variant.as_str().to_string(),
            swept: run
                .setting
                .columns()
                .into_iter()
                .map(|(field, value)| (field.to_string(), value))
                .collect(),
            depth: run.depth,
            seed: run.seed,
            status: Status::Running,
            diverged_at_step: None,
            error: None,
            steps_planned: self.run_steps(run),
            steps_done: 0,
            resumed_from,
            params: 0,
            elapsed_s: 0.0,
            device: self.device_name(),
            threads: self.threads,
            versions: current_versions(),
            final_metrics: Default::default(),
            gradient_ends: Default::default(),
            probe_points: Vec::new(),
            config: self.experiment.clone(),
        }
    }

    /// A checkpoint `--resume` cannot go on from (unreadable, cut short, or
    /// another run's) is removed with a note, so that the run trains from
    /// step 0 instead of failing on it at every resume.
    fn drop_unusable_checkpoint(&mut self, run: &RunSpec) {
        let final_dir = self.run_dir(run);
        for dir in [partial_dir(&final_dir), final_dir] {
            if !checkpoint::path(&dir).exists() {
                continue;
            }
            // `load` checks all it can without the network: the run, its
            // settings, the checksum, the data order, and the CSV lengths
            // (after a crash the CSVs may be shorter than when the
            // checkpoint was taken: nothing to go on from).
            let why = checkpoint::load(&dir, &run.name(), &self.experiment, self.data.train.len())
                .err()
                .map(|e| e.to_string());
            if let Some(why) = why {
                let _ = std::fs::remove_file(checkpoint::path(&dir));
                self.notes.push(format!(
                    "{}: its checkpoint cannot be used ({why}); removed it, the run trains again from step 0",
                    run.name()
                ));
                continue;
            }
            // A checkpoint of other settings, or from another device, is
            // not gone on from; say so.
            if let Ok(r) = read_record(&dir.join(RUN_JSON)) {
                let device = self.device_name();
                if r.device != device {
                    self.notes.push(format!(
                        "{}: its checkpoint was taken on {}, this sweep runs on {device}; the run trains again from step 0",
                        run.name(),
                        r.device
                    ));
                    continue;
                }
                let fields = changed_settings(&self.experiment, &r.config);
                if !fields.is_empty() {
                    self.notes.push(format!(
                        "{}: its checkpoint was taken with other settings ({}); the run trains again from step 0",
                        run.name(),
                        list_some(&fields)
                    ));
                }
            }
        }
    }

    /// With `--resume`, puts a run's checkpoint where it trains: a
    /// `RUN.partial/` a killed process left with a checkpoint stays; an
    /// interrupted `RUN/` with one moves back to `RUN.partial/`. Returns
    /// whether `RUN.partial/` now holds a checkpoint to go on from. A
    /// checkpoint of a run trained with other settings is not resumed (the
    /// run trains again from step 0).
    fn resumable(&self, final_dir: &Path) -> Result<bool, TrainError> {
        if self.existing != Existing::Resume {
            return Ok(false);
        }
        let dir = partial_dir(final_dir);
        if !checkpoint::path(&dir).exists() && checkpoint::path(final_dir).exists() {
            if dir.exists() {
                remove_dir(&dir)?;
            }
            rename(final_dir, &dir)?;
        }
        if !checkpoint::path(&dir).exists() {
            return Ok(false);
        }
        let device = self.device_name();
        let same = read_record(&dir.join(RUN_JSON)).is_ok_and(|r| {
            // A checkpoint goes on only on the device it was taken on: the
            // run's numbers would otherwise come from two devices.
            if r.device != device {
                return false;
            }
            changed_settings(&self.experiment, &r.config).is_empty()
        });
        Ok(same)
    }

    /// Rewrites `summary.csv` from the `run.json` of every planned run that
    /// has one, in plan order. A run.json that does not parse (not written
    /// by this version: ours are written atomically) is left out rather
    /// than stopping a sweep; `--resume` trains such a run again.
    pub fn write_summary(&self) -> Result<PathBuf, TrainError> {
        // Every planned run this folder holds, also other shards' when
        // shards share it.
        let records: Vec<RunRecord> = plan(&self.experiment)
            .iter()
            .map(|run| self.run_dir(run).join(RUN_JSON))
            .filter(|json| json.exists())
            .filter_map(|json| read_record(&json).ok())
            .collect();
        let path = self.out.join(SUMMARY_CSV);
        write_summary(&path, &records)?;
        Ok(path)
    }
}

/// The folders of `held`, a few named.
fn folder_list(held: &[&Held]) -> String {
    let names: Vec<String> = held.iter().map(|h| h.folder.clone()).collect();
    list_some(&names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FinalMetrics;

    fn record(status: Status) -> RunRecord {
        let exp = Experiment::from_json(
            r#"{"name": "t",
              "dataset": {"kind": "synthetic", "samples": 64, "classes": 4, "features": 8},
              "model": {"family": "mlp", "width": 8, "activation": "tanh"},
              "variants": ["plain"], "depths": [3], "seeds": [0],
              "train": {"lr": 0.1, "batch_size": 8, "steps": 2, "eval_every": 1}}"#,
            Path::new("t.json"),
        )
        .unwrap();
        RunRecord {
            experiment: "t".into(),
            run: "plain-d3-s0".into(),
            variant: "plain".into(),
            swept: Default::default(),
            depth: 3,
            seed: 0,
            status,
            diverged_at_step: None,
            error: None,
            experiment_file: None,
            steps_planned: 2,
            steps_done: 0,
            resumed_from: Vec::new(),
            params: 0,
            elapsed_s: 0.0,
            device: "cpu".into(),
            threads: 1,
            versions: current_versions(),
            final_metrics: FinalMetrics::default(),
            gradient_ends: Default::default(),
            probe_points: Vec::new(),
            config: exp,
        }
    }

    /// A run folder holding run.json with `status` and a marker file.
    fn run_folder(dir: &Path, status: Status, marker: &str) {
        std::fs::create_dir_all(dir).unwrap();
        write_record(&record(status), &dir.join("run.json")).unwrap();
        std::fs::write(dir.join("marker"), marker).unwrap();
    }

    fn marker(dir: &Path) -> Option<String> {
        std::fs::read_to_string(dir.join("marker")).ok()
    }

    /// Every state a kill can leave between `run` and `publish`, and what
    /// `recover` must make of it: one whole run in RUN/, no leftovers.
    #[test]
    fn recover_cleans_every_state_a_kill_leaves() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plain-d3-s0");
        let (partial, old) = (partial_dir(&dir), old_dir(&dir));

        // Killed while training: the attempt goes, the old run stays.
        run_folder(&dir, Status::Completed, "old");
        run_folder(&partial, Status::Running, "new");
        recover(&dir, false).unwrap();
        assert_eq!(marker(&dir).as_deref(), Some("old"));
        assert!(!partial.exists());

        // Killed between the two renames of publish: the new run, which had
        // ended, is put in place.
        gradscope_format::durable::move_to(&dir, &old).unwrap();
        run_folder(&partial, Status::Interrupted, "new");
        recover(&dir, false).unwrap();
        assert_eq!(marker(&dir).as_deref(), Some("new"));
        assert!(!partial.exists() && !old.exists());

        // Killed after the second rename, before the old one was removed.
        run_folder(&old, Status::Completed, "older");
        recover(&dir, false).unwrap();
        assert_eq!(marker(&dir).as_deref(), Some("new"));
        assert!(!old.exists());

        // Only RUN.old (its replacement never ended): it comes back.
        gradscope_format::durable::move_to(&dir, &old).unwrap();
        recover(&dir, false).unwrap();
        assert_eq!(marker(&dir).as_deref(), Some("new"));
        assert!(!old.exists());

        // A partial folder without run.json (killed before its first write).
        std::fs::create_dir_all(&partial).unwrap();
        recover(&dir, false).unwrap();
        assert!(!partial.exists());
        assert_eq!(marker(&dir).as_deref(), Some("new"));
    }

    #[test]
    fn long_lists_are_shortened() {
        let names: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
        assert_eq!(list_some(&names), "r0, r1, r2, r3, r4 and 2 more");
        assert_eq!(list_some(&names[..2]), "r0, r1");
    }
}

/// Issue 34 end to end: an rnn sweep over cells and lengths trains on the
/// adding problem made at each run's depth and writes dL/dh_t per time
/// step.
#[cfg(test)]
mod rnn_tests {
    use super::*;

    #[test]
    fn an_rnn_sweep_trains_each_cell_at_each_length() {
        let exp = Experiment::from_json(
            r#"{"name": "rnn",
              "dataset": {"kind": "adding", "samples": 64, "test_samples": 16, "seed": 1},
              "model": {"family": "rnn", "width": 8, "cell": ["tanh", "lstm"]},
              "variants": ["plain"], "depths": [6, 12], "seeds": [0],
              "task": "regression",
              "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 16, "steps": 4, "eval_every": 2},
              "probe": {"every": 2}}"#,
            Path::new("rnn.json"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sweep = prepare(exp, dir.path()).unwrap();
        let stop = AtomicBool::new(false);
        for run in sweep.pending().to_vec() {
            let record = sweep.run(&run, &stop, &mut |_| {}).unwrap();
            assert_eq!(record.status, Status::Completed, "{}", run.name());
            let error = record.final_metrics.test_error.unwrap();
            // MSE / (1/6): an untrained net is near 1, not near 0 or 100.
            assert!(error > 0.05 && error < 20.0, "{}: {error}", run.name());
            let csv = std::fs::read_to_string(sweep.run_dir(&run).join("gradients.csv")).unwrap();
            let last = format!("t{:03}.h", run.depth - 1);
            assert!(csv.contains(",t000.h,output,true,"), "{csv}");
            assert!(
                csv.contains(&format!(",{last},output,true,")),
                "{}",
                run.name()
            );
            assert!(
                !csv.contains(&format!("t{:03}.h", run.depth)),
                "{}",
                run.name()
            );
            let cell_rows = csv.contains(",t000.c,output,false,");
            assert_eq!(cell_rows, run.name().contains("lstm"), "{}", run.name());
        }
    }

    /// The held-out error a run's metrics.csv gives at `step`.
    fn test_error_at(dir: &Path, step: usize) -> f64 {
        let csv = std::fs::read_to_string(dir.join(METRICS_CSV)).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let row = csv
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|r| r[col("split")] == "test" && r[col("step")] == step.to_string())
            .unwrap();
        row[col("error")].parse().unwrap()
    }

    fn prepare(exp: Experiment, dir: &Path) -> Result<Sweep, TrainError> {
        Sweep::prepare(exp, dir, Device::Cpu, 1, Existing::Refuse, None, "run")
    }

    /// Issue 34 §2, the copy task: each cell trains at each length, with
    /// the head on the last `recall` steps. Untrained (the held-out row
    /// at step 0), a net's per-symbol error is near chance, 1 − 1/K: the
    /// targets are uniform over the K symbols (sequences.rs), so any
    /// prediction that ignores the input scores that on average; with
    /// 256 × 3 held-out symbols its std is about 0.016.
    #[test]
    fn a_copy_sweep_starts_near_chance_at_each_length() {
        let exp = Experiment::from_json(
            r#"{"name": "copy",
              "dataset": {"kind": "copy", "samples": 64, "test_samples": 256, "symbols": 4, "recall": 3, "seed": 1},
              "model": {"family": "rnn", "width": 8, "cell": ["tanh", "gru"]},
              "variants": ["plain"], "depths": [7, 12], "seeds": [0],
              "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 16, "steps": 4, "eval_every": 2},
              "probe": {"every": 2}}"#,
            Path::new("copy.json"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sweep = prepare(exp, dir.path()).unwrap();
        let stop = AtomicBool::new(false);
        for run in sweep.pending().to_vec() {
            let record = sweep.run(&run, &stop, &mut |_| {}).unwrap();
            assert_eq!(record.status, Status::Completed, "{}", run.name());
            let at_init = test_error_at(&sweep.run_dir(&run), 0);
            assert!((at_init - 0.75).abs() < 0.1, "{}: {at_init}", run.name());
            let csv = std::fs::read_to_string(sweep.run_dir(&run).join("gradients.csv")).unwrap();
            let last = format!("t{:03}.h", run.depth - 1);
            assert!(
                csv.contains(&format!(",{last},output,true,")),
                "{}",
                run.name()
            );
            assert!(csv.contains(",head.linear,output,false,"), "{}", run.name());
        }
    }

    /// Issue 34 §2, an image set read row by row (tiny IDX files, never the
    /// real set): 6 rows of 5 pixels are 6 steps, so depth 6 trains and
    /// writes dL/dh at each row; any other depth is refused before a
    /// folder is made, naming it. Read pixel by pixel at `downsample` 2
    /// (3 × 2 pixels) and permuted, it is 6 steps of 1.
    #[test]
    fn an_image_set_trains_as_a_sequence_of_its_rows_or_pixels() {
        let data = tempfile::tempdir().unwrap();
        gradscope_data::test_files::write_idx_set(data.path(), 32, 16, 6, 5);
        let text = |sequence: &str, depths: &str| {
            format!(
                r#"{{"name": "rows",
                  "dataset": {{"kind": "mnist", "dir": {:?}, {sequence}}},
                  "model": {{"family": "rnn", "width": 8, "cell": "lstm"}},
                  "variants": ["plain"], "depths": {depths}, "seeds": [0],
                  "train": {{"lr": 0.05, "batch_size": 8, "steps": 2, "eval_every": 2}},
                  "probe": {{"every": 1}}}}"#,
                data.path().display()
            )
        };
        let exp = |sequence: &str, depths: &str| {
            Experiment::from_json(&text(sequence, depths), Path::new("rows.json")).unwrap()
        };
        for sequence in [
            r#""sequence": "rows""#,
            r#""sequence": "pixels", "downsample": 2, "permute_seed": 2"#,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let sweep = prepare(exp(sequence, "[6]"), dir.path()).unwrap();
            let run = sweep.pending()[0].clone();
            let record = sweep
                .run(&run, &AtomicBool::new(false), &mut |_| {})
                .unwrap();
            assert_eq!(record.status, Status::Completed, "{sequence}");
            let csv = std::fs::read_to_string(sweep.run_dir(&run).join("gradients.csv")).unwrap();
            assert!(csv.contains(",t005.h,output,true,"), "{sequence}");
            assert!(!csv.contains("t006.h"), "{sequence}");
            let error = test_error_at(&sweep.run_dir(&run), 2);
            assert!((0.0..=1.0).contains(&error), "{sequence}: {error}");
        }
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = prepare(exp(r#""sequence": "rows""#, "[6, 28]"), dir.path()) else {
            panic!("depth 28 on 6 rows was taken");
        };
        assert_eq!(
            e.to_string(),
            r#"depths[1]: 28 is not the length of dataset.sequence "rows", 6 steps of 5 features (the rnn family's depth is the sequence length): write "depths": [6]"#
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "a folder was made"
        );
        // `gradscope check` says the same, from the files' headers alone.
        let e =
            crate::check::check_experiment(&exp(r#""sequence": "rows""#, "[6, 28]")).unwrap_err();
        assert!(e.to_string().starts_with("depths[1]: 28 is not"), "{e}");
    }

    /// Issue 34 §3 end to end: a two-layer rnn run's `gradients.csv` has a
    /// `weight` row for every gate block of every matrix (`cell1.w_hh.f`,
    /// after the head, off the trunk, no `output` row), and its other
    /// rows are where they were: h_t at `layer` t on the trunk with W_hh
    /// on `t000.h`, the LSTM's c_t at T + t, the head at the end of them.
    /// The decay in `run.json` is still fitted over h_t alone: it is the
    /// median of the decays of the CSV's trunk rows. `activations.csv`
    /// has h_t's rows and the last layer's gate readings, at `layer`s
    /// that no gradient row has, with no `q`.
    #[test]
    fn an_rnn_run_writes_every_matrix_and_keeps_its_trunk_rows() {
        use gradscope_format::rows::ActivationRow;
        use gradscope_format::GradientRow;
        let exp = Experiment::from_json(
            r#"{"name": "rnn-blocks",
              "dataset": {"kind": "adding", "samples": 64, "test_samples": 16, "seed": 1},
              "model": {"family": "rnn", "width": 4, "layers": 2, "cell": ["tanh", "lstm", "gru"]},
              "variants": ["plain"], "depths": [5], "seeds": [0],
              "task": "regression",
              "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 16, "steps": 6, "eval_every": 3},
              "probe": {"every": 1}}"#,
            Path::new("rnn.json"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sweep = prepare(exp, dir.path()).unwrap();
        let stop = AtomicBool::new(false);
        for run in sweep.pending().to_vec() {
            let record = sweep.run(&run, &stop, &mut |_| {}).unwrap();
            let name = run.name();
            let (cell, t_len) = (
                ["tanh", "lstm", "gru"]
                    .into_iter()
                    .find(|c| name.contains(c))
                    .unwrap(),
                5,
            );
            let gates: &[&str] = match cell {
                "lstm" => &["i", "f", "g", "o"],
                "gru" => &["r", "z", "n"],
                _ => &[""],
            };
            let head = if cell == "lstm" { 2 * t_len } else { t_len };
            // (layer, name, kind, trunk) of one probe step's rows.
            let mut want: Vec<(usize, String, &str, bool)> =
                vec![(0, "t000.h".into(), "weight", true)];
            want.extend((0..t_len).map(|t| (t, format!("t{t:03}.h"), "output", true)));
            if cell == "lstm" {
                want.extend((0..t_len).map(|t| (t_len + t, format!("t{t:03}.c"), "output", false)));
            }
            want.push((head, "head.linear".into(), "weight", false));
            want.push((head, "head.linear".into(), "output", false));
            let blocks = (0..2).flat_map(|l| {
                ["w_ih", "w_hh"].into_iter().flat_map(move |m| {
                    gates.iter().map(move |g| match *g {
                        "" => format!("cell{l}.{m}"),
                        g => format!("cell{l}.{m}.{g}"),
                    })
                })
            });
            want.extend(
                blocks
                    .enumerate()
                    .map(|(k, n)| (head + 1 + k, n, "weight", false)),
            );
            let path = sweep.run_dir(&run).join("gradients.csv");
            let rows: Vec<GradientRow> = csv::Reader::from_path(&path)
                .unwrap()
                .deserialize()
                .map(Result::unwrap)
                .collect();
            let key = |r: &GradientRow| (r.layer, r.name.clone(), r.kind.clone(), r.trunk);
            let step0: Vec<_> = rows.iter().filter(|r| r.step == 0).map(key).collect();
            let want: Vec<_> = want
                .into_iter()
                .map(|(l, n, k, t)| (l, n, k.to_string(), t))
                .collect();
            assert_eq!(step0, want, "{name}");
            assert!(rows
                .iter()
                .filter(|r| r.kind == "weight")
                .all(|r| r.l2.unwrap() > 0.0 && r.weight_norm.unwrap() > 0.0));

            let ends = &record.gradient_ends;
            let trunk: Vec<String> = (0..t_len).map(|t| format!("t{t:03}.h")).collect();
            assert_eq!(ends.trunk_points, trunk, "{name}");
            let mut window = gradscope_format::decay::ProfileWindow::new();
            for step in 0..6 {
                let profile: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.step == step && r.trunk && r.is_output())
                    .map(|r| r.rms.unwrap())
                    .collect();
                assert_eq!(profile.len(), t_len, "{name}");
                window.push(profile);
            }
            let (csv_decay, decay) = (
                window.readings().decay_init.unwrap(),
                ends.decay_init.unwrap(),
            );
            assert!(
                (csv_decay - decay).abs() <= 1e-5 * decay.abs(),
                "{name}: {csv_decay} vs {decay}"
            );

            let path = sweep.run_dir(&run).join("activations.csv");
            let acts: Vec<ActivationRow> = csv::Reader::from_path(&path)
                .unwrap()
                .deserialize()
                .map(Result::unwrap)
                .collect();
            let step0: Vec<&ActivationRow> = acts.iter().filter(|r| r.step == 0).collect();
            let read: &[&str] = match cell {
                "lstm" => &["f", "i", "o"],
                "gru" => &["z", "r"],
                _ => &[],
            };
            assert_eq!(step0.len(), t_len * (1 + read.len()), "{name}");
            let first_gate = head + 1 + 2 * 2 * gates.len();
            for (i, r) in step0.iter().enumerate() {
                let (layer, point) = match i.checked_sub(t_len) {
                    None => (i, format!("t{i:03}.h")),
                    Some(k) => (
                        first_gate + k,
                        format!("t{:03}.gate_{}", k % t_len, read[k / t_len]),
                    ),
                };
                assert_eq!((r.layer, &r.name), (layer, &point), "{name}");
                assert_eq!(r.q.is_some(), i < t_len, "{name}: q only at h_t");
                assert!(
                    !rows.iter().any(|g| g.layer == r.layer && g.name != r.name),
                    "{name}: {point}"
                );
            }
        }
    }
}

/// Issue 35 §3: `wgrad_decay_init` and `_final` in summary.csv for every
/// family, from tiny real runs.
#[cfg(test)]
mod wgrad_tests {
    use super::*;
    use gradscope_format::rows::SummaryRow;
    use gradscope_format::wgrad::{main_weights, Point};
    use gradscope_format::GradientRow;

    /// Trains every run of `json`, writes summary.csv and reads it back,
    /// checking each run's wgrad readings against the same rule applied
    /// to its gradients.csv (float32 text, so to 1e-5). Also returns each
    /// run's main weights by name, from its step-0 rows.
    fn summary_of(json: &str) -> (Vec<SummaryRow>, Vec<Vec<Option<String>>>) {
        let exp = Experiment::from_json(json, Path::new("wgrad.json")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sweep = Sweep::prepare(
            exp,
            dir.path(),
            Device::Cpu,
            1,
            Existing::Refuse,
            None,
            "run",
        )
        .unwrap();
        let stop = AtomicBool::new(false);
        let mut names = Vec::new();
        for run in sweep.pending().to_vec() {
            let record = sweep.run(&run, &stop, &mut |_| {}).unwrap();
            assert_eq!(record.status, Status::Completed, "{}", run.name());
            let points: Vec<(String, bool, bool)> = record
                .probe_points
                .iter()
                .map(|name| (name.clone(), false, false))
                .collect();
            let rows: Vec<GradientRow> =
                csv::Reader::from_path(sweep.run_dir(&run).join("gradients.csv"))
                    .unwrap()
                    .deserialize()
                    .map(Result::unwrap)
                    .collect();
            let mut points = points;
            for r in rows.iter().filter(|r| r.step == 0) {
                points[r.layer].1 |= !r.is_output();
                points[r.layer].2 |= r.trunk;
            }
            let shape: Vec<Point> = points
                .iter()
                .map(|(name, weight, trunk)| Point {
                    name,
                    weight: *weight,
                    trunk: *trunk,
                })
                .collect();
            names.push(
                main_weights(&shape)
                    .into_iter()
                    .map(|m| m.map(|i| points[i].0.clone()))
                    .collect(),
            );
            let csv = gradscope_format::wgrad::readings_of(&rows);
            let ends = &record.gradient_ends;
            for (from_csv, from_loop) in [
                (csv.decay_init, ends.wgrad_decay_init),
                (csv.decay_final, ends.wgrad_decay_final),
            ] {
                if let (Some(a), Some(b)) = (from_csv, from_loop) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} vs {b}");
                }
            }
        }
        let path = sweep.write_summary().unwrap();
        let summary = csv::Reader::from_path(path)
            .unwrap()
            .deserialize()
            .map(Result::unwrap)
            .collect();
        (summary, names)
    }

    /// A plain sigmoid MLP with PyTorch's default init: backward through
    /// each layer multiplies dL/dh by about √(1/3)·0.245 (Glorot & Bengio
    /// 2010 §4.2, their Fig. 7 with the standard init), and ∇W of a layer
    /// is its input (sigmoid outputs, near 0.5 at every depth) times dL/dh,
    /// so the weight gradients shrink toward the input too: a positive
    /// decay, in grad_decay's sign. A CNN's reading is a finite number.
    #[test]
    fn a_sigmoid_mlp_loses_weight_gradient_toward_the_input_and_a_cnn_reads() {
        let (mlp, names) = summary_of(
            r#"{"name": "wgrad-mlp",
              "dataset": {"kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 16},
              "model": {"family": "mlp", "width": 16, "activation": "sigmoid", "norm": "none", "init": "pytorch-default"},
              "variants": ["plain"], "depths": [10], "seeds": [0],
              "train": {"lr": 0.1, "batch_size": 64, "steps": 12, "eval_every": 12},
              "probe": {"every": 1}}"#,
        );
        let row = &mlp[0];
        let (init, fin) = (
            row.wgrad_decay_init.unwrap(),
            row.wgrad_decay_final.unwrap(),
        );
        eprintln!(
            "sigmoid MLP d10 w16: wgrad_decay_init {init}, wgrad_decay_final {fin}, grad_decay_init {:?}",
            row.grad_decay_init
        );
        assert!(init > 0.0 && fin > 0.0, "{row:?}");
        let hidden: Vec<Option<String>> = (1..9)
            .map(|l| Some(format!("layer{l:02}.linear")))
            .collect();
        assert_eq!(names[0], hidden);

        // Residual with option B: its stride-2 blocks have a projection
        // after their convs, which the rule passes over.
        let (cnn, names) = summary_of(
            r#"{"name": "wgrad-cnn",
              "dataset": {"kind": "synthetic-images", "samples": 64, "test_samples": 32, "classes": 3, "shape": [1, 8, 8]},
              "model": {"family": "cnn", "width": 4, "norm": "batchnorm", "init": "kaiming", "shortcut": "b"},
              "variants": ["plain", "residual"], "depths": [14], "seeds": [0],
              "train": {"lr": 0.05, "batch_size": 32, "steps": 12, "eval_every": 12},
              "probe": {"every": 1}}"#,
        );
        for row in &cnn {
            eprintln!(
                "{}: wgrad_decay_init {:?}, wgrad_decay_final {:?}",
                row.run, row.wgrad_decay_init, row.wgrad_decay_final
            );
            assert!(row.wgrad_decay_init.is_some_and(f64::is_finite), "{row:?}");
            assert!(row.wgrad_decay_final.is_some_and(f64::is_finite), "{row:?}");
        }
        // CNN-14: a stem, six blocks of two 3×3 convs (layer01 … layer12),
        // the fc: each block's main weight is its second conv.
        let second_convs: Vec<Option<String>> = (1..=6)
            .map(|b| Some(format!("layer{:02}.conv", 2 * b)))
            .collect();
        assert_eq!(names[0], second_convs, "plain");
        assert_eq!(names[1], second_convs, "residual, option B");
    }

    /// The rnn family's trunk is time and its weights are shared by the
    /// steps: no main weights, an empty column.
    #[test]
    fn an_rnn_has_no_weight_gradient_decay() {
        let (rnn, _) = summary_of(
            r#"{"name": "wgrad-rnn",
              "dataset": {"kind": "adding", "samples": 64, "test_samples": 16, "seed": 1},
              "model": {"family": "rnn", "width": 4, "cell": "tanh"},
              "variants": ["plain"], "depths": [6], "seeds": [0],
              "task": "regression",
              "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 16, "steps": 4, "eval_every": 4},
              "probe": {"every": 1}}"#,
        );
        assert!(rnn[0].grad_decay_init.is_some(), "{:?}", rnn[0]);
        assert_eq!(
            (rnn[0].wgrad_decay_init, rnn[0].wgrad_decay_final),
            (None, None)
        );
    }
}
