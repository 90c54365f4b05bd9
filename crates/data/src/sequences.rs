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
//!
//! The copy (memory) task (Hochreiter & Schmidhuber 1997, experiment 2;
//! the form of Arjovsky, Shah & Bengio 2016, §4.1): each example is
//! `[length, symbols + 2]`, one-hot per step over the `symbols` symbols, a
//! blank and a delimiter. The first `recall` steps hold random symbols,
//! then blanks, then the delimiter at step `length − recall − 1`, then
//! `recall` blanks; the target `y` (`[n, recall]`, int64) is the first
//! `recall` symbols, to be output at the last `recall` steps. Unlike
//! Arjovsky et al., who also score a blank output at every earlier step,
//! only the recalled symbols are scored, so the chance error is exactly
//! 1 − 1/symbols and the chance loss ln(symbols) (the entropy of a
//! uniform symbol), whatever the length.
//!
//! An image set read as a sequence ([`Sequence`], the sequential MNIST of
//! Le et al. 2015): row by row, or pixel by pixel, optionally with the
//! time steps in a fixed random order (their permuted MNIST).

use crate::rng::SplitMix64;
use crate::{DataError, Dataset, DatasetInfo, Split};
use serde::{Deserialize, Serialize};
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

/// The copy task's defaults: Arjovsky et al. 2016's 8 symbols and 10
/// recalled steps.
pub const COPY_SYMBOLS: usize = 8;
pub const COPY_RECALL: usize = 10;

/// What the copy task is generated from.
#[derive(Debug, Clone, PartialEq)]
pub struct CopySpec {
    pub samples: usize,
    pub test_samples: usize,
    /// Time steps per example, at least `2 · recall + 1`: the symbols, the
    /// delimiter and the steps that answer ([`copy_min_length`]).
    pub length: usize,
    /// The alphabet's size K (2 or more); inputs have K + 2 channels.
    pub symbols: usize,
    /// Symbols to remember and recall (1 or more).
    pub recall: usize,
    pub seed: u64,
}

/// The shortest copy sequence: `recall` symbols, the delimiter, `recall`
/// answering steps, no blank between (saturating, so that no recall
/// overflows it).
pub fn copy_min_length(recall: usize) -> usize {
    recall.saturating_mul(2).saturating_add(1)
}

/// The copy task's examples: the first `samples` train, the next
/// `test_samples` are held out. `classes` is the number of symbols.
pub fn copy(spec: &CopySpec) -> Result<Dataset, DataError> {
    let invalid = |field, message: String| DataError::Invalid { field, message };
    crate::generated_sizes(spec.samples, spec.test_samples)?;
    if spec.symbols < 2 {
        return Err(invalid("symbols", format!("{} is below 2", spec.symbols)));
    }
    if spec.recall == 0 {
        return Err(invalid("recall", "0 is below 1".into()));
    }
    if spec.length < copy_min_length(spec.recall) {
        return Err(invalid(
            "length",
            format!(
                "{} is shorter than 2 · recall + 1 = {}",
                spec.length,
                copy_min_length(spec.recall)
            ),
        ));
    }
    let (n, t, k, c) = (
        spec.samples + spec.test_samples,
        spec.length,
        spec.recall,
        spec.symbols + 2,
    );
    let (blank, delimiter) = (spec.symbols, spec.symbols + 1);
    let mut rng = SplitMix64::new(spec.seed);
    let mut x = vec![0f32; n * t * c];
    let mut y = vec![0i64; n * k];
    for (i, targets) in y.chunks_mut(k).enumerate() {
        let example = &mut x[i * t * c..(i + 1) * t * c];
        for (step, target) in targets.iter_mut().enumerate() {
            let symbol = rng.below(spec.symbols);
            *target = symbol as i64;
            example[step * c + symbol] = 1.0;
        }
        for step in k..t {
            let channel = if step == t - k - 1 { delimiter } else { blank };
            example[step * c + channel] = 1.0;
        }
    }
    let x = Tensor::from_slice(&x).reshape([n as i64, t as i64, c as i64]);
    let y = Tensor::from_slice(&y).reshape([n as i64, k as i64]);
    Ok(Dataset::from_rows(
        "copy",
        x,
        y,
        spec.samples,
        vec![t as i64, c as i64],
        spec.symbols as i64,
    ))
}

/// How an image set is read as a sequence (`dataset.sequence`), for the
/// rnn family. Images are `[c, h, w]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sequence {
    /// One row per step: h steps of c · w features (MNIST: 28 steps of 28).
    Rows,
    /// One pixel per step, row-major: h · w steps of c features (MNIST at
    /// `downsample` 2: 196 steps of 1).
    Pixels,
}

impl Sequence {
    pub fn as_str(self) -> &'static str {
        match self {
            Sequence::Rows => "rows",
            Sequence::Pixels => "pixels",
        }
    }

    /// The `[length, features]` of an image of `shape` (`[c, h, w]`).
    pub fn shape(self, shape: &[i64]) -> Result<Vec<i64>, DataError> {
        let [c, h, w] = shape else {
            return Err(DataError::Invalid {
                field: "sequence",
                message: format!("reads [channels, height, width] images, not {shape:?}"),
            });
        };
        Ok(match self {
            Sequence::Rows => vec![*h, c * w],
            Sequence::Pixels => vec![h * w, *c],
        })
    }

    /// `[n, c, h, w]` images as `[n, length, features]` sequences.
    fn apply(self, x: &Tensor) -> Tensor {
        let (n, c, h, w) = x.size4().expect("images are [n, c, h, w]");
        match self {
            Sequence::Rows => x.permute([0, 2, 1, 3]).reshape([n, h, c * w]),
            Sequence::Pixels => x.permute([0, 2, 3, 1]).reshape([n, h * w, c]),
        }
    }
}

impl Dataset {
    /// Each image read as a sequence ([`Sequence`]); with `permute_seed`,
    /// its time steps in one fixed random order (SplitMix64's permutation
    /// from that seed), the same for every example and both splits.
    /// Applied last, after normalization, which reads the images'
    /// channels.
    pub fn as_sequence(
        self,
        sequence: Sequence,
        permute_seed: Option<u64>,
    ) -> Result<Dataset, DataError> {
        let shape = sequence.shape(&self.input_shape)?;
        let order = permute_seed.map(|seed| {
            let p = SplitMix64::new(seed).permutation(shape[0] as usize);
            Tensor::from_slice(&p).to_device(self.train.x.device())
        });
        let read = |s: Split| {
            let x = sequence.apply(&s.x);
            Split {
                x: match &order {
                    Some(p) => x.index_select(1, p),
                    None => x,
                },
                y: s.y,
            }
        };
        Ok(Dataset {
            train: read(self.train),
            test: read(self.test),
            input_shape: shape,
            ..self
        })
    }
}

impl DatasetInfo {
    /// The shape after [`Dataset::as_sequence`] (a permutation keeps it).
    pub fn as_sequence(self, sequence: Sequence) -> Result<DatasetInfo, DataError> {
        Ok(DatasetInfo {
            input_shape: sequence.shape(&self.input_shape)?,
            ..self
        })
    }
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

    fn copy_spec(seed: u64) -> CopySpec {
        CopySpec {
            samples: 2000,
            test_samples: 500,
            length: 15,
            symbols: 4,
            recall: 3,
            seed,
        }
    }

    /// Arjovsky et al. 2016's layout at length 15, recall 3: symbols at
    /// steps 0–2, blanks, the delimiter at step 11, blanks at 12–14; one
    /// channel on per step; the targets are the first three symbols.
    #[test]
    fn copy_lays_out_symbols_blanks_a_delimiter_and_answers() {
        let d = copy(&copy_spec(5)).unwrap();
        assert_eq!(d.input_shape, [15, 6]);
        assert_eq!((d.classes, d.train.y.size()), (4, vec![2000, 3]));
        assert_eq!(d.train.y.kind(), Kind::Int64);
        let x = Vec::<f32>::try_from(d.train.x.flatten(0, -1)).unwrap();
        let y = Vec::<i64>::try_from(d.train.y.flatten(0, -1)).unwrap();
        let mut counts = [0usize; 4];
        for i in 0..2000 {
            let on: Vec<usize> = (0..15)
                .map(|t| {
                    let step = &x[(i * 15 + t) * 6..(i * 15 + t + 1) * 6];
                    assert_eq!(step.iter().sum::<f32>(), 1.0, "example {i} step {t}");
                    step.iter().position(|&v| v == 1.0).unwrap()
                })
                .collect();
            let want: Vec<usize> = y[i * 3..i * 3 + 3].iter().map(|&s| s as usize).collect();
            assert_eq!(on[..3], want[..], "example {i}");
            assert!(on[3..11].iter().all(|&c| c == 4), "{on:?}");
            assert_eq!(on[11], 5, "the delimiter");
            assert!(on[12..].iter().all(|&c| c == 4), "{on:?}");
            want.iter().for_each(|&s| counts[s] += 1);
        }
        // 6000 uniform draws over 4 symbols: each near 1500 (std ≈ 34).
        assert!(
            counts.iter().all(|&n| (1350..1650).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn copy_is_deterministic_per_seed_and_refuses_a_short_length() {
        let (a, b, c) = (
            copy(&copy_spec(3)).unwrap(),
            copy(&copy_spec(3)).unwrap(),
            copy(&copy_spec(4)).unwrap(),
        );
        assert!(a.train.x.equal(&b.train.x) && a.test.y.equal(&b.test.y));
        assert!(!a.train.y.equal(&c.train.y));
        // 2 · 3 + 1 = 7 is the shortest; no blank between is fine.
        assert!(copy(&CopySpec {
            length: 7,
            ..copy_spec(0)
        })
        .is_ok());
        let e = copy(&CopySpec {
            length: 6,
            ..copy_spec(0)
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("dataset.length: 6"), "{e}");
        assert_eq!(copy_min_length(usize::MAX), usize::MAX);
    }

    /// Rows: step t is image row t (channels side by side); pixels: step
    /// t is pixel t in row-major order; a permutation reorders the steps
    /// alike in both splits and keeps each step's values.
    #[test]
    fn images_read_as_rows_or_pixels_and_permute_their_steps() {
        // Two examples of [2, 3, 4], each value its own flat index.
        let x = Tensor::arange(2 * 24, (Kind::Float, tch::Device::Cpu)).reshape([2, 2, 3, 4]);
        let y = Tensor::from_slice(&[0i64, 1]);
        let data = || Dataset::from_rows("t", x.copy(), y.copy(), 1, vec![2, 3, 4], 2);
        let rows = data().as_sequence(Sequence::Rows, None).unwrap();
        assert_eq!(rows.input_shape, [3, 8]);
        // Row 1 of example 0: channel 0's x[0,0,1,:] then channel 1's.
        let row1 = Vec::<f32>::try_from(rows.train.x.get(0).get(1)).unwrap();
        assert_eq!(row1, [4., 5., 6., 7., 16., 17., 18., 19.]);
        let pixels = data().as_sequence(Sequence::Pixels, None).unwrap();
        assert_eq!(pixels.input_shape, [12, 2]);
        assert_eq!(pixels.test.x.size(), [1, 12, 2]);
        let p5 = Vec::<f32>::try_from(pixels.test.x.get(0).get(5)).unwrap();
        assert_eq!(p5, [24. + 5., 24. + 17.], "pixel (1, 1) of example 1");
        let permuted = data().as_sequence(Sequence::Pixels, Some(7)).unwrap();
        let order = SplitMix64::new(7).permutation(12);
        assert_ne!(order, (0..12).collect::<Vec<i64>>());
        for (t, &from) in order.iter().enumerate() {
            for (a, b) in [
                (&permuted.train, &pixels.train),
                (&permuted.test, &pixels.test),
            ] {
                assert!(
                    a.x.select(1, t as i64).equal(&b.x.select(1, from)),
                    "step {t}"
                );
            }
        }
        let info = DatasetInfo {
            name: "t".into(),
            train: 1,
            test: 1,
            input_shape: vec![1, 28, 28],
            classes: 10,
        };
        assert_eq!(
            info.clone()
                .as_sequence(Sequence::Rows)
                .unwrap()
                .input_shape,
            [28, 28]
        );
        assert_eq!(
            info.as_sequence(Sequence::Pixels).unwrap().input_shape,
            [784, 1]
        );
        let flat = Dataset::from_rows("t", x.reshape([2, 24]), y, 1, vec![24], 2);
        let e = flat.as_sequence(Sequence::Rows, None).unwrap_err();
        assert!(e.to_string().starts_with("dataset.sequence: "), "{e}");
    }

    /// The file kinds read as sequences through their dataset section:
    /// normalized images, then rows or (downsampled) pixels, permuted; the
    /// measured shape (`gradscope check`) is the loaded one.
    #[test]
    fn file_data_load_as_sequences_and_measure_alike() {
        let dir = tempfile::tempdir().unwrap();
        crate::test_files::write_idx_set(dir.path(), 12, 4, 6, 4);
        let spec = |extra: &str| -> crate::spec::DatasetSpec {
            let d = dir.path().display();
            serde_json::from_str(&format!(r#"{{"kind": "mnist", "dir": "{d}"{extra}}}"#)).unwrap()
        };
        for (extra, shape) in [
            (r#", "sequence": "rows""#, [6, 4]),
            (r#", "sequence": "pixels""#, [24, 1]),
            (r#", "sequence": "pixels", "downsample": 2"#, [6, 1]),
            (r#", "sequence": "rows", "permute_seed": 1"#, [6, 4]),
        ] {
            let s = spec(extra);
            let data = s.load().unwrap();
            assert_eq!(data.input_shape, shape, "{extra}");
            assert_eq!(data.train.x.size(), [12, shape[0], shape[1]], "{extra}");
            assert_eq!(s.info().unwrap().input_shape, shape, "{extra}");
        }
        // Normalized before it is cut into steps: the training split's
        // pixels have mean 0 over the one channel.
        let rows = spec(r#", "sequence": "rows""#).load().unwrap();
        assert!(rows.train.x.mean(Kind::Double).double_value(&[]).abs() < 1e-5);
        let image = spec("").load().unwrap();
        assert!(rows.test.x.equal(&image.test.x.reshape([4, 6, 4])));
    }
}
