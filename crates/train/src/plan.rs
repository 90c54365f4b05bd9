//! The plan: one run per variant × depth × seed, and the run's name.

use crate::spec::Experiment;
use gradscope_models::Variant;

/// One training run of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpec {
    pub variant: Variant,
    pub depth: usize,
    pub seed: u64,
}

impl RunSpec {
    /// The run's folder name: `plain-d32-s0`.
    pub fn name(&self) -> String {
        format!("{}-d{}-s{}", self.variant.as_str(), self.depth, self.seed)
    }
}

/// Every run of an experiment, shallow depths first (so the cheap runs and a
/// first look at the charts come early), then variant, then seed.
pub fn plan(exp: &Experiment) -> Vec<RunSpec> {
    let mut runs = Vec::new();
    for &depth in &exp.depths {
        for &variant in &exp.variants {
            for &seed in &exp.seeds {
                runs.push(RunSpec {
                    variant,
                    depth,
                    seed,
                });
            }
        }
    }
    runs
}
