//! Run folder names: `plain-d32-s0`, and with swept settings
//! `plain-tanh-glorot-d20-s0`. The sweep names its folders with
//! [`run_name`]; the report names the planned runs that have no folder yet
//! the same way.

/// The model settings an experiment can sweep (give as a list), in the
/// order run names and `summary.csv` columns give them.
pub const SWEPT_FIELDS: [&str; 3] = ["activation", "init", "norm"];

/// A swept value as its run-name part: the value as the experiment file
/// writes it (`tanh`, `glorot`, `normal0.05`), except norm `none`, which
/// would not say which setting it is, reads `nonorm`.
pub fn name_part(field: &str, value: &str) -> String {
    match (field, value) {
        ("norm", "none") => "nonorm".to_string(),
        _ => value.to_string(),
    }
}

/// A swept value as chart panels and report headings say it: `tanh`,
/// `init glorot`, `batchnorm`, `no norm` (a bare `glorot` or `none` would
/// not say which setting it is).
pub fn describe(field: &str, value: &str) -> String {
    match (field, value) {
        ("init", v) => format!("init {v}"),
        ("norm", "none") => "no norm".to_string(),
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
