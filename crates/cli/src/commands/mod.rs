//! The commands of the `gradscope` binary, one module each (or one per
//! group: `results` holds the commands that read a results directory),
//! and the few helpers they share: stdout that tolerates a closed pipe,
//! the thread count, the device, and the chart style's options.

pub(crate) mod bench;
pub(crate) mod bench_fused;
pub(crate) mod bench_kernels;
pub(crate) mod bench_workloads;
pub(crate) mod check;
pub(crate) mod cost;
pub(crate) mod examples;
pub(crate) mod jacobian;
pub(crate) mod jobs;
pub(crate) mod landscape;
pub(crate) mod lesion;
pub(crate) mod list;
pub(crate) mod results;
pub(crate) mod run;
pub(crate) mod slurm;
pub(crate) mod worker;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use tch::Device;

/// A wall time for people: milliseconds below a second (a tiny run's "0 s"
/// says nothing), seconds below two minutes, then minutes.
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        "?".into()
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 120.0 {
        format!("{secs:.1} s")
    } else {
        format!("{:.1} min", secs / 60.0)
    }
}

/// Chart size options, shared by `plot` and `compare`.
#[derive(clap::Args)]
pub(crate) struct StyleArgs {
    /// Width of every chart in pixels (200 to 10000).
    #[arg(long, value_name = "PX")]
    width: Option<u32>,
    /// Height of every chart in pixels (200 to 10000).
    #[arg(long, value_name = "PX")]
    height: Option<u32>,
    /// Multiplies every text size, e.g. 1.5 for a large room (0.25 to 5);
    /// margins, titles and legends grow with it.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    font_scale: f64,
    /// Whether the panels of a chart share one y range (`shared`) or each
    /// has its own (`panel`); `auto` shares it unless the panels of a log
    /// axis differ by many decades. A diverged run never sets a shared
    /// range.
    #[arg(long, value_name = "HOW", value_enum, default_value_t = YScaleArg::Auto)]
    y_scale: YScaleArg,
}

/// `--y-scale`'s values.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum YScaleArg {
    Auto,
    Shared,
    Panel,
}

impl StyleArgs {
    /// The style, or which option is out of range.
    pub(crate) fn style(&self) -> Result<gradscope_plot::Style> {
        for (flag, px) in [("--width", self.width), ("--height", self.height)] {
            if let Some(px) = px.filter(|p| !(200..=10_000).contains(p)) {
                bail!("{flag}: {px} pixels is outside 200 to 10000");
            }
        }
        if !(0.25..=5.0).contains(&self.font_scale) {
            bail!("--font-scale: {} is outside 0.25 to 5", self.font_scale);
        }
        Ok(gradscope_plot::Style {
            width: self.width,
            height: self.height,
            font_scale: self.font_scale,
            y_scale: match self.y_scale {
                YScaleArg::Auto => gradscope_plot::YScale::Auto,
                YScaleArg::Shared => gradscope_plot::YScale::Shared,
                YScaleArg::Panel => gradscope_plot::YScale::Panel,
            },
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

/// Prints to stdout; a closed pipe (`gradscope check x | head`) is not an
/// error worth a panic or a message.
pub(crate) fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

pub(crate) fn default_threads() -> i32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i32)
        .unwrap_or(1)
}

/// Sets libtorch's intra-op threads from `--threads` (default: the number
/// of CPUs); returns the number set.
pub(crate) fn set_threads(threads: Option<i32>) -> Result<i32> {
    let threads = match threads {
        Some(n) if n < 1 => bail!("--threads: {n} must be at least 1"),
        Some(n) => n,
        None => default_threads(),
    };
    tch::set_num_threads(threads);
    Ok(threads)
}

/// The device `--device` names; CUDA only where libtorch sees one.
pub(crate) fn device(device: DeviceArg) -> Result<Device> {
    Ok(match device {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Auto => Device::cuda_if_available(),
        DeviceArg::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
        DeviceArg::Cuda => {
            bail!("--device cuda: libtorch sees no CUDA device on this machine (try --device cpu)")
        }
    })
}

/// The results folder a run folder `…/runs/RUN` is in (where `landscape`
/// and `lesion` write by default).
pub(crate) fn results_of(run: &std::path::Path) -> Option<std::path::PathBuf> {
    let runs = run.parent()?;
    (runs.file_name()? == gradscope_format::files::RUNS_DIR)
        .then(|| runs.parent().map(std::path::Path::to_path_buf))?
}

/// What `landscape` and `lesion` do before they load anything: each run's
/// folder name (a run given twice is refused), every run folder passed
/// through `check`, then the folder to write into (`out`, or the results
/// folder the first run is in). Nothing is created or written.
pub(crate) fn run_folders(
    runs: &[std::path::PathBuf],
    out: Option<&std::path::Path>,
    check: impl Fn(&std::path::Path) -> Result<()>,
) -> Result<(Vec<String>, std::path::PathBuf)> {
    let mut names: Vec<String> = Vec::with_capacity(runs.len());
    for r in runs {
        let name = r
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{}: not a run folder", r.display()))?;
        if names.contains(&name) {
            bail!("{}: run {name} is given twice", r.display());
        }
        names.push(name);
    }
    for run in runs {
        check(run)?;
    }
    let out = match out {
        Some(out) => out.to_path_buf(),
        None => results_of(&runs[0]).with_context(|| {
            format!(
                "{}: not inside a results folder's runs/; give --out",
                runs[0].display()
            )
        })?,
    };
    Ok((names, out))
}

/// A flag that Ctrl-C and SIGTERM set, for the work to stop at its next
/// step.
pub(crate) fn stop_on_ctrl_c() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    Ok(stop)
}

/// What `landscape` and `lesion` do before they write: a flag that Ctrl-C
/// sets (the work stops between runs and keeps the runs done), `out`
/// created, and its lock held (one writer per results folder).
pub(crate) fn start_writing(
    out: &std::path::Path,
) -> Result<(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    gradscope_train::lock::ResultsLock,
)> {
    let stop = stop_on_ctrl_c()?;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let command: Vec<String> = std::env::args().collect();
    let holder = gradscope_train::lock::Holder::current(&command.join(" "));
    let (lock, _) = gradscope_train::lock::ResultsLock::acquire(out, &holder)?;
    Ok((stop, lock))
}
