//! Generated sequence tasks for the recurrent family (issue 34), from the
//! project's own seeded generator ([`crate::rng::SplitMix64`]), so a seed
//! alone fixes the data.
//!
//! The adding problem (Hochreiter & Schmidhuber 1997, experiment 4; the
//! form of Le et al. 2015): each example is `[length, 2]`, channel 0 values
//! uniform in [0, 1), channel 1 a marker with exactly two 1s, the first in
//! the first half of the sequence and the second in the second half. The
//! target is the sum of the two marked values, a float in `y` (regression:
//! the dataset's `classes` is 1, the head's one output).

use crate::rng::SplitMix64;
use crate::{DataError, Dataset};
use tch::{Kind, Tensor};

/// The variance of the adding problem's target, the sum of two independent
/// U[0, 1) values: 2 · 1/12 = 1/6. Predicting the mean (1) scores an MSE of
/// this, so the regression error MSE / [`ADDING_TARGET_VARIANCE`] is 1 for a
/// net that ignores its input.
pub const ADDING_TARGET_VARIANCE: f64 = 1.0 / 6.0;

/// What the adding problem is generated from.
#[derive(Debug, Clone, PartialEq)]
pub struct AddingSpec {
    pub samples: usize,
    pub test_samples: usize,
    /// Time steps per example (2 or more: one marker in each half).
    pub length: usize,
    pub seed: u64,
}

/// The adding problem's examples: the first `samples` train, the next
/// `test_samples` are held out.
pub fn adding(spec: &AddingSpec) -> Result<Dataset, DataError> {
    let invalid = |field, message: &str| DataError::Invalid {
        field,
        message: message.to_string(),
    };
    crate::generated_sizes(spec.samples, spec.test_samples)?;
    if spec.length < 2 {
        return Err(invalid(
            "length",
            "must be at least 2 (one marker in each half of the sequence)",
        ));
    }
    let (n, t) = (spec.samples + spec.test_samples, spec.length);
    let mut rng = SplitMix64::new(spec.seed);
    let mut x = vec![0f32; n * t * 2];
    let mut y = vec![0f32; n];
    let half = t / 2;
    for (i, target) in y.iter_mut().enumerate() {
        let example = &mut x[i * t * 2..(i + 1) * t * 2];
        for step in 0..t {
            example[step * 2] = rng.uniform() as f32;
        }
        // First marker in [0, half), second in [half, t).
        let first = rng.below(half);
        let second = half + rng.below(t - half);
        for m in [first, second] {
            example[m * 2 + 1] = 1.0;
            *target += example[m * 2];
        }
    }
    let x = Tensor::from_slice(&x).reshape([n as i64, t as i64, 2]);
    let y = Tensor::from_slice(&y).to_kind(Kind::Float);
    Ok(Dataset::from_rows(
        "adding",
        x,
        y,
        spec.samples,
        vec![t as i64, 2],
        1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> AddingSpec {
        AddingSpec {
            samples: 4000,
            test_samples: 1000,
            length: 12,
            seed,
        }
    }

    /// The generator is ours (SplitMix64): the same seed gives the same
    /// bytes, another seed other data.
    #[test]
    fn adding_is_deterministic_per_seed() {
        let (a, b, c) = (
            adding(&spec(3)).unwrap(),
            adding(&spec(3)).unwrap(),
            adding(&spec(4)).unwrap(),
        );
        assert!(a.train.x.equal(&b.train.x) && a.test.y.equal(&b.test.y));
        assert!(!a.train.x.equal(&c.train.x));
        assert_eq!(a.input_shape, [12, 2]);
        assert_eq!(a.train.x.size(), [4000, 12, 2]);
    }

    /// Hochreiter & Schmidhuber 1997 / Le et al. 2015: two markers, one in
    /// each half; the target is their values' sum, whose variance is 1/6
    /// (two independent U[0, 1)).
    #[test]
    fn adding_marks_one_value_per_half_and_its_target_varies_by_a_sixth() {
        let d = adding(&spec(1)).unwrap();
        let x = Vec::<f32>::try_from(d.train.x.flatten(0, -1)).unwrap();
        let y = Vec::<f32>::try_from(&d.train.y).unwrap();
        for (i, &target) in y.iter().enumerate() {
            let ex = &x[i * 24..(i + 1) * 24];
            let marks: Vec<usize> = (0..12).filter(|&s| ex[s * 2 + 1] == 1.0).collect();
            assert_eq!(marks.len(), 2, "example {i}");
            assert!(marks[0] < 6 && marks[1] >= 6, "{marks:?}");
            let sum = ex[marks[0] * 2] + ex[marks[1] * 2];
            assert!((sum - target).abs() < 1e-6);
            assert!(ex.iter().step_by(2).all(|v| (0.0..1.0).contains(v)));
        }
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / y.len() as f64;
        // 4000 draws: the sample variance's std is about 0.004.
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        assert!((var - ADDING_TARGET_VARIANCE).abs() < 0.015, "{var}");
    }

    #[test]
    fn adding_refuses_a_length_below_2() {
        let e = adding(&AddingSpec {
            length: 1,
            ..spec(0)
        })
        .unwrap_err();
        assert!(e.to_string().contains("dataset.length"), "{e}");
    }
}
