//! `run --jobs N`: N runs trained at a time, each in a worker process of
//! its own ([`super::worker`]), while this process holds the lock, hands
//! out runs, shows progress and writes `summary.csv`.
//!
//! Processes rather than threads: libtorch's RNG and thread count are
//! process-global, so runs sharing a process would not be reproducible,
//! and a libtorch abort would take every run with it. A worker trains with
//! the same code as a sequential sweep, so each run's CSVs are byte for byte
//! those of `run --jobs 1` at the same `--threads`.
//!
//! Runs are handed out longest first (by [`Sweep::cost`]), which keeps the
//! last worker from finishing long after the others. A worker that dies
//! mid-run (killed, aborted) costs only its run, recorded as failed; a new
//! worker takes the next one.

use super::worker::Message;
use super::DeviceArg;
use anyhow::{bail, Context, Result};
use gradscope_format::files::RUN_JSON;
use gradscope_train::plan::RunSpec;
use gradscope_train::record::{read_record, RunRecord, Status};
use gradscope_train::sweep::Sweep;
use indicatif::ProgressBar;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the parent passes every worker, and how it reports.
pub(crate) struct Pool<'a> {
    pub sweep: &'a Sweep,
    pub jobs: usize,
    /// Each worker's intra-op threads.
    pub threads: i32,
    pub device: DeviceArg,
    pub resume: bool,
    pub stop: &'a AtomicBool,
    /// A progress line every this many steps without a terminal.
    pub every: usize,
    pub bar: Option<&'a ProgressBar>,
}

/// One run a worker is training.
struct Active {
    run: RunSpec,
    tag: String,
    steps: usize,
    done: usize,
    started: Instant,
    last_line: Instant,
}

/// One worker process and the run it has.
struct Slot {
    child: Child,
    /// Dropped (closing the pipe) when there is nothing more to hand out.
    stdin: Option<ChildStdin>,
    active: Option<Active>,
    alive: bool,
}

/// However the pool ends (an error included), no worker outlives it: its
/// pipe closes, which stops its run within a step, and the pool waits for
/// it, so the results lock is never released under a running worker.
impl Drop for Slot {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.wait();
    }
}

/// A line from worker `i`, or its stdout closing (it exited).
enum Event {
    Line(usize, String),
    Closed(usize),
}

impl Pool<'_> {
    /// Trains `runs` in `jobs` workers until they are done or Ctrl-C stops
    /// them; returns the names of the runs that failed. An error writing a
    /// run's files stops the sweep, as it does without `--jobs`.
    pub(crate) fn train(&self, runs: &[RunSpec]) -> Result<Vec<String>> {
        let mut queue: Vec<RunSpec> = runs.to_vec();
        // Longest first; the sort is stable, so ties keep plan order.
        queue.sort_by(|a, b| self.sweep.cost(b).total_cmp(&self.sweep.cost(a)));
        let mut queue: VecDeque<RunSpec> = queue.into();
        let total = runs.len();
        let (events, inbox) = mpsc::channel();
        let mut slots: Vec<Slot> = Vec::new();
        let mut handed = 0usize;
        let mut finished_steps = 0u64;
        let mut failed = Vec::new();
        let mut fatal: Option<String> = None;
        let mut stop_sent = false;

        for _ in 0..self.jobs.min(queue.len()) {
            let i = slots.len();
            slots.push(self.spawn(i, &events)?);
            self.hand_out(&mut slots[i], &mut queue, &mut handed, total)?;
        }
        while slots.iter().any(|s| s.alive) {
            let stopping = self.stopping(&fatal);
            if stopping && !stop_sent {
                // Ctrl-C in a terminal reaches the workers too; SIGTERM
                // (kill, Slurm's time limit) may reach only this process.
                for s in &mut slots {
                    if let Some(pipe) = s.stdin.as_mut() {
                        let _ = writeln!(pipe, "{}", Message::Stop.line());
                    }
                }
                stop_sent = true;
            }
            let event = match inbox.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => e,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            match event {
                Event::Line(i, line) => match Message::parse(&line) {
                    Some(Message::Step(n)) => {
                        if let Some(a) = slots[i].active.as_mut() {
                            a.done = n;
                            self.progress_line(a);
                        }
                    }
                    Some(Message::Done) => {
                        let Some(a) = slots[i].active.take() else {
                            continue;
                        };
                        let record = read_record(&self.sweep.run_dir(&a.run).join(RUN_JSON))
                            .with_context(|| {
                                format!("{}: the run its worker ended", a.run.name())
                            })?;
                        finished_steps += a.steps as u64;
                        self.ended(&a, &record, &mut failed)?;
                        let stopping = self.stopping(&fatal);
                        if stopping {
                            slots[i].stdin = None;
                        } else {
                            self.hand_out(&mut slots[i], &mut queue, &mut handed, total)?;
                        }
                    }
                    Some(Message::Error(e)) => {
                        fatal.get_or_insert(e);
                        slots[i].active = None;
                    }
                    // Anything else a worker prints goes on to the user.
                    _ => self.say(line),
                },
                Event::Closed(i) => {
                    let status = slots[i].child.wait().ok();
                    slots[i].alive = false;
                    slots[i].stdin = None;
                    if let Some(a) = slots[i].active.take() {
                        let why = lost_because(status);
                        let record = self.sweep.record_lost(&a.run, &why)?;
                        finished_steps += a.steps as u64;
                        self.ended(&a, &record, &mut failed)?;
                        let stopping = self.stopping(&fatal);
                        if !stopping && !queue.is_empty() {
                            slots[i] = self.spawn(i, &events)?;
                            self.hand_out(&mut slots[i], &mut queue, &mut handed, total)?;
                        }
                    }
                }
            }
            if let Some(b) = self.bar {
                let active: Vec<&Active> = slots.iter().filter_map(|s| s.active.as_ref()).collect();
                b.set_position(finished_steps + active.iter().map(|a| a.done as u64).sum::<u64>());
                b.set_message(
                    active
                        .iter()
                        .map(|a| format!("{} {:.0}%", a.run.name(), percent(a.done, a.steps)))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
        }
        if let Some(e) = fatal {
            bail!(e);
        }
        Ok(failed)
    }

    /// Starts worker `i`, with a thread passing its stdout lines to `events`,
    /// and sends it the experiment.
    fn spawn(&self, i: usize, events: &mpsc::Sender<Event>) -> Result<Slot> {
        let exe = std::env::current_exe().context("finding the gradscope binary for --jobs")?;
        let mut command = Command::new(exe);
        command
            .arg("worker")
            .arg("--out")
            .arg(self.sweep.out())
            .args(["--threads", &self.threads.to_string()])
            .args(["--device", self.device_name()])
            .args(["--progress-every", &self.every.to_string()]);
        if self.resume {
            command.arg("--resume");
        }
        if let Some(file) = self.sweep.experiment_file() {
            command.args(["--experiment-file", file]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a worker process for --jobs")?;
        let stdout = child.stdout.take().expect("piped");
        let events = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if events.send(Event::Line(i, line)).is_err() {
                    return;
                }
            }
            let _ = events.send(Event::Closed(i));
        });
        let mut stdin = child.stdin.take().expect("piped");
        let json = serde_json::to_string(self.sweep.experiment())?;
        // A worker that could not start says why on its stdout (an error
        // line) and exits; its pipe may already be closed here.
        let _ = writeln!(stdin, "{json}");
        Ok(Slot {
            child,
            stdin: Some(stdin),
            active: None,
            alive: true,
        })
    }

    /// Ctrl-C or SIGTERM, or a worker that could not write its files: no
    /// more runs are handed out and the active ones are asked to stop.
    fn stopping(&self, fatal: &Option<String>) -> bool {
        self.stop.load(Ordering::SeqCst) || fatal.is_some()
    }

    fn device_name(&self) -> &'static str {
        match self.device {
            DeviceArg::Cpu => "cpu",
            DeviceArg::Cuda => "cuda",
            DeviceArg::Auto => "auto",
        }
    }

    /// Gives the slot the next run, or closes its pipe (the worker then
    /// exits) when there is none.
    fn hand_out(
        &self,
        slot: &mut Slot,
        queue: &mut VecDeque<RunSpec>,
        handed: &mut usize,
        total: usize,
    ) -> Result<()> {
        let Some(run) = queue.pop_front() else {
            slot.stdin = None;
            return Ok(());
        };
        *handed += 1;
        let tag = format!("[{handed}/{total}] {}", run.name());
        let steps = self.sweep.run_steps(&run);
        if let Some(pipe) = slot.stdin.as_mut() {
            // A worker that died before reading this leaves its run to the
            // Closed event, which records it as lost.
            let _ = writeln!(pipe, "{}", Message::Train(run.name()).line());
        }
        if self.bar.is_none() {
            eprintln!("{tag}: training {steps} steps");
        }
        let now = Instant::now();
        slot.active = Some(Active {
            run,
            tag,
            steps,
            done: 0,
            started: now,
            last_line: now,
        });
        Ok(())
    }

    /// Without a terminal: a line every `every` steps, and at least once a
    /// minute, per active run.
    fn progress_line(&self, a: &mut Active) {
        if self.bar.is_some() || a.done >= a.steps {
            return;
        }
        if a.done.is_multiple_of(self.every)
            || a.last_line.elapsed() >= super::run::PROGRESS_AT_LEAST
        {
            a.last_line = Instant::now();
            eprintln!(
                "{}",
                super::run::progress_line(
                    &a.tag,
                    a.done,
                    a.steps,
                    a.started.elapsed().as_secs_f64()
                )
            );
        }
    }

    /// A run ended (or was lost): its line, the failure list, the summary.
    fn ended(&self, a: &Active, record: &RunRecord, failed: &mut Vec<String>) -> Result<()> {
        self.say(super::run::outcome(&a.tag, record));
        if record.status == Status::Failed {
            failed.push(a.run.name());
        }
        self.sweep.write_summary()?;
        Ok(())
    }

    fn say(&self, line: String) {
        match self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
}

fn percent(done: usize, steps: usize) -> f64 {
    100.0 * done as f64 / steps.max(1) as f64
}

/// Why a worker ended without finishing its run, for run.json's `error`.
fn lost_because(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match status {
        Some(s) => match (s.code(), s.signal()) {
            (_, Some(9)) => "was killed by signal 9 (SIGKILL; out of memory?)".to_string(),
            (_, Some(sig)) => format!("was killed by signal {sig}"),
            (Some(code), _) => format!("exited with status {code}"),
            _ => "ended".to_string(),
        },
        None => "ended".to_string(),
    };
    format!("its worker process {how} before the run ended; `--resume` trains it again")
}
