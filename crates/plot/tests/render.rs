//! End-to-end tests: a small results directory written by hand (two variants
//! × two depths × two seeds, one diverged run with NaN rows, a zero
//! gradient, missing per-run files), loaded and drawn.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use gradscope_plot::{
    layer_response_stds, render_all, render_charts, PlotError, ResultsDir, ACTIVATION_MEAN_VS_STEP,
    CHART_NAMES, ERROR_VS_DEPTH, GRADIENT_PROFILE, GRADIENT_VS_STEP, LAYER_RESPONSE_STD,
    SATURATION_VS_STEP, TRAIN_ERROR_VS_STEP,
};

const SUMMARY_HEADER: &str = "run,variant,depth,seed,status,steps_done,params,final_train_loss,final_train_error,final_test_loss,final_test_error,grad_first_init,grad_last_init,grad_first_final,grad_last_final,elapsed_s";
const STEPS: [u64; 4] = [0, 10, 20, 30];
const DIVERGED: &str = "plain-d8-s1";

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create fixture dir");
    }
    fs::write(path, text).expect("write fixture file");
}

/// Writes the fixture into `root` and returns the run names.
fn fixture(root: &Path) -> Vec<String> {
    let mut summary = format!("{SUMMARY_HEADER}\n");
    let mut names = Vec::new();
    for variant in ["plain", "residual"] {
        for depth in [4u32, 8] {
            for seed in [0u64, 1] {
                let run = format!("{variant}-d{depth}-s{seed}");
                let diverged = run == DIVERGED;
                let dir = root.join("runs").join(&run);
                // Plain nets learn slower and deeper plain nets slower still,
                // so the lines differ; residual ones barely depend on depth.
                let rate = if variant == "plain" {
                    0.02 / f64::from(depth)
                } else {
                    0.02
                };

                let mut metrics = String::from("step,epoch,split,loss,error,lr,elapsed_s\n");
                for &step in &STEPS {
                    let (loss, err) = if diverged && step >= 20 {
                        ("NaN".to_owned(), "NaN".to_owned())
                    } else {
                        let e = 0.9 * (-rate * step as f64).exp() + 0.01 * seed as f64;
                        (format!("{:.4}", 2.3 * e), format!("{e:.4}"))
                    };
                    writeln!(
                        metrics,
                        "{step},0,train,{loss},{err},0.05,{}",
                        step as f64 * 0.1
                    )
                    .expect("fmt");
                    if step == 30 {
                        writeln!(metrics, "{step},0,test,{loss},{err},0.05,3.1").expect("fmt");
                    }
                }
                write(&dir.join("metrics.csv"), &metrics);

                // residual-d8-s1 never wrote gradients.csv (tolerated).
                if run != "residual-d8-s1" {
                    let mut grads = String::from("step,layer,name,kind,l2,rms\n");
                    for &step in &STEPS {
                        for layer in 0..depth {
                            // Vanishing towards the input for plain nets.
                            let decay: f64 = if variant == "plain" { 0.3 } else { 0.9 };
                            let mut l2 = format!(
                                "{:e}",
                                decay.powi((depth - 1 - layer) as i32) * (1.0 + step as f64 / 30.0)
                            );
                            if diverged && step == 30 {
                                l2 = if layer % 2 == 0 { "NaN" } else { "inf" }.to_owned();
                            }
                            if run == "plain-d8-s0" && step == 30 && layer == 0 {
                                l2 = "0".to_owned();
                            }
                            let name = format!("layer{layer:02}.linear");
                            writeln!(grads, "{step},{layer},{name},weight,{l2},0.1").expect("fmt");
                            // The charts draw rms; a file in the six-column format
                            // written before the precision fix still reads.
                            writeln!(grads, "{step},{layer},{name},output,{l2},{l2}").expect("fmt");
                        }
                    }
                    write(&dir.join("gradients.csv"), &grads);
                }

                // residual-d4-s1 never wrote activations.csv (tolerated).
                if run != "residual-d4-s1" {
                    let mut acts = String::from("step,layer,name,mean,std,saturation\n");
                    for layer in 0..depth - 1 {
                        writeln!(acts, "0,{layer},layer{layer:02}.linear,0.01,0.5,0.1")
                            .expect("fmt");
                    }
                    write(&dir.join("activations.csv"), &acts);
                }

                let (status, train_err, test_err) = if diverged {
                    ("diverged", String::new(), "NaN".to_owned())
                } else {
                    let e = 0.9 * (-rate * 30.0).exp() + 0.01 * seed as f64;
                    ("completed", format!("{e:.4}"), format!("{:.4}", e + 0.05))
                };
                writeln!(
                    summary,
                    "{run},{variant},{depth},{seed},{status},30,1000,0.5,{train_err},0.6,{test_err},1e-3,1.0,,0.9,2.5"
                )
                .expect("fmt");
                names.push(run);
            }
        }
    }
    write(&root.join("summary.csv"), &summary);
    names
}

fn expected_files(root: &Path) -> Vec<PathBuf> {
    CHART_NAMES
        .iter()
        .flat_map(|n| {
            [
                root.join("plots").join(format!("{n}.png")),
                root.join("plots").join(format!("{n}.svg")),
            ]
        })
        .collect()
}

#[test]
fn render_all_writes_every_chart_as_png_and_svg() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let written = render_all(dir.path()).expect("render_all");
    assert_eq!(written.len(), 16, "eight charts, PNG and SVG each");
    assert_eq!(written, expected_files(dir.path()));

    for path in &written {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if path.extension().is_some_and(|e| e == "png") {
            assert!(
                bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
                "{} is not a PNG",
                path.display()
            );
            // A blank 1200x500 canvas compresses to a few KiB; lines, text
            // and legends take far more.
            assert!(
                bytes.len() > 15_000,
                "{} is suspiciously small ({} bytes)",
                path.display(),
                bytes.len()
            );
        } else {
            let text = String::from_utf8(bytes).expect("SVG is UTF-8");
            assert!(text.contains("<svg"), "{} is not an SVG", path.display());
        }
    }

    // Temporary files were all renamed into place.
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("plots"))
        .expect("plots dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn svg(root: &Path, name: &str) -> String {
    fs::read_to_string(root.join("plots").join(format!("{name}.svg"))).expect("read svg")
}

#[test]
fn charts_carry_axis_labels_legends_and_diverged_marks() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    render_all(dir.path()).expect("render_all");
    let root = dir.path();

    let a = svg(root, TRAIN_ERROR_VS_STEP);
    for text in [
        "training step",
        "training error (fraction)",
        "plain",
        "residual",
        "d4",
        // One of the two d8 plain seeds diverged.
        "d8 (1/2 diverged)",
    ] {
        assert!(a.contains(text), "train_error_vs_step lacks {text:?}");
    }

    let b = svg(root, ERROR_VS_DEPTH);
    for text in [
        "depth (weight layers)",
        "final error (fraction)",
        "plain train (1/4 diverged)",
        "plain test",
        "residual train",
    ] {
        assert!(b.contains(text), "error_vs_depth lacks {text:?}");
    }

    let c = svg(root, GRADIENT_PROFILE);
    for text in [
        "layer (0 = input side)",
        "rms of dL/dh per element",
        "d8",
        "step 0",
        "step 30",
    ] {
        assert!(c.contains(text), "gradient_profile lacks {text:?}");
    }
    // The smallest seed (s0) is drawn, and it completed.
    assert!(
        !c.contains("diverged"),
        "gradient_profile drew the diverged seed"
    );

    let d = svg(root, GRADIENT_VS_STEP);
    for text in [
        "training step",
        "rms of dL/dh per element",
        "depth 8",
        "layer 0 (first)",
        "layer 4 (middle)",
        "layer 7 (last)",
    ] {
        assert!(d.contains(text), "gradient_vs_step lacks {text:?}");
    }

    let e = svg(root, LAYER_RESPONSE_STD);
    for text in [
        "layer index (responses in forward order)",
        "layer index (sorted by magnitude)",
        "std of layer response",
        "plain d4",
        "plain d8",
        "residual d4",
        "residual d8",
        "step 0, the last probed step",
    ] {
        assert!(e.contains(text), "layer_response_std lacks {text:?}");
    }
    // The smallest seed (s0) is drawn, and it completed.
    assert!(
        !e.contains("diverged"),
        "layer_response_std drew the diverged seed"
    );
}

#[test]
fn load_reads_every_file_and_tolerates_missing_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = fixture(dir.path());
    let results = ResultsDir::load(dir.path()).expect("load");
    let loaded: Vec<&str> = results
        .runs
        .iter()
        .map(|r| r.summary.run.as_str())
        .collect();
    assert_eq!(loaded, names);
    assert_eq!(results.groups(), ["plain", "residual"]);
    assert_eq!(results.depths(), [4, 8]);

    let by_name = |n: &str| {
        results
            .runs
            .iter()
            .find(|r| r.summary.run == n)
            .unwrap_or_else(|| panic!("run {n} missing"))
    };
    let diverged = by_name(DIVERGED);
    assert!(diverged.summary.is_diverged());
    // Empty summary field -> None; "NaN" -> Some(NaN).
    assert_eq!(diverged.summary.final_train_error, None);
    assert!(diverged.summary.final_test_error.is_some_and(f64::is_nan));
    assert_eq!(diverged.summary.grad_first_final, None);
    let metrics = diverged.metrics.as_ref().expect("metrics.csv");
    assert!(metrics.iter().any(|m| m.loss.is_some_and(f64::is_nan)));
    let grads = diverged.gradients.as_ref().expect("gradients.csv");
    assert!(grads.iter().any(|g| g.l2 == Some(f64::INFINITY)));

    assert!(by_name("residual-d4-s1").activations.is_none());
    assert!(by_name("residual-d8-s1").gradients.is_none());
    let acts = by_name("plain-d4-s0")
        .activations
        .as_ref()
        .expect("activations");
    assert_eq!(acts.len(), 3);
}

#[test]
fn a_directory_without_summary_is_not_a_results_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not-results");
    fs::create_dir(&path).expect("mkdir");
    match ResultsDir::load(&path) {
        Err(ref e @ PlotError::NotResultsDir { path: ref named }) => {
            assert_eq!(named, &path);
            assert!(e.to_string().contains(&path.display().to_string()));
        }
        other => panic!("expected NotResultsDir, got {other:?}"),
    }
    // render_all reports the same error and writes nothing.
    assert!(matches!(
        render_all(&path),
        Err(PlotError::NotResultsDir { .. })
    ));
    assert!(!path.join("plots").exists());
}

#[test]
fn a_malformed_value_names_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let bad = dir.path().join("runs/plain-d4-s0/gradients.csv");
    let mut text = fs::read_to_string(&bad).expect("read");
    text.push_str("40,0,layer00.linear,output,not-a-number,0.1\n");
    fs::write(&bad, &text).expect("write");
    let line = text.lines().count() as u64;

    match ResultsDir::load(dir.path()) {
        Err(
            ref e @ PlotError::Csv {
                ref path,
                line: got_line,
                ref column,
                ..
            },
        ) => {
            assert_eq!(path, &bad);
            assert_eq!(got_line, Some(line));
            assert_eq!(column.as_deref(), Some("l2"));
            let msg = e.to_string();
            assert!(msg.contains("gradients.csv"), "{msg}");
            assert!(msg.contains(&format!("line {line}")), "{msg}");
        }
        other => panic!("expected a Csv error, got {other:?}"),
    }
}

#[test]
fn a_ragged_summary_names_the_summary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let summary = dir.path().join("summary.csv");
    let mut text = fs::read_to_string(&summary).expect("read");
    text.push_str("plain-d16-s0,plain,16\n");
    fs::write(&summary, &text).expect("write");

    match ResultsDir::load(dir.path()) {
        Err(PlotError::Csv { path, line, .. }) => {
            assert_eq!(path, summary);
            assert_eq!(line, Some(text.lines().count() as u64));
        }
        other => panic!("expected a Csv error, got {other:?}"),
    }
}

#[test]
fn a_run_name_that_escapes_runs_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("summary.csv"),
        &format!("{SUMMARY_HEADER}\n../../etc,plain,4,0,completed,,,,,,,,,,,\n"),
    );
    assert!(matches!(
        ResultsDir::load(dir.path()),
        Err(PlotError::BadRunName { line: 2, .. })
    ));
}

#[test]
fn an_empty_sweep_still_gets_every_chart_marked_no_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("summary.csv"),
        &format!("{SUMMARY_HEADER}\n"),
    );
    let results = ResultsDir::load(dir.path()).expect("load");
    let rendered = render_charts(&results, &results.plots_dir()).expect("render");
    assert_eq!(rendered.len(), 8);
    let names: Vec<&str> = rendered.iter().map(|r| r.name).collect();
    assert_eq!(names, CHART_NAMES);
    for r in &rendered {
        assert!(!r.has_data, "{} claims data", r.name);
        assert!(r.png.is_file() && r.svg.is_file());
        assert!(
            fs::read_to_string(&r.svg).expect("svg").contains("no data"),
            "{} lacks the no-data note",
            r.name
        );
    }
}

#[test]
fn runs_without_per_run_files_draw_no_data_but_error_vs_depth_still_draws() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    fs::remove_dir_all(dir.path().join("runs")).expect("rm runs");
    let results = ResultsDir::load(dir.path()).expect("load");
    let rendered = render_charts(&results, &dir.path().join("out")).expect("render");
    let has: Vec<(&str, bool)> = rendered.iter().map(|r| (r.name, r.has_data)).collect();
    assert_eq!(
        has,
        [
            (TRAIN_ERROR_VS_STEP, false),
            (ERROR_VS_DEPTH, true),
            (GRADIENT_PROFILE, false),
            (GRADIENT_VS_STEP, false),
            (gradscope_plot::GRADIENT_HEATMAP, false),
            (LAYER_RESPONSE_STD, false),
            (SATURATION_VS_STEP, false),
            (ACTIVATION_MEAN_VS_STEP, false),
        ]
    );
    assert!(dir.path().join("out/error_vs_depth.png").is_file());
}

#[test]
fn hostile_values_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        &root.join("summary.csv"),
        &format!(
            "{SUMMARY_HEADER}\n\
             only-d1-s0,only,1,0,diverged,1,10,NaN,inf,-inf,NaN,0,-1,NaN,inf,\n\
             only-d0-s1,only,0,1,running,,,,,,,,,,,\n"
        ),
    );
    write(
        &root.join("runs/only-d1-s0/metrics.csv"),
        "step,epoch,split,loss,error,lr,elapsed_s\n5,0,train,inf,1e308,0.1,0\n",
    );
    write(
        &root.join("runs/only-d1-s0/gradients.csv"),
        "step,layer,name,kind,l2,rms\n\
         0,0,layer00.linear,output,0,0\n\
         1,0,layer00.linear,output,-3,0\n\
         2,0,layer00.linear,output,NaN,0\n\
         3,0,layer00.linear,output,inf,0\n\
         4,0,layer00.linear,output,,\n",
    );
    // Header only: a run killed before its first row.
    write(
        &root.join("runs/only-d0-s1/metrics.csv"),
        "step,epoch,split,loss,error,lr,elapsed_s\n",
    );
    write(&root.join("runs/only-d0-s1/gradients.csv"), "");

    let results = ResultsDir::load(root).expect("load");
    let rendered = render_charts(&results, &results.plots_dir()).expect("render");
    let has: Vec<(&str, bool)> = rendered.iter().map(|r| (r.name, r.has_data)).collect();
    // The gradient charts have one thing to show, the exact 0 at step 0
    // (drawn as ▼ on the bottom edge); -3, NaN, inf and empty are dropped.
    assert_eq!(
        has,
        [
            (TRAIN_ERROR_VS_STEP, true),
            (ERROR_VS_DEPTH, false),
            (GRADIENT_PROFILE, true),
            (GRADIENT_VS_STEP, true),
            (gradscope_plot::GRADIENT_HEATMAP, true),
            (LAYER_RESPONSE_STD, false),
            (SATURATION_VS_STEP, false),
            (ACTIVATION_MEAN_VS_STEP, false),
        ]
    );
    for name in [GRADIENT_PROFILE, GRADIENT_VS_STEP] {
        let text = svg(root, name);
        assert!(text.contains(ZERO_NOTE), "{name} lacks the zero note");
        assert!(
            text.contains("all exactly 0 in float32"),
            "{name} lacks the suffix"
        );
    }
}

const ZERO_NOTE: &str = "values that are exactly 0 in float32 are drawn on the bottom edge";

/// Texts of the y tick labels of an SVG chart: plotters writes them
/// right-aligned (`text-anchor="end"`), as no other text of ours is.
fn y_tick_labels(svg: &str) -> Vec<String> {
    svg.split("<text ")
        .skip(1)
        .filter(|t| t.contains(r#"text-anchor="end""#))
        .filter_map(|t| {
            let body = t.split_once('>')?.1.split_once("</text>")?.0;
            Some(body.trim().to_owned())
        })
        .collect()
}

/// The decade a log tick label stands for: "10⁻³⁰" is -30, "0.1" is -1,
/// "1" is 0, "100" is 2.
fn decade(label: &str) -> Option<i32> {
    if let Some(sup) = label.strip_prefix("10").filter(|s| !s.is_empty()) {
        if !sup.starts_with(|c: char| c.is_ascii_digit()) {
            let digits: String = sup
                .chars()
                .map(|c| match c {
                    '⁻' => Some('-'),
                    '⁰' => Some('0'),
                    '¹' => Some('1'),
                    '²' => Some('2'),
                    '³' => Some('3'),
                    '⁴' => Some('4'),
                    '⁵' => Some('5'),
                    '⁶' => Some('6'),
                    '⁷' => Some('7'),
                    '⁸' => Some('8'),
                    '⁹' => Some('9'),
                    _ => None,
                })
                .collect::<Option<String>>()?;
            return digits.parse().ok();
        }
    }
    let v: f64 = label.parse().ok()?;
    let e = v.log10().round();
    ((v.log10() - e).abs() < 1e-9).then_some(e as i32)
}

/// One variant, depths 2 and 3. The depth-3 net spans 1e-30 (layer 1) to
/// 0.1 (layer 2) while its first layer is exactly 0 throughout (a float32
/// tensor of zeros); every layer of the depth-2 net is exactly 0.
fn underflow_fixture(root: &Path) {
    let mut summary = format!("{SUMMARY_HEADER}\n");
    for depth in [2u32, 3] {
        let run = format!("plain-d{depth}-s0");
        let mut grads = String::from("step,layer,name,kind,l2,rms\n");
        for &step in &STEPS {
            for layer in 0..depth {
                let l2 = match (depth, layer) {
                    (2, _) | (3, 0) => "0".to_owned(),
                    (_, 1) => format!("{:e}", 1e-30 * (1.0 + step as f64 / 30.0)),
                    _ => format!("{:e}", 0.1 - step as f64 * 1e-3),
                };
                let name = format!("layer{layer:02}.linear");
                // The charts draw rms; a file in the six-column format
                // written before the precision fix still reads.
                writeln!(grads, "{step},{layer},{name},output,{l2},{l2}").expect("fmt");
            }
        }
        write(&root.join("runs").join(&run).join("gradients.csv"), &grads);
        writeln!(
            summary,
            "{run},plain,{depth},0,completed,30,100,,,,,,,,,1.0"
        )
        .expect("fmt");
    }
    write(&root.join("summary.csv"), &summary);
}

#[test]
fn gradient_charts_span_every_decade_and_show_exact_zeros() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    underflow_fixture(root);
    let results = ResultsDir::load(root).expect("load");
    let rendered = render_charts(&results, &results.plots_dir()).expect("render");
    assert!(rendered
        .iter()
        .filter(|r| [GRADIENT_PROFILE, GRADIENT_VS_STEP].contains(&r.name))
        .all(|r| r.has_data));

    for name in [GRADIENT_PROFILE, GRADIENT_VS_STEP] {
        let text = svg(root, name);
        let labels = y_tick_labels(&text);
        let decades: Vec<i32> = labels.iter().filter_map(|l| decade(l)).collect();
        assert_eq!(decades.len(), labels.len(), "{name}: labels {labels:?}");
        // The data reach 0.1 and 1e-30: labels at or beyond both ends, so
        // no line runs past the last label, but at most ~8 of them.
        let (lo, hi) = (decades.iter().min(), decades.iter().max());
        assert!(hi >= Some(&-1), "{name}: top label below 0.1: {labels:?}");
        assert!(
            lo <= Some(&-30),
            "{name}: bottom label above 1e-30: {labels:?}"
        );
        assert!(labels.len() <= 9, "{name}: too many labels: {labels:?}");
        assert!(text.contains(ZERO_NOTE), "{name} lacks the zero note");
    }

    // The all-zero series keep their legend entries.
    let c = svg(root, GRADIENT_PROFILE);
    assert!(
        c.contains("d2 — all exactly 0 in float32"),
        "profile lacks d2"
    );
    assert!(c.contains("d3"), "profile lacks d3");
    let d = svg(root, GRADIENT_VS_STEP);
    for text in [
        "layer 0 (first) — all exactly 0 in float32",
        "layer 1 (middle)",
        "layer 2 (last)",
    ] {
        assert!(d.contains(text), "gradient_vs_step lacks {text:?}");
    }
    assert!(!d.contains("layer 1 (middle) —"), "layer 1 is not all 0");
}

/// Probe points of a CNN-8 (6n+2, n = 1) with a response: the stem and the
/// two 3×3 convs of each block. The block outputs (3, 6, 9) and the fc layer
/// (10) are probe points too, but have no response row.
const CNN8_RESPONSES: [usize; 7] = [0, 1, 2, 4, 5, 7, 8];
/// The trained net's stds, by response, and the step they are probed at.
const LAST_STEP: u64 = 500;
const LAST_STDS: [f64; 7] = [0.9, 1.6, 0.4, 2.1, 0.7, 1.2, 0.3];
/// Step 0's stds are all larger than any of the last step's, so that a row
/// of the wrong step cannot hide in the sorted series.
const FIRST_STDS: [f64; 7] = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0];

/// CNN-like runs: plain-8 and residual-8 (seeds 0 and 1) with responses at
/// non-contiguous probe points and two probed steps (rows in shuffled layer
/// order, the steps interleaved, the residual one with a NaN), and a
/// diverged plain-14 whose last step is all NaN.
fn response_fixture(root: &Path) {
    let header = "step,layer,name,mean,std,saturation\n";
    let mut summary = format!("{SUMMARY_HEADER}\n");
    for (variant, depth, seed, status) in [
        ("plain", 8u32, 0u64, "completed"),
        ("residual", 8, 0, "completed"),
        ("residual", 8, 1, "completed"),
        ("plain", 14, 0, "diverged"),
    ] {
        let run = format!("{variant}-d{depth}-s{seed}");
        let mut acts = String::from(header);
        if depth == 14 {
            for step in [0u64, 300] {
                for layer in [0usize, 1, 2, 4, 5] {
                    let std = if step == 0 { "0.5" } else { "NaN" };
                    writeln!(acts, "{step},{layer},layer{layer:02}.conv,0,{std},0").expect("fmt");
                }
            }
        } else {
            // Shuffled layer order, and each step-0 row after its last-step
            // twin, so that neither file order nor "last row wins" can pass
            // for the right choice of rows.
            for i in [3usize, 0, 6, 1, 5, 2, 4] {
                let layer = CNN8_RESPONSES[i];
                let std = match (variant, seed, i) {
                    ("residual", 0, 5) => "NaN".to_owned(),
                    // Seed 1 is never drawn: the smallest seed is.
                    (_, 1, _) => "50".to_owned(),
                    ("residual", _, _) => format!("{}", LAST_STDS[i] * 0.5),
                    _ => format!("{}", LAST_STDS[i]),
                };
                writeln!(acts, "{LAST_STEP},{layer},layer{layer:02}.conv,0,{std},0").expect("fmt");
                let first = FIRST_STDS[i];
                writeln!(acts, "0,{layer},layer{layer:02}.conv,0,{first},0").expect("fmt");
            }
            // A probe point with a row at step 0 only.
            writeln!(acts, "0,3,layer03.out,0,4.0,0").expect("fmt");
        }
        write(&root.join("runs").join(&run).join("activations.csv"), &acts);
        writeln!(
            summary,
            "{run},{variant},{depth},{seed},{status},{LAST_STEP},1000,,,,,,,,,1.0"
        )
        .expect("fmt");
    }
    write(&root.join("summary.csv"), &summary);
}

#[test]
fn layer_response_std_uses_the_last_step_of_non_contiguous_layers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    response_fixture(root);

    let written = render_all(root).expect("render_all");
    for ext in ["png", "svg"] {
        let path = root
            .join("plots")
            .join(format!("{LAYER_RESPONSE_STD}.{ext}"));
        assert!(written.contains(&path), "{} not returned", path.display());
        assert!(
            path.metadata().is_ok_and(|m| m.len() > 1000),
            "{} missing or empty",
            path.display()
        );
    }
    let text = svg(root, LAYER_RESPONSE_STD);
    for label in [
        "layer index (responses in forward order)",
        "layer index (sorted by magnitude)",
        "std of layer response",
        "plain d8",
        "residual d8",
        "plain d14 (diverged) — no finite std at step 300",
        "last probed step",
        "seed 0",
    ] {
        assert!(text.contains(label), "layer_response_std lacks {label:?}");
    }
    // 0.15 to 2.1 is well inside two decades: a linear axis, as in the paper.
    assert!(!text.contains("log scale"), "unexpected log axis");
    // The stds of seed 1 (50) are never drawn: no tick reaches that far.
    assert!(!text.contains(">50<"), "seed 1 drawn");

    let results = ResultsDir::load(root).expect("load");
    let run = |name: &str| {
        results
            .runs
            .iter()
            .find(|r| r.summary.run == name)
            .unwrap_or_else(|| panic!("run {name} missing"))
    };

    let plain = layer_response_stds(run("plain-d8-s0")).expect("plain-8 has responses");
    assert_eq!(plain.step, LAST_STEP);
    // Forward order is `layer` order (not file order), gaps in `layer` kept
    // out of the positions: response i is the i-th row, whatever its layer.
    let layers: Vec<usize> = plain.forward.iter().map(|&(l, _)| l).collect();
    assert_eq!(layers, CNN8_RESPONSES);
    let forward: Vec<f64> = plain.forward.iter().map(|&(_, v)| v).collect();
    assert_eq!(forward, LAST_STDS);
    // Sorted: descending, and exactly the last step's values.
    assert!(
        plain.sorted.windows(2).all(|w| w[0] >= w[1]),
        "not descending: {:?}",
        plain.sorted
    );
    let mut expected = LAST_STDS.to_vec();
    expected.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(plain.sorted, expected);
    assert!(plain
        .sorted
        .iter()
        .all(|v| !FIRST_STDS.contains(v) && *v != 4.0));

    // A NaN std is a gap in forward order and is left out of the ranking.
    let residual = layer_response_stds(run("residual-d8-s0")).expect("residual-8");
    assert_eq!(residual.step, LAST_STEP);
    assert_eq!(residual.forward.len(), 7);
    assert!(residual.forward[5].1.is_nan());
    assert_eq!(residual.sorted.len(), 6);
    assert!(residual.sorted.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(residual.sorted.first(), Some(&(2.1 * 0.5)));

    // All NaN at the last step: nothing ranked, and step 0 is not used instead.
    let diverged = layer_response_stds(run("plain-d14-s0")).expect("plain-14");
    assert_eq!(diverged.step, 300);
    assert!(diverged.sorted.is_empty());
}

/// Issue 16 §3: the heatmap draws the deepest net (depth 3 here), spans
/// its values' decades on one colour bar (1e-30 to 0.1: labels 1e-30 and
/// 1e-1 at least), and gives the layer that is exactly 0 in float32 its
/// own colour, named under the bar.
#[test]
fn the_heatmap_draws_every_layer_and_names_exact_zeros() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    underflow_fixture(root);
    let results = ResultsDir::load(root).expect("load");
    let r = gradscope_plot::gradient_heatmap(&results, &results.plots_dir()).expect("render");
    assert!(r.has_data);
    let text = svg(root, gradscope_plot::GRADIENT_HEATMAP);
    assert!(
        text.contains("plain, depth 3, seed 0"),
        "the deepest net's panel"
    );
    assert!(
        text.contains("exactly 0") && text.contains("in float32"),
        "zero legend"
    );
    // The zero colour (220, 30, 60) is drawn: the first layer's cells.
    assert!(
        text.to_uppercase().contains("#DC1E3C"),
        "no cell in the zero colour"
    );
    for label in ["1e-30", "1e-1"] {
        assert!(text.contains(label), "colour bar lacks {label}");
    }
}
