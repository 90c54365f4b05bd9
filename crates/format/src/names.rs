//! Run folder names: `plain-d32-s0`, and with swept settings
//! `plain-tanh-glorot-d20-s0` or `plain-lr0.1-d8-s0`. The sweep names its
//! folders with [`run_name`]; the report names the planned runs that have
//! no folder yet the same way.

/// The settings an experiment can sweep (give as a list), in the order run
/// names and `summary.csv` columns give them. The model's `activation`,
/// `init`, `norm` (and the rnn family's `cell`) keep the short keys they always had (in `run.json`'s
/// `swept` and as `summary.csv` columns); every numeric field that can be a
/// list is named by its full path (`train.lr`), which is also its key and
/// its column.
pub const SWEPT_FIELDS: [&str; 38] = [
    "activation",
    "init",
    "norm",
    "cell",
    "model.width",
    "model.gate_bias",
    "model.residual_scale",
    "model.layers",
    "model.forget_bias",
    "dataset.samples",
    "dataset.test_samples",
    "dataset.classes",
    "dataset.features",
    "dataset.teacher_width",
    "dataset.noise",
    "dataset.seed",
    "dataset.subset_train",
    "dataset.subset_test",
    "dataset.validation",
    "dataset.downsample",
    "train.lr",
    "train.momentum",
    "train.weight_decay",
    "train.beta1",
    "train.beta2",
    "train.eps",
    "train.batch_size",
    "train.steps",
    "train.epochs",
    "train.lr_gamma",
    "train.warmup.lr",
    "train.warmup.until_train_error",
    "train.warmup.steps",
    "train.clip_grad_norm",
    "train.eval_every",
    "train.log_every",
    "probe.every",
    "probe.dense_steps",
];

/// The numeric fields that can be lists: [`SWEPT_FIELDS`] after the four
/// model settings (`cell` is the rnn family's), which are sweep axes of
/// their own types.
pub fn numeric_fields() -> &'static [&'static str] {
    &SWEPT_FIELDS[4..]
}

/// Where a swept field is in the experiment file, as a JSON pointer:
/// `/model/init`, `/train/lr`, `/train/warmup/steps`.
pub fn pointer(field: &str) -> String {
    match field.contains('.') {
        true => format!("/{}", field.replace('.', "/")),
        false => format!("/model/{field}"),
    }
}

/// The field as the experiment file's path says it: `model.init`,
/// `train.lr`.
pub fn path(field: &str) -> String {
    match field.contains('.') {
        true => field.to_string(),
        false => format!("model.{field}"),
    }
}

/// A numeric field's short word in run names and headings: the path after
/// its section, `_`-joined (`lr`, `batch_size`, `warmup_lr`).
fn short(field: &str) -> String {
    field
        .split_once('.')
        .map_or(field, |(_, rest)| rest)
        .replace('.', "_")
}

/// A swept value as its run-name part: the value as the experiment file
/// writes it (`tanh`, `glorot`, `normal0.05`), except norm `none`, which
/// would not say which setting it is, reads `nonorm`, and a number, which
/// follows its field's short word (`lr0.1`, `batch_size32`).
pub fn name_part(field: &str, value: &str) -> String {
    match (field, value) {
        ("norm", "none") => "nonorm".to_string(),
        (f, v) if f.contains('.') => format!("{}{v}", short(f)),
        _ => value.to_string(),
    }
}

/// A swept value as chart panels and report headings say it: `tanh`,
/// `init glorot`, `batchnorm`, `no norm`, `lr 0.1` (a bare `glorot`,
/// `none` or `0.1` would not say which setting it is).
pub fn describe(field: &str, value: &str) -> String {
    match (field, value) {
        ("init", v) => format!("init {v}"),
        ("norm", "none") => "no norm".to_string(),
        (f, v) if f.contains('.') => format!("{} {v}", short(f)),
        (_, v) => v.to_string(),
    }
}

/// The run folder name: variant, the swept values in [`SWEPT_FIELDS`]
/// order, depth and seed, joined by `-`.
pub fn run_name(variant: &str, swept: &[(&str, String)], depth: usize, seed: u64) -> String {
    let mut parts = vec![variant.to_string()];
    for field in SWEPT_FIELDS {
        if let Some((_, value)) = swept.iter().find(|(f, _)| *f == field) {
            parts.push(name_part(field, value));
        }
    }
    parts.push(format!("d{depth}"));
    parts.push(format!("s{seed}"));
    parts.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_put_swept_values_in_field_order() {
        assert_eq!(run_name("plain", &[], 32, 0), "plain-d32-s0");
        let swept = [("norm", "none".to_string()), ("init", "glorot".to_string())];
        assert_eq!(
            run_name("residual", &swept, 8, 2),
            "residual-glorot-nonorm-d8-s2"
        );
        let swept = [
            ("train.batch_size", "32".to_string()),
            ("train.lr", "0.1".to_string()),
            ("init", "orthogonal".to_string()),
        ];
        assert_eq!(
            run_name("plain", &swept, 4, 0),
            "plain-orthogonal-lr0.1-batch_size32-d4-s0"
        );
        assert_eq!(describe("train.warmup.lr", "0.01"), "warmup_lr 0.01");
        assert_eq!(pointer("train.warmup.steps"), "/train/warmup/steps");
        assert_eq!(pointer("init"), "/model/init");
    }
}

/// Whether `name` is one plain folder name, safe to join onto a path: not
/// empty, not `.` or `..`, and without a path separator or NUL. A run's
/// name read from a file (run.json, summary.csv) is joined onto a results
/// folder only when this holds, so that a hostile or broken file cannot
/// make a command read or write outside it.
pub fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && std::path::Path::new(name).is_relative()
}

#[cfg(test)]
mod folder_name_tests {
    use super::is_folder_name;

    #[test]
    fn only_a_single_plain_component_is_a_folder_name() {
        assert!(is_folder_name("plain-d3-s0"));
        assert!(is_folder_name("plain-normal0.05-d3-s0"));
        // Each of these would leave the folder it is joined onto, or name it.
        for bad in ["", ".", "..", "../x", "/abs", "a/b", "a\\b", "a\0b"] {
            assert!(!is_folder_name(bad), "{bad:?}");
        }
    }
}
