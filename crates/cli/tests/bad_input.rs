//! The bad-input corpus (issue 6, item 1): experiment files, dataset files
//! and command lines that cannot work, each run through the real
//! `gradscope` binary. Every case must exit non-zero with a message that
//! names the file at fault (and the field or value where there is one),
//! print no `panicked at`, and leave no results directory behind, since no
//! run started.
//!
//! Each case is a row of [`cases`]: a name, the files it writes, the
//! command, and the strings its message must contain. Dataset files are
//! generated (by tests/common): small valid IDX and CIFAR-10 sets, then
//! one file broken.
//! Every case of `run` goes through `gradscope check` too, which must
//! refuse it with the same message (but for [`CHECK_LETS_THROUGH`]).

mod common;

use common::{idx, write_cifar, write_idx_set, BIN, CIFAR_FILES, IDX_FILES};
use std::path::Path;
use std::process::Command;

/// A valid experiment on generated data; cases edit it.
const GOOD: &str = r#"{
  "name": "bad",
  "dataset": { "kind": "synthetic", "samples": 64, "test_samples": 16, "classes": 4, "features": 8 },
  "model": { "family": "mlp", "width": 8, "activation": "sigmoid" },
  "variants": ["plain", "residual"],
  "depths": [3],
  "seeds": [0],
  "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 8, "steps": 2, "eval_every": 1 },
  "probe": { "every": 1 }
}"#;

const SYNTHETIC: &str =
    r#""kind": "synthetic", "samples": 64, "test_samples": 16, "classes": 4, "features": 8"#;

/// GOOD with the first `from` replaced by `to`.
fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "GOOD lacks {from}");
    GOOD.replacen(from, to, 1)
}

/// GOOD reading files of `kind` from `dir`, with `extra` dataset fields.
fn on_files(kind: &str, dir: &Path, extra: &str) -> String {
    good_with(
        SYNTHETIC,
        &format!(
            r#""kind": "{kind}", "dir": {:?}{extra}"#,
            dir.display().to_string()
        ),
    )
}

/// GOOD as a recurrent experiment (plain only, the rnn family) on the
/// `dataset` fields given, at `depths`.
fn rnn_on(dataset: &str, depths: &str) -> String {
    good_with(SYNTHETIC, dataset)
        .replace(
            r#""family": "mlp", "width": 8, "activation": "sigmoid""#,
            r#""family": "rnn", "width": 4, "cell": "gru""#,
        )
        .replace(r#"["plain", "residual"]"#, r#"["plain"]"#)
        .replace(r#""depths": [3]"#, &format!(r#""depths": {depths}"#))
}

/// `n` CIFAR-10 records (label byte + 3072 pixels).
fn cifar_records(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        b.push((i % 10) as u8);
        b.extend(std::iter::repeat_n(100u8, 3072));
    }
    b
}

/// Writes a case's files into its folder; returns the experiment file's
/// text, or `None` to write none.
type Setup = Box<dyn Fn(&Path) -> Option<String> + Send + Sync>;

/// One case: what to write into its own temporary folder `T`, and what to
/// expect. In `args` and `needles`, `{T}` is the folder, `{EXP}` the
/// experiment file (`T/exp.json`) and `{OUT}` the results directory
/// (`T/out`, which must not exist afterwards).
struct Case {
    name: &'static str,
    setup: Setup,
    args: &'static [&'static str],
    needles: &'static [&'static str],
}

/// The usual command: train the experiment into `{OUT}`.
const RUN: &[&str] = &[
    "run",
    "{EXP}",
    "--out",
    "{OUT}",
    "--threads",
    "1",
    "--no-plot",
];

fn exp_case(
    name: &'static str,
    body: impl Fn(&Path) -> String + Send + Sync + 'static,
    needles: &'static [&'static str],
) -> Case {
    Case {
        name,
        setup: Box::new(move |t| Some(body(t))),
        args: RUN,
        needles,
    }
}

/// A case with a JSON edit of GOOD; the message must name the experiment
/// file and `field`.
fn edit(
    name: &'static str,
    from: &'static str,
    to: &'static str,
    needles: &'static [&'static str],
) -> Case {
    exp_case(name, move |_| good_with(from, to), needles)
}

/// A case whose dataset is a generated IDX set with one file replaced by
/// `bytes` (or turned into a folder when `None`).
fn idx_case(
    name: &'static str,
    file: usize,
    bytes: impl Fn() -> Option<Vec<u8>> + Send + Sync + 'static,
    needles: &'static [&'static str],
) -> Case {
    exp_case(
        name,
        move |t| {
            let dir = t.join("mnist");
            write_idx_set(&dir);
            let path = dir.join(IDX_FILES[file]);
            std::fs::remove_file(&path).unwrap();
            match bytes() {
                Some(b) => std::fs::write(&path, b).unwrap(),
                None => std::fs::create_dir(&path).unwrap(),
            }
            on_files("mnist", &dir, "")
        },
        needles,
    )
}

/// Like [`idx_case`] for a CIFAR-10 set.
fn cifar_case(
    name: &'static str,
    file: usize,
    bytes: impl Fn() -> Option<Vec<u8>> + Send + Sync + 'static,
    needles: &'static [&'static str],
) -> Case {
    exp_case(
        name,
        move |t| {
            let dir = t.join("cifar");
            write_cifar(&dir, 4);
            let path = dir.join(CIFAR_FILES[file]);
            std::fs::remove_file(&path).unwrap();
            match bytes() {
                Some(b) => std::fs::write(&path, b).unwrap(),
                None => std::fs::create_dir(&path).unwrap(),
            }
            on_files("cifar10", &dir, "")
        },
        needles,
    )
}

fn cases() -> Vec<Case> {
    let truncated = || {
        let mut g = GOOD.to_string();
        g.truncate(GOOD.len() / 2);
        g
    };
    vec![
        // Experiment files: malformed JSON.
        exp_case(
            "malformed JSON",
            |_| "{ not json".into(),
            &["{EXP}: .: ", "line 1"],
        ),
        exp_case(
            "truncated JSON",
            move |_| truncated(),
            &["{EXP}: .: ", "EOF"],
        ),
        exp_case(
            "empty experiment file",
            |_| String::new(),
            &["{EXP}: .: ", "EOF"],
        ),
        exp_case(
            "JSON array, not an object",
            |_| "[1, 2]".into(),
            &["{EXP}: [0]: ", "invalid type"],
        ),
        // Unknown fields.
        edit(
            "unknown top-level field",
            r#""seeds": [0]"#,
            r#""seeds": [0], "sedes": [1]"#,
            &["{EXP}: sedes: ", "unknown field"],
        ),
        edit(
            "unknown train field",
            r#""lr": 0.1"#,
            r#""lr": 0.1, "lrr": 1"#,
            &["{EXP}: train.lrr: "],
        ),
        // Wrong types.
        edit(
            "width is a string",
            r#""width": 8"#,
            r#""width": "wide""#,
            &["{EXP}: model.width: ", "\"wide\""],
        ),
        edit(
            "lr is a string",
            r#""lr": 0.1"#,
            r#""lr": "0.1""#,
            &["{EXP}: train.lr: "],
        ),
        edit(
            "seed is a fraction",
            r#""seeds": [0]"#,
            r#""seeds": [0.5]"#,
            &["{EXP}: seeds[0]: "],
        ),
        edit(
            "negative batch size",
            r#""batch_size": 8"#,
            r#""batch_size": -8"#,
            &["{EXP}: train.batch_size: ", "-8"],
        ),
        // Out-of-range values.
        edit(
            "lr is zero",
            r#""lr": 0.1"#,
            r#""lr": 0"#,
            &["{EXP}: train.lr: ", "0 must be"],
        ),
        edit(
            "momentum above 1",
            r#""momentum": 0.9"#,
            r#""momentum": 1.5"#,
            &["{EXP}: train.momentum: ", "1.5"],
        ),
        edit(
            "depth 1",
            r#""depths": [3]"#,
            r#""depths": [1]"#,
            &["{EXP}: depths[0]: ", "1 is below 2"],
        ),
        edit(
            "depth too large",
            r#""depths": [3]"#,
            r#""depths": [100000]"#,
            &["{EXP}: depths[0]: ", "100000"],
        ),
        edit(
            "batch larger than the data",
            r#""batch_size": 8"#,
            r#""batch_size": 100"#,
            &["{EXP}: train.batch_size: ", "100"],
        ),
        edit(
            "probe every 0",
            r#""every": 1"#,
            r#""every": 0"#,
            &["{EXP}: probe.every: "],
        ),
        edit(
            "steps and epochs",
            r#""steps": 2"#,
            r#""steps": 2, "epochs": 1"#,
            &["{EXP}: train.epochs: "],
        ),
        edit(
            "unknown activation",
            r#""sigmoid""#,
            r#""swish""#,
            &["{EXP}: model.activation: ", "swish"],
        ),
        edit(
            "unknown dataset kind",
            r#""kind": "synthetic""#,
            r#""kind": "imagenet""#,
            &["{EXP}: dataset.kind: ", "imagenet"],
        ),
        // Empty sweeps.
        edit(
            "no depths",
            r#""depths": [3]"#,
            r#""depths": []"#,
            &["{EXP}: depths: ", "empty"],
        ),
        edit(
            "no variants",
            r#""variants": ["plain", "residual"]"#,
            r#""variants": []"#,
            &["{EXP}: variants: ", "empty"],
        ),
        edit(
            "no seeds",
            r#""seeds": [0]"#,
            r#""seeds": []"#,
            &["{EXP}: seeds: ", "empty"],
        ),
        // Model and data that do not fit together.
        edit(
            "CNN on vector data",
            r#""family": "mlp", "width": 8, "activation": "sigmoid""#,
            r#""family": "cnn", "width": 4"#,
            &["{EXP}: model.family: ", "image data"],
        ),
        exp_case(
            "CNN on images too small",
            |_| {
                good_with(SYNTHETIC, r#""kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [1, 2, 2]"#)
                    .replace(r#""family": "mlp", "width": 8, "activation": "sigmoid""#, r#""family": "cnn", "width": 4"#)
                    .replace(r#""depths": [3]"#, r#""depths": [8]"#)
            },
            &["{EXP}: ", "1×2×2 is too small"],
        ),
        exp_case(
            "CNN depth not 6n+2",
            |_| {
                good_with(SYNTHETIC, r#""kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [1, 8, 8]"#)
                    .replace(r#""family": "mlp", "width": 8, "activation": "sigmoid""#, r#""family": "cnn", "width": 4"#)
                    .replace(r#""depths": [3]"#, r#""depths": [9]"#)
            },
            &["{EXP}: depths[0]: ", "6n+2"],
        ),
        exp_case(
            "mnist without a dir",
            |_| good_with(SYNTHETIC, r#""kind": "mnist""#),
            &["{EXP}: dataset.dir: "],
        ),
        exp_case(
            "subset larger than the file",
            |t| {
                write_idx_set(&t.join("mnist"));
                on_files("mnist", &t.join("mnist"), r#", "subset_train": 100"#)
            },
            &["{EXP}: dataset.subset_train: ", "100"],
        ),
        exp_case(
            "validation takes every training image",
            |t| {
                write_idx_set(&t.join("mnist"));
                on_files("mnist", &t.join("mnist"), r#", "validation": 16"#)
            },
            &["{EXP}: dataset.validation: ", "16"],
        ),
        exp_case(
            "batch larger than the files hold",
            |t| {
                write_idx_set(&t.join("mnist"));
                on_files("mnist", &t.join("mnist"), "")
                    .replace(r#""batch_size": 8"#, r#""batch_size": 32"#)
            },
            &["{EXP}: train.batch_size: ", "16 training examples"],
        ),
        // The recurrent tasks (issue 34 §2).
        exp_case(
            "copy sequence too short for its recall",
            |_| rnn_on(r#""kind": "copy", "samples": 64, "recall": 4"#, "[8]"),
            &[
                "{EXP}: depths[0]: ",
                "length of 8 is too short",
                "2 · 4 + 1 = 9",
            ],
        ),
        exp_case(
            "image sequence on an mlp",
            |t| {
                write_idx_set(&t.join("mnist"));
                on_files("mnist", &t.join("mnist"), r#", "sequence": "rows""#)
            },
            &["{EXP}: dataset.sequence: ", r#""rows""#, r#"not "mlp""#],
        ),
        exp_case(
            "rnn on plain images",
            |t| {
                write_idx_set(&t.join("mnist"));
                let dir = t.join("mnist").display().to_string();
                rnn_on(&format!(r#""kind": "mnist", "dir": {dir:?}"#), "[6]")
            },
            &["{EXP}: dataset.sequence: missing"],
        ),
        exp_case(
            "depth not the image sequence's length",
            |t| {
                write_idx_set(&t.join("mnist"));
                let dir = t.join("mnist").display().to_string();
                let data = format!(r#""kind": "mnist", "dir": {dir:?}, "sequence": "rows""#);
                rnn_on(&data, "[28]")
            },
            &[
                r#"{EXP}: depths[0]: 28 is not the length of dataset.sequence "rows", 6 steps of 6 features"#,
            ],
        ),
        // IDX files.
        idx_case(
            "IDX images with the labels magic",
            0,
            || Some(idx(0x801, &[16], &[0; 16])),
            &[
                "{T}/mnist/train-images-idx3-ubyte: ",
                "magic number 0x00000801",
                "labels file",
            ],
        ),
        idx_case(
            "IDX truncated images",
            0,
            || Some(idx(0x803, &[16, 6, 6], &[1; 100])),
            &[
                "{T}/mnist/train-images-idx3-ubyte: ",
                "truncated",
                "[16, 6, 6]",
            ],
        ),
        idx_case(
            "IDX truncated header",
            1,
            || Some(vec![0, 0, 8, 1, 0]),
            &["{T}/mnist/train-labels-idx1-ubyte: ", "truncated header"],
        ),
        idx_case(
            "IDX label count mismatch",
            1,
            || Some(idx(0x801, &[15], &[1; 15])),
            &[
                "{T}/mnist/train-labels-idx1-ubyte: ",
                "holds 15 labels",
                "16 images",
            ],
        ),
        idx_case(
            "IDX test images of other dimensions",
            2,
            || Some(idx(0x803, &[4, 5, 7], &[0; 140])),
            &[
                "{T}/mnist/t10k-images-idx3-ubyte: ",
                "images are 5x7",
                "6x6",
            ],
        ),
        idx_case(
            "IDX zero-size dimension",
            0,
            || Some(idx(0x803, &[16, 0, 6], &[])),
            &[
                "{T}/mnist/train-images-idx3-ubyte: ",
                "size 0 for dimension 1",
            ],
        ),
        idx_case(
            "IDX empty file",
            3,
            || Some(Vec::new()),
            &["{T}/mnist/t10k-labels-idx1-ubyte: ", "empty file"],
        ),
        idx_case(
            "IDX label out of range",
            3,
            || Some(idx(0x801, &[4], &[0, 1, 10, 2])),
            &[
                "{T}/mnist/t10k-labels-idx1-ubyte: ",
                "label 10 of example 2",
            ],
        ),
        idx_case(
            "IDX corrupt gzip",
            0,
            || Some(vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff]),
            &["{T}/mnist/train-images-idx3-ubyte: ", "gzip"],
        ),
        idx_case(
            "IDX directory where a file belongs",
            1,
            || None,
            &["{T}/mnist/train-labels-idx1-ubyte: ", "is a directory"],
        ),
        exp_case(
            "IDX folder missing",
            |t| on_files("fashion-mnist", &t.join("nowhere"), ""),
            // The folder is named first, not eight files inside it.
            &[
                "dataset.dir: {T}/nowhere does not exist",
                "dataset-fashion-mnist",
            ],
        ),
        // CIFAR-10 files.
        cifar_case(
            "CIFAR truncated batch",
            1,
            || Some(cifar_records(3)[..3 * 3073 - 10].to_vec()),
            &["{T}/cifar/data_batch_2.bin: ", "truncated", "9209 bytes"],
        ),
        cifar_case(
            "CIFAR empty batch",
            5,
            || Some(Vec::new()),
            &["{T}/cifar/test_batch.bin: ", "empty file"],
        ),
        cifar_case(
            "CIFAR label out of range",
            0,
            || {
                let mut b = cifar_records(2);
                b[3073] = 200;
                Some(b)
            },
            &["{T}/cifar/data_batch_1.bin: ", "label 200 of example 1"],
        ),
        cifar_case(
            "CIFAR directory where a file belongs",
            4,
            || None,
            &["{T}/cifar/data_batch_5.bin: ", "is a directory"],
        ),
        exp_case(
            "CIFAR file missing",
            |t| {
                write_cifar(&t.join("cifar"), 4);
                std::fs::remove_file(t.join("cifar/test_batch.bin")).unwrap();
                on_files("cifar10", &t.join("cifar"), "")
            },
            &[
                "{T}/cifar/test_batch.bin",
                "not found",
                "cifar-10-binary.tar.gz",
            ],
        ),
        // Command lines.
        Case {
            name: "experiment file missing",
            setup: Box::new(|_| None),
            args: RUN,
            needles: &["{EXP}: cannot read the experiment file", "No such file"],
        },
        Case {
            name: "experiment path is a directory",
            setup: Box::new(|t| {
                std::fs::create_dir(t.join("dir.json")).unwrap();
                None
            }),
            args: &["run", "{T}/dir.json", "--out", "{OUT}"],
            needles: &["{T}/dir.json: cannot read the experiment file"],
        },
        Case {
            name: "results directory under a regular file",
            setup: Box::new(|t| {
                std::fs::write(t.join("file"), "x").unwrap();
                Some(GOOD.to_string())
            }),
            args: &["run", "{EXP}", "--out", "{T}/file/out", "--threads", "1"],
            needles: &["{EXP}: ", "{T}/file/out"],
        },
        Case {
            name: "results directory is a regular file",
            setup: Box::new(|t| {
                std::fs::write(t.join("taken"), "x").unwrap();
                Some(GOOD.to_string())
            }),
            args: &["run", "{EXP}", "--out", "{T}/taken", "--threads", "1"],
            needles: &["{EXP}: ", "{T}/taken"],
        },
        Case {
            name: "zero threads",
            setup: Box::new(|_| Some(GOOD.to_string())),
            args: &["run", "{EXP}", "--out", "{OUT}", "--threads", "0"],
            needles: &["--threads: 0"],
        },
        Case {
            name: "plot of a folder that is not a results directory",
            setup: Box::new(|t| {
                std::fs::create_dir(t.join("empty")).unwrap();
                None
            }),
            args: &["plot", "{T}/empty"],
            needles: &["{T}/empty is not a gradscope results directory"],
        },
        Case {
            name: "plot of a malformed summary.csv",
            setup: Box::new(|t| {
                std::fs::create_dir(t.join("res")).unwrap();
                std::fs::write(
                    t.join("res/summary.csv"),
                    "run,variant,depth,seed,status\nplain-d4-s0,plain,four,0,completed\n",
                )
                .unwrap();
                None
            }),
            args: &["plot", "{T}/res"],
            needles: &["{T}/res/summary.csv", "line 2", "depth"],
        },
    ]
}

/// Cases that `check` passes by design: their fault is found only by
/// reading every record of the data.
const CHECK_LETS_THROUGH: &[&str] = &["CIFAR label out of range"];

/// Runs one case; returns what is wrong with it, if anything.
fn run_case(case: &Case) -> Option<String> {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let exp = t.join("exp.json");
    let out = t.join("out");
    if let Some(body) = (case.setup)(t) {
        std::fs::write(&exp, body).unwrap();
    }
    let fill = |s: &str| {
        s.replace("{EXP}", &exp.display().to_string())
            .replace("{OUT}", &out.display().to_string())
            .replace("{T}", &t.display().to_string())
    };
    let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
    let o = Command::new(BIN)
        .args(&args)
        .output()
        .expect("the gradscope binary starts");
    let err = String::from_utf8_lossy(&o.stderr);
    let mut wrong = Vec::new();
    if o.status.success() {
        wrong.push("exited 0".to_string());
    }
    for n in case.needles {
        if !err.contains(&fill(n)) {
            wrong.push(format!("no {:?} in the message", fill(n)));
        }
    }
    if err.contains("panicked at") {
        wrong.push("panicked".into());
    }
    if out.exists() {
        wrong.push(format!("left {} behind", out.display()));
    }
    // `check` must refuse what `run` refuses, with the same words (issue
    // 19): it reads the dataset's headers and sizes and builds every
    // network. A CIFAR-10 label byte is the one thing it does not read.
    if case.args == RUN && !CHECK_LETS_THROUGH.contains(&case.name) {
        let o = Command::new(BIN)
            .args(["check", &exp.display().to_string()])
            .output()
            .expect("the gradscope binary starts");
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            wrong.push("check exited 0".to_string());
        }
        for n in case.needles {
            if !err.contains(&fill(n)) {
                wrong.push(format!(
                    "no {:?} in check's message: {}",
                    fill(n),
                    err.trim()
                ));
            }
        }
        if err.contains("panicked at") {
            wrong.push("check panicked".into());
        }
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "{}: {}\n  stderr: {}",
            case.name,
            wrong.join("; "),
            err.trim()
        )
    })
}

#[test]
fn every_bad_input_fails_cleanly_naming_the_file_and_the_field() {
    let cases = cases();
    assert!(cases.len() >= 25, "the corpus has {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    // Two at a time: each case is its own process, and the machine has 2 cores.
    let wrong: Vec<String> = std::thread::scope(|s| {
        let (even, odd): (Vec<_>, Vec<_>) = cases.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let a = s.spawn(move || {
            even.iter()
                .filter_map(|(_, c)| run_case(c))
                .collect::<Vec<_>>()
        });
        let b = s.spawn(move || {
            odd.iter()
                .filter_map(|(_, c)| run_case(c))
                .collect::<Vec<_>>()
        });
        let mut w = a.join().unwrap();
        w.extend(b.join().unwrap());
        w
    });
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
