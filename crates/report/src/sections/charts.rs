//! Every chart of `plots/`, linked relatively, each with its caption.

use gradscope_format::files::PLOTS_DIR;
use gradscope_plot::CHART_NAMES;
use std::fmt::Write as _;
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

pub(crate) fn charts(md: &mut String, root: &Path) {
    mdln!(md, "## Charts");
    mdln!(md);
    let plots = root.join(PLOTS_DIR);
    let mut any = false;
    for name in CHART_NAMES {
        if !plots.join(format!("{name}.png")).is_file() {
            mdln!(md, "- `{name}`: not in plots/ (see the problems above).");
            continue;
        }
        any = true;
        mdln!(md, "### {name}");
        mdln!(md);
        mdln!(md, "{}", caption(name));
        mdln!(md);
        mdln!(md, "![{name}](plots/{name}.png)");
        mdln!(md);
    }
    if any {
        mdln!(md, "SVG versions sit beside each PNG in `plots/`.");
    }
}
