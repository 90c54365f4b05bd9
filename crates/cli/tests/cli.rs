//! End-to-end tests of the `gradscope` binary on tiny synthetic experiments
//! (width ≤ 16, depth ≤ 16, one thread). Each test is its own process under
//! nextest, so libtorch's global RNG and thread count are never shared.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gradscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradscope")).args(args).output().expect("the gradscope binary starts")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny experiment; `edit` changes the JSON text before it is written.
fn experiment(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("exp.json");
    std::fs::write(&path, body).unwrap();
    path
}

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

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r.records().map(|rec| rec.unwrap().iter().map(String::from).collect()).collect();
    (header, rows)
}

fn summary_value(rows: &[Vec<String>], header: &[String], run: &str, column: &str) -> f64 {
    let col = header.iter().position(|h| h == column).unwrap_or_else(|| panic!("no column {column}"));
    let row = rows.iter().find(|r| r[0] == run).unwrap_or_else(|| panic!("no run {run}"));
    row[col].parse().unwrap_or_else(|_| panic!("{run}.{column} = {:?}", row[col]))
}

/// Glorot & Bengio (2010) §4.2 and He et al. (2016) §1: in a deep sigmoid
/// plain net the back-propagated gradient shrinks layer by layer (σ' ≤ 1/4),
/// so at initialization the first layer's ‖dL/dh‖ is orders of magnitude
/// below the last's; the identity shortcut carries it through unchanged.
#[test]
fn deep_sigmoid_plain_net_vanishes_and_its_residual_twin_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), VANISH);
    let out = tmp.path().join("out");
    let o = gradscope(&["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--threads", "1", "--device", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let plain = summary_value(&rows, &h, "plain-d16-s0", "grad_first_init") / summary_value(&rows, &h, "plain-d16-s0", "grad_last_init");
    let res = summary_value(&rows, &h, "residual-d16-s0", "grad_first_init") / summary_value(&rows, &h, "residual-d16-s0", "grad_last_init");
    assert!(plain < 1e-2, "plain first/last = {plain:e}, expected ≤ 1e-2");
    assert!((0.1..=10.0).contains(&res), "residual first/last = {res}, expected within 10× of 1");

    // The same ratio, read from gradients.csv directly, so the summary is
    // checked against the raw rows.
    let (gh, grows) = read_csv(&out.join("runs/plain-d16-s0/gradients.csv"));
    assert_eq!(gh, ["step", "layer", "name", "kind", "l2", "rms"]);
    let at0: Vec<&Vec<String>> = grows.iter().filter(|r| r[0] == "0" && r[3] == "output").collect();
    assert_eq!(at0.len(), 16, "one output row per layer at step 0");
    assert_eq!(at0[0][2], "layer00.linear");
    assert_eq!(at0[15][2], "layer15.linear");
    let first: f64 = at0[0][4].parse().unwrap();
    let last: f64 = at0[15][4].parse().unwrap();
    assert!(first / last < 1e-2);

    // Every chart is drawn from the real run output.
    for chart in ["train_error_vs_step", "error_vs_depth", "gradient_profile", "gradient_vs_step"] {
        for ext in ["png", "svg"] {
            let f = out.join("plots").join(format!("{chart}.{ext}"));
            assert!(f.metadata().map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", f.display());
        }
    }
}

/// A 3-layer tanh MLP must learn the 4-class teacher task far below chance
/// (75% error): the loop, loss and optimizer work together.
#[test]
fn small_net_learns_the_synthetic_task() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), LEARN);
    let out = tmp.path().join("out");
    let o = gradscope(&["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--threads", "1", "--no-plot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let train = summary_value(&rows, &h, "plain-d3-s0", "final_train_error");
    let test = summary_value(&rows, &h, "plain-d3-s0", "final_test_error");
    assert!(train < 0.15, "train error {train}");
    assert!(test < 0.35, "test error {test}");
    // The on-the-fly curve falls: last train row below the first.
    let (_, m) = read_csv(&out.join("runs/plain-d3-s0/metrics.csv"));
    let train_rows: Vec<f64> = m.iter().filter(|r| r[2] == "train").map(|r| r[4].parse().unwrap()).collect();
    assert!(train_rows.last().unwrap() < train_rows.first().unwrap());
}

/// The files match the contract of DESIGN.md ("Files it writes").
#[test]
fn files_follow_the_design_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), &LEARN.replace("\"steps\": 400", "\"steps\": 30").replace("\"every\": 100", "\"every\": 10"));
    let out = tmp.path().join("out");
    let o = gradscope(&["run", exp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--threads", "1", "--no-plot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = out.join("runs/plain-d3-s0");
    assert_eq!(read_csv(&run.join("metrics.csv")).0, ["step", "epoch", "split", "loss", "error", "lr", "elapsed_s"]);
    assert_eq!(read_csv(&run.join("gradients.csv")).0, ["step", "layer", "name", "kind", "l2", "rms"]);
    let (ah, arows) = read_csv(&run.join("activations.csv"));
    assert_eq!(ah, ["step", "layer", "name", "mean", "std", "saturation"]);
    // Probed at steps 0, 10, 20 and the last step (29).
    let steps: std::collections::BTreeSet<&str> = arows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(steps.into_iter().collect::<Vec<_>>(), ["0", "10", "20", "29"]);

    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    for key in ["config", "status", "final", "params", "steps_done", "elapsed_s", "device", "threads", "versions"] {
        assert!(json.get(key).is_some(), "run.json lacks {key}");
    }
    assert_eq!(json["status"], "completed");
    assert_eq!(json["steps_done"], 30);
    assert_eq!(json["threads"], 1);
    assert_eq!(json["device"], "cpu");
    // 8*16+16 + 16*16+16 + 16*4+4
    assert_eq!(json["params"], 484);
    assert_eq!(json["versions"]["tch"], "0.24.0");
    assert!(json["versions"]["libtorch"].as_str().unwrap().starts_with("2.11.0"), "{}", json["versions"]);
    for key in ["train_loss", "train_error", "test_loss", "test_error"] {
        let v = json["final"][key].as_f64().unwrap_or_else(|| panic!("final.{key}"));
        assert!(v.is_finite() && v >= 0.0);
    }
    let (sh, _) = read_csv(&out.join("summary.csv"));
    for col in ["variant", "depth", "seed", "status", "final_train_error", "final_test_error", "final_train_loss", "final_test_loss", "grad_first_init", "grad_last_final"] {
        assert!(sh.iter().any(|h| h == col), "summary.csv lacks {col}");
    }
}

/// Bad experiment files: non-zero exit, a message naming the file and the
/// field, no panic, and no run directory left behind.
#[test]
fn bad_experiments_fail_cleanly_naming_file_and_field() {
    let cases = [
        ("{ not json", "."),
        (&*VANISH.replace("\"seeds\": [0]", "\"seeds\": [0], \"sedes\": [1]"), "sedes"),
        (&*VANISH.replace("\"depths\": [16]", "\"depths\": [1]"), "depths[0]"),
        (&*VANISH.replace("\"depths\": [16]", "\"depths\": []"), "depths"),
        (&*VANISH.replace("\"lr\": 0.1", "\"lr\": 0"), "train.lr"),
        (&*VANISH.replace("\"batch_size\": 32", "\"batch_size\": 0"), "train.batch_size"),
        (&*VANISH.replace("\"sigmoid\"", "\"swish\""), "model.activation"),
    ];
    for (body, field) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let exp = experiment(tmp.path(), body);
        let out = tmp.path().join("out");
        for cmd in ["check", "run"] {
            let o = gradscope(&[cmd, exp.to_str().unwrap(), "--out", out.to_str().unwrap()][..if cmd == "check" { 2 } else { 4 }]);
            let err = stderr(&o);
            assert!(!o.status.success(), "{cmd} accepted a bad file ({field})");
            assert!(err.contains(&format!("{}: {field}: ", exp.display())), "{cmd}: message should name file and {field}: {err}");
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
    assert!(stderr(&o).contains(&blocker.display().to_string()), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));

    let o = gradscope(&["check", "/nonexistent/exp.json"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/exp.json"), "{}", stderr(&o));

    let o = gradscope(&["plot", tmp.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&tmp.path().display().to_string()), "{}", stderr(&o));
}
