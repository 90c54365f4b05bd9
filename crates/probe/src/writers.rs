//! Streaming CSV writers for one run's `metrics.csv`, `gradients.csv` and
//! `activations.csv` (headers as in DESIGN.md and crates/README.md).
//!
//! Each probe step or metrics row is flushed as soon as it is written, so a
//! run that is killed leaves files that parse, ending at a whole row.

use crate::{ProbeError, ProbeRecord};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub const METRICS_HEADER: [&str; 7] =
    ["step", "epoch", "split", "loss", "error", "lr", "elapsed_s"];
pub const GRADIENTS_HEADER: [&str; 6] = ["step", "layer", "name", "kind", "l2", "rms"];
pub const ACTIVATIONS_HEADER: [&str; 6] = ["step", "layer", "name", "mean", "std", "saturation"];

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
            writer: csv::Writer::from_writer(BufWriter::new(file)),
            path,
        };
        sink.row(header)?;
        sink.flush()?;
        Ok(sink)
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

    fn flush(&mut self) -> Result<(), ProbeError> {
        self.writer.flush().map_err(|source| ProbeError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow<'a> {
    pub step: usize,
    pub epoch: f64,
    pub split: &'a str,
    pub loss: f64,
    pub error: f64,
    pub lr: f64,
    pub elapsed_s: f64,
}

/// The three per-run CSV files.
pub struct RunWriters {
    metrics: Sink,
    gradients: Sink,
    activations: Sink,
    names: Vec<String>,
}

impl RunWriters {
    /// Creates (truncating) the three files in `dir`. `names` are the probe
    /// points, input side first.
    pub fn create(dir: &Path, names: Vec<String>) -> Result<RunWriters, ProbeError> {
        Ok(RunWriters {
            metrics: Sink::create(dir.join("metrics.csv"), &METRICS_HEADER)?,
            gradients: Sink::create(dir.join("gradients.csv"), &GRADIENTS_HEADER)?,
            activations: Sink::create(dir.join("activations.csv"), &ACTIVATIONS_HEADER)?,
            names,
        })
    }

    pub fn metrics(&mut self, row: &MetricsRow) -> Result<(), ProbeError> {
        self.metrics.row([
            row.step.to_string(),
            format!("{:.4}", row.epoch),
            row.split.to_string(),
            num(row.loss),
            num(row.error),
            num(row.lr),
            format!("{:.3}", row.elapsed_s),
        ])?;
        self.metrics.flush()
    }

    /// Writes one probe step: a `weight` and an `output` row per probe point,
    /// and an activations row per response.
    pub fn probe(&mut self, step: usize, rec: &ProbeRecord) -> Result<(), ProbeError> {
        let step_s = step.to_string();
        for (i, name) in self.names.iter().enumerate() {
            if let (Some(l2), Some(rms)) = (rec.weight_l2[i], rec.weight_rms[i]) {
                self.gradients.row([
                    step_s.clone(),
                    i.to_string(),
                    name.clone(),
                    "weight".into(),
                    num(l2),
                    num(rms),
                ])?;
            }
            self.gradients.row([
                step_s.clone(),
                i.to_string(),
                name.clone(),
                "output".into(),
                num(rec.output_l2[i]),
                num(rec.output_rms[i]),
            ])?;
        }
        for r in &rec.responses {
            self.activations.row([
                step_s.clone(),
                r.point.to_string(),
                self.names[r.point].clone(),
                num(r.mean),
                num(r.std),
                num(r.saturation),
            ])?;
        }
        self.gradients.flush()?;
        self.activations.flush()
    }
}

/// Shortest text that reads back to the same f32-precision value; NaN and
/// infinities are written as `NaN`, `inf`, `-inf` (which Rust and pandas
/// both parse).
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResponseStats;

    #[test]
    fn headers_match_the_file_contract() {
        // DESIGN.md "Files it writes".
        let dir = tempfile_dir();
        let mut w =
            RunWriters::create(&dir, vec!["layer00.linear".into(), "layer01.linear".into()])
                .unwrap();
        let rec = ProbeRecord {
            weight_l2: vec![Some(1.0), None],
            weight_rms: vec![Some(0.1), None],
            output_l2: vec![f64::NAN, 4.0],
            output_rms: vec![0.3, 0.4],
            responses: vec![ResponseStats {
                point: 0,
                mean: 0.5,
                std: 0.25,
                saturation: 0.0,
            }],
        };
        w.probe(0, &rec).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(read("metrics.csv").starts_with("step,epoch,split,loss,error,lr,elapsed_s\n"));
        let g = read("gradients.csv");
        assert!(g.starts_with("step,layer,name,kind,l2,rms\n"), "{g}");
        assert!(g.contains("0,0,layer00.linear,output,NaN,0.3\n"), "{g}");
        // A point without a weight (layer 1) has only its output row.
        assert_eq!(g.lines().count(), 4);
        assert!(g.contains("0,1,layer01.linear,output,4,0.4\n"), "{g}");
        assert!(read("activations.csv")
            .starts_with("step,layer,name,mean,std,saturation\n0,0,layer00.linear,0.5,0.25,0\n"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gradscope-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
