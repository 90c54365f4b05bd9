//! The experiment file: what to train, at which depths, and how to probe it.
//!
//! Parsing goes through `serde_path_to_error`, so a wrong type or an unknown
//! field is reported with its path (`model.activation`); then
//! [`Experiment::validate`] checks every value that serde cannot (depth ≥ 2,
//! lr > 0, …). Each error names the file and the field.

use gradscope_data::validate::{at_least, first_duplicate, Invalid};
use gradscope_models::Variant;
use serde::{Deserialize, Serialize};
// The dataset section is gradscope-data's own (its config and loader), the
// model section gradscope-models' (its config, defaults and builder); the
// experiment file keeps the sections around them and the checks across
// sections.
pub use gradscope_data::spec::{DatasetSpec, FileData, SyntheticData, SyntheticImages};
use gradscope_format::names::{numeric_fields, pointer};
pub use gradscope_models::spec::{
    Axis, BottleneckSpec, CnnSpec, InceptionSpec, MlpSpec, ModelSpec,
};
use std::path::{Path, PathBuf};

/// An experiment, as written in `experiments/NAME.json`. Defaults are filled
/// in when parsed and saved with every run.
///
/// A list in a numeric field (`"lr": [0.01, 0.1]`) sweeps it: one run per
/// value, every combination of the swept fields.
//
// The typed fields hold one value each (a list's first) and
// `Experiment::numbers` keeps the lists. serde's derive is the inner layer
// (`remote = "Self"`: the inherent `Experiment::serialize` and
// `Experiment::deserialize`); the trait impls below take the lists out of
// the JSON before it and put them back after it, so files and run.json's
// `config` round-trip and every typed field stays a scalar. Each run trains
// `Experiment::resolved`, whose fields are its own values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Experiment {
    /// Names the results directory (`results/NAME`): letters, digits, `-`,
    /// `_` and `.`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub dataset: DatasetSpec,
    pub model: ModelSpec,
    pub variants: Vec<Variant>,
    /// Weight layers, as the papers count them.
    pub depths: Vec<usize>,
    pub seeds: Vec<u64>,
    pub train: TrainSpec,
    #[serde(default)]
    pub probe: ProbeSpec,
    /// What the network learns: `classify` (default), `identity` or
    /// `regression` (the adding problem).
    #[serde(default)]
    pub task: Task,
    /// The swept numeric fields and their values, in [`numeric_fields`]
    /// order; empty when none is a list. Not a field of the file: the
    /// lists are in place there.
    #[serde(skip)]
    #[schemars(skip)]
    pub numbers: Vec<NumberAxis>,
}

/// A numeric field given as a list: a sweep axis.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberAxis {
    /// Its path, one of [`numeric_fields`] (`train.lr`).
    pub field: &'static str,
    /// Its values in the file's order (JSON numbers, so that an integer
    /// field's values stay integers and each label is the file's own).
    pub values: Vec<serde_json::Value>,
}

impl Serialize for Experiment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        if self.numbers.is_empty() {
            // Unswept files write exactly as before (field order kept).
            return Experiment::serialize(self, s);
        }
        let mut v =
            Experiment::serialize(self, serde_json::value::Serializer).map_err(S::Error::custom)?;
        for axis in &self.numbers {
            // A field at its default is left out of the derived form: the
            // list is added where it would be (`run.json` once lost a
            // `residual_scale: [1, 0.2]` this way).
            let list = serde_json::Value::Array(axis.values.clone());
            crate::plan::set_pointer(&mut v, &pointer(axis.field), list)
                .map_err(S::Error::custom)?;
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Experiment {
    /// The lenient path (`run.json`'s `config` read back): the same steps
    /// as [`Experiment::from_json`], errors as one message.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut v = serde_json::Value::deserialize(d)?;
        let numbers =
            take_number_lists(&mut v).map_err(|(f, m)| D::Error::custom(format!("{f}: {m}")))?;
        let mut exp = Experiment::deserialize(v).map_err(D::Error::custom)?;
        exp.numbers = numbers;
        exp.check_combinations()
            .map_err(|(f, m)| D::Error::custom(format!("{f}: {m}")))?;
        Ok(exp)
    }
}

/// Takes each list at a numeric field's path out of `v`, leaving its first
/// value in place; refuses an empty list, a list item that is not a number
/// and a value listed twice, naming the field.
fn take_number_lists(v: &mut serde_json::Value) -> Result<Vec<NumberAxis>, (String, String)> {
    let mut out = Vec::new();
    for &field in numeric_fields() {
        let Some(slot) = v.pointer_mut(&pointer(field)) else {
            continue;
        };
        let serde_json::Value::Array(items) = slot else {
            continue;
        };
        let fail = |m: String| Err((field.to_string(), m));
        if items.is_empty() {
            return fail(
                "an empty list: give one value, or a list of the values to sweep over".into(),
            );
        }
        for (i, item) in items.iter().enumerate() {
            if !item.is_number() {
                return fail(format!("list item {}: {item} is not a number", i + 1));
            }
            if items[..i].contains(item) {
                return fail(format!(
                    "lists {item} twice; each value of a sweep runs once"
                ));
            }
        }
        let values = items.clone();
        *slot = values[0].clone();
        out.push(NumberAxis { field, values });
    }
    Ok(out)
}

/// serde's words for a list where a field takes one value ("invalid type:
/// sequence, expected f64") say which fields can be lists instead.
fn explain_list(message: String) -> String {
    if !message.starts_with("invalid type: sequence") {
        return message;
    }
    format!(
        "cannot be a list (a sweep axis); the fields that can: model.activation, model.init, \
         model.norm, {}",
        numeric_fields().join(", ")
    )
}

/// The training objective.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Cross-entropy on the labels; the error is the misclassified fraction.
    #[default]
    Classify,
    /// Reproduce the input, f(x) = x, with a mean squared error loss (the
    /// labels are ignored). The error is the relative reconstruction error
    /// ‖f(x) − x‖² / ‖x‖²: 0 is perfect, 1 is what outputting zeros scores.
    /// It tests the claim that a residual block learns the identity easily
    /// and a plain stack does not (He et al. 2016 §3.1).
    Identity,
    /// Predict the float target `y` with one output and a mean squared
    /// error loss (the adding problem). The error is the MSE over the
    /// target's variance (1/6 for the adding problem, see
    /// gradscope-data's `ADDING_TARGET_VARIANCE`): 0 is perfect, 1 is what
    /// predicting the mean scores.
    Regression,
}

/// The forms `init` accepts, for messages.
const INIT_FORMS: &str = r#""pytorch-default", "glorot", "kaiming", "orthogonal", {"orthogonal": {"gain": 2}}, {"normal": {"std": 0.05}} or {"variance": {"weight": 2, "bias": 0.05}}"#;

/// serde's words for a misspelt `init` are about enum variants ("invalid
/// type: unit variant, expected struct variant" for `"init": "normal"`);
/// these say what to write instead.
fn explain_init(field: String, message: String) -> (String, String) {
    let Some(init) = field
        .strip_suffix(".normal")
        .filter(|f| f.ends_with("init"))
        .map(str::to_string)
        .or_else(|| field.ends_with("init").then(|| field.clone()))
    else {
        return (field, message);
    };
    if message.contains("unit variant, expected struct variant") {
        return (
            init,
            r#""normal" needs its standard deviation: write {"normal": {"std": 0.05}}"#.to_string(),
        );
    }
    if message.starts_with("unknown variant") || message.starts_with("invalid type") {
        return (init, format!("{message}; write {INIT_FORMS}"));
    }
    (field, message)
}

/// The optimizer (`train.optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with momentum and L2 weight decay (the default; libtorch's
    /// `torch::optim::SGD`, dampening 0, no Nesterov).
    Sgd,
    /// Adam (Kingma & Ba 2015) with bias correction; `weight_decay` is
    /// added to the gradient (L2), as `torch::optim::Adam` does.
    Adam,
    /// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay,
    /// p ← p·(1 − lr·weight_decay) before the Adam step, as
    /// `torch::optim::AdamW` does.
    Adamw,
}

/// The optimizer and the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(default = "default_optimizer")]
    pub optimizer: Optimizer,
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub lr: f64,
    #[serde(default)]
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub momentum: f64,
    #[serde(default)]
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub weight_decay: f64,
    #[schemars(with = "gradscope_data::spec::NumberOrList<usize>")]
    pub batch_size: usize,
    /// Optimizer steps per run (give `steps` or `epochs`).
    #[serde(default)]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<usize>>")]
    pub steps: Option<usize>,
    /// Passes over the training split per run (give `steps` or `epochs`).
    #[serde(default)]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<usize>>")]
    pub epochs: Option<usize>,
    /// Steps at which the lr is multiplied by `lr_gamma` (He et al.: 32000
    /// and 48000).
    #[serde(default)]
    pub lr_milestones: Vec<usize>,
    #[serde(default = "default_gamma")]
    #[schemars(with = "gradscope_data::spec::NumberOrList<f64>")]
    pub lr_gamma: f64,
    /// Adam's β₁ (default 0.9); Adam and AdamW only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<f64>>")]
    pub beta1: Option<f64>,
    /// Adam's β₂ (default 0.999); Adam and AdamW only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<f64>>")]
    pub beta2: Option<f64>,
    /// Adam's ε, added to √v̂ (default 1e-8); Adam and AdamW only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<f64>>")]
    pub eps: Option<f64>,
    /// Clip the gradient by its global norm (all parameters as one vector)
    /// to at most this, as `torch.nn.utils.clip_grad_norm_` does (Pascanu
    /// et al. 2013); off by default. The norm before clipping is in
    /// `metrics.csv` (`grad_norm`) either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<f64>>")]
    pub clip_grad_norm: Option<f64>,
    /// A warm-up: `{"steps": N}` raises the lr linearly over the first N
    /// steps (lr·(step+1)/N); `{"lr": 0.01, "until_train_error": 0.8}`
    /// trains at a small lr until the training error falls below a
    /// threshold, then switches to `lr` (He et al. §4.2, for ResNet-110).
    #[serde(default)]
    pub warmup: Option<Warmup>,
    /// Evaluate the held-out split every this many steps (and at the end).
    #[schemars(with = "gradscope_data::spec::NumberOrList<usize>")]
    pub eval_every: usize,
    /// Write a training-error row every this many steps; default
    /// `eval_every`.
    #[serde(default)]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<usize>>")]
    pub log_every: Option<usize>,
    /// Save a checkpoint (`RUN/checkpoint.pt`) every this many steps, so
    /// that `--resume` continues a run killed without warning from there;
    /// off by default. A run stopped by SIGTERM or SIGINT saves one at the
    /// step it stops at either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<usize>,
    /// Keep the final weights of each completed run (`RUN/model.ot`, a tch
    /// `VarStore` file, BatchNorm's running statistics included), for
    /// `gradscope landscape`; off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub save_weights: bool,
}

fn default_optimizer() -> Optimizer {
    Optimizer::Sgd
}
fn default_gamma() -> f64 {
    0.1
}

/// A warm-up: linear over `steps`, or He et al.'s for ResNet-110 (`lr`
/// 0.01 until the training error falls below `until_train_error`, 80%,
/// then back to the base lr). Give one form or the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    /// He et al.'s warm-up lr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<f64>>")]
    pub lr: Option<f64>,
    /// Fraction in (0, 1]: leave the warm-up when the on-the-fly training
    /// error (a `metrics.csv` train row) is below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<f64>>")]
    pub until_train_error: Option<f64>,
    /// Linear warm-up: the lr at step s < N is the scheduled lr × (s+1)/N
    /// (Goyal et al. 2017's gradual warm-up, per step); 0 is none, so a
    /// sweep can set a warm-up against none (`"steps": [0, 200]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<gradscope_data::spec::NumberOrList<usize>>")]
    pub steps: Option<usize>,
}

impl Warmup {
    /// He et al.'s form: its lr and error bar.
    pub fn until_error(&self) -> Option<(f64, f64)> {
        Some((self.lr?, self.until_train_error?))
    }
}

impl TrainSpec {
    /// Whether the step that makes `done` steps writes a row or saves a
    /// checkpoint (and so reads the device anyway).
    pub fn syncs_after(&self, done: usize, steps: usize) -> bool {
        done == steps
            || done.is_multiple_of(self.log_every())
            || done.is_multiple_of(self.eval_every)
            || self
                .checkpoint_every
                .is_some_and(|e| done.is_multiple_of(e))
    }

    pub fn log_every(&self) -> usize {
        self.log_every.unwrap_or(self.eval_every)
    }

    /// Optimizer steps per run, given the size of the training split.
    /// Saturates rather than overflows (found by `fuzz.rs`: 17 epochs of a
    /// huge split).
    pub fn total_steps(&self, train_len: usize) -> usize {
        match (self.steps, self.epochs) {
            (Some(s), _) => s,
            (None, Some(e)) => e.saturating_mul((train_len / self.batch_size.max(1)).max(1)),
            (None, None) => 0,
        }
    }

    /// The lr after the step schedule (ignoring warm-up) at `step`.
    pub fn scheduled_lr(&self, step: usize) -> f64 {
        let drops = self.lr_milestones.iter().filter(|&&m| step >= m).count();
        self.lr * self.lr_gamma.powi(drops as i32)
    }

    /// [`TrainSpec::scheduled_lr`] with a linear warm-up's factor (s+1)/N
    /// over its first N steps; the schedule's own lr without one.
    pub fn warmed_lr(&self, step: usize) -> f64 {
        let lr = self.scheduled_lr(step);
        match self.warmup.as_ref().and_then(|w| w.steps) {
            Some(n) if step < n => lr * (step + 1) as f64 / n as f64,
            _ => lr,
        }
    }
}

/// How often to probe. Step 0 and the last step are always probed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    #[schemars(with = "gradscope_data::spec::NumberOrList<usize>")]
    pub every: usize,
    /// Probe every step for the first `dense_steps` steps (default 0). A
    /// sigmoid net's gradient collapses in its first tens of steps; at
    /// `every: 25` that collapse is one straight line, and the "init"
    /// reading (a median over the first five probe steps) would span 100
    /// steps of training.
    #[serde(default)]
    #[schemars(with = "gradscope_data::spec::NumberOrList<usize>")]
    pub dense_steps: usize,
}

impl ProbeSpec {
    /// Whether `step` of a run of `steps` steps is probed.
    pub fn probes(&self, step: usize, steps: usize) -> bool {
        step < self.dense_steps || step.is_multiple_of(self.every) || step + 1 == steps
    }
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            every: 10,
            dense_steps: 0,
        }
    }
}

/// A problem with an experiment file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: cannot read the experiment file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Malformed JSON, a wrong type or an unknown field.
    #[error("{}: {field}: {message}", path.display())]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// A value serde accepted but that cannot work.
    #[error("{}: {field}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

impl SpecError {
    /// The field the error is about (`model.activation`, `train.lr`, or `.`
    /// for the whole file).
    pub fn field(&self) -> &str {
        match self {
            SpecError::Read { .. } => ".",
            SpecError::Parse { field, .. } | SpecError::Invalid { field, .. } => field,
        }
    }
}

/// The JSON Schema (draft 2020-12) of an experiment file, generated from
/// the types above (their doc comments are its descriptions), as
/// `docs/experiment.schema.json` holds it. It describes the shape: names,
/// types, required fields, defaults, no unknown fields. Value checks
/// (depth at least 2, lr above 0, a CNN depth of 6n+2, …) are
/// [`Experiment::validate`]'s and `gradscope check`'s.
pub fn experiment_schema() -> String {
    let schema = schemars::schema_for!(Experiment);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

impl Experiment {
    /// Reads, parses and validates an experiment file.
    pub fn from_file(path: &Path) -> Result<Experiment, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Experiment::from_json(&text, path)
    }

    /// Parses and validates JSON text; `path` is only used in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Experiment, SpecError> {
        // Lists in numeric fields come out first (sweep axes); a file
        // without any is read straight from the text as before, so its
        // messages keep their line and column.
        let mut numbers = Vec::new();
        let mut swept_value = None;
        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) {
            numbers = take_number_lists(&mut v).map_err(|(field, message)| SpecError::Parse {
                path: path.to_path_buf(),
                field,
                message,
            })?;
            if !numbers.is_empty() {
                swept_value = Some(v);
            }
        }
        let mut track = serde_path_to_error::Track::new();
        let parsed = match swept_value {
            Some(v) => {
                Experiment::deserialize(serde_path_to_error::Deserializer::new(v, &mut track))
            }
            None => Experiment::deserialize(serde_path_to_error::Deserializer::new(
                &mut serde_json::Deserializer::from_str(text),
                &mut track,
            )),
        };
        let mut exp: Experiment = parsed
            .map_err(|e| serde_path_to_error::Error::new(track.path(), e))
            .map_err(|e| {
                // A syntax error has no meaningful field path: it is the file.
                let broken = matches!(
                    e.inner().classify(),
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof
                );
                let mut field = if broken {
                    String::new()
                } else {
                    e.path().to_string()
                };
                let mut message = e.into_inner().to_string();
                // An error from inside a tagged section (dataset, model) says
                // its full path first (gradscope_data::spec::Section).
                let inner = message
                    .split_once(": ")
                    .filter(|(path, _)| {
                        !field.is_empty()
                            && path
                                .strip_prefix(field.as_str())
                                .is_some_and(|r| r.starts_with('.'))
                    })
                    .map(|(path, rest)| (path.to_string(), rest.to_string()));
                if let Some((path, rest)) = inner {
                    (field, message) = (path, rest);
                }
                let (field, message) = explain_init(field, message);
                let message = explain_list(message);
                SpecError::Parse {
                    path: path.to_path_buf(),
                    field: if field.is_empty() {
                        ".".to_string()
                    } else {
                        field
                    },
                    message,
                }
            })?;
        exp.numbers = numbers;
        exp.check_combinations()
            .map_err(|(field, message)| SpecError::Invalid {
                path: path.to_path_buf(),
                field,
                message,
            })?;
        Ok(exp)
    }

    /// Validates the experiment as every run of it trains: each
    /// combination of swept numbers resolved (a value that does not fit
    /// its field's type, or fails its check, names the field and says which
    /// combination).
    fn check_combinations(&self) -> Result<(), (String, String)> {
        if self.numbers.is_empty() {
            return self.validate();
        }
        for setting in crate::plan::settings(self) {
            let exp = self.try_resolved(&setting)?;
            exp.validate().map_err(|(field, message)| {
                let with: Vec<String> = setting
                    .numbers
                    .iter()
                    .map(|(f, v)| format!("{f} {v}"))
                    .collect();
                (
                    field,
                    format!("{message} (in the run with {})", with.join(", ")),
                )
            })?;
        }
        Ok(())
    }

    /// Checks every value serde cannot; returns the field and the reason.
    /// The dataset and model sections check themselves (gradscope-data,
    /// gradscope-models); this checks the lists around them, the task
    /// against the model, and the training and probe sections.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.check_lists()?;
        let train_samples = self.dataset.validate()?;
        // Before the model's own checks, which would only say that the
        // family wants other data.
        self.sequence_fits_model()?;
        self.model
            .validate(&self.variants, &self.depths, self.dataset.is_image())?;
        if self.task == Task::Identity && !matches!(self.model, ModelSpec::Mlp(_)) {
            return Err(Invalid::new(
                "task",
                "\"identity\" needs model.family \"mlp\" (its output must have the input's size)",
            )
            .into());
        }
        self.task_fits_data()?;
        self.train.validate(train_samples)?;
        at_least("probe.every", self.probe.every, 1)?;
        Ok(())
    }

    /// An image set's `sequence` option against the family: read as a
    /// sequence only for the rnn family, and never by it as plain images.
    /// The transformer's data: images, or sequences with a length of
    /// their own (its depth counts blocks, not steps), never vectors.
    fn sequence_fits_model(&self) -> Result<(), Invalid> {
        self.image_sequence_fits_model()?;
        if !matches!(self.model, ModelSpec::Transformer(_)) {
            return Ok(());
        }
        let kind = self.dataset.kind_name();
        if !self.dataset.is_image() && !self.dataset.is_sequence() {
            return Invalid::refuse(
                "model.family",
                format!("\"transformer\" needs images (\"synthetic-images\", \"fashion-mnist\", \"mnist\", \"cifar10\") or token sequences, not dataset kind {kind:?} (vectors)"),
            );
        }
        if self.dataset.is_sequence() && self.dataset.length().is_none() {
            return Invalid::refuse(
                "dataset.length",
                format!("missing: the transformer's depths count blocks, not steps, so dataset kind {kind:?} needs a length of its own"),
            );
        }
        Ok(())
    }

    fn image_sequence_fits_model(&self) -> Result<(), Invalid> {
        let rnn = matches!(self.model, ModelSpec::Rnn(_));
        let kind = self.dataset.kind_name();
        let file_images = matches!(
            self.dataset,
            DatasetSpec::FashionMnist(_) | DatasetSpec::Mnist(_) | DatasetSpec::Cifar10(_)
        );
        match self.dataset.sequence() {
            Some(s) if !rnn => Invalid::refuse(
                "dataset.sequence",
                format!(
                    "{:?} reads each image as a sequence, for model.family \"rnn\", not {:?}: leave it out",
                    s.as_str(),
                    self.model.family_name()
                ),
            ),
            None if rnn && file_images => Invalid::refuse(
                "dataset.sequence",
                format!("missing: the rnn family reads dataset kind {kind:?} as a sequence, \"rows\" (one image row per step) or \"pixels\" (one pixel per step)"),
            ),
            _ => Ok(()),
        }
    }

    /// The task against the data and the model: regression only on the
    /// adding problem, the adding problem only as a regression; sequence
    /// data only for the rnn family, whose depths match a length the file
    /// gives and hold the copy task, and the transformer (checked in
    /// [`Experiment::sequence_fits_model`]).
    fn task_fits_data(&self) -> Result<(), Invalid> {
        let rnn = matches!(self.model, ModelSpec::Rnn(_));
        let transformer = matches!(self.model, ModelSpec::Transformer(_));
        let kind = self.dataset.kind_name();
        match (self.task, self.dataset.float_target()) {
            (Task::Regression, false) => {
                return Invalid::refuse(
                    "task",
                    format!("\"regression\" needs a float target: dataset kind \"adding\", not {kind:?}"),
                )
            }
            (Task::Classify | Task::Identity, true) => {
                return Invalid::refuse(
                    "task",
                    format!("dataset kind {kind:?} has a float target, not classes: write \"task\": \"regression\""),
                )
            }
            _ => {}
        }
        if !transformer && self.dataset.is_sequence() != rnn {
            return Invalid::refuse(
                "model.family",
                format!(
                    "{:?} on dataset kind {kind:?}: the sequence datasets (\"adding\", \"copy\", \"sort\", \"reverse\", \"copy-offset\", an image set with dataset.sequence) are for the rnn family (and, with a dataset.length, the transformer)",
                    self.model.family_name()
                ),
            );
        }
        if !rnn {
            return Ok(());
        }
        if let DatasetSpec::Copy(c) = &self.dataset {
            let min = gradscope_data::sequences::copy_min_length(c.recall);
            for (i, &d) in self.depths.iter().enumerate() {
                if d < min && c.length.is_none() {
                    return Invalid::refuse(
                        format!("depths[{i}]"),
                        format!("a sequence length of {d} is too short for the copy task: dataset.recall {} needs 2 · {} + 1 = {min} steps or more (the symbols, the delimiter, the answers)", c.recall, c.recall),
                    );
                }
            }
        }
        if let Some(length) = self.dataset.length() {
            for (i, &d) in self.depths.iter().enumerate() {
                if d != length {
                    return Invalid::refuse(
                        format!("depths[{i}]"),
                        format!("{d} is not dataset.length {length}: the rnn family's depth is the sequence length (leave dataset.length out to sweep it with depths)"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The name (it names the results folder), and the variants, depths
    /// and seeds: each non-empty, without repeats.
    fn check_lists(&self) -> Result<(), Invalid> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !self.name.starts_with('.');
        if !name_ok {
            return Invalid::refuse(
                "name",
                format!("{:?} must be non-empty and use only letters, digits, '-', '_' and '.' (it names the results folder)", self.name),
            );
        }
        if self.variants.is_empty() {
            return Invalid::refuse(
                "variants",
                "is empty: list at least one of \"plain\", \"residual\"",
            );
        }
        if let Some(v) = first_duplicate(&self.variants) {
            return Invalid::refuse("variants", format!("{:?} is listed twice", v.as_str()));
        }
        if self.depths.is_empty() {
            return Invalid::refuse("depths", "is empty: list at least one depth");
        }
        for (i, &d) in self.depths.iter().enumerate() {
            if d < 2 && matches!(self.model, ModelSpec::Rnn(_)) {
                return Invalid::refuse(
                    format!("depths[{i}]"),
                    format!("a sequence length of {d} (the rnn family's depths are lengths): give 2 or more"),
                );
            }
            // A transformer's depth counts blocks: 1 is a net (0 is
            // refused by the model's own checks, in its words).
            if d < 2 && !matches!(self.model, ModelSpec::Transformer(_)) {
                return Invalid::refuse(
                    format!("depths[{i}]"),
                    format!("{d} is below 2 (an input and an output layer)"),
                );
            }
            if d > 10_000 {
                return Invalid::refuse(
                    format!("depths[{i}]"),
                    format!("{d} is above the limit 10000"),
                );
            }
        }
        if let Some(d) = first_duplicate(&self.depths) {
            return Invalid::refuse("depths", format!("{d} is listed twice"));
        }
        if self.seeds.is_empty() {
            return Invalid::refuse("seeds", "is empty: list at least one seed");
        }
        if let Some(s) = first_duplicate(&self.seeds) {
            return Invalid::refuse("seeds", format!("{s} is listed twice"));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gradscope_models::cnn::Shortcut;
    use gradscope_models::{Init, Norm};

    /// A valid experiment, the base the parser tests and fuzzing edit.
    pub(crate) const GOOD: &str = r#"{
      "name": "t",
      "dataset": { "kind": "synthetic", "samples": 256, "classes": 4, "features": 8 },
      "model": { "family": "mlp", "width": 16, "activation": "sigmoid" },
      "variants": ["plain", "residual"],
      "depths": [4, 8],
      "seeds": [0],
      "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 32, "steps": 20, "eval_every": 10 },
      "probe": { "every": 5 }
    }"#;

    fn parse(text: &str) -> Result<Experiment, SpecError> {
        Experiment::from_json(text, Path::new("exp.json"))
    }

    /// Replaces the first occurrence of `from` in the good file.
    fn with(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "fixture lacks {from}");
        GOOD.replacen(from, to, 1)
    }

    /// A valid rnn experiment: the adding problem, lengths by depth.
    const RNN: &str = r#"{
      "name": "r",
      "dataset": { "kind": "adding", "samples": 64 },
      "model": { "family": "rnn", "width": 8, "cell": ["tanh", "lstm"] },
      "variants": ["plain"],
      "depths": [5, 10],
      "seeds": [0],
      "task": "regression",
      "train": { "lr": 0.1, "batch_size": 16, "steps": 4, "eval_every": 2 },
      "probe": { "every": 2 }
    }"#;

    /// Issue 34: bad rnn input gets one line naming the file and the field.
    #[test]
    fn rnn_input_errors_name_the_field() {
        let good = parse(RNN).unwrap();
        let runs = crate::plan::plan(&good);
        let names: Vec<String> = runs.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "plain-tanh-d5-s0",
                "plain-lstm-d5-s0",
                "plain-tanh-d10-s0",
                "plain-lstm-d10-s0"
            ]
        );
        // The LSTM's forget bias and the stack sweep like any number.
        let swept = parse(&RNN.replacen(
            r#""width": 8,"#,
            r#""width": 8, "forget_bias": [0, 1], "layers": [1, 2],"#,
            1,
        ))
        .unwrap();
        assert_eq!(crate::plan::plan(&swept).len(), 16);
        assert!(crate::plan::plan(&swept)[0]
            .name()
            .contains("layers1-forget_bias0"));
        let run_data = crate::sweep::run_dataset(&good, &runs[2]);
        assert_eq!(run_data.length(), Some(10), "data made at the run's depth");
        let bad = |from: &str, to: &str| {
            assert!(RNN.contains(from), "fixture lacks {from}");
            let e = parse(&RNN.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            assert!(e.to_string().starts_with("exp.json: "), "{e}");
            (e.field().to_string(), e.to_string())
        };
        let (field, e) = bad("[5, 10]", "[0, 10]");
        assert_eq!(field, "depths[0]", "{e}");
        assert!(e.contains("sequence length of 0"), "{e}");
        let (field, e) = bad(r#""lstm"]"#, r#""elman"]"#);
        assert_eq!(field, "model.cell", "{e}");
        assert!(e.contains("elman"), "{e}");
        let (field, e) = bad(r#""plain"]"#, r#""plain", "residual"]"#);
        assert_eq!(field, "variants[1]", "{e}");
        let (field, e) = bad(r#""regression""#, r#""classify""#);
        assert_eq!(field, "task", "{e}");
        let (field, e) = bad(r#""samples": 64 }"#, r#""samples": 64, "length": 5 }"#);
        assert_eq!(field, "depths[1]", "{e}");
        // A cell setting on a feed-forward family, and regression there.
        let (field, e) = parse(&with(
            r#""activation": "sigmoid""#,
            r#""activation": "sigmoid", "forget_bias": 1"#,
        ))
        .map(|_| unreachable!())
        .unwrap_or_else(|e| (e.field().to_string(), e.to_string()));
        assert_eq!(field, "model.forget_bias", "{e}");
        let (field, e) = parse(&with(
            r#""activation": "sigmoid""#,
            r#""activation": "sigmoid", "cell": "lstm""#,
        ))
        .map(|_| unreachable!())
        .unwrap_or_else(|e| (e.field().to_string(), e.to_string()));
        assert_eq!(field, "model.cell", "{e}");
        let e = parse(&with(r#""probe""#, r#""task": "regression", "probe""#)).unwrap_err();
        assert_eq!(e.field(), "task", "{e}");
        assert!(e.to_string().contains("adding"), "{e}");
    }

    /// Issue 34 §2: the copy task and an image set read as a sequence,
    /// and each of their refusals in one line naming the file, the field
    /// and the value.
    #[test]
    fn copy_and_image_sequence_errors_name_the_field() {
        let copy = RNN
            .replacen(r#""kind": "adding""#, r#""kind": "copy""#, 1)
            .replacen(r#""task": "regression","#, "", 1)
            .replacen("[5, 10]", "[21, 30]", 1);
        let images = copy.replacen(
            r#""kind": "copy", "samples": 64"#,
            r#""kind": "mnist", "dir": "d", "sequence": "rows""#,
            1,
        );
        let good = parse(&copy).unwrap();
        assert_eq!(good.dataset.output_steps(), Some(10), "recall's default");
        let run = crate::plan::plan(&good).remove(2);
        assert_eq!(crate::sweep::run_dataset(&good, &run).length(), Some(30));
        let good = parse(&images).unwrap();
        assert!(good.dataset.is_sequence() && !good.dataset.is_image());
        let bad = |text: &str, from: &str, to: &str| {
            assert!(text.contains(from), "fixture lacks {from}");
            let e = parse(&text.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            assert!(e.to_string().starts_with("exp.json: "), "{e}");
            (e.field().to_string(), e.to_string())
        };
        // A copy sequence too short for 2 · recall + 1 steps.
        let (field, e) = bad(&copy, "[21, 30]", "[20, 30]");
        assert_eq!(field, "depths[0]", "{e}");
        assert!(e.contains("length of 20 is too short"), "{e}");
        assert!(e.contains("2 · 10 + 1 = 21"), "{e}");
        let (field, e) = bad(
            &copy,
            r#""samples": 64"#,
            r#""samples": 64, "recall": 3, "length": 6"#,
        );
        assert_eq!(field, "dataset.length", "{e}");
        assert!(e.contains("6 is too short"), "{e}");
        let (field, _) = bad(&copy, r#""samples": 64"#, r#""samples": 64, "length": 25"#);
        assert_eq!(field, "depths[0]");
        let (field, e) = bad(&copy, r#""seeds""#, r#""task": "regression", "seeds""#);
        assert_eq!(field, "task", "{e}");
        let mlp = r#""family": "mlp", "width": 8, "activation": "tanh""#;
        let (field, e) = bad(
            &copy,
            r#""family": "rnn", "width": 8, "cell": ["tanh", "lstm"]"#,
            mlp,
        );
        assert_eq!(field, "model.family", "{e}");
        // The sequence option on a feed-forward family.
        let rnn = r#""family": "rnn", "width": 8, "cell": ["tanh", "lstm"]"#;
        let (field, e) = bad(&images, rnn, mlp);
        assert_eq!(field, "dataset.sequence", "{e}");
        assert!(e.contains(r#""rows""#) && e.contains(r#"not "mlp""#), "{e}");
        let (field, _) = bad(&images, rnn, r#""family": "cnn", "width": 4"#);
        assert_eq!(field, "dataset.sequence");
        // The rnn family on plain images.
        let (field, e) = bad(&images, r#", "sequence": "rows""#, "");
        assert_eq!(field, "dataset.sequence", "{e}");
        assert!(e.contains("missing") && e.contains(r#""pixels""#), "{e}");
        let (field, e) = bad(
            &images,
            r#""kind": "mnist", "dir": "d", "sequence": "rows""#,
            r#""kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [1, 4, 4]"#,
        );
        assert_eq!(field, "model.family", "{e}");
        assert!(e.contains("not images"), "{e}");
        let (field, _) = bad(&images, r#""sequence": "rows""#, r#""permute_seed": 1"#);
        assert_eq!(field, "dataset.permute_seed");
        let (field, e) = bad(&images, r#""rows""#, r#""diagonals""#);
        assert_eq!(field, "dataset.sequence", "{e}");
    }

    /// Issue 35: the transformer trains on images and on token
    /// sequences with a length of their own (its depths count blocks, so
    /// the data are not made at the depth); it refuses vectors, a
    /// sequence without a length, a patch on tokens, heads that do not
    /// divide the width and highway, each in one line naming the field.
    #[test]
    fn transformer_data_and_settings_are_checked() {
        let copy = r#"{
          "name": "t",
          "dataset": { "kind": "copy", "samples": 64, "recall": 2, "length": 9 },
          "model": { "family": "transformer", "width": 16, "causal": true },
          "variants": ["plain", "post-ln", "pre-ln", "residual", "rezero"],
          "depths": [1, 3],
          "seeds": [0],
          "train": { "lr": 0.1, "batch_size": 16, "steps": 4, "eval_every": 2 },
          "probe": { "every": 2 }
        }"#;
        let good = parse(copy).unwrap();
        for run in crate::plan::plan(&good) {
            assert_eq!(crate::sweep::run_dataset(&good, &run).length(), Some(9));
        }
        let images = copy.replacen(
            r#""kind": "copy", "samples": 64, "recall": 2, "length": 9"#,
            r#""kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [1, 8, 8]"#,
            1,
        );
        parse(&images).unwrap();
        parse(&images.replacen(r#""causal": true"#, r#""patch": 2"#, 1)).unwrap();
        let bad = |text: &str, from: &str, to: &str| {
            assert!(text.contains(from), "fixture lacks {from}");
            let e = parse(&text.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            (e.field().to_string(), e.to_string())
        };
        let (field, e) = bad(copy, r#", "length": 9"#, "");
        assert_eq!(field, "dataset.length", "{e}");
        assert!(e.contains("count blocks"), "{e}");
        let (field, e) = bad(
            copy,
            r#""kind": "copy", "samples": 64, "recall": 2, "length": 9"#,
            r#""kind": "synthetic", "samples": 64, "classes": 3, "features": 8"#,
        );
        assert_eq!(field, "model.family", "{e}");
        assert!(e.contains("vectors"), "{e}");
        let (field, _) = bad(copy, r#""causal": true"#, r#""patch": 2"#);
        assert_eq!(field, "model.patch");
        let (field, e) = bad(copy, r#""causal": true"#, r#""heads": 6"#);
        assert_eq!(field, "model.heads", "{e}");
        assert!(e.contains("6 does not divide model.width 16"), "{e}");
        let (field, e) = bad(copy, r#""rezero"]"#, r#""highway"]"#);
        assert_eq!(field, "variants[4]", "{e}");
        let (field, _) = bad(copy, r#""causal": true"#, r#""layers": 2"#);
        assert!(field.starts_with("model"), "{field}");
        // The other families keep their refusal of an LN layout.
        let (field, e) = parse(&with(r#""plain""#, r#""pre-ln""#))
            .map(|_| unreachable!())
            .unwrap_or_else(|e| (e.field().to_string(), e.to_string()));
        assert!(field.starts_with("variants"), "{field}: {e}");
    }

    /// The token tasks go with the rnn family at their own length: every
    /// depth must equal it (no depth makes their data), and a
    /// feed-forward family is refused on them, each in one line naming the
    /// field.
    #[test]
    fn token_tasks_run_at_their_own_length() {
        let sort = RNN
            .replacen(r#""kind": "adding""#, r#""kind": "sort", "length": 8"#, 1)
            .replacen(r#""task": "regression","#, "", 1)
            .replacen("[5, 10]", "[8]", 1);
        let good = parse(&sort).unwrap();
        assert_eq!(good.dataset.output_steps(), Some(8));
        let run = crate::plan::plan(&good).remove(0);
        assert_eq!(crate::sweep::run_dataset(&good, &run).length(), Some(8));
        let e = parse(&sort.replacen("[8]", "[8, 16]", 1)).unwrap_err();
        assert_eq!(e.field(), "depths[1]", "{e}");
        assert!(e.to_string().contains("16 is not dataset.length 8"), "{e}");
        let mlp = sort.replacen(
            r#""family": "rnn", "width": 8, "cell": ["tanh", "lstm"]"#,
            r#""family": "mlp", "width": 8, "activation": "relu""#,
            1,
        );
        let e = parse(&mlp).unwrap_err();
        assert_eq!(e.field(), "model.family", "{e}");
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let e = parse(GOOD).unwrap();
        assert_eq!(e.depths, vec![4, 8]);
        let ModelSpec::Mlp(m) = &e.model else {
            panic!("mlp expected")
        };
        assert_eq!(
            (m.init.values(), m.norm.values()),
            (&[Init::PytorchDefault][..], &[Norm::None][..])
        );
        assert_eq!(e.train.log_every(), 10);
    }

    #[test]
    fn init_forms_parse() {
        let e = parse(&with(
            r#""activation": "sigmoid""#,
            r#""activation": "tanh", "init": {"normal": {"std": 0.05}}"#,
        ))
        .unwrap();
        let ModelSpec::Mlp(m) = &e.model else {
            panic!("mlp expected")
        };
        assert_eq!(m.init.values(), [Init::Normal { std: 0.05 }]);
        let e = parse(&with(
            r#""activation": "sigmoid""#,
            r#""activation": "relu", "init": "kaiming", "norm": "batchnorm""#,
        ))
        .unwrap();
        let ModelSpec::Mlp(m) = &e.model else {
            panic!("mlp expected")
        };
        assert_eq!(
            (m.init.values(), m.norm.values()),
            (&[Init::Kaiming][..], &[Norm::Batchnorm][..])
        );
    }

    /// Each bad file must fail naming the file and the field.
    #[test]
    fn errors_name_the_file_and_the_field() {
        let cases: Vec<(String, &str)> = vec![
            (GOOD.replace('}', ""), "."),
            (
                with(r#""seeds": [0]"#, r#""seeds": [0], "colour": 1"#),
                "colour",
            ),
            (with(r#""lr": 0.1"#, r#""lr": 0.1, "lrr": 1"#), "train.lrr"),
            (with("\"sigmoid\"", "\"softplus\""), "model.activation"),
            (
                with(r#""width": 16"#, r#""width": 16, "heigth": 3"#),
                "model.heigth",
            ),
            (with(r#""width": 16"#, r#""width": "wide""#), "model.width"),
            (with(r#""family": "mlp", "#, ""), "model.family"),
            (
                with(r#""depths": [4, 8]"#, r#""depths": [1, 8]"#),
                "depths[0]",
            ),
            (with(r#""depths": [4, 8]"#, r#""depths": []"#), "depths"),
            (with(r#""depths": [4, 8]"#, r#""depths": "deep""#), "depths"),
            (with(r#""lr": 0.1"#, r#""lr": 0"#), "train.lr"),
            (with(r#""lr": 0.1"#, r#""lr": -1"#), "train.lr"),
            (
                with(r#""batch_size": 32"#, r#""batch_size": 0"#),
                "train.batch_size",
            ),
            (
                with(r#""batch_size": 32"#, r#""batch_size": 1000"#),
                "train.batch_size",
            ),
            (
                with(r#""momentum": 0.9"#, r#""momentum": 1.5"#),
                "train.momentum",
            ),
            (with(r#""every": 5"#, r#""every": 0"#), "probe.every"),
            (with(r#""width": 16"#, r#""width": 0"#), "model.width"),
            (
                with(r#""classes": 4"#, r#""classes": 1"#),
                "dataset.classes",
            ),
            (
                with(r#""kind": "synthetic""#, r#""kind": "imagenet""#),
                "dataset.kind",
            ),
            (
                with(r#""family": "mlp""#, r#""family": "gpt""#),
                "model.family",
            ),
            (
                with(r#""variants": ["plain", "residual"]"#, r#""variants": []"#),
                "variants",
            ),
            (
                with(
                    r#""variants": ["plain", "residual"]"#,
                    r#""variants": ["plain", "skip"]"#,
                ),
                "variants[1]",
            ),
            (with(r#""name": "t""#, r#""name": "../x""#), "name"),
            (
                with(
                    r#""activation": "sigmoid""#,
                    r#""activation": "tanh", "init": {"normal": {"std": -1}}"#,
                ),
                "model.init.normal.std",
            ),
            (
                with(
                    r#""activation": "sigmoid""#,
                    r#""activation": "tanh", "init": {"variance": {"weight": 1, "bias": -1}}"#,
                ),
                "model.init.variance.bias",
            ),
            (
                with(
                    r#""activation": "sigmoid""#,
                    r#""activation": "tanh", "init": {"orthogonal": {"gain": 0}}"#,
                ),
                "model.init.orthogonal.gain",
            ),
            (
                with(
                    r#""family": "mlp", "width": 16, "activation": "sigmoid""#,
                    r#""family": "cnn""#,
                ),
                "model.family",
            ),
            (
                with(r#""steps": 20"#, r#""steps": 20, "epochs": 2"#),
                "train.epochs",
            ),
            (with(r#""steps": 20, "#, ""), "train.steps"),
            (
                with(r#""steps": 20"#, r#""steps": 20, "lr_milestones": [10, 5]"#),
                "train.lr_milestones[1]",
            ),
            (
                with(r#""steps": 20"#, r#""steps": 20, "lr_gamma": 2"#),
                "train.lr_gamma",
            ),
            (
                with(
                    r#""steps": 20"#,
                    r#""steps": 20, "warmup": {"lr": 0.01, "until_train_error": 1.5}"#,
                ),
                "train.warmup.until_train_error",
            ),
            (
                with(
                    r#""steps": 20"#,
                    r#""steps": 20, "warmup": {"lr": 0.01, "steps": 5}"#,
                ),
                "train.warmup",
            ),
            (
                with(r#""steps": 20"#, r#""steps": 20, "beta1": 0.9"#),
                "train.beta1",
            ),
            (
                with(
                    r#""momentum": 0.9"#,
                    r#""momentum": 0, "optimizer": "adam", "beta2": 1"#,
                ),
                "train.beta2",
            ),
            (
                with(
                    r#""momentum": 0.9"#,
                    r#""momentum": 0.9, "optimizer": "adamw""#,
                ),
                "train.momentum",
            ),
            (
                with(r#""steps": 20"#, r#""steps": 20, "clip_grad_norm": 0"#),
                "train.clip_grad_norm",
            ),
            (
                with(
                    r#""momentum": 0.9"#,
                    r#""momentum": 0.9, "optimizer": "rmsprop""#,
                ),
                "train.optimizer",
            ),
            (
                with(
                    r#""kind": "synthetic", "samples": 256, "classes": 4, "features": 8"#,
                    r#""kind": "mnist""#,
                ),
                "dataset.dir",
            ),
            (
                with(
                    r#""kind": "synthetic", "samples": 256, "classes": 4, "features": 8"#,
                    r#""kind": "cifar10", "dir": "/x", "subset_train": 0"#,
                ),
                "dataset.subset_train",
            ),
            (
                with(
                    r#""kind": "synthetic", "samples": 256, "classes": 4, "features": 8"#,
                    r#""kind": "fashion-mnist", "agument": true"#,
                ),
                "dataset.agument",
            ),
        ];
        let mut wrong = Vec::new();
        for (text, field) in cases {
            match parse(&text) {
                Ok(_) => wrong.push(format!("{field}: accepted")),
                Err(err)
                    if err.field() != field
                        || !err.to_string().starts_with(&format!("exp.json: {field}: ")) =>
                {
                    wrong.push(format!("{field}: got {err}"))
                }
                Err(_) => {}
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// He et al. CIFAR nets have 6n+2 layers; anything else is refused
    /// before training, naming the depth.
    #[test]
    fn cnn_depth_must_be_6n_plus_2() {
        let cnn = GOOD
            .replace(
                r#""kind": "synthetic", "samples": 256, "classes": 4, "features": 8"#,
                r#""kind": "synthetic-images", "samples": 256, "classes": 4, "shape": [1, 8, 8]"#,
            )
            .replace(
                r#""family": "mlp", "width": 16, "activation": "sigmoid""#,
                r#""family": "cnn", "width": 4"#,
            );
        let err = parse(&cnn).unwrap_err();
        assert_eq!(err.field(), "depths[0]", "{err}");
        assert!(err.to_string().contains("6n+2"), "{err}");
        let ok = parse(&cnn.replace("[4, 8]", "[8, 14]")).unwrap();
        let ModelSpec::Cnn(c) = &ok.model else {
            panic!("cnn expected")
        };
        assert_eq!(c.shortcut, Shortcut::A);
        assert_eq!(
            (c.init.values(), c.norm.values()),
            (&[Init::Kaiming][..], &[Norm::Batchnorm][..])
        );
    }

    #[test]
    fn schedule_and_budget() {
        let e = parse(&with(
            r#""steps": 20"#,
            r#""epochs": 3, "lr_milestones": [10, 15]"#,
        ))
        .unwrap();
        // 256 examples / batch 32 = 8 steps per epoch.
        assert_eq!(e.train.total_steps(256), 24);
        assert_eq!(e.train.scheduled_lr(9), 0.1);
        assert!((e.train.scheduled_lr(10) - 0.01).abs() < 1e-12);
        assert!((e.train.scheduled_lr(23) - 0.001).abs() < 1e-12);
    }

    /// A warm-up of 0 steps is none (every step at the scheduled lr), and
    /// a list of step counts sweeps it: a warm-up against none.
    #[test]
    fn a_warm_up_of_0_steps_is_none_and_the_steps_sweep() {
        let none = parse(&with(
            r#""steps": 20"#,
            r#""steps": 20, "warmup": {"steps": 0}"#,
        ))
        .unwrap();
        assert_eq!(none.train.warmed_lr(0), none.train.lr);
        let swept = parse(&with(
            r#""steps": 20"#,
            r#""steps": 20, "warmup": {"steps": [0, 10]}"#,
        ))
        .unwrap();
        let runs = crate::plan::plan(&swept);
        assert_eq!(runs.len(), 2 * crate::plan::plan(&none).len());
        let ten = swept.resolved(&runs.last().unwrap().setting);
        assert!((ten.train.warmed_lr(0) - ten.train.lr / 10.0).abs() < 1e-15);
    }

    /// Crashers found by `fuzz.rs`, kept as regression tests: each panicked
    /// with "attempt to multiply with overflow".
    #[test]
    fn fuzz_crashers_are_errors_or_saturate() {
        let images = GOOD
            .replace(
                r#""kind": "synthetic", "samples": 256, "classes": 4, "features": 8"#,
                r#""kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [2, 4611686018427387904, 2]"#,
            )
            .replace(
                r#""family": "mlp", "width": 16, "activation": "sigmoid""#,
                r#""family": "cnn", "width": 4"#,
            )
            .replace("[4, 8]", "[8, 14]");
        let err = parse(&images).unwrap_err();
        assert_eq!(err.field(), "dataset.shape", "{err}");
        let huge = images.replace(
            "[2, 4611686018427387904, 2]",
            "[288230376151711744, 18446744073709551615, 2]",
        );
        assert_eq!(parse(&huge).unwrap_err().field(), "dataset.shape");
        // 17 epochs at batch 16 (here 33 at batch 32) of a split so large
        // that the step count overflowed.
        let e = parse(&with(r#""steps": 20"#, r#""epochs": 33"#)).unwrap();
        assert_eq!(e.train.total_steps(usize::MAX), usize::MAX);
    }

    /// The misspellings of `init` the issue met, and what they are told.
    #[test]
    fn init_errors_show_the_accepted_forms() {
        let err = parse(&with(
            r#""activation": "sigmoid""#,
            r#""activation": "sigmoid", "init": "normal""#,
        ))
        .unwrap_err();
        assert_eq!(err.field(), "model.init", "{err}");
        assert!(
            err.to_string()
                .contains(r#"write {"normal": {"std": 0.05}}"#),
            "{err}"
        );
        for bad in [r#""xavier""#, r#"{"normal": 0.05}"#, "3"] {
            let err = parse(&with(
                r#""activation": "sigmoid""#,
                &format!(r#""activation": "sigmoid", "init": {bad}"#),
            ))
            .unwrap_err();
            assert!(err.field().starts_with("model.init"), "{bad}: {err}");
            assert!(err.to_string().contains(INIT_FORMS), "{bad}: {err}");
        }
    }

    /// docs/experiment.schema.json is what the types generate now; when
    /// they change, `gradscope schema > docs/experiment.schema.json`.
    #[test]
    fn the_published_schema_is_up_to_date() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/experiment.schema.json");
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == experiment_schema(),
            "{} is out of date: run `gradscope schema > docs/experiment.schema.json`",
            path.display()
        );
        let v: serde_json::Value = serde_json::from_str(&published).unwrap();
        assert_eq!(v["additionalProperties"], false);
        let required: Vec<&str> = v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        for field in [
            "name", "dataset", "model", "variants", "depths", "seeds", "train",
        ] {
            assert!(
                required.contains(&field),
                "{field} not required: {required:?}"
            );
        }
    }

    #[test]
    fn unknown_nested_field_message_names_it() {
        let err = parse(&with(r#""lr": 0.1"#, r#""lr": 0.1, "lrr": 1"#)).unwrap_err();
        assert!(err.to_string().contains("lrr"), "{err}");
    }
}
