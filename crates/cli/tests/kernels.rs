//! `GRADSCOPE_KERNELS=portable` (issue 32 §1): the portable code of every
//! fast path (the probe's float32 reads without AVX2, the SGD step on
//! libtorch's ops instead of the fused one, the probe's own threads instead
//! of libtorch's OpenMP team) gives the same training and the same probe
//! numbers. Training must come out bit for bit (the fused step is held to
//! libtorch's ops bit for bit in `gradscope-train`'s tests); the probe's
//! sums are float64 in a different order, so within 1e-6 relative.

mod common;

use common::{experiment, read_csv, stderr, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;

const TINY: &str = r#"{
  "name": "tiny-kernels",
  "dataset": { "kind": "synthetic-images", "samples": 128, "test_samples": 32, "classes": 3, "shape": [1, 8, 8] },
  "model": { "family": "cnn", "width": 4, "norm": "batchnorm", "init": "kaiming" },
  "variants": ["plain", "residual"],
  "depths": [8],
  "seeds": [0],
  "train": { "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0001, "batch_size": 32, "steps": 12, "eval_every": 6 },
  "probe": { "every": 3, "dense_steps": 2 }
}"#;

/// Trains TINY into `dir/out` with the kernels `kernels` names (`None`:
/// the fast ones, whatever the environment of the test says).
fn train(dir: &Path, kernels: Option<&str>) -> PathBuf {
    let exp = experiment(dir, TINY);
    let out = dir.join("out");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--threads", "2", "--no-plot", "--device", "cpu"]);
    match kernels {
        Some(k) => cmd.env("GRADSCOPE_KERNELS", k),
        None => cmd.env_remove("GRADSCOPE_KERNELS"),
    };
    let o = cmd.output().expect("gradscope starts");
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// Every cell of two CSVs with the same header: equal as text, or for the
/// columns `close` lists, numbers within 1e-6 relative. `skip` columns
/// (wall-clock time) are not compared. A mean is relative to the row's
/// `std` as well: BatchNorm's output has a mean of 0 up to rounding (1e-9
/// of its spread), which another summation order changes entirely.
fn same_csv(a: &Path, b: &Path, close: &[&str], skip: &[&str]) {
    let ((ha, ra), (hb, rb)) = (read_csv(a), read_csv(b));
    assert_eq!(ha, hb, "{}: header", a.display());
    assert_eq!(ra.len(), rb.len(), "{}: rows", a.display());
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        for (c, name) in ha.iter().enumerate() {
            if skip.contains(&name.as_str()) || x[c] == y[c] {
                continue;
            }
            let (p, q): (f64, f64) = match (x[c].parse(), y[c].parse()) {
                (Ok(p), Ok(q)) if close.contains(&name.as_str()) => (p, q),
                _ => panic!(
                    "{} row {} column {name}: {} against {} (portable)",
                    a.display(),
                    i + 2,
                    x[c],
                    y[c]
                ),
            };
            let spread = match (name.as_str(), ha.iter().position(|h| h == "std")) {
                ("mean", Some(s)) => x[s].parse::<f64>().unwrap_or(0.0).abs(),
                _ => 0.0,
            };
            assert!(
                (p - q).abs() <= 1e-6 * p.abs().max(q.abs()).max(spread),
                "{} row {} column {name}: {p} against {q} (portable)",
                a.display(),
                i + 2
            );
        }
    }
}

#[test]
fn portable_kernels_train_the_same_and_probe_within_1e_6() {
    let (fast, portable) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (fast, portable) = (
        train(fast.path(), None),
        train(portable.path(), Some("portable")),
    );
    for run in ["plain-d8-s0", "residual-d8-s0"] {
        let (f, p) = (fast.join("runs").join(run), portable.join("runs").join(run));
        // The training itself: loss, error, lr and the gradient norm of
        // every step, bit for bit.
        same_csv(
            &f.join("metrics.csv"),
            &p.join("metrics.csv"),
            &[],
            &["elapsed_s"],
        );
        // The probe's readings: every statistic a float64 sum of the same
        // float32 values, read in another order.
        let (h, _) = read_csv(&f.join("gradients.csv"));
        let numbers: Vec<&str> = h.iter().map(String::as_str).collect();
        same_csv(
            &f.join("gradients.csv"),
            &p.join("gradients.csv"),
            &numbers,
            &[],
        );
        let (h, _) = read_csv(&f.join("activations.csv"));
        let numbers: Vec<&str> = h.iter().map(String::as_str).collect();
        same_csv(
            &f.join("activations.csv"),
            &p.join("activations.csv"),
            &numbers,
            &[],
        );
    }
}
