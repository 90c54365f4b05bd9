//! Helpers shared by the end-to-end test files: run the real binary, write
//! an experiment or a small dataset, read a CSV, wait for a condition.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The gradscope binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_gradscope");

pub fn gradscope(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the gradscope binary starts")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that the command succeeded without a panic.
pub fn ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

/// A path as a command-line argument (the tests' paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The repository's root folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes `body` as `dir/exp.json`.
pub fn experiment(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("exp.json");
    std::fs::write(&path, body).unwrap();
    path
}

/// Header and rows of a CSV file.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .iter()
                .map(String::from)
                .collect()
        })
        .collect();
    (header, rows)
}

/// The index of column `name`.
pub fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// A CSV file, header first, with its `elapsed_s` column (a wall time)
/// cut off.
pub fn without_elapsed(path: &Path) -> Vec<Vec<String>> {
    let (h, rows) = read_csv(path);
    let keep: Vec<usize> = (0..h.len()).filter(|&i| h[i] != "elapsed_s").collect();
    std::iter::once(h)
        .chain(rows)
        .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

/// The number in `column` of the summary row of `run`.
pub fn summary_value(rows: &[Vec<String>], header: &[String], run: &str, column: &str) -> f64 {
    let col = self::column(header, column);
    let row = rows
        .iter()
        .find(|r| r[0] == run)
        .unwrap_or_else(|| panic!("no run {run}"));
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{run}.{column} = {:?}", row[col]))
}

/// Runs experiment `body` into a temporary directory with one thread;
/// panics with stderr unless it succeeds. Returns the directory (keep it
/// alive) and the results folder.
pub fn run_ok(body: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), body);
    let out = tmp.path().join("out");
    let mut args = vec![
        "run",
        exp.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    let o = gradscope(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    (tmp, out)
}

/// The first of `tools` that is not on PATH, said as why a test that needs
/// it cannot run (`packages`: what installs them).
pub fn missing_tool(tools: &[&str], packages: &str) -> Option<String> {
    tools.iter().find_map(|tool| {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        (!found).then(|| format!("{tool} is not installed (apt-get install {packages})"))
    })
}

/// Waits for `cond`, asking every `poll`; panics after `secs`.
pub fn wait_for(what: &str, secs: u64, poll: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(poll);
    }
}

/// An IDX file (MNIST's format): magic number, sizes, then the bytes.
pub fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

/// The files of an MNIST-format set, in the order [`write_idx_set`] writes.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// A valid MNIST-format set in `dir`: 16 training and 4 test images of 6×6.
pub fn write_idx_set(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let images = |n: u32| idx(0x803, &[n, 6, 6], &vec![128; (n * 36) as usize]);
    let labels = |n: u32| {
        idx(
            0x801,
            &[n],
            &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>(),
        )
    };
    for (name, bytes) in IDX_FILES
        .iter()
        .zip([images(16), labels(16), images(4), labels(4)])
    {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The files of a CIFAR-10 binary set.
pub const CIFAR_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

/// A valid CIFAR-10 binary set in `dir`: `per_file` records a file, each
/// 1 label byte (cycling through the 10 classes) + 3072 pseudo-random
/// pixel bytes.
pub fn write_cifar(dir: &Path, per_file: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut seed = 7u32;
    let mut byte = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (seed >> 16) as u8
    };
    for name in CIFAR_FILES {
        let mut bytes = Vec::new();
        for i in 0..per_file {
            bytes.push((i % 10) as u8);
            bytes.extend((0..3072).map(|_| byte()));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A sweep of four small runs (plain and residual, depths 4 and 8);
/// `STEPS` is replaced by the step budget.
pub const SWEEP: &str = r#"{
  "name": "sweep",
  "dataset": { "kind": "synthetic", "samples": 512, "test_samples": 128, "classes": 4, "features": 16 },
  "model": { "family": "mlp", "width": 16, "activation": "tanh", "init": "glorot" },
  "variants": ["plain", "residual"],
  "depths": [4, 8],
  "seeds": [0],
  "train": { "lr": 0.05, "momentum": 0.9, "batch_size": 32, "steps": STEPS, "eval_every": 50, "log_every": 10 },
  "probe": { "every": 10 }
}"#;

/// The runs of [`SWEEP`], in plan order.
pub const RUNS: [&str; 4] = [
    "plain-d4-s0",
    "residual-d4-s0",
    "plain-d8-s0",
    "residual-d8-s0",
];
