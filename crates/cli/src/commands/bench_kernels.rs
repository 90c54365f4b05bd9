//! `gradscope bench --kernels`: the fast paths of gradscope-kernels against
//! their portable code, on the bench's workloads, so that each fast path
//! shows what it earns (issue: keep what earns its complexity on some
//! workload, delete what does not).
//!
//! Both sides are this binary's `bench-one`, the portable side run under
//! `GRADSCOPE_KERNELS=portable`; they alternate A/B and B/A as the main
//! bench does, and the figures are medians over the pairs. Two things
//! differ between the sides: an unprobed step (the fused SGD step against
//! libtorch's ops) and a probe step (the AVX2 reads on libtorch's OpenMP
//! team against the portable reads on the crate's own threads). The table
//! gives both, and the cost of probing at the rates the shipped
//! experiments use (every 25 to 200 steps) besides every 10 and every
//! step.

use anyhow::{bail, Result};
use gradscope_train::record::write_file;
use serde_json::Value;
use std::fmt::Write as _;

use super::bench::{child, median, Suite};
use super::bench_workloads::{batch_note, steps_for, Probe};

/// The two sides, as `child` names them.
const SIDES: [&str; 2] = ["fast", "portable"];

/// Probe intervals the shipped experiments use, for the derived columns.
const SHIPPED_EVERY: [f64; 2] = [25.0, 200.0];

/// One cell's medians for one side.
#[derive(Default)]
struct Side {
    steps_per_s: Vec<f64>,
    plain_ms: Vec<f64>,
    probe_ms: Vec<f64>,
}

impl Side {
    fn add(&mut self, v: &Value) {
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        self.steps_per_s.push(f("steps_per_s"));
        let (probed, plain) = (f("probed_step_ms"), f("unprobed_step_ms"));
        self.plain_ms.push(plain);
        self.probe_ms.push(probed - plain);
    }

    /// Medians: steps/s, the plain step (ms) and one probe step's extra
    /// time (ms, from the steps of each run: NaN without both kinds).
    fn medians(&self) -> [f64; 3] {
        let finite = |v: &[f64]| median(v.iter().copied().filter(|x| x.is_finite()).collect());
        [
            median(self.steps_per_s.clone()),
            finite(&self.plain_ms),
            finite(&self.probe_ms),
        ]
    }
}

/// Runs every workload at probe off and every 10 (the every-10 runs time
/// plain and probe steps side by side in one process), `pairs` times per
/// side, and writes OUT/kernels.csv and OUT/kernels.md.
pub fn suite(s: &Suite) -> Result<()> {
    if s.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    if s.device != "cpu" {
        bail!("--kernels compares CPU code; it takes --device cpu");
    }
    std::fs::create_dir_all(&s.out).map_err(|e| anyhow::anyhow!("{}: {e}", s.out.display()))?;
    let mut csv = String::from(
        "workload,probe,timed_steps,fast_steps_per_s,portable_steps_per_s,fast_over_portable,\
         fast_plain_step_ms,portable_plain_step_ms,fast_probe_step_ms,portable_probe_step_ms,\
         fast_cost_every25,portable_cost_every25,fast_cost_every200,portable_cost_every200,threads,pairs\n",
    );
    let mut md = format!(
        "# gradscope bench --kernels\n\n{} thread{}, {} A/B pairs per cell (medians), {}. \
         fast = the default kernels (AVX2 reads on libtorch's OpenMP team, the fused SGD step); \
         portable = `GRADSCOPE_KERNELS=portable` (the portable reads on the crate's own threads, \
         libtorch's ops for the step). Plain step = a step without probing; probe step = what a \
         probed step takes more, both from the step times within each every-10 run. Cost at every \
         k = probe step ÷ k ÷ plain step.\n\n\
         | workload | probe | steps/s (fast / portable) | fast ÷ portable | plain step, ms (fast / portable) | \
         one probe step, ms (fast / portable) | cost every 25 (fast / portable) | cost every 200 (fast / portable) |\n\
         |---|---|---|---|---|---|---|---|\n",
        s.threads,
        if s.threads == 1 { "" } else { "s" },
        s.pairs,
        batch_note(&s.workloads)
    );
    for &workload in &s.workloads {
        let steps = steps_for(workload, s.scale);
        for probe in [Probe::Off, Probe::Every10, Probe::Every] {
            let mut sides: [Side; 2] = Default::default();
            for pair in 0..s.pairs {
                let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
                for k in order {
                    let v = child(SIDES[k], s, workload, probe, steps, "")?;
                    eprintln!(
                        "  {:8} {:12} probe={:7} pair {}: {:.2} steps/s",
                        SIDES[k],
                        workload.name(),
                        probe.name(),
                        pair + 1,
                        v["steps_per_s"].as_f64().unwrap_or(f64::NAN)
                    );
                    sides[k].add(&v);
                }
            }
            let [f, p] = [sides[0].medians(), sides[1].medians()];
            let cost = |m: [f64; 3], every: f64| m[2] / every / m[1];
            let pct = |x: f64| {
                if x.is_finite() {
                    format!("{:+.1}%", 100.0 * x)
                } else {
                    "—".into()
                }
            };
            let ms = |a: f64, b: f64| {
                if a.is_finite() && b.is_finite() {
                    format!("{a:.2} / {b:.2}")
                } else {
                    "—".into()
                }
            };
            let _ = writeln!(
                csv,
                "{},{},{steps},{:.4},{:.4},{:.4},{:.3},{:.3},{:.3},{:.3},{:.5},{:.5},{:.5},{:.5},{},{}",
                workload.name(),
                probe.name(),
                f[0],
                p[0],
                f[0] / p[0],
                f[1],
                p[1],
                f[2],
                p[2],
                cost(f, SHIPPED_EVERY[0]),
                cost(p, SHIPPED_EVERY[0]),
                cost(f, SHIPPED_EVERY[1]),
                cost(p, SHIPPED_EVERY[1]),
                s.threads,
                s.pairs
            );
            let probe_cells = probe == Probe::Every10;
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} / {:.2} | {:.2}× | {} | {} | {} | {} |",
                workload.name(),
                probe.name(),
                f[0],
                p[0],
                f[0] / p[0],
                ms(f[1], p[1]),
                if probe_cells {
                    ms(f[2], p[2])
                } else {
                    "—".into()
                },
                if probe_cells {
                    format!("{} / {}", pct(cost(f, 25.0)), pct(cost(p, 25.0)))
                } else {
                    "—".into()
                },
                if probe_cells {
                    format!("{} / {}", pct(cost(f, 200.0)), pct(cost(p, 200.0)))
                } else {
                    "—".into()
                },
            );
        }
    }
    write_file(&s.out.join("kernels.csv"), csv.as_bytes())?;
    write_file(&s.out.join("kernels.md"), md.as_bytes())?;
    println!("{md}");
    eprintln!("wrote {}/kernels.csv and kernels.md", s.out.display());
    Ok(())
}
