//! The dataset section of an experiment file (`"dataset": {"kind": …}`):
//! each kind's options (serde, defaults, the JSON Schema), their checks,
//! and [`DatasetSpec::load`] and [`DatasetSpec::info`], which build or
//! read the data (or measure them without loading). gradscope-train's
//! experiment file holds a `DatasetSpec`.
//!
//! Tagged objects: serde's own internally tagged enums buffer their content
//! and lose the path of an error inside it ("dataset: unknown field"
//! instead of "dataset.subset_tain: …"). [`DatasetSpec`]'s `Deserialize`
//! (and gradscope-models' `ModelSpec`'s) reads the tag itself with
//! [`Section::take_tag`] and parses the rest with [`Section::tagged`], which
//! keeps the inner path; it travels out at the head of the message (see
//! [`Section`]), and
//! the experiment parser joins it to the outer one.

use crate::sequences::{adding, copy, AddingSpec, CopySpec, Sequence, COPY_RECALL, COPY_SYMBOLS};
use crate::textures::{synthetic_images, TextureSpec};
use crate::tokens::{tokens, TokenSpec, TokenTask, TOKEN_LENGTH, TOKEN_OFFSET, TOKEN_VOCAB};
use crate::{cifar, idx, synthetic, DataError, Dataset, DatasetInfo, SyntheticSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the data come from, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DatasetSpec {
    Synthetic(SyntheticData),
    /// Class-textured images, for tests and quick CNN runs.
    #[serde(rename = "synthetic-images")]
    SyntheticImages(SyntheticImages),
    /// Fashion-MNIST from IDX files (default: Debian's dataset-fashion-mnist).
    #[serde(rename = "fashion-mnist")]
    FashionMnist(FileData),
    /// MNIST from IDX files in `dir`.
    Mnist(FileData),
    /// CIFAR-10, binary version, from `dir`.
    Cifar10(FileData),
    /// The adding problem (Hochreiter & Schmidhuber 1997), sequences for
    /// the rnn family with the `regression` task.
    Adding(AddingData),
    /// The copy (memory) task (Hochreiter & Schmidhuber 1997; Arjovsky et
    /// al. 2016), sequences for the rnn family, classified at each of the
    /// last `recall` steps.
    Copy(CopyData),
    /// Sort `length` uniform tokens (see gradscope-data::tokens), output at
    /// every position; chance is that of the order statistics (0.25 for 2
    /// tokens over 2 symbols).
    Sort(TokenData),
    /// Output `length` uniform tokens reversed, at every position; chance
    /// 1 − 1/vocab.
    Reverse(TokenData),
    /// Output each token `offset` steps later, at positions offset..length;
    /// chance 1 − 1/vocab.
    #[serde(rename = "copy-offset")]
    CopyOffset(CopyOffsetData),
}

/// The sort and reverse token tasks (see gradscope-data::tokens): inputs
/// `[length, vocab]` one-hot over `length` uniform tokens, a target token
/// at each of the `length` positions. The error is the per-token error
/// rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenData {
    #[schemars(with = "NumberOrList<usize>")]
    pub samples: usize,
    /// Held-out examples; default a quarter of `samples`.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub test_samples: Option<usize>,
    /// Tokens per example, 2 or more (default 16). The data's own length,
    /// never a run's depth: the rnn family's depths must equal it.
    #[serde(default = "token_length")]
    pub length: usize,
    /// Symbols the tokens are drawn from, 2 or more (default 8): the
    /// inputs' channels and the classes.
    #[serde(default = "token_vocab")]
    pub vocab: usize,
    /// Seed of the data, fixed across the runs of a sweep.
    #[serde(default)]
    #[schemars(with = "NumberOrList<u64>")]
    pub seed: u64,
}

/// The copy-offset token task (see gradscope-data::tokens): inputs
/// `[length, vocab]` one-hot over `length` uniform tokens; position t
/// outputs the token at t − offset, scored at positions offset..length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyOffsetData {
    #[schemars(with = "NumberOrList<usize>")]
    pub samples: usize,
    /// Held-out examples; default a quarter of `samples`.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub test_samples: Option<usize>,
    /// Tokens per example, 2 or more (default 16). The data's own length,
    /// never a run's depth: the rnn family's depths must equal it.
    #[serde(default = "token_length")]
    pub length: usize,
    /// Symbols the tokens are drawn from, 2 or more (default 8): the
    /// inputs' channels and the classes.
    #[serde(default = "token_vocab")]
    pub vocab: usize,
    /// How many steps back each output recalls, in 1..length (default 1).
    #[serde(default = "token_offset")]
    pub offset: usize,
    /// Seed of the data, fixed across the runs of a sweep.
    #[serde(default)]
    #[schemars(with = "NumberOrList<u64>")]
    pub seed: u64,
}

fn token_length() -> usize {
    TOKEN_LENGTH
}
fn token_vocab() -> usize {
    TOKEN_VOCAB
}
fn token_offset() -> usize {
    TOKEN_OFFSET
}

/// The copy task (see gradscope-data::sequences): inputs `[length,
/// symbols + 2]` (one-hot symbols, blank, delimiter), `recall` random
/// symbols to output at the last `recall` steps. The error is the
/// per-symbol error rate; chance is 1 − 1/symbols (0.875 for 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyData {
    #[schemars(with = "NumberOrList<usize>")]
    pub samples: usize,
    /// Held-out examples; default a quarter of `samples`.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub test_samples: Option<usize>,
    /// Time steps per example, at least 2 · recall + 1. Leave it out to
    /// make each run's data at its depth (`depths` sweeps the length);
    /// given, every depth must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    /// The alphabet's size K (default 8, Arjovsky et al.); the chance
    /// error is 1 − 1/K.
    #[serde(default = "copy_symbols")]
    pub symbols: usize,
    /// Symbols to remember and output (default 10, Arjovsky et al.).
    #[serde(default = "copy_recall")]
    pub recall: usize,
    /// Seed of the data, fixed across the runs of a sweep.
    #[serde(default)]
    #[schemars(with = "NumberOrList<u64>")]
    pub seed: u64,
}

fn copy_symbols() -> usize {
    COPY_SYMBOLS
}
fn copy_recall() -> usize {
    COPY_RECALL
}

/// The adding problem (see gradscope-data::sequences): inputs `[length,
/// 2]`, target the sum of the two marked values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddingData {
    #[schemars(with = "NumberOrList<usize>")]
    pub samples: usize,
    /// Held-out examples; default a quarter of `samples`.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub test_samples: Option<usize>,
    /// Time steps per example. Leave it out to make each run's data at its
    /// depth (the rnn family's depths are sequence lengths, so `depths`
    /// sweeps the length); given, every depth must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    /// Seed of the data, fixed across the runs of a sweep.
    #[serde(default)]
    #[schemars(with = "NumberOrList<u64>")]
    pub seed: u64,
}

/// The schema of a numeric field that a list sweeps (`"samples": [256,
/// 1024]`), for `#[schemars(with = …)]`: the experiment parser takes such
/// lists out before serde reads the field, so the field's own type stays a
/// number.
pub struct NumberOrList<T>(std::marker::PhantomData<T>);

impl<T: schemars::JsonSchema> schemars::JsonSchema for NumberOrList<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("NumberOrList_of_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [
                one.clone(),
                { "type": "array", "items": one, "minItems": 1, "uniqueItems": true,
                  "description": "A list sweeps this field: one run per value (every combination of the swept fields)." }
            ]
        })
    }
}

/// Images whose class is a texture: each class owns a random k×k pattern,
/// tiled over the image at a random phase, plus Gaussian noise. A CNN with
/// global pooling can learn it; position does not matter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyntheticImages {
    #[schemars(with = "NumberOrList<usize>")]
    pub samples: usize,
    /// Held-out examples; default a quarter of `samples`.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub test_samples: Option<usize>,
    #[schemars(with = "NumberOrList<usize>")]
    pub classes: usize,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Noise std relative to the pattern's (default 0.5).
    #[serde(default = "default_noise")]
    #[schemars(with = "NumberOrList<f64>")]
    pub noise: f64,
    #[serde(default)]
    #[schemars(with = "NumberOrList<u64>")]
    pub seed: u64,
}

fn default_noise() -> f64 {
    0.5
}

/// A dataset read from files, and how to prepare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileData {
    /// Folder of the files (required for mnist and cifar10).
    #[serde(default)]
    pub dir: Option<std::path::PathBuf>,
    /// Use only the first N training examples.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub subset_train: Option<usize>,
    /// Use only the first N test examples.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub subset_test: Option<usize>,
    /// Hold out the last N training examples as the evaluation split instead
    /// of the test set (He et al.: 45k/5k on CIFAR-10).
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub validation: Option<usize>,
    /// Per-channel normalization with the training split's mean and std.
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Pad 4, random crop, random horizontal flip (He et al. 2016 §4.2).
    #[serde(default)]
    pub augment: bool,
    /// Average-pool the images by this factor (2: 28×28 → 14×14), before
    /// normalization. A quarter of the pixels is a quarter of a CNN's
    /// multiplications at every layer, with the same depths and the same
    /// optimization problem: what makes He et al.'s Fig. 6 fit on 2 cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub downsample: Option<usize>,
    /// Read each image as a sequence, for the rnn family: `rows` (h steps
    /// of c·w features: 28 of 28 for MNIST) or `pixels` (h·w steps of c:
    /// 196 of 1 at `downsample` 2). Every depth must be that length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Sequence>,
    /// With `sequence`: the time steps in one fixed random order drawn
    /// from this seed (permuted MNIST, Le et al. 2015).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permute_seed: Option<u64>,
}

fn yes() -> bool {
    true
}

impl DatasetSpec {
    /// Whether training minibatches are augmented.
    pub fn augment(&self) -> bool {
        match self {
            DatasetSpec::FashionMnist(f) | DatasetSpec::Mnist(f) | DatasetSpec::Cifar10(f) => {
                f.augment
            }
            _ => false,
        }
    }

    /// True when the data are images (`[c, h, w]` inputs): not an image
    /// set read as a sequence.
    pub fn is_image(&self) -> bool {
        !matches!(self, DatasetSpec::Synthetic(_)) && !self.is_sequence()
    }

    /// The file data's `sequence` option, when given.
    pub fn sequence(&self) -> Option<Sequence> {
        match self {
            DatasetSpec::FashionMnist(f) | DatasetSpec::Mnist(f) | DatasetSpec::Cifar10(f) => {
                f.sequence
            }
            _ => None,
        }
    }

    /// True when the target is a float (the adding problem: task
    /// `regression`), not classes.
    pub fn float_target(&self) -> bool {
        matches!(self, DatasetSpec::Adding(_))
    }

    /// The steps a sequence target has (the copy task's `recall`, a token
    /// task's scored positions): the net's head then reads each of its
    /// last that many steps. `None`: one target per example.
    pub fn output_steps(&self) -> Option<usize> {
        match self {
            DatasetSpec::Copy(c) => Some(c.recall),
            _ => self.token_spec().map(|t| t.steps()),
        }
    }

    /// A token task's generator settings (gradscope-data::tokens), with
    /// the held-out size defaulted; `None` for the other kinds.
    pub fn token_spec(&self) -> Option<TokenSpec> {
        match self {
            DatasetSpec::Sort(t) => Some(t.spec(TokenTask::Sort)),
            DatasetSpec::Reverse(t) => Some(t.spec(TokenTask::Reverse)),
            DatasetSpec::CopyOffset(c) => Some(c.spec()),
            _ => None,
        }
    }

    /// The kind as the experiment file spells it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DatasetSpec::Synthetic(_) => "synthetic",
            DatasetSpec::SyntheticImages(_) => "synthetic-images",
            DatasetSpec::FashionMnist(_) => "fashion-mnist",
            DatasetSpec::Mnist(_) => "mnist",
            DatasetSpec::Cifar10(_) => "cifar10",
            DatasetSpec::Adding(_) => "adding",
            DatasetSpec::Copy(_) => "copy",
            DatasetSpec::Sort(_) => "sort",
            DatasetSpec::Reverse(_) => "reverse",
            DatasetSpec::CopyOffset(_) => "copy-offset",
        }
    }

    /// True when the data are sequences (`[length, features]` inputs, for
    /// the rnn family): the generated ones, and image sets read as one.
    pub fn is_sequence(&self) -> bool {
        matches!(self, DatasetSpec::Adding(_) | DatasetSpec::Copy(_))
            || self.token_spec().is_some()
            || self.sequence().is_some()
    }

    /// A generated sequence dataset's own length, when the file gives one
    /// (an image sequence's is known once its files are read). A token
    /// task always has one (its default 16 where the file gives none).
    pub fn length(&self) -> Option<usize> {
        match self {
            DatasetSpec::Adding(a) => a.length,
            DatasetSpec::Copy(c) => c.length,
            _ => self.token_spec().map(|t| t.length),
        }
    }

    /// The dataset a run of `depth` trains on: a sequence dataset without
    /// a length of its own made at that length (the rnn family's depth is
    /// the sequence length); any other dataset as it is (a token task's
    /// length is always its own).
    pub fn at_depth(&self, depth: usize) -> DatasetSpec {
        match self {
            DatasetSpec::Adding(a) if a.length.is_none() => DatasetSpec::Adding(AddingData {
                length: Some(depth),
                ..a.clone()
            }),
            DatasetSpec::Copy(c) if c.length.is_none() => DatasetSpec::Copy(CopyData {
                length: Some(depth),
                ..c.clone()
            }),
            other => other.clone(),
        }
    }
}

/// Gaussian inputs labelled by a random teacher net (see gradscope-data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyntheticData {
    #[schemars(with = "NumberOrList<usize>")]
    pub samples: usize,
    /// Held-out examples; default a quarter of `samples`.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub test_samples: Option<usize>,
    #[schemars(with = "NumberOrList<usize>")]
    pub classes: usize,
    #[schemars(with = "NumberOrList<usize>")]
    pub features: usize,
    /// Hidden units of the teacher; default 2 × classes.
    #[serde(default)]
    #[schemars(with = "Option<NumberOrList<usize>>")]
    pub teacher_width: Option<usize>,
    /// Seed of the data, fixed across the runs of a sweep.
    #[serde(default)]
    #[schemars(with = "NumberOrList<u64>")]
    pub seed: u64,
}

impl<'de> Deserialize<'de> for DatasetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let section = Section("dataset");
        let (kind, rest) =
            section.take_tag::<D::Error>(serde_json::Value::deserialize(d)?, "kind")?;
        match kind.as_str() {
            "synthetic" => Ok(DatasetSpec::Synthetic(section.tagged(rest)?)),
            "synthetic-images" => Ok(DatasetSpec::SyntheticImages(section.tagged(rest)?)),
            "fashion-mnist" => Ok(DatasetSpec::FashionMnist(section.tagged(rest)?)),
            "mnist" => Ok(DatasetSpec::Mnist(section.tagged(rest)?)),
            "cifar10" => Ok(DatasetSpec::Cifar10(section.tagged(rest)?)),
            "adding" => Ok(DatasetSpec::Adding(section.tagged(rest)?)),
            "copy" => Ok(DatasetSpec::Copy(section.tagged(rest)?)),
            "sort" => Ok(DatasetSpec::Sort(section.tagged(rest)?)),
            "reverse" => Ok(DatasetSpec::Reverse(section.tagged(rest)?)),
            "copy-offset" => Ok(DatasetSpec::CopyOffset(section.tagged(rest)?)),
            other => Err(section.error(
                "kind",
                format!("unknown dataset kind {other:?}, expected one of \"synthetic\", \"synthetic-images\", \"fashion-mnist\", \"mnist\", \"cifar10\", \"adding\", \"copy\", \"sort\", \"reverse\", \"copy-offset\""),
            )),
        }
    }
}

/// The length of a sequence dataset read before [`DatasetSpec::at_depth`]
/// gave it one: the experiment-wide data that only sizes are read from
/// (each run makes its own at its depth).
const MISSING_LENGTH: usize = 2;

impl CopyData {
    /// The length its data are made at: its own, or (read before
    /// [`DatasetSpec::at_depth`] gave it one) the shortest the recall
    /// allows.
    fn copy_length(&self) -> usize {
        self.length
            .unwrap_or(crate::sequences::copy_min_length(self.recall))
    }
}

impl TokenData {
    /// The generator's settings for `task` (sort or reverse).
    pub(crate) fn spec(&self, task: TokenTask) -> TokenSpec {
        TokenSpec {
            task,
            samples: self.samples,
            test_samples: default_test_samples(self.samples, self.test_samples),
            length: self.length,
            vocab: self.vocab,
            seed: self.seed,
        }
    }
}

impl CopyOffsetData {
    /// The generator's settings.
    pub(crate) fn spec(&self) -> TokenSpec {
        TokenSpec {
            task: TokenTask::CopyOffset {
                offset: self.offset,
            },
            samples: self.samples,
            test_samples: default_test_samples(self.samples, self.test_samples),
            length: self.length,
            vocab: self.vocab,
            seed: self.seed,
        }
    }
}

/// The held-out size of a generated dataset: as given, or a quarter of the
/// training size (at least one).
fn default_test_samples(samples: usize, test_samples: Option<usize>) -> usize {
    test_samples.unwrap_or((samples / 4).max(1))
}

/// What [`tokens`] makes of `t`, refusing what it refuses.
fn token_info(t: &TokenSpec) -> Result<DatasetInfo, DataError> {
    crate::generated_sizes(t.samples, t.test_samples)?;
    t.check()?;
    Ok(DatasetInfo {
        name: t.task.name().into(),
        train: t.samples,
        test: t.test_samples,
        input_shape: vec![t.length as i64, t.vocab as i64],
        classes: t.vocab as i64,
    })
}

impl DatasetSpec {
    /// Builds or reads the dataset (on the CPU), prepared as the file asks:
    /// validation split, subset, downsampling, per-channel normalization.
    pub fn load(&self) -> Result<Dataset, DataError> {
        let files = match self {
            DatasetSpec::Synthetic(d) => {
                return synthetic(&SyntheticSpec {
                    samples: d.samples,
                    test_samples: default_test_samples(d.samples, d.test_samples),
                    classes: d.classes,
                    features: d.features,
                    teacher_width: d.teacher_width.unwrap_or(2 * d.classes),
                    seed: d.seed,
                })
            }
            DatasetSpec::SyntheticImages(d) => {
                return synthetic_images(&TextureSpec {
                    samples: d.samples,
                    test_samples: default_test_samples(d.samples, d.test_samples),
                    classes: d.classes,
                    shape: d.shape,
                    noise: d.noise,
                    seed: d.seed,
                })
            }
            DatasetSpec::Adding(a) => {
                return adding(&AddingSpec {
                    samples: a.samples,
                    test_samples: default_test_samples(a.samples, a.test_samples),
                    length: a.length.unwrap_or(MISSING_LENGTH),
                    seed: a.seed,
                })
            }
            DatasetSpec::Copy(c) => {
                return copy(&CopySpec {
                    samples: c.samples,
                    test_samples: default_test_samples(c.samples, c.test_samples),
                    length: c.copy_length(),
                    symbols: c.symbols,
                    recall: c.recall,
                    seed: c.seed,
                })
            }
            DatasetSpec::Sort(t) => return tokens(&t.spec(TokenTask::Sort)),
            DatasetSpec::Reverse(t) => return tokens(&t.spec(TokenTask::Reverse)),
            DatasetSpec::CopyOffset(c) => return tokens(&c.spec()),
            DatasetSpec::FashionMnist(f) | DatasetSpec::Mnist(f) | DatasetSpec::Cifar10(f) => f,
        };
        let (dir, hint) = self.files_dir_and_hint(files);
        let mut data = match self {
            DatasetSpec::FashionMnist(_) => idx::idx_dataset(&dir, "fashion-mnist", &hint)?,
            DatasetSpec::Mnist(_) => idx::idx_dataset(&dir, "mnist", &hint)?,
            _ => cifar::cifar10(&dir)?,
        };
        // Carve validation from the full training split, then subset each split.
        if let Some(n) = files.validation {
            data = data.split_validation(n)?;
        }
        data = data.subset(files.subset_train, files.subset_test)?;
        if let Some(k) = files.downsample {
            data = data.downsample(k)?;
        }
        if files.normalize {
            data = data.normalize_per_channel();
        }
        if let Some(sequence) = files.sequence {
            data = data.as_sequence(sequence, files.permute_seed)?;
        }
        Ok(data)
    }

    /// What [`DatasetSpec::load`] would give, worked out without loading
    /// it: sizes from the generators' settings or from the files' headers
    /// and lengths (`gradscope check`). It refuses what `load` refuses,
    /// except a CIFAR-10 label byte out of range (found only by reading
    /// every record).
    pub fn info(&self) -> Result<DatasetInfo, DataError> {
        let files = match self {
            DatasetSpec::Synthetic(d) => {
                return Ok(DatasetInfo {
                    name: "synthetic".into(),
                    train: d.samples,
                    test: default_test_samples(d.samples, d.test_samples),
                    input_shape: vec![d.features as i64],
                    classes: d.classes as i64,
                })
            }
            DatasetSpec::SyntheticImages(d) => {
                return Ok(DatasetInfo {
                    name: "synthetic-images".into(),
                    train: d.samples,
                    test: default_test_samples(d.samples, d.test_samples),
                    input_shape: d.shape.iter().map(|&v| v as i64).collect(),
                    classes: d.classes as i64,
                })
            }
            DatasetSpec::Adding(a) => {
                return Ok(DatasetInfo {
                    name: "adding".into(),
                    train: a.samples,
                    test: default_test_samples(a.samples, a.test_samples),
                    input_shape: vec![a.length.unwrap_or(MISSING_LENGTH) as i64, 2],
                    classes: 1,
                })
            }
            DatasetSpec::Copy(c) => {
                return Ok(DatasetInfo {
                    name: "copy".into(),
                    train: c.samples,
                    test: default_test_samples(c.samples, c.test_samples),
                    input_shape: vec![c.copy_length() as i64, c.symbols as i64 + 2],
                    classes: c.symbols as i64,
                })
            }
            DatasetSpec::Sort(t) => return token_info(&t.spec(TokenTask::Sort)),
            DatasetSpec::Reverse(t) => return token_info(&t.spec(TokenTask::Reverse)),
            DatasetSpec::CopyOffset(c) => return token_info(&c.spec()),
            DatasetSpec::FashionMnist(f) | DatasetSpec::Mnist(f) | DatasetSpec::Cifar10(f) => f,
        };
        let (dir, hint) = self.files_dir_and_hint(files);
        let mut info = match self {
            DatasetSpec::FashionMnist(_) => idx::idx_info(&dir, "fashion-mnist", &hint)?,
            DatasetSpec::Mnist(_) => idx::idx_info(&dir, "mnist", &hint)?,
            _ => cifar::cifar10_info(&dir)?,
        };
        if let Some(n) = files.validation {
            info = info.split_validation(n)?;
        }
        let mut info = info.subset(files.subset_train, files.subset_test)?;
        if let Some(k) = files.downsample {
            info = info.downsample(k)?;
        }
        match files.sequence {
            Some(sequence) => info.as_sequence(sequence),
            None => Ok(info),
        }
    }

    /// The folder a file dataset is read from, and what to tell a user whose
    /// files are not there. Validation guarantees a `dir` for mnist and
    /// cifar10; fashion-mnist defaults to Debian's package folder.
    fn files_dir_and_hint(&self, files: &FileData) -> (PathBuf, String) {
        let default = Path::new(idx::FASHION_MNIST_DIR);
        let hint = match (self, &files.dir) {
            (DatasetSpec::FashionMnist(_), None) => idx::FASHION_MNIST_HINT.to_string(),
            // A folder was given: the package, installed or not, is beside the
            // point; say where its files would be.
            (DatasetSpec::FashionMnist(_), Some(_)) if default.is_dir() => format!(
                "Debian's dataset-fashion-mnist files are in {}: give that folder, or leave dataset.dir out",
                default.display()
            ),
            (DatasetSpec::FashionMnist(_), Some(_)) => format!(
                "give the folder that holds the four IDX files, or leave dataset.dir out to read {} ({})",
                default.display(),
                idx::FASHION_MNIST_HINT
            ),
            (DatasetSpec::Mnist(_), _) => {
                "download the four MNIST IDX files (train-images-idx3-ubyte.gz, …) into this folder"
                    .to_string()
            }
            _ => crate::CIFAR10_HINT.to_string(),
        };
        (
            files.dir.clone().unwrap_or_else(|| default.to_path_buf()),
            hint,
        )
    }
}

/// The section of the experiment file a tagged object sits at (`dataset`,
/// `model`). Its errors say their full path at the head of the message
/// (`model.activation: unknown variant …`): serde's error type carries only
/// a message, and the experiment parser moves a path it finds there, under
/// the section's own, into the error's field.
#[derive(Debug, Clone, Copy)]
pub struct Section(pub &'static str);

impl Section {
    /// An error at `section.field`.
    pub fn error<E: serde::de::Error>(self, field: &str, message: String) -> E {
        E::custom(format!("{}.{field}: {message}", self.0))
    }

    /// Splits the tag off a tagged object.
    pub fn take_tag<E: serde::de::Error>(
        self,
        value: serde_json::Value,
        tag: &str,
    ) -> Result<(String, serde_json::Value), E> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(E::custom(format!(
                "expected an object with a {tag:?} field, found {value}"
            )));
        };
        match map.remove(tag) {
            Some(serde_json::Value::String(s)) => Ok((s, serde_json::Value::Object(map))),
            Some(other) => Err(self.error(tag, format!("expected a string, found {other}"))),
            None => Err(self.error(tag, "missing".to_string())),
        }
    }

    /// Parses the rest of a tagged object, keeping the path of an error.
    pub fn tagged<T: serde::de::DeserializeOwned, E: serde::de::Error>(
        self,
        rest: serde_json::Value,
    ) -> Result<T, E> {
        serde_path_to_error::deserialize(rest)
            .map_err(|e| self.error(&e.path().to_string(), e.into_inner().to_string()))
    }
}
