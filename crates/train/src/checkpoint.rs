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
//! The file is written to a temporary name, synced and renamed, so a kill
//! while it is written leaves the previous checkpoint whole. Because the
//! one file holds both the tensors and the state, they always belong to
//! the same step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gradscope_format::decay::ProfileWindow;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::record::GradientEnds;
use crate::TrainError;

/// The checkpoint's file name inside a run folder.
pub use gradscope_format::files::CHECKPOINT as CHECKPOINT_FILE;

/// Bumped when [`LoopState`] changes meaning; an older checkpoint is then
/// refused (the run trains from step 0) rather than misread.
pub(crate) const FORMAT: u32 = 1;

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
    /// The first/last-layer gradient readings so far.
    pub ends: GradientEnds,
    /// Bytes of `metrics.csv`, `gradients.csv` and `activations.csv`.
    pub csv_bytes: [u64; 3],
    /// Wall-clock seconds trained before the checkpoint.
    pub elapsed_s: f64,
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

/// Writes `dir/checkpoint.pt` atomically: a temporary file, synced, then
/// renamed over the old one, and the folder synced so the rename lasts.
pub fn save(dir: &Path, state: &LoopState, t: Tensors) -> Result<(), TrainError> {
    let file = path(dir);
    let tmp = dir.join(format!(".{CHECKPOINT_FILE}.tmp-{}", std::process::id()));
    let json = serde_json::to_vec(state).map_err(|source| TrainError::Json {
        path: file.clone(),
        source,
    })?;
    let cpu = |t: &Tensor| t.to_device(Device::Cpu);
    let mut named: Vec<(String, Tensor)> = vec![
        ("state".to_owned(), Tensor::from_slice(&json)),
        ("order".to_owned(), cpu(t.order)),
        ("window".to_owned(), cpu(t.window)),
    ];
    named.extend(t.vars.iter().map(|(n, v)| (format!("var/{n}"), cpu(v))));
    named.extend(
        t.momentum
            .iter()
            .map(|(n, m)| (format!("momentum/{n}"), cpu(m))),
    );
    save_tensors(&named, &tmp, &file)
}

/// Writes named tensors to `file` through `tmp` (libtorch writes the file
/// itself, so `durable::write_atomic`'s bytes do not apply): saved, synced,
/// renamed, and the folder synced so that the rename lasts. Checkpoints and
/// saved weights go this way.
pub(crate) fn save_tensors(
    named: &[(String, Tensor)],
    tmp: &Path,
    file: &Path,
) -> Result<(), TrainError> {
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::save_multi(&refs, tmp)?;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(TrainError::io(tmp))?;
    std::fs::rename(tmp, file).map_err(TrainError::io(file))?;
    // The rename is durable only once the folder's entry is on disk.
    gradscope_format::durable::sync_dir(file);
    Ok(())
}

/// Reads `dir/checkpoint.pt`; `Ok(None)` when there is none.
///
/// A file that is not a checkpoint of this format, or of another run, is
/// an error naming the file and what is wrong.
pub fn load(dir: &Path, run: &str) -> Result<Option<Checkpoint>, TrainError> {
    let file = path(dir);
    if !file.exists() {
        return Ok(None);
    }
    let bad = |message: String| TrainError::Invalid {
        field: file.display().to_string(),
        message,
    };
    // libtorch's message carries a C++ frame list; its first line says it.
    let first_line = |e: tch::TchError| {
        let text = e.to_string();
        text.lines().next().unwrap_or_default().to_owned()
    };
    let mut named: BTreeMap<String, Tensor> = Tensor::load_multi(&file)
        .map_err(|e| bad(format!("not a readable checkpoint ({})", first_line(e))))?
        .into_iter()
        .collect();
    let mut take = |name: &str| {
        named
            .remove(name)
            .ok_or_else(|| bad(format!("has no {name:?} entry")))
    };
    let state_bytes = take("state")?;
    let bytes: Vec<u8> =
        Vec::try_from(&state_bytes.to_kind(Kind::Uint8)).map_err(|e| bad(format!("state: {e}")))?;
    let state: LoopState = serde_json::from_slice(&bytes).map_err(|source| TrainError::Json {
        path: file.clone(),
        source,
    })?;
    if state.format != FORMAT {
        return Err(bad(format!(
            "checkpoint format {} (this version reads {FORMAT})",
            state.format
        )));
    }
    if state.run != run {
        return Err(bad(format!(
            "is a checkpoint of run {:?}, not {run:?}",
            state.run
        )));
    }
    let order = take("order")?;
    let window = take("window")?;
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

/// Removes the checkpoint of a run that has ended (it only serves to go
/// on, and holds a copy of every weight).
pub fn remove(dir: &Path) -> Result<(), TrainError> {
    let file = path(dir);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(&file)(e)),
        _ => Ok(()),
    }
}
