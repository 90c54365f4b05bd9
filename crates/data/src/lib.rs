//! gradscope-data: the datasets gradscope trains on, as tensors.
//!
//! The main types are [`Dataset`] (a train split and a held-out split, with
//! the input shape and class count) and [`Split`]. Where datasets come from:
//!
//! - [`synthetic`] builds a classification task in-process from a seed:
//!   Gaussian inputs labelled by a fixed random teacher network, so tests and
//!   the quickstart need no files and no downloads.
//! - [`textures::synthetic_images`] makes images whose class is a tiled
//!   random texture: a tiny image task that a small CNN learns in seconds.
//! - [`idx`] reads the IDX format of MNIST and Fashion-MNIST, raw or gzipped
//!   (gzip is told by its magic bytes, not the file name);
//!   [`idx::idx_dataset`] loads the four standard files from a directory,
//!   such as [`idx::FASHION_MNIST_DIR`] where Debian's
//!   `dataset-fashion-mnist` package puts them.
//! - [`cifar::cifar10`] reads the binary version of CIFAR-10
//!   (`data_batch_{1..5}.bin`, `test_batch.bin`).
//! - [`sequences`] makes the recurrent family's tasks: the adding problem
//!   and the copy task from a seed, and an image set read as a sequence
//!   (row by row or pixel by pixel, optionally permuted).
//! - [`tokens`] makes the synthetic token tasks (sort, reverse, copy with
//!   an offset) from a seed, for the Transformer and rnn families.
//!
//! Readers check every header and length against the bytes really there and
//! return [`DataError`] naming the file; no input bytes make them panic or
//! allocate more than the file can hold.
//!
//! [`prep`] prepares a loaded dataset: [`Dataset::subset`],
//! [`Dataset::split_validation`] (He et al.'s 45k/5k held-out split),
//! [`Dataset::normalize_per_channel`] and the pad-crop-flip minibatch
//! augmentation [`prep::augment`].
//!
//! Randomness here comes from [`rng::SplitMix64`], not from libtorch: the
//! libtorch generator is process-global, and the data must not change when a
//! caller draws from it before or after (model init, dropout, …).

#![forbid(unsafe_code)]

pub mod cifar;
#[cfg(test)]
mod fuzz;
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz_harness;
pub mod idx;
pub mod prep;
pub mod rng;
pub mod sequences;
pub mod spec;
#[cfg(any(test, feature = "fuzz"))]
pub mod test_files;
pub mod textures;
pub mod tokens;
pub mod validate;

use std::fs::File;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

pub use cifar::{cifar10, cifar10_info, CIFAR10_HINT};
pub use idx::{idx_dataset, idx_info, FASHION_MNIST_DIR, FASHION_MNIST_HINT};
pub use prep::augment;

/// Errors from building or loading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A dataset setting that cannot work; `field` names it as in the
    /// experiment file.
    #[error("dataset.{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The dataset's folder itself is not there (or is not a folder): said
    /// first, since listing the files it would hold hides the real problem.
    #[error("dataset.dir: {} {what}. {hint}", .dir.display())]
    MissingDir {
        dir: PathBuf,
        /// "does not exist" or "is not a directory".
        what: &'static str,
        hint: String,
    },
    /// Dataset files that are not there. `looked` lists every path tried;
    /// `hint` says how to get the files.
    #[error("dataset files not found; looked for: {}. To get them: {hint}", display_paths(.looked))]
    Missing { looked: Vec<PathBuf>, hint: String },
    /// A file whose bytes are not what its format promises (bad magic,
    /// truncated, trailing bytes, a label out of range, …).
    #[error("{}: {what}", .path.display())]
    Corrupt { path: PathBuf, what: String },
    /// The file system refused (permissions, a directory where a file was
    /// expected, a read error).
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl DataError {
    fn corrupt(path: &Path, what: impl Into<String>) -> DataError {
        DataError::Corrupt {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }

    fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Refuses a dataset folder that does not exist or is not a folder.
pub(crate) fn check_dir(dir: &Path, hint: &str) -> Result<(), DataError> {
    let what = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => "is not a directory",
        // Permission errors and the like are the readers' to report, with
        // the file they could not open.
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => "does not exist",
    };
    Err(DataError::MissingDir {
        dir: dir.to_path_buf(),
        what,
        hint: hint.to_string(),
    })
}

/// Opens `path` for reading and returns it with its length in bytes.
///
/// A directory is refused up front: on Linux `File::open` succeeds on one
/// and only the first read fails, with a less helpful message.
fn open_file(path: &Path) -> Result<(File, u64), DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.is_dir() {
        return Err(DataError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory, not a data file",
            ),
        ));
    }
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    Ok((file, meta.len()))
}

/// One split: inputs `x` (`[n, ...input_shape]`, float) and labels `y`
/// (`[n]`, int64 class indices).
#[derive(Debug)]
pub struct Split {
    pub x: Tensor,
    pub y: Tensor,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> i64 {
        self.y.size()[0]
    }

    /// True when the split holds no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn to_device(&self, device: Device) -> Split {
        Split {
            x: self.x.to_device(device),
            y: self.y.to_device(device),
        }
    }
}

/// A classification dataset: a train split and a held-out split.
#[derive(Debug)]
pub struct Dataset {
    /// Short name for logs and `run.json` (`synthetic`, …).
    pub name: String,
    pub train: Split,
    pub test: Split,
    /// Shape of one input, without the batch dimension.
    pub input_shape: Vec<i64>,
    pub classes: i64,
}

impl Dataset {
    /// Splits generated rows: the first `n_train` rows train, the rest are
    /// held out.
    pub fn from_rows(
        name: &str,
        x: Tensor,
        y: Tensor,
        n_train: usize,
        input_shape: Vec<i64>,
        classes: i64,
    ) -> Dataset {
        let (n_train, n) = (n_train as i64, y.size()[0]);
        Dataset {
            name: name.to_string(),
            train: Split {
                x: x.narrow(0, 0, n_train),
                y: y.narrow(0, 0, n_train),
            },
            test: Split {
                x: x.narrow(0, n_train, n - n_train),
                y: y.narrow(0, n_train, n - n_train),
            },
            input_shape,
            classes,
        }
    }

    /// Number of input features when flattened (what an MLP reads).
    pub fn input_dim(&self) -> i64 {
        self.input_shape.iter().product()
    }

    /// A copy with both splits moved to `device` (done once, before training,
    /// so minibatches are sliced on the device).
    pub fn to_device(&self, device: Device) -> Dataset {
        Dataset {
            name: self.name.clone(),
            train: self.train.to_device(device),
            test: self.test.to_device(device),
            input_shape: self.input_shape.clone(),
            classes: self.classes,
        }
    }
}

/// What a dataset holds, known without its tensors: the split sizes, the
/// input shape and the classes. [`idx::idx_info`] and
/// [`cifar::cifar10_info`] read it from the files' headers and sizes, so
/// `gradscope check` refuses what `gradscope run` would, in a fraction of
/// the time and memory; [`DatasetInfo::subset`] and
/// [`DatasetInfo::split_validation`] apply the same checks as their
/// [`Dataset`] namesakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInfo {
    pub name: String,
    /// Training examples.
    pub train: usize,
    /// Held-out examples.
    pub test: usize,
    pub input_shape: Vec<i64>,
    pub classes: i64,
}

impl DatasetInfo {
    /// Number of input features when flattened.
    pub fn input_dim(&self) -> i64 {
        self.input_shape.iter().product()
    }

    /// A dataset of this shape with one zero example per split: enough to
    /// build a network for it (which reads the shape and the classes) and
    /// run a forward pass, without loading the data.
    pub fn placeholder(&self) -> Dataset {
        let mut shape = vec![1];
        shape.extend_from_slice(&self.input_shape);
        let split = || Split {
            x: Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu)),
            y: Tensor::zeros([1], (Kind::Int64, Device::Cpu)),
        };
        Dataset {
            name: self.name.clone(),
            train: split(),
            test: split(),
            input_shape: self.input_shape.clone(),
            classes: self.classes,
        }
    }
}

/// Settings of the synthetic teacher task.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    /// Training examples.
    pub samples: usize,
    /// Held-out examples.
    pub test_samples: usize,
    pub classes: usize,
    pub features: usize,
    /// Width of the teacher's one hidden tanh layer.
    pub teacher_width: usize,
    /// Seed of inputs and teacher; independent of the run seed, so every run
    /// of a sweep sees the same data.
    pub seed: u64,
}

/// The sizes every generated dataset needs: an example in each split.
pub(crate) fn generated_sizes(samples: usize, test_samples: usize) -> Result<(), DataError> {
    for (field, n) in [("samples", samples), ("test_samples", test_samples)] {
        if n == 0 {
            return Err(DataError::Invalid {
                field,
                message: "must be at least 1".to_string(),
            });
        }
    }
    Ok(())
}

/// Gaussian inputs `x ~ N(0, I)` labelled by a random one-hidden-layer tanh
/// teacher, `y = argmax(W2 tanh(W1 x) + b)`.
///
/// A teacher with a hidden layer makes the task non-linear (a linear
/// classifier does not solve it perfectly) yet small enough that a shallow
/// student learns it in a few hundred steps. The class biases `b` are tuned
/// on the drawn inputs so the classes come out nearly balanced: then an
/// error of `1 - 1/classes` really means chance.
pub fn synthetic(spec: &SyntheticSpec) -> Result<Dataset, DataError> {
    let invalid = |field, message: &str| DataError::Invalid {
        field,
        message: message.to_string(),
    };
    generated_sizes(spec.samples, spec.test_samples)?;
    if spec.classes < 2 {
        return Err(invalid("classes", "must be at least 2"));
    }
    if spec.features == 0 {
        return Err(invalid("features", "must be at least 1"));
    }
    if spec.teacher_width == 0 {
        return Err(invalid("teacher_width", "must be at least 1"));
    }
    let mut rng = rng::SplitMix64::new(spec.seed);
    let (d, h, c) = (spec.features, spec.teacher_width, spec.classes);
    let w1: Vec<f32> = (0..d * h)
        .map(|_| rng.normal() / (d as f32).sqrt())
        .collect();
    let w2: Vec<f32> = (0..h * c)
        .map(|_| rng.normal() / (h as f32).sqrt())
        .collect();
    let n = spec.samples + spec.test_samples;
    let x: Vec<f32> = (0..n * d).map(|_| rng.normal()).collect();

    let x = Tensor::from_slice(&x).view([n as i64, d as i64]);
    let w1 = Tensor::from_slice(&w1).view([d as i64, h as i64]);
    let w2 = Tensor::from_slice(&w2).view([h as i64, c as i64]);
    let logits = x.matmul(&w1).tanh().matmul(&w2);
    let y = balanced_argmax(&logits, c as i64);

    Ok(Dataset::from_rows(
        "synthetic",
        x,
        y,
        spec.samples,
        vec![d as i64],
        c as i64,
    ))
}

/// Argmax of `logits + b`, with per-class biases `b` adjusted until every
/// class holds close to `1/classes` of the rows (a random teacher alone gives
/// shares from a few percent to half). Each round lowers the bias of a class
/// by the log of how over-represented it is.
fn balanced_argmax(logits: &Tensor, classes: i64) -> Tensor {
    let n = logits.size()[0] as f64;
    // Small steps on the logits' own scale: big ones oscillate.
    let step = 0.1 * logits.std(false).double_value(&[]);
    let mut bias = Tensor::zeros([classes], (Kind::Float, logits.device()));
    for _ in 0..300 {
        let y = (logits + &bias).argmax(1, false);
        let counts = y.bincount::<Tensor>(None, classes).to_kind(Kind::Float);
        let share = (counts + 1.0) / (n + classes as f64) * classes as f64;
        bias -= share.log() * step;
    }
    (logits + &bias).argmax(1, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SyntheticSpec {
        SyntheticSpec {
            samples: 512,
            test_samples: 128,
            classes: 4,
            features: 8,
            teacher_width: 8,
            seed: 3,
        }
    }

    #[test]
    fn synthetic_has_requested_shapes_and_labels_in_range() {
        let ds = synthetic(&spec()).unwrap();
        assert_eq!(ds.train.x.size(), vec![512, 8]);
        assert_eq!(ds.test.x.size(), vec![128, 8]);
        assert_eq!(ds.train.y.kind(), Kind::Int64);
        assert!(ds.train.y.min().int64_value(&[]) >= 0);
        assert!(ds.train.y.max().int64_value(&[]) < 4);
    }

    #[test]
    fn synthetic_is_a_function_of_its_seed_only() {
        // Drawing from libtorch's global RNG in between must not matter.
        let a = synthetic(&spec()).unwrap();
        let _ = Tensor::randn([1000], (Kind::Float, Device::Cpu));
        let b = synthetic(&spec()).unwrap();
        assert!(a.train.x.equal(&b.train.x) && a.test.y.equal(&b.test.y));
        let other = synthetic(&SyntheticSpec { seed: 4, ..spec() }).unwrap();
        assert!(!a.train.x.equal(&other.train.x));
    }

    #[test]
    fn synthetic_classes_are_roughly_balanced() {
        // The tuned biases should give every class close to 1/4 of the
        // examples; chance error is then close to 1 - 1/classes.
        let ds = synthetic(&SyntheticSpec {
            samples: 4000,
            ..spec()
        })
        .unwrap();
        let counts = ds.train.y.bincount::<Tensor>(None, 4);
        let min_share = counts.min().double_value(&[]) / 4000.0;
        assert!(min_share > 0.2, "smallest class share {min_share}");
    }

    #[test]
    fn synthetic_rejects_impossible_settings_by_field() {
        let err = synthetic(&SyntheticSpec {
            classes: 1,
            ..spec()
        })
        .unwrap_err();
        assert!(err.to_string().contains("dataset.classes"), "{err}");
    }
}
