//! `gradscope slurm EXP --shards N`: a sweep as a Slurm job array.
//!
//! Writes `results/NAME/slurm/sweep.sbatch`, an array of N tasks, each
//! `gradscope run EXP --shard $SLURM_ARRAY_TASK_ID/N --resume --no-plot`
//! into `results/NAME/shards/I/`, and `merge.sbatch`, which gathers the
//! shards into `results/NAME/` with `gradscope merge` once the array has
//! ended (submitted with `--dependency=afterany:ARRAY`, so failed or
//! diverged shards are merged too).
//!
//! The task `exec`s gradscope, so gradscope is the batch shell and gets the
//! `--signal=B:TERM@120` Slurm sends two minutes before the time limit, and
//! the SIGTERM of a preemption: it saves a checkpoint and exits, and
//! `--requeue` runs the task again, which `--resume`s from it. Paths in the
//! scripts are absolute, so they run from any directory.

use super::print_stdout;
use gradscope_train::spec::Experiment;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The options of `gradscope slurm`.
#[derive(clap::Args)]
pub struct Options {
    /// Array tasks (shards); `check EXP --shards N` shows the split.
    #[arg(long, value_name = "N")]
    pub shards: usize,
    /// Slurm partition (--partition).
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// GPUs per task (--gpus); the tasks then train with --device cuda.
    #[arg(long, value_name = "G")]
    pub gpus: Option<u32>,
    /// CPUs per task (--cpus-per-task), also gradscope's --threads.
    #[arg(long, value_name = "C", default_value_t = 1)]
    pub cpus: u32,
    /// Time limit per task, in Slurm's format (--time), e.g. 04:00:00.
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// Tasks running at once (the array's %M) [default: N].
    #[arg(long, value_name = "M")]
    pub max_parallel: Option<usize>,
}

/// The two scripts written, and where.
pub struct Scripts {
    pub sweep: PathBuf,
    pub merge: PathBuf,
}

/// `'text'` for a shell, with `'` written as `'\''`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

pub fn quote_path(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// A value that goes into an `#SBATCH` line must not end the line or
/// carry a second option.
fn plain(flag: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '#') {
        bail!("{flag}: {value:?} must be one word (no spaces or #)");
    }
    Ok(())
}

/// Writes the scripts for the experiment file `experiment` (named `name`)
/// into `results/NAME/slurm/` under the current directory.
pub fn write(experiment: &Path, name: &str, o: &Options) -> Result<Scripts> {
    check_options(o)?;
    let job = Job::new(experiment, name, o)?;
    std::fs::create_dir_all(&job.dir).with_context(|| job.dir.display().to_string())?;
    let scripts = Scripts {
        sweep: job.dir.join("sweep.sbatch"),
        merge: job.dir.join("merge.sbatch"),
    };
    for (path, text) in [
        (&scripts.sweep, job.sweep_script()),
        (&scripts.merge, job.merge_script()),
    ] {
        std::fs::write(path, text).with_context(|| path.display().to_string())?;
    }
    Ok(scripts)
}

/// Refuses options no Slurm script can carry.
fn check_options(o: &Options) -> Result<()> {
    if o.shards == 0 {
        bail!("--shards: 0 shards cannot train anything (give 1 or more)");
    }
    if o.cpus == 0 {
        bail!("--cpus: give 1 or more CPUs per task");
    }
    if o.max_parallel == Some(0) {
        bail!("--max-parallel: give 1 or more tasks at a time");
    }
    if let Some(p) = &o.partition {
        plain("--partition", p)?;
    }
    if let Some(t) = &o.time {
        plain("--time", t)?;
        if !slurm_time(t) {
            bail!(
                "--time: {t:?} is not a Slurm time limit (MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED)"
            );
        }
    }
    if o.gpus == Some(0) {
        bail!("--gpus: 0 GPUs; leave --gpus out to train on CPUs");
    }
    Ok(())
}

/// What the two scripts spell out.
struct Job<'a> {
    name: &'a str,
    o: &'a Options,
    /// The folder the scripts run in, the experiment file and the
    /// gradscope binary, all absolute.
    cwd: PathBuf,
    exp: PathBuf,
    bin: PathBuf,
    /// `results/NAME` under `cwd`, and its `slurm/` (scripts and logs).
    results: PathBuf,
    dir: PathBuf,
    /// `dir` as `--output` reads it.
    log_dir: String,
}

impl<'a> Job<'a> {
    /// The paths the scripts name, or why a script cannot name them.
    fn new(experiment: &Path, name: &'a str, o: &'a Options) -> Result<Job<'a>> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let exp = experiment
            .canonicalize()
            .with_context(|| experiment.display().to_string())?;
        let bin = std::env::current_exe().context("finding the gradscope binary")?;
        // The scripts spell these paths out: a lossy spelling (U+FFFD for
        // bytes that are not UTF-8) would name a folder that does not exist.
        for (what, p) in [
            ("the current directory", &cwd),
            ("the experiment file", &exp),
            ("the gradscope binary", &bin),
        ] {
            if p.to_str().is_none() {
                bail!(
                    "{p:?}: the path of {what} is not valid UTF-8, so a Slurm script cannot spell it; rename it or run from another folder"
                );
            }
        }
        let results = cwd.join(gradscope_format::files::RESULTS_DIR).join(name);
        let dir = results.join("slurm");
        // sbatch expands `%` patterns (`%j`, `%u`) in --output and --error:
        // a `%` of the path itself is written `%%`.
        let log_dir = dir.display().to_string().replace('%', "%%");
        // The log path goes into an `#SBATCH --output=` line, which Slurm splits
        // at spaces and cuts at `#`, and where it reads quotes: such a folder
        // would send the logs somewhere else.
        if let Some(c) = dir
            .to_string_lossy()
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '#' | '\'' | '"' | '\\'))
        {
            bail!(
                "{}: Slurm's #SBATCH lines cannot carry a path with {c:?} in it; run `gradscope slurm` from a folder whose path has no spaces, quotes or #",
                dir.display()
            );
        }
        Ok(Job {
            name,
            o,
            cwd,
            exp,
            bin,
            results,
            dir,
            log_dir,
        })
    }

    /// The `#SBATCH` lines both scripts carry.
    fn common(&self) -> String {
        let mut common = String::new();
        if let Some(p) = &self.o.partition {
            common.push_str(&format!("#SBATCH --partition={p}\n"));
        }
        common
    }

    /// `sweep.sbatch`: the array, one shard per task.
    fn sweep_script(&self) -> String {
        let (name, o) = (self.name, self.o);
        let n = o.shards;
        let m = o.max_parallel.unwrap_or(n).min(n);
        let mut sweep = format!(
            "#!/bin/bash\n\
             # Written by `gradscope slurm`: experiment {name}, {n} shards.\n\
             # Each task trains its shard into results/{name}/shards/$SLURM_ARRAY_TASK_ID.\n\
             # On SIGTERM (preemption, or 120 s before the time limit) gradscope\n\
             # saves a checkpoint and exits. Slurm requeues a preempted task, which\n\
             # resumes from it; a task that hit its time limit is not requeued:\n\
             # submit the array again, and its runs go on from their checkpoints.\n\
             #SBATCH --job-name=gradscope-{name}\n\
             #SBATCH --array=0-{last}%{m}\n\
             #SBATCH --output={out}/%A_%a.out\n\
             #SBATCH --open-mode=append\n\
             #SBATCH --signal=B:TERM@120\n\
             #SBATCH --requeue\n\
             #SBATCH --cpus-per-task={cpus}\n",
            last = n - 1,
            out = self.log_dir,
            cpus = o.cpus,
        );
        sweep.push_str(&self.common());
        if let Some(t) = &o.time {
            sweep.push_str(&format!("#SBATCH --time={t}\n"));
        }
        if let Some(g) = o.gpus {
            sweep.push_str(&format!("#SBATCH --gpus={g}\n"));
        }
        let device = if o.gpus.is_some_and(|g| g > 0) {
            " --device cuda"
        } else {
            ""
        };
        sweep.push_str(&format!(
            "\ncd {cwd}\nexec {bin} run {exp} --shard \"$SLURM_ARRAY_TASK_ID/{n}\" \
             --out {results}/shards/\"$SLURM_ARRAY_TASK_ID\" --resume --no-plot --threads {cpus}{device}\n",
            cwd = quote_path(&self.cwd),
            bin = quote_path(&self.bin),
            exp = quote_path(&self.exp),
            results = quote_path(&self.results),
            cpus = o.cpus,
        ));
        sweep
    }

    /// `merge.sbatch`: the shards that have runs, merged into results/NAME.
    fn merge_script(&self) -> String {
        let (name, n) = (self.name, self.o.shards);
        let mut merge = format!(
            "#!/bin/bash\n\
             # Written by `gradscope slurm`: gathers the {n} shards of {name} into\n\
             # results/{name}/ (summary.csv, charts, report) once the array has ended.\n\
             #SBATCH --job-name=gradscope-{name}-merge\n\
             #SBATCH --output={out}/merge-%j.out\n\
             #SBATCH --cpus-per-task=1\n",
            out = self.log_dir,
        );
        merge.push_str(&self.common());
        merge.push_str(&format!(
            "\ncd {cwd}\n\
             # Shards that never started have no folder; merge lists their runs as missing.\n\
             shards=()\n\
             for i in $(seq 0 {last}); do\n\
             \x20 d={results}/shards/$i\n\
             \x20 [ -d \"$d/runs\" ] && shards+=(\"$d\")\n\
             done\n\
             exec {bin} merge \"${{shards[@]}}\" --out {results}\n",
            cwd = quote_path(&self.cwd),
            last = n - 1,
            results = quote_path(&self.results),
            bin = quote_path(&self.bin),
        ));
        merge
    }
}

/// Whether `t` is a time limit in one of Slurm's forms (`sbatch --time`):
/// `MINUTES`, `MINUTES:SECONDS`, `HOURS:MINUTES:SECONDS`, `DAYS-HOURS`,
/// `DAYS-HOURS:MINUTES`, `DAYS-HOURS:MINUTES:SECONDS`, or unlimited.
fn slurm_time(t: &str) -> bool {
    if matches!(t.to_ascii_lowercase().as_str(), "unlimited" | "infinite") {
        return true;
    }
    let numbers = |s: &str| {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() <= 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match t.split_once('-') {
        Some((days, rest)) => {
            !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) && numbers(rest)
        }
        None => numbers(t),
    }
}

/// `sbatch --parsable [ARGS] SCRIPT`: the job id.
fn sbatch(args: &[&str], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .context("running sbatch (is Slurm installed and SLURM_CONF set?)")?;
    if !out.status.success() {
        bail!(
            "sbatch {}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or_default().to_owned();
    if id.is_empty() {
        bail!("sbatch {}: printed no job id", script.display());
    }
    Ok(id)
}

/// Submits the array, then the merge job depending on it; returns both ids.
pub fn submit(s: &Scripts) -> Result<(String, String)> {
    let array = sbatch(&[], &s.sweep)?;
    let merge = sbatch(&[&format!("--dependency=afterany:{array}")], &s.merge)?;
    Ok((array, merge))
}

pub(crate) fn command(path: &Path, o: &Options, submit: bool) -> Result<()> {
    let exp = Experiment::from_file(path)?;
    let runs = gradscope_train::plan::plan(&exp).len();
    if o.shards > runs {
        bail!(
            "--shards: {} shards for {runs} runs would leave {} array tasks with nothing to train (give at most {runs})",
            o.shards,
            o.shards - runs
        );
    }
    let s = write(path, &exp.name, o)?;
    let mut text = String::new();
    outln!(text, "{}", s.sweep.display());
    outln!(text, "{}", s.merge.display());
    if submit {
        let (array, merge) = self::submit(&s)?;
        eprintln!(
            "slurm: submitted the array as job {array} ({} tasks) and the merge as job {merge} (after the array ends)",
            o.shards
        );
        outln!(text, "{array}");
        outln!(text, "{merge}");
    } else {
        eprintln!(
            "slurm: submit with
  array=$(sbatch --parsable {})
  sbatch --dependency=afterany:$array {}",
            quote_path(&s.sweep),
            quote_path(&s.merge)
        );
    }
    print_stdout(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_in_slurms_forms_only() {
        for ok in [
            "30",
            "30:00",
            "12:00:00",
            "2-0",
            "2-12:00",
            "2-12:00:00",
            "UNLIMITED",
        ] {
            assert!(slurm_time(ok), "{ok}");
        }
        for bad in ["abc", "", "1:2:3:4", "-5", "1-", "12h", "1-2-3"] {
            assert!(!slurm_time(bad), "{bad}");
        }
    }
}
