//! Sweeps on a real Slurm (issue 13 §5): a single-node cluster started by
//! `scripts/slurm-local.sh` on this machine, Debian's `slurm-wlm` and
//! `munge`.
//!
//! One test, since the cluster's ports are the machine's: it submits the
//! quickstart as a 3-shard array plus its merge job (`gradscope slurm
//! --submit`), requeues one array task in the middle of a run (`scontrol
//! requeue`: SIGTERM, as on preemption, then the task runs again), and
//! meanwhile trains the same file unsharded. The merged `summary.csv` and
//! every run's CSV files must equal the unsharded run's (`elapsed_s`
//! aside), and the requeued run must have gone on from its checkpoint.
//!
//! Without Slurm (not root, or not installed) the test says why and passes,
//! unless `GRADSCOPE_REQUIRE_SLURM=1` (set by `make test` when it installed
//! Slurm, so CI never skips it silently).

mod common;

use common::{repo, without_elapsed, BIN};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How often to look at the shards' files and ask squeue.
const POLL: Duration = Duration::from_millis(100);

/// The local cluster, stopped when the test ends (also on a panic).
struct Cluster {
    conf: String,
    state: PathBuf,
}

impl Cluster {
    fn start(state: &Path) -> Result<Cluster, String> {
        let o = Command::new(repo().join("scripts/slurm-local.sh"))
            .arg("start")
            .env("SLURM_LOCAL_DIR", state)
            // A placeholder GPU, so that `sbatch --test-only` can check a
            // script that asks for --gpus (nothing runs on it).
            .env("SLURM_LOCAL_GPUS", "1")
            .output()
            .map_err(|e| format!("scripts/slurm-local.sh: {e}"))?;
        let out = String::from_utf8_lossy(&o.stdout);
        if !o.status.success() {
            return Err(format!(
                "slurm-local.sh start: {}{}",
                out,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        let conf = out
            .trim()
            .strip_prefix("export SLURM_CONF=")
            .ok_or_else(|| format!("slurm-local.sh printed {out:?}"))?
            .to_owned();
        Ok(Cluster {
            conf,
            state: state.to_path_buf(),
        })
    }

    fn cmd(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/slurm-local.sh"))
            .args(["stop", "--clean"])
            .env("SLURM_LOCAL_DIR", &self.state)
            .output();
    }
}

/// Why Slurm cannot be used here, if it cannot.
fn unavailable() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Some("the local Slurm cluster needs root".into());
    }
    common::missing_tool(
        &["sbatch", "slurmctld", "slurmd", "munged"],
        "slurm-wlm munge",
    )
}

#[test]
fn quickstart_as_a_requeued_job_array_merges_to_the_unsharded_result() {
    if let Some(why) = unavailable() {
        assert!(
            std::env::var("GRADSCOPE_REQUIRE_SLURM").as_deref() != Ok("1"),
            "GRADSCOPE_REQUIRE_SLURM=1 but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&tmp.path().join("slurm")).expect("local Slurm starts");
    let exp = repo().join("experiments/quickstart.json");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    // Scripts `sbatch --test-only` accepts, GPU ones included (the issue's
    // `slurm experiments/fashion-cnn-full.json --shards 8 --gpus 1`).
    let full = repo().join("experiments/fashion-cnn-full.json");
    let slurm = |args: &[&str]| {
        Command::new(BIN)
            .args(["slurm", full.to_str().unwrap()])
            .args(args)
            .current_dir(&work)
            .env("SLURM_CONF", &cluster.conf)
            .output()
            .unwrap()
    };
    let full_dir = work.join("results/fashion-cnn-full/slurm");
    let test_only = |what: &str| {
        for script in ["sweep.sbatch", "merge.sbatch"] {
            let path = full_dir.join(script);
            let o = cluster.cmd("sbatch", &["--test-only", path.to_str().unwrap()]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{script} {what}: {err}");
        }
    };
    let o = slurm(&[
        "--shards",
        "8",
        "--gpus",
        "1",
        "--time",
        "12:00:00",
        "--partition",
        "debug",
        "--max-parallel",
        "4",
        "--jobs",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sweep = std::fs::read_to_string(full_dir.join("sweep.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-7%4",
        "#SBATCH --gpus=1",
        "#SBATCH --signal=B:TERM@120",
        "#SBATCH --requeue",
        "#SBATCH --partition=debug",
        "--shard \"$SLURM_ARRAY_TASK_ID/8\"",
        // --jobs 2: two runs share each task's GPU (issue 37 §4).
        "--resume --no-plot --threads 1 --jobs 2 --device cuda",
    ] {
        assert!(sweep.contains(line), "no {line:?} in {sweep}");
    }
    test_only("with --gpus");

    // A real cluster's options (issue 37 §3): account, memory, a node
    // feature (the local node has `local`), setup lines and a prelude,
    // and a merge time limit; sbatch --test-only accepts both scripts.
    let prelude = work.join("prelude.sh");
    std::fs::write(&prelude, "export GRADSCOPE_PRELUDE=1\n").unwrap();
    let cluster_options = |extra: &[&str]| {
        let mut args = vec!["--shards", "2", "--account", "lab", "--mem", "1G"];
        args.extend(["--constraint", "local", "--setup", "echo setting up"]);
        args.extend(["--setup", "ulimit -c 0", "--merge-time", "20"]);
        args.extend(["--prelude", prelude.to_str().unwrap()]);
        args.extend(extra);
        slurm(&args)
    };
    let o = cluster_options(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let merge = std::fs::read_to_string(full_dir.join("merge.sbatch")).unwrap();
    for line in [
        "#SBATCH --account=lab",
        "#SBATCH --mem=1G",
        "#SBATCH --constraint=local",
        "#SBATCH --time=20",
        "echo setting up\nulimit -c 0\nexport GRADSCOPE_PRELUDE=1\n",
    ] {
        assert!(merge.contains(line), "no {line:?} in {merge}");
    }
    test_only("with every option");
    // A script edited by hand is not overwritten unless --force.
    let edited = merge.replace("--time=20", "--time=45");
    std::fs::write(full_dir.join("merge.sbatch"), &edited).unwrap();
    let o = cluster_options(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("merge.sbatch: edited since gradscope wrote it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(full_dir.join("merge.sbatch")).unwrap(),
        edited
    );
    let o = cluster_options(&["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(full_dir.join("merge.sbatch")).unwrap(),
        merge
    );

    let slurm_dir = work.join("results/quickstart/slurm");

    // The unsharded run, beside the array.
    let reference = tmp.path().join("reference");
    let mut unsharded = Command::new(BIN)
        .args([
            "run",
            exp.to_str().unwrap(),
            "--out",
            reference.to_str().unwrap(),
        ])
        .args(["--threads", "1", "--no-plot"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let started = Instant::now();
    let o = Command::new(BIN)
        .args(["slurm", exp.to_str().unwrap(), "--shards", "3", "--submit"])
        .current_dir(&work)
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    let ids: Vec<&str> = printed.lines().skip(2).collect();
    let (array, merge) = (ids[0].to_owned(), ids[1].to_owned());

    // Requeue shard 1 once a run of it is training and has probed rows.
    let shard = work.join("results/quickstart/shards/1/runs");
    let mut requeued = None;
    common::wait_for("shard 1 in the middle of a run", 600, POLL, || {
        requeued = std::fs::read_dir(&shard).ok().and_then(|d| {
            d.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                p.to_string_lossy().ends_with(".partial")
                    && std::fs::read_to_string(p.join("metrics.csv"))
                        .is_ok_and(|t| t.lines().count() > 8)
            })
        });
        requeued.is_some()
    });
    let partial = requeued.unwrap();
    let run = partial
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".partial")
        .to_owned();
    let o = cluster.cmd("scontrol", &["requeue", &format!("{array}_1")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    common::wait_for("the merge job to end", 1200, POLL, || {
        let o = cluster.cmd("squeue", &["-h", "-j", &merge]);
        String::from_utf8_lossy(&o.stdout).trim().is_empty()
    });
    let sharded_s = started.elapsed().as_secs_f64();
    let status = unsharded.wait().unwrap();
    assert!(status.success(), "the unsharded run failed");
    eprintln!("sharded on the local cluster (3 tasks, 2 CPUs, one requeue): {sharded_s:.0} s");

    let merged = work.join("results/quickstart");
    assert_eq!(
        without_elapsed(&merged.join("summary.csv")),
        without_elapsed(&reference.join("summary.csv")),
        "merged summary.csv"
    );
    let runs: Vec<String> = std::fs::read_dir(reference.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs.len(), 30);
    for r in &runs {
        for f in ["metrics.csv", "gradients.csv", "activations.csv"] {
            let (a, b) = (
                merged.join("runs").join(r).join(f),
                reference.join("runs").join(r).join(f),
            );
            assert!(
                without_elapsed(&a) == without_elapsed(&b),
                "{r}/{f}: the merged run differs from the unsharded one"
            );
        }
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(merged.join("runs").join(&run).join("run.json")).unwrap(),
    )
    .unwrap();
    assert!(
        json["resumed_from"][0].as_u64().is_some_and(|s| s > 0),
        "{run} was requeued in the middle but did not go on from a checkpoint: {json}"
    );
    assert!(merged.join("report.md").is_file() && merged.join("plots").is_dir());
    let log = std::fs::read_dir(&slurm_dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with("_1.out"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_default();
    assert!(
        log.contains("REQUEUE"),
        "task 1's log shows no requeue: {log}"
    );
}
