//! `gradscope landscape` end to end (issue 18): a tiny CNN and its residual
//! twin trained with `save_weights`, their loss surfaces, the summary, the
//! charts and the report section; and the library's filter normalization
//! checked against its definition (Li et al. 2018, §4).

mod common;

use common::{column, gradscope, read_csv, run_ok, stderr};
use gradscope_format::landscape::Weights;
use gradscope_train::landscape::{filter_normalized, load_run, load_run_at};
use gradscope_train::train_loop::evaluate;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tch::{Device, Kind, Tensor};

const TINY_CNN: &str = r#"{
  "name": "tiny-landscape",
  "dataset": { "kind": "synthetic-images", "samples": 96, "test_samples": 32, "classes": 3, "shape": [1, 8, 8] },
  "model": { "family": "cnn", "width": 4, "norm": "batchnorm", "init": "kaiming" },
  "variants": ["plain", "residual"],
  "depths": [8],
  "seeds": [0],
  "train": { "lr": 0.05, "momentum": 0.9, "batch_size": 32, "steps": 30, "eval_every": 30,
             "save_weights": true },
  "probe": { "every": 10 }
}"#;

/// Li et al. §4: "d_{i,j} ← d_{i,j} / ‖d_{i,j}‖ · ‖θ_{i,j}‖" for every
/// filter j of layer i; BN and bias directions are 0.
#[test]
fn filter_normalization_gives_every_filter_the_norm_of_thetas() {
    tch::manual_seed(3);
    let conv = Tensor::randn([6, 3, 3, 3], (Kind::Float, Device::Cpu)) * 0.3;
    // One filter of θ is zero: its direction must be zero too, not NaN.
    let _ = conv.get(2).zero_();
    let d = filter_normalized(&conv);
    assert_eq!(d.size(), conv.size());
    for j in 0..6 {
        let want = conv.get(j).norm().double_value(&[]);
        let got = d.get(j).norm().double_value(&[]);
        assert!(
            (got - want).abs() <= 1e-5 * want.max(1e-12),
            "filter {j}: {got} vs {want}"
        );
    }
    // The direction is random, not θ itself rescaled.
    assert!(!d.allclose(&conv, 1e-3, 1e-3, false));
    let linear = Tensor::randn([4, 10], (Kind::Float, Device::Cpu));
    let dl = filter_normalized(&linear);
    for j in 0..4 {
        let (want, got) = (
            linear.get(j).norm().double_value(&[]),
            dl.get(j).norm().double_value(&[]),
        );
        assert!((got - want).abs() <= 1e-5 * want);
    }
    let bn = Tensor::ones([6], (Kind::Float, Device::Cpu));
    assert_eq!(
        filter_normalized(&bn)
            .abs()
            .sum(Kind::Double)
            .double_value(&[]),
        0.0
    );
}

#[test]
fn landscapes_of_a_trained_pair_with_summary_charts_and_report() {
    let (_tmp, out) = run_ok(TINY_CNN, &["--no-plot"]);
    let runs = out.join("runs");
    for r in ["plain-d8-s0", "residual-d8-s0"] {
        assert!(
            runs.join(r).join("model.ot").is_file(),
            "{r}: weights saved"
        );
    }
    let o = gradscope(&[
        "landscape",
        runs.join("plain-d8-s0").to_str().unwrap(),
        runs.join("residual-d8-s0").to_str().unwrap(),
        "--grid",
        "5",
        "--span",
        "0.5",
        "--samples",
        "40",
        "--threads",
        "1",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // 5×5 rows per run, on the grid asked for.
    let (header, rows) = read_csv(&runs.join("plain-d8-s0").join("landscape.csv"));
    assert_eq!(header, ["alpha", "beta", "loss", "error"]);
    assert_eq!(rows.len(), 25);
    let (a, b, l) = (
        column(&header, "alpha"),
        column(&header, "beta"),
        column(&header, "loss"),
    );
    let alphas: Vec<f64> = rows.iter().map(|r| r[a].parse().unwrap()).collect();
    assert_eq!(alphas[..5], [-0.5, -0.25, 0.0, 0.25, 0.5]);

    // At (0, 0) the grid holds the trained weights: its loss is the loss of
    // the saved weights evaluated directly on the same images.
    let centre = rows
        .iter()
        .find(|r| r[a].parse::<f64>() == Ok(0.0) && r[b].parse::<f64>() == Ok(0.0))
        .expect("a (0, 0) point");
    let grid_loss: f64 = centre[l].parse().unwrap();
    tch::set_num_threads(1);
    let run = load_run(&runs.join("plain-d8-s0"), Device::Cpu).unwrap();
    let sample = gradscope_data::Split {
        x: run.data.train.x.narrow(0, 0, 40),
        y: run.data.train.y.narrow(0, 0, 40),
    };
    let (direct, _) = evaluate(
        run.net.as_ref(),
        &sample,
        run.record.config.task,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(
        (grid_loss - direct).abs() <= 1e-6 * direct,
        "grid centre {grid_loss} against direct {direct}"
    );
    // Moving away from trained weights raises the loss somewhere on the grid.
    let losses: Vec<f64> = rows.iter().map(|r| r[l].parse().unwrap()).collect();
    assert!(losses.iter().cloned().fold(f64::MIN, f64::max) > grid_loss);

    let (sh, srows) = read_csv(&out.join("landscape_summary.csv"));
    assert_eq!(srows.len(), 2);
    let run_col = column(&sh, "run");
    assert_eq!(srows[0][run_col], "plain-d8-s0");
    assert_eq!(srows[1][run_col], "residual-d8-s0");
    for name in ["loss_landscape", "loss_slice"] {
        for ext in ["png", "svg"] {
            let f = out.join("plots").join(format!("{name}.{ext}"));
            assert!(
                f.metadata().is_ok_and(|m| m.len() > 1000),
                "{}",
                f.display()
            );
        }
    }

    // The report has the section, its verdict at depth 8, and the charts.
    let o = gradscope(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Loss landscape (Li et al. 2018)"), "{md}");
    // One grid per net: numbers, and no verdict (issue 30 §5).
    assert!(
        md.contains(
            "- **Depth 8: the residual surface is not told apart from its twin's by any reading**"
        ),
        "{md}"
    );
    assert!(md.contains("**Too few grids for a verdict**"), "{md}");
    assert!(md.contains("![loss_landscape](plots/loss_landscape.png)"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<figure id=\"loss_landscape\">"));

    // Again for one run only: its row is replaced, the other kept.
    let small = [
        "--grid",
        "3",
        "--samples",
        "16",
        "--threads",
        "1",
        "--device",
        "cpu",
    ];
    let residual = runs.join("residual-d8-s0");
    let o = gradscope(&[&["landscape", residual.to_str().unwrap()][..], &small].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let (sh, srows) = read_csv(&out.join("landscape_summary.csv"));
    assert_eq!(srows.len(), 2);
    assert_eq!(srows[1][column(&sh, "grid")], "3");
    assert_eq!(srows[0][column(&sh, "grid")], "5");

    // Replicated (issue 30 §5): two more pairs of directions per run, each
    // a file and a summary row of its own, then the control around the
    // initial weights.
    let both = [
        runs.join("plain-d8-s0").to_str().unwrap().to_owned(),
        runs.join("residual-d8-s0").to_str().unwrap().to_owned(),
    ];
    let o = gradscope(
        &[
            &["landscape", &both[0], &both[1], "--seed", "1,2"][..],
            &small,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gradscope(
        &[
            &["landscape", &both[0], &both[1], "--at", "init"][..],
            &small,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "landscape.csv",
        "landscape-dir1.csv",
        "landscape-dir2.csv",
        "landscape-init-dir0.csv",
    ] {
        let (_, rows) = read_csv(&runs.join("plain-d8-s0").join(f));
        assert!(!rows.is_empty(), "{f}");
    }
    let (sh, srows) = read_csv(&out.join("landscape_summary.csv"));
    assert_eq!(srows.len(), 8, "2 runs × (3 trained grids + 1 at init)");
    let w = column(&sh, "weights");
    assert_eq!(srows.iter().filter(|r| r[w] == "init").count(), 2);
    let o = gradscope(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!md.contains("Too few grids"), "{md}");
    assert!(md.contains("| plain, depth 8 | trained | 3 |"), "{md}");
    assert!(md.contains("- **Depth 8 at init, the control ("), "{md}");

    // The initial weights are the run's own: rebuilt from its seed, they
    // score on the test split what training recorded at step 0.
    tch::set_num_threads(1);
    let init = load_run_at(&runs.join("plain-d8-s0"), Device::Cpu, Weights::Init).unwrap();
    let (at_init, _) = evaluate(
        init.net.as_ref(),
        &init.data.test,
        init.record.config.task,
        &AtomicBool::new(false),
    )
    .unwrap();
    let metrics = std::fs::read_to_string(runs.join("plain-d8-s0").join("metrics.csv")).unwrap();
    let step0: f64 = metrics
        .lines()
        .find(|l| l.starts_with("0,") && l.contains(",test,"))
        .and_then(|l| l.split(',').nth(3))
        .expect("a step-0 test row")
        .parse()
        .unwrap();
    assert!(
        (at_init - step0).abs() <= 1e-5 * step0,
        "rebuilt init {at_init} against step 0's {step0}"
    );
}

#[test]
fn runs_without_weights_and_bad_options_are_clear_errors() {
    let body = TINY_CNN
        .replace(r#""save_weights": true"#, r#""save_weights": false"#)
        .replace(
            r#""variants": ["plain", "residual"]"#,
            r#""variants": ["plain"]"#,
        );
    let (_tmp, out) = run_ok(&body, &["--no-plot"]);
    let run = out.join("runs").join("plain-d8-s0");
    let o = gradscope(&[
        "landscape",
        run.to_str().unwrap(),
        "--grid",
        "3",
        "--device",
        "cpu",
    ]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("model.ot") && err.contains("\"save_weights\": true"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !out.join("landscape_summary.csv").exists(),
        "nothing written"
    );
    assert!(!run.join("landscape.csv").exists(), "nothing written");

    let o = gradscope(&["landscape", run.to_str().unwrap(), "--grid", "4"]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("--grid") && err.contains("odd"),
        "{err}"
    );
    let o = gradscope(&[
        "landscape",
        out.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("run.json"), "{err}");
    let nowhere = Path::new("/nonexistent/runs/plain-d8-s0");
    let o = gradscope(&["landscape", nowhere.to_str().unwrap(), "--grid", "3"]);
    assert!(
        !o.status.success() && stderr(&o).contains("run.json"),
        "{}",
        stderr(&o)
    );
}
