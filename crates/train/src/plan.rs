//! The plan: one run per variant × swept settings × depth × seed, and the
//! run's name.

use crate::spec::{Experiment, ModelSpec};
use gradscope_models::rnn::Cell;
use gradscope_models::spec::{Axis, Label};
use gradscope_models::{Activation, Init, Norm, Variant};

/// The values of the swept settings (the fields given as a list) for one
/// run; `None` (or no entry in `numbers`) where the experiment does not
/// sweep that field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Setting {
    pub activation: Option<Activation>,
    pub init: Option<Init>,
    pub norm: Option<Norm>,
    /// The rnn family's cell (its plain-against-shortcut axis).
    pub cell: Option<Cell>,
    /// The run's value of each swept numeric field (`("train.lr", 0.1)`),
    /// in [`crate::spec::Experiment::numbers`]' order.
    pub numbers: Vec<(&'static str, serde_json::Value)>,
}

pub use gradscope_format::names::SWEPT_FIELDS;

impl Setting {
    /// `(field, value)` for each swept field, e.g. `("init", "glorot")`.
    pub fn columns(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(a) = self.activation {
            out.push(("activation", a.label()));
        }
        if let Some(i) = self.init {
            out.push(("init", i.label()));
        }
        if let Some(n) = self.norm {
            out.push(("norm", n.label()));
        }
        if let Some(c) = self.cell {
            out.push(("cell", c.label()));
        }
        for (field, value) in &self.numbers {
            out.push((*field, value.to_string()));
        }
        out
    }
}

/// One training run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub variant: Variant,
    pub setting: Setting,
    pub depth: usize,
    pub seed: u64,
}

impl RunSpec {
    /// The run's folder name: `plain-d32-s0`, or with swept settings
    /// `plain-tanh-glorot-d20-s0`.
    pub fn name(&self) -> String {
        gradscope_format::names::run_name(
            self.variant.as_str(),
            &self.setting.columns(),
            self.depth,
            self.seed,
        )
    }

    /// The name without the seed, `plain-tanh-glorot-d20`: what the seeds of
    /// one net share.
    pub fn group_name(&self) -> String {
        let name = self.name();
        let cut = name.len() - format!("-s{}", self.seed).len();
        name[..cut].to_string()
    }
}

/// The swept settings' combinations, in the file's order (activation
/// outermost, then init, norm and the numeric fields in
/// [`SWEPT_FIELDS`] order); one empty setting when nothing is swept.
pub fn settings(exp: &Experiment) -> Vec<Setting> {
    fn swept<T: Copy + PartialEq>(axis: &Axis<T>) -> Vec<Option<T>> {
        if axis.is_swept() {
            axis.values().iter().copied().map(Some).collect()
        } else {
            vec![None]
        }
    }
    let cells = match &exp.model {
        ModelSpec::Rnn(r) => swept(&r.cell),
        _ => vec![None],
    };
    let (activations, inits, norms) = match &exp.model {
        ModelSpec::Mlp(m) => (swept(&m.activation), swept(&m.init), swept(&m.norm)),
        ModelSpec::Rnn(r) => (vec![None], swept(&r.init), vec![None]),
        ModelSpec::Cnn(m) => (vec![None], swept(&m.init), swept(&m.norm)),
        ModelSpec::Bottleneck(m) => (vec![None], swept(&m.init), swept(&m.norm)),
        ModelSpec::Inception(m) => (vec![None], swept(&m.init), swept(&m.norm)),
        ModelSpec::Transformer(t) => (vec![None], swept(&t.init), vec![None]),
    };
    let mut out = Vec::new();
    for &activation in &activations {
        for &init in &inits {
            for &norm in &norms {
                for &cell in &cells {
                    out.push(Setting {
                        activation,
                        init,
                        norm,
                        cell,
                        numbers: Vec::new(),
                    });
                }
            }
        }
    }
    for axis in &exp.numbers {
        out = out
            .into_iter()
            .flat_map(|base| {
                axis.values.iter().map(move |v| {
                    let mut s = base.clone();
                    s.numbers.push((axis.field, v.clone()));
                    s
                })
            })
            .collect();
    }
    out
}

/// Every run of an experiment, shallow depths first (so the cheap runs and a
/// first look at the charts come early), then variant, then the swept
/// settings, then seed.
pub fn plan(exp: &Experiment) -> Vec<RunSpec> {
    let settings = settings(exp);
    let mut runs = Vec::new();
    for &depth in &exp.depths {
        for &variant in &exp.variants {
            for setting in &settings {
                for &seed in &exp.seeds {
                    runs.push(RunSpec {
                        variant,
                        setting: setting.clone(),
                        depth,
                        seed,
                    });
                }
            }
        }
    }
    runs
}

/// Sets the value at `pointer` (`/model/residual_scale`) in `v`, adding
/// the last key where the serialized form left it out: a field at its
/// default is not serialized (`skip_serializing_if`), so a sweep whose
/// first value is the default (`"residual_scale": [1, 0.2]`) has no slot
/// to write. Skipping it silently trained every run at the default.
pub(crate) fn set_pointer(
    v: &mut serde_json::Value,
    pointer: &str,
    value: serde_json::Value,
) -> Result<(), String> {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
        return Ok(());
    }
    let (parent, key) = pointer
        .rsplit_once('/')
        .ok_or_else(|| format!("{pointer:?} is not a JSON pointer"))?;
    match v.pointer_mut(parent) {
        Some(serde_json::Value::Object(map)) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        _ => Err(format!(
            "the experiment has no section {parent:?} to set {key:?} in"
        )),
    }
}

impl Experiment {
    /// The experiment as one run of it trains: each swept field set to the
    /// run's value, so every axis holds one value. Saved in no file; the
    /// network, the theory and the cost model read it. Every combination
    /// was resolved when the file was read, so this cannot fail for a
    /// setting of the plan; for any other it keeps the first values.
    pub fn resolved(&self, setting: &Setting) -> Experiment {
        self.try_resolved(setting).unwrap_or_else(|_| {
            let mut out = self.clone();
            out.numbers.clear();
            out
        })
    }

    /// [`Experiment::resolved`], or the field whose value does not fit it
    /// (a fraction for a count) and why. Numbers are set through the JSON
    /// form: serialize (one value per field), set each swept path, read
    /// back, so any numeric field sweeps without code of its own.
    pub(crate) fn try_resolved(&self, setting: &Setting) -> Result<Experiment, (String, String)> {
        fn fix<T: Copy + PartialEq>(axis: &mut Axis<T>, value: Option<T>) {
            if let Some(v) = value {
                *axis = Axis::one(v);
            }
        }
        let mut out = self.clone();
        match &mut out.model {
            ModelSpec::Mlp(m) => {
                fix(&mut m.activation, setting.activation);
                fix(&mut m.init, setting.init);
                fix(&mut m.norm, setting.norm);
            }
            ModelSpec::Cnn(m) => {
                fix(&mut m.init, setting.init);
                fix(&mut m.norm, setting.norm);
            }
            ModelSpec::Bottleneck(m) => {
                fix(&mut m.init, setting.init);
                fix(&mut m.norm, setting.norm);
            }
            ModelSpec::Inception(m) => {
                fix(&mut m.init, setting.init);
                fix(&mut m.norm, setting.norm);
            }
            ModelSpec::Rnn(r) => {
                fix(&mut r.init, setting.init);
                fix(&mut r.cell, setting.cell);
            }
            ModelSpec::Transformer(t) => fix(&mut t.init, setting.init),
        }
        out.numbers.clear();
        if setting.numbers.is_empty() {
            return Ok(out);
        }
        let mut v = serde_json::to_value(&out).map_err(|e| (".".to_string(), e.to_string()))?;
        for (field, value) in &setting.numbers {
            set_pointer(
                &mut v,
                &gradscope_format::names::pointer(field),
                value.clone(),
            )
            .map_err(|why| (gradscope_format::names::path(field), why))?;
        }
        // serde's derive, not the trait impl: no lists are left to take,
        // and the caller validates.
        let mut track = serde_path_to_error::Track::new();
        Experiment::deserialize(serde_path_to_error::Deserializer::new(v, &mut track))
            .map_err(|e| (track.path().to_string(), e.to_string()))
    }

    /// The swept fields and their values, e.g. `[("init", ["pytorch-default",
    /// "glorot"])]`; empty when nothing is swept.
    pub fn swept(&self) -> Vec<(&'static str, Vec<String>)> {
        fn labels<T: Copy + PartialEq + Label>(axis: &Axis<T>) -> Vec<String> {
            axis.values().iter().map(Label::label).collect()
        }
        let all: Vec<(&'static str, Vec<String>)> = match &self.model {
            ModelSpec::Mlp(m) => vec![
                ("activation", labels(&m.activation)),
                ("init", labels(&m.init)),
                ("norm", labels(&m.norm)),
            ],
            ModelSpec::Cnn(m) => vec![("init", labels(&m.init)), ("norm", labels(&m.norm))],
            ModelSpec::Bottleneck(m) => {
                vec![("init", labels(&m.init)), ("norm", labels(&m.norm))]
            }
            ModelSpec::Inception(m) => {
                vec![("init", labels(&m.init)), ("norm", labels(&m.norm))]
            }
            ModelSpec::Rnn(r) => vec![("init", labels(&r.init)), ("cell", labels(&r.cell))],
            ModelSpec::Transformer(t) => vec![("init", labels(&t.init))],
        };
        let mut out: Vec<(&'static str, Vec<String>)> =
            all.into_iter().filter(|(_, v)| v.len() > 1).collect();
        for axis in &self.numbers {
            out.push((
                axis.field,
                axis.values.iter().map(|v| v.to_string()).collect(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::GOOD;
    use std::path::Path;

    fn swept_file() -> Experiment {
        let text = GOOD.replace(
            r#""activation": "sigmoid""#,
            r#""activation": ["sigmoid", "tanh"], "init": ["pytorch-default", "glorot"]"#,
        );
        Experiment::from_json(&text, Path::new("exp.json")).unwrap()
    }

    #[test]
    fn a_list_sweeps_every_combination_and_names_its_values() {
        let exp = swept_file();
        let runs = plan(&exp);
        // 2 variants × 2 activations × 2 inits × 2 depths × 1 seed.
        assert_eq!(runs.len(), 16);
        let names: Vec<String> = runs.iter().map(RunSpec::name).collect();
        assert_eq!(
            names[..4],
            [
                "plain-sigmoid-pytorch-default-d4-s0",
                "plain-sigmoid-glorot-d4-s0",
                "plain-tanh-pytorch-default-d4-s0",
                "plain-tanh-glorot-d4-s0",
            ]
        );
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "run names must not collide");
        assert_eq!(
            exp.swept(),
            [
                (
                    "activation",
                    vec!["sigmoid".to_string(), "tanh".to_string()]
                ),
                (
                    "init",
                    vec!["pytorch-default".to_string(), "glorot".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn a_resolved_experiment_holds_the_runs_own_values() {
        let exp = swept_file();
        let run = plan(&exp)[3].clone();
        let ModelSpec::Mlp(m) = &exp.resolved(&run.setting).model else {
            panic!("mlp expected");
        };
        assert_eq!(m.activation.values(), [Activation::Tanh]);
        assert_eq!(m.init.values(), [Init::Glorot]);
        assert_eq!(
            run.setting.columns(),
            [
                ("activation", "tanh".to_string()),
                ("init", "glorot".to_string())
            ]
        );
    }

    /// A field whose default is left out of the serialized form
    /// (`gate_bias` −1, the Inception `residual_scale` 1) swept from its
    /// default: every run must get its own value. The resolver once found
    /// no slot for it and trained every run at the first value.
    #[test]
    fn a_sweep_that_starts_at_a_default_reaches_every_run() {
        let text = GOOD.replace(
            r#""activation": "sigmoid""#,
            r#""activation": "sigmoid", "gate_bias": [-1, -2.5]"#,
        );
        let exp = Experiment::from_json(&text, Path::new("exp.json")).unwrap();
        let biases: Vec<f64> = plan(&exp)
            .iter()
            .map(|r| match exp.resolved(&r.setting).model {
                ModelSpec::Mlp(m) => m.gate_bias,
                _ => panic!("mlp expected"),
            })
            .collect();
        assert!(
            biases.contains(&-1.0) && biases.contains(&-2.5),
            "{biases:?}"
        );
        let inception = r#"{"name": "x", "dataset": {"kind": "synthetic-images", "samples": 64, "test_samples": 16, "classes": 3, "shape": [1, 8, 8]},
            "model": {"family": "inception", "width": 4, "residual_scale": [1, 0.2]},
            "variants": ["residual"], "depths": [2], "seeds": [0],
            "train": {"lr": 0.1, "batch_size": 16, "steps": 1, "eval_every": 1}}"#;
        let exp = Experiment::from_json(inception, Path::new("exp.json")).unwrap();
        let scales: Vec<f64> = plan(&exp)
            .iter()
            .map(|r| match exp.resolved(&r.setting).model {
                ModelSpec::Inception(m) => m.residual_scale,
                _ => panic!("inception expected"),
            })
            .collect();
        assert_eq!(scales, [1.0, 0.2]);
        // And the experiment written back (run.json's `config`) keeps the
        // list, so that its plan, read again, names the same runs.
        let again: Experiment =
            serde_json::from_value(serde_json::to_value(&exp).unwrap()).unwrap();
        let names = |e: &Experiment| plan(e).iter().map(RunSpec::name).collect::<Vec<_>>();
        assert_eq!(names(&again), names(&exp));
        assert_eq!(names(&exp)[1], "residual-residual_scale0.2-d2-s0");
    }

    #[test]
    fn an_unswept_file_keeps_its_run_names() {
        let exp = Experiment::from_json(GOOD, Path::new("exp.json")).unwrap();
        let names: Vec<String> = plan(&exp).iter().map(RunSpec::name).collect();
        assert_eq!(
            names,
            [
                "plain-d4-s0",
                "residual-d4-s0",
                "plain-d8-s0",
                "residual-d8-s0"
            ]
        );
        assert!(exp.swept().is_empty());
    }

    /// Issue 31: any numeric field is a sweep axis, with its own run-name
    /// part, `swept` key and resolved value.
    #[test]
    fn a_numeric_list_sweeps_and_resolves() {
        let text = GOOD
            .replace(r#""lr": 0.1"#, r#""lr": [0.01, 0.1]"#)
            .replace(r#""width": 16"#, r#""width": [8, 16]"#);
        let exp = Experiment::from_json(&text, Path::new("exp.json")).unwrap();
        assert_eq!(exp.train.lr, 0.01, "the typed field holds the first value");
        let runs = plan(&exp);
        assert_eq!(runs.len(), 2 * 2 * 2 * 2);
        assert_eq!(runs[0].name(), "plain-width8-lr0.01-d4-s0");
        assert_eq!(runs[1].name(), "plain-width8-lr0.1-d4-s0");
        assert_eq!(runs[2].name(), "plain-width16-lr0.01-d4-s0");
        let names: std::collections::BTreeSet<String> = runs.iter().map(RunSpec::name).collect();
        assert_eq!(names.len(), runs.len(), "run names must not collide");
        let r = exp.resolved(&runs[2].setting);
        let ModelSpec::Mlp(m) = &r.model else {
            panic!("mlp expected")
        };
        assert_eq!((m.width, r.train.lr), (16, 0.01));
        assert!(r.numbers.is_empty());
        assert_eq!(
            runs[1].setting.columns(),
            [
                ("model.width", "8".to_string()),
                ("train.lr", "0.1".to_string())
            ]
        );
        assert_eq!(
            exp.swept(),
            [
                ("model.width", vec!["8".to_string(), "16".to_string()]),
                ("train.lr", vec!["0.01".to_string(), "0.1".to_string()]),
            ]
        );
        // run.json's config writes the lists back, and reads back the same.
        let saved = serde_json::to_string(&exp).unwrap();
        assert!(saved.contains(r#""lr":[0.01,0.1]"#), "{saved}");
        let back: Experiment = serde_json::from_str(&saved).unwrap();
        assert_eq!(back, exp);
    }

    /// A list where a field takes one value names the fields that can be
    /// lists; a swept value that fails a check names its field and run.
    #[test]
    fn lists_that_cannot_sweep_say_which_can() {
        let parse = |t: &str| Experiment::from_json(t, Path::new("exp.json")).unwrap_err();
        let err = parse(&GOOD.replace(
            r#""steps": 20"#,
            r#""steps": 20, "checkpoint_every": [5, 10]"#,
        ));
        assert_eq!(err.field(), "train.checkpoint_every", "{err}");
        assert!(
            err.to_string().contains("cannot be a list") && err.to_string().contains("train.lr"),
            "{err}"
        );
        let err = parse(&GOOD.replace(r#""lr": 0.1"#, r#""lr": [0.1, -1]"#));
        assert_eq!(err.field(), "train.lr", "{err}");
        assert!(err.to_string().contains("-1"), "{err}");
        let err = parse(&GOOD.replace(r#""lr": 0.1"#, r#""lr": [0.1, 0.1]"#));
        assert!(err.to_string().contains("twice"), "{err}");
        let err = parse(&GOOD.replace(r#""batch_size": 32"#, r#""batch_size": [32, 16.5]"#));
        assert_eq!(err.field(), "train.batch_size", "{err}");
    }
}
