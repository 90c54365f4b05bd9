//! Checkpoints inside a run: everything the training loop needs to go on
//! from a step as if it had never stopped.
//!
//! One file, `RUN/checkpoint.pt` (libtorch's format, `Tensor::save_multi`),
//! holds:
//! - every variable of the network (weights and BatchNorm's running
//!   statistics), as `var/NAME`;
//! - the optimizer's momentum buffers, as `momentum/NAME` ([`crate::sgd`]);
//! - the data order of the current epoch (`order`) and the running sums of
//!   the training-error window (`window`);
//! - the rest as JSON in a byte tensor (`state`, [`LoopState`]): the step,
//!   the lr and warm-up phase, the two random streams (data order and
//!   augmentation), the gradient-profile windows, the recorded gradient
//!   ends, and the byte length of each CSV file at the checkpoint, so that
//!   rows a run wrote after it are cut off when it resumes.
//!
//! The file is serialised in memory first, then written with
//! [`gradscope_format::durable::write_atomic`] (a temporary name, synced
//! and renamed), so a kill while it is written leaves the previous
//! checkpoint whole, and a full disk is an ordinary I/O error naming the
//! file: libtorch writing the file itself aborts the process when a write
//! fails (its stream writer throws in a destructor). Because the one file
//! holds both the tensors and the state, they always belong to the same
//! step.
//!
//! A checkpoint is gone on from only if it is this run's: [`load`] checks
//! its run name, the resolved settings it was taken with (the state holds
//! the experiment), a CRC-32 of every tensor's bytes (libtorch does not
//! check its zip's CRC, so a flipped weight byte would load silently), the
//! data order (a permutation's length, every index in range), and that
//! every recorded CSV length ends just after a row. Any failure is a
//! [`TrainError::Checkpoint`] naming the file, and the caller drops the
//! checkpoint (the run trains from step 0) rather than resuming from it.
//! Temporary files of writers that died are removed when a run starts or
//! resumes and when it ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gradscope_format::decay::ProfileWindow;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::holdings::changed_settings;
use crate::record::GradientEnds;
use crate::spec::Experiment;
use crate::TrainError;

/// The checkpoint's file name inside a run folder.
pub use gradscope_format::files::CHECKPOINT as CHECKPOINT_FILE;

/// Bumped when [`LoopState`] changes meaning; an older checkpoint is then
/// refused (the run trains from step 0) rather than misread.
pub(crate) const FORMAT: u32 = 2;

/// The training loop's state between two steps, besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// The run's name: a checkpoint copied into another run's folder is
    /// refused.
    pub run: String,
    /// Optimizer steps done.
    pub steps_done: usize,
    /// The learning rate of the last step.
    pub lr: f64,
    /// Whether He et al.'s warm-up phase is still on.
    pub warming: bool,
    /// The held-out evaluation due after step `steps_done` had not ended
    /// when the run stopped: it is run first on resuming.
    pub pending_eval: bool,
    /// State of the data-order stream, and where in `order` the next
    /// minibatch starts.
    pub order_rng: u64,
    pub order_at: i64,
    /// State of the augmentation stream, when the dataset augments.
    pub augment_rng: Option<u64>,
    /// Steps summed in the `window` tensor since the last training row.
    pub window_steps: usize,
    /// Gradient profiles of the first and last probe steps so far.
    pub profiles: ProfileWindow,
    /// The forward signal's profiles of the same steps.
    #[serde(default)]
    pub forward: ProfileWindow,
    /// The main weights' ‖∇W‖ profiles of the same steps; `None` for the
    /// rnn family, and in checkpoints written before them.
    #[serde(default)]
    pub wgrad: Option<ProfileWindow>,
    /// The first/last-layer gradient readings so far.
    pub ends: GradientEnds,
    /// Bytes of `metrics.csv`, `gradients.csv` and `activations.csv`.
    pub csv_bytes: [u64; 3],
    /// Wall-clock seconds trained before the checkpoint.
    pub elapsed_s: f64,
    /// The experiment, resolved, that the run was trained with: the
    /// checkpoint of a same-named run of other settings is refused.
    pub config: Experiment,
    /// CRC-32 of every tensor but `state` (names and bytes, in name
    /// order); [`save`] sets it.
    pub checksum: u32,
}

/// A checkpoint read back: the state and its tensors, on the CPU.
pub struct Checkpoint {
    pub state: LoopState,
    /// Network variables by name.
    pub vars: BTreeMap<String, Tensor>,
    /// Momentum buffers by variable name.
    pub momentum: BTreeMap<String, Tensor>,
    pub order: Tensor,
    pub window: Tensor,
}

/// Tensors to save, borrowed from the training loop.
pub struct Tensors<'a> {
    pub vars: Vec<(String, Tensor)>,
    pub momentum: &'a BTreeMap<String, Tensor>,
    pub order: &'a Tensor,
    pub window: &'a Tensor,
}

/// The checkpoint file of a run folder.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join(CHECKPOINT_FILE)
}

/// Writes `dir/checkpoint.pt` atomically and durably (see the module);
/// the state's `checksum` is set here.
pub fn save(dir: &Path, state: &LoopState, t: Tensors) -> Result<(), TrainError> {
    let file = path(dir);
    let cpu = |t: &Tensor| t.to_device(Device::Cpu);
    let mut named: Vec<(String, Tensor)> = vec![
        ("order".to_owned(), cpu(t.order)),
        ("window".to_owned(), cpu(t.window)),
    ];
    named.extend(t.vars.iter().map(|(n, v)| (format!("var/{n}"), cpu(v))));
    named.extend(
        t.momentum
            .iter()
            .map(|(n, m)| (format!("momentum/{n}"), cpu(m))),
    );
    let mut state = state.clone();
    state.checksum = checksum(named.iter().map(|(n, t)| (n.as_str(), t)))?;
    let json = serde_json::to_vec(&state).map_err(|source| TrainError::Json {
        path: file.clone(),
        source,
    })?;
    named.push(("state".to_owned(), Tensor::from_slice(&json)));
    save_tensors(&named, &file)
}

/// Writes named tensors to `file`: serialised in memory by libtorch, then
/// written by `durable::write_atomic`, so that a failed write (a full
/// disk) is an I/O error naming the file, never libtorch's abort, and the
/// old file stays whole. Checkpoints and saved weights go this way.
pub(crate) fn save_tensors(named: &[(String, Tensor)], file: &Path) -> Result<(), TrainError> {
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut bytes = Vec::new();
    Tensor::save_multi_to_stream(&refs, &mut bytes)?;
    // The error names the file being written, not its temporary name.
    gradscope_format::durable::write_atomic(file, &bytes).map_err(|(_, source)| TrainError::Io {
        path: file.to_path_buf(),
        source,
    })
}

/// CRC-32 of named tensors, in name order: each name, then the tensor's
/// bytes as stored (contiguous, native byte order).
fn checksum<'a>(named: impl Iterator<Item = (&'a str, &'a Tensor)>) -> Result<u32, TrainError> {
    let mut sorted: Vec<(&str, &Tensor)> = named.collect();
    sorted.sort_by_key(|(n, _)| *n);
    let mut crc = crc32fast::Hasher::new();
    for (name, t) in sorted {
        let t = t.contiguous();
        let n = t.numel();
        let mut bytes = vec![0u8; n * t.f_kind()?.elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, n)?;
        crc.update(name.as_bytes());
        crc.update(&bytes);
    }
    Ok(crc.finalize())
}

/// Reads `dir/checkpoint.pt` of run `run` of experiment `exp`, whose
/// training split has `train_len` examples; `Ok(None)` when there is none.
/// Temporary files of writers that died are removed first.
///
/// A file that is not a checkpoint of this format, or is another run's, or
/// was taken with other settings, or fails its checksum, or whose data
/// order or CSV lengths cannot be gone on from, is a
/// [`TrainError::Checkpoint`] naming the file and what is wrong.
pub fn load(
    dir: &Path,
    run: &str,
    exp: &Experiment,
    train_len: i64,
) -> Result<Option<Checkpoint>, TrainError> {
    gradscope_format::durable::remove_dead_temps(dir);
    let file = path(dir);
    if !file.exists() {
        return Ok(None);
    }
    let bad = |message: String| TrainError::Checkpoint {
        path: file.clone(),
        message,
    };
    let mut named: BTreeMap<String, Tensor> = Tensor::load_multi(&file)
        // A note, not a failure: libtorch's first line says it.
        .map_err(|e| {
            bad(format!(
                "not a readable checkpoint ({})",
                crate::torch_text(&e, false)
            ))
        })?
        .into_iter()
        .collect();
    let state_bytes = named
        .remove("state")
        .ok_or_else(|| bad("has no \"state\" entry".into()))?;
    let bytes: Vec<u8> =
        Vec::try_from(&state_bytes.to_kind(Kind::Uint8)).map_err(|e| bad(format!("state: {e}")))?;
    // Only the format is read first: an older state may not parse.
    let format = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("format")?.as_u64());
    if format != Some(FORMAT.into()) {
        return Err(bad(format!(
            "checkpoint format {} (this version reads {FORMAT})",
            format.map_or("unknown".to_owned(), |f| f.to_string())
        )));
    }
    let state: LoopState =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("state: {e}")))?;
    if state.run != run {
        return Err(bad(format!(
            "is a checkpoint of run {:?}, not {run:?}",
            state.run
        )));
    }
    let fields = changed_settings(exp, &state.config);
    if !fields.is_empty() {
        return Err(bad(format!(
            "was taken with other settings ({}); it is not this run's",
            fields.join(", ")
        )));
    }
    let sum = checksum(named.iter().map(|(n, t)| (n.as_str(), t)))?;
    if sum != state.checksum {
        return Err(bad(format!(
            "its tensors fail their checksum ({sum:08x}, recorded {:08x}): the file is damaged",
            state.checksum
        )));
    }
    let mut take = |name: &str| {
        named
            .remove(name)
            .ok_or_else(|| bad(format!("has no {name:?} entry")))
    };
    let order = take("order")?;
    let window = take("window")?;
    check_order(&order, state.order_at, train_len).map_err(|m| bad(format!("data order: {m}")))?;
    check_csv_lengths(dir, &state.csv_bytes).map_err(bad)?;
    let mut vars = BTreeMap::new();
    let mut momentum = BTreeMap::new();
    for (name, t) in named {
        if let Some(v) = name.strip_prefix("var/") {
            vars.insert(v.to_owned(), t);
        } else if let Some(m) = name.strip_prefix("momentum/") {
            momentum.insert(m.to_owned(), t);
        }
    }
    Ok(Some(Checkpoint {
        state,
        vars,
        momentum,
        order,
        window,
    }))
}

/// The data order must be an epoch's order of the training split: one
/// index per example, each in range, and a position inside it. A bad one
/// would fail every resume deep inside libtorch (`index out of range`).
fn check_order(order: &Tensor, at: i64, train_len: i64) -> Result<(), String> {
    if order.kind() != Kind::Int64 || order.size() != [train_len] {
        return Err(format!(
            "{:?} {:?}, where the training split wants Int64 [{train_len}]",
            order.kind(),
            order.size()
        ));
    }
    if train_len > 0 {
        let (lo, hi) = (order.min().int64_value(&[]), order.max().int64_value(&[]));
        if lo < 0 || hi >= train_len {
            return Err(format!("indices from {lo} to {hi}, outside 0..{train_len}"));
        }
    }
    if !(0..=train_len).contains(&at) {
        return Err(format!("position {at}, outside 0..={train_len}"));
    }
    Ok(())
}

/// Every CSV must be at least as long as the checkpoint recorded, and the
/// recorded length must end just after a row: a length from another run's
/// checkpoint would otherwise cut the files mid-row.
fn check_csv_lengths(dir: &Path, lengths: &[u64; 3]) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    for (name, &len) in gradscope_probe::writers::CSV_FILES.iter().zip(lengths) {
        let file = dir.join(name);
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        if size < len {
            return Err(format!(
                "{name} is shorter than the {len} bytes it recorded"
            ));
        }
        if len == 0 {
            continue;
        }
        let mut last = [0u8];
        std::fs::File::open(&file)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(len - 1))?;
                f.read_exact(&mut last)
            })
            .map_err(|e| format!("{name}: {e}"))?;
        if last[0] != b'\n' {
            return Err(format!(
                "{name}'s recorded length {len} falls inside a row, not after one"
            ));
        }
    }
    Ok(())
}

/// Removes the checkpoint of a run that has ended (it only serves to go
/// on, and holds a copy of every weight).
pub fn remove(dir: &Path) -> Result<(), TrainError> {
    gradscope_format::durable::remove_dead_temps(dir);
    let file = path(dir);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(&file)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: i64 = 16;

    fn exp(lr: f64) -> Experiment {
        let json = r#"{"name": "t",
              "dataset": {"kind": "synthetic", "samples": 16, "classes": 4, "features": 8},
              "model": {"family": "mlp", "width": 8, "activation": "tanh"},
              "variants": ["plain"], "depths": [3], "seeds": [0],
              "train": {"lr": LR, "batch_size": 8, "steps": 2, "eval_every": 1}}"#;
        Experiment::from_json(&json.replace("LR", &lr.to_string()), Path::new("t.json")).unwrap()
    }

    fn state(exp: &Experiment, csv_bytes: [u64; 3]) -> LoopState {
        LoopState {
            format: FORMAT,
            run: "plain-d3-s0".into(),
            steps_done: 1,
            lr: 0.1,
            warming: false,
            pending_eval: false,
            order_rng: 7,
            order_at: 8,
            augment_rng: None,
            window_steps: 0,
            profiles: Default::default(),
            forward: Default::default(),
            wgrad: Default::default(),
            ends: Default::default(),
            csv_bytes,
            elapsed_s: 0.0,
            config: exp.clone(),
            checksum: 0,
        }
    }

    /// Saves a checkpoint of `order` (and a weight of recognisable bytes)
    /// into a fresh folder whose metrics.csv is `csv`.
    fn saved(order: &Tensor, csv: &str, csv_len: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.csv"), csv).unwrap();
        let w = Tensor::from_slice(&[1234.5f32; 64]);
        let momentum = BTreeMap::new();
        let window = Tensor::zeros([2], (Kind::Double, Device::Cpu));
        let t = Tensors {
            vars: vec![("w".into(), w)],
            momentum: &momentum,
            order,
            window: &window,
        };
        save(dir.path(), &state(&exp(0.1), [csv_len, 0, 0]), t).unwrap();
        dir
    }

    fn load_err(dir: &Path, lr: f64) -> String {
        match load(dir, "plain-d3-s0", &exp(lr), N) {
            Ok(_) => panic!("the checkpoint loaded"),
            Err(e) => {
                assert!(matches!(e, TrainError::Checkpoint { .. }), "{e:?}");
                e.to_string()
            }
        }
    }

    fn permutation() -> Tensor {
        Tensor::arange(N, (Kind::Int64, Device::Cpu))
    }

    #[test]
    fn a_checkpoint_of_this_run_loads_and_one_of_other_settings_is_refused() {
        let dir = saved(&permutation(), "a,b\n1,2\n", 8);
        let ck = load(dir.path(), "plain-d3-s0", &exp(0.1), N)
            .unwrap()
            .unwrap();
        assert_eq!(ck.state.steps_done, 1);
        // Issue 38: the same-named run of an lr 0.02 experiment.
        let err = load_err(dir.path(), 0.02);
        assert!(
            err.contains("checkpoint.pt") && err.contains("train.lr"),
            "{err}"
        );
    }

    /// A checkpoint written before the weight-gradient profiles reads
    /// them as absent (the resumed run then reports no wgrad decay rather
    /// than one whose "init" window holds later steps).
    #[test]
    fn a_checkpoint_state_without_wgrad_profiles_reads_them_as_absent() {
        let mut json = serde_json::to_value(state(&exp(0.1), [0; 3])).unwrap();
        json.as_object_mut().unwrap().remove("wgrad");
        let old: LoopState = serde_json::from_value(json).unwrap();
        assert_eq!(old.wgrad, None);
    }

    #[test]
    fn a_flipped_weight_byte_fails_the_checksum() {
        let dir = saved(&permutation(), "", 0);
        let file = path(dir.path());
        let mut bytes = std::fs::read(&file).unwrap();
        let pattern: Vec<u8> = std::iter::repeat_n(1234.5f32.to_le_bytes(), 4)
            .flatten()
            .collect();
        let at = bytes
            .windows(pattern.len())
            .position(|w| w == pattern)
            .expect("the weight's bytes are stored as they are");
        bytes[at + 5] ^= 0x10;
        std::fs::write(&file, bytes).unwrap();
        // libtorch itself loads the damaged file without a word.
        assert!(Tensor::load_multi(&file).is_ok());
        let err = load_err(dir.path(), 0.1);
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn an_order_index_out_of_range_is_refused_by_name() {
        let order = permutation();
        let _ = order.get(3).fill_(N + 5);
        let dir = saved(&order, "", 0);
        let err = load_err(dir.path(), 0.1);
        assert!(
            err.contains("checkpoint.pt") && err.contains("data order"),
            "{err}"
        );
        // A wrong length too.
        let dir = saved(&Tensor::arange(N - 1, (Kind::Int64, Device::Cpu)), "", 0);
        assert!(load_err(dir.path(), 0.1).contains("data order"));
    }

    #[test]
    fn a_csv_length_inside_a_row_is_refused() {
        // 5 bytes of "a,b\n1,2\n" end inside the row "1,2".
        let dir = saved(&permutation(), "a,b\n1,2\n", 5);
        let err = load_err(dir.path(), 0.1);
        assert!(
            err.contains("metrics.csv") && err.contains("inside a row"),
            "{err}"
        );
    }

    #[test]
    fn temporary_files_of_a_dead_writer_are_removed_on_resume_and_at_the_end() {
        let dir = saved(&permutation(), "", 0);
        // No process has this pid (Linux's pid_max is at most 2^22).
        let tmp = dir
            .path()
            .join(format!(".{CHECKPOINT_FILE}.tmp-{}", u32::MAX - 1));
        // Left untouched for longer than a live writer would (see
        // `durable::STALE_TEMP`).
        let left = || {
            std::fs::write(&tmp, "half a checkpoint").unwrap();
            let then = std::time::SystemTime::now() - 2 * gradscope_format::durable::STALE_TEMP;
            let f = std::fs::OpenOptions::new().write(true).open(&tmp).unwrap();
            f.set_modified(then).unwrap();
        };
        left();
        load(dir.path(), "plain-d3-s0", &exp(0.1), N)
            .unwrap()
            .unwrap();
        assert!(!tmp.exists(), "resuming left {}", tmp.display());
        left();
        remove(dir.path()).unwrap();
        assert!(!tmp.exists(), "the run's end left {}", tmp.display());
    }
}
