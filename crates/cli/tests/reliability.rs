//! Reliability of a sweep, tested on the real `gradscope` binary run as a
//! subprocess (issue 6): divergence, SIGKILL and `--resume`, SIGINT and
//! SIGTERM, one writer per results directory, what a second run on a full
//! results directory does, and determinism across processes.
//!
//! Nets are tiny (width 16, depth ≤ 8, synthetic data). Runs that compare
//! numbers are separate processes, since libtorch's RNG and thread count
//! are process-global.

mod common;

use common::{gradscope, read_csv, stderr, BIN, RUNS, SWEEP};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gradscope binary starts")
}

/// Sends a signal with the system's `kill` (no libc needed for a test).
fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -s {sig} failed");
}

/// Waits for `cond`, polling often enough to catch a run between two of
/// its steps; panics after `secs`.
fn wait_for(what: &str, secs: u64, cond: impl FnMut() -> bool) {
    common::wait_for(what, secs, Duration::from_millis(5), cond);
}

/// Waits for a child to exit, killing it after `secs`.
fn wait_exit(mut child: Child, secs: u64) -> Output {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("gradscope did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    exp: PathBuf,
    out: PathBuf,
}

impl Setup {
    fn new(body: &str) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp.json");
        std::fs::write(&exp, body).unwrap();
        let out = tmp.path().join("out");
        Setup {
            _tmp: tmp,
            exp,
            out,
        }
    }

    fn sweep(steps: usize) -> Setup {
        Setup::new(&SWEEP.replace("STEPS", &steps.to_string()))
    }

    /// `run EXP --out OUT --threads 1 --no-plot` and `extra`.
    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "run",
            self.exp.to_str().unwrap(),
            "--out",
            self.out.to_str().unwrap(),
            "--threads",
            "1",
            "--no-plot",
        ];
        a.extend_from_slice(extra);
        a
    }

    fn run_dir(&self, run: &str) -> PathBuf {
        self.out.join("runs").join(run)
    }

    fn lock(&self) -> PathBuf {
        self.out.join(".gradscope.lock")
    }
}

fn run_json(dir: &Path) -> serde_json::Value {
    let p = dir.join("run.json");
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// How many rows share each key.
fn count_by<'a>(
    rows: &'a [Vec<String>],
    key: impl Fn(&'a Vec<String>) -> String,
) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(key(r)).or_insert(0) += 1;
    }
    m
}

/// A run that ended completed holds each step exactly once in every file:
/// train rows every `log_every` (10) steps and at the end, test rows at 0,
/// every `eval_every` (50) and at the end, and one gradient row per probe
/// point and kind at each probe step (0, every 10, the last).
fn assert_complete_exactly_once(dir: &Path, steps: usize) {
    let json = run_json(dir);
    assert_eq!(json["status"], "completed", "{}", dir.display());
    assert_eq!(json["steps_done"], steps);
    let (_, m) = read_csv(&dir.join("metrics.csv"));
    let train: Vec<usize> = m
        .iter()
        .filter(|r| r[2] == "train")
        .map(|r| r[0].parse().unwrap())
        .collect();
    let with_last = |mut v: Vec<usize>| {
        if v.last() != Some(&steps) {
            v.push(steps);
        }
        v
    };
    let want = with_last((10..=steps).step_by(10).collect());
    assert_eq!(train, want, "{}: train rows", dir.display());
    let test: Vec<usize> = m
        .iter()
        .filter(|r| r[2] == "test")
        .map(|r| r[0].parse().unwrap())
        .collect();
    let want = with_last((0..=steps).step_by(50).collect());
    assert_eq!(test, want, "{}: test rows", dir.display());
    let (_, g) = read_csv(&dir.join("gradients.csv"));
    let per_key = count_by(&g, |r| format!("{}/{}/{}", r[0], r[1], r[3]));
    assert!(
        per_key.values().all(|&c| c == 1),
        "{}: a gradient row twice",
        dir.display()
    );
    let probed: BTreeSet<usize> = g.iter().map(|r| r[0].parse().unwrap()).collect();
    let mut want: BTreeSet<usize> = (0..steps).step_by(10).collect();
    want.insert(steps - 1);
    assert_eq!(probed, want, "{}: probe steps", dir.display());
    let points = json["probe_points"].as_array().unwrap().len();
    assert_eq!(
        g.len(),
        probed.len() * points * 2,
        "{}: rows per probe step",
        dir.display()
    );
}

/// No `RUN.partial` or `RUN.old` folder is left in `runs/`.
fn assert_no_leftovers(out: &Path) {
    let left: Vec<String> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") || n.ends_with(".old"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn summary_runs(out: &Path) -> Vec<(String, String)> {
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let status = h.iter().position(|c| c == "status").unwrap();
    rows.iter()
        .map(|r| (r[0].clone(), r[status].clone()))
        .collect()
}

/// Issue 6, item 3: SIGKILL in the middle of a sweep, then `--resume`:
/// every run is complete exactly once, the run finished before the kill is
/// kept as it was, and the killed run is trained again from scratch.
#[test]
fn sigkill_mid_sweep_then_resume_completes_every_run_exactly_once() {
    let steps = 600;
    let s = Setup::sweep(steps);
    let mut child = spawn(&s.args(&[]));
    // Kill once the first run has ended and the second is writing rows.
    let first = s.run_dir(RUNS[0]);
    let second_partial = s.out.join("runs").join(format!("{}.partial", RUNS[1]));
    wait_for("the first run to end and the second to start", 120, || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed"
        );
        first.join("run.json").exists()
            && std::fs::read_to_string(second_partial.join("metrics.csv"))
                .map(|t| t.lines().count() > 3)
                .unwrap_or(false)
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // What a SIGKILL leaves: the unfinished run says "running", and the lock
    // file stays, unheld.
    assert_eq!(run_json(&second_partial)["status"], "running");
    assert!(s.lock().exists());
    let kept_before = std::fs::read(first.join("run.json")).unwrap();

    let o = gradscope(&s.args(&["--resume"]));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("took over a stale lock"), "{err}");
    assert!(
        err.contains("keeping 1 finished run(s) (plain-d4-s0 completed)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(first.join("run.json")).unwrap(),
        kept_before,
        "kept run untouched"
    );
    for run in RUNS {
        assert_complete_exactly_once(&s.run_dir(run), steps);
    }
    assert_no_leftovers(&s.out);
    assert!(!s.lock().exists(), "lock removed at the end");
    let summary = summary_runs(&s.out);
    assert_eq!(
        summary,
        RUNS.iter()
            .map(|r| (r.to_string(), "completed".to_string()))
            .collect::<Vec<_>>()
    );
}

/// Issue 6, item 3: SIGINT and SIGTERM stop the sweep promptly, flush the
/// CSVs, mark the run `interrupted`, release the lock and exit non-zero;
/// `--resume` then trains the interrupted run and those not started.
#[test]
fn sigint_and_sigterm_mark_the_run_interrupted_and_resume_finishes() {
    for sig in ["INT", "TERM"] {
        let steps = 100_000;
        let s = Setup::sweep(steps);
        let child = spawn(&s.args(&[]));
        let partial = s.out.join("runs").join(format!("{}.partial", RUNS[0]));
        wait_for("rows of the first run", 120, || {
            std::fs::read_to_string(partial.join("gradients.csv"))
                .map(|t| t.lines().count() > 40)
                .unwrap_or(false)
        });
        let sent = Instant::now();
        signal(&child, sig);
        let o = wait_exit(child, 60);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(130), "SIG{sig}: {err}");
        assert!(
            sent.elapsed() < Duration::from_secs(20),
            "SIG{sig}: slow to stop"
        );
        assert!(err.contains("--resume"), "{err}");

        let dir = s.run_dir(RUNS[0]);
        let json = run_json(&dir);
        assert_eq!(json["status"], "interrupted", "SIG{sig}");
        let done = json["steps_done"].as_u64().unwrap() as usize;
        assert!(done < steps);
        // Every row parses and belongs to a step the run reached.
        let (_, m) = read_csv(&dir.join("metrics.csv"));
        assert!(m
            .iter()
            .all(|r| r.len() == 8 && r[0].parse::<usize>().unwrap() <= done));
        let (_, g) = read_csv(&dir.join("gradients.csv"));
        assert!(g
            .iter()
            .all(|r| r.len() == 10 && r[5].parse::<f64>().is_ok()));
        assert!(g.iter().all(|r| r[0].parse::<usize>().unwrap() <= done));
        // Whole probe steps only: the same rows per probed step.
        let per_step = count_by(&g, |r| r[0].clone());
        let sizes: BTreeSet<usize> = per_step.values().copied().collect();
        assert_eq!(
            sizes.len(),
            1,
            "SIG{sig}: a probe step cut short: {per_step:?}"
        );
        assert_eq!(
            summary_runs(&s.out),
            vec![(RUNS[0].to_string(), "interrupted".to_string())]
        );
        assert!(!s.lock().exists(), "SIG{sig}: lock removed");
        assert_no_leftovers(&s.out);

        if sig == "TERM" {
            // Resume with a shorter budget: only kept runs must match the
            // file, and an interrupted run is not kept.
            std::fs::write(&s.exp, SWEEP.replace("STEPS", "100")).unwrap();
            let o = gradscope(&s.args(&["--resume"]));
            assert!(o.status.success(), "{}", stderr(&o));
            for run in RUNS {
                assert_complete_exactly_once(&s.run_dir(run), 100);
            }
        }
    }
}

/// Issue 6, item 5: while one sweep writes a results directory, a second
/// `gradscope run` on it is refused with the holder named; after the first
/// ends the lock is gone.
#[test]
fn a_second_writer_is_refused_while_the_first_runs() {
    let s = Setup::sweep(100_000);
    let child = spawn(&s.args(&[]));
    wait_for("the lock file", 120, || {
        std::fs::read_to_string(s.lock())
            .map(|t| t.contains("\"pid\""))
            .unwrap_or(false)
    });
    let o = gradscope(&s.args(&["--resume"]));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("another gradscope is writing this results directory"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", child.id())), "{err}");
    assert!(err.contains(&s.lock().display().to_string()), "{err}");
    assert!(err.contains("started 20"), "{err}");
    assert!(err.contains(&format!("command `{BIN} run")), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    signal(&child, "TERM");
    let o = wait_exit(child, 60);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!s.lock().exists(), "the first sweep removes its lock");
}

/// Issue 6, item 5: a lock file left by a process that is gone (here the pid
/// of a finished `true`) is taken over and reported; the lock is removed at
/// the end, and also when the run stops on an error.
#[test]
fn a_stale_lock_is_taken_over_and_the_lock_is_removed_on_error_too() {
    let s = Setup::sweep(20);
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    std::fs::create_dir_all(&s.out).unwrap();
    std::fs::write(
        s.lock(),
        format!(
            r#"{{"pid":{dead_pid},"host":"h","started":"2000-01-01T00:00:00Z","command":"gradscope run old.json"}}"#
        ),
    )
    .unwrap();
    let o = gradscope(&s.args(&[]));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("took over a stale lock left by pid {dead_pid}")),
        "{err}"
    );
    assert!(!s.lock().exists());

    // An error after the lock is taken (here: runs exist) still removes it.
    let o = gradscope(&s.args(&[]));
    assert!(!o.status.success());
    assert!(!s.lock().exists(), "lock left after an error");
}

/// Without --resume or --restart, a results directory that holds runs of
/// the experiment is refused and left as it is; --resume keeps what is
/// finished; --restart trains again; --resume refuses a changed setting.
#[test]
fn a_full_results_directory_needs_resume_or_restart() {
    let s = Setup::sweep(20);
    let o = gradscope(&s.args(&[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(s.run_dir(RUNS[0]).join("run.json")).unwrap();

    let o = gradscope(&s.args(&[]));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains(&s.out.display().to_string()), "{err}");
    assert!(err.contains("already holds 4 run(s)"), "{err}");
    assert!(
        err.contains("--resume") && err.contains("--restart"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(s.run_dir(RUNS[0]).join("run.json")).unwrap(),
        before
    );

    let o = gradscope(&s.args(&["--resume"]));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("keeping 4 finished run(s)"), "{err}");
    assert!(err.contains("0 runs to train"), "{err}");
    assert_eq!(
        std::fs::read(s.run_dir(RUNS[0]).join("run.json")).unwrap(),
        before
    );

    let o = gradscope(&s.args(&["--restart"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(
        std::fs::read(s.run_dir(RUNS[0]).join("run.json")).unwrap(),
        before
    );
    for run in RUNS {
        assert_complete_exactly_once(&s.run_dir(run), 20);
    }

    // A kept run must have been trained with the same settings.
    std::fs::write(
        &s.exp,
        SWEEP
            .replace("STEPS", "20")
            .replace("\"lr\": 0.05", "\"lr\": 0.5"),
    )
    .unwrap();
    let o = gradscope(&s.args(&["--resume"]));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(&s.run_dir(RUNS[0]).join("run.json").display().to_string()),
        "{err}"
    );
    assert!(err.contains("different train"), "{err}");
    // Adding a depth is not a changed setting: only the new runs train.
    std::fs::write(
        &s.exp,
        SWEEP.replace("STEPS", "20").replace("[4, 8]", "[4, 8, 3]"),
    )
    .unwrap();
    let o = gradscope(&s.args(&["--resume"]));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("2 runs to train"), "{err}");
    assert_eq!(summary_runs(&s.out).len(), 6);
}

/// Issue 6, item 2: with an lr of 1e6, the first update multiplies every
/// weight of a ReLU MLP by about 1e5, so a depth-16 net's output (a product
/// of 15 such layers, 1e75) overflows float32 at once; a depth-2 net stays
/// finite for the two steps it gets (measured: it first overflows at step
/// 4). The diverged run stops at once and says so; the sweep goes on; the
/// summary and the charts mark it.
#[test]
fn a_diverging_run_stops_at_once_and_the_sweep_goes_on() {
    let body = r#"{
      "name": "blowup",
      "dataset": { "kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 16 },
      "model": { "family": "mlp", "width": 16, "activation": "relu", "init": "kaiming" },
      "variants": ["plain"],
      "depths": [16, 2],
      "seeds": [0],
      "train": { "lr": 1e6, "batch_size": 32, "steps": 2, "eval_every": 1, "log_every": 1 },
      "probe": { "every": 1 }
    }"#;
    let s = Setup::new(body);
    let mut args = s.args(&[]);
    args.retain(|a| *a != "--no-plot");
    let o = gradscope(&args);
    let err = stderr(&o);
    assert!(
        o.status.success(),
        "a diverged run is a result, not an error: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let dir = s.run_dir("plain-d16-s0");
    let json = run_json(&dir);
    assert_eq!(json["status"], "diverged", "{err}");
    let at = json["diverged_at_step"]
        .as_u64()
        .expect("the step is recorded") as usize;
    assert!(at < 2);
    assert_eq!(json["steps_done"], at);
    assert!(err.contains(&format!("at step {at}")), "{err}");
    // Nothing after the diverged step; every row parses.
    let (_, m) = read_csv(&dir.join("metrics.csv"));
    assert!(m.iter().all(|r| r[0].parse::<usize>().unwrap() <= at));
    let (_, g) = read_csv(&dir.join("gradients.csv"));
    let last = g
        .iter()
        .map(|r| r[0].parse::<usize>().unwrap())
        .max()
        .unwrap();
    assert!(last <= at);
    // Probing every step, the last probed step is the diverged one when a
    // gradient went first, or the step before when the loss did.
    assert!(last + 1 >= at, "last probe {last}, diverged at {at}");

    assert_eq!(
        run_json(&s.run_dir("plain-d2-s0"))["status"],
        "completed",
        "the sweep went on"
    );
    assert_eq!(
        summary_runs(&s.out),
        vec![
            ("plain-d16-s0".to_string(), "diverged".to_string()),
            ("plain-d2-s0".to_string(), "completed".to_string())
        ]
    );
    // The charts are drawn and their legends mark the diverged run with
    // its step (issue 37), and a ✕ marks it in the plot.
    let svg = std::fs::read_to_string(s.out.join("plots/train_error_vs_step.svg")).unwrap();
    let d16 = format!("d16 (diverged at step {at})");
    assert!(svg.contains(&d16), "legend does not mark it");
    assert!(svg.contains("✕"), "no ✕");
    let svg = std::fs::read_to_string(s.out.join("plots/error_vs_depth.svg")).unwrap();
    assert!(svg.contains("1/2 diverged"), "legend does not mark it");
    assert!(svg.contains(&format!("plain {d16}")), "no entry for the ✕");
    assert!(svg.contains("✕"), "no ✕");
    for chart in ["gradient_profile", "gradient_vs_step", "layer_response_std"] {
        let png = s.out.join("plots").join(format!("{chart}.png"));
        assert!(
            png.metadata().map(|m| m.len() > 1000).unwrap_or(false),
            "{chart}"
        );
    }
}

/// Issue 6, item 6: the same experiment, seed and thread count on CPU give
/// byte-identical CSVs in two processes, once the wall-time column
/// (`metrics.csv`'s `elapsed_s`; gradients and activations have none) is
/// dropped. An MLP pair and a small CNN with batch norm on texture images,
/// 2 threads (so intra-op work can be split).
#[test]
fn same_seed_and_threads_give_identical_csvs_in_two_processes() {
    let mlp = SWEEP.replace("STEPS", "30").replace("[4, 8]", "[4]");
    let cnn = r#"{
      "name": "cnn",
      "dataset": { "kind": "synthetic-images", "samples": 128, "test_samples": 32, "classes": 4, "shape": [1, 8, 8] },
      "model": { "family": "cnn", "width": 4 },
      "variants": ["residual"], "depths": [8], "seeds": [3],
      "train": { "lr": 0.1, "momentum": 0.9, "batch_size": 16, "steps": 8, "eval_every": 4, "log_every": 2 },
      "probe": { "every": 4 }
    }"#;
    for (body, runs) in [
        (mlp.as_str(), RUNS[..2].to_vec()),
        (cnn, vec!["residual-d8-s3"]),
    ] {
        let s = Setup::new(body);
        let outs = [s.out.join("a"), s.out.join("b")];
        for out in &outs {
            let o = gradscope(&[
                "run",
                s.exp.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--threads",
                "2",
                "--device",
                "cpu",
                "--no-plot",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
        for run in runs {
            for file in ["metrics.csv", "gradients.csv", "activations.csv"] {
                let read = |out: &Path| {
                    let (h, rows) = read_csv(&out.join("runs").join(run).join(file));
                    let keep: Vec<usize> = (0..h.len()).filter(|&i| h[i] != "elapsed_s").collect();
                    let pick =
                        |r: &Vec<String>| keep.iter().map(|&i| r[i].clone()).collect::<Vec<_>>();
                    (pick(&h), rows.iter().map(pick).collect::<Vec<_>>())
                };
                let (a, b) = (read(&outs[0]), read(&outs[1]));
                assert!(!a.1.is_empty(), "{run}/{file} is empty");
                assert_eq!(a, b, "{run}/{file} differs between two processes");
            }
        }
    }
}

/// The sweep of [`SWEEP`] probed every step, with a checkpoint every 25
/// steps: slow enough (about a second a run) to be caught in the middle.
fn checkpointed_sweep() -> String {
    SWEEP
        .replace("STEPS", "1500")
        .replace(
            "\"log_every\": 10 }",
            "\"log_every\": 10, \"checkpoint_every\": 25 }",
        )
        .replace("\"every\": 10", "\"every\": 1")
}

/// Every CSV file of every run, `elapsed_s` (the last column of
/// metrics.csv, a wall time) cut off.
fn run_files(out: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for run in RUNS {
        for f in ["metrics.csv", "gradients.csv", "activations.csv"] {
            let text = std::fs::read_to_string(out.join("runs").join(run).join(f))
                .unwrap_or_else(|e| panic!("{run}/{f}: {e}"));
            let text = if f == "metrics.csv" {
                text.lines()
                    .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                text
            };
            files.insert(format!("{run}/{f}"), text);
        }
    }
    files
}

/// Issue 13 §2: a run stopped by SIGTERM (which saves a checkpoint where it
/// stops) and one killed by SIGKILL (which leaves the last periodic
/// checkpoint) go on from their checkpoints with `--resume`, and every CSV
/// of the sweep ends byte-identical, `elapsed_s` aside, to an uninterrupted
/// sweep's. The resumed run's run.json says where it went on from, and no
/// checkpoint is left once the runs are done.
#[test]
fn killed_and_resumed_runs_write_the_files_of_an_uninterrupted_run() {
    let body = checkpointed_sweep();
    let reference = Setup::new(&body);
    let o = gradscope(&reference.args(&[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = run_files(&reference.out);

    for sig in ["TERM", "KILL"] {
        let s = Setup::new(&body);
        let mut child = spawn(&s.args(&[]));
        // The first partial run folder with a checkpoint and 300 probed
        // rows (SIGKILL: with a checkpoint, at least one has been saved).
        let mut caught = None;
        wait_for("a run in the middle with a checkpoint", 120, || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the sweep ended before it could be stopped"
            );
            caught = RUNS.iter().copied().find(|run| {
                let partial = s.out.join("runs").join(format!("{run}.partial"));
                partial.join("checkpoint.pt").exists()
                    && std::fs::read_to_string(partial.join("gradients.csv"))
                        .map(|t| t.lines().count() > 300)
                        .unwrap_or(false)
            });
            caught.is_some()
        });
        let run = caught.unwrap();
        if sig == "KILL" {
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            signal(&child, sig);
            let o = wait_exit(child, 60);
            assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
            let json = run_json(&s.run_dir(run));
            assert_eq!(json["status"], "interrupted");
            assert!(s.run_dir(run).join("checkpoint.pt").exists());
        }

        let o = gradscope(&s.args(&["--resume"]));
        assert!(o.status.success(), "SIG{sig}: {}", stderr(&o));
        let json = run_json(&s.run_dir(run));
        let resumed = json["resumed_from"][0].as_u64().unwrap_or(0);
        assert!(
            resumed > 0 && resumed < 1500,
            "SIG{sig}: {run} did not go on from a checkpoint: {json}"
        );
        if sig == "KILL" {
            assert_eq!(resumed % 25, 0, "periodic checkpoints only");
        }
        let got = run_files(&s.out);
        for (file, text) in &want {
            assert!(
                &got[file] == text,
                "SIG{sig}: {file} differs from the uninterrupted run's (resumed at {resumed})"
            );
        }
        for r in RUNS {
            assert_complete_exactly_once_probed_every_step(&s.run_dir(r));
            assert!(
                !s.run_dir(r).join("checkpoint.pt").exists(),
                "{r}: checkpoint left"
            );
        }
        assert_no_leftovers(&s.out);
    }
}

fn assert_complete_exactly_once_probed_every_step(dir: &Path) {
    let json = run_json(dir);
    assert_eq!(json["status"], "completed", "{}", dir.display());
    assert_eq!(json["steps_done"], 1500);
}

/// Issue 16 §4: `report --watch` beside a running sweep rewrites
/// report.html as rows arrive, with a self-reload while the sweep runs,
/// takes no lock (the sweep finishes as usual), and ends by itself with a
/// last report, without the reload, once the sweep is over.
#[test]
fn report_watch_follows_a_running_sweep_and_ends_with_it() {
    let s = Setup::new(&checkpointed_sweep());
    let mut sweep = spawn(&s.args(&[]));
    wait_for("the sweep's first rows", 60, || {
        s.out.join("runs").is_dir() && s.lock().exists()
    });
    let watcher = Command::new(BIN)
        .args(["report", s.out.to_str().unwrap(), "--watch", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let html = s.out.join("report.html");
    let mut saw_live = false;
    while sweep.try_wait().unwrap().is_none() {
        saw_live |=
            std::fs::read_to_string(&html).is_ok_and(|t| t.contains("http-equiv=\"refresh\""));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sweep.wait().unwrap().success(), "the sweep was held up");
    assert!(
        saw_live,
        "no self-reloading report.html while the sweep ran"
    );
    let o = wait_exit(watcher, 30);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("final report written"),
        "{}",
        stderr(&o)
    );
    let last = std::fs::read_to_string(&html).unwrap();
    assert!(
        !last.contains("http-equiv"),
        "the last report still reloads"
    );
    assert_eq!(summary_runs(&s.out).len(), 4);
}

/// `gradscope ARGS` with `GRADSCOPE_INJECT_PANIC=WHAT` (a libtorch error
/// injected where tch would panic) and no RUST_BACKTRACE.
fn with_injected_panic(what: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("GRADSCOPE_INJECT_PANIC", what)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// Issue 15 §6: a libtorch failure (tch panics) in the middle of one run
/// fails that run only: it is recorded as failed with libtorch's reason in
/// one line and the step it reached, the other runs train, stderr has no
/// frame list, and the exit status is non-zero naming the failed run.
#[test]
fn a_libtorch_failure_mid_sweep_fails_only_that_run() {
    let s = Setup::sweep(200);
    let o = with_injected_panic("plain-d8-s0:50", &s.args(&[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("1 run(s) failed: plain-d8-s0"), "{err}");
    assert!(
        !err.contains("frame #") && !err.contains("stack backtrace"),
        "{err}"
    );
    let json = run_json(&s.run_dir("plain-d8-s0"));
    assert_eq!(json["status"], "failed");
    assert_eq!(json["steps_done"], 50, "the last training row's step");
    let reason = json["error"].as_str().unwrap();
    assert!(
        reason.starts_with("libtorch: DefaultCPUAllocator: not enough memory")
            && !reason.contains('\n'),
        "{reason}"
    );
    for run in ["plain-d4-s0", "residual-d4-s0", "residual-d8-s0"] {
        assert_complete_exactly_once(&s.run_dir(run), 200);
    }
    assert_no_leftovers(&s.out);
    assert!(!s.lock().exists());
}

/// Issue 15 §6: the same failure while the plan is built (every network is
/// built once before training) is one line naming the file, the run and
/// libtorch's reason, exit status 1, and nothing is written.
#[test]
fn a_libtorch_failure_while_planning_is_one_line_and_writes_nothing() {
    let s = Setup::sweep(200);
    let o = with_injected_panic("residual-d4-s0:build", &s.args(&[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ")
            && last.contains("exp.json")
            && last.contains("residual-d4-s0")
            && last.contains("not enough memory"),
        "{err}"
    );
    assert!(!err.contains("frame #"), "{err}");
    assert!(!s.out.exists(), "a refused plan wrote {}", s.out.display());
}

/// Issue 15 §2: a run.json cut short by a power loss (empty, or truncated)
/// is a run to train again under `--resume`; it does not stop the sweep.
#[test]
fn a_truncated_or_empty_run_json_is_trained_again_by_resume() {
    let s = Setup::sweep(100);
    let o = gradscope(&s.args(&[]));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(s.run_dir("plain-d4-s0").join("run.json"), "").unwrap();
    let json = std::fs::read_to_string(s.run_dir("plain-d8-s0").join("run.json")).unwrap();
    std::fs::write(
        s.run_dir("plain-d8-s0").join("run.json"),
        &json[..json.len() / 3],
    )
    .unwrap();
    let o = gradscope(&s.args(&["--resume"]));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("keeping 2 finished run(s)") && err.contains("training 2"),
        "{err}"
    );
    for run in RUNS {
        assert_complete_exactly_once(&s.run_dir(run), 100);
    }
}

/// A checkpoint that cannot be used (cut short, here to 10 bytes) is
/// removed with a note naming the run, and `--resume` trains that run from
/// step 0 instead of failing on it every time.
#[test]
fn an_unusable_checkpoint_is_dropped_and_the_run_trains_again() {
    let s = Setup::sweep(100_000);
    let child = spawn(&s.args(&[]));
    let partial = s.out.join("runs").join(format!("{}.partial", RUNS[0]));
    wait_for("rows of the first run", 120, || {
        std::fs::read_to_string(partial.join("gradients.csv")).is_ok_and(|t| t.lines().count() > 40)
    });
    signal(&child, "TERM");
    let o = wait_exit(child, 60);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let ck = s.run_dir(RUNS[0]).join("checkpoint.pt");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..10]).unwrap();
    std::fs::write(&s.exp, SWEEP.replace("STEPS", "100")).unwrap();
    let o = gradscope(&s.args(&["--resume"]));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // Other settings (the step budget changed) also start from step 0; the
    // note is about the file that cannot be read.
    assert!(
        err.contains("plain-d4-s0: its checkpoint cannot be used") && !err.contains("frame #"),
        "{err}"
    );
    for run in RUNS {
        assert_complete_exactly_once(&s.run_dir(run), 100);
    }
}
