//! Streaming CSV writers for one run's `metrics.csv`, `gradients.csv` and
//! `activations.csv` (headers as in DESIGN.md and crates/README.md).
//!
//! Each probe step or metrics row is flushed as soon as it is written, so a
//! run that is killed leaves files that parse, ending at a whole row.

use crate::{GradStats, ProbeError, ProbeRecord};
use gradscope_format::files::{ACTIVATIONS_CSV, GRADIENTS_CSV, METRICS_CSV};
pub use gradscope_format::rows::{ActivationRow, MetricRow, ACTIVATIONS_HEADER, METRICS_HEADER};
use gradscope_format::{GradientRow, KIND_OUTPUT, KIND_WEIGHT};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The three per-run files, in [`RunWriters::lengths`] order.
pub use gradscope_format::files::RUN_CSVS as CSV_FILES;
pub use gradscope_format::GRADIENTS_HEADER;

/// One CSV file, flushed after every logical group of rows.
struct Sink {
    path: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl Sink {
    fn create(path: PathBuf, header: &[&str]) -> Result<Sink, ProbeError> {
        let file = File::create(&path).map_err(|source| ProbeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut sink = Sink {
            // The header is written by hand below, also for serde rows.
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(BufWriter::new(file)),
            path,
        };
        sink.row(header)?;
        sink.flush()?;
        Ok(sink)
    }

    /// Opens a file written before at the `len` bytes a checkpoint
    /// recorded: what a run wrote after its checkpoint is cut off, so a
    /// resumed run writes each row once. A file shorter than `len` was not
    /// written by this run's checkpoint and is an error.
    fn resume(path: PathBuf, len: u64) -> Result<Sink, ProbeError> {
        let io = |source| ProbeError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io)?;
        let now = file.metadata().map_err(io)?.len();
        if now < len {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{now} bytes, but the checkpoint was taken at {len}"),
            )));
        }
        file.set_len(len).map_err(io)?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len)).map_err(io)?;
        Ok(Sink {
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(BufWriter::new(file)),
            path,
        })
    }

    /// Bytes written so far (every row is flushed when written).
    fn len(&mut self) -> Result<u64, ProbeError> {
        self.flush()?;
        // Synced: a checkpoint records this length, and after a crash the
        // file must still be at least this long.
        let file = self.writer.get_ref().get_ref();
        file.sync_data()
            .and_then(|()| file.metadata())
            .map(|m| m.len())
            .map_err(|source| ProbeError::Io {
                path: self.path.display().to_string(),
                source,
            })
    }

    fn row<I, T>(&mut self, fields: I) -> Result<(), ProbeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.writer
            .write_record(fields)
            .map_err(|source| ProbeError::Csv {
                path: self.path.display().to_string(),
                source,
            })
    }

    /// A row from a serde type whose fields are the header's columns (the
    /// header itself was written by `create`).
    fn serialize(&mut self, row: &impl serde::Serialize) -> Result<(), ProbeError> {
        self.writer
            .serialize(row)
            .map_err(|source| ProbeError::Csv {
                path: self.path.display().to_string(),
                source,
            })
    }

    fn flush(&mut self) -> Result<(), ProbeError> {
        self.writer.flush().map_err(|source| ProbeError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }
}

/// The three per-run CSV files.
pub struct RunWriters {
    metrics: Sink,
    gradients: Sink,
    activations: Sink,
    names: Vec<String>,
    trunk: Vec<bool>,
}

impl RunWriters {
    /// Creates (truncating) the three files in `dir`. `names` are the probe
    /// points, input side first, and `trunk` says which are on the trunk.
    pub fn create(
        dir: &Path,
        names: Vec<String>,
        trunk: Vec<bool>,
    ) -> Result<RunWriters, ProbeError> {
        Ok(RunWriters {
            metrics: Sink::create(dir.join(METRICS_CSV), &METRICS_HEADER)?,
            gradients: Sink::create(dir.join(GRADIENTS_CSV), &GRADIENTS_HEADER)?,
            activations: Sink::create(dir.join(ACTIVATIONS_CSV), &ACTIVATIONS_HEADER)?,
            names,
            trunk,
        })
    }

    /// Reopens the three files of a run that is resumed from a checkpoint,
    /// each cut back to the length [`RunWriters::lengths`] gave then.
    pub fn resume(
        dir: &Path,
        names: Vec<String>,
        trunk: Vec<bool>,
        lengths: [u64; 3],
    ) -> Result<RunWriters, ProbeError> {
        // All three are checked before any is cut, so a refusal leaves the
        // files as they were.
        for (file, &len) in CSV_FILES.iter().zip(&lengths) {
            let path = dir.join(file);
            let now = std::fs::metadata(&path)
                .map(|m| m.len())
                .map_err(|source| ProbeError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
            if now < len {
                return Err(ProbeError::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{now} bytes, but the checkpoint was taken at {len}"),
                    ),
                });
            }
        }
        Ok(RunWriters {
            metrics: Sink::resume(dir.join(METRICS_CSV), lengths[0])?,
            gradients: Sink::resume(dir.join(GRADIENTS_CSV), lengths[1])?,
            activations: Sink::resume(dir.join(ACTIVATIONS_CSV), lengths[2])?,
            names,
            trunk,
        })
    }

    /// Bytes in `metrics.csv`, `gradients.csv` and `activations.csv`, for a
    /// checkpoint.
    pub fn lengths(&mut self) -> Result<[u64; 3], ProbeError> {
        Ok([
            self.metrics.len()?,
            self.gradients.len()?,
            self.activations.len()?,
        ])
    }

    pub fn metrics(&mut self, row: &MetricRow) -> Result<(), ProbeError> {
        self.metrics.serialize(row)?;
        self.metrics.flush()
    }

    /// Writes one probe step: a `weight` and an `output` row per probe point,
    /// and an activations row per response.
    pub fn probe(&mut self, step: usize, rec: &ProbeRecord) -> Result<(), ProbeError> {
        for (i, name) in self.names.iter().enumerate() {
            let row = |kind: &str, g: &GradStats| GradientRow {
                step: step as u64,
                layer: i,
                name: name.clone(),
                kind: kind.to_string(),
                trunk: self.trunk[i],
                l2: Some(g.l2),
                rms: Some(g.rms),
                zero_fraction: Some(g.zero_fraction),
                weight_norm: None,
                relative: None,
            };
            if let Some(w) = &rec.weight[i] {
                let mut r = row(KIND_WEIGHT, &w.grad);
                (r.weight_norm, r.relative) = (Some(w.norm), Some(w.relative()));
                self.gradients.serialize(&r)?;
            }
            self.gradients
                .serialize(&row(KIND_OUTPUT, &rec.output[i]))?;
        }
        for r in &rec.responses {
            self.activations.serialize(&ActivationRow {
                step: step as u64,
                layer: r.point,
                name: self.names[r.point].clone(),
                mean: Some(r.mean),
                std: Some(r.std),
                saturation: Some(r.saturation),
                dead: Some(r.dead),
            })?;
        }
        self.gradients.flush()?;
        self.activations.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResponseStats, WeightStats};

    #[test]
    fn headers_match_the_file_contract() {
        // crates/README.md, "The file contract".
        let dir = tempfile_dir();
        let mut w = RunWriters::create(
            &dir,
            vec!["layer00.linear".into(), "layer01.linear".into()],
            vec![false, true],
        )
        .unwrap();
        let g = |l2: f64, rms: f64, zero_fraction: f64| GradStats {
            l2,
            rms,
            zero_fraction,
        };
        let rec = ProbeRecord {
            weight: vec![
                Some(WeightStats {
                    grad: g(1.0, 0.1, 0.0),
                    norm: 4.0,
                }),
                None,
            ],
            output: vec![g(f64::NAN, 0.3, 0.0), g(4.0, 2e-42, 0.25)],
            responses: vec![ResponseStats {
                point: 0,
                mean: 0.5,
                std: 0.25,
                saturation: 0.0,
                dead: 0.0,
            }],
        };
        w.probe(0, &rec).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(read("metrics.csv").starts_with("step,epoch,split,loss,error,lr,elapsed_s\n"));
        let text = read("gradients.csv");
        assert!(
            text.starts_with(
                "step,layer,name,kind,trunk,l2,rms,zero_fraction,weight_norm,relative\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("0,0,layer00.linear,weight,false,1,0.1,0,4,0.25\n"),
            "{text}"
        );
        assert!(
            text.contains("0,0,layer00.linear,output,false,NaN,0.3,0,,\n"),
            "{text}"
        );
        // A point without a weight (layer 1) has only its output row; a
        // value below float32's normal range keeps its digits.
        assert_eq!(text.lines().count(), 4);
        assert!(
            text.contains("0,1,layer01.linear,output,true,4,2e-42,0.25,,\n"),
            "{text}"
        );
        assert!(read("activations.csv").starts_with(
            "step,layer,name,mean,std,saturation,dead\n0,0,layer00.linear,0.5,0.25,0,0\n"
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gradscope-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
