//! The checks serde cannot make on an experiment file's values (a count
//! of at least 1, a finite positive rate), and [`DatasetSpec::validate`],
//! the dataset section's own. Each failure is an [`Invalid`]: the field's
//! path in the experiment file and why its value is refused. The model
//! section's checks (gradscope-models) and the training section's
//! (gradscope-train) return the same type, so the experiment parser names
//! every refused value the same way.

use crate::sequences::copy_min_length;
use crate::spec::{AddingData, CopyData, DatasetSpec, FileData, SyntheticData, SyntheticImages};
use crate::tokens::{TokenSpec, TokenTask};
use crate::DataError;

/// A value the file's types allow but its checks refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field's path in the experiment file (`dataset.samples`).
    pub field: String,
    /// Why the value is refused, starting with the value itself.
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `Err(Invalid)`, for checks that fail with `return refuse(…)`.
    pub fn refuse<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, Self> {
        Err(Invalid::new(field, message))
    }
}

// The experiment parser carries (field, message) pairs through its
// sweep-resolution code, which predates this type.
impl From<Invalid> for (String, String) {
    fn from(e: Invalid) -> Self {
        (e.field, e.message)
    }
}

/// `value` is at least `min`.
pub fn at_least(field: &str, value: usize, min: usize) -> Result<(), Invalid> {
    if value < min {
        return Invalid::refuse(field, format!("{value} is below the minimum {min}"));
    }
    Ok(())
}

/// `value` is a finite number above 0.
pub fn positive_finite(field: &str, value: f64) -> Result<(), Invalid> {
    if !(value.is_finite() && value > 0.0) {
        return Invalid::refuse(field, format!("{value} must be a finite number above 0"));
    }
    Ok(())
}

/// The first item listed a second time.
pub fn first_duplicate<T: PartialEq + Copy>(items: &[T]) -> Option<T> {
    items
        .iter()
        .enumerate()
        .find(|(i, x)| items[..*i].contains(x))
        .map(|(_, x)| *x)
}

/// Generated data past this many values would take gigabytes to build.
const MAX_GENERATED_VALUES: usize = 200_000_000;

/// A generated set's sizes: an example to train on, and one held out where
/// the file gives the held-out size.
fn split_sizes(samples: usize, test_samples: Option<usize>) -> Result<(), Invalid> {
    at_least("dataset.samples", samples, 1)?;
    if let Some(t) = test_samples {
        at_least("dataset.test_samples", t, 1)?;
    }
    Ok(())
}

impl DatasetSpec {
    /// Checks the dataset section's values; returns the number of training
    /// examples where it is known before loading (generated data). File
    /// datasets are checked against the batch size once loaded.
    pub fn validate(&self) -> Result<Option<usize>, Invalid> {
        match self {
            DatasetSpec::Synthetic(SyntheticData {
                samples,
                test_samples,
                classes,
                features,
                teacher_width,
                ..
            }) => {
                split_sizes(*samples, *test_samples)?;
                at_least("dataset.classes", *classes, 2)?;
                at_least("dataset.features", *features, 1)?;
                if let Some(w) = teacher_width {
                    at_least("dataset.teacher_width", *w, 1)?;
                }
                if samples.saturating_mul(*features) > MAX_GENERATED_VALUES {
                    return Invalid::refuse("dataset.samples", format!("{samples} × {features} features is over the 2e8-value limit of the synthetic set"));
                }
                Ok(Some(*samples))
            }
            DatasetSpec::SyntheticImages(SyntheticImages {
                samples,
                test_samples,
                classes,
                shape,
                noise,
                ..
            }) => {
                split_sizes(*samples, *test_samples)?;
                at_least("dataset.classes", *classes, 2)?;
                // Saturating, so that no shape can overflow the product
                // (found by the train crate's fuzzer: [2, 2^62, 2] wrapped to
                // 0 in usize, then [2^58, 2^64 - 1, 2] × 64 samples
                // overflowed even u128).
                let values = shape.iter().fold(*samples, |acc, &d| acc.saturating_mul(d));
                if shape.contains(&0) || values > MAX_GENERATED_VALUES {
                    return Invalid::refuse("dataset.shape", format!("{shape:?} must have no zero dimension and stay under 2e8 values in all"));
                }
                if !(noise.is_finite() && *noise >= 0.0) {
                    return Invalid::refuse(
                        "dataset.noise",
                        format!("{noise} must be a finite number ≥ 0"),
                    );
                }
                Ok(Some(*samples))
            }
            DatasetSpec::Adding(AddingData {
                samples,
                test_samples,
                length,
                ..
            }) => {
                split_sizes(*samples, *test_samples)?;
                if let Some(l) = length {
                    if *l < 2 {
                        return Invalid::refuse(
                            "dataset.length",
                            format!(
                                "{l} is below 2 (the adding problem puts one marker in each half)"
                            ),
                        );
                    }
                    if samples.saturating_mul(l.saturating_mul(2)) > MAX_GENERATED_VALUES {
                        return Invalid::refuse("dataset.samples", format!("{samples} × {l} steps is over the 2e8-value limit of generated data"));
                    }
                }
                Ok(Some(*samples))
            }
            DatasetSpec::Copy(c) => copy_ok(c),
            DatasetSpec::Sort(t) => tokens_ok(&t.spec(TokenTask::Sort)),
            DatasetSpec::Reverse(t) => tokens_ok(&t.spec(TokenTask::Reverse)),
            DatasetSpec::CopyOffset(c) => tokens_ok(&c.spec()),
            DatasetSpec::FashionMnist(f) | DatasetSpec::Mnist(f) | DatasetSpec::Cifar10(f) => {
                // Fashion-MNIST has a default folder (Debian's package).
                let needs_dir = !matches!(self, DatasetSpec::FashionMnist(_));
                if needs_dir && f.dir.is_none() {
                    return Invalid::refuse(
                        "dataset.dir",
                        "is required for this dataset kind: the folder that holds its files",
                    );
                }
                for (field, v) in [
                    ("dataset.subset_train", f.subset_train),
                    ("dataset.subset_test", f.subset_test),
                    ("dataset.validation", f.validation),
                ] {
                    if let Some(v) = v {
                        at_least(field, v, 1)?;
                    }
                }
                sequence_ok(f)?;
                Ok(None)
            }
        }
    }
}

/// The copy task: an alphabet of 2 or more, something to recall, and a
/// length (when given) that holds the symbols, the delimiter and the
/// answers.
fn copy_ok(c: &CopyData) -> Result<Option<usize>, Invalid> {
    split_sizes(c.samples, c.test_samples)?;
    at_least("dataset.symbols", c.symbols, 2)?;
    at_least("dataset.recall", c.recall, 1)?;
    // Past this, 2 · recall + 1 steps are over the depth limit anyway.
    if c.recall > 10_000 {
        return Invalid::refuse(
            "dataset.recall",
            format!("{} is above the limit 10000", c.recall),
        );
    }
    if let Some(l) = c.length {
        let min = copy_min_length(c.recall);
        if l < min {
            return Invalid::refuse(
                "dataset.length",
                format!("{l} is too short for the copy task: dataset.recall {} needs 2 · {} + 1 = {min} steps or more ({} symbols, the delimiter, {} answers)", c.recall, c.recall, c.recall, c.recall),
            );
        }
        let values = c
            .samples
            .saturating_mul(l)
            .saturating_mul(c.symbols.saturating_add(2));
        if values > MAX_GENERATED_VALUES {
            return Invalid::refuse(
                "dataset.samples",
                format!(
                    "{} × {l} steps × {} channels is over the 2e8-value limit of generated data",
                    c.samples,
                    c.symbols + 2
                ),
            );
        }
    }
    Ok(Some(c.samples))
}

/// A token task: the generator's own checks (gradscope-data::tokens),
/// and its one-hot inputs under the limit of generated data.
fn tokens_ok(t: &TokenSpec) -> Result<Option<usize>, Invalid> {
    // A defaulted held-out size is at least 1; a given 0 is refused here.
    split_sizes(t.samples, Some(t.test_samples))?;
    t.check().map_err(|e| match e {
        DataError::Invalid { field, message } => Invalid::new(format!("dataset.{field}"), message),
        other => Invalid::new("dataset", other.to_string()),
    })?;
    let values = t.samples.saturating_mul(t.length).saturating_mul(t.vocab);
    if values > MAX_GENERATED_VALUES {
        return Invalid::refuse(
            "dataset.samples",
            format!(
                "{} × {} tokens × {} symbols is over the 2e8-value limit of generated data",
                t.samples, t.length, t.vocab
            ),
        );
    }
    Ok(Some(t.samples))
}

/// An image set read as a sequence: `permute_seed` orders its steps, so
/// it needs `sequence`; the pad-crop-flip augmentation works on images,
/// not on the sequences made of them.
fn sequence_ok(f: &FileData) -> Result<(), Invalid> {
    match f.sequence {
        None if f.permute_seed.is_some() => Invalid::refuse(
            "dataset.permute_seed",
            "permutes the steps of a sequence: give dataset.sequence \"rows\" or \"pixels\" too",
        ),
        Some(s) if f.augment => Invalid::refuse(
            "dataset.augment",
            format!("true pads, crops and flips images, not the sequences dataset.sequence {:?} makes of them: leave it out", s.as_str()),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(json: &str) -> DatasetSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn generated_data_report_their_size_and_files_do_not() {
        let d = synthetic(r#"{"kind": "synthetic", "samples": 64, "classes": 3, "features": 4}"#);
        assert_eq!(d.validate(), Ok(Some(64)));
        let f = synthetic(r#"{"kind": "fashion-mnist"}"#);
        assert_eq!(f.validate(), Ok(None));
    }

    #[test]
    fn refusals_name_the_field() {
        let d = synthetic(r#"{"kind": "synthetic", "samples": 64, "classes": 1, "features": 4}"#);
        assert_eq!(d.validate().unwrap_err().field, "dataset.classes");
        let m = synthetic(r#"{"kind": "mnist"}"#);
        assert_eq!(m.validate().unwrap_err().field, "dataset.dir");
        let big = synthetic(
            r#"{"kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [3, 4611686018427387904, 2]}"#,
        );
        let e = big.validate().unwrap_err();
        assert_eq!(e.field, "dataset.shape", "{e:?}");
        // A length near usize::MAX is refused, not overflowed.
        let long =
            synthetic(r#"{"kind": "adding", "samples": 64, "length": 18446744073709551615}"#);
        let e = long.validate().unwrap_err();
        assert_eq!(e.field, "dataset.samples", "{e:?}");
    }

    /// Issue 34: the copy task's length holds 2 · recall + 1 steps; an
    /// image sequence is not augmented, and a permutation needs one.
    #[test]
    fn copy_and_image_sequence_refusals_name_the_field() {
        let refused = |json: &str| synthetic(json).validate().unwrap_err();
        let ok = synthetic(r#"{"kind": "copy", "samples": 64, "length": 21}"#);
        assert_eq!(ok.validate(), Ok(Some(64)));
        let e = refused(r#"{"kind": "copy", "samples": 64, "length": 20}"#);
        assert_eq!(e.field, "dataset.length", "{e:?}");
        assert!(e.message.starts_with("20 is too short"), "{e:?}");
        assert!(e.message.contains("2 · 10 + 1 = 21"), "{e:?}");
        let e = refused(r#"{"kind": "copy", "samples": 64, "symbols": 1}"#);
        assert_eq!(e.field, "dataset.symbols", "{e:?}");
        let e = refused(r#"{"kind": "copy", "samples": 64, "recall": 0}"#);
        assert_eq!(e.field, "dataset.recall", "{e:?}");
        let e = refused(r#"{"kind": "copy", "samples": 64, "recall": 18446744073709551615}"#);
        assert_eq!(e.field, "dataset.recall", "{e:?}");
        let e = refused(r#"{"kind": "mnist", "dir": "d", "permute_seed": 3}"#);
        assert_eq!(e.field, "dataset.permute_seed", "{e:?}");
        let e = refused(r#"{"kind": "fashion-mnist", "sequence": "rows", "augment": true}"#);
        assert_eq!(e.field, "dataset.augment", "{e:?}");
        assert!(e.message.contains(r#""rows""#), "{e:?}");
        let rows =
            synthetic(r#"{"kind": "fashion-mnist", "sequence": "pixels", "permute_seed": 3}"#);
        assert_eq!(rows.validate(), Ok(None));
        assert!(rows.is_sequence() && !rows.is_image());
        let e = serde_json::from_str::<DatasetSpec>(r#"{"kind": "mnist", "sequence": "columns"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("dataset.sequence: unknown variant `columns`"),
            "{e}"
        );
    }

    #[test]
    fn duplicates_are_found_in_order() {
        assert_eq!(first_duplicate(&[3, 1, 2, 1, 3]), Some(1));
        assert_eq!(first_duplicate(&[1, 2, 3]), None::<i32>);
    }
}
