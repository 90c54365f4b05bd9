//! Property tests of the experiment parser ("fuzzing" without a nightly
//! toolchain): any text gives an [`Experiment`] or a typed [`SpecError`]
//! naming the file, never a panic; and what parses can be planned, budgeted
//! and saved without a panic either.
//!
//! Three sources of input: arbitrary text; the good file with random byte
//! edits (near-JSON, to reach the parser's corners); and the good file with
//! random fields replaced by edge values (valid JSON, to reach every check
//! of `validate`). `make test` runs a few dozen cases each; `make fuzz` sets
//! `GRADSCOPE_FUZZ_SECS` and each runs for that long.

use std::path::Path;

use gradscope_data::fuzz_harness::fuzz;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

use crate::plan::plan;
use crate::spec::Experiment;

use crate::spec::tests::GOOD;

/// The other dataset kinds and model family, so that edits reach their
/// checks too (a field unknown to the base's kind is refused before them).
const BASES: [&str; 5] = [
    GOOD,
    r#"{
  "name": "t",
  "dataset": { "kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [1, 8, 8], "noise": 0.5 },
  "model": { "family": "cnn", "width": 4, "shortcut": "b", "norm": "batchnorm", "init": "kaiming" },
  "variants": ["residual"], "depths": [8, 14], "seeds": [0, 1],
  "train": { "lr": 0.1, "batch_size": 16, "epochs": 2, "lr_milestones": [4, 8], "lr_gamma": 0.1,
             "warmup": { "lr": 0.01, "until_train_error": 0.8 }, "eval_every": 4, "log_every": 2 }
}"#,
    r#"{
  "name": "t",
  "dataset": { "kind": "cifar10", "dir": "/nonexistent", "subset_train": 10, "subset_test": 5,
               "validation": 2, "normalize": true, "augment": true },
  "model": { "family": "mlp", "width": 8, "activation": "relu", "init": {"normal": {"std": 0.1}} },
  "variants": ["plain"], "depths": [3], "seeds": [0],
  "train": { "lr": 0.1, "batch_size": 4, "steps": 5, "eval_every": 1 }
}"#,
    r#"{
  "name": "t", "task": "identity",
  "dataset": { "kind": "synthetic-images", "samples": 32, "classes": 2, "shape": [3, 64, 64] },
  "model": { "family": "bottleneck", "width": 8, "norm": "batchnorm", "init": "kaiming" },
  "variants": ["plain", "residual"], "depths": [50], "seeds": [0],
  "train": { "lr": 0.01, "batch_size": 4, "steps": 3, "eval_every": 1 }
}"#,
    r#"{
  "name": "t",
  "dataset": { "kind": "fashion-mnist", "subset_train": 64, "subset_test": 16 },
  "model": { "family": "inception", "width": 16, "module": "naive", "norm": "none", "init": "glorot" },
  "variants": ["residual"], "depths": [2, 8], "seeds": [0],
  "train": { "lr": 0.05, "batch_size": 8, "epochs": 1, "eval_every": 5 }
}"#,
];

/// Parses `text`; on success uses the result the way a sweep does.
fn check(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("fuzz.json");
    match Experiment::from_json(text, path) {
        Ok(exp) => {
            let runs = plan(&exp);
            prop_assert!(!runs.is_empty());
            for r in &runs {
                let _ = r.name();
            }
            for n in [1, 7, 60_000, usize::MAX] {
                let steps = exp.train.total_steps(n);
                let _ = exp.train.scheduled_lr(steps);
            }
            let saved = serde_json::to_string(&exp).unwrap();
            let again = Experiment::from_json(&saved, path);
            prop_assert!(again.is_ok(), "saved config does not parse: {again:?}");
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert!(text.starts_with("fuzz.json: "), "{text}");
        }
    }
    Ok(())
}

#[test]
fn fuzz_experiment_parser_on_any_text() {
    fuzz("experiment parser, any text", any::<String>(), |s| {
        check(&s)
    });
}

/// One edit of the good file's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
        (any::<usize>(), 0usize..20).prop_map(|(a, n)| Edit::Delete(a, n)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..6),
                prop::sample::select(vec![
                    b"{".to_vec(),
                    b"}".to_vec(),
                    b"[".to_vec(),
                    b",".to_vec(),
                    b"\"".to_vec(),
                    b"-".to_vec(),
                    b"e999".to_vec(),
                    b"1e-999".to_vec(),
                    b"99999999999999999999999".to_vec(),
                    b"null".to_vec(),
                    b"\\u0000".to_vec(),
                ]),
            ]
        )
            .prop_map(|(a, v)| Edit::Insert(a, v)),
        (any::<usize>(), 1usize..30).prop_map(|(a, n)| Edit::Repeat(a, n)),
    ]
}

#[test]
fn fuzz_experiment_parser_on_edited_files() {
    fuzz(
        "experiment parser, edited files",
        (
            prop::sample::select(BASES.to_vec()),
            proptest::collection::vec(edit(), 1..5),
        ),
        |(base, edits)| {
            let mut b = base.as_bytes().to_vec();
            for e in edits {
                let len = b.len().max(1);
                match e {
                    Edit::Flip(at, x) if !b.is_empty() => b[at % len] ^= x,
                    Edit::Delete(at, n) if !b.is_empty() => {
                        let at = at % len;
                        b.drain(at..(at + n).min(b.len()));
                    }
                    Edit::Insert(at, v) => {
                        let at = at % (b.len() + 1);
                        b.splice(at..at, v);
                    }
                    Edit::Repeat(at, n) if !b.is_empty() => {
                        let at = at % len;
                        let piece = b[at..(at + n).min(b.len())].to_vec();
                        b.splice(at..at, piece);
                    }
                    _ => {}
                }
            }
            check(&String::from_utf8_lossy(&b))
        },
    );
}

/// Edge values for any field: numbers at the limits of each type, every
/// enum name the file format knows, arrays, objects, null.
fn value() -> impl Strategy<Value = Value> {
    let words = vec![
        "mlp",
        "cnn",
        "synthetic",
        "synthetic-images",
        "mnist",
        "cifar10",
        "fashion-mnist",
        "plain",
        "residual",
        "relu",
        "sigmoid",
        "tanh",
        "kaiming",
        "glorot",
        "pytorch-default",
        "a",
        "b",
        "batchnorm",
        "none",
        "sgd",
        "",
        "/nonexistent",
    ];
    let number = prop_oneof![
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!(8),
            json!(14),
            json!(-1),
            json!(u32::MAX),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1u64 << 32),
            json!(1u64 << 63),
            json!(0.5),
            json!(-0.0),
            json!(1e-300),
            json!(1e300),
            json!(f64::MAX),
        ]),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
    ];
    let leaf = prop_oneof![
        4 => number.clone(),
        3 => prop::sample::select(words).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
    ];
    let nested = leaf.clone().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            inner
                .clone()
                .prop_map(|v| json!({ "normal": { "std": v } })),
            (inner.clone(), inner).prop_map(|(a, b)| json!({ "lr": a, "until_train_error": b })),
        ]
    });
    // Lists of numbers get their own arm: shapes, depths, seeds and
    // milestones are such lists, and their limits interact.
    prop_oneof![
        3 => leaf,
        2 => proptest::collection::vec(number, 0..5).prop_map(Value::from),
        2 => nested,
    ]
}

/// Every field the format knows, as a path from the top.
const FIELDS: &[&[&str]] = &[
    &["name"],
    &["task"],
    &["dataset", "kind"],
    &["dataset", "samples"],
    &["dataset", "test_samples"],
    &["dataset", "classes"],
    &["dataset", "features"],
    &["dataset", "teacher_width"],
    &["dataset", "seed"],
    &["dataset", "shape"],
    &["dataset", "noise"],
    &["dataset", "dir"],
    &["dataset", "subset_train"],
    &["dataset", "subset_test"],
    &["dataset", "augment"],
    &["dataset", "validation"],
    &["dataset", "normalize"],
    &["model", "family"],
    &["model", "width"],
    &["model", "activation"],
    &["model", "init"],
    &["model", "norm"],
    &["model", "shortcut"],
    &["model", "channels_last"],
    &["model", "module"],
    &["variants"],
    &["depths"],
    &["seeds"],
    &["train", "lr"],
    &["train", "momentum"],
    &["train", "weight_decay"],
    &["train", "batch_size"],
    &["train", "steps"],
    &["train", "epochs"],
    &["train", "lr_milestones"],
    &["train", "lr_gamma"],
    &["train", "warmup"],
    &["train", "eval_every"],
    &["train", "log_every"],
    &["probe", "every"],
];

#[test]
fn fuzz_experiment_parser_on_field_values() {
    let edits = proptest::collection::vec(
        (
            prop::sample::select(FIELDS),
            prop_oneof![
                4 => value().prop_map(Some),
                1 => Just(None),
            ],
        ),
        1..4,
    );
    let strategy = (prop::sample::select(BASES.to_vec()), edits);
    fuzz(
        "experiment parser, field values",
        strategy,
        |(base, edits)| {
            let mut v: Value = serde_json::from_str(base).unwrap();
            for (path, new) in edits {
                let (last, parents) = path.split_last().unwrap();
                let mut at = &mut v;
                for p in parents {
                    if !at[*p].is_object() {
                        at[*p] = json!({});
                    }
                    at = &mut at[*p];
                }
                match new {
                    Some(x) => at[*last] = x,
                    None => {
                        at.as_object_mut().unwrap().remove(*last);
                    }
                }
            }
            check(&v.to_string())
        },
    );
}
