//! Helpers shared by the end-to-end test files: run the real binary, write
//! an experiment, read a CSV.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn gradscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradscope"))
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
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// The number in `column` of the summary row of `run`.
pub fn summary_value(rows: &[Vec<String>], header: &[String], run: &str, column: &str) -> f64 {
    let col = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column}"));
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
