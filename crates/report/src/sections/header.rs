//! The page's opening: the experiment, its settings and how to rerun it.

use super::cfg_str;
use crate::page::Block;
use crate::runs::Loaded;
use serde_json::Value;
use std::path::Path;

/// Experiments that a make target reruns (and publishes).
const MAKE_TARGETS: [(&str, &str); 3] = [
    ("fashion-", "make fashion"),
    ("glorot-", "make glorot"),
    ("landscape", "make landscape"),
];

pub(crate) fn header(root: &Path, loaded: &Loaded) -> Vec<Block> {
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
    let mut out = vec![
        Block::Heading(1, format!("Report: {name}")),
        Block::Para(format!(
            "Written by `gradscope report` from the files in `{}`. Every number is \
             ours unless it is marked as He et al.'s.",
            root.display()
        )),
    ];
    if let Some(d) = cfg_str(config, "/description").filter(|d| !d.is_empty()) {
        out.push(Block::Quote(d.to_owned()));
    }
    let file = record.and_then(|r| r.experiment_file.clone());
    out.push(Block::List(settings(loaded, file.as_deref())));
    out.push(Block::Para("Rerun:".to_owned()));
    let file = file.unwrap_or_else(|| format!("experiments/{name}.json"));
    out.push(Block::Code(
        "sh".to_owned(),
        format!(
            "gradscope run {file} --out {}\ngradscope report {}",
            root.display(),
            root.display()
        ),
    ));
    if let Some(target) = make_target(&name) {
        out.push(Block::Para(format!(
            "or `{target}`, which runs this experiment and its siblings and writes their reports."
        )));
    }
    out
}

/// The make target that reruns (and publishes) the experiment `name`.
fn make_target(name: &str) -> Option<&'static str> {
    MAKE_TARGETS
        .iter()
        .find(|(p, _)| name.starts_with(p))
        .map(|(_, target)| *target)
}

/// The bullets under the title: the experiment file, the model, dataset
/// and training settings, and the device.
fn settings(loaded: &Loaded, file: Option<&str>) -> Vec<String> {
    let mut items = vec![match file {
        Some(f) => format!("Experiment file: `{f}`"),
        None => "Experiment file: not recorded in run.json; the resolved experiment \
                 is the `config` field of any `runs/RUN/run.json`"
            .to_owned(),
    }];
    if let Some(c) = loaded.config() {
        let model = c.get("model");
        let get = |k: &str| model.and_then(|m| m.get(k)).map(short_json);
        let fields: Vec<String> = ["family", "width", "activation", "norm", "init", "shortcut"]
            .iter()
            .filter_map(|k| get(k).map(|v| format!("{k} {v}")))
            .collect();
        items.push(format!("Model: {}", fields.join(", ")));
        if let Some(ds) = c.get("dataset") {
            items.push(format!("Dataset: {}", short_json(ds)));
        }
        if let Some(t) = c.get("train") {
            items.push(format!("Training: {}", short_json(t)));
        }
    }
    if let Some(r) = loaded.first_record() {
        items.push(format!(
            "Device: {} with {}",
            r.device.as_deref().unwrap_or("?"),
            match r.threads {
                Some(1) => "1 thread".to_string(),
                Some(t) => format!("{t} threads"),
                None => "? threads".to_string(),
            }
        ));
    }
    items
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::fixture::{loaded, trained};
    use serde_json::json;

    /// The experiments that a make target reruns and publishes are named
    /// by their prefix (the Makefile's `fashion`, `glorot` and `landscape`
    /// targets); any other experiment gets no such line.
    #[test]
    fn the_make_target_follows_the_experiments_name() {
        assert_eq!(make_target("fashion-mlp"), Some("make fashion"));
        assert_eq!(make_target("fashion-cnn-full"), Some("make fashion"));
        assert_eq!(make_target("glorot-tanh"), Some("make glorot"));
        assert_eq!(make_target("landscape"), Some("make landscape"));
        assert_eq!(make_target("quickstart"), None);
        assert_eq!(
            make_target("my-fashion-mlp"),
            None,
            "a prefix, not a substring"
        );
    }

    /// A setting the experiment left at "none" (JSON null) is left out; a
    /// swept setting's list is written in brackets.
    #[test]
    fn settings_are_one_line_each_without_nulls() {
        assert_eq!(
            short_json(&json!({"kind": "synthetic", "dir": null, "classes": 10})),
            "classes 10, kind synthetic"
        );
        assert_eq!(
            short_json(&json!(["pytorch-default", "glorot"])),
            "[pytorch-default, glorot]"
        );
    }

    /// The title, the description as a quote, and a rerun command that
    /// falls back to `experiments/NAME.json` where run.json does not name
    /// the experiment file.
    #[test]
    fn the_header_says_how_to_rerun_without_a_recorded_file() {
        let config = json!({
            "name": "quickstart",
            "description": "Deep sigmoid MLPs.",
            "model": {"family": "mlp", "width": 64, "activation": "sigmoid"}
        });
        let runs = loaded(&config, vec![("plain", 4, 0, trained(0.1))]);
        let blocks = header(Path::new("results/quickstart"), &runs);
        assert_eq!(blocks[0], Block::Heading(1, "Report: quickstart".into()));
        assert_eq!(blocks[2], Block::Quote("Deep sigmoid MLPs.".into()));
        let Block::List(items) = &blocks[3] else {
            panic!("{blocks:?}")
        };
        assert!(items[0].contains("not recorded in run.json"), "{items:?}");
        assert_eq!(items[1], "Model: family mlp, width 64, activation sigmoid");
        assert_eq!(
            blocks[5],
            Block::Code(
                "sh".into(),
                "gradscope run experiments/quickstart.json --out results/quickstart\n\
                 gradscope report results/quickstart"
                    .into()
            )
        );
        assert_eq!(blocks.len(), 6, "no make target for quickstart");
    }
}
