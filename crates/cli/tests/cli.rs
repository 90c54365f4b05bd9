//! End-to-end tests of the `gradscope` binary on tiny synthetic experiments
//! (width ≤ 16, depth ≤ 16, one thread). Each test is its own process under
//! nextest, so libtorch's global RNG and thread count are never shared.

mod common;

use common::{experiment, gradscope, read_csv, run_ok, stderr, stdout, summary_value, write_cifar};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VANISH: &str = r#"{
  "name": "vanish",
  "dataset": { "kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 16 },
  "model": { "family": "mlp", "width": 16, "activation": "sigmoid", "init": "pytorch-default" },
  "variants": ["plain", "residual"],
  "depths": [16],
  "seeds": [0],
  "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 32, "steps": 20, "eval_every": 10 },
  "probe": { "every": 5 }
}"#;

/// The gradients.csv columns (crates/README.md, "The file contract").
const GRADIENTS_HEADER: [&str; 10] = [
    "step",
    "layer",
    "name",
    "kind",
    "trunk",
    "l2",
    "rms",
    "zero_fraction",
    "weight_norm",
    "relative",
];

/// The quickstart's data and net (experiments/quickstart.json: synthetic
/// teacher task, 64 features, sigmoid MLP of width 64, PyTorch's default
/// init) at depth 16, probed at every one of its first 10 steps.
const THEORY: &str = r#"{
  "name": "theory",
  "dataset": { "kind": "synthetic", "samples": 4096, "test_samples": 256, "classes": 10, "features": 64 },
  "model": { "family": "mlp", "width": 64, "activation": "sigmoid", "norm": "none", "init": "pytorch-default" },
  "variants": ["plain", "residual"],
  "depths": [16],
  "seeds": [0],
  "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 128, "steps": 10, "eval_every": 10 },
  "probe": { "every": 25, "dense_steps": 10 }
}"#;

/// Issue 11, §2: the decay per layer against theory. Backward through one
/// plain sigmoid layer of width 64 with weights U(±1/√64) multiplies the
/// per-element rms of dL/dh by √(64·Var W)·rms σ' = √(1/3)·≈0.245 ≈ 0.141
/// (Glorot & Bengio 2010 §4.2; mean-field form in Schoenholz et al. 2017),
/// that is 0.85 decades per layer. The fitted `grad_decay_init` of the
/// depth-16 plain net must be within 10% of it. The residual twin's
/// identity shortcut keeps each factor at √(1 + small): within ±0.05 of 0.
#[test]
fn decay_per_layer_matches_theory_for_the_quickstart_net() {
    let (_tmp, out) = run_ok(THEORY, &["--no-plot"]);
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let plain = summary_value(&rows, &h, "plain-d16-s0", "grad_decay_init");
    let theory = -(((1.0f64 / 3.0).sqrt()) * 0.245).log10();
    assert!(
        (plain - theory).abs() <= 0.1 * theory,
        "plain decay {plain:.3} decades/layer, theory {theory:.3}"
    );
    let res = summary_value(&rows, &h, "residual-d16-s0", "grad_decay_init");
    assert!(res.abs() <= 0.05, "residual decay {res:.3} decades/layer");
    // The spread is the same reading end to end: 13 layers of decay.
    let spread = summary_value(&rows, &h, "plain-d16-s0", "grad_spread_init");
    assert!((spread / 13.0 - plain).abs() < 0.15, "spread {spread}");
    // run.json names the 14 hidden layers the fit used, not the input
    // layer or the head.
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("runs/plain-d16-s0/run.json")).unwrap(),
    )
    .unwrap();
    let trunk = json["gradient_ends"]["trunk_points"].as_array().unwrap();
    assert_eq!(trunk.len(), 14);
    assert_eq!(trunk[0], "layer01.linear");
    assert_eq!(trunk[13], "layer14.linear");
    // Dense probing: every one of the 10 steps has rows.
    let (_, g) = read_csv(&out.join("runs/plain-d16-s0/gradients.csv"));
    let steps: std::collections::BTreeSet<u32> = g.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(steps.len(), 10);
}

/// The step-0 decay of `run`, fitted from its gradients.csv as
/// gradscope-format fits every decay: trunk rms at step 0.
fn step0_decay(out: &Path, run: &str) -> f64 {
    let mut r = csv::Reader::from_path(out.join("runs").join(run).join("gradients.csv")).unwrap();
    let rows: Vec<gradscope_format::GradientRow> = r.deserialize().map(Result::unwrap).collect();
    let profile: Vec<f64> = rows
        .iter()
        .filter(|g| g.step == 0 && g.trunk && g.is_output())
        .map(|g| g.rms.unwrap())
        .collect();
    gradscope_format::decay::decay_per_layer(&profile).unwrap()
}

/// Issue 17: the measured step-0 decay per layer (median over 3 seeds) of
/// plain MLPs of width 64 on the quickstart data against mean-field theory
/// (Poole et al. 2016; Schoenholz et al. 2017), computed by gradscope-theory
/// and written to summary.csv as `grad_decay_theory`: within 10%, or within
/// 0.02 decades per layer where the prediction is near 0. With BatchNorm
/// and ReLU the growth per layer is within 10% of √(π/(π−1)) ≈ 1.21
/// (Yang et al. 2019).
#[test]
fn measured_decay_matches_mean_field_theory() {
    let cases = [
        ("sigmoid", r#""pytorch-default""#, "none"),
        ("tanh", r#""pytorch-default""#, "none"),
        ("tanh", r#""glorot""#, "none"),
        ("relu", r#""pytorch-default""#, "none"),
        ("relu", r#""kaiming""#, "batchnorm"),
    ];
    for (act, init, norm) in cases {
        let body = THEORY
            .replace(
                r#""activation": "sigmoid""#,
                &format!(r#""activation": "{act}""#),
            )
            .replace(
                r#""init": "pytorch-default""#,
                &format!(r#""init": {init}"#),
            )
            .replace(r#""norm": "none""#, &format!(r#""norm": "{norm}""#))
            .replace(
                r#""variants": ["plain", "residual"]"#,
                r#""variants": ["plain"]"#,
            )
            .replace(r#""seeds": [0]"#, r#""seeds": [0, 1, 2]"#)
            .replace(r#""steps": 10"#, r#""steps": 1"#);
        let (_tmp, out) = run_ok(&body, &["--no-plot"]);
        let (h, rows) = read_csv(&out.join("summary.csv"));
        let theory = summary_value(&rows, &h, "plain-d16-s0", "grad_decay_theory");
        let mut measured: Vec<f64> = (0..3)
            .map(|s| step0_decay(&out, &format!("plain-d16-s{s}")))
            .collect();
        measured.sort_by(f64::total_cmp);
        let median = measured[1];
        let case = format!("{act} {init} {norm}: measured {median:.3}, theory {theory:.3}");
        eprintln!("{case}");
        if norm == "batchnorm" {
            let growth = 10f64.powf(-median);
            let expected = (std::f64::consts::PI / (std::f64::consts::PI - 1.0)).sqrt();
            assert!(
                (growth - expected).abs() <= 0.1 * expected,
                "{case}: growth {growth:.3}"
            );
            assert!((10f64.powf(-theory) - expected).abs() < 1e-6, "{case}");
        } else if theory.abs() < 0.05 {
            assert!((median - theory).abs() <= 0.02, "{case}");
        } else {
            assert!((median - theory).abs() <= 0.1 * theory.abs(), "{case}");
        }
    }
}

const LEARN: &str = r#"{
  "name": "learn",
  "dataset": { "kind": "synthetic", "samples": 512, "test_samples": 128, "classes": 4, "features": 8 },
  "model": { "family": "mlp", "width": 16, "activation": "tanh", "init": "glorot" },
  "variants": ["plain"],
  "depths": [3],
  "seeds": [0],
  "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 32, "steps": 400, "eval_every": 100 },
  "probe": { "every": 100 }
}"#;

/// Glorot & Bengio (2010) §4.2 and He et al. (2016) §1: in a deep sigmoid
/// plain net the back-propagated gradient shrinks layer by layer (σ' ≤ 1/4),
/// so at initialization the first layer's ‖dL/dh‖ is orders of magnitude
/// below the last's; the identity shortcut carries it through unchanged.
#[test]
fn deep_sigmoid_plain_net_vanishes_and_its_residual_twin_does_not() {
    let (_tmp, out) = run_ok(VANISH, &["--device", "cpu"]);
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let plain = summary_value(&rows, &h, "plain-d16-s0", "grad_first_init")
        / summary_value(&rows, &h, "plain-d16-s0", "grad_last_init");
    let res = summary_value(&rows, &h, "residual-d16-s0", "grad_first_init")
        / summary_value(&rows, &h, "residual-d16-s0", "grad_last_init");
    assert!(
        plain < 1e-2,
        "plain first/last = {plain:e}, expected ≤ 1e-2"
    );
    assert!(
        (0.1..=10.0).contains(&res),
        "residual first/last = {res}, expected within 10× of 1"
    );

    // The same ratio, read from gradients.csv directly, so the summary is
    // checked against the raw rows.
    let (gh, grows) = read_csv(&out.join("runs/plain-d16-s0/gradients.csv"));
    assert_eq!(gh, GRADIENTS_HEADER);
    let at0: Vec<&Vec<String>> = grows
        .iter()
        .filter(|r| r[0] == "0" && r[3] == "output")
        .collect();
    assert_eq!(at0.len(), 16, "one output row per layer at step 0");
    assert_eq!(at0[0][2], "layer00.linear");
    assert_eq!(at0[15][2], "layer15.linear");
    let first: f64 = at0[0][5].parse().unwrap();
    let last: f64 = at0[15][5].parse().unwrap();
    assert!(first / last < 1e-2);
    // The trunk is the 14 hidden layers, not the input layer or the head.
    let trunk: Vec<&str> = at0.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(trunk[0], "false");
    assert_eq!(trunk[15], "false");
    assert!(trunk[1..15].iter().all(|t| *t == "true"));
    // Issue 11: the summary leads with the decay per layer; the plain net's
    // gradient shrinks toward the input, its twin's does not.
    let decay = summary_value(&rows, &h, "plain-d16-s0", "grad_decay_init");
    let res_decay = summary_value(&rows, &h, "residual-d16-s0", "grad_decay_init");
    assert!(decay > 0.5, "plain decay {decay}");
    assert!(res_decay.abs() < 0.1, "residual decay {res_decay}");

    // Issue 19, §4: each chart names the experiment and its settings.
    let svg = std::fs::read_to_string(out.join("plots/gradient_profile.svg")).unwrap();
    assert!(svg.contains("— vanish"), "no experiment name in the title");
    assert!(
        svg.contains("mlp, sigmoid, init pytorch-default, no norm"),
        "no settings in the subtitle"
    );

    // Every chart is drawn from the real run output.
    for chart in [
        "train_error_vs_step",
        "error_vs_depth",
        "gradient_profile",
        "gradient_vs_step",
    ] {
        for ext in ["png", "svg"] {
            let f = out.join("plots").join(format!("{chart}.{ext}"));
            assert!(
                f.metadata().map(|m| m.len() > 1000).unwrap_or(false),
                "{} missing or empty",
                f.display()
            );
        }
    }
}

/// A 3-layer tanh MLP must learn the 4-class teacher task far below chance
/// (75% error): the loop, loss and optimizer work together.
#[test]
fn small_net_learns_the_synthetic_task() {
    let (_tmp, out) = run_ok(LEARN, &["--no-plot"]);
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let train = summary_value(&rows, &h, "plain-d3-s0", "final_train_error");
    let test = summary_value(&rows, &h, "plain-d3-s0", "final_test_error");
    assert!(train < 0.15, "train error {train}");
    assert!(test < 0.35, "test error {test}");
    // The on-the-fly curve falls: last train row below the first.
    let (_, m) = read_csv(&out.join("runs/plain-d3-s0/metrics.csv"));
    let train_rows: Vec<f64> = m
        .iter()
        .filter(|r| r[2] == "train")
        .map(|r| r[4].parse().unwrap())
        .collect();
    assert!(train_rows.last().unwrap() < train_rows.first().unwrap());
}

/// The files match the file contract (docs/FILES.md).
#[test]
fn files_follow_the_design_contract() {
    let body = LEARN
        .replace("\"steps\": 400", "\"steps\": 30")
        .replace("\"every\": 100", "\"every\": 10");
    let (_tmp, out) = run_ok(&body, &["--no-plot"]);
    let run = out.join("runs/plain-d3-s0");
    assert_eq!(
        read_csv(&run.join("metrics.csv")).0,
        [
            "step",
            "epoch",
            "split",
            "loss",
            "error",
            "lr",
            "grad_norm",
            "elapsed_s"
        ]
    );
    assert_eq!(read_csv(&run.join("gradients.csv")).0, GRADIENTS_HEADER);
    let (ah, arows) = read_csv(&run.join("activations.csv"));
    // The columns gradscope-format declares (its own test holds them to
    // the row type's field order); the transformer's rank1 and entropy
    // columns are empty in an MLP's file but present.
    assert_eq!(ah, gradscope_format::rows::ACTIVATIONS_HEADER);
    for col in ["q", "rank1", "entropy"] {
        assert!(ah.iter().any(|h| h == col), "{col} in {ah:?}");
    }
    // Probed at steps 0, 10, 20 and the last step (29).
    let steps: std::collections::BTreeSet<&str> = arows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        steps.into_iter().collect::<Vec<_>>(),
        ["0", "10", "20", "29"]
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    for key in [
        "config",
        "status",
        "final",
        "params",
        "steps_done",
        "elapsed_s",
        "device",
        "threads",
        "versions",
    ] {
        assert!(json.get(key).is_some(), "run.json lacks {key}");
    }
    assert_eq!(json["status"], "completed");
    assert_eq!(json["steps_done"], 30);
    assert_eq!(json["threads"], 1);
    assert_eq!(json["device"], "cpu");
    // 8*16+16 + 16*16+16 + 16*4+4
    assert_eq!(json["params"], 484);
    assert_eq!(json["versions"]["tch"], "0.24.0");
    assert!(
        json["versions"]["libtorch"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0"),
        "{}",
        json["versions"]
    );
    for key in ["train_loss", "train_error", "test_loss", "test_error"] {
        let v = json["final"][key]
            .as_f64()
            .unwrap_or_else(|| panic!("final.{key}"));
        assert!(v.is_finite() && v >= 0.0);
    }
    let (sh, _) = read_csv(&out.join("summary.csv"));
    for col in [
        "variant",
        "depth",
        "seed",
        "status",
        "final_train_error",
        "final_test_error",
        "final_train_loss",
        "final_test_loss",
        "grad_decay_init",
        "grad_decay_final",
        "wgrad_decay_init",
        "wgrad_decay_final",
        "grad_spread_init",
        "grad_spread_final",
        "grad_first_init",
        "grad_last_final",
    ] {
        assert!(sh.iter().any(|h| h == col), "summary.csv lacks {col}");
    }
}

/// Bad experiment files: non-zero exit, a message naming the file and the
/// field, no panic, and no run directory left behind.
#[test]
fn bad_experiments_fail_cleanly_naming_file_and_field() {
    let cases = [
        ("{ not json", "."),
        (
            &*VANISH.replace("\"seeds\": [0]", "\"seeds\": [0], \"sedes\": [1]"),
            "sedes",
        ),
        (
            &*VANISH.replace("\"depths\": [16]", "\"depths\": [1]"),
            "depths[0]",
        ),
        (
            &*VANISH.replace("\"depths\": [16]", "\"depths\": []"),
            "depths",
        ),
        (&*VANISH.replace("\"lr\": 0.1", "\"lr\": 0"), "train.lr"),
        (
            &*VANISH.replace("\"batch_size\": 32", "\"batch_size\": 0"),
            "train.batch_size",
        ),
        (
            &*VANISH.replace("\"sigmoid\"", "\"swish\""),
            "model.activation",
        ),
    ];
    for (body, field) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let exp = experiment(tmp.path(), body);
        let out = tmp.path().join("out");
        for cmd in ["check", "run"] {
            let o = gradscope(
                &[cmd, exp.to_str().unwrap(), "--out", out.to_str().unwrap()]
                    [..if cmd == "check" { 2 } else { 4 }],
            );
            let err = stderr(&o);
            assert!(!o.status.success(), "{cmd} accepted a bad file ({field})");
            assert!(
                err.contains(&format!("{}: {field}: ", exp.display())),
                "{cmd}: message should name file and {field}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert!(!out.exists(), "{cmd} left {} behind", out.display());
        }
    }
}

#[test]
fn unwritable_output_and_missing_paths_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), VANISH);
    // A regular file where a directory must go: no permission bit involved,
    // so this holds when tests run as root too.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("out");
    let o = gradscope(&["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&blocker.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));

    let o = gradscope(&["check", "/nonexistent/exp.json"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/exp.json"),
        "{}",
        stderr(&o)
    );

    let o = gradscope(&["plot", tmp.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&tmp.path().display().to_string()),
        "{}",
        stderr(&o)
    );
}

const CNN_VANISH: &str = r#"{
  "name": "cnn-vanish",
  "dataset": { "kind": "synthetic-images", "samples": 256, "test_samples": 64, "classes": 4, "shape": [1, 8, 8] },
  "model": { "family": "cnn", "width": 4, "norm": "none", "init": "pytorch-default" },
  "variants": ["plain", "residual"],
  "depths": [14],
  "seeds": [0],
  "train": { "lr": 0.05, "momentum": 0.9, "batch_size": 32, "steps": 5, "eval_every": 5 },
  "probe": { "every": 5 }
}"#;

/// He et al. (2016) §1 and §3.1: without BN, a deep plain ReLU CNN with
/// PyTorch's default init (weight variance 1/(3·fan_in), so each layer
/// scales the gradient by about √(1/6)) passes back a gradient that shrinks
/// toward the input; the identity shortcuts of its residual twin carry it.
/// The residual ratio is not 1: it compares a 4×8×8 map with 4 logits.
#[test]
fn deep_plain_cnn_without_bn_vanishes_and_its_residual_twin_does_not() {
    let (_tmp, out) = run_ok(CNN_VANISH, &["--no-plot"]);
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let ratio = |run: &str| {
        summary_value(&rows, &h, run, "grad_first_init")
            / summary_value(&rows, &h, run, "grad_last_init")
    };
    let (plain, res) = (ratio("plain-d14-s0"), ratio("residual-d14-s0"));
    assert!(plain < 1e-4, "plain first/last {plain:e}");
    assert!(res > 1e-2, "residual first/last {res:e}");
    assert!(res / plain > 1e3);
    // Every convolution and every block output is a probe point: 13 convs,
    // 6 block outputs and the fc layer; block outputs carry no weight row.
    let (_, g) = read_csv(&out.join("runs/plain-d14-s0/gradients.csv"));
    let at0: Vec<&Vec<String>> = g.iter().filter(|r| r[0] == "0").collect();
    assert_eq!(at0.iter().filter(|r| r[3] == "output").count(), 20);
    assert_eq!(at0.iter().filter(|r| r[3] == "weight").count(), 14);
    assert!(at0.iter().any(|r| r[2] == "block06.out"));
}

/// A residual CNN-8 learns the texture task far below chance (75%).
#[test]
fn tiny_cnn_learns_a_synthetic_image_task() {
    let body = CNN_VANISH
        .replace(
            r#""norm": "none", "init": "pytorch-default""#,
            r#""norm": "batchnorm""#,
        )
        .replace(r#"["plain", "residual"]"#, r#"["residual"]"#)
        .replace("[14]", "[8]")
        .replace(r#""lr": 0.05"#, r#""lr": 0.1, "lr_milestones": [200]"#)
        .replace(
            r#""steps": 5, "eval_every": 5"#,
            r#""steps": 300, "eval_every": 100"#,
        )
        .replace(r#""every": 5"#, r#""every": 50"#);
    let (_tmp, out) = run_ok(&body, &["--no-plot"]);
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let train = summary_value(&rows, &h, "residual-d8-s0", "final_train_error");
    assert!(train < 0.1, "train error {train}");
    // The response of each 3x3 conv is recorded (7 convs in a CNN-8).
    let (_, a) = read_csv(&out.join("runs/residual-d8-s0/activations.csv"));
    assert_eq!(a.iter().filter(|r| r[0] == "0").count(), 7);
}

/// The CIFAR-10 reader and the He et al. recipe on generated files: warm-up
/// lr until the training error falls below the bar, then the base lr, then
/// divided by 10 at the milestone; validation carved from train; augmentation.
#[test]
fn cifar_recipe_runs_on_generated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cifar");
    write_cifar(&data, 20);
    let body = format!(
        r#"{{
      "name": "cifar-recipe",
      "dataset": {{ "kind": "cifar10", "dir": {:?}, "validation": 20, "augment": true }},
      "model": {{ "family": "cnn", "width": 4, "shortcut": "a" }},
      "variants": ["residual"], "depths": [8], "seeds": [0],
      "train": {{ "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 16, "steps": 24,
                  "lr_milestones": [16], "warmup": {{ "lr": 0.01, "until_train_error": 1.0 }},
                  "eval_every": 4, "log_every": 4 }},
      "probe": {{ "every": 8 }}
    }}"#,
        data
    );
    let (_t, out) = run_ok(&body, &["--no-plot"]);
    let (_, m) = read_csv(&out.join("runs/residual-d8-s0/metrics.csv"));
    let lr_at = |step: &str| -> f64 {
        m.iter().find(|r| r[0] == step && r[2] == "train").unwrap()[5]
            .parse()
            .unwrap()
    };
    // Steps 1-4 run at the warm-up lr; any error is below 1.0, so the
    // warm-up ends at the first train row and the base lr follows.
    assert_eq!(lr_at("4"), 0.01);
    assert_eq!(lr_at("8"), 0.1);
    assert!(
        (lr_at("24") - 0.01).abs() < 1e-9,
        "after the milestone at 16"
    );
    // 100 train records - 20 held out = 80 → 5 steps per epoch at batch 16.
    let epoch: f64 = m.iter().find(|r| r[0] == "20" && r[2] == "train").unwrap()[1]
        .parse()
        .unwrap();
    assert!((epoch - 4.0).abs() < 1e-9, "epoch {epoch}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("runs/residual-d8-s0/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["status"], "completed");
}

/// Missing or corrupt dataset files and impossible shapes are refused
/// before any run folder exists, with the file or field named.
#[test]
fn bad_data_and_shapes_fail_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let truncated = tmp.path().join("trunc");
    write_cifar(&truncated, 3);
    let f = truncated.join("data_batch_2.bin");
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let cases = [
        (CNN_VANISH.replace(r#""kind": "synthetic-images", "samples": 256, "test_samples": 64, "classes": 4, "shape": [1, 8, 8]"#, &format!(r#""kind": "fashion-mnist", "dir": {missing:?}"#)), "dataset-fashion-mnist".to_string()),
        (CNN_VANISH.replace(r#""kind": "synthetic-images", "samples": 256, "test_samples": 64, "classes": 4, "shape": [1, 8, 8]"#, &format!(r#""kind": "cifar10", "dir": {truncated:?}"#)), f.display().to_string()),
        (CNN_VANISH.replace("[1, 8, 8]", "[1, 2, 2]"), "too small".to_string()),
        (CNN_VANISH.replace("[14]", "[15]"), "depths[0]".to_string()),
    ];
    for (body, needle) in cases {
        let exp = experiment(tmp.path(), &body);
        let out = tmp.path().join("out");
        let o = gradscope(&[
            "run",
            exp.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--threads",
            "1",
        ]);
        let err = stderr(&o);
        assert!(!o.status.success(), "accepted: {needle}");
        assert!(err.contains(&needle), "should mention {needle}: {err}");
        assert!(
            err.contains(&exp.display().to_string()),
            "should name the experiment file: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "left {} behind", out.display());
    }
}

/// `bench-one` times the real training loop and reports one JSON line; the
/// numbers are not asserted (speed belongs to `make bench`), only that the
/// measurement is well formed.
#[test]
fn bench_one_reports_a_measurement() {
    let o = gradscope(&[
        "bench-one",
        "--workload",
        "mlp-residual",
        "--probe",
        "every",
        "--steps",
        "10",
        "--warmup",
        "10",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(v["side"], "gradscope");
    assert_eq!(v["workload"], "mlp-residual");
    assert_eq!(v["steps"], 10);
    assert!(v["steps_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["peak_rss_mb"].as_f64().unwrap() > 0.0);
    // The floor (issue 14): a read of every probed tensor takes some time.
    assert!(v["floor_ms"].as_f64().is_some_and(|f| f > 0.0), "{v}");
    // Every step probed: probed steps' times, no plain ones.
    assert!(v["probed_step_ms"].as_f64().is_some_and(|f| f > 0.0), "{v}");
    assert!(v["unprobed_step_ms"].is_null(), "{v}");
    let o = gradscope(&[
        "bench-one",
        "--workload",
        "vit",
        "--probe",
        "every",
        "--steps",
        "10",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("vit"),
        "{}",
        stderr(&o)
    );
}

/// gradscope's probe points match the PyTorch reference's hooks, counted by
/// PyTorch itself (bench/pytorch_reference.py --check): the same network has
/// the same places where dL/dh is read. Needs the venv `make test` installs.
#[test]
fn probe_points_match_the_pytorch_reference() {
    let Some(venv) = std::env::var_os("VIRTUAL_ENV") else {
        panic!("VIRTUAL_ENV is unset: run through `make test`, which installs torch in a venv");
    };
    let python = Path::new(&venv).join("bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/pytorch_reference.py");
    let reference = |workload: &str| -> serde_json::Value {
        let o = Command::new(&python)
            .args([
                script.to_str().unwrap(),
                "--workload",
                workload,
                "--check",
                "--threads",
                "1",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let line = String::from_utf8_lossy(&o.stdout);
        serde_json::from_str(line.trim()).unwrap()
    };
    for (workload, depth) in [("cnn20", 20), ("mlp-plain", 32)] {
        let v = reference(workload);
        // gradscope's side: run one probed step and count its rows at step 0.
        let body = if workload == "cnn20" {
            CNN_VANISH
                .replace("[1, 8, 8]", "[1, 28, 28]")
                .replace(
                    r#""width": 4, "norm": "none", "init": "pytorch-default""#,
                    r#""width": 16"#,
                )
                .replace("[14]", "[20]")
        } else {
            VANISH
                .replace(r#""features": 16"#, r#""features": 784"#)
                .replace(
                    r#""width": 16, "activation": "sigmoid""#,
                    r#""width": 128, "activation": "relu""#,
                )
                .replace("[16]", "[32]")
        }
        .replace(r#"["plain", "residual"]"#, r#"["residual"]"#)
        .replace(r#""steps": 5"#, r#""steps": 1"#)
        .replace(r#""steps": 20"#, r#""steps": 1"#);
        let (_tmp, out) = run_ok(&body, &["--no-plot"]);
        let (_, g) = read_csv(&out.join(format!("runs/residual-d{depth}-s0/gradients.csv")));
        let count = |kind: &str| g.iter().filter(|r| r[0] == "0" && r[3] == kind).count() as u64;
        assert_eq!(
            count("output"),
            v["output_points"].as_u64().unwrap(),
            "{workload}: dL/dh points"
        );
        assert_eq!(
            count("weight"),
            v["weights"].as_u64().unwrap(),
            "{workload}: weight gradients"
        );
    }
    // The bench's LSTM (issue 34), unrolled on both sides: h_t and c_t at
    // each of 100 steps and the head; W_hh's and the head's gradients, then
    // each of the 8 gate blocks of W_ih and W_hh.
    let v = reference("lstm");
    let lstm = r#"{ "name": "lstm", "task": "regression",
        "dataset": { "kind": "adding", "samples": 64, "test_samples": 16, "seed": 1 },
        "model": { "family": "rnn", "width": 128, "cell": "lstm" },
        "variants": ["plain"], "depths": [100], "seeds": [0],
        "train": { "lr": 0.01, "momentum": 0.9, "batch_size": 64, "steps": 1, "eval_every": 1 },
        "probe": { "every": 1 } }"#;
    let (_tmp, out) = run_ok(lstm, &["--no-plot"]);
    let (_, g) = read_csv(&out.join("runs/plain-d100-s0/gradients.csv"));
    let count = |kind: &str| g.iter().filter(|r| r[0] == "0" && r[3] == kind).count() as u64;
    assert_eq!(count("output"), v["output_points"].as_u64().unwrap());
    assert_eq!(count("output"), 201);
    assert_eq!(count("weight"), v["weights"].as_u64().unwrap());
    assert_eq!(count("weight"), 10);
    // The bench's transformer (issue 35), attention written out on both
    // sides: dL/dh at the embedding, at W_o's, fc1's and fc2's outputs and
    // the block output of each of 6 blocks, and at the head; the
    // embedding's and head's gradients and 6 per block (q, k, v, W_o, fc1,
    // fc2).
    let v = reference("transformer");
    let transformer = r#"{ "name": "transformer",
        "dataset": { "kind": "sort", "samples": 64, "test_samples": 16, "length": 32, "vocab": 16, "seed": 1 },
        "model": { "family": "transformer", "width": 128, "heads": 4, "mlp_ratio": 4 },
        "variants": ["pre-ln"], "depths": [6], "seeds": [0],
        "train": { "lr": 0.01, "momentum": 0.9, "batch_size": 64, "steps": 1, "eval_every": 1 },
        "probe": { "every": 1 } }"#;
    let (_tmp, out) = run_ok(transformer, &["--no-plot"]);
    let (_, g) = read_csv(&out.join("runs/pre-ln-d6-s0/gradients.csv"));
    let count = |kind: &str| g.iter().filter(|r| r[0] == "0" && r[3] == kind).count() as u64;
    assert_eq!(count("output"), v["output_points"].as_u64().unwrap());
    assert_eq!(count("output"), 2 + 4 * 6);
    assert_eq!(count("weight"), v["weights"].as_u64().unwrap());
    assert_eq!(count("weight"), 2 + 6 * 6);
}

/// A tiny sigmoid sweep, plain and residual at two depths, for the report
/// tests: 4 runs of 20 steps.
fn report_sweep(extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    run_ok(&VANISH.replace("[16]", "[4, 8]"), extra)
}

fn report(out: &Path) -> (Output, String) {
    let o = gradscope(&["report", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(out.join("report.md")).unwrap_or_default();
    (o, text)
}

/// Sets `final.train_error` (or any top-level field) of a run's run.json.
fn edit_run_json(out: &Path, run: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = out.join("runs").join(run).join("run.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// `gradscope report` on a complete sweep: the experiment, how to rerun it,
/// one table row per variant × depth, the gradient verdict that the quickstart
/// physics predicts (a deep sigmoid plain net vanishes), and every chart
/// linked by a relative path that exists.
#[test]
fn report_describes_a_complete_sweep() {
    let (tmp, out) = report_sweep(&[]);
    let (o, md) = report(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).is_empty(),
        "no problems expected: {}",
        stderr(&o)
    );
    assert!(md.starts_with("# Report: vanish\n"), "{md}");
    let exp = tmp.path().join("exp.json");
    assert!(
        md.contains(&format!(
            "gradscope run {} --out {}",
            exp.display(),
            out.display()
        )),
        "rerun command missing:\n{md}"
    );
    for row in [
        "| plain | 4 | 0 |",
        "| plain | 8 | 0 |",
        "| residual | 8 | 0 |",
    ] {
        assert!(md.contains(row), "no row {row}:\n{md}");
    }
    assert!(md.contains("1 completed"));
    assert!(!md.contains("Missing or unfinished"));
    // Depth 8 sigmoid with the old init: the plain gradient vanishes at init
    // (see the quickstart table), the residual one does not.
    assert!(
        md.contains("the plain net's decay at initialization is")
            && md.contains("vanishing toward the input"),
        "{md}"
    );
    assert!(md.contains("does not apply"), "no BatchNorm here:\n{md}");
    assert!(
        md.contains("Glorot & Bengio 2010"),
        "sigmoid MLP section:\n{md}"
    );
    // Every image link resolves, and all eight charts are there.
    let links: Vec<&str> = md
        .split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
        .collect();
    // The eight of every family and the mlp family's forward_signal.
    assert_eq!(links.len(), 9, "{links:?}");
    for l in links {
        assert!(l.starts_with("plots/"), "{l} is not relative to the report");
        assert!(out.join(l).is_file(), "{l} does not exist");
    }
}

/// A damaged directory still gets a report, exit 0, with every problem
/// named: a run without run.json, one still marked running, one failed, and
/// a planned run that has no folder. Charts missing (--no-plot) are drawn first.
/// Issue 11, §3: a plain BatchNorm MLP sweep. Every weight row carries ‖W‖
/// and ‖∇W‖/‖W‖ (checked against the row's own l2), and the report judges
/// He et al. §4.1 on the scale-free ‖∇W‖·‖W‖ and says which way it reads.
#[test]
fn batchnorm_report_judges_he_4_1_on_the_scale_free_measure() {
    let body = r#"{
      "name": "bn",
      "dataset": { "kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 8 },
      "model": { "family": "mlp", "width": 16, "activation": "relu", "norm": "batchnorm", "init": "kaiming" },
      "variants": ["plain", "residual"],
      "depths": [4, 12],
      "seeds": [0],
      "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 32, "steps": 40, "eval_every": 20 },
      "probe": { "every": 10, "dense_steps": 5 }
    }"#;
    let (_tmp, out) = run_ok(body, &["--no-plot"]);
    let (h, rows) = read_csv(&out.join("runs/plain-d12-s0/gradients.csv"));
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let weights: Vec<&Vec<String>> = rows.iter().filter(|r| r[col("kind")] == "weight").collect();
    assert_eq!(
        weights.len(),
        12 * 9,
        "12 weights at steps 0-4, 10, 20, 30, 39"
    );
    for r in &weights {
        let l2: f64 = r[col("l2")].parse().unwrap();
        let norm: f64 = r[col("weight_norm")].parse().unwrap();
        let relative: f64 = r[col("relative")].parse().unwrap();
        assert!(norm > 0.0);
        assert!((relative - l2 / norm).abs() <= 1e-5 * relative, "{r:?}");
    }
    assert!(rows
        .iter()
        .filter(|r| r[col("kind")] == "output")
        .all(|r| r[col("weight_norm")].is_empty()));
    let (o, md) = report(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(md.contains("‖∇W‖·‖W‖"), "{md}");
    assert!(
        md.contains("our data agree with He et al.") || md.contains("our data do not agree"),
        "{md}"
    );
    assert!(md.contains("| 12 |"), "{md}");
}

#[test]
fn report_marks_missing_and_partial_runs() {
    let (_tmp, out) = report_sweep(&["--no-plot"]);
    std::fs::remove_file(out.join("runs/plain-d4-s0/run.json")).unwrap();
    edit_run_json(&out, "residual-d4-s0", |v| {
        v["status"] = "running".into();
        v["final"]["train_error"] = serde_json::Value::Null;
    });
    std::fs::remove_dir_all(out.join("runs/residual-d8-s0")).unwrap();
    edit_run_json(&out, "plain-d8-s0", |v| {
        v["status"] = "failed".into();
        v["error"] = "libtorch: out of memory".into();
    });
    let (o, md) = report(&out);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for (run, what) in [
        ("plain-d4-s0", "no run.json"),
        ("residual-d4-s0", "status running"),
        ("residual-d8-s0", "no folder"),
        ("plain-d8-s0", "failed: libtorch: out of memory"),
    ] {
        let needle = format!("{run}: ");
        assert!(
            err.lines().any(|l| l.contains(&needle) && l.contains(what)),
            "stderr should say {run}: … {what}: {err}"
        );
        assert!(
            md.lines().any(|l| l.contains(&needle) && l.contains(what)),
            "report should say {run}: … {what}:\n{md}"
        );
    }
    assert!(md.contains("**1 running**"), "{md}");
    assert!(md.contains("**1 not started**"), "{md}");
    // No depth has a completed run left, so no trend is claimed.
    assert!(
        md.contains("Fewer than two depths have completed runs"),
        "{md}"
    );
    // The charts were missing and are drawn now.
    assert!(out.join("plots/saturation_vs_step.png").is_file());
}

/// The verdict follows the numbers: the same files, with final training
/// errors edited. These sigmoid nets' gradient vanishes (issue 30), so a
/// plain error that rises with depth is named as vanishing, never as He et
/// al.'s degradation; a flat one is no degradation, the mechanism still
/// named.
#[test]
fn report_verdict_follows_the_final_errors() {
    let (_tmp, out) = report_sweep(&["--no-plot"]);
    let set =
        |run: &str, e: f64| edit_run_json(&out, run, |v| v["final"]["train_error"] = e.into());
    set("plain-d4-s0", 0.10);
    set("plain-d8-s0", 0.30);
    set("residual-d4-s0", 0.10);
    set("residual-d8-s0", 0.10);
    let (o, md) = report(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        md.contains("10.00% at depth 4 → 30.00% at depth 8 (+20.00 points"),
        "{md}"
    );
    assert!(md.contains("**this is not degradation**"), "{md}");
    assert!(md.contains("vanishing gradient"), "{md}");
    assert!(!md.contains("This is the degradation problem"), "{md}");
    assert!(!md.contains("does not show the expected effect"), "{md}");

    set("plain-d8-s0", 0.105);
    let (_, md) = report(&out);
    assert!(
        md.contains("so this sweep shows no degradation; the probe shows vanishing"),
        "{md}"
    );
}

/// Not a results directory: non-zero exit, the path named, no panic, and
/// nothing written.
#[test]
fn report_refuses_what_is_not_a_results_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    for (dir, needle) in [
        (missing.as_path(), "no such results directory"),
        (tmp.path(), "has no runs/ folder"),
    ] {
        let o = gradscope(&["report", dir.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(!o.status.success(), "accepted {}", dir.display());
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!dir.join("report.md").exists());
    }
}

/// Issue 31's "done when": a file sweeping `train.lr`, with Adam, an
/// orthogonal init and the variants plain, residual, rezero and highway
/// passes `check` (which names the sweep) and runs end to end: one run per
/// variant, lr and depth, named by its lr, a `train.lr` column in
/// summary.csv, `swept` in run.json, the pre-clip gradient norm in
/// metrics.csv, and a report whose sweep table has a row per lr.
#[test]
fn a_research_knobs_file_checks_and_runs() {
    let body = r#"{
      "name": "knobs",
      "dataset": { "kind": "synthetic", "samples": 64, "classes": 3, "features": 6 },
      "model": { "family": "mlp", "width": 8, "activation": "relu", "init": "orthogonal" },
      "variants": ["plain", "residual", "rezero", "highway"],
      "depths": [3, 6],
      "seeds": [0],
      "train": { "lr": [0.01, 0.1], "optimizer": "adam", "batch_size": 16, "steps": 4,
                 "eval_every": 2, "clip_grad_norm": 5, "warmup": {"steps": 2} },
      "probe": { "every": 2 }
    }"#;
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), body);
    let o = gradscope(&["check", exp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("sweeps train.lr over 0.01, 0.1"), "{text}");
    assert!(text.contains("16 runs"), "{text}");

    let (_tmp, out) = run_ok(body, &["--no-plot"]);
    let (h, rows) = read_csv(&out.join("summary.csv"));
    assert_eq!(h[..3], ["run", "variant", "train.lr"]);
    assert_eq!(rows.len(), 16);
    assert!(rows
        .iter()
        .all(|r| r[h.iter().position(|c| c == "status").unwrap()] == "completed"));
    for run in ["rezero-lr0.1-d6-s0", "highway-lr0.01-d3-s0"] {
        let dir = out.join("runs").join(run);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        let lr = run.split("-lr").nth(1).unwrap().split('-').next().unwrap();
        assert_eq!(json["swept"]["train.lr"], lr, "{run}");
        assert_eq!(
            json["config"]["train"]["lr"],
            serde_json::json!([0.01, 0.1])
        );
        let (mh, mrows) = read_csv(&dir.join("metrics.csv"));
        let at = mh.iter().position(|c| c == "grad_norm").unwrap();
        assert!(mrows
            .iter()
            .filter(|r| r[2] == "train")
            .all(|r| r[at].parse::<f64>().is_ok_and(|v| v > 0.0)));
    }
    let o = gradscope(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Issue 37: it says where both pages are, the one to open in a browser too.
    let printed: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(
        printed,
        [
            out.join("report.md").display().to_string(),
            out.join("report.html").display().to_string()
        ]
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("| variant | depth | train.lr |"),
        "{report}"
    );
    assert!(report.contains("| highway | 6 | 0.1 |"), "{report}");
}
