//! End-to-end tests of issue 5's parts: `gradscope cost`, the bottleneck
//! ResNet and Inception families in experiment files, and the identity task.

mod common;

use common::{gradscope, read_csv, run_ok, stderr, stdout, summary_value};

/// The 1×1 argument as printed and written by `gradscope cost` (Szegedy et
/// al. 2015 §4; the numbers of the usual explanation): 120,422,400 against
/// 2,408,448 + 10,035,200; Inception (3a) 128,049,152.
#[test]
fn cost_prints_and_writes_the_one_by_one_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cost");
    let o = gradscope(&[
        "cost",
        "conv5x5",
        "reduce5x5",
        "inception-3a-naive",
        "inception-3a",
        "--batch",
        "1",
        "--repeats",
        "1",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for n in [
        "120,422,400",
        "2,408,448",
        "10,035,200",
        "12,443,648",
        "128,049,152",
        "9.68×",
    ] {
        assert!(text.contains(n), "{n} missing from\n{text}");
    }
    let (h, rows) = read_csv(&out.join("cost.csv"));
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let total = |target: &str| -> i64 {
        rows.iter()
            .find(|r| r[col("target")] == target && r[col("layer")] == "total")
            .unwrap()[col("mults")]
        .parse()
        .unwrap()
    };
    assert_eq!(total("conv5x5"), 120_422_400);
    assert_eq!(total("reduce5x5"), 12_443_648);
    assert_eq!(total("inception-3a"), 128_049_152);
    // Every row carries a measured time, and the chart exists.
    assert!(rows
        .iter()
        .all(|r| r[col("median_ms")].parse::<f64>().unwrap() > 0.0));
    assert!(out.join("plots/cost_vs_time.png").is_file());
    assert!(out.join("plots/cost_vs_time.svg").is_file());
}

#[test]
fn cost_rejects_unknown_names_listing_the_valid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cost");
    let o = gradscope(&[
        "cost",
        "resnet5",
        "--no-time",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("\"resnet5\"") && err.contains("resnet50, resnet20, resnet56"),
        "{err}"
    );
    let o = gradscope(&[
        "cost",
        "inception-3a",
        "--layer",
        "3b",
        "--no-time",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("3a.b5x5_reduce"),
        "{err}"
    );
    let o = gradscope(&[
        "cost",
        "resnet50",
        "--input",
        "3x8x8",
        "--no-time",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("stage4.block1.conv1"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "nothing written for a query that failed");
}

/// A module query lists only that module's layers and their sum.
#[test]
fn cost_of_one_module() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cost");
    let o = gradscope(&[
        "cost",
        "resnet50",
        "--layer",
        "stage3.block1",
        "--no-time",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, rows) = read_csv(&out.join("cost.csv"));
    assert_eq!(
        rows.len(),
        5,
        "conv1, conv2, conv3, proj and the selected total"
    );
    // 2,097,152 + 9,437,184 + 4,194,304 + 8,388,608 at 64×64 input.
    assert_eq!(rows[4][5], "24117248");
}

/// A bottleneck ResNet-50 (width 4, so ~92k parameters) and a small
/// Inception net train through experiment files and probe every conv.
#[test]
fn resnet50_and_inception_run_from_experiment_files() {
    let body = r#"{
      "name": "r50",
      "dataset": { "kind": "synthetic-images", "samples": 64, "test_samples": 16, "classes": 3, "shape": [3, 32, 32] },
      "model": { "family": "bottleneck", "width": 4 },
      "variants": ["plain", "residual"],
      "depths": [50],
      "seeds": [0],
      "train": { "lr": 0.05, "momentum": 0.9, "batch_size": 16, "steps": 3, "eval_every": 3 },
      "probe": { "every": 1 }
    }"#;
    let (_tmp, out) = run_ok(body, &["--no-plot"]);
    let (_, g) = read_csv(&out.join("runs/residual-d50-s0/gradients.csv"));
    let at0 = |kind: &str| g.iter().filter(|r| r[0] == "0" && r[3] == kind).count();
    // 53 convolutions + fc carry weights; 16 block outputs + 53 + fc are outputs.
    assert_eq!(at0("weight"), 54);
    assert_eq!(at0("output"), 70);
    let (_, g) = read_csv(&out.join("runs/plain-d50-s0/gradients.csv"));
    assert_eq!(
        g.iter().filter(|r| r[0] == "0" && r[3] == "weight").count(),
        50,
        "no projections in the plain twin"
    );

    let body = body
        .replace(
            r#""family": "bottleneck", "width": 4"#,
            r#""family": "inception", "width": 4"#,
        )
        .replace("[50]", "[3]")
        .replace("[3, 32, 32]", "[1, 16, 16]");
    let (_tmp, out) = run_ok(&body, &["--no-plot"]);
    let (_, g) = read_csv(&out.join("runs/plain-d3-s0/gradients.csv"));
    // Stem + 3 modules × 6 branch convolutions + fc.
    assert_eq!(
        g.iter().filter(|r| r[0] == "0" && r[3] == "weight").count(),
        1 + 18 + 1
    );
}

/// Shapes that cannot work are refused before training, naming the layer.
#[test]
fn too_small_images_are_refused_naming_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let body = r#"{
      "name": "r50",
      "dataset": { "kind": "synthetic-images", "samples": 64, "classes": 3, "shape": [3, 16, 16] },
      "model": { "family": "bottleneck", "width": 4 },
      "variants": ["plain"], "depths": [50], "seeds": [0],
      "train": { "lr": 0.05, "batch_size": 16, "steps": 3, "eval_every": 3 }
    }"#;
    let exp = common::experiment(tmp.path(), body);
    let out = tmp.path().join("out");
    let o = gradscope(&["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("stage5.block1.conv1") && err.contains("exp.json"),
        "{err}"
    );
    assert!(
        !out.join("runs").exists(),
        "no run directory for a run that never started"
    );
}

/// He et al. (2016) §3.1: a residual block learns the identity by driving
/// its branch to zero; a plain stack must find it through every ReLU.
/// Tiny version of experiments/identity.json: width 16, depth 12, 8 inputs.
#[test]
fn identity_task_residual_beats_plain_at_depth() {
    let body = r#"{
      "name": "identity",
      "task": "identity",
      "dataset": { "kind": "synthetic", "samples": 512, "test_samples": 128, "classes": 2, "features": 8 },
      "model": { "family": "mlp", "width": 16, "activation": "relu", "init": "pytorch-default" },
      "variants": ["plain", "residual"],
      "depths": [12],
      "seeds": [0],
      "train": { "lr": 0.01, "momentum": 0.9, "batch_size": 32, "steps": 300, "eval_every": 100 },
      "probe": { "every": 50 }
    }"#;
    let (_tmp, out) = run_ok(body, &["--no-plot"]);
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let plain = summary_value(&rows, &h, "plain-d12-s0", "final_train_error");
    let res = summary_value(&rows, &h, "residual-d12-s0", "final_train_error");
    assert!(res < 0.5 * plain, "residual {res} vs plain {plain}");
    assert!(res < 0.3, "residual reconstruction error {res}");
}
