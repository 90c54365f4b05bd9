//! `gradscope lesion` end to end (issue 33): a tiny CNN and its residual
//! twin trained with `save_weights`, their lesions and paths, the summary,
//! the charts and the report section; and its bad input.

mod common;

use common::{column, gradscope, read_csv, run_ok, stderr};
use std::collections::BTreeSet;

const TINY_CNN: &str = r#"{
  "name": "tiny-lesion",
  "dataset": { "kind": "synthetic-images", "samples": 96, "test_samples": 32, "classes": 3, "shape": [1, 8, 8] },
  "model": { "family": "cnn", "width": 4, "norm": "batchnorm", "init": "kaiming" },
  "variants": ["plain", "residual"],
  "depths": [14],
  "seeds": [0],
  "train": { "lr": 0.05, "momentum": 0.9, "batch_size": 32, "steps": 20, "eval_every": 20,
             "save_weights": true },
  "probe": { "every": 10 }
}"#;

/// He et al.'s CNN-14 has 6 blocks, 4 of one shape within their stage
/// (Veit et al. delete only those): 1 intact row, 4 single deletions, 4
/// values of k × 2 draws, and one swapped pair × 2 draws (blocks 0 and 1
/// are the only two of one shape: 3 and 5 are alone in their stages).
#[test]
fn lesions_and_paths_of_a_trained_pair_with_summary_charts_and_report() {
    let (_tmp, out) = run_ok(TINY_CNN, &["--no-plot"]);
    let runs = out.join("runs");
    let (plain, residual) = (runs.join("plain-d14-s0"), runs.join("residual-d14-s0"));
    let o = gradscope(&[
        "lesion",
        plain.to_str().unwrap(),
        residual.to_str().unwrap(),
        "--samples",
        "32",
        "--per-k",
        "2",
        "--batch",
        "16",
        "--threads",
        "1",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (header, rows) = read_csv(&plain.join("lesion.csv"));
    assert_eq!(
        header,
        [
            "lesion",
            "blocks",
            "k",
            "sample",
            "train_error",
            "test_error",
            "train_loss"
        ]
    );
    let kinds = |kind: &str| rows.iter().filter(|r| r[0] == kind).count();
    assert_eq!(kinds("none"), 1);
    assert_eq!(kinds("delete"), 4);
    assert_eq!(kinds("delete_k"), 4 * 2);
    assert_eq!(kinds("swap"), 2);
    assert!(rows
        .iter()
        .filter(|r| r[0] == "swap")
        .all(|r| r[1] == "0-1"));
    // The downsampling blocks (2 and 4) are never deleted.
    let deleted: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r[0] == "delete")
        .map(|r| r[1].as_str())
        .collect();
    assert_eq!(deleted, BTreeSet::from(["0", "1", "3", "5"]));
    // Deleting every deletable block is one draw of k = 4, whatever the seed.
    assert!(rows.iter().any(|r| r[0] == "delete_k" && r[1] == "0 1 3 5"));
    for r in &rows {
        let e: f64 = r[column(&header, "test_error")].parse().unwrap();
        assert!((0.0..=1.0).contains(&e), "{r:?}");
    }

    // Paths only for the residual net: k = 0..=6, C(6, k) of each.
    assert!(!plain.join("paths.csv").exists());
    let (ph, prows) = read_csv(&residual.join("paths.csv"));
    assert_eq!(
        ph,
        [
            "weights",
            "k",
            "paths",
            "measured",
            "mean_grad",
            "total",
            "full_grad"
        ]
    );
    assert_eq!(prows.len(), 2 * 7, "trained and init, k = 0..=6");
    let counts: Vec<f64> = prows[..7].iter().map(|r| r[2].parse().unwrap()).collect();
    assert_eq!(counts, [1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0]);
    assert!(prows[..7].iter().all(|r| r[0] == "trained"));
    assert!(prows[7..].iter().all(|r| r[0] == "init"));

    let (sh, srows) = read_csv(&out.join("lesion_summary.csv"));
    assert_eq!(srows.len(), 2);
    assert_eq!(srows[0][column(&sh, "run")], "plain-d14-s0");
    assert_eq!(srows[0][column(&sh, "deletable")], "4");
    assert_eq!(
        srows[0][column(&sh, "effective_lo")],
        "",
        "a plain net has no paths"
    );
    assert_ne!(srows[1][column(&sh, "effective_lo")], "");
    for name in ["lesion_single", "lesion_k", "path_gradient"] {
        for ext in ["png", "svg"] {
            let f = out.join("plots").join(format!("{name}.{ext}"));
            assert!(
                f.metadata().is_ok_and(|m| m.len() > 1000),
                "{}",
                f.display()
            );
        }
    }
    let o = gradscope(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Lesions and paths (Veit et al. 2016)"),
        "{md}"
    );
    assert!(md.contains("- Depth 14: the plain net "), "{md}");
    assert!(md.contains("![lesion_k](plots/lesion_k.png)"), "{md}");

    // Bad input, one clear line each, and nothing written.
    let o = gradscope(&[
        "lesion",
        plain.to_str().unwrap(),
        "--max-k",
        "5",
        "--device",
        "cpu",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--max-k: 5 is more than the 4 blocks run plain-d14-s0 can delete"),
        "{e}"
    );
    std::fs::remove_file(residual.join("model.ot")).unwrap();
    let o = gradscope(&["lesion", residual.to_str().unwrap(), "--device", "cpu"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("model.ot"), "{}", stderr(&o));
    let o = gradscope(&[
        "lesion",
        out.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a run folder"), "{}", stderr(&o));
}

const TINY_INCEPTION: &str = r#"{
  "name": "tiny-inception-lesion",
  "dataset": { "kind": "synthetic-images", "samples": 32, "test_samples": 16, "classes": 3, "shape": [1, 16, 16] },
  "model": { "family": "inception", "width": 4 },
  "variants": ["plain"],
  "depths": [2],
  "seeds": [0],
  "train": { "lr": 0.05, "batch_size": 16, "steps": 2, "eval_every": 2, "save_weights": true },
  "probe": { "every": 1 }
}"#;

/// Families whose blocks a lesion cannot address are refused by name.
#[test]
fn an_inception_run_is_refused_by_name() {
    let (_tmp, out) = run_ok(TINY_INCEPTION, &["--no-plot"]);
    let run = out.join("runs").join("plain-d2-s0");
    let o = gradscope(&["lesion", run.to_str().unwrap(), "--device", "cpu"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("the inception family has no lesions or paths"),
        "{e}"
    );
    assert!(!run.join("lesion.csv").exists());
    assert!(!out.join("lesion_summary.csv").exists());
}
