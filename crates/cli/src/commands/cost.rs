//! `gradscope cost`: multiplications and parameters per layer of a named
//! layer, module or model, next to measured libtorch forward times.
//!
//! Counts come from the layers the target really builds
//! (`gradscope_models::cost`). Times are medians over repeated forward
//! passes in eval mode without autograd: each layer alone on a random input
//! of its shape (its convolution or matrix product only), and the whole
//! target (BN, ReLU, pooling and concatenation included). Batch, threads
//! and repeats are printed with the table and stored in every CSV row.

use super::bench::median;
use anyhow::{bail, Context, Result};
use gradscope_format::files::PLOTS_DIR;
use gradscope_models::cost::{self as targets, TARGETS};
use gradscope_models::layers::{LayerCost, LayerOp, Shape};
use gradscope_models::Network;
use gradscope_plot::{cost_vs_time, CostPoint};
use gradscope_train::record::write_file;
use std::path::PathBuf;
use std::time::Instant;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// What `gradscope cost` was asked for.
pub struct Query {
    pub targets: Vec<String>,
    pub layer: Option<String>,
    pub input: Option<Shape>,
    pub classes: Option<i64>,
    pub batch: i64,
    pub repeats: usize,
    pub threads: i32,
    pub device: Device,
    /// Counts only: no timing, no chart.
    pub no_time: bool,
    pub out: PathBuf,
}

/// The options of `gradscope cost`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Targets to count (default: every target).
    targets: Vec<String>,
    /// Only this layer, or the layers of this module/block
    /// (e.g. stage3.block1, 3a.b5x5); needs exactly one target.
    #[arg(long)]
    layer: Option<String>,
    /// Input as CHANNELSxHEIGHTxWIDTH [default: each target's own].
    #[arg(long)]
    input: Option<String>,
    /// Classes of the targets that end in a classifier [default: 6 for resnet50, 10 for inception-net].
    #[arg(long)]
    classes: Option<i64>,
    /// Images per timed forward pass.
    #[arg(long, default_value_t = 8)]
    batch: i64,
    /// Timed forward passes (the median is reported).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
    /// libtorch intra-op threads [default: the number of CPUs].
    #[arg(long)]
    threads: Option<i32>,
    /// Where to time the forward passes.
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    device: super::DeviceArg,
    /// Counts only: skip timing and the chart.
    #[arg(long)]
    no_time: bool,
    /// Where to write cost.csv and plots/.
    #[arg(long, default_value = "results/cost")]
    out: PathBuf,
}

/// `gradscope cost`: the query the options make, run, and its table printed.
pub(crate) fn command(args: Args) -> Result<()> {
    let query = Query {
        targets: args.targets,
        layer: args.layer,
        input: args.input.as_deref().map(parse_shape).transpose()?,
        classes: args.classes,
        batch: args.batch,
        repeats: args.repeats,
        threads: args.threads.unwrap_or_else(super::default_threads),
        device: super::device(args.device)?,
        no_time: args.no_time,
        out: args.out,
    };
    super::print_stdout(&run(&query)?)
}

/// One printed and written row.
struct Row {
    target: String,
    layer: String,
    op: String,
    input: String,
    output: String,
    mults: i64,
    params: i64,
    /// Median milliseconds per batch; `None` without timing.
    ms: Option<f64>,
}

/// Parses `192x28x28` (or `192×28×28`) as `[channels, height, width]`.
pub fn parse_shape(text: &str) -> Result<Shape> {
    let parts: Vec<&str> = text.split(['x', '×']).collect();
    let dims: Option<Vec<i64>> = parts.iter().map(|p| p.trim().parse().ok()).collect();
    match dims.as_deref() {
        Some(&[c, h, w]) if c > 0 && h > 0 && w > 0 && c * h * w <= 1 << 28 => Ok([c, h, w]),
        _ => bail!(
            "--input: {text:?} is not CHANNELSxHEIGHTxWIDTH with positive sizes (e.g. 192x28x28)"
        ),
    }
}

fn shape(s: Shape) -> String {
    format!("{}×{}×{}", s[0], s[1], s[2])
}

/// A target built for the query, with the indices of its selected layers.
struct Built {
    name: String,
    info: &'static targets::TargetInfo,
    input: Shape,
    net: Box<dyn Network>,
    params: i64,
    selected: Vec<usize>,
}

/// Runs the query: prints the table, writes `OUT/cost.csv` and (with
/// timing) `OUT/plots/cost_vs_time.{png,svg}`; returns the printed text.
pub fn run(q: &Query) -> Result<String> {
    let names = target_names(q)?;
    tch::set_num_threads(q.threads);
    let built = names
        .iter()
        .map(|name| build(name, q))
        .collect::<Result<Vec<_>>>()?;

    // Medians per selected layer, and per whole target.
    let (layer_ms, total_ms) = if q.no_time {
        (vec![Vec::new(); built.len()], vec![None; built.len()])
    } else {
        measure(&built, q)
    };

    let mut text = String::new();
    let mut rows = Vec::new();
    let mut totals = Vec::new();
    for (bi, b) in built.iter().enumerate() {
        let (layers, total) = target_rows(b, q, &layer_ms[bi], total_ms[bi]);
        print_target(&mut text, b, &layers, &total);
        totals.push((b.name.clone(), total.mults, total.ms));
        rows.extend(layers);
        rows.push(total);
    }
    print_comparisons(&mut text, &totals);
    outln!(text, "\ntimes: {}", timing(q));
    write_files(&mut text, &rows, q)?;
    Ok(text)
}

/// The targets asked for (every target without names), once the options
/// are checked.
fn target_names(q: &Query) -> Result<Vec<String>> {
    if q.batch < 1 || q.repeats < 1 {
        bail!("--batch and --repeats must be at least 1");
    }
    let names: Vec<String> = if q.targets.is_empty() {
        TARGETS.iter().map(|t| t.name.to_string()).collect()
    } else {
        q.targets.clone()
    };
    // Every name is checked before anything is built or timed.
    for n in &names {
        targets::target(n)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_start_matches("target: ")))?;
    }
    if q.layer.is_some() && names.len() != 1 {
        bail!("--layer: name exactly one target (got {})", names.len());
    }
    Ok(names)
}

/// Builds target `name` for the query and selects its layers (`--layer`).
fn build(name: &str, q: &Query) -> Result<Built> {
    let info = targets::target(name)?;
    let vs = VarStore::new(q.device);
    let net = targets::build(&vs.root(), name, q.input, q.classes)
        // The input shape comes from --input here, not from a dataset.
        .map_err(|e| {
            let e = e.to_string();
            anyhow::anyhow!("{name}: {}", e.replace("dataset: ", "--input: "))
        })?;
    let selected = match &q.layer {
        Some(layer) => {
            let rows = targets::select(net.layer_costs(), layer).map_err(|e| {
                anyhow::anyhow!("{name}: {}", e.to_string().trim_start_matches("layer: "))
            })?;
            let all = net.layer_costs();
            rows.iter()
                .filter_map(|r| all.iter().position(|c| std::ptr::eq(c, *r)))
                .collect()
        }
        None => (0..net.layer_costs().len()).collect(),
    };
    let params = vs
        .trainable_variables()
        .iter()
        .map(|v| v.numel() as i64)
        .sum();
    Ok(Built {
        name: name.to_owned(),
        info,
        input: q.input.unwrap_or(info.default_input),
        net,
        params,
        selected,
    })
}

/// One target's rows: its selected layers (with their medians `layer_ms`),
/// then its total.
fn target_rows(b: &Built, q: &Query, layer_ms: &[f64], total_ms: Option<f64>) -> (Vec<Row>, Row) {
    let costs = b.net.layer_costs();
    let selected: Vec<&LayerCost> = b.selected.iter().map(|&i| &costs[i]).collect();
    let layers: Vec<Row> = selected
        .iter()
        .enumerate()
        .map(|(li, c)| Row {
            target: b.name.clone(),
            layer: c.name.clone(),
            op: c.describe(),
            input: shape(c.input),
            output: shape(c.output),
            mults: c.mults(),
            params: c.params,
            ms: layer_ms.get(li).copied(),
        })
        .collect();
    let mults: i64 = selected.iter().map(|c| c.mults()).sum();
    let (layer, op, params, ms) = if q.layer.is_some() {
        // A part of a target: its layers' sum (the rest of the net is not run).
        let ms = (!q.no_time).then(|| layers.iter().filter_map(|r| r.ms).sum());
        (
            "selected total",
            "sum of the layers timed alone",
            selected.iter().map(|c| c.params).sum(),
            ms,
        )
    } else {
        ("total", "whole forward pass", b.params, total_ms)
    };
    let total = Row {
        target: b.name.clone(),
        layer: layer.into(),
        op: op.into(),
        input: shape(b.input),
        output: String::new(),
        mults,
        params,
        ms,
    };
    (layers, total)
}

/// One target's table: what it is, its layers, its total.
fn print_target(text: &mut String, b: &Built, layers: &[Row], total: &Row) {
    outln!(
        text,
        "\n{}: {} — input {}",
        b.name,
        b.info.about,
        shape(b.input)
    );
    outln!(
        text,
        "{:<24} {:<24} {:>12} {:>15} {:>12} {:>10}",
        "layer",
        "op",
        "output",
        "mults",
        "params",
        "ms/batch"
    );
    let ms_text = |ms: Option<f64>| ms.map_or("-".to_string(), |m| format!("{m:.3}"));
    for r in layers {
        outln!(
            text,
            "{:<24} {:<24} {:>12} {:>15} {:>12} {:>10}",
            r.layer,
            r.op,
            r.output,
            group(r.mults),
            group(r.params),
            ms_text(r.ms)
        );
    }
    outln!(
        text,
        "{:<24} {:<24} {:>12} {:>15} {:>12} {:>10}",
        total.layer,
        "",
        "",
        group(total.mults),
        group(total.params),
        ms_text(total.ms)
    );
}

/// The comparisons the 1×1 argument is about, where both sides ran:
/// `totals` holds each target's name, multiplications and median.
fn print_comparisons(text: &mut String, totals: &[(String, i64, Option<f64>)]) {
    let find = |n: &str| totals.iter().find(|t| t.0 == n);
    let mut compared = false;
    for (big, small) in [
        ("conv5x5", "reduce5x5"),
        ("inception-3a-naive", "inception-3a"),
    ] {
        if let (Some(b), Some(s)) = (find(big), find(small)) {
            if !compared {
                outln!(text, "\ncomparison              mult ratio   time ratio");
                compared = true;
            }
            let time = match (b.2, s.2) {
                (Some(tb), Some(ts)) if ts > 0.0 => format!("{:.2}×", tb / ts),
                _ => "-".into(),
            };
            outln!(
                text,
                "{:<23} {:>9.2}×   {:>10}",
                format!("{big} / {small}"),
                b.1 as f64 / s.1 as f64,
                time
            );
        }
    }
}

/// `1 thread`, `2 threads`.
fn threads(n: i32) -> String {
    format!("{n} thread{}", if n == 1 { "" } else { "s" })
}

/// How the times were measured, as printed under the tables.
fn timing(q: &Query) -> String {
    if q.no_time {
        "counts only (--no-time)".to_string()
    } else {
        format!(
            "median of {} forward passes after 3 warm-up passes, batch {}, {}, {:?}, eval mode, no autograd; every layer and target runs once per round, round after round",
            q.repeats, q.batch, threads(q.threads), q.device
        )
    }
}

/// Writes `OUT/cost.csv` and (with timing) the chart, and says so in `text`.
fn write_files(text: &mut String, rows: &[Row], q: &Query) -> Result<()> {
    std::fs::create_dir_all(&q.out).with_context(|| format!("creating {}", q.out.display()))?;
    let csv_path = q.out.join("cost.csv");
    write_file(&csv_path, csv(rows, q).as_bytes())?;
    outln!(text, "wrote {}", csv_path.display());
    if !q.no_time {
        let points: Vec<CostPoint> = rows
            .iter()
            .filter_map(|r| {
                r.ms.map(|ms| CostPoint {
                    target: r.target.clone(),
                    mults: r.mults as f64,
                    ms,
                    total: r.layer == "total" || r.layer == "selected total",
                })
            })
            .collect();
        let subtitle = format!(
            "batch {}, {}, median of {} passes",
            q.batch,
            threads(q.threads),
            q.repeats
        );
        let rendered = cost_vs_time(&points, &q.out.join(PLOTS_DIR), &subtitle)?;
        outln!(text, "wrote {}", rendered.png.display());
        outln!(text, "wrote {}", rendered.svg.display());
    }
    Ok(())
}

/// The CSV: one row per layer and one `total` row per target.
fn csv(rows: &[Row], q: &Query) -> String {
    // Written by the csv crate, which quotes a field only where it must.
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "target",
        "layer",
        "op",
        "input",
        "output",
        "mults",
        "params",
        "batch",
        "threads",
        "repeats",
        "device",
        "median_ms",
    ];
    let mut records = vec![header.map(str::to_owned).to_vec()];
    for r in rows {
        records.push(vec![
            r.target.to_string(),
            r.layer.to_string(),
            r.op.to_string(),
            r.input.to_string(),
            r.output.to_string(),
            r.mults.to_string(),
            r.params.to_string(),
            q.batch.to_string(),
            q.threads.to_string(),
            (if q.no_time { 0 } else { q.repeats }).to_string(),
            format!("{:?}", q.device),
            r.ms.map_or(String::new(), |m| format!("{m:.4}")),
        ]);
    }
    for rec in records {
        // Writing into memory cannot fail.
        let _ = w.write_record(&rec);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Times every selected layer alone (its convolution or matrix product on
/// a random input of its shape, with random weights of its shape) and every
/// whole target (without `--layer`). Each runs 3 warm-up passes, then once
/// per round for `repeats` rounds, so that a burst of load from another
/// process falls on all of them alike and the ratios stay fair on a shared
/// machine. Returns medians in milliseconds.
fn measure(built: &[Built], q: &Query) -> (Vec<Vec<f64>>, Vec<Option<f64>>) {
    let _guard = tch::no_grad_guard();
    let opts = (Kind::Float, q.device);
    let mut timers: Vec<Box<dyn FnMut() + '_>> = Vec::new();
    // (target index, Some(layer position) or None for the whole target)
    let mut owners: Vec<(usize, Option<usize>)> = Vec::new();
    for (bi, b) in built.iter().enumerate() {
        let costs = b.net.layer_costs();
        for (li, &ci) in b.selected.iter().enumerate() {
            let c = &costs[ci];
            let [c_in, h, w] = c.input;
            let timer: Box<dyn FnMut()> = match c.op {
                LayerOp::Conv { k, stride, pad } => {
                    let x = Tensor::randn([q.batch, c_in, h, w], opts);
                    let weight = Tensor::randn([c.output[0], c_in, k, k], opts);
                    Box::new(move || {
                        let _ = x.conv2d(
                            &weight,
                            None::<&Tensor>,
                            [stride, stride],
                            [pad, pad],
                            [1, 1],
                            1,
                        );
                    })
                }
                LayerOp::Linear => {
                    let x = Tensor::randn([q.batch, c_in], opts);
                    let weight = Tensor::randn([c.output[0], c_in], opts);
                    Box::new(move || {
                        let _ = x.linear(&weight, None::<&Tensor>);
                    })
                }
            };
            timers.push(timer);
            owners.push((bi, Some(li)));
        }
        if q.layer.is_none() {
            let [c, h, w] = b.input;
            let x = Tensor::randn([q.batch, c, h, w], opts);
            let net = &b.net;
            timers.push(Box::new(move || {
                let _ = net.forward(&x, false, None);
            }));
            owners.push((bi, None));
        }
    }
    let sync = || {
        if let Device::Cuda(i) = q.device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for t in timers.iter_mut() {
        for _ in 0..3 {
            t();
        }
    }
    sync();
    let mut times = vec![Vec::with_capacity(q.repeats); timers.len()];
    for _ in 0..q.repeats {
        for (t, out) in timers.iter_mut().zip(times.iter_mut()) {
            let start = Instant::now();
            t();
            // Wait for CUDA so that the time is the kernels', not the launch's.
            sync();
            out.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut layer_ms = vec![Vec::new(); built.len()];
    let mut total_ms = vec![None; built.len()];
    for ((bi, layer), t) in owners.into_iter().zip(times) {
        match layer {
            Some(_) => layer_ms[bi].push(median(t)),
            None => total_ms[bi] = Some(median(t)),
        }
    }
    (layer_ms, total_ms)
}

/// `120422400` → `120,422,400`.
fn group(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
