//! `gradscope bench`: training throughput and probe overhead, measured side by
//! side with a PyTorch eager script (`bench/pytorch_reference.py`) on the same
//! libtorch.
//!
//! Each measurement runs in a fresh process (`gradscope bench-one`, or the
//! Python script) so peak RSS belongs to one workload and libtorch's global
//! state is never shared. The two sides alternate A/B then B/A across pairs,
//! so slow drift on a shared machine hits both; the figures reported are
//! medians over the pairs.
//!
//! gradscope's side times the real training loop (`train_run`, with its CSV
//! writes), from the `metrics.csv` row at the end of the warm-up to the row
//! `steps` later; the last step, which is always probed, falls outside that
//! window.

use anyhow::{bail, Context, Result};
use gradscope_data::Dataset;
use gradscope_format::files::METRICS_CSV;
use gradscope_models::{Reads, Recording};
use gradscope_probe::Probe as GradientProbe;
use gradscope_train::plan::RunSpec;
use gradscope_train::record::write_file;
use gradscope_train::spec::Experiment;
use gradscope_train::sweep::{load_dataset, run_dataset};
use gradscope_train::train_loop::{build_network, objective, train_run};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tch::Device;
use tch::{Kind, Tensor};

use super::bench_workloads::{batch_note, experiment_json, steps_for, Probe, Workload};

/// Resident memory of this process in MB (`VmRSS`, or `VmHWM` for the peak).
fn rss_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The options of `gradscope bench`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A/B pairs per workload and probe setting.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
    /// Threads for both sides [default: the number of CPUs].
    #[arg(long)]
    threads: Option<i32>,
    /// Where both sides run (auto: CUDA when a GPU is visible).
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    device: super::DeviceArg,
    /// Python of the venv that holds torch (runs bench/pytorch_reference.py).
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Where to write bench.csv and bench.md.
    #[arg(long, default_value = "results/bench")]
    out: PathBuf,
    /// Multiplies the timed steps per measurement (200 MLP, 20 CNN-20, 10 CNN-56, 50 LSTM, 20 transformer).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Bench only this workload (repeat for more) [default: all].
    #[arg(long = "workload", value_enum, value_name = "WORKLOAD")]
    workloads: Vec<Workload>,
    /// Steps of the memory-growth run (RSS after a tenth of them and after
    /// all; on mlp-plain, so only when it is benched; 0 skips it).
    #[arg(long, default_value_t = 10_000)]
    memory_steps: usize,
    /// Compare gradscope's fast kernels with their portable code
    /// (GRADSCOPE_KERNELS=portable) instead of PyTorch: OUT/kernels.{csv,md}.
    #[arg(long)]
    kernels: bool,
}

/// `gradscope bench`: the suite against PyTorch, or with `--kernels`
/// against the portable kernels.
pub(crate) fn command(args: Args) -> Result<()> {
    let threads = args.threads.unwrap_or_else(super::default_threads);
    // Both sides are told the device by name (the Python side too).
    let device = match super::device(args.device)? {
        Device::Cpu => "cpu".to_owned(),
        _ => "cuda".to_owned(),
    };
    // In the suite's own order, each once, however the flags were given.
    let workloads = Workload::ALL
        .into_iter()
        .filter(|w| args.workloads.is_empty() || args.workloads.contains(w))
        .collect();
    let suite = Suite {
        pairs: args.pairs,
        threads,
        device,
        python: args.python,
        out: args.out,
        scale: args.scale,
        workloads,
        memory_steps: args.memory_steps,
    };
    if args.kernels {
        super::bench_kernels::suite(&suite)
    } else {
        self::suite(&suite)
    }
}

/// The options of `gradscope bench-one`.
#[derive(clap::Args)]
pub(crate) struct OneArgs {
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long, value_enum)]
    probe: Probe,
    #[arg(long)]
    steps: usize,
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    #[arg(long, default_value_t = 1)]
    threads: i32,
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    device: super::DeviceArg,
    /// Comma-separated timed-step counts at which to record RSS.
    #[arg(long, default_value = "")]
    rss_at: String,
}

/// `gradscope bench-one`: one measurement, printed as a JSON line.
pub(crate) fn one_command(args: OneArgs) -> Result<()> {
    let device = super::device(args.device)?;
    let rss_at = args
        .rss_at
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .with_context(|| format!("--rss-at: {s:?} is not a step count"))
        })
        .collect::<Result<Vec<usize>>>()?;
    let v = bench_one(&One {
        workload: args.workload,
        probe: args.probe,
        steps: args.steps,
        warmup: args.warmup,
        threads: args.threads,
        device,
        rss_at,
    })?;
    super::print_stdout(&format!("{v}\n"))
}

/// Settings of one measurement.
pub struct One {
    pub workload: Workload,
    pub probe: Probe,
    /// Timed steps; a multiple of 10.
    pub steps: usize,
    /// Untimed steps first; a multiple of 10.
    pub warmup: usize,
    pub threads: i32,
    pub device: Device,
    /// Record RSS after these many timed steps.
    pub rss_at: Vec<usize>,
}

/// Runs one measurement in this process and returns its JSON line.
pub fn bench_one(one: &One) -> Result<Value> {
    // Training rows are logged every 10 steps; the window runs from the row
    // that ends the warm-up to the row `steps` later.
    if one.steps == 0
        || !one.steps.is_multiple_of(10)
        || one.warmup == 0
        || !one.warmup.is_multiple_of(10)
    {
        bail!("--steps and --warmup must be positive multiples of 10 (training rows are logged every 10 steps)");
    }
    tch::set_num_threads(one.threads);
    // Timed window: rows at `warmup` and `warmup + steps`; one more step
    // after it, so the always-probed last step is outside the window.
    let total = one.warmup + one.steps + 1;
    let text = experiment_json(one.workload, one.probe, total);
    let exp = Experiment::from_json(&text, Path::new("<bench>"))?;
    let run = RunSpec {
        variant: exp.variants[0],
        setting: Default::default(),
        depth: exp.depths[0],
        seed: 0,
    };
    // At the run's depth: the adding problem's sequences are that long.
    let data = load_dataset(&run_dataset(&exp, &run))?.to_device(one.device);
    let dir = std::env::temp_dir().join(format!("gradscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let mut rss_at = serde_json::Map::new();
    let stop = AtomicBool::new(false);
    // When each step ended, from the one before the window on.
    let mut ended = Vec::with_capacity(one.steps + 1);
    let outcome = train_run(&exp, &data, &run, &dir, &stop, &mut |done| {
        if done > one.warmup && one.rss_at.contains(&(done - one.warmup)) {
            rss_at.insert((done - one.warmup).to_string(), json!(rss_mb("VmRSS:")));
        }
        // After the RSS reading, which is no step's work.
        if done >= one.warmup && done <= one.warmup + one.steps {
            ended.push(Instant::now());
        }
    });
    let metrics = std::fs::read_to_string(dir.join(METRICS_CSV));
    let _ = std::fs::remove_dir_all(&dir);
    let outcome = outcome?;
    let metrics = metrics.context("reading the bench run's metrics.csv")?;
    let elapsed_at = |step: usize| -> Option<f64> {
        metrics.lines().find_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            // elapsed_s is the last column (the 8th since grad_norm).
            let n = gradscope_format::rows::METRICS_HEADER.len();
            (f.len() == n && f[0] == step.to_string() && f[2] == "train")
                .then(|| f[n - 1].parse().ok())
                .flatten()
        })
    };
    let (Some(t0), Some(t1)) = (elapsed_at(one.warmup), elapsed_at(one.warmup + one.steps)) else {
        bail!(
            "the bench run ended early ({:?} after {} steps)",
            outcome.status,
            outcome.steps_done
        );
    };
    let timed = one.steps;
    let seconds = t1 - t0;
    // Each timed step's own time, probed steps apart from the others: in
    // the every-10 cells the two kinds alternate in one process, so their
    // difference is one probe step's cost free of the drift between cells.
    // On CUDA steps are queued, not finished, when the loop moves on.
    let (mut probed, mut unprobed) = (vec![], vec![]);
    if one.device == Device::Cpu {
        for (k, w) in ended.windows(2).enumerate() {
            let ms = (w[1] - w[0]).as_secs_f64() * 1000.0;
            if exp.probe.probes(one.warmup + k, total) {
                probed.push(ms);
            } else {
                unprobed.push(ms);
            }
        }
    }
    // The peak of training, taken before the floor's own forward and
    // backward (a probed step outside training) can raise it.
    let peak_rss_mb = rss_mb("VmHWM:");
    let floor_ms = read_floor_ms(&exp, &data, &run)?;
    Ok(json!({
        "side": "gradscope",
        "workload": one.workload.name(),
        "probe": one.probe.name(),
        "device": format!("{:?}", one.device).to_lowercase(),
        "threads": one.threads,
        "channels_last": one.workload.is_cnn() && one.device == Device::Cpu,
        "batch": exp.train.batch_size,
        "steps": timed,
        "seconds": seconds,
        "steps_per_s": timed as f64 / seconds,
        "images_per_s": (timed * exp.train.batch_size) as f64 / seconds,
        "peak_rss_mb": peak_rss_mb,
        "rss_mb_at": rss_at,
        "floor_ms": floor_ms,
        "probed_step_ms": median_or_null(probed),
        "unprobed_step_ms": median_or_null(unprobed),
    }))
}

/// The median of the finite values (NaN for none): a run without both
/// kinds of step has no interleaved time, and does not count.
fn finite_median(v: impl Iterator<Item = f64>) -> f64 {
    median(v.filter(|x| x.is_finite()).collect())
}

/// The median, or JSON null for none.
fn median_or_null(v: Vec<f64>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(median(v))
    }
}

/// The floor of a probe step (issue 14): the time of one read of every
/// tensor a probe step must read, in milliseconds, median of 10 passes.
/// A probe step has to look at every dL/dh, every response and every
/// weight gradient at least once; here each is summed once in float32
/// (one pass over its memory, the fastest read libtorch has: the floor
/// docs/PERFORMANCE.md defines) after a real probed forward and backward
/// of one minibatch. The probe itself accumulates in float64, which no
/// float32 sum does, so its reading costs more than this by construction.
fn read_floor_ms(exp: &Experiment, data: &Dataset, run: &RunSpec) -> Result<f64> {
    tch::manual_seed(0);
    let device = data.train.x.device();
    let vs = tch::nn::VarStore::new(device);
    let net = build_network(&vs.root(), exp, data, run)?;
    let params: Vec<Tensor> = vs.trainable_variables();
    let params: Vec<&Tensor> = params.iter().collect();
    let probe = GradientProbe::new(net.as_ref(), &params);
    let n = (exp.train.batch_size as i64).min(data.train.len());
    let (x, y) = (data.train.x.narrow(0, 0, n), data.train.y.narrow(0, 0, n));
    let recording = Recording::new(probe.len());
    let logits = net.forward(&x, true, Some(&recording));
    let (loss, _) = objective(exp.task, &logits, &x, &y);
    let (outputs, responses) = recording.finish();
    let grads = probe.backward_keeping(&loss, &params, outputs)?;
    let mut tensors: Vec<Tensor> = grads
        .outputs
        .iter()
        .filter_map(|g| g.kept().map(Tensor::shallow_clone))
        .collect();
    tensors.extend(responses.iter().map(|(_, r)| r.detach()));
    // The probe points' weight gradients, found among the parameters'; a
    // recurrent net's gate block is those rows of its parameter's.
    for point in net.probe_points() {
        let Some(w) = &point.weight else { continue };
        let (of, rows) = match &point.reads {
            Reads::WeightRows {
                parameter,
                first_row,
            } => (parameter, Some((*first_row, w.size()[0]))),
            Reads::Output | Reads::Tokens | Reads::Responses(_) | Reads::Attention { .. } => {
                (w, None)
            }
        };
        if let Some(i) = params.iter().position(|p| p.data_ptr() == of.data_ptr()) {
            let g = &grads.params[i];
            tensors.push(match rows {
                Some((first, n)) if g.defined() => g.f_narrow(0, first, n)?,
                _ => g.shallow_clone(),
            });
        }
    }
    tensors.retain(Tensor::defined);
    let _guard = tch::no_grad_guard();
    let mut times = Vec::with_capacity(10);
    for pass in 0..11 {
        let start = std::time::Instant::now();
        let mut total = Tensor::zeros([], (Kind::Float, device));
        for t in &tensors {
            total += t.sum(Kind::Float);
        }
        // Bringing the sum to the host waits for the device (CUDA).
        let _ = total.double_value(&[]);
        // The first pass warms the allocator and caches; it is not timed.
        if pass > 0 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(median(times))
}

/// Settings of the whole benchmark.
pub struct Suite {
    pub pairs: usize,
    pub threads: i32,
    pub device: String,
    pub python: PathBuf,
    pub out: PathBuf,
    /// Multiplies the timed steps (1.0 = 200 MLP, 20 CNN-20, 10 CNN-56, 50
    /// LSTM, 20 transformer steps).
    pub scale: f64,
    /// The workloads to bench, in `Workload::ALL`'s order.
    pub workloads: Vec<Workload>,
    /// Steps of the memory-growth run (RSS at 1,000 and 10,000 steps).
    pub memory_steps: usize,
}

/// Runs one side of one measurement in a child process, returning its JSON:
/// "gradscope" (or "fast") is this binary, "portable" this binary under
/// `GRADSCOPE_KERNELS=portable`, "pytorch" the reference script, "fused"
/// the reference script's fused twin of the workload (`Workload::fused`).
pub(crate) fn child(
    side: &str,
    suite: &Suite,
    workload: Workload,
    probe: Probe,
    steps: usize,
    rss_at: &str,
) -> Result<Value> {
    let python = side == "pytorch" || side == "fused";
    let workload = match side {
        "fused" => workload
            .fused()
            .with_context(|| format!("{} has no fused twin", workload.name()))?,
        _ => workload.name(),
    };
    let probe = probe.name();
    let (threads, warmup) = (suite.threads.to_string(), "10".to_string());
    let steps = steps.to_string();
    let mut cmd = if !python {
        let mut c = Command::new(std::env::current_exe().context("locating the gradscope binary")?);
        c.arg("bench-one");
        // The child reads the switch once, at its first kernel.
        if side == "portable" {
            c.env(gradscope_kernels::KERNELS_VAR, "portable");
        } else {
            c.env_remove(gradscope_kernels::KERNELS_VAR);
        }
        c
    } else {
        let mut c = Command::new(&suite.python);
        c.arg("bench/pytorch_reference.py");
        // The allocator settings gradscope applies to itself (see
        // `malloc`), so that both sides run on the same allocator.
        if !crate::malloc::user_set() {
            c.envs(crate::malloc::env_vars());
        }
        c
    };
    cmd.args([
        "--workload",
        workload,
        "--probe",
        probe,
        "--steps",
        &steps,
        "--warmup",
        &warmup,
        "--threads",
        &threads,
        "--device",
        &suite.device,
    ]);
    if !rss_at.is_empty() {
        cmd.args(["--rss-at", rss_at]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("starting the {side} side ({cmd:?})"))?;
    if !out.status.success() {
        bail!(
            "{side} {workload} probe={probe} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{side} printed no JSON line"))?;
    serde_json::from_str(line).with_context(|| format!("{side} printed bad JSON: {line}"))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One row of the report.
pub(crate) struct Row {
    pub workload: String,
    pub probe: String,
    /// Examples per step.
    pub batch: usize,
    pub steps: usize,
    pub gs_steps_per_s: f64,
    pub pt_steps_per_s: f64,
    pub gs_peak_rss: f64,
    pub pt_peak_rss: f64,
    /// One read of every probed tensor, ms (gradscope side).
    pub floor_ms: f64,
    /// Per side: the median unprobed step and what a probed step takes
    /// more, from the steps of each run (NaN without both kinds).
    pub gs_plain_ms: f64,
    pub pt_plain_ms: f64,
    pub gs_interleaved_ms: f64,
    pub pt_interleaved_ms: f64,
    /// The fused twin's runs, measured beside the "off" cell.
    pub fused: Option<Fused>,
}

/// Medians of a fused twin's runs (`Workload::fused`), never probed.
pub(crate) struct Fused {
    pub name: String,
    pub steps_per_s: f64,
    pub peak_rss: f64,
    pub plain_ms: f64,
}

/// A run's unprobed step and a probed step's extra time, ms, from its own
/// step times (NaN where the run has not both kinds).
fn interleaved(v: &Value) -> (f64, f64) {
    let probed = v["probed_step_ms"].as_f64().unwrap_or(f64::NAN);
    let plain = v["unprobed_step_ms"].as_f64().unwrap_or(f64::NAN);
    (plain, probed - plain)
}

/// Runs every workload × probe setting, `pairs` times per side, alternating.
pub fn suite(s: &Suite) -> Result<()> {
    if s.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    if s.workloads.is_empty() {
        bail!("no workload to bench");
    }
    std::fs::create_dir_all(&s.out).with_context(|| s.out.display().to_string())?;
    let mut rows = Vec::new();
    let mut raw = Vec::new();
    for &workload in &s.workloads {
        let steps = steps_for(workload, s.scale);
        for probe in Probe::ALL {
            rows.push(cell(s, workload, probe, steps, &mut raw)?);
        }
    }
    // Memory growth: probing every step must not grow memory per step
    // (on mlp-plain, so only when it is benched).
    let mem_steps = s.memory_steps;
    let rss_at = format!("{},{}", mem_steps / 10, mem_steps);
    let mut memory = Vec::new();
    if mem_steps > 0 && s.workloads.contains(&Workload::MlpPlain) {
        for side in ["gradscope", "pytorch"] {
            let v = child(
                side,
                s,
                Workload::MlpPlain,
                Probe::Every,
                mem_steps,
                &rss_at,
            )?;
            let at = |k: usize| v["rss_mb_at"][k.to_string()].as_f64().unwrap_or(f64::NAN);
            memory.push((side, at(mem_steps / 10), at(mem_steps)));
            raw.push(v);
        }
    }
    write_report(s, &rows, &memory, &raw)
}

/// One side's measurements of one cell.
#[derive(Default)]
struct Taken {
    steps_per_s: Vec<f64>,
    peak_rss: Vec<f64>,
    floors: Vec<f64>,
    /// Each run's (plain step, probe step's extra), see `interleaved`.
    steps: Vec<(f64, f64)>,
}

impl Taken {
    fn add(&mut self, v: &Value) -> (f64, f64) {
        let sps = v["steps_per_s"].as_f64().unwrap_or(f64::NAN);
        let rss = v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN);
        self.steps_per_s.push(sps);
        self.peak_rss.push(rss);
        self.floors.push(v["floor_ms"].as_f64().unwrap_or(f64::NAN));
        self.steps.push(interleaved(v));
        (sps, rss)
    }

    fn plain_ms(&self) -> f64 {
        finite_median(self.steps.iter().map(|p| p.0))
    }

    fn interleaved_ms(&self) -> f64 {
        finite_median(self.steps.iter().map(|p| p.1))
    }
}

/// One workload × probe setting: `pairs` runs per side, alternating A/B
/// and B/A; with probing off, a workload's fused twin joins the rotation
/// (its own row: it cannot be probed, so it pairs with no probe setting).
fn cell(
    s: &Suite,
    workload: Workload,
    probe: Probe,
    steps: usize,
    raw: &mut Vec<Value>,
) -> Result<Row> {
    let mut sides = vec!["gradscope", "pytorch"];
    if probe == Probe::Off && workload.fused().is_some() {
        sides.push("fused");
    }
    let mut taken: Vec<Taken> = sides.iter().map(|_| Taken::default()).collect();
    for pair in 0..s.pairs {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if pair % 2 == 1 {
            order.reverse();
        }
        for k in order {
            let side = sides[k];
            let v = child(side, s, workload, probe, steps, "")?;
            let (sps, rss) = taken[k].add(&v);
            eprintln!(
                "  {side:9} {:12} probe={:7} pair {}: {sps:.2} steps/s, peak RSS {rss:.0} MB",
                workload.name(),
                probe.name(),
                pair + 1
            );
            raw.push(v);
        }
    }
    let (gs, pt) = (&taken[0], &taken[1]);
    Ok(Row {
        workload: workload.name().into(),
        probe: probe.name().into(),
        batch: workload.batch(),
        steps,
        gs_steps_per_s: median(gs.steps_per_s.clone()),
        pt_steps_per_s: median(pt.steps_per_s.clone()),
        gs_peak_rss: median(gs.peak_rss.clone()),
        pt_peak_rss: median(pt.peak_rss.clone()),
        floor_ms: median(gs.floors.clone()),
        gs_plain_ms: gs.plain_ms(),
        pt_plain_ms: pt.plain_ms(),
        gs_interleaved_ms: gs.interleaved_ms(),
        pt_interleaved_ms: pt.interleaved_ms(),
        fused: taken.get(2).map(|f| Fused {
            name: workload.fused().unwrap_or_default().into(),
            steps_per_s: median(f.steps_per_s.clone()),
            peak_rss: median(f.peak_rss.clone()),
            plain_ms: f.plain_ms(),
        }),
    })
}

/// `1.23 / 4.56` ms, or `—` where a side has no probe step.
fn ms_pair(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() {
        format!("{a:.2} / {b:.2}")
    } else {
        "—".to_owned()
    }
}

/// How many floors a probe step costs, or `—`.
fn times_floor(probe_ms: f64, floor_ms: f64) -> String {
    if probe_ms.is_finite() && floor_ms > 0.0 {
        format!("{:.1}×", probe_ms / floor_ms)
    } else {
        "—".to_owned()
    }
}

fn write_report(s: &Suite, rows: &[Row], memory: &[(&str, f64, f64)], raw: &[Value]) -> Result<()> {
    let machine = machine_description();
    let mut csv = String::from("workload,probe,batch,timed_steps,gradscope_steps_per_s,pytorch_steps_per_s,gradscope_images_per_s,pytorch_images_per_s,ratio_gradscope_over_pytorch,gradscope_probe_overhead,pytorch_probe_overhead,gradscope_peak_rss_mb,pytorch_peak_rss_mb,gradscope_probe_step_ms,pytorch_probe_step_ms,floor_ms,gradscope_plain_step_ms,pytorch_plain_step_ms,gradscope_probe_step_interleaved_ms,pytorch_probe_step_interleaved_ms,device,threads,pairs\n");
    let mut md = format!(
        "# gradscope bench\n\nMachine: {machine}; device {}, {} thread{}, {} A/B pairs per cell (medians), {batch}.\n\
         Probe overhead = (step time with probing) / (step time without) − 1, per side. One probe step = what probing adds per probed step \
         (k × the step-time difference when every k-th step is probed). Floor = one read (a plain float32 sum) of every tensor a probe step must read \
         (each dL/dh, response and weight gradient) after a real forward and backward of one minibatch, median of 10; its share of an unprobed step in brackets. \
         gradscope's \"off\" still probes step 0 and the last step (outside the timed window, inside the peak RSS); PyTorch's never probes. \
         Peak RSS is each side's when training ends (gradscope's before its floor is measured). \
         {alloc}\n\n\
         | workload | probe | gradscope steps/s | PyTorch steps/s | gradscope img/s | PyTorch img/s | gradscope/PyTorch | probe overhead (gradscope) | probe overhead (PyTorch) | one probe step, ms (gradscope / PyTorch) | floor, ms | gradscope probe step / floor | peak RSS MB (gradscope / PyTorch) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        s.device,
        s.threads,
        if s.threads == 1 { "" } else { "s" },
        s.pairs,
        batch = batch_note(&s.workloads),
        alloc = if crate::malloc::user_set() {
            "Both sides ran with the MALLOC_*_ settings of the environment.".to_owned()
        } else {
            format!(
                "Both sides ran with glibc's mmap threshold at {} MiB and trim threshold at {} MiB (gradscope sets them at start; the PyTorch side got MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_).",
                crate::malloc::MMAP_THRESHOLD >> 20,
                crate::malloc::TRIM_THRESHOLD >> 20
            )
        }
    );
    for r in rows {
        let off = rows
            .iter()
            .find(|o| o.workload == r.workload && o.probe == "off");
        let overhead = |on: f64, off: f64| {
            if r.probe == "off" {
                0.0
            } else {
                off / on - 1.0
            }
        };
        let (gs_over, pt_over) = off
            .map(|o| {
                (
                    overhead(r.gs_steps_per_s, o.gs_steps_per_s),
                    overhead(r.pt_steps_per_s, o.pt_steps_per_s),
                )
            })
            .unwrap_or((f64::NAN, f64::NAN));
        let ratio = r.gs_steps_per_s / r.pt_steps_per_s;
        // The extra time of one probe step, ms: probing every k-th step adds
        // k × (its step time − the unprobed step time) per probe step.
        let every = match r.probe.as_str() {
            "every" => 1.0,
            "every10" => 10.0,
            _ => f64::NAN,
        };
        let per_probe = |on: f64, off: Option<f64>| match off {
            Some(off) => every * (1000.0 / on - 1000.0 / off),
            None => f64::NAN,
        };
        let gs_probe_ms = per_probe(r.gs_steps_per_s, off.map(|o| o.gs_steps_per_s));
        let pt_probe_ms = per_probe(r.pt_steps_per_s, off.map(|o| o.pt_steps_per_s));
        let floor_of_step = r.floor_ms / off.map_or(f64::NAN, |o| 1000.0 / o.gs_steps_per_s);
        csv.push_str(&format!(
            "{},{},{},{},{:.4},{:.4},{:.1},{:.1},{:.4},{:.4},{:.4},{:.1},{:.1},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{}\n",
            r.workload,
            r.probe,
            r.batch,
            r.steps,
            r.gs_steps_per_s,
            r.pt_steps_per_s,
            r.gs_steps_per_s * r.batch as f64,
            r.pt_steps_per_s * r.batch as f64,
            ratio,
            gs_over,
            pt_over,
            r.gs_peak_rss,
            r.pt_peak_rss,
            gs_probe_ms,
            pt_probe_ms,
            r.floor_ms,
            r.gs_plain_ms,
            r.pt_plain_ms,
            r.gs_interleaved_ms,
            r.pt_interleaved_ms,
            s.device,
            s.threads,
            s.pairs
        ));
        md.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2}× | {:+.1}% | {:+.1}% | {} | {:.2} ({:.0}% of a step) | {} | {:.0} / {:.0} |\n",
            r.workload, r.probe, r.gs_steps_per_s, r.pt_steps_per_s, r.gs_steps_per_s * r.batch as f64, r.pt_steps_per_s * r.batch as f64, ratio, 100.0 * gs_over, 100.0 * pt_over,
            ms_pair(gs_probe_ms, pt_probe_ms), r.floor_ms, 100.0 * floor_of_step, times_floor(gs_probe_ms, r.floor_ms), r.gs_peak_rss, r.pt_peak_rss
        ));
    }
    let interleaved_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.probe == "every10" && r.gs_interleaved_ms.is_finite())
        .collect();
    if !interleaved_rows.is_empty() {
        md.push_str(
            "\nProbe steps between plain ones (the every-10 cells): each run's median plain step and median probe step, the difference \
             being what one probe step costs, measured within one process, so free of the drift between cells that the table above \
             divides out; medians over pairs. Every-10 cost = that ÷ 10 ÷ the plain step.\n\n\
             | workload | plain step, ms (gradscope / PyTorch) | one probe step, ms (gradscope / PyTorch) | floor, ms | gradscope probe step / floor | every-10 cost (gradscope / PyTorch) |\n|---|---|---|---|---|---|\n",
        );
        for r in interleaved_rows {
            let cost = |extra: f64, plain: f64| 100.0 * extra / 10.0 / plain;
            md.push_str(&format!(
                "| {} | {} | {} | {:.2} | {} | {:+.1}% / {:+.1}% |\n",
                r.workload,
                ms_pair(r.gs_plain_ms, r.pt_plain_ms),
                ms_pair(r.gs_interleaved_ms, r.pt_interleaved_ms),
                r.floor_ms,
                times_floor(r.gs_interleaved_ms, r.floor_ms),
                cost(r.gs_interleaved_ms, r.gs_plain_ms),
                cost(r.pt_interleaved_ms, r.pt_plain_ms),
            ));
        }
    }
    md.push_str(&super::bench_fused::section(rows));
    if !memory.is_empty() {
        md.push_str(&format!("\nMemory growth, mlp-plain probing every step (RSS MB after {} and {} timed steps):\n\n| side | RSS at {} | RSS at {} | growth |\n|---|---|---|---|\n", s.memory_steps / 10, s.memory_steps, s.memory_steps / 10, s.memory_steps));
    }
    for (side, a, b) in memory {
        md.push_str(&format!(
            "| {side} | {a:.1} | {b:.1} | {:+.1} MB |\n",
            b - a
        ));
    }
    let torch = raw.iter().find_map(|v| v["torch"].as_str()).unwrap_or("?");
    md.push_str(&format!(
        "\nPyTorch {torch} (bench/pytorch_reference.py) against gradscope on libtorch {}.\n",
        env!("GRADSCOPE_LIBTORCH_VERSION")
    ));
    let write = |name: &str, text: &str| -> Result<()> {
        Ok(write_file(&s.out.join(name), text.as_bytes())?)
    };
    write("bench.csv", &csv)?;
    write("bench.md", &md)?;
    if let Some(fused) = super::bench_fused::csv(rows, s) {
        write("fused.csv", &fused)?;
    }
    write(
        "raw.jsonl",
        &raw.iter().map(|v| v.to_string() + "\n").collect::<String>(),
    )?;
    println!("{md}");
    eprintln!("wrote {}/bench.csv and bench.md", s.out.display());
    Ok(())
}

/// CPU model and core count, for the report's header.
fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let gpu = if tch::Cuda::is_available() {
        format!(", {} CUDA device(s)", tch::Cuda::device_count())
    } else {
        String::new()
    };
    format!("{cpu}, {cores} cores{gpu}")
}
