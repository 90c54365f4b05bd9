//! The experiment file: what to train, at which depths, and how to probe it.
//!
//! Parsing goes through `serde_path_to_error`, so a wrong type or an unknown
//! field is reported with its path (`model.activation`); then
//! [`Experiment::validate`] checks every value that serde cannot (depth ≥ 2,
//! lr > 0, …). Each error names the file and the field.

use gradscope_models::{Activation, Init, Norm, Variant};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An experiment, as written in `experiments/NAME.json`. Defaults are filled
/// in when parsed and saved with every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

/// Where the data come from, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DatasetSpec {
    Synthetic(SyntheticData),
}

/// Gaussian inputs labelled by a random teacher net (see gradscope-data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticData {
    pub samples: usize,
    /// Held-out examples; default a quarter of `samples`.
    #[serde(default)]
    pub test_samples: Option<usize>,
    pub classes: usize,
    pub features: usize,
    /// Hidden units of the teacher; default 2 × classes.
    #[serde(default)]
    pub teacher_width: Option<usize>,
    /// Seed of the data, fixed across the runs of a sweep.
    #[serde(default)]
    pub seed: u64,
}

/// The network family and its options, tagged by `family`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelSpec {
    Mlp(MlpSpec),
}

/// Options of the MLP family (see gradscope-models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    pub width: i64,
    pub activation: Activation,
    /// `pytorch-default` (default), `glorot`, `kaiming`, or
    /// `{"normal": {"std": 0.02}}`.
    #[serde(default = "default_init")]
    pub init: Init,
    /// `none` (default) or `batchnorm`.
    #[serde(default = "default_norm")]
    pub norm: Norm,
}

fn default_init() -> Init {
    Init::PytorchDefault
}
fn default_norm() -> Norm {
    Norm::None
}

// serde's own internally tagged enums buffer their content and lose the path
// of an error inside it ("model: unknown variant" instead of
// "model.activation: ..."). These impls read the tag themselves and parse the
// rest with the path kept; the inner path travels out at the head of the
// message (after PATH_MARK) and `Experiment::from_json` joins it to the outer
// one.
impl<'de> Deserialize<'de> for DatasetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (kind, rest) = take_tag::<D::Error>(serde_json::Value::deserialize(d)?, "kind")?;
        match kind.as_str() {
            "synthetic" => Ok(DatasetSpec::Synthetic(tagged(rest)?)),
            other => Err(in_field(
                "kind",
                format!("unknown dataset kind {other:?}, expected \"synthetic\""),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (family, rest) = take_tag::<D::Error>(serde_json::Value::deserialize(d)?, "family")?;
        match family.as_str() {
            "mlp" => Ok(ModelSpec::Mlp(tagged(rest)?)),
            other => Err(in_field(
                "family",
                format!("unknown model family {other:?}, expected \"mlp\""),
            )),
        }
    }
}

/// Starts an error message that carries a path inside a tagged object.
const PATH_MARK: &str = "\u{1}";

fn in_field<E: serde::de::Error>(field: &str, message: String) -> E {
    E::custom(format!("{PATH_MARK}{field}: {message}"))
}

/// Splits the tag off a tagged object.
fn take_tag<E: serde::de::Error>(
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
        Some(other) => Err(in_field(tag, format!("expected a string, found {other}"))),
        None => Err(in_field(tag, "missing".to_string())),
    }
}

/// Parses the rest of a tagged object, keeping the path of an error.
fn tagged<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    rest: serde_json::Value,
) -> Result<T, E> {
    serde_path_to_error::deserialize(rest)
        .map_err(|e| in_field(&e.path().to_string(), e.into_inner().to_string()))
}

/// Only SGD for now; the field exists so files say what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Sgd,
}

/// The optimizer and the budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(default = "default_optimizer")]
    pub optimizer: Optimizer,
    pub lr: f64,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub weight_decay: f64,
    pub batch_size: usize,
    /// Optimizer steps per run.
    pub steps: usize,
    /// Evaluate the held-out split every this many steps (and at the end).
    pub eval_every: usize,
    /// Write a training-error row every this many steps; default
    /// `eval_every`.
    #[serde(default)]
    pub log_every: Option<usize>,
}

fn default_optimizer() -> Optimizer {
    Optimizer::Sgd
}

impl TrainSpec {
    pub fn log_every(&self) -> usize {
        self.log_every.unwrap_or(self.eval_every)
    }
}

/// How often to probe. Step 0 and the last step are always probed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    pub every: usize,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec { every: 10 }
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
        let de = &mut serde_json::Deserializer::from_str(text);
        let exp: Experiment = serde_path_to_error::deserialize(de).map_err(|e| {
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
            // An error from inside a tagged object carries its inner path.
            if let Some((inner, rest)) = message
                .strip_prefix(PATH_MARK)
                .and_then(|m| m.split_once(": "))
            {
                field = format!("{field}.{inner}");
                message = rest.to_string();
            }
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
        exp.validate()
            .map_err(|(field, message)| SpecError::Invalid {
                path: path.to_path_buf(),
                field,
                message,
            })?;
        Ok(exp)
    }

    /// Checks every value serde cannot; returns the field and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        fn fail<T>(field: &str, message: String) -> Result<T, (String, String)> {
            Err((field.to_string(), message))
        }
        fn at_least(field: &str, value: usize, min: usize) -> Result<(), (String, String)> {
            if value < min {
                return fail(field, format!("{value} is below the minimum {min}"));
            }
            Ok(())
        }
        fn positive_finite(field: &str, value: f64) -> Result<(), (String, String)> {
            if !(value.is_finite() && value > 0.0) {
                return fail(field, format!("{value} must be a finite number above 0"));
            }
            Ok(())
        }

        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !self.name.starts_with('.');
        if !name_ok {
            return fail(
                "name",
                format!("{:?} must be non-empty and use only letters, digits, '-', '_' and '.' (it names the results folder)", self.name),
            );
        }
        if self.variants.is_empty() {
            return fail(
                "variants",
                "is empty: list at least one of \"plain\", \"residual\"".into(),
            );
        }
        if let Some(v) = first_duplicate(&self.variants) {
            return fail("variants", format!("{:?} is listed twice", v.as_str()));
        }
        if self.depths.is_empty() {
            return fail("depths", "is empty: list at least one depth".into());
        }
        for (i, &d) in self.depths.iter().enumerate() {
            if d < 2 {
                return fail(
                    &format!("depths[{i}]"),
                    format!("{d} is below 2 (an input and an output layer)"),
                );
            }
            if d > 10_000 {
                return fail(
                    &format!("depths[{i}]"),
                    format!("{d} is above the limit 10000"),
                );
            }
        }
        if let Some(d) = first_duplicate(&self.depths) {
            return fail("depths", format!("{d} is listed twice"));
        }
        if self.seeds.is_empty() {
            return fail("seeds", "is empty: list at least one seed".into());
        }
        if let Some(s) = first_duplicate(&self.seeds) {
            return fail("seeds", format!("{s} is listed twice"));
        }

        let train_samples = match &self.dataset {
            DatasetSpec::Synthetic(SyntheticData {
                samples,
                test_samples,
                classes,
                features,
                teacher_width,
                ..
            }) => {
                at_least("dataset.samples", *samples, 1)?;
                if let Some(t) = test_samples {
                    at_least("dataset.test_samples", *t, 1)?;
                }
                at_least("dataset.classes", *classes, 2)?;
                at_least("dataset.features", *features, 1)?;
                if let Some(w) = teacher_width {
                    at_least("dataset.teacher_width", *w, 1)?;
                }
                if samples.saturating_mul(*features) > 200_000_000 {
                    return fail("dataset.samples", format!("{samples} × {features} features is over the 2e8-value limit of the synthetic set"));
                }
                *samples
            }
        };

        match &self.model {
            ModelSpec::Mlp(MlpSpec { width, init, .. }) => {
                if !(1..=65_536).contains(width) {
                    return fail(
                        "model.width",
                        format!("{width} must be between 1 and 65536"),
                    );
                }
                if let Init::Normal { std } = init {
                    positive_finite("model.init.normal.std", *std)?;
                }
            }
        }

        let t = &self.train;
        positive_finite("train.lr", t.lr)?;
        if !(0.0..1.0).contains(&t.momentum) {
            return fail(
                "train.momentum",
                format!("{} must be in [0, 1)", t.momentum),
            );
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return fail(
                "train.weight_decay",
                format!("{} must be a finite number ≥ 0", t.weight_decay),
            );
        }
        at_least("train.batch_size", t.batch_size, 1)?;
        if t.batch_size > train_samples {
            return fail(
                "train.batch_size",
                format!(
                    "{} is larger than the {train_samples} training examples",
                    t.batch_size
                ),
            );
        }
        at_least("train.steps", t.steps, 1)?;
        at_least("train.eval_every", t.eval_every, 1)?;
        if let Some(l) = t.log_every {
            at_least("train.log_every", l, 1)?;
        }
        at_least("probe.every", self.probe.every, 1)?;
        Ok(())
    }
}

fn first_duplicate<T: PartialEq + Copy>(items: &[T]) -> Option<T> {
    items
        .iter()
        .enumerate()
        .find(|(i, x)| items[..*i].contains(x))
        .map(|(_, x)| *x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
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

    #[test]
    fn good_file_parses_with_defaults() {
        let e = parse(GOOD).unwrap();
        assert_eq!(e.depths, vec![4, 8]);
        assert!(matches!(
            e.model,
            ModelSpec::Mlp(MlpSpec {
                init: Init::PytorchDefault,
                norm: Norm::None,
                ..
            })
        ));
        assert_eq!(e.train.log_every(), 10);
    }

    #[test]
    fn init_forms_parse() {
        let e = parse(&with(
            r#""activation": "sigmoid""#,
            r#""activation": "tanh", "init": {"normal": {"std": 0.05}}"#,
        ))
        .unwrap();
        assert!(
            matches!(e.model, ModelSpec::Mlp(MlpSpec { init: Init::Normal { std }, .. }) if std == 0.05)
        );
        let e = parse(&with(
            r#""activation": "sigmoid""#,
            r#""activation": "relu", "init": "kaiming", "norm": "batchnorm""#,
        ))
        .unwrap();
        assert!(matches!(
            e.model,
            ModelSpec::Mlp(MlpSpec {
                init: Init::Kaiming,
                norm: Norm::Batchnorm,
                ..
            })
        ));
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
                with(r#""family": "mlp""#, r#""family": "transformer""#),
                "model.family",
            ),
            (
                with(r#""variants": ["plain", "residual"]"#, r#""variants": []"#),
                "variants",
            ),
            (
                with(
                    r#""variants": ["plain", "residual"]"#,
                    r#""variants": ["plain", "highway"]"#,
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

    #[test]
    fn unknown_nested_field_message_names_it() {
        let err = parse(&with(r#""lr": 0.1"#, r#""lr": 0.1, "lrr": 1"#)).unwrap_err();
        assert!(err.to_string().contains("lrr"), "{err}");
    }
}
