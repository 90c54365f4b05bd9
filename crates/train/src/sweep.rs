//! The results directory of one experiment, and the runs that fill it.
//!
//! ```text
//! OUT/summary.csv                one row per run that has started
//! OUT/runs/RUN/run.json          status "running" while it trains, then final
//! OUT/runs/RUN/{metrics,gradients,activations}.csv
//! ```
//!
//! Everything that can be checked is checked in [`Sweep::prepare`], before
//! any run folder exists, so a bad experiment never leaves a half-created
//! run behind.

use crate::plan::{plan, RunSpec};
use crate::record::{write_summary, RunRecord, Status, Versions};
use crate::spec::{DatasetSpec, Experiment, SyntheticData, SyntheticImages};
use crate::train_loop::{build_network, train_run};
use crate::TrainError;
use gradscope_data::textures::{synthetic_images, TextureSpec};
use gradscope_data::{cifar, idx, synthetic, Dataset, SyntheticSpec};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use tch::Device;

/// The held-out size of a generated dataset: as given, or a quarter of the
/// training size (at least one).
fn default_test_samples(samples: usize, test_samples: Option<usize>) -> usize {
    test_samples.unwrap_or((samples / 4).max(1))
}

/// Builds or reads the dataset an experiment names (on the CPU), prepared
/// as the file asks: subset, validation split, per-channel normalization.
pub fn load_dataset(spec: &DatasetSpec) -> Result<Dataset, TrainError> {
    let files = match spec {
        DatasetSpec::Synthetic(SyntheticData {
            samples,
            test_samples,
            classes,
            features,
            teacher_width,
            seed,
        }) => {
            return Ok(synthetic(&SyntheticSpec {
                samples: *samples,
                test_samples: default_test_samples(*samples, *test_samples),
                classes: *classes,
                features: *features,
                teacher_width: teacher_width.unwrap_or(2 * classes),
                seed: *seed,
            })?)
        }
        DatasetSpec::SyntheticImages(SyntheticImages {
            samples,
            test_samples,
            classes,
            shape,
            noise,
            seed,
        }) => {
            return Ok(synthetic_images(&TextureSpec {
                samples: *samples,
                test_samples: default_test_samples(*samples, *test_samples),
                classes: *classes,
                shape: *shape,
                noise: *noise,
                seed: *seed,
            })?)
        }
        DatasetSpec::FashionMnist(f) | DatasetSpec::Mnist(f) | DatasetSpec::Cifar10(f) => f,
    };
    // Validation guarantees a dir for mnist and cifar10.
    let dir = files
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(idx::FASHION_MNIST_DIR));
    let mut data = match spec {
        DatasetSpec::FashionMnist(_) => {
            idx::idx_dataset(&dir, "fashion-mnist", idx::FASHION_MNIST_HINT)?
        }
        DatasetSpec::Mnist(_) => idx::idx_dataset(
            &dir,
            "mnist",
            "download the four MNIST IDX files (train-images-idx3-ubyte.gz, …) into this folder",
        )?,
        _ => cifar::cifar10(&dir)?,
    };
    // Carve validation from the full training split, then subset each split.
    if let Some(n) = files.validation {
        data = data.split_validation(n)?;
    }
    data = data.subset(files.subset_train, files.subset_test)?;
    if files.normalize {
        data = data.normalize_per_channel();
    }
    Ok(data)
}

/// An experiment ready to run into its results directory.
pub struct Sweep {
    experiment: Experiment,
    out: PathBuf,
    device: Device,
    threads: i32,
    data: Dataset,
    runs: Vec<RunSpec>,
    /// Recorded in each run.json as `experiment_file`.
    experiment_file: Option<String>,
}

impl Sweep {
    /// Loads the data, moves it to `device`, and makes sure `out` can be
    /// written (creating `out/runs`).
    pub fn prepare(
        experiment: Experiment,
        out: &Path,
        device: Device,
        threads: i32,
    ) -> Result<Sweep, TrainError> {
        let data = load_dataset(&experiment.dataset)?;
        let train_len = data.train.len() as usize;
        if experiment.train.batch_size > train_len {
            return Err(TrainError::Invalid {
                field: "train.batch_size".into(),
                message: format!(
                    "{} is larger than the {train_len} training examples",
                    experiment.train.batch_size
                ),
            });
        }
        let runs = plan(&experiment);
        // Build every network once on the CPU before any folder exists, so
        // a shape that cannot work (too small an input, a depth the family
        // cannot take) is refused up front, naming the layer or field.
        for run in &runs {
            let vs = tch::nn::VarStore::new(Device::Cpu);
            build_network(&vs.root(), &experiment, &data, run)?;
        }
        let data = data.to_device(device);
        let runs_dir = out.join("runs");
        std::fs::create_dir_all(&runs_dir).map_err(TrainError::io(&runs_dir))?;
        // create_dir_all succeeds on an existing read-only folder: try a write.
        let probe_file = out.join(format!(".gradscope-write-check-{}", std::process::id()));
        std::fs::write(&probe_file, b"").map_err(TrainError::io(out))?;
        std::fs::remove_file(&probe_file).map_err(TrainError::io(&probe_file))?;
        Ok(Sweep {
            experiment,
            out: out.to_path_buf(),
            device,
            threads,
            data,
            runs,
            experiment_file: None,
        })
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

    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    pub fn runs(&self) -> &[RunSpec] {
        &self.runs
    }

    pub fn out(&self) -> &Path {
        &self.out
    }

    pub fn run_dir(&self, run: &RunSpec) -> PathBuf {
        self.out.join("runs").join(run.name())
    }

    /// Trains one run into a fresh `runs/RUN/`, writing `run.json` before
    /// (status `running`) and after, then refreshes `summary.csv`. A run that
    /// fails inside training is recorded as `failed` and returned, so the
    /// sweep can go on; only errors writing its own files are returned as
    /// `Err`.
    pub fn run(
        &self,
        run: &RunSpec,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize),
    ) -> Result<RunRecord, TrainError> {
        let dir = self.run_dir(run);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(TrainError::io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(TrainError::io(&dir))?;
        let json = dir.join("run.json");
        let mut record = RunRecord {
            experiment: self.experiment.name.clone(),
            experiment_file: self.experiment_file.clone(),
            run: run.name(),
            variant: run.variant.as_str().to_string(),
            depth: run.depth,
            seed: run.seed,
            status: Status::Running,
            diverged_at_step: None,
            error: None,
            steps_planned: self.steps(),
            steps_done: 0,
            params: 0,
            elapsed_s: 0.0,
            device: format!("{:?}", self.device).to_lowercase(),
            threads: self.threads,
            versions: Versions::current(),
            final_metrics: Default::default(),
            gradient_ends: Default::default(),
            probe_points: Vec::new(),
            config: self.experiment.clone(),
        };
        record.write(&json)?;

        match train_run(&self.experiment, &self.data, run, &dir, stop, progress) {
            Ok(o) => {
                record.status = o.status;
                record.steps_done = o.steps_done;
                record.diverged_at_step = o.diverged_at_step;
                record.final_metrics = o.final_metrics;
                record.gradient_ends = o.gradient_ends;
                record.params = o.params;
                record.probe_points = o.probe_points;
                record.elapsed_s = o.elapsed_s;
            }
            Err(e) => {
                record.status = Status::Failed;
                record.error = Some(e.to_string());
            }
        }
        record.write(&json)?;
        self.write_summary()?;
        Ok(record)
    }

    /// Rewrites `summary.csv` from the `run.json` of every planned run that
    /// has one, in plan order.
    pub fn write_summary(&self) -> Result<PathBuf, TrainError> {
        let mut records = Vec::new();
        for run in &self.runs {
            let json = self.run_dir(run).join("run.json");
            if json.exists() {
                records.push(RunRecord::read(&json)?);
            }
        }
        let path = self.out.join("summary.csv");
        write_summary(&path, &records)?;
        Ok(path)
    }
}
