//! Issue 19, "a lecturer's workbench", through the real binary: charts and
//! reports that never go stale, one results directory per experiment,
//! `check` that opens what `run` opens, and the small commands (`example`,
//! `list`, `export`). Nets are tiny (width ≤ 16, depth ≤ 5, synthetic
//! data, a few steps).

mod common;

use common::{gradscope, ok, read_csv, stderr, stdout, write_idx_set, BIN};
use std::path::{Path, PathBuf};

/// Two variants at depths 3 and 4, 10 steps. `INIT` is replaced.
const A: &str = r#"{
  "name": "a",
  "dataset": { "kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 8 },
  "model": { "family": "mlp", "width": 8, "activation": "tanh", "init": INIT },
  "variants": ["plain", "residual"],
  "depths": [3, 4],
  "seeds": [0],
  "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 32, "steps": 10, "eval_every": 5 },
  "probe": { "every": 5 }
}"#;

fn body(name: &str, init: &str) -> String {
    A.replace("\"a\"", &format!("{name:?}"))
        .replace("INIT", &format!("{init:?}"))
}

/// Trains the experiment `body` once per activation (named after it,
/// Glorot init) into `dir/ACT`, without charts; returns the folders.
fn train_activations(dir: &Path, acts: &[&str]) -> Vec<PathBuf> {
    acts.iter()
        .map(|act| {
            let file = dir.join(format!("{act}.json"));
            let text = body(act, "glorot").replace("\"tanh\"", &format!("{act:?}"));
            std::fs::write(&file, text).unwrap();
            let out = dir.join(act);
            ok(&gradscope(&[
                "run",
                file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--threads",
                "1",
                "--no-plot",
            ]));
            out
        })
        .collect()
}

struct Dir {
    tmp: tempfile::TempDir,
    out: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        Dir { tmp, out }
    }

    /// Writes `text` as `FILE` beside the results directory.
    fn file(&self, file: &str, text: &str) -> PathBuf {
        let p = self.tmp.path().join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `gradscope run FILE --out OUT --threads 1 EXTRA…`.
    fn run(&self, file: &Path, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "run",
            file.to_str().unwrap(),
            "--out",
            self.out.to_str().unwrap(),
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        gradscope(&args)
    }

    fn report(&self) -> std::process::Output {
        gradscope(&["report", self.out.to_str().unwrap()])
    }

    fn bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// The issue's sequence: run A, run a different B over it with --restart
/// --no-plot, then report. The report must show B's charts, not A's: the
/// restart removes A's charts, summary and report at once, and `report`
/// draws what is missing.
#[test]
fn restart_with_no_plot_then_report_shows_the_new_runs_charts() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&a, &[]));
    ok(&d.report());
    let a_profile = d.bytes("plots/gradient_profile.png");
    assert!(d.out.join("report.md").is_file());

    // Same experiment name, another init: a restart, no --force needed, and
    // it says which settings differ.
    let b = d.file("b.json", &body("a", "kaiming"));
    let o = d.run(&b, &["--restart", "--no-plot"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("other settings (model.init)"), "{err}");
    assert!(
        err.contains("removed plots, report.html, report.md, summary.csv"),
        "{err}"
    );
    assert!(!d.out.join("plots").exists());
    assert!(!d.out.join("report.md").exists());
    assert!(!d.out.join("report.html").exists());

    let o = d.report();
    ok(&o);
    assert!(
        stderr(&o).contains("charts drawn: plots/"),
        "{}",
        stderr(&o)
    );
    assert_ne!(d.bytes("plots/gradient_profile.png"), a_profile);
    let md = String::from_utf8(d.bytes("report.md")).unwrap();
    assert!(md.contains("kaiming"), "the report describes B:\n{md}");
    // Sub-second runs: their wall time in milliseconds, not "0 s".
    assert!(md.contains(" ms | 1 completed |"), "{md}");
}

/// Charts that exist but no longer match their inputs are drawn again by
/// `report`: here a resumed sweep with one more depth and --no-plot. A
/// second report with nothing changed leaves them alone.
#[test]
fn report_redraws_charts_whose_inputs_changed() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&a, &[]));
    let before = d.bytes("plots/gradient_profile.png");
    let inputs = String::from_utf8(d.bytes("plots/inputs.json")).unwrap();
    assert!(
        inputs.contains("runs/plain-d4-s0/gradients.csv"),
        "{inputs}"
    );

    // Nothing changed: the report leaves the charts as they are.
    let o = d.report();
    ok(&o);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert_eq!(d.bytes("plots/gradient_profile.png"), before);

    let a5 = d.file(
        "a5.json",
        &body("a", "glorot").replace("[3, 4]", "[3, 4, 5]"),
    );
    let o = d.run(&a5, &["--resume", "--no-plot"]);
    ok(&o);
    assert!(
        stderr(&o).contains("report.md predates these runs"),
        "{}",
        stderr(&o)
    );
    let o = d.report();
    ok(&o);
    assert!(
        stderr(&o).contains("charts drawn: summary.csv changed since they were drawn"),
        "{}",
        stderr(&o)
    );
    assert_ne!(d.bytes("plots/gradient_profile.png"), before);
    let inputs = String::from_utf8(d.bytes("plots/inputs.json")).unwrap();
    assert!(
        inputs.contains("runs/plain-d5-s0/gradients.csv"),
        "{inputs}"
    );

    // A changed per-run file is enough too.
    let g = d.out.join("runs/plain-d3-s0/gradients.csv");
    let mut text = std::fs::read_to_string(&g).unwrap();
    let last = text.lines().last().unwrap().to_owned();
    text.push_str(&last);
    text.push('\n');
    std::fs::write(&g, text).unwrap();
    let o = d.report();
    ok(&o);
    assert!(
        stderr(&o).contains("runs/plain-d3-s0/gradients.csv changed"),
        "{}",
        stderr(&o)
    );
}

/// Published results keep run.json, summary.csv and the charts, not the
/// per-run CSVs. Charts from before plots/inputs.json are kept then, not
/// replaced by empty ones.
#[test]
fn charts_without_a_record_or_csvs_to_redraw_them_are_kept() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&a, &[]));
    let before = d.bytes("plots/gradient_profile.png");
    std::fs::remove_file(d.out.join("plots/inputs.json")).unwrap();
    for run in [
        "plain-d3-s0",
        "residual-d3-s0",
        "plain-d4-s0",
        "residual-d4-s0",
    ] {
        for f in ["metrics.csv", "gradients.csv", "activations.csv"] {
            std::fs::remove_file(d.out.join("runs").join(run).join(f)).unwrap();
        }
    }
    let o = d.report();
    ok(&o);
    assert!(
        stderr(&o).contains("charts kept as they are"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.bytes("plots/gradient_profile.png"), before);
}

/// A folder holding another experiment's runs is named as such (not "runs
/// of this experiment"); --restart over them is refused naming both, and
/// --restart --force replaces them. Nothing is deleted by a refusal.
#[test]
fn another_experiments_runs_are_refused_unless_forced() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&a, &["--no-plot"]));
    let a_json = d.bytes("runs/plain-d3-s0/run.json");
    let b = d.file("b.json", &body("b", "kaiming"));

    for (extra, needle) in [
        (&[][..], "--restart --force to delete them"),
        (
            &["--resume"][..],
            "--resume continues a sweep of the same experiment",
        ),
        (
            &["--restart"][..],
            "--restart would delete them: add --force",
        ),
    ] {
        let o = d.run(&b, extra);
        let err = stderr(&o);
        assert!(!o.status.success(), "{extra:?} accepted");
        assert!(
            err.contains(r#"holds 4 run(s) of experiment "a" (from "#)
                && err.contains("a.json; its settings differ in model.init)")
                && err.contains(r#"not runs of experiment "b""#),
            "{extra:?}: {err}"
        );
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!err.contains("of this experiment"), "{err}");
        assert_eq!(d.bytes("runs/plain-d3-s0/run.json"), a_json);
        assert!(d.out.join("summary.csv").is_file());
    }

    let o = d.run(&b, &["--restart", "--force"]);
    ok(&o);
    assert!(
        stderr(&o).contains(r#"--force: deleted 4 run(s) of experiment "a""#),
        "{}",
        stderr(&o)
    );
    let (h, rows) = read_csv(&d.out.join("summary.csv"));
    assert_eq!(rows.len(), 4);
    let json: serde_json::Value =
        serde_json::from_slice(&d.bytes("runs/plain-d3-s0/run.json")).unwrap();
    assert_eq!(json["experiment"], "b");
    assert!(h.contains(&"run".to_string()));
}

/// --restart also removes run folders that the plan no longer has, so the
/// report does not list runs of an older plan.
#[test]
fn restart_removes_runs_the_plan_no_longer_has() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&a, &["--no-plot"]));
    let fewer = d.file("a3.json", &body("a", "glorot").replace("[3, 4]", "[3]"));
    let o = d.run(&fewer, &["--restart", "--no-plot"]);
    ok(&o);
    assert!(
        stderr(&o).contains("deleted 2 run folder(s) that this plan does not have"),
        "{}",
        stderr(&o)
    );
    assert!(!d.out.join("runs/plain-d4-s0").exists());
    assert!(d.out.join("runs/plain-d3-s0/run.json").is_file());
}

/// Without a terminal, each run announces itself and reports progress
/// while it trains (the log of a batch job is not empty until the end);
/// sub-second runs show milliseconds, not "0.0s".
#[test]
fn piped_output_shows_each_run_starting_and_its_progress() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    let o = d.run(&a, &["--no-plot", "--progress-every", "4"]);
    ok(&o);
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "[1/4] plain-d3-s0: training 10 steps")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        lines[start + 1].starts_with("[1/4] plain-d3-s0: step 4/10 (40%), "),
        "{err}"
    );
    assert!(
        lines[start + 2].starts_with("[1/4] plain-d3-s0: step 8/10 (80%), "),
        "{err}"
    );
    assert!(
        lines[start + 3].starts_with("[1/4] plain-d3-s0 completed after 10 steps in ")
            && lines[start + 3].contains(" ms: "),
        "{err}"
    );
}

/// The message of a missing experiment file says it once.
#[test]
fn a_missing_experiment_file_is_reported_once() {
    let o = gradscope(&["check", "/nonexistent/exp.json"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `check` said "ok" to a dataset folder that does not exist and to a
/// subset larger than the data; `run` refused both. Now `check` reads the
/// headers and refuses them too, naming the experiment file and the field,
/// and the missing folder is said first (not eight paths inside it).
#[test]
fn check_refuses_a_missing_dataset_folder_and_an_oversized_subset() {
    let d = Dir::new();
    let on = |kind: &str, dir: &Path, extra: &str| {
        body("a", "glorot").replace(
            r#""kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 8"#,
            &format!(r#""kind": "{kind}", "dir": {:?}{extra}"#, dir.display().to_string()),
        )
    };
    let nowhere = d.tmp.path().join("nowhere");
    let missing = d.file("missing.json", &on("fashion-mnist", &nowhere, ""));
    let o = gradscope(&["check", missing.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success(), "check accepted a missing folder");
    assert!(
        err.contains(&format!(
            "{}: dataset.dir: {} does not exist.",
            missing.display(),
            nowhere.display()
        )),
        "{err}"
    );
    assert!(!err.contains("train-images-idx3-ubyte"), "{err}");

    let data = d.tmp.path().join("mnist");
    write_idx_set(&data);
    let big = d.file(
        "big.json",
        &on("mnist", &data, r#", "subset_train": 500000"#),
    );
    let o = gradscope(&["check", big.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success(), "check accepted an oversized subset");
    assert!(
        err.contains(&format!(
            "{}: dataset.subset_train: 500000 examples asked for but the split holds 16",
            big.display()
        )),
        "{err}"
    );
    // The same file is fine once the subset fits, and says what it read.
    let fits = d.file(
        "fits.json",
        &on("mnist", &data, r#", "subset_train": 8"#)
            .replace(r#""batch_size": 32"#, r#""batch_size": 4"#),
    );
    let o = gradscope(&["check", fits.to_str().unwrap()]);
    ok(&o);
    assert!(
        stdout(&o).contains("data: mnist, 8 training and 4 held-out examples of 1×6×6, 10 classes"),
        "{}",
        stdout(&o)
    );
}

/// `check` prints each run's parameters, multiplications and a rough time,
/// and says where the twins are one network (an MLP of depth 2).
#[test]
fn check_estimates_time_and_names_depths_where_the_twins_are_one_net() {
    let d = Dir::new();
    let f = d.file("a.json", &body("a", "glorot").replace("[3, 4]", "[2, 4]"));
    let o = gradscope(&["check", f.to_str().unwrap()]);
    ok(&o);
    let out = stdout(&o);
    // Depth 4, width 8, 8 features, 4 classes: 8·8 + 8·8·2 + 8·4 = 224
    // multiplications; parameters add the biases: 72 + 2·72 + 36 = 252.
    assert!(
        out.lines().any(|l| l
            .split_whitespace()
            .take(3)
            .eq(["plain-d4-s0", "252", "224"])),
        "{out}"
    );
    assert!(out.contains("estimated time: "), "{out}");
    assert!(out.contains("rough"), "{out}");
    assert!(
        out.contains("note: at depth 2 the plain and residual nets are the same network"),
        "{out}"
    );
    assert!(!out.contains("at depth 4 the plain"), "{out}");
}

/// `check --jobs N --threads T` estimates `run --jobs N`'s wall time (the
/// runs longest first on N workers, each at T threads), says "1 thread"
/// in the singular, and refuses 0 of either.
#[test]
fn check_estimates_jobs_and_threads() {
    let d = Dir::new();
    let f = d.file("a.json", &body("a", "glorot"));
    let total = |args: &[&str]| {
        let mut all = vec!["check", f.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = gradscope(&all);
        ok(&o);
        let out = stdout(&o);
        assert!(!out.contains(" 1 threads"), "{out}");
        out.lines()
            .find(|l| l.contains("estimated time: "))
            .unwrap_or_else(|| panic!("{out}"))
            .trim()
            .to_string()
    };
    let one = total(&["--threads", "1"]);
    assert!(one.contains("runs on 1 thread (rough"), "{one}");
    let two = total(&["--jobs", "2", "--threads", "1"]);
    assert!(two.contains("2 at a time on 1 thread each"), "{two}");
    let many = total(&["--threads", "3"]);
    assert!(many.contains("on 3 threads"), "{many}");
    for flag in ["--jobs", "--threads"] {
        let o = gradscope(&["check", f.to_str().unwrap(), flag, "0"]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(&format!("{flag}: 0 must be at least 1")),
            "{}",
            stderr(&o)
        );
    }
}

/// `gradscope example quickstart` prints the shipped file, which `check`
/// accepts outside the repository; the help points there.
#[test]
fn example_prints_a_file_that_checks_outside_the_repository() {
    let o = gradscope(&["example", "quickstart"]);
    ok(&o);
    let shipped = include_str!("../../../experiments/quickstart.json");
    assert_eq!(stdout(&o), shipped);
    let d = Dir::new();
    let f = d.file("quickstart.json", &stdout(&o));
    let o = std::process::Command::new(BIN)
        .args(["check", f.to_str().unwrap()])
        .current_dir(d.tmp.path())
        .output()
        .unwrap();
    ok(&o);
    let o = gradscope(&["example", "nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("quickstart"), "{}", stderr(&o));
    let o = gradscope(&["help"]);
    assert!(
        stdout(&o).contains("gradscope example quickstart > quickstart.json"),
        "{}",
        stdout(&o)
    );
}

/// `gradscope list` names every family, activation, init, norm and
/// dataset kind (the unit tests hold each to the parser).
#[test]
fn list_names_what_an_experiment_may_say() {
    let o = gradscope(&["list"]);
    ok(&o);
    let out = stdout(&o);
    for needle in [
        "  mlp ",
        "  cnn ",
        "  bottleneck ",
        "  inception ",
        "  sigmoid ",
        "  relu ",
        "\"kaiming\"",
        r#"{"normal": {"std": 0.05}}"#,
        "  batchnorm ",
        "  synthetic-images ",
        "  fashion-mnist ",
        "  cifar10 ",
        " subset_train ",
        " teacher_width ",
        " shortcut ",
    ] {
        assert!(out.contains(needle), "no {needle:?}:\n{out}");
    }
}

/// `gradscope export` writes one long table per kind with the run's
/// identity in front and each per-run file's own columns after it.
#[test]
fn export_writes_long_tables_of_every_run() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&a, &["--no-plot"]));
    let o = gradscope(&["export", d.out.to_str().unwrap()]);
    ok(&o);
    for file in ["gradients.csv", "metrics.csv", "activations.csv"] {
        let (h, rows) = read_csv(&d.out.join("export").join(file));
        let (run_h, _) = read_csv(&d.out.join("runs/plain-d3-s0").join(file));
        assert_eq!(h[..4], ["run", "variant", "depth", "seed"]);
        assert_eq!(h[4..], run_h[..], "{file}");
        let mut total = 0;
        for run in [
            "plain-d3-s0",
            "residual-d3-s0",
            "plain-d4-s0",
            "residual-d4-s0",
        ] {
            let (_, theirs) = read_csv(&d.out.join("runs").join(run).join(file));
            let ours: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == run).collect();
            assert_eq!(ours.len(), theirs.len(), "{file} {run}");
            for (o, t) in ours.iter().zip(&theirs) {
                assert_eq!(o[4..], t[..]);
            }
            let (variant, depth) = run.split_once("-d").unwrap();
            assert_eq!(ours[0][1], variant);
            assert_eq!(ours[0][2], depth.trim_end_matches("-s0"));
            assert_eq!(ours[0][3], "0");
            total += theirs.len();
        }
        assert_eq!(rows.len(), total);
        assert!(stdout(&o).contains(&format!("export/{file} ({total} rows from 4 runs)")));
    }
    let elsewhere = d.tmp.path().join("tables");
    let o = gradscope(&[
        "export",
        d.out.to_str().unwrap(),
        "--out",
        elsewhere.to_str().unwrap(),
    ]);
    ok(&o);
    assert!(elsewhere.join("gradients.csv").is_file());
}

/// `gradscope schema` prints docs/experiment.schema.json, and every shipped
/// experiment file validates against it (with Python's jsonschema, where
/// installed: an independent validator; skipped otherwise).
#[test]
fn every_example_validates_against_the_schema() {
    let o = gradscope(&["schema"]);
    ok(&o);
    let published = include_str!("../../../docs/experiment.schema.json");
    assert_eq!(stdout(&o), published);
    let script = r#"
import glob, json, sys
try:
    import jsonschema
except ImportError:
    print("skipped: no jsonschema"); sys.exit(0)
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
bad = [(f, e.message) for f in sorted(glob.glob(sys.argv[2] + "/*.json")) for e in v.iter_errors(json.load(open(f)))]
wrong = json.load(open(sys.argv[2] + "/quickstart.json")); wrong["train"]["lrr"] = 1
assert list(v.iter_errors(wrong)), "an unknown field passed"
print(bad or "ok"); sys.exit(1 if bad else 0)
"#;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::process::Command::new("python3")
        .args(["-c", script])
        .arg(root.join("docs/experiment.schema.json"))
        .arg(root.join("experiments"))
        .output()
    {
        Ok(o) => assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o)),
        Err(e) => println!("skipped: python3 not found ({e})"),
    }
}

/// Issue 19 §1: `"init": [..]` is one experiment. Every combination runs
/// under a name that says its values; summary.csv and the export get an
/// `init` column; each chart draws one panel per (variant, init) on shared
/// axes; the report compares the inits side by side and then repeats its
/// sections per init. A swept run is the very run a single-valued file
/// trains (same seed, same bytes of gradients.csv): the sweep resolves the
/// value for each run rather than passing the list's first.
#[test]
fn a_list_of_inits_is_one_experiment_that_sweeps_them() {
    let d = Dir::new();
    let swept = A.replace("INIT", r#"["pytorch-default", "glorot"]"#);
    let file = d.file("swept.json", &swept);

    let o = gradscope(&["check", file.to_str().unwrap()]);
    ok(&o);
    let text = stdout(&o);
    assert!(
        text.contains("8 runs (2 variants × 2 inits × 2 depths × 1 seeds)"),
        "{text}"
    );
    assert!(
        text.contains("sweeps model.init over pytorch-default, glorot"),
        "{text}"
    );
    assert!(text.contains("residual-glorot-d4-s0"), "{text}");

    ok(&d.run(&file, &[]));
    let (h, rows) = read_csv(&d.out.join("summary.csv"));
    assert_eq!(h[..5], ["run", "variant", "init", "depth", "seed"]);
    assert_eq!(rows.len(), 8);
    for r in &rows {
        assert_eq!(r[0], format!("{}-{}-d{}-s{}", r[1], r[2], r[3], r[4]));
        assert!(d.out.join("runs").join(&r[0]).join("run.json").is_file());
    }

    // The same run from a file that gives the one value.
    let single = Dir::new();
    let one = single.file("one.json", &body("one", "glorot"));
    ok(&single.run(&one, &["--no-plot"]));
    assert_eq!(
        d.bytes("runs/plain-glorot-d4-s0/gradients.csv"),
        single.bytes("runs/plain-d4-s0/gradients.csv"),
        "a swept run must train exactly what the single-valued file trains"
    );
    assert_ne!(
        d.bytes("runs/plain-glorot-d4-s0/gradients.csv"),
        d.bytes("runs/plain-pytorch-default-d4-s0/gradients.csv"),
    );

    let svg = String::from_utf8(d.bytes("plots/gradient_profile.svg")).unwrap();
    for panel in [
        "plain, init pytorch-default",
        "plain, init glorot",
        "residual, init pytorch-default",
        "residual, init glorot",
    ] {
        assert!(svg.contains(panel), "no panel {panel:?}");
    }

    ok(&d.report());
    let md = String::from_utf8(d.bytes("report.md")).unwrap();
    assert!(md.contains("## Across the sweep"), "{md}");
    assert!(md.contains("| plain | 4 | glorot | 1 |"), "{md}");
    let pd = md
        .find("## init pytorch-default")
        .expect("a section per init");
    let gl = md.find("## init glorot").expect("a section per init");
    assert!(pd < gl);
    assert!(md[gl..].contains("### Runs"), "sections sit one level down");

    let o = gradscope(&["export", d.out.to_str().unwrap()]);
    ok(&o);
    let (h, rows) = read_csv(&d.out.join("export/metrics.csv"));
    assert_eq!(h[..5], ["run", "variant", "init", "depth", "seed"]);
    assert!(rows.iter().all(|r| r[0].contains(&format!("-{}-", r[2]))));
}

/// Issue 19 §4: `plot --width --height --font-scale` sets the size of
/// every chart (the PNG header says it), and `report` keeps that size when
/// it redraws charts whose inputs changed.
#[test]
fn plot_size_options_set_the_size_and_report_keeps_it() {
    let d = Dir::new();
    let a = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&a, &[]));
    let size = |d: &Dir| {
        let png = d.bytes("plots/gradient_profile.png");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&png[16..20]), be(&png[20..24]))
    };
    // Defaults: two panels side by side, each 600 px plus its legend
    // strip beside the plot; 500 high.
    let (w, h) = size(&d);
    assert_eq!(h, 500);
    assert!(
        (1300..1800).contains(&w),
        "{w}: two panels and their legends"
    );
    let out = d.out.to_str().unwrap();
    let o = gradscope(&[
        "plot",
        out,
        "--width",
        "1600",
        "--height",
        "900",
        "--font-scale",
        "1.5",
    ]);
    ok(&o);
    assert_eq!(size(&d), (1600, 900));
    // A changed input makes the charts stale; the redraw keeps the size.
    let summary = d.out.join("summary.csv");
    let text = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(&summary, text + "\n").unwrap();
    let o = d.report();
    ok(&o);
    assert!(
        stderr(&o).contains("charts drawn: summary.csv changed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(size(&d), (1600, 900));
    let o = gradscope(&["plot", out, "--width", "50"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--width: 50 pixels is outside 200 to 10000"),
        "{}",
        stderr(&o)
    );
}

/// Issue 37 §2: `compare` of three real folders (plain and residual each)
/// lays each chart out as three rows of two, one row per folder; with
/// `--y-scale panel` every panel has its own tick labels and the header
/// says so; `plot --y-scale panel` is recorded with the size, so that a
/// redraw by `report` keeps it.
#[test]
fn compare_of_three_folders_is_a_row_per_folder_and_y_scale_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| tmp.path().join(name);
    let dirs: Vec<String> = train_activations(tmp.path(), &["sigmoid", "tanh", "relu"])
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    let out = at("three");
    let mut args: Vec<&str> = vec!["compare"];
    args.extend(dirs.iter().map(String::as_str));
    let out_s = out.to_string_lossy().into_owned();
    args.extend(["--out", &out_s, "--y-scale", "panel", "--font-scale", "1.4"]);
    ok(&gradscope(&args));
    let svg = std::fs::read_to_string(out.join("plots/gradient_profile.svg")).unwrap();
    let rects: Vec<(i64, i64)> = svg
        .split("<rect class=\"gs-plot\" x=\"")
        .skip(1)
        .map(|t| {
            let x: i64 = t.split('"').next().unwrap().parse().unwrap();
            let y: i64 = t
                .split("y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (x, y)
        })
        .collect();
    assert_eq!(rects.len(), 6, "{rects:?}");
    let distinct = |f: fn(&(i64, i64)) -> i64| {
        let mut v: Vec<i64> = rects.iter().map(f).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    assert_eq!(
        (distinct(|r| r.1), distinct(|r| r.0)),
        (3, 2),
        "3 rows × 2 columns"
    );
    assert!(svg.contains("each panel has its own y scale"));
    // Row by row, the folders in the order given.
    let pos = |s: &str| svg.find(s).unwrap_or_else(|| panic!("no {s}"));
    assert!(pos("sigmoid: plain") < pos("tanh: plain"));
    assert!(pos("tanh: residual") < pos("relu: plain"));

    let o = gradscope(&["plot", &dirs[0], "--y-scale", "panel"]);
    ok(&o);
    let inputs = std::fs::read_to_string(at("sigmoid").join("plots/inputs.json")).unwrap();
    assert!(inputs.contains("\"y_scale\": \"panel\""), "{inputs}");
    let o = gradscope(&["plot", &dirs[0], "--y-scale", "wide"]);
    assert!(!o.status.success(), "an unknown --y-scale is refused");
}

/// Issue 16 §2 and issue 19: `compare` puts two folders on one page. The
/// sigmoid and tanh folders differ only in `model.activation`, which the
/// page names; every chart has a panel per folder and variant; the HTML
/// fetches nothing. Folders that cannot be compared are refused by name
/// and leave no output folder behind.
#[test]
fn compare_puts_two_folders_on_one_page_and_refuses_what_it_cannot_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| tmp.path().join(name);
    train_activations(tmp.path(), &["sigmoid", "tanh"]);
    let out = at("both");
    let args = |dirs: &[&str], out: &Path| -> Vec<String> {
        let mut a = vec!["compare".to_owned()];
        a.extend(dirs.iter().map(|d| at(d).to_string_lossy().into_owned()));
        a.extend(["--out".to_owned(), out.to_string_lossy().into_owned()]);
        a
    };
    let run = |a: Vec<String>| gradscope(&a.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&run(args(&["sigmoid", "tanh"], &out)));

    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(
        md.contains("| `model.activation` | sigmoid | tanh |"),
        "{md}"
    );
    assert!(
        !md.contains("`name`"),
        "an experiment's name is not a setting: {md}"
    );
    for group in ["sigmoid: plain", "tanh: residual"] {
        for depth in [3, 4] {
            assert!(
                md.contains(&format!("| {group} | {depth} | 1/1 |")),
                "{group} d{depth}: {md}"
            );
        }
    }
    let svg = std::fs::read_to_string(out.join("plots/gradient_profile.svg")).unwrap();
    for panel in [
        "sigmoid: plain",
        "sigmoid: residual",
        "tanh: plain",
        "tanh: residual",
    ] {
        assert!(svg.contains(panel), "no panel {panel:?}");
    }
    assert!(out.join("plots/decay_vs_depth.png").is_file());
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 6, "six charts inline");
    // Nothing is fetched: links only to anchors in the page, images only
    // as data URIs.
    let outside = |attr: &str, inside: &str| {
        html.match_indices(attr)
            .any(|(i, _)| !html[i + attr.len()..].starts_with(inside))
    };
    assert!(
        !outside("href=\"", "#"),
        "compare.html must open offline: href"
    );
    assert!(
        !outside("src=\"", "data:"),
        "compare.html must open offline: src"
    );
    for fetch in ["url(", "@import"] {
        assert!(
            !html.contains(fetch),
            "compare.html must open offline: {fetch}"
        );
    }

    // Refused by name, and nothing written.
    let nowhere = at("refused");
    std::fs::create_dir_all(at("empty")).unwrap();
    let identity = at("identity.json");
    std::fs::write(
        &identity,
        body("identity", "glorot").replace("\"dataset\"", "\"task\": \"identity\", \"dataset\""),
    )
    .unwrap();
    ok(&gradscope(&[
        "run",
        identity.to_str().unwrap(),
        "--out",
        at("identity").to_str().unwrap(),
        "--threads",
        "1",
        "--no-plot",
    ]));
    for (dirs, why) in [
        (
            &["sigmoid", "empty"][..],
            "empty is not a gradscope results directory",
        ),
        (&["sigmoid", "identity"][..], "its task is identity"),
    ] {
        let o = run(args(dirs, &nowhere));
        assert!(!o.status.success(), "{dirs:?} compared");
        assert!(stderr(&o).contains(why), "{dirs:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert!(
            !nowhere.exists(),
            "a refused comparison wrote {}",
            nowhere.display()
        );
    }
    let o = run(args(&["sigmoid", "tanh"], &at("tanh")));
    assert!(
        stderr(&o).contains("one of the compared folders"),
        "{}",
        stderr(&o)
    );
    let o = gradscope(&["compare", at("sigmoid").to_str().unwrap(), "--out", "x"]);
    assert!(!o.status.success(), "one folder compared");
}

/// Issue 30, §7: a rerun checked against a published summary prints one
/// `reproduced:` line (exit 0); a reference whose train error is 5 points
/// away, beyond the floor of 2, gives `not reproduced:` (exit 1), naming
/// the run and the reading. A rerun on the same machine with the same
/// thread count is byte-identical, so the tiny sweep reproduces itself.
#[test]
fn verify_says_whether_a_rerun_reproduced_the_published_summary() {
    let d = Dir::new();
    let file = d.file("a.json", &body("a", "glorot"));
    ok(&d.run(&file, &["--no-plot"]));
    let published = d.tmp.path().join("published.csv");
    std::fs::copy(d.out.join("summary.csv"), &published).unwrap();
    ok(&d.run(&file, &["--no-plot", "--restart"]));
    let o = gradscope(&[
        "verify",
        d.out.to_str().unwrap(),
        "--against",
        published.to_str().unwrap(),
    ]);
    ok(&o);
    let last = stdout(&o).lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("reproduced: "), "{last}");
    // Move one run's train error 5 points in the reference.
    let (header, rows) = read_csv(&published);
    let col = header
        .iter()
        .position(|h| h == "final_train_error")
        .unwrap();
    let mut w = csv::Writer::from_path(&published).unwrap();
    w.write_record(&header).unwrap();
    for (i, mut r) in rows.into_iter().enumerate() {
        if i == 0 {
            let v: f64 = r[col].parse().unwrap();
            r[col] = (v + 0.05).to_string();
        }
        w.write_record(&r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let o = gradscope(&[
        "verify",
        d.out.to_str().unwrap(),
        "--against",
        published.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("final_train_error"), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("not reproduced: "),
        "{text}"
    );
}
