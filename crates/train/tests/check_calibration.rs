//! `gradscope check`'s time estimate against the published experiments'
//! recorded times: for every results folder with run records, the estimate
//! of its experiment file at the recorded thread count against the sum of
//! `elapsed_s` over `runs/*/run.json` (a diverged run's estimate is scaled
//! to the steps it did). The numbers `check` quotes about its own accuracy
//! (`CALIBRATED_*`) are checked here, so a change to the cost model or to
//! the records that makes them false fails.

use gradscope_train::check::{
    check_experiment, CALIBRATED_BAND, CALIBRATED_ON, CALIBRATED_WITHIN_1_5,
};
use gradscope_train::spec::Experiment;
use std::collections::HashMap;
use std::path::Path;

/// `(results folder, estimate / measured)` for every published experiment.
fn ratios() -> Vec<(String, f64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut folders: Vec<_> = std::fs::read_dir(root.join("results"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    folders.sort();
    let mut out = Vec::new();
    for dir in folders {
        let Ok(runs) = std::fs::read_dir(dir.join("runs")) else {
            continue;
        };
        let mut records: HashMap<String, serde_json::Value> = HashMap::new();
        for run in runs {
            let path = run.unwrap().path().join("run.json");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let record: serde_json::Value = serde_json::from_str(&text).unwrap();
            records.insert(record["run"].as_str().unwrap().to_string(), record);
        }
        let Some(first) = records.values().next() else {
            continue;
        };
        let file = first["experiment_file"].as_str().unwrap().to_string();
        let exp = Experiment::from_file(&root.join(&file)).unwrap();
        let checked = check_experiment(&exp).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (mut estimate, mut measured) = (0.0, 0.0);
        for run in &checked.runs {
            let r = records
                .get(&run.run.name())
                .unwrap_or_else(|| panic!("{name}: no record of {}", run.run.name()));
            let threads = r["threads"].as_u64().unwrap() as usize;
            let done = r["steps_done"].as_f64().unwrap() / r["steps_planned"].as_f64().unwrap();
            estimate += run.estimate_at(threads) * done;
            measured += r["elapsed_s"].as_f64().unwrap();
        }
        assert_eq!(
            records.len(),
            checked.runs.len(),
            "{name}: records of runs the plan lacks"
        );
        out.push((name, estimate / measured));
    }
    out
}

#[test]
fn estimates_match_the_published_records() {
    let ratios = ratios();
    let table: Vec<String> = ratios.iter().map(|(n, r)| format!("{n} {r:.2}")).collect();
    let table = table.join(", ");
    assert_eq!(ratios.len(), CALIBRATED_ON, "{table}");
    for (name, r) in &ratios {
        assert!(
            (1.0 / CALIBRATED_BAND..=CALIBRATED_BAND).contains(r),
            "{name}: estimate / measured = {r:.2}, outside {CALIBRATED_BAND}× ({table})"
        );
    }
    let close = ratios
        .iter()
        .filter(|(_, r)| (1.0 / 1.5..=1.5).contains(r))
        .count();
    assert_eq!(close, CALIBRATED_WITHIN_1_5, "within 1.5×: {table}");
    eprintln!("{table}");
}
