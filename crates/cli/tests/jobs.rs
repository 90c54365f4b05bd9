//! `run --jobs N` (issue 37 §4), on the real binary: runs trained side by
//! side in worker processes write the files a sequential sweep writes, a
//! worker that dies costs only its run, and SIGTERM to the parent alone
//! stops every worker with nothing lost.
//!
//! Nets are tiny (width 16, depth ≤ 8, synthetic data).

mod common;

// Four runs of unequal cost: `--jobs 2` hands out the depth-8 ones first.
use common::{read_csv, stderr, without_elapsed, BIN, RUNS, SWEEP};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Setup {
    tmp: tempfile::TempDir,
    exp: PathBuf,
}

impl Setup {
    fn new(steps: usize) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp.json");
        std::fs::write(&exp, SWEEP.replace("STEPS", &steps.to_string())).unwrap();
        Setup { tmp, exp }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn command(&self, out: &str, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(["run", self.exp.to_str().unwrap(), "--out"])
            .arg(self.out(out))
            .args(["--threads", "1", "--no-plot"])
            .args(extra);
        c
    }

    fn run(&self, out: &str, extra: &[&str]) -> Output {
        self.command(out, extra).output().expect("gradscope runs")
    }
}

fn run_json(out: &Path, run: &str) -> serde_json::Value {
    let p = out.join("runs").join(run).join("run.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Nothing left of a run in training, and the lock released.
fn assert_clean(out: &Path) {
    for e in std::fs::read_dir(out.join("runs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            !name.ends_with(".partial") && !name.ends_with(".old"),
            "left behind: {name}"
        );
    }
    assert!(!out.join(".gradscope.lock").exists(), "lock left behind");
}

fn wait_exit(mut child: Child, secs: u64) -> Output {
    let until = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("gradscope did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Issue 37 §4: "Per-run CSVs are byte-identical to a sequential run with
/// the same per-run thread count". gradients.csv and activations.csv are
/// compared byte for byte; metrics.csv and summary.csv in every column but
/// `elapsed_s`, a wall time that differs between any two runs. A worker
/// also refuses a folder its parent does not lock.
#[test]
fn jobs_two_writes_the_files_of_a_sequential_sweep() {
    let s = Setup::new(60);
    let one = s.run("one", &["--jobs", "1"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let two = s.run("two", &["--jobs", "2"]);
    let err = stderr(&two);
    assert!(two.status.success(), "{err}");
    assert!(
        err.contains("2 at a time with 1 thread each"),
        "the header says how the runs share the machine: {err}"
    );
    let (a, b) = (s.out("one"), s.out("two"));
    for run in RUNS {
        for file in ["gradients.csv", "activations.csv"] {
            let (x, y) = (
                a.join("runs").join(run).join(file),
                b.join("runs").join(run).join(file),
            );
            assert!(
                std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                "{run}/{file} differs between --jobs 1 and --jobs 2"
            );
        }
        let m = |o: &Path| without_elapsed(&o.join("runs").join(run).join("metrics.csv"));
        assert_eq!(m(&a), m(&b), "{run}/metrics.csv");
        assert_eq!(run_json(&b, run)["status"], "completed");
        assert_eq!(run_json(&b, run)["threads"], 1);
    }
    let summary = |o: &Path| without_elapsed(&o.join("summary.csv"));
    assert_eq!(summary(&a), summary(&b), "summary.csv");
    assert_eq!(summary(&b).len(), 1 + RUNS.len());
    assert_clean(&b);

    // A worker started by hand, on a folder nobody locks, trains nothing.
    let config = run_json(&b, RUNS[0])["config"].to_string();
    let mut w = Command::new(BIN)
        .args([
            "worker",
            "--out",
            b.to_str().unwrap(),
            "--threads",
            "1",
            "--device",
            "cpu",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(w.stdin.take().unwrap(), "{config}").unwrap();
    let o = wait_exit(w, 60);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("locked by its parent"),
        "{}",
        stderr(&o)
    );
}

/// A worker killed mid-run (here it aborts, as libtorch does on a fatal
/// error) costs only its run: recorded `failed` with the signal, the other
/// runs complete, the sweep exits non-zero naming it, and `--resume`
/// trains it again.
#[test]
fn a_worker_that_dies_costs_only_its_run() {
    let s = Setup::new(60);
    let o = s
        .command("out", &["--jobs", "2"])
        .env("GRADSCOPE_INJECT_ABORT", "plain-d8-s0:20")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("1 run(s) failed: plain-d8-s0"), "{err}");
    let out = s.out("out");
    let lost = run_json(&out, "plain-d8-s0");
    assert_eq!(lost["status"], "failed");
    let why = lost["error"].as_str().unwrap();
    assert!(
        why.contains("signal 6") && why.contains("--resume"),
        "{why}"
    );
    assert!(lost["steps_done"].as_u64().unwrap() <= 20);
    for run in RUNS.iter().filter(|r| **r != "plain-d8-s0") {
        assert_eq!(run_json(&out, run)["status"], "completed", "{run}");
    }
    let (_, rows) = read_csv(&out.join("summary.csv"));
    assert_eq!(rows.len(), RUNS.len(), "every run in the summary");
    assert_clean(&out);

    let o = s.run("out", &["--jobs", "2", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for run in RUNS {
        assert_eq!(run_json(&out, run)["status"], "completed", "{run}");
    }
}

/// SIGTERM sent to the parent alone (kill, a batch system's time limit)
/// reaches every worker through its pipe: each active run stops within a
/// step, is recorded `interrupted` with its rows, the sweep exits 130, and
/// `--resume --jobs 2` finishes the sweep.
#[test]
fn sigterm_to_the_parent_stops_every_worker_and_resume_finishes() {
    let s = Setup::new(100_000);
    let child = s
        .command("out", &["--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = s.out("out");
    let partial = |run: &str| out.join("runs").join(format!("{run}.partial"));
    common::wait_for(
        "rows of both depth-8 runs",
        120,
        Duration::from_millis(10),
        || {
            ["plain-d8-s0", "residual-d8-s0"].iter().all(|r| {
                std::fs::read_to_string(partial(r).join("gradients.csv"))
                    .map(|t| t.lines().count() > 40)
                    .unwrap_or(false)
            })
        },
    );
    let sent = Instant::now();
    let ok = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let o = wait_exit(child, 60);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(sent.elapsed() < Duration::from_secs(20), "slow to stop");
    for run in ["plain-d8-s0", "residual-d8-s0"] {
        let j = run_json(&out, run);
        assert_eq!(j["status"], "interrupted", "{run}");
        let (_, g) = read_csv(&out.join("runs").join(run).join("gradients.csv"));
        assert!(!g.is_empty(), "{run} keeps its rows");
    }
    assert!(!out.join("runs").join("plain-d4-s0").exists());
    assert_clean(&out);

    std::fs::write(&s.exp, SWEEP.replace("STEPS", "60")).unwrap();
    let o = s.run("out", &["--jobs", "2", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for run in RUNS {
        assert_eq!(run_json(&out, run)["status"], "completed", "{run}");
    }
}

/// `slurm --jobs J` passes J on to every task's `run` and splits the
/// task's CPUs between the runs; J runs on fewer CPUs, and `--jobs 0`
/// anywhere, are refused by name.
#[test]
fn slurm_passes_jobs_on_and_bad_counts_are_refused() {
    let s = Setup::new(60);
    let exp = s.exp.to_str().unwrap();
    let slurm = |args: &[&str]| {
        Command::new(BIN)
            .args(["slurm", exp, "--shards", "2"])
            .args(args)
            .current_dir(s.tmp.path())
            .output()
            .unwrap()
    };
    let o = slurm(&["--cpus", "4", "--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script =
        std::fs::read_to_string(s.tmp.path().join("results/sweep/slurm/sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --cpus-per-task=4"), "{script}");
    assert!(script.contains("--threads 2 --jobs 2"), "{script}");

    let o = slurm(&["--cpus", "1", "--jobs", "2", "--force"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--jobs: 2 runs at a time need at least 2 CPUs"),
        "{}",
        stderr(&o)
    );
    let o = s.run("zero", &["--jobs", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--jobs: 0 must be at least 1"),
        "{}",
        stderr(&o)
    );
    assert!(!s.out("zero").exists(), "nothing written");
}
