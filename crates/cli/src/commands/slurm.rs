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
    /// CPUs per task (--cpus-per-task), also gradscope's --threads
    /// (divided between the runs of --jobs).
    #[arg(long, value_name = "C", default_value_t = 1)]
    pub cpus: u32,
    /// Runs each task trains at a time (gradscope's --jobs), each on
    /// C / J threads; with --gpus they share the task's GPU.
    #[arg(long, value_name = "J", default_value_t = 1)]
    pub jobs: u32,
    /// Time limit per task, in Slurm's format (--time), e.g. 04:00:00.
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// Tasks running at once (the array's %M) [default: N].
    #[arg(long, value_name = "M")]
    pub max_parallel: Option<usize>,
    /// Account to charge (--account), in both scripts.
    #[arg(long, value_name = "A")]
    pub account: Option<String>,
    /// Quality of service (--qos), in both scripts.
    #[arg(long, value_name = "Q")]
    pub qos: Option<String>,
    /// Memory per node (--mem), e.g. 8G, in both scripts.
    #[arg(long, value_name = "M")]
    pub mem: Option<String>,
    /// Node features the tasks need (--constraint), e.g. "avx2&skylake".
    #[arg(long, value_name = "C")]
    pub constraint: Option<String>,
    /// A shell line run before gradscope in both scripts, e.g. 'module load
    /// cuda/12.4'; repeat for more lines, in order.
    #[arg(long, value_name = "LINE")]
    pub setup: Vec<String>,
    /// A file of shell lines run before gradscope (after any --setup).
    #[arg(long, value_name = "FILE")]
    pub prelude: Option<PathBuf>,
    /// Time limit of the merge job (--time) [default: 01:00:00]: without
    /// one it gets the partition's default, which may be unlimited.
    #[arg(long, value_name = "T")]
    pub merge_time: Option<String>,
    /// Overwrite scripts that were edited since gradscope wrote them.
    #[arg(long)]
    pub force: bool,
}

/// The merge job's time limit when `--merge-time` is not given: merging
/// copies run folders and draws the charts, minutes for the published
/// sweeps.
const MERGE_TIME: &str = "01:00:00";

/// The last line of every script gradscope writes: a checksum of the lines
/// above it, so that a script edited by hand is not overwritten unasked.
const SIGNATURE: &str = "# gradscope-signature: ";

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
    let mut job = Job::new(experiment, name, o)?;
    job.setup = setup_lines(o)?;
    std::fs::create_dir_all(&job.dir).with_context(|| job.dir.display().to_string())?;
    let scripts = Scripts {
        sweep: job.dir.join("sweep.sbatch"),
        merge: job.dir.join("merge.sbatch"),
    };
    let texts = [
        (&scripts.sweep, signed(job.sweep_script())),
        (&scripts.merge, signed(job.merge_script())),
    ];
    // Both checked before either is written: a refusal leaves both as
    // they were.
    for (path, _) in &texts {
        if !o.force && !unedited(path)? {
            bail!(
                "{}: edited since gradscope wrote it (its signature line does not match); keep your edits, or give --force to overwrite it",
                path.display()
            );
        }
    }
    for (path, text) in texts {
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
    if o.jobs == 0 {
        bail!("--jobs: give 1 or more runs at a time");
    }
    if o.jobs > o.cpus && o.gpus.is_none_or(|g| g == 0) {
        bail!(
            "--jobs: {} runs at a time need at least {} CPUs per task (--cpus {})",
            o.jobs,
            o.jobs,
            o.cpus
        );
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
    for (flag, value) in [
        ("--account", &o.account),
        ("--qos", &o.qos),
        ("--constraint", &o.constraint),
    ] {
        if let Some(v) = value {
            plain(flag, v)?;
        }
    }
    if let Some(m) = &o.mem {
        let digits = m.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || m.len() > digits.len() + 1
        {
            bail!("--mem: {m:?} is not a Slurm memory size (a number with an optional K, M, G or T, e.g. 8G)");
        }
    }
    if let Some(t) = &o.merge_time {
        plain("--merge-time", t)?;
        if !slurm_time(t) {
            bail!(
                "--merge-time: {t:?} is not a Slurm time limit (MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED)"
            );
        }
    }
    for line in &o.setup {
        if line.contains(['\n', '\r']) {
            bail!("--setup: {line:?} is more than one line; give --setup once per line, or --prelude FILE");
        }
    }
    Ok(())
}

/// The shell lines run before gradscope: each `--setup`, then the
/// `--prelude` file.
fn setup_lines(o: &Options) -> Result<String> {
    let mut lines = String::new();
    for line in &o.setup {
        lines.push_str(line);
        lines.push('\n');
    }
    if let Some(p) = &o.prelude {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("--prelude {}: cannot read it", p.display()))?;
        lines.push_str(&text);
        if !text.is_empty() && !text.ends_with('\n') {
            lines.push('\n');
        }
    }
    Ok(lines)
}

/// FNV-1a over the text: a checksum that stays the same across Rust
/// versions and machines (std's hashers promise neither).
fn checksum(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// `text` with its signature line appended.
fn signed(text: String) -> String {
    let sum = checksum(&text);
    format!("{text}{SIGNATURE}{sum}\n")
}

/// Whether the script at `path` is as gradscope wrote it: its last line is
/// the signature of the lines above it. A missing file counts as unedited.
fn unedited(path: &Path) -> Result<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    let body = text.trim_end_matches('\n');
    let Some(at) = body.rfind('\n') else {
        return Ok(false);
    };
    let (above, last) = (&text[..at + 1], &body[at + 1..]);
    Ok(last.strip_prefix(SIGNATURE) == Some(checksum(above).as_str()))
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
    /// Shell lines run before gradscope (`--setup`, `--prelude`).
    setup: String,
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
            setup: String::new(),
        })
    }

    /// The `#SBATCH` lines both scripts carry.
    fn common(&self) -> String {
        let mut common = String::new();
        let o = self.o;
        for (option, value) in [
            ("partition", &o.partition),
            ("account", &o.account),
            ("qos", &o.qos),
            ("mem", &o.mem),
            ("constraint", &o.constraint),
        ] {
            if let Some(v) = value {
                common.push_str(&format!("#SBATCH --{option}={v}\n"));
            }
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
        sweep.push_str(&format!("\ncd {}\n", quote_path(&self.cwd)));
        sweep.push_str(&self.setup);
        // --jobs J splits the task's CPUs between J runs.
        let threads = match o.jobs {
            0 | 1 => o.cpus.to_string(),
            // Refused above without GPUs; on a GPU the runs share the CPUs.
            j => format!("{} --jobs {j}", (o.cpus / j).max(1)),
        };
        sweep.push_str(&format!(
            "exec {bin} run {exp} --shard \"$SLURM_ARRAY_TASK_ID/{n}\" \
             --out {results}/shards/\"$SLURM_ARRAY_TASK_ID\" --resume --no-plot --threads {threads}{device}\n",
            bin = quote_path(&self.bin),
            exp = quote_path(&self.exp),
            results = quote_path(&self.results),
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
             #SBATCH --cpus-per-task=1\n\
             #SBATCH --time={time}\n",
            out = self.log_dir,
            time = self.o.merge_time.as_deref().unwrap_or(MERGE_TIME),
        );
        merge.push_str(&self.common());
        merge.push_str(&format!("\ncd {}\n", quote_path(&self.cwd)));
        merge.push_str(&self.setup);
        merge.push_str(&format!(
            "# Shards that never started have no folder; merge lists their runs as missing.\n\
             shards=()\n\
             for i in $(seq 0 {last}); do\n\
             \x20 d={results}/shards/$i\n\
             \x20 [ -d \"$d/runs\" ] && shards+=(\"$d\")\n\
             done\n\
             exec {bin} merge \"${{shards[@]}}\" --out {results}\n",
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

    /// A script as written is unedited; one changed byte, a line added at
    /// the end, or a lost signature makes it edited.
    #[test]
    fn an_edited_script_is_told_from_a_written_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.sbatch");
        assert!(unedited(&path).unwrap(), "a missing script is not an edit");
        let text = signed("#!/bin/bash\n#SBATCH --time=10\nexec true\n".into());
        std::fs::write(&path, &text).unwrap();
        assert!(unedited(&path).unwrap());
        for edit in [
            text.replace("--time=10", "--time=20"),
            format!("{text}echo more\n"),
            text.lines().take(3).map(|l| format!("{l}\n")).collect(),
        ] {
            std::fs::write(&path, edit).unwrap();
            assert!(!unedited(&path).unwrap());
        }
    }

    /// Values an #SBATCH line cannot carry are refused, naming the option.
    #[test]
    fn scheduler_options_are_checked() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            o: Options,
        }
        let check = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["slurm", "--shards", "2"], args].concat()).unwrap();
            check_options(&cli.o).map_err(|e| e.to_string())
        };
        assert!(check(&[
            "--mem",
            "8G",
            "--account",
            "lab",
            "--setup",
            "module load x"
        ])
        .is_ok());
        for (args, flag) in [
            (&["--mem", "8GB"][..], "--mem:"),
            (&["--mem", "G"], "--mem:"),
            (&["--account", "my lab"], "--account:"),
            (&["--constraint", "a#b"], "--constraint:"),
            (&["--merge-time", "1h"], "--merge-time:"),
            (&["--setup", "a\nb"], "--setup:"),
        ] {
            let e = check(args).unwrap_err();
            assert!(e.starts_with(flag), "{args:?}: {e}");
        }
    }

    /// FNV-1a's published test vectors (Fowler, Noll & Vo): the signature
    /// must not change between builds.
    #[test]
    fn the_checksum_is_fnv1a_64() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_eq!(checksum("a"), "af63dc4c8601ec8c");
        assert_eq!(checksum("foobar"), "85944171f73967e8");
    }
}
