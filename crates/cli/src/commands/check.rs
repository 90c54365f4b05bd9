//! `gradscope check`: everything `run` checks before it trains (the file,
//! the plan, the data, the models, a cost estimate), without training.
//!
//! The printout goes top to bottom: the plan, a table of its runs, the
//! split into shards (`--shards`), what theory predicts, and notes.

use super::{duration, print_stdout};
use anyhow::{bail, Context, Result};
use gradscope_data::tokens::chance_error;
use gradscope_train::check::{self, check_experiment, PlanCheck};
use gradscope_train::spec::{Experiment, Task};
use std::path::Path;

pub(crate) fn check(
    path: &Path,
    shards: Option<usize>,
    jobs: Option<usize>,
    threads: Option<i32>,
) -> Result<()> {
    if shards == Some(0) {
        bail!("--shards: 0 shards cannot train anything (give 1 or more)");
    }
    let (jobs, threads) = jobs_and_threads(jobs, threads, super::default_threads() as usize)?;
    let exp = Experiment::from_file(path)?;
    // Everything `run` checks before it trains, without loading or training.
    let checked = check_experiment(&exp).with_context(|| path.display().to_string())?;
    let mut text = String::new();
    plan(&mut text, path, &exp, &checked);
    runs_table(&mut text, &checked, jobs, threads);
    if let Some(n) = shards {
        shard_split(&mut text, &checked, n, threads)?;
    }
    theory(&mut text, &exp, &checked);
    notes(&mut text, &exp.model, &checked);
    print_stdout(&text)
}

/// The file, its data, what it sweeps, and where its results go.
fn plan(text: &mut String, path: &Path, exp: &Experiment, checked: &PlanCheck) {
    let budget = match (exp.train.steps, exp.train.epochs) {
        (Some(s), _) => format!("{s} steps"),
        (_, Some(e)) => format!("{e} epochs ({} steps)", checked.steps),
        _ => "?".into(),
    };
    let d = &checked.data;
    let shape: Vec<String> = d.input_shape.iter().map(i64::to_string).collect();
    outln!(text, "{}: ok", path.display());
    if !exp.description.is_empty() {
        outln!(text, "  {}", exp.description);
    }
    // Regression data (the adding problem) have a float target, not
    // classes; the copy task a class at each of its last `recall` steps,
    // and a token task at each of its scored positions (sort's chance is
    // its order statistics', not 1 − 1/classes).
    let target = match (exp.task, exp.dataset.output_steps()) {
        (Task::Regression, _) => "a float target".to_string(),
        (_, Some(k)) => {
            let level = exp
                .dataset
                .token_spec()
                .and_then(|t| chance_error(t.task, t.length, t.vocab))
                .unwrap_or(1.0 - 1.0 / d.classes.max(1) as f64);
            format!(
                "{} classes at each of the last {k} steps (chance error {level:.3})",
                d.classes
            )
        }
        _ => format!("{} classes", d.classes),
    };
    outln!(
        text,
        "  data: {}, {} training and {} held-out examples of {}, {target}",
        d.name,
        d.train,
        d.test,
        shape.join("×"),
    );
    let swept = exp.swept();
    let mut factors = vec![format!("{} variants", exp.variants.len())];
    factors.extend(swept.iter().map(|(f, v)| match f.contains('.') {
        true => format!("{} {f} values", v.len()),
        false => format!("{} {f}s", v.len()),
    }));
    factors.push(format!("{} depths", exp.depths.len()));
    factors.push(format!("{} seeds", exp.seeds.len()));
    outln!(
        text,
        "  {} runs ({}), {budget} each, probe every {} steps",
        checked.runs.len(),
        factors.join(" × "),
        exp.probe.every
    );
    for (field, values) in &swept {
        outln!(
            text,
            "  sweeps {} over {}",
            gradscope_format::names::path(field),
            values.join(", ")
        );
    }
    outln!(text, "  results: results/{}/", exp.name);
}

/// `--jobs` and `--threads` as `run` takes them: threads default to the
/// CPUs divided among the jobs, at least 1.
fn jobs_and_threads(
    jobs: Option<usize>,
    threads: Option<i32>,
    cpus: usize,
) -> Result<(usize, usize)> {
    let jobs = match jobs {
        Some(0) => bail!("--jobs: 0 must be at least 1"),
        Some(n) => n,
        None => 1,
    };
    let threads = match threads {
        Some(n) if n < 1 => bail!("--threads: {n} must be at least 1"),
        Some(n) => n as usize,
        None => (cpus / jobs).max(1),
    };
    Ok((jobs, threads))
}

/// Every run's parameters, multiplications and estimated time at the
/// per-run thread count, and the estimate for all of them.
fn runs_table(text: &mut String, checked: &PlanCheck, jobs: usize, threads: usize) {
    let runs = &checked.runs;
    let width = runs
        .iter()
        .map(|r| r.run.name().len())
        .max()
        .unwrap_or(3)
        .max(3);
    outln!(
        text,
        "  {:width$}  {:>12}  {:>16}  {:>10}",
        "run",
        "parameters",
        "mults/example",
        "est. time"
    );
    for r in runs {
        outln!(
            text,
            "  {:width$}  {:>12}  {:>16}  {:>10}",
            r.run.name(),
            r.params,
            r.mults,
            duration(r.estimate_at(threads))
        );
    }
    let per_run = plural(threads, "thread", "threads");
    if jobs == 1 {
        outln!(
            text,
            "  estimated time: {} for all {} runs on {per_run} (rough; see below)",
            duration(checked.wall_s(1, threads)),
            runs.len()
        );
    } else {
        outln!(
            text,
            "  estimated time: {} for all {} runs, {jobs} at a time on {per_run} each \
             (longest first; rough, see below)",
            duration(checked.wall_s(jobs, threads)),
            runs.len()
        );
    }
}

/// `1 thread`, `2 threads`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Which runs each of `n` shards trains, and its share of the cost.
fn shard_split(text: &mut String, checked: &PlanCheck, n: usize, threads: usize) -> Result<()> {
    let runs = &checked.runs;
    if n > runs.len() {
        bail!(
            "--shards: {n} shards for {} runs would leave {} of them with nothing to train (give at most {})",
            runs.len(),
            n - runs.len(),
            runs.len()
        );
    }
    let plans = checked.shards(n);
    let largest = plans.iter().map(|p| p.share).fold(0.0, f64::max);
    outln!(
        text,
        "  {n} shards (run --shard I/{n}), split by steps × multiplications per example; \
         the largest has {:.1}% of the cost (an even split: {:.1}%)",
        100.0 * largest,
        100.0 / n as f64
    );
    for (i, p) in plans.iter().enumerate() {
        outln!(
            text,
            "  shard {i}: {:5.1}% of the cost, est. {}: {}",
            100.0 * p.share,
            duration(
                p.runs
                    .iter()
                    .filter_map(|name| runs.iter().find(|r| &r.run.name() == name))
                    .map(|r| r.estimate_at(threads))
                    .sum()
            ),
            if p.runs.is_empty() {
                "no runs".to_owned()
            } else {
                p.runs.join(", ")
            }
        );
    }
    Ok(())
}

/// The mean-field prediction for each plain net it applies to, and where
/// it comes from.
fn theory(text: &mut String, exp: &Experiment, checked: &PlanCheck) {
    // A recurrent net's depth is time: its decay is per step back in time.
    let recurrent = matches!(exp.model, gradscope_train::spec::ModelSpec::Rnn(_));
    let (per, first) = if recurrent {
        ("time step", "dL/dh at the first step")
    } else {
        ("layer", "a first hidden layer")
    };
    for (net, decay, spread) in &checked.theory {
        outln!(
            text,
            "  {net}: theory predicts {decay:.2} decades per {per}, {first} {} the last",
            if *spread >= 0.0 {
                format!("{spread:.1} decades below")
            } else {
                format!("{:.1} decades above", -spread)
            }
        );
    }
    if checked.theory.is_empty() {
        return;
    }
    if recurrent {
        outln!(
            text,
            "  (mean-field theory of the tanh RNN at initialization, the input's power included: Chen, Pennington & Schoenholz 2018; gated cells are not predicted)"
        );
    } else {
        outln!(
            text,
            "  (mean-field theory at initialization: Poole et al. 2016, Schoenholz et al. 2017; with BatchNorm and ReLU, Yang et al. 2019)"
        );
    }
    let orthogonal = match &exp.model {
        gradscope_train::spec::ModelSpec::Mlp(m) => m
            .init
            .values()
            .iter()
            .any(|i| matches!(i, gradscope_models::Init::Orthogonal { .. })),
        _ => false,
    };
    if orthogonal {
        outln!(
            text,
            "  (orthogonal weights of gain g: the same mean-field χ as σ_w² = g², Saxe et al. 2014)"
        );
    }
}

/// Depths where the twins are one net, and what the estimate leaves out.
fn notes(text: &mut String, model: &gradscope_train::spec::ModelSpec, checked: &PlanCheck) {
    for (depth, why) in &checked.same_twins {
        outln!(
            text,
            "  note: at depth {depth} the plain and residual nets are the same network ({why}); \
             comparing them there shows nothing about shortcuts"
        );
    }
    outln!(
        text,
        "  The estimate is rough: per step 3 × batch × multiplications / {:.1e} per second \
         per thread for this family (forward and backward), plus {} ms per weight layer and {} ms \
         per BatchNorm layer (kernel launches, not shared among threads), plus the evaluation \
         passes at {:.0e} per second per thread. Fitted on the {} published experiments' recorded \
         times on this project's 2-core CPU machines: within 1.5× either way for {} of them, \
         within {}× for all (docs/PERFORMANCE.md). The machine's load alone has moved the same \
         runs up to 5×; float32 denormals (deep nets whose signal vanishes) and GPUs are not modelled.",
        check::mults_per_s(model),
        check::CPU_LAYER_S * 1e3,
        check::CPU_NORM_S * 1e3,
        check::CPU_EVAL_MULTS_PER_S,
        check::CALIBRATED_ON,
        check::CALIBRATED_WITHIN_1_5,
        check::CALIBRATED_BAND,
    );
}
