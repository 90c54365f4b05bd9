//! Shards and merge on the real binary, without Slurm (issue 13 §1, §3):
//! a sweep split three ways and merged is the unsharded sweep; merging
//! again changes nothing; what cannot be merged is refused by name.
//! (`slurm.rs` runs the same on a real Slurm.)

mod common;

use common::{gradscope, ok, read_csv, s, stderr, stdout, without_elapsed};
use std::path::{Path, PathBuf};

/// Four runs of different cost (depth 3 and 12): cost-balanced shards put
/// a deep run alone.
const SWEEP: &str = r#"{
  "name": "sharded",
  "dataset": { "kind": "synthetic", "samples": 256, "test_samples": 64, "classes": 4, "features": 8 },
  "model": { "family": "mlp", "width": 16, "activation": "tanh", "init": "glorot" },
  "variants": ["plain", "residual"],
  "depths": [3, 12],
  "seeds": [0],
  "train": { "lr": 0.05, "momentum": 0.9, "batch_size": 32, "steps": 60, "eval_every": 20 },
  "probe": { "every": 10 }
}"#;

const RUNS: [&str; 4] = [
    "plain-d3-s0",
    "residual-d3-s0",
    "plain-d12-s0",
    "residual-d12-s0",
];

/// `run EXP --out OUT --threads 1 --no-plot EXTRA…`.
fn run(exp: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        s(exp),
        "--out",
        s(out),
        "--threads",
        "1",
        "--no-plot",
    ];
    args.extend_from_slice(extra);
    gradscope(&args)
}

#[test]
fn three_shards_merged_are_the_unsharded_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("sharded.json");
    std::fs::write(&exp, SWEEP).unwrap();

    // The split, as every task computes it: each run in exactly one shard.
    let o = gradscope(&["check", s(&exp), "--shards", "3"]);
    ok(&o);
    let text = stdout(&o);
    for run in RUNS {
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with("shard ") && l.contains(run))
                .count(),
            1,
            "{run} in one shard: {text}"
        );
    }
    // Depth 12 costs about four times depth 3: each deep run is alone.
    for deep in ["plain-d12-s0", "residual-d12-s0"] {
        let line = text.lines().find(|l| l.contains(deep)).unwrap();
        assert!(!line.contains("d3-s0"), "{line}");
    }

    let reference = tmp.path().join("reference");
    ok(&run(&exp, &reference, &[]));
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("shard{i}")))
        .collect();
    for (i, dir) in shards.iter().enumerate() {
        ok(&run(&exp, dir, &["--shard", &format!("{i}/3")]));
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|p| s(p)));
    args.extend(["--out", s(&merged)]);
    let o = gradscope(&args);
    ok(&o);
    assert!(
        stderr(&o).contains("4 run(s) of \"sharded\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        without_elapsed(&merged.join("summary.csv")),
        without_elapsed(&reference.join("summary.csv"))
    );
    for run in RUNS {
        for f in ["metrics.csv", "gradients.csv", "activations.csv"] {
            let at = |d: &Path| d.join("runs").join(run).join(f);
            assert_eq!(
                without_elapsed(&at(&merged)),
                without_elapsed(&at(&reference)),
                "{run}/{f}"
            );
        }
    }
    assert!(merged.join("report.md").is_file());

    // Again: nothing to copy, the same summary.
    let before = std::fs::read(merged.join("summary.csv")).unwrap();
    let o = gradscope(&args);
    ok(&o);
    assert!(
        stderr(&o).contains("0 copied now, 4 already there"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(merged.join("summary.csv")).unwrap(), before);

    // A shard missing: its runs are listed, the rest merged, exit 0.
    let partial = tmp.path().join("partial");
    let o = gradscope(&[
        "merge",
        s(&shards[0]),
        s(&shards[1]),
        "--out",
        s(&partial),
        "--no-plot",
    ]);
    ok(&o);
    let (_, rows) = read_csv(&shards[2].join("summary.csv"));
    for row in &rows {
        assert!(
            stderr(&o).contains(&row[0]),
            "missing {} not listed: {}",
            row[0],
            stderr(&o)
        );
    }
    let (_, merged_rows) = read_csv(&partial.join("summary.csv"));
    assert_eq!(merged_rows.len(), 4 - rows.len());
}

#[test]
fn merge_prefers_a_completed_copy_and_refuses_what_it_cannot_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("sharded.json");
    std::fs::write(&exp, SWEEP).unwrap();
    let done = tmp.path().join("done");
    ok(&run(&exp, &done, &["--shard", "0/1"]));

    // A second copy of every run that says it was interrupted half way.
    let stale = tmp.path().join("stale");
    for run in RUNS {
        let (from, to) = (done.join("runs").join(run), stale.join("runs").join(run));
        std::fs::create_dir_all(&to).unwrap();
        for f in ["run.json", "metrics.csv"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
        let json = std::fs::read_to_string(to.join("run.json"))
            .unwrap()
            .replace("\"completed\"", "\"interrupted\"");
        std::fs::write(to.join("run.json"), json).unwrap();
    }
    let out = tmp.path().join("out");
    ok(&gradscope(&[
        "merge",
        s(&stale),
        s(&done),
        "--out",
        s(&out),
        "--no-plot",
    ]));
    let (h, rows) = read_csv(&out.join("summary.csv"));
    let status = h.iter().position(|c| c == "status").unwrap();
    assert!(rows.iter().all(|r| r[status] == "completed"), "{rows:?}");
    // Merging the worse copies alone afterwards (a task that timed out)
    // leaves the completed runs in place.
    let o = gradscope(&["merge", s(&stale), "--out", s(&out), "--no-plot"]);
    ok(&o);
    assert!(stderr(&o).contains("0 copied now"), "{}", stderr(&o));
    let (_, rows) = read_csv(&out.join("summary.csv"));
    assert!(rows.iter().all(|r| r[status] == "completed"), "{rows:?}");

    // Refused, by name: a folder that is not a results directory, and a copy
    // trained with another lr.
    let o = gradscope(&["merge", s(tmp.path()), "--out", s(&tmp.path().join("x"))]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a gradscope results directory"),
        "{}",
        stderr(&o)
    );
    let other = tmp.path().join("other.json");
    std::fs::write(&other, SWEEP.replace("\"lr\": 0.05", "\"lr\": 0.1")).unwrap();
    let changed = tmp.path().join("changed");
    ok(&run(&other, &changed, &["--shard", "0/2"]));
    let o = gradscope(&[
        "merge",
        s(&done),
        s(&changed),
        "--out",
        s(&tmp.path().join("y")),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("trained with other settings") && stderr(&o).contains("train.lr"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    // Refused too: merging into a folder that holds a sweep with other
    // settings (its runs would be mixed), and into a folder inside an input.
    let o = gradscope(&["merge", s(&done), "--out", s(&changed), "--no-plot"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("already holds") && stderr(&o).contains("train.lr"),
        "{}",
        stderr(&o)
    );
    let inside = done.join("merged");
    let o = gradscope(&["merge", s(&done), "--out", s(&inside)]);
    assert!(
        !o.status.success() && stderr(&o).contains("is inside"),
        "{}",
        stderr(&o)
    );
    assert!(!inside.exists());
}

#[test]
fn a_malformed_shard_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("sharded.json");
    std::fs::write(&exp, SWEEP).unwrap();
    let out = tmp.path().join("out");
    for (shard, says) in [
        ("3/3", "numbered 0 to 2"),
        ("0/0", "at least 1"),
        ("a/3", "not a whole number"),
        ("2", "is not I/N"),
    ] {
        let o = run(&exp, &out, &["--shard", shard]);
        assert!(!o.status.success(), "--shard {shard} accepted");
        assert!(stderr(&o).contains(says), "--shard {shard}: {}", stderr(&o));
        assert!(!out.exists(), "--shard {shard} wrote {}", out.display());
    }
    let o = gradscope(&["check", s(&exp), "--shards", "0"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--shards"),
        "{}",
        stderr(&o)
    );
    // More shards than runs would leave tasks idle; a shard count too large
    // for memory must not be allocated.
    let o = gradscope(&["check", s(&exp), "--shards", "5"]);
    assert!(
        !o.status.success() && stderr(&o).contains("give at most 4"),
        "{}",
        stderr(&o)
    );
    let o = run(&exp, &out, &["--shard", "9/18446744073709551615"]);
    assert!(
        o.status.success(),
        "an empty shard of a huge count: {}",
        stderr(&o)
    );
    let (_, rows) = read_csv(&out.join("summary.csv"));
    assert!(rows.is_empty());
}
