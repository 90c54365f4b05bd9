//! `run --jobs N`: the sweep's side of training runs in worker processes.
//!
//! libtorch's RNG and its intra-op thread count are process-global, so two
//! runs trained at once in one process would draw from one generator and
//! their files would depend on timing. Each run is trained instead in a
//! worker process of its own ([`Sweep::for_worker`]): the same code as a
//! sequential sweep ([`Sweep::train`]), so its CSVs are byte for byte those
//! of a sequential run with the same thread count. A libtorch abort or an
//! out-of-memory kill ends only its worker; the parent records the run as
//! failed ([`Sweep::record_lost`]) and goes on.
//!
//! The parent holds the results lock and is the only writer of
//! `summary.csv`; a worker writes nothing but its run's folder, and refuses
//! to start unless the lock is held by its parent.

use crate::lock::live_holder;
use crate::plan::{plan, RunSpec};
use crate::record::{read_record, write_record, RunRecord, Status};
use crate::spec::Experiment;
use crate::sweep::{
    experiment_dataset, last_train_step, load_dataset, partial_dir, publish, Existing, Sweep,
};
use crate::TrainError;
use gradscope_format::files::{METRICS_CSV, RUNS_DIR, RUN_JSON};
use std::path::Path;
use tch::Device;

impl Sweep {
    /// The sweep as a worker of process `parent` sees it: the experiment's
    /// data loaded, every planned run findable by name, no lock taken (the
    /// parent holds it, which is checked) and nothing decided: the parent
    /// has already cleaned the folder and chosen the runs. With `resume`, a
    /// run goes on from its checkpoint as in `run --resume`.
    pub fn for_worker(
        experiment: Experiment,
        out: &Path,
        parent: u32,
        device: Device,
        threads: i32,
        resume: bool,
        experiment_file: Option<String>,
    ) -> Result<Sweep, TrainError> {
        let held_by_parent = live_holder(out).is_some_and(|h| h.pid == parent);
        if !held_by_parent {
            return Err(TrainError::Invalid {
                field: out.display().to_string(),
                message: format!(
                    "a worker trains only into a results directory locked by its parent (pid {parent}); `gradscope run --jobs N` starts workers itself"
                ),
            });
        }
        let runs_dir = out.join(RUNS_DIR);
        if !runs_dir.is_dir() {
            return Err(TrainError::Invalid {
                field: runs_dir.display().to_string(),
                message: "no such folder; the parent sweep creates it".into(),
            });
        }
        let data = load_dataset(&experiment_dataset(&experiment))?.to_device(device);
        let runs = plan(&experiment);
        Ok(Sweep {
            costs: vec![0.0; runs.len()],
            experiment,
            out: out.to_path_buf(),
            device,
            threads,
            data,
            runs,
            kept: Vec::new(),
            pending: Vec::new(),
            stale_lock: None,
            existing: if resume {
                Existing::Resume
            } else {
                Existing::Restart
            },
            _lock: None,
            experiment_file,
            notes: Vec::new(),
        })
    }

    /// The experiment file recorded in each run.json, if one was named.
    pub fn experiment_file(&self) -> Option<&str> {
        self.experiment_file.as_deref()
    }

    /// The planned run called `name`.
    pub fn planned(&self, name: &str) -> Option<&RunSpec> {
        self.runs.iter().find(|r| r.name() == name)
    }

    /// A run's estimated cost (steps × multiplications per example), what
    /// shards balance and `--jobs` trains longest first by.
    pub fn cost(&self, run: &RunSpec) -> f64 {
        self.runs
            .iter()
            .position(|r| r == run)
            .map_or(0.0, |i| self.costs[i])
    }

    /// Records `run` as failed because its worker ended without finishing
    /// it (`why`: killed by a signal, exited with a code), keeping what the
    /// worker had written: its run.json becomes `failed`, its step count is
    /// its last training row, and the folder is published as any ended run.
    /// A checkpoint it left lets `--resume` go on from there.
    pub fn record_lost(&self, run: &RunSpec, why: &str) -> Result<RunRecord, TrainError> {
        let final_dir = self.run_dir(run);
        let dir = partial_dir(&final_dir);
        if !dir.exists() {
            // The worker died before it created the folder, or it had
            // already put the run in place and died before saying so.
            if let Ok(done) = read_record(&final_dir.join(RUN_JSON)) {
                if done.status != Status::Running {
                    return Ok(done);
                }
            }
            std::fs::create_dir_all(&dir).map_err(TrainError::io(&dir))?;
        }
        let json = dir.join(RUN_JSON);
        let mut record = read_record(&json).unwrap_or_else(|_| self.new_record(run, Vec::new()));
        record.status = Status::Failed;
        record.error = Some(why.to_string());
        record.steps_done = last_train_step(&dir.join(METRICS_CSV)).unwrap_or(0);
        write_record(&record, &json)?;
        publish(&final_dir)?;
        Ok(record)
    }
}
