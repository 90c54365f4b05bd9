//! A run's final weights (`train.save_weights`): `RUN/model.ot`, every
//! variable of the run's var store by its path (BatchNorm's running
//! statistics included, so the net evaluates as it did), written the way
//! checkpoints are: serialised in memory, then a temporary file, synced,
//! renamed, the folder synced (a full disk is an I/O error, not an abort).
//! `gradscope landscape` loads them into a network built from the run's
//! own `run.json`.

use crate::TrainError;
use gradscope_format::files::WEIGHTS;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Tensor};

/// `dir/model.ot`.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join(WEIGHTS)
}

/// Writes `dir/model.ot` durably and atomically, with CPU copies of the
/// variables, so a file saved on CUDA loads anywhere.
pub fn save(dir: &Path, vs: &nn::VarStore) -> Result<(), TrainError> {
    let file = path(dir);
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.to_device(Device::Cpu)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    crate::checkpoint::save_tensors(&named, &file)
}

/// Checks that `dir` holds saved weights; the error says how to save them.
pub fn check(dir: &Path) -> Result<(), TrainError> {
    let file = path(dir);
    if file.is_file() {
        return Ok(());
    }
    Err(TrainError::File {
        path: file,
        message: "no saved weights: train the run with \"save_weights\": true in the \
                  experiment's \"train\" section (then `gradscope run FILE --restart`)"
            .to_owned(),
    })
}

/// Loads `dir/model.ot` into `vs`, whose network was built the way the run
/// built it. A file without one of the store's variables, or with one of
/// another shape, is an error naming the file and the variable.
pub fn load(dir: &Path, vs: &mut nn::VarStore) -> Result<(), TrainError> {
    check(dir)?;
    let file = path(dir);
    let saved = Tensor::load_multi(&file).map_err(|e| TrainError::File {
        path: file.clone(),
        message: format!(
            "cannot be read as saved weights: {}",
            first_line(&e.to_string())
        ),
    })?;
    let invalid = |message: String| TrainError::File {
        path: file.clone(),
        message,
    };
    let vars = vs.variables();
    for (name, var) in &vars {
        let Some((_, t)) = saved.iter().find(|(n, _)| n == name) else {
            return Err(invalid(format!(
                "has no variable {name:?}: it was saved from another network"
            )));
        };
        if t.size() != var.size() {
            return Err(invalid(format!(
                "variable {name:?} is {:?} there but {:?} in the network the run's \
                 run.json describes",
                t.size(),
                var.size()
            )));
        }
        tch::no_grad(|| var.shallow_clone().copy_(t));
    }
    Ok(())
}

/// libtorch's messages run on with a C++ stack trace; its first line says
/// what went wrong.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
