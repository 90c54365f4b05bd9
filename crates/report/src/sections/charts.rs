//! Every chart of `plots/`, linked relatively, each with its caption.

use super::note;
use crate::page::Block;
use gradscope_format::files::PLOTS_DIR;
use gradscope_plot::{CHART_NAMES, MLP_CHARTS, RECURRENT_CHARTS, TRANSFORMER_CHARTS};
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
        "ffn_gradient_profile" => "‖∇W‖ of each block's second FFN matrix at step 0 against the block, one panel per layout, one line per depth (Xiong et al. 2020, Fig. 3: post-LN's grows toward the output, pre-LN's is flat); log axis.",
        "top_ffn_gradient_vs_depth" => "The last block's FFN ‖∇W‖ at step 0 against the depth (mean over runs), with Xiong et al.'s scaling dashed through the shallowest depth: flat for post-LN, 1/√L for pre-LN. A bound up to constants, so only the slope compares.",
        "rank_collapse" => "Each block output's distance from rank 1, ‖X − 1·x̄ᵀ‖_F / ‖X‖_F, against the block at the first probed step (solid) and the last (dashed), one panel per layout and setting, one colour per depth: 0 is every token the same vector (Dong et al. 2021).",
        "phase_diagram" => "Final training error of every (σ_w², depth) cell as colour (0 to chance), its value in percent printed on it; red curve: 6ξ_c from mean-field theory, the depth up to which Schoenholz et al. 2017 find nets trainable; dashed: σ_w² where χ₁ = 1; a red frame marks a cell whose trainability (at least 10 points below chance) disagrees with depth ≤ 6ξ_c.",
        "forward_signal" => "The forward signal at step 0 against the layer, one pair of panels per variant, one colour per depth (seed as titled): q, the batch variance of each pre-activation unit averaged over units, and 1 − c, with c the correlation between two inputs' pre-activations (Poole et al. 2016), both on log axes; dashed, for plain nets without normalization, mean-field theory's length and correlation maps iterated from the first layer's measured q and c, drawn down to a gap 1 − c of 1e-16 (float64's resolution of c). 1 − c below 1e-3 is forward collapse: the inputs are indistinguishable from that layer on.",
        "gates" => "Each gate's mean against the time step at the first probed step (solid) and the last (dashed), one panel per gated cell, at the longest length: the LSTM's forget gate is its cell path's factor per step back, the GRU's update gate the share of h carried over.",
        _ => "",
    }
}

/// A recurrent net's captions where the feed-forward ones say depth or
/// layer: its depth is the sequence length and its layers the time steps.
fn recurrent_caption(name: &str) -> Option<&'static str> {
    Some(match name {
        "train_error_vs_step" => "Training error (on-the-fly minibatch mean) against step, one line per sequence length, one panel per cell.",
        "error_vs_depth" => "Final train (solid) and test (dashed) error against sequence length, one line per cell, mean over seeds with min–max bars.",
        "gradient_profile" => "rms of dL/dh_t per element at every time step of the last layer (0 = first step), log axis, at initialization (solid) and at the last probed step (dashed), one line per sequence length; black dashed: the tanh RNN's mean-field prediction; ▼ marks values that are exactly 0 in float32.",
        "gradient_vs_step" => "rms of dL/dh_t at the first, middle and last time step of the longest sequence against training step.",
        "gradient_heatmap" => "Every time step at every probed step: log10 rms of dL/dh_t per element as colour (one scale for all panels), first step at the bottom, for the longest sequence; exact zeros in float32 in their own colour. Vanishing through time shows as dark bands toward the first step.",
        _ => return None,
    })
}

pub(crate) fn charts(root: &Path, recurrent: bool, transformer: bool) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Charts".to_owned())];
    let plots = root.join(PLOTS_DIR);
    let mut any = false;
    let extra: &[&str] = if recurrent {
        &RECURRENT_CHARTS
    } else if transformer {
        &TRANSFORMER_CHARTS
    } else {
        &[]
    };
    for name in CHART_NAMES.into_iter().chain(extra.iter().copied()) {
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
        let words = recurrent
            .then(|| recurrent_caption(name))
            .flatten()
            .unwrap_or_else(|| caption(name));
        out.push(Block::Para(words.to_owned()));
        out.push(Block::Chart(name.to_owned(), String::new()));
    }
    // Drawn only for a swept variance init: listed only where it is there,
    // so that no other report gains a "not in plots/" note.
    let phase = gradscope_plot::PHASE_DIAGRAM;
    if plots.join(format!("{phase}.png")).is_file() {
        any = true;
        out.push(Block::Heading(3, phase.to_owned()));
        out.push(Block::Para(caption(phase).to_owned()));
        out.push(Block::Chart(phase.to_owned(), String::new()));
    }
    // The mlp family's own charts: shown where drawn, with no note where
    // not (results published before them, and the other families).
    for name in MLP_CHARTS {
        if plots.join(format!("{name}.png")).is_file() {
            any = true;
            out.push(Block::Heading(3, name.to_owned()));
            out.push(Block::Para(caption(name).to_owned()));
            out.push(Block::Chart(name.to_owned(), String::new()));
        }
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
        let extra = RECURRENT_CHARTS
            .into_iter()
            .chain(TRANSFORMER_CHARTS)
            .chain(MLP_CHARTS);
        for name in CHART_NAMES.into_iter().chain(compared).chain(extra) {
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
        let none = charts(root.path(), false, false);
        assert_eq!(none.len(), 2, "{none:?}");
        assert!(
            matches!(&none[1], Block::TightList(items) if items.len() == CHART_NAMES.len()),
            "{none:?}"
        );
        let plots = root.path().join(PLOTS_DIR);
        std::fs::create_dir_all(&plots).unwrap();
        std::fs::write(plots.join(format!("{}.png", CHART_NAMES[1])), b"png").unwrap();
        let one = charts(root.path(), false, false);
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
