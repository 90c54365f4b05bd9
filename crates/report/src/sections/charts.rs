//! Every chart of `plots/`, linked relatively, each with its caption.

use super::note;
use crate::page::Block;
use gradscope_format::files::PLOTS_DIR;
use gradscope_plot::CHART_NAMES;
use std::path::Path;

/// One line under each chart: what it shows.
pub(crate) fn caption(name: &str) -> &'static str {
    match name {
        "train_error_vs_step" => "Training error (on-the-fly minibatch mean) against step, one line per depth; plain and residual side by side (He et al. Fig. 6 layout).",
        "error_vs_depth" => "Final train (solid) and test (dashed) error against depth, mean over seeds with min–max bars.",
        "gradient_profile" => "rms of dL/dh per element at each point of one kind (an MLP's layers, a conv net's block outputs), log axis, at initialization (solid) and at the last probed step (dashed); ▼ marks values that are exactly 0 in float32.",
        "gradient_vs_step" => "rms of dL/dh of the first, middle and last layer (or block output) of the deepest net against step.",
        "gradient_heatmap" => "Every layer at every probed step: log10 rms of dL/dh per element as colour (one scale for all panels), input side at the bottom, for the deepest net (seed as titled); exact zeros in float32 in their own colour. Where and when the gradient vanishes shows as dark bands toward the input.",
        "layer_response_std" => "Std of each layer response at the last probed step, forward order and sorted (He et al. Fig. 7).",
        "saturation_vs_step" => "Fraction of saturated units per layer against step (Glorot & Bengio Fig. 2); for ReLU nets, the fraction of dead units (zero for every example of the probed batch) instead.",
        "activation_mean_vs_step" => "Mean of each layer response against step (Glorot & Bengio Fig. 2 plots the sigmoid outputs' mean: the top hidden layer's sinks toward 0).",
        _ => "",
    }
}

pub(crate) fn charts(root: &Path) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Charts".to_owned())];
    let plots = root.join(PLOTS_DIR);
    let mut any = false;
    for name in CHART_NAMES {
        if !plots.join(format!("{name}.png")).is_file() {
            note(
                &mut out,
                format!("`{name}`: not in plots/ (see the problems above)."),
            );
            continue;
        }
        any = true;
        // The caption is a paragraph above the image (report.md as
        // published); the image has none of its own.
        out.push(Block::Heading(3, name.to_owned()));
        out.push(Block::Para(caption(name).to_owned()));
        out.push(Block::Chart(name.to_owned(), String::new()));
    }
    if any {
        out.push(Block::Para(
            "SVG versions sit beside each PNG in `plots/`.".to_owned(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chart the report or a comparison shows has a caption: a chart
    /// without one would be an image with an empty paragraph above it.
    #[test]
    fn every_chart_has_a_caption() {
        let compared = gradscope_plot::compare::COMPARE_CHARTS
            .into_iter()
            .filter(|n| *n != gradscope_plot::compare::DECAY_VS_DEPTH);
        for name in CHART_NAMES.into_iter().chain(compared) {
            assert!(!caption(name).is_empty(), "{name}");
        }
        assert_eq!(caption("no_such_chart"), "");
    }

    /// A chart missing from plots/ is a note in place of its heading,
    /// caption and image; notes in a row are one list, and the closing
    /// line about the SVGs is there only when some chart is.
    #[test]
    fn a_missing_chart_is_a_note_in_its_place() {
        let root = tempfile::tempdir().unwrap();
        let none = charts(root.path());
        assert_eq!(none.len(), 2, "{none:?}");
        assert!(
            matches!(&none[1], Block::TightList(items) if items.len() == CHART_NAMES.len()),
            "{none:?}"
        );
        let plots = root.path().join(PLOTS_DIR);
        std::fs::create_dir_all(&plots).unwrap();
        std::fs::write(plots.join(format!("{}.png", CHART_NAMES[1])), b"png").unwrap();
        let one = charts(root.path());
        assert_eq!(
            one,
            vec![
                Block::Heading(2, "Charts".into()),
                Block::TightList(vec![format!(
                    "`{}`: not in plots/ (see the problems above).",
                    CHART_NAMES[0]
                )]),
                Block::Heading(3, CHART_NAMES[1].into()),
                Block::Para(caption(CHART_NAMES[1]).into()),
                Block::Chart(CHART_NAMES[1].into(), String::new()),
                Block::TightList(
                    CHART_NAMES[2..]
                        .iter()
                        .map(|n| format!("`{n}`: not in plots/ (see the problems above)."))
                        .collect()
                ),
                Block::Para("SVG versions sit beside each PNG in `plots/`.".into()),
            ]
        );
    }
}
