//! Several results folders drawn as one (`gradscope compare`).
//!
//! [`load`] reads each folder as a [`ResultsDir`] and joins their runs into
//! one, each run's group prefixed by its folder's name
//! (`glorot-tanh: plain, init glorot`). Every chart then draws one panel per
//! folder and group, and every panel of a chart shares its axes: the
//! comparison is on one y scale, which separate reports never are.
//!
//! The joined directory's `run.json` record is the first folder's, with
//! every setting that differs between the folders turned into the list of
//! their values, so the charts' subtitles read "sigmoid or tanh"; the same
//! differences are returned as [`Difference`]s for the comparison's table.
//!
//! Folders that cannot be compared are refused by name: one without runs,
//! and folders of different tasks (classification error and the identity
//! task's reconstruction error would share an axis).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::axis::{Axis, Scale};
use crate::charts::{
    categorical, depth_axis, error_vs_depth_figure, gradient_profile_figure, group_grid, labelled,
    response_figure, run_note, spread, train_error_figure, ResponseStat, ACTIVATION_MEAN_VS_STEP,
    ERROR_VS_DEPTH, GRADIENT_PROFILE, SATURATION_VS_STEP, TRAIN_ERROR_VS_STEP,
};
use crate::error::PlotError;
use crate::figure::{ErrorBar, Figure, LegendEntry, Marker, Panel, Rendered, Series, Style};
use crate::read::{ResultsDir, RunData};

/// Chart: decay per layer of dL/dh against depth, measured at the start
/// and the end of training, with the mean-field prediction where it applies.
pub const DECAY_VS_DEPTH: &str = "decay_vs_depth";

/// The charts of a comparison, in the order they are written.
pub const COMPARE_CHARTS: [&str; 6] = [
    TRAIN_ERROR_VS_STEP,
    ERROR_VS_DEPTH,
    GRADIENT_PROFILE,
    DECAY_VS_DEPTH,
    SATURATION_VS_STEP,
    ACTIVATION_MEAN_VS_STEP,
];

/// One compared folder.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Its label on the charts and in the tables: the folder's own name,
    /// or the path as given when two folders share a name.
    pub name: String,
    /// The folder as loaded.
    pub results: ResultsDir,
}

/// A setting whose value is not the same in every folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where it is in `run.json`'s `config`, e.g. `model.activation`.
    pub setting: String,
    /// Its value in each folder, in [`Comparison::folders`] order; `None`
    /// where the folder's record does not have it.
    pub values: Vec<Option<String>>,
}

/// Folders loaded for comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The folders, in the order given.
    pub folders: Vec<Folder>,
    /// Their runs joined, labelled by folder; its root is the output folder.
    pub combined: ResultsDir,
    /// The settings that differ between the folders, in `config` order.
    pub differing: Vec<Difference>,
}

/// Loads `dirs` for comparison; `out` is where its charts and pages go.
///
/// Errors: fewer than two folders, a folder that is not a results directory
/// or has no runs, and folders of different tasks, each naming the folder.
pub fn load(dirs: &[PathBuf], out: &Path) -> Result<Comparison, PlotError> {
    if dirs.len() < 2 {
        return Err(PlotError::Compare {
            path: dirs.first().cloned().unwrap_or_default(),
            message: "give at least two results folders to compare".to_owned(),
        });
    }
    let mut folders = Vec::with_capacity(dirs.len());
    let mut seen: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(PlotError::Compare {
                path: dir.clone(),
                message: "no such folder".to_owned(),
            });
        }
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if seen.contains(&canonical) {
            return Err(PlotError::Compare {
                path: dir.clone(),
                message: "is given twice; its runs would be counted twice".to_owned(),
            });
        }
        seen.push(canonical);
        let results = ResultsDir::load(dir)?;
        if results.runs.is_empty() {
            return Err(PlotError::Compare {
                path: dir.clone(),
                message: "its summary.csv has no runs, so there is nothing to compare".to_owned(),
            });
        }
        folders.push(Folder {
            name: folder_name(dir),
            results,
        });
    }
    // Two shards both called `0`: the path as given tells them apart.
    let names: Vec<String> = folders.iter().map(|f| f.name.clone()).collect();
    for (folder, dir) in folders.iter_mut().zip(dirs) {
        if names.iter().filter(|n| **n == folder.name).count() > 1 {
            folder.name = dir.display().to_string();
        }
    }
    let first = &folders[0];
    for other in &folders[1..] {
        if other.results.task() != first.results.task() {
            return Err(PlotError::Compare {
                path: other.results.root.clone(),
                message: format!(
                    "its task is {} but {} is a {} experiment; their error axes mean different things",
                    other.results.task(),
                    first.results.root.display(),
                    first.results.task()
                ),
            });
        }
    }

    let differing = differences(&folders);
    let mut runs = Vec::new();
    for folder in &folders {
        for run in &folder.results.runs {
            let mut run = run.clone();
            run.summary.source = Some(folder.name.clone());
            runs.push(run);
        }
    }
    let combined = ResultsDir {
        root: out.to_path_buf(),
        runs,
        record: joined_record(&folders, &differing),
        style: Style::default(),
    };
    Ok(Comparison {
        folders,
        combined,
        differing,
    })
}

/// Writes the [`COMPARE_CHARTS`] into `out/plots/` at `style`.
pub fn render(comparison: &Comparison, style: Style) -> Result<Vec<Rendered>, PlotError> {
    let mut results = comparison.combined.clone();
    results.style = style;
    let dir = results.plots_dir();
    let figures = [
        train_error_figure(&results),
        error_vs_depth_figure(&results),
        gradient_profile_figure(&results),
        decay_vs_depth_figure(&results),
        response_figure(&results, ResponseStat::Saturation),
        response_figure(&results, ResponseStat::Mean),
    ];
    figures
        .into_iter()
        .map(|fig| labelled(fig, &results).write_with(&dir, &style))
        .collect()
}

/// The last component of `dir` (`results/glorot-tanh/` → `glorot-tanh`).
fn folder_name(dir: &Path) -> String {
    dir.components()
        .next_back()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s != ".")
        .unwrap_or_else(|| dir.display().to_string())
}

/// Every leaf of `value` (arrays count as one leaf: a swept list is one
/// setting) by its dotted path under `prefix`.
fn leaves(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, &path, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

/// A setting's value as a reader writes it: strings bare, the rest as JSON.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `config` fields that describe an experiment rather than set it up.
const NOT_SETTINGS: [&str; 2] = ["name", "description"];

/// The `config` settings whose values are not the same in every folder.
fn differences(folders: &[Folder]) -> Vec<Difference> {
    let per_folder: Vec<BTreeMap<String, Value>> = folders
        .iter()
        .map(|f| {
            let mut out = BTreeMap::new();
            if let Some(config) = f.results.record.as_ref().and_then(|r| r.get("config")) {
                leaves(config, "", &mut out);
            }
            out
        })
        .collect();
    let mut settings: Vec<&String> = per_folder.iter().flat_map(|m| m.keys()).collect();
    settings.sort();
    settings.dedup();
    settings
        .into_iter()
        // A folder's name and prose differ by construction; the page names
        // each folder's experiment already.
        .filter(|s| !NOT_SETTINGS.contains(&s.as_str()))
        .filter_map(|setting| {
            let values: Vec<Option<&Value>> = per_folder.iter().map(|m| m.get(setting)).collect();
            let same = values.windows(2).all(|w| w[0] == w[1]);
            (!same).then(|| Difference {
                setting: setting.clone(),
                values: values.into_iter().map(|v| v.map(show)).collect(),
            })
        })
        .collect()
}

/// The first folder's record, with each differing setting replaced by the
/// list of the folders' distinct values and the experiment named after all
/// of them, so that chart titles and subtitles describe the comparison.
fn joined_record(folders: &[Folder], differing: &[Difference]) -> Option<Value> {
    let mut record = folders.iter().find_map(|f| f.results.record.clone())?;
    for d in differing {
        let pointer = format!("/config/{}", d.setting.replace('.', "/"));
        let mut distinct: Vec<Value> = Vec::new();
        for f in folders {
            if let Some(v) = f.results.record.as_ref().and_then(|r| r.pointer(&pointer)) {
                if !distinct.contains(v) {
                    distinct.push(v.clone());
                }
            }
        }
        if let Some(slot) = record.pointer_mut(&pointer) {
            *slot = Value::Array(distinct);
        }
    }
    let names: Vec<&str> = folders.iter().map(|f| f.name.as_str()).collect();
    if let Some(obj) = record.as_object_mut() {
        obj.insert("experiment".to_owned(), Value::String(names.join(" vs ")));
    }
    Some(record)
}

/// Decay per layer of dL/dh (decades per layer over the trunk, positive
/// when the gradient shrinks toward the input) against depth: one panel per
/// group; solid = first five probe steps, dashed = last five, mean over
/// seeds with min–max bars; grey = the mean-field prediction at init where
/// the summary has one.
pub(crate) fn decay_vs_depth_figure(results: &ResultsDir) -> Figure {
    let depths = results.depths();
    let mut several_seeds = false;
    let mut any_theory = false;
    let (groups, layout) = group_grid(results);
    let panels = groups
        .into_iter()
        .enumerate()
        .map(|(gi, group)| {
            let color = categorical(gi);
            let runs: Vec<&RunData> = results
                .runs
                .iter()
                .filter(|r| r.summary.group() == group)
                .collect();
            let note = run_note(&runs);
            let mut panel = Panel::new(format!("{group}{note}"));
            type Pick = fn(&RunData) -> Option<f64>;
            let lines: [(&str, bool, Marker, Pick); 3] = [
                (
                    "at init (first 5 probe steps)",
                    false,
                    Marker::Circle,
                    |r| r.summary.grad_decay_init,
                ),
                (
                    "trained (last 5 probe steps)",
                    true,
                    Marker::Triangle,
                    |r| r.summary.grad_decay_final,
                ),
                ("mean-field prediction", true, Marker::Circle, |r| {
                    r.summary.grad_decay_theory
                }),
            ];
            for (li, (label, dashed, marker, pick)) in lines.into_iter().enumerate() {
                let theory = li == 2;
                let trained = li == 1;
                let line_color = if theory { GREY } else { color };
                let mut points = Vec::new();
                // A diverged run's last probe steps are those before its
                // loss blew up: not a trained net's decay, so not drawn.
                let mut diverged_only = Vec::new();
                for &depth in &depths {
                    let at: Vec<&&RunData> = runs
                        .iter()
                        .filter(|r| r.summary.depth == depth)
                        .filter(|r| !(trained && r.summary.is_diverged()))
                        .collect();
                    if trained && at.is_empty() && runs.iter().any(|r| r.summary.depth == depth) {
                        diverged_only.push(depth.to_string());
                    }
                    let at = at.into_iter();
                    if let Some((m, lo, hi, n)) = spread(at.map(|r| pick(r))) {
                        points.push((f64::from(depth), m));
                        if n > 1 && !theory {
                            several_seeds = true;
                            panel.error_bars.push(ErrorBar {
                                x: f64::from(depth),
                                lo,
                                hi,
                                color: line_color,
                                shift: if dashed { 0.004 } else { -0.004 },
                            });
                        }
                    }
                }
                let label = if diverged_only.is_empty() {
                    label.to_owned()
                } else {
                    format!(
                        "{label}; d{} diverged, not drawn",
                        diverged_only.join(", d")
                    )
                };
                if points.is_empty() && diverged_only.is_empty() {
                    continue;
                }
                any_theory |= theory;
                if !points.is_empty() {
                    panel.series.push(Series {
                        diverged: false,
                        points,
                        color: line_color,
                        dashed,
                        marker: Some(marker),
                    });
                }
                panel.legend.push(LegendEntry {
                    label,
                    color: line_color,
                    dashed,
                    marker: Some(marker),
                });
            }
            panel.empty_reason = Some("summary.csv has no grad_decay values".to_owned());
            panel
        })
        .collect();
    let y = Axis::new("decay of rms dL/dh (decades per layer)", Scale::Linear);
    let mut subtitle =
        "decades per layer that dL/dh loses toward the input, fitted over the trunk (head excluded); solid = at init, dashed = trained"
            .to_owned();
    if several_seeds {
        subtitle.push_str("; mean over seeds, bars span min–max");
    }
    if any_theory {
        subtitle.push_str("; grey = mean-field prediction");
    }
    Figure {
        name: DECAY_VS_DEPTH,
        title: "Gradient decay per layer vs depth".to_owned(),
        subtitle: Some(subtitle),
        x: depth_axis(&depths, false),
        y,
        panels,
        layout,
    }
}

/// The colour of a prediction, beside the measured lines' colours.
const GREY: plotters::style::RGBColor = plotters::style::RGBColor(120, 120, 120);

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, config: Value) -> Folder {
        Folder {
            name: name.to_owned(),
            results: ResultsDir {
                root: PathBuf::from(name),
                runs: Vec::new(),
                record: Some(serde_json::json!({ "experiment": name, "config": config })),
                style: Style::default(),
            },
        }
    }

    #[test]
    fn differences_name_each_setting_that_is_not_shared() {
        let a = folder(
            "glorot-sigmoid",
            serde_json::json!({"name": "s", "model": {"activation": "sigmoid", "init": ["a", "b"], "width": 16}}),
        );
        let b = folder(
            "glorot-tanh",
            serde_json::json!({"name": "t", "model": {"activation": "tanh", "init": ["a", "b"], "width": 16, "norm": "none"}}),
        );
        let d = differences(&[a.clone(), b.clone()]);
        assert_eq!(
            d,
            vec![
                Difference {
                    setting: "model.activation".into(),
                    values: vec![Some("sigmoid".into()), Some("tanh".into())],
                },
                Difference {
                    setting: "model.norm".into(),
                    values: vec![None, Some("none".into())],
                },
            ]
        );
        let record = joined_record(&[a, b], &d).unwrap();
        assert_eq!(record["experiment"], "glorot-sigmoid vs glorot-tanh");
        assert_eq!(
            record["config"]["model"]["activation"],
            serde_json::json!(["sigmoid", "tanh"])
        );
        // A shared list stays as it was.
        assert_eq!(
            record["config"]["model"]["init"],
            serde_json::json!(["a", "b"])
        );
    }

    /// Issue 30: a diverged run's "trained" decay is that of the steps
    /// before its loss blew up, so it is not drawn, and the legend says so.
    #[test]
    fn diverged_runs_are_not_drawn_as_a_trained_decay() {
        use gradscope_format::rows::SummaryRow;
        let row = |depth: u32, status: &str| RunData {
            summary: csv::Reader::from_reader(
                format!(
                    "run,variant,depth,seed,status,grad_decay_init,grad_decay_final\n\
                     plain-d{depth}-s0,plain,{depth},0,{status},0.5,0.9\n"
                )
                .as_bytes(),
            )
            .deserialize::<SummaryRow>()
            .next()
            .unwrap()
            .unwrap(),
            metrics: None,
            gradients: None,
            activations: None,
            diverged_at_step: None,
        };
        let results = ResultsDir {
            root: PathBuf::from("x"),
            runs: vec![row(8, "completed"), row(16, "diverged")],
            record: None,
            style: Style::default(),
        };
        let fig = decay_vs_depth_figure(&results);
        let panel = &fig.panels[0];
        // At init both depths; trained only depth 8.
        assert_eq!(panel.series[0].points.len(), 2);
        assert_eq!(panel.series[1].points, vec![(8.0, 0.9)]);
        assert!(
            panel.legend[1].label.contains("d16 diverged, not drawn"),
            "{:?}",
            panel.legend[1].label
        );
    }

    #[test]
    fn folder_names_are_the_last_component() {
        assert_eq!(
            folder_name(Path::new("results/glorot-tanh/")),
            "glorot-tanh"
        );
        assert_eq!(folder_name(Path::new("x")), "x");
    }
}
