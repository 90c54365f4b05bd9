//! `gradscope worker` (hidden): one worker process of `run --jobs N`.
//!
//! The parent ([`super::jobs`]) holds the results lock and talks to each
//! worker over a pipe, one line per message ([`Message`]):
//!
//! ```text
//! parent → worker   {experiment JSON}      first line: the parsed experiment
//!                   train RUN              train one planned run
//!                   stop                   stop after the current step (as Ctrl-C)
//! worker → parent   step N                 progress of the current run
//!                   done                   the run ended; its run.json says how
//!                   error MESSAGE          a file could not be written: stop the sweep
//! ```
//!
//! The parent's pipe closing (no more runs, or the parent died) stops the
//! current run as Ctrl-C would, so an orphaned worker never trains on.

use super::{device, set_threads, stop_on_ctrl_c, DeviceArg};
use anyhow::{Context, Result};
use gradscope_train::spec::Experiment;
use gradscope_train::sweep::Sweep;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A worker says where its run is at least this often, and at every
/// `--progress-every`th step (which the parent's progress lines print).
const STEP_MESSAGE_EVERY: Duration = Duration::from_millis(200);

/// The options `run --jobs` starts a worker with.
#[derive(clap::Args)]
pub(crate) struct WorkerArgs {
    /// The results directory, locked by the parent.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    threads: i32,
    #[arg(long, value_enum)]
    device: DeviceArg,
    /// Runs go on from their checkpoints, as with `run --resume`.
    #[arg(long)]
    resume: bool,
    /// Recorded in run.json as `experiment_file`.
    #[arg(long)]
    experiment_file: Option<String>,
    /// Report every this many steps exactly.
    #[arg(long, default_value_t = 1)]
    progress_every: usize,
}

/// One line between the parent and a worker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Train(String),
    Stop,
    Step(usize),
    Done,
    Error(String),
}

impl Message {
    pub(crate) fn line(&self) -> String {
        match self {
            Message::Train(run) => format!("train {run}"),
            Message::Stop => "stop".into(),
            Message::Step(n) => format!("step {n}"),
            Message::Done => "done".into(),
            // One line: the parent reads line by line.
            Message::Error(e) => format!("error {}", e.replace('\n', " ")),
        }
    }

    pub(crate) fn parse(line: &str) -> Option<Message> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        Some(match word {
            "train" => Message::Train(rest.to_string()),
            "stop" => Message::Stop,
            "step" => Message::Step(rest.parse().ok()?),
            "done" => Message::Done,
            "error" => Message::Error(rest.to_string()),
            _ => return None,
        })
    }
}

/// Sends one message to the parent. A closed pipe means the parent is
/// gone; the stdin thread has then set the stop flag, so nothing is lost
/// by ignoring the error.
fn say(message: Message) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", message.line()).and_then(|()| out.flush());
}

pub(crate) fn worker(args: WorkerArgs) -> Result<ExitCode> {
    let threads = set_threads(Some(args.threads))?;
    let device = device(args.device)?;
    let stop = stop_on_ctrl_c()?;
    // stdin is read on a thread of its own, so that `stop` (or the pipe
    // closing) reaches a run in the middle of its steps.
    let (lines, commands) = mpsc::channel::<String>();
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if Message::parse(&line) == Some(Message::Stop) {
                    stop.store(true, Ordering::SeqCst);
                } else if lines.send(line).is_err() {
                    break;
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
    let prepared = (|| {
        let json = commands
            .recv()
            .context("the parent closed the pipe before sending the experiment")?;
        let experiment: Experiment =
            serde_json::from_str(&json).context("the experiment the parent sent")?;
        let parent = std::os::unix::process::parent_id();
        let sweep = Sweep::for_worker(
            experiment,
            &args.out,
            parent,
            device,
            threads,
            args.resume,
            args.experiment_file.clone(),
        )?;
        anyhow::Ok(sweep)
    })();
    let sweep = match prepared {
        Ok(s) => s,
        Err(e) => {
            say(Message::Error(format!("{e:#}")));
            return Err(e);
        }
    };
    let every = args.progress_every.max(1);
    for line in commands {
        let Some(Message::Train(name)) = Message::parse(&line) else {
            continue;
        };
        let Some(run) = sweep.planned(&name).cloned() else {
            let e = format!("the experiment plans no run {name:?}");
            say(Message::Error(e.clone()));
            anyhow::bail!(e);
        };
        let abort_at = injected_abort(&name);
        let mut last = Instant::now();
        let trained = sweep.train(&run, &stop, &mut |done| {
            if abort_at == Some(done) {
                std::process::abort();
            }
            if done.is_multiple_of(every) || last.elapsed() >= STEP_MESSAGE_EVERY {
                last = Instant::now();
                say(Message::Step(done));
            }
        });
        match trained {
            Ok(_) => say(Message::Done),
            Err(e) => {
                say(Message::Error(e.to_string()));
                return Err(e.into());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `GRADSCOPE_INJECT_ABORT=RUN:STEP` aborts the worker (as a libtorch
/// abort or an out-of-memory kill would) when run RUN reaches step STEP:
/// the reliability tests' way to lose a worker mid-run.
fn injected_abort(run: &str) -> Option<usize> {
    let v = std::env::var("GRADSCOPE_INJECT_ABORT").ok()?;
    let (r, step) = v.rsplit_once(':')?;
    (r == run).then(|| step.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::Message;

    /// Every message survives its line, and an error stays one line.
    #[test]
    fn messages_round_trip_through_their_line() {
        for m in [
            Message::Train("plain-d8-s0".into()),
            Message::Stop,
            Message::Step(120),
            Message::Done,
            Message::Error("out/runs: disk full".into()),
        ] {
            assert_eq!(Message::parse(&m.line()), Some(m));
        }
        let two = Message::Error("a\nb".into()).line();
        assert!(!two.contains('\n'));
        assert_eq!(Message::parse("step x"), None);
        assert_eq!(Message::parse("libtorch warning"), None);
    }
}
