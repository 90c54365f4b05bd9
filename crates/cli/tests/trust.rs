//! Issue 38: what gradscope reads from files is not trusted. A run's name
//! read from `run.json` is never a path; a checkpoint must be this run's;
//! every failure is one line; nothing hangs. Each test reproduced its case
//! before the fix.

mod common;

use common::{gradscope, stderr};
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

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
    // the old copy moved aside, the new one half copied.
    let runs = out.join("runs");
    std::fs::rename(runs.join("plain-d2-s0"), runs.join("plain-d2-s0.old")).unwrap();
    std::fs::create_dir_all(runs.join("plain-d2-s0.partial")).unwrap();
    std::fs::write(runs.join("plain-d2-s0.partial/metrics.csv"), "step,").unwrap();
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
    assert!(runs.join("plain-d2-s0/run.json").is_file());
    assert!(!runs.join("plain-d2-s0.old").exists() && !runs.join("plain-d2-s0.partial").exists());
}
