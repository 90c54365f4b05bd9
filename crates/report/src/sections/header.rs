//! The page's opening: the experiment, its settings and how to rerun it.

use super::cfg_str;
use crate::runs::Loaded;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// Experiments that a make target reruns (and publishes).
const MAKE_TARGETS: [(&str, &str); 3] = [
    ("fashion-", "make fashion"),
    ("glorot-", "make glorot"),
    ("landscape", "make landscape"),
];

pub(crate) fn header(md: &mut String, root: &Path, loaded: &Loaded) {
    let record = loaded.first_record();
    let config = loaded.config();
    let dir_name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string());
    let name = record
        .and_then(|r| r.experiment.clone())
        .or_else(|| cfg_str(config, "/name").map(str::to_owned))
        .unwrap_or(dir_name);
    mdln!(md, "# Report: {name}");
    mdln!(md);
    mdln!(
        md,
        "Written by `gradscope report` from the files in `{}`. Every number is \
         ours unless it is marked as He et al.'s.",
        root.display()
    );
    mdln!(md);
    if let Some(d) = cfg_str(config, "/description").filter(|d| !d.is_empty()) {
        mdln!(md, "> {d}");
        mdln!(md);
    }
    let file = record.and_then(|r| r.experiment_file.clone());
    match &file {
        Some(f) => mdln!(md, "- Experiment file: `{f}`"),
        None => mdln!(
            md,
            "- Experiment file: not recorded in run.json; the resolved experiment \
             is the `config` field of any `runs/RUN/run.json`"
        ),
    }
    if let Some(c) = config {
        let model = c.get("model");
        let get = |k: &str| model.and_then(|m| m.get(k)).map(short_json);
        let fields: Vec<String> = ["family", "width", "activation", "norm", "init", "shortcut"]
            .iter()
            .filter_map(|k| get(k).map(|v| format!("{k} {v}")))
            .collect();
        mdln!(md, "- Model: {}", fields.join(", "));
        if let Some(ds) = c.get("dataset") {
            mdln!(md, "- Dataset: {}", short_json(ds));
        }
        if let Some(t) = c.get("train") {
            mdln!(md, "- Training: {}", short_json(t));
        }
    }
    if let Some(r) = record {
        mdln!(
            md,
            "- Device: {} with {} threads",
            r.device.as_deref().unwrap_or("?"),
            r.threads.map_or("?".into(), |t| t.to_string())
        );
    }
    mdln!(md);
    mdln!(md, "Rerun:");
    mdln!(md);
    mdln!(md, "```sh");
    let file = file.unwrap_or_else(|| format!("experiments/{name}.json"));
    mdln!(md, "gradscope run {file} --out {}", root.display());
    mdln!(md, "gradscope report {}", root.display());
    mdln!(md, "```");
    if let Some((_, target)) = MAKE_TARGETS.iter().find(|(p, _)| name.starts_with(p)) {
        mdln!(md);
        mdln!(
            md,
            "or `{target}`, which runs this experiment and its siblings and writes their reports."
        );
    }
    mdln!(md);
}

/// A JSON value on one line, strings without quotes; an object's null
/// fields (options left at "none") are left out.
fn short_json(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} {}", short_json(v)))
                .collect();
            parts.join(", ")
        }
        // A swept setting's list: `[pytorch-default, glorot]`.
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(short_json).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}
