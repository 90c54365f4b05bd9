//! Issue 38: what gradscope reads from files is not trusted. A run's name
//! read from `run.json` is never a path; a checkpoint must be this run's;
//! every failure is one line; nothing hangs. Each test reproduced its case
//! before the fix.

mod common;

use common::{gradscope, s, stderr, BIN};
use std::path::{Path, PathBuf};

/// Two tiny runs.
const SWEEP: &str = r#"{
  "name": "trust",
  "dataset": { "kind": "synthetic", "samples": 128, "test_samples": 32, "classes": 4, "features": 8 },
  "model": { "family": "mlp", "width": 8, "activation": "tanh", "init": "glorot" },
  "variants": ["plain"],
  "depths": [2, 3],
  "seeds": [0],
  "train": { "lr": 0.05, "momentum": 0.9, "batch_size": 16, "steps": 20, "eval_every": 10 },
  "probe": { "every": 5 }
}"#;

/// Trains `SWEEP` into `TMP/name`; returns that folder.
fn shard(tmp: &Path, name: &str) -> PathBuf {
    let exp = tmp.join("trust.json");
    std::fs::write(&exp, SWEEP).unwrap();
    let out = tmp.join(name);
    let o = gradscope(&[
        "run",
        s(&exp),
        "--out",
        s(&out),
        "--threads",
        "1",
        "--no-plot",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// Sets `"run"` in a run's run.json.
fn set_run_name(run_dir: &Path, name: &str) {
    let json = run_dir.join("run.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    v["run"] = serde_json::Value::String(name.to_owned());
    std::fs::write(&json, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// A folder outside every results directory with a file in it, as a
/// merge must never touch.
fn victim(tmp: &Path) -> PathBuf {
    let v = tmp.join("victim").join("important");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("data.txt"), "precious").unwrap();
    v
}

#[test]
fn merge_refuses_a_run_name_that_is_a_relative_or_absolute_path() {
    let tmp = tempfile::tempdir().unwrap();
    let sh = shard(tmp.path(), "s2");
    let victim = victim(tmp.path());
    let run_dir = sh.join("runs/plain-d2-s0");
    // Relative: from m/runs/, ../../victim/important is TMP/victim/important.
    // Absolute: the victim's own path.
    for name in ["../../victim/important".to_owned(), s(&victim).to_owned()] {
        set_run_name(&run_dir, &name);
        let out = tmp.path().join("m");
        let o = gradscope(&["merge", s(&sh), "--out", s(&out), "--no-plot"]);
        assert!(!o.status.success(), "run {name:?} merged: {}", stderr(&o));
        let err = stderr(&o);
        // One line that names the file and the bad value.
        assert!(
            err.contains("plain-d2-s0") && err.contains("run.json") && err.contains(&name),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        // The victim is untouched: its file is there and nothing was added.
        assert_eq!(
            std::fs::read_to_string(victim.join("data.txt")).unwrap(),
            "precious",
            "run {name:?}"
        );
        assert_eq!(
            std::fs::read_dir(&victim).unwrap().count(),
            1,
            "run {name:?}"
        );
        // A record naming another planned run is refused too: copies must
        // come from folders of their own name.
    }
    set_run_name(&run_dir, "plain-d3-s0");
    let o = gradscope(&[
        "merge",
        s(&sh),
        "--out",
        s(&tmp.path().join("m2")),
        "--no-plot",
    ]);
    assert!(!o.status.success(), "a record of another run merged");
    assert!(stderr(&o).contains("plain-d3-s0"), "{}", stderr(&o));
}

#[test]
fn merge_copies_regular_files_only_and_names_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let sh = shard(tmp.path(), "s");
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, "not the run's").unwrap();
    let csv = sh.join("runs/plain-d2-s0/metrics.csv");
    std::fs::remove_file(&csv).unwrap();
    std::os::unix::fs::symlink(&secret, &csv).unwrap();
    let out = tmp.path().join("m");
    let o = gradscope(&["merge", s(&sh), "--out", s(&out), "--no-plot"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "a symlinked CSV merged: {err}");
    assert!(
        err.contains("metrics.csv") && err.contains("symbolic link"),
        "{err}"
    );
    // Nothing of the file outside the shard came into OUT.
    let copied = out.join("runs/plain-d2-s0/metrics.csv");
    assert!(
        std::fs::read_to_string(&copied).map_or(true, |t| !t.contains("not the run's")),
        "merge copied the symlink's target"
    );
}

#[test]
fn merge_recovers_a_run_a_killed_merge_left_between_its_renames() {
    let tmp = tempfile::tempdir().unwrap();
    let sh = shard(tmp.path(), "s");
    let out = tmp.path().join("m");
    let o = gradscope(&["merge", s(&sh), "--out", s(&out), "--no-plot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Killed between publish's two renames while replacing plain-d2-s0:
    // the old copy moved aside, the new one whole in RUN.partial/ (marked
    // to tell which one ends up in place).
    let runs = out.join("runs");
    let run = runs.join("plain-d2-s0");
    let partial = runs.join("plain-d2-s0.partial");
    std::fs::create_dir_all(&partial).unwrap();
    for f in std::fs::read_dir(&run).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, partial.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(partial.join("new.txt"), "the new copy").unwrap();
    gradscope_format::durable::move_to(&run, &runs.join("plain-d2-s0.old")).unwrap();
    // A later merge of a shard without that run must keep it.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("runs")).unwrap();
    let from = sh.join("runs/plain-d3-s0");
    let to = other.join("runs/plain-d3-s0");
    std::fs::create_dir_all(&to).unwrap();
    for f in std::fs::read_dir(&from).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
    let o = gradscope(&["merge", s(&other), "--out", s(&out), "--no-plot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("in none of"), "{}", stderr(&o));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.contains("plain-d2-s0"), "{summary}");
    // The interrupted publish was finished: the new copy is in place.
    assert!(run.join("run.json").is_file() && run.join("new.txt").is_file());
    assert!(!runs.join("plain-d2-s0.old").exists() && !runs.join("plain-d2-s0.partial").exists());
}

/// `gradscope ARGS` without RUST_BACKTRACE (which asks for the full text)
/// and with `env` set.
fn quiet(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    limited(None, args, env)
}

/// [`quiet`], with the address space limited to `kib` KiB (`ulimit -v`)
/// when given, so that a large allocation fails on any machine.
fn limited(kib: Option<u64>, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = match kib {
        None => std::process::Command::new(BIN),
        Some(k) => {
            let mut c = std::process::Command::new("sh");
            c.args(["-c", &format!("ulimit -v {k} && exec \"$0\" \"$@\""), BIN]);
            c
        }
    };
    c.args(args).env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The widest net the file allows: its second layer (65536² floats) is
/// 16 GiB, more than [`limited`] lets the process have.
const HUGE: &str = r#"{
  "name": "huge",
  "dataset": { "kind": "synthetic", "samples": 64, "test_samples": 16, "classes": 4, "features": 8 },
  "model": { "family": "mlp", "width": 65536, "activation": "tanh", "init": "glorot" },
  "variants": ["plain"],
  "depths": [3],
  "seeds": [0],
  "train": { "lr": 0.05, "batch_size": 16, "steps": 3, "eval_every": 3 }
}"#;

#[test]
fn check_and_run_with_a_network_too_large_for_memory_say_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("huge.json");
    std::fs::write(&exp, HUGE).unwrap();
    // `check` exited 101 from an uncaught panic that named neither.
    let o = limited(Some(4_000_000), &["check", s(&exp)], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("huge.json") && err.contains("plain-d3-s0") && err.contains("memory"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains(".cargo"),
        "{err}"
    );
    // `run` printed the panic hook's line (with a cargo registry path)
    // before its own.
    let out = tmp.path().join("out");
    let args = ["run", s(&exp), "--out", s(&out), "--threads", "1"];
    let o = limited(Some(4_000_000), &args, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("plain-d3-s0") && !err.contains(".cargo"),
        "{err}"
    );
}

/// Issue 38 §2: a run interrupted at some step, given the checkpoint of the
/// same-named run of an experiment with another lr (here by copying it
/// in), went on from it without a word and cut its CSVs mid-row.
#[test]
fn a_checkpoint_of_the_same_run_with_other_settings_is_not_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let body = SWEEP
        .replace("\"steps\": 20", "\"steps\": 40, \"checkpoint_every\": 10")
        .replace("\"every\": 5", "\"every\": 1");
    let train = |lr: &str, name: &str, fail_at: &str| {
        let exp = tmp.path().join(format!("{name}.json"));
        std::fs::write(&exp, body.replace("\"lr\": 0.05", &format!("\"lr\": {lr}"))).unwrap();
        let out = tmp.path().join(name);
        let args = [
            "run",
            s(&exp),
            "--out",
            s(&out),
            "--threads",
            "1",
            "--no-plot",
        ];
        // A libtorch failure at a step leaves the run failed with the last
        // checkpoint, which --resume goes on from.
        let o = quiet(&args, &[("GRADSCOPE_INJECT_PANIC", fail_at)]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        (exp, out)
    };
    // This run got further (checkpoint at step 20) than the other one
    // (step 10), so the other's recorded CSV lengths fit in this run's
    // files, and only their settings tell them apart (before the fix: a
    // silent resume, and rows cut mid-row).
    let (exp, a) = train("0.05", "a", "plain-d3-s0:27");
    let (_, b) = train("0.02", "b", "plain-d3-s0:16");
    let run = |dir: &Path| dir.join("runs/plain-d3-s0");
    assert!(run(&a).join("checkpoint.pt").is_file() && run(&b).join("checkpoint.pt").is_file());
    std::fs::copy(run(&b).join("checkpoint.pt"), run(&a).join("checkpoint.pt")).unwrap();
    let args = [
        "run",
        s(&exp),
        "--out",
        s(&a),
        "--threads",
        "1",
        "--no-plot",
        "--resume",
    ];
    let o = quiet(&args, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("plain-d3-s0: its checkpoint cannot be used") && err.contains("train.lr"),
        "{err}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run(&a).join("run.json")).unwrap()).unwrap();
    assert_eq!(json["status"], "completed");
    // run.json leaves out an empty `resumed_from`.
    let resumed = json.get("resumed_from").and_then(|r| r.as_array());
    assert!(
        resumed.is_none_or(|r| r.is_empty()),
        "went on from the other run's: {resumed:?}"
    );
    // Every row of every CSV is whole: as many fields as the header.
    for f in ["metrics.csv", "gradients.csv", "activations.csv"] {
        let text = std::fs::read_to_string(run(&a).join(f)).unwrap();
        let width = text.lines().next().unwrap().split(',').count();
        for line in text.lines() {
            assert_eq!(line.split(',').count(), width, "{f}: {line}");
        }
    }
}

/// A results folder on a 600 KB tmpfs: `None` (with a note) where one
/// cannot be mounted (not root, no mount), as the test is then skipped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=600k", "tmpfs", s(at)])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        if !ok {
            eprintln!("skipped: cannot mount a 600 KB tmpfs here (needs root, as CI runs)");
            return None;
        }
        Some(SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Issue 38 §3: a full disk while a checkpoint was written aborted the
/// process (libtorch's stream writer throws in a destructor: rc 134 and 23
/// C++ frames). It must be an ordinary error naming the file and "No space
/// left on device", and the sweep must stay resumable.
#[test]
fn a_full_disk_while_checkpointing_is_one_error_and_the_sweep_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&tmp.path().join("disk")) else {
        return;
    };
    let body = SWEEP
        .replace("\"depths\": [2, 3]", "\"depths\": [2, 3, 4, 5]")
        .replace("\"width\": 8", "\"width\": 48")
        .replace("\"steps\": 20", "\"steps\": 400, \"checkpoint_every\": 50")
        .replace("\"every\": 5", "\"every\": 1");
    let exp = tmp.path().join("full.json");
    std::fs::write(&exp, &body).unwrap();
    let out = disk.0.join("out");
    let args = [
        "run",
        s(&exp),
        "--out",
        s(&out),
        "--threads",
        "1",
        "--no-plot",
    ];
    let o = quiet(&args, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The file named is the checkpoint (its temporary name would say less).
    assert!(
        err.contains("checkpoint.pt: No space left on device"),
        "{err}"
    );
    assert!(
        !err.contains("terminate called") && !err.contains("frame #"),
        "{err}"
    );
    // Every line of the output is one message.
    for line in err.lines() {
        assert!(line.len() < 400, "{line}");
    }
    // Moved to a disk with room, the sweep resumes and completes.
    let roomy = tmp.path().join("roomy");
    let cp = std::process::Command::new("cp")
        .args(["-a", s(&out), s(&roomy)])
        .status()
        .unwrap();
    assert!(cp.success());
    let args = [
        "run",
        s(&exp),
        "--out",
        s(&roomy),
        "--threads",
        "1",
        "--no-plot",
        "--resume",
    ];
    let o = quiet(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = std::fs::read_to_string(roomy.join("summary.csv")).unwrap();
    assert_eq!(summary.matches(",completed,").count(), 4, "{summary}");
}

/// Issue 38 §4: `landscape --span 1e308` hung at 100% CPU in plotters and
/// ignored SIGINT. It is refused at once, naming the flag and the value.
#[test]
fn a_span_whose_axis_is_not_finite_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let sh = shard(tmp.path(), "out");
    let run = sh.join("runs/plain-d2-s0");
    for span in ["1e308", "9e307", "1e-320"] {
        let mut child = std::process::Command::new(BIN)
            .args(["landscape", s(&run), "--span", span, "--grid", "3"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > until {
                let _ = child.kill();
                panic!("--span {span}: still running after 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "--span {span}: {err}");
        assert!(
            err.contains("--span") && err.contains("must be finite"),
            "{err}"
        );
    }
}

/// Issue 38 §4: Ctrl-C during `report --watch` (or any chart drawing)
/// left `plots/.NAME.PID-0.tmp.png`; the next command that draws cleans
/// the temporary files of writers that no longer run.
#[test]
fn temporary_chart_files_of_a_dead_writer_are_cleaned_by_the_next_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let out = shard(tmp.path(), "out");
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).unwrap();
    // No process has this pid (Linux's pid_max is at most 2^22).
    let dead = u32::MAX - 1;
    let left = [
        plots.join(format!(".train_error_vs_step.{dead}-0.tmp.png")),
        out.join(format!(".summary.csv.tmp-{dead}-0")),
    ];
    // Untouched for longer than a live writer leaves its file (a minute).
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    for f in &left {
        std::fs::write(f, "half a file").unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(f).unwrap();
        file.set_modified(then).unwrap();
    }
    let o = gradscope(&["plot", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The summary's is cleaned by the next durable write into the folder:
    // `report` writes report.md there.
    let o = gradscope(&["report", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in &left {
        assert!(!f.exists(), "{} is still there", f.display());
    }
}

/// `gradscope slurm EXP --shards 2` run from `cwd`.
fn slurm_from(cwd: &Path, exp: &Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["slurm", s(exp), "--shards", "2"])
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Issue 38 §5: sbatch expands `%u`, `%j` in `--output`, so a working
/// folder named `50%u_%j` sent the logs to a folder that does not exist.
#[test]
fn slurm_escapes_percent_in_the_log_path() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("trust.json");
    std::fs::write(&exp, SWEEP).unwrap();
    let cwd = tmp.path().join("50%u_%j");
    std::fs::create_dir_all(&cwd).unwrap();
    let o = slurm_from(&cwd, &exp);
    assert!(o.status.success(), "{}", stderr(&o));
    for script in ["sweep.sbatch", "merge.sbatch"] {
        let text = std::fs::read_to_string(cwd.join("results/trust/slurm").join(script)).unwrap();
        let output = text
            .lines()
            .find(|l| l.starts_with("#SBATCH --output="))
            .unwrap();
        assert!(output.contains("/50%%u_%%j/results/"), "{script}: {output}");
        // The shell lines keep the path as it is (single-quoted).
        assert!(text.contains("/50%u_%j/"), "{script}: {text}");
    }
}

/// Issue 38 §5: a working folder whose name is not UTF-8 was written
/// lossily (U+FFFD) and the command exited 0: it is refused by name.
#[test]
fn slurm_refuses_a_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("trust.json");
    std::fs::write(&exp, SWEEP).unwrap();
    let cwd = tmp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir_all(&cwd).unwrap();
    let o = slurm_from(&cwd, &exp);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("caf\\xE9") && err.contains("UTF-8"), "{err}");
    assert!(!cwd.join("results").exists(), "scripts were written");
}

/// Issue 38 §3: out of memory while training (the `Result` path, here in
/// the backward pass) put libtorch's 38 C++ frames (6.3 KB) into stderr
/// and run.json's `error`. The run is failed with one line.
#[test]
fn out_of_memory_while_training_is_one_line_in_the_terminal_and_run_json() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("oom.json");
    let body = HUGE
        .replace("\"width\": 65536", "\"width\": 9000")
        .replace("\"depths\": [3]", "\"depths\": [6]");
    std::fs::write(&exp, body).unwrap();
    let out = tmp.path().join("out");
    let args = [
        "run",
        s(&exp),
        "--out",
        s(&out),
        "--threads",
        "1",
        "--no-plot",
    ];
    let o = limited(Some(4_500_000), &args, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("frame #") && err.len() < 2000, "{err}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("runs/plain-d6-s0/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["status"], "failed");
    let error = json["error"].as_str().unwrap();
    assert!(
        error.contains("allocate") && !error.contains('\n') && !error.contains("frame #"),
        "{error}"
    );
}

/// Issue 38 §1, the audit: `report` drew the landscape charts from the
/// runs `landscape_summary.csv` names, and read `runs/../../victim/
/// landscape.csv` outside the results folder. A name that is not a plain
/// folder name is refused by line, and nothing outside is read.
#[test]
fn report_reads_no_landscape_outside_the_results_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = shard(tmp.path(), "out");
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("landscape.csv"), "alpha,beta,loss,error\n").unwrap();
    std::fs::write(
        out.join("landscape_summary.csv"),
        "run,variant,depth,seed,grid,span,samples,direction_seed,centre_loss,min_loss,max_loss,local_minima,nonconvex_fraction,roughness,nonfinite,elapsed_s\n\
         ../../victim,plain,2,0,3,1,10,0,1,1,1,0,0,0,0,1\n",
    )
    .unwrap();
    let o = gradscope(&["report", s(&out)]);
    let err = stderr(&o);
    assert!(
        err.contains("line 2") && err.contains("\"../../victim\"") && err.contains("not a plain"),
        "{err}"
    );
    assert!(!err.contains("victim/landscape.csv"), "read outside: {err}");
}
