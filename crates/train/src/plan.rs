//! The plan: one run per variant × swept settings × depth × seed, and the
//! run's name.

use crate::spec::{Experiment, ModelSpec};
use gradscope_models::spec::{Axis, Label};
use gradscope_models::{Activation, Init, Norm, Variant};

/// The values of the swept settings (the model fields given as a list) for
/// one run; `None` where the experiment does not sweep that field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Setting {
    pub activation: Option<Activation>,
    pub init: Option<Init>,
    pub norm: Option<Norm>,
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
        out
    }
}

/// One training run of a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
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
/// outermost, norm innermost); one empty setting when nothing is swept.
pub fn settings(exp: &Experiment) -> Vec<Setting> {
    fn swept<T: Copy + PartialEq>(axis: &Axis<T>) -> Vec<Option<T>> {
        if axis.is_swept() {
            axis.values().iter().copied().map(Some).collect()
        } else {
            vec![None]
        }
    }
    let (activations, inits, norms) = match &exp.model {
        ModelSpec::Mlp(m) => (swept(&m.activation), swept(&m.init), swept(&m.norm)),
        ModelSpec::Cnn(m) => (vec![None], swept(&m.init), swept(&m.norm)),
        ModelSpec::Bottleneck(m) => (vec![None], swept(&m.init), swept(&m.norm)),
        ModelSpec::Inception(m) => (vec![None], swept(&m.init), swept(&m.norm)),
    };
    let mut out = Vec::new();
    for &activation in &activations {
        for &init in &inits {
            for &norm in &norms {
                out.push(Setting {
                    activation,
                    init,
                    norm,
                });
            }
        }
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
            for &setting in &settings {
                for &seed in &exp.seeds {
                    runs.push(RunSpec {
                        variant,
                        setting,
                        depth,
                        seed,
                    });
                }
            }
        }
    }
    runs
}

impl Experiment {
    /// The experiment as one run of it trains: each swept field set to the
    /// run's value, so every axis holds one value. Saved in no file; the
    /// network, the theory and the cost model read it.
    pub fn resolved(&self, setting: &Setting) -> Experiment {
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
        }
        out
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
        };
        all.into_iter().filter(|(_, v)| v.len() > 1).collect()
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
        let run = plan(&exp)[3];
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
}
