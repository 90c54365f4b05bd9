//! Streaming CSV writers for one run's `metrics.csv`, `gradients.csv` and
//! `activations.csv` (headers as in the file contract, docs/FILES.md).
//!
//! A metrics row is flushed as soon as it is written. Probe rows are
//! flushed whole probe steps at a time, at least once a second
//! ([`FLUSH_EVERY`]), at every checkpoint ([`RunWriters::lengths`]) and at
//! the end of the run ([`RunWriters::finish`]): a flush is a write call per
//! file, and two of them were a third of an MLP probe step's CSV time in
//! `make bench`. A run that is killed thus leaves files that parse, ending
//! at a whole row, and loses at most its last second of probe rows, which
//! a resumed run writes again from its checkpoint anyway.

use crate::{GradStats, HeadEntropy, ProbeError, ProbeRecord};
use gradscope_format::files::{ACTIVATIONS_CSV, GRADIENTS_CSV, METRICS_CSV};
use gradscope_format::rows::HEAD_SUFFIX;
pub use gradscope_format::rows::{ActivationRow, MetricRow, ACTIVATIONS_HEADER, METRICS_HEADER};
use gradscope_format::{push_num, KIND_OUTPUT, KIND_WEIGHT};
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The three per-run files, in [`RunWriters::lengths`] order.
pub use gradscope_format::files::RUN_CSVS as CSV_FILES;
pub use gradscope_format::GRADIENTS_HEADER;

/// How long probe rows may wait in memory before they are flushed.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Probe-row bytes that are flushed whatever their age, well below
/// [`BUFFER`], so that rows waiting to be flushed never fill the buffer and
/// leave a row half written in the file.
const FLUSH_BYTES: usize = 1 << 16;

/// Each file's buffer (the csv writer's; it writes a full one out as it
/// is, wherever the row it is in ends).
const BUFFER: usize = 1 << 18;

/// One CSV file.
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
                .buffer_capacity(BUFFER)
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
                .buffer_capacity(BUFFER)
                .from_writer(BufWriter::new(file)),
            path,
        })
    }

    /// Bytes written so far, every row flushed.
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

    /// Writes one row; returns its length in bytes, give or take quotes.
    fn row<I, T>(&mut self, fields: I) -> Result<usize, ProbeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut bytes = 0;
        let fields = fields
            .into_iter()
            .inspect(|f| bytes += f.as_ref().len() + 1);
        self.writer
            .write_record(fields)
            .map(|()| bytes)
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
    /// Each point's index as text, rendered once.
    layers: Vec<String>,
    /// The numbers of the row being written.
    numbers: Numbers,
    /// The name of the head row being written.
    head: String,
    /// Probe-row bytes written since the probe files were last flushed,
    /// and when that was.
    unflushed: usize,
    flushed_at: std::time::Instant,
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
            layers: (0..names.len()).map(|i| i.to_string()).collect(),
            names,
            trunk,
            numbers: Numbers::default(),
            head: String::new(),
            unflushed: 0,
            flushed_at: std::time::Instant::now(),
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
            layers: (0..names.len()).map(|i| i.to_string()).collect(),
            names,
            trunk,
            numbers: Numbers::default(),
            head: String::new(),
            unflushed: 0,
            flushed_at: std::time::Instant::now(),
        })
    }

    /// Bytes in `metrics.csv`, `gradients.csv` and `activations.csv`, for a
    /// checkpoint.
    pub fn lengths(&mut self) -> Result<[u64; 3], ProbeError> {
        self.finish()?;
        Ok([
            self.metrics.len()?,
            self.gradients.len()?,
            self.activations.len()?,
        ])
    }

    /// Flushes the probe rows still in memory: call when the run's steps
    /// end, before anything reads its files.
    pub fn finish(&mut self) -> Result<(), ProbeError> {
        self.unflushed = 0;
        self.flushed_at = std::time::Instant::now();
        self.gradients.flush()?;
        self.activations.flush()
    }

    pub fn metrics(&mut self, row: &MetricRow) -> Result<(), ProbeError> {
        self.metrics.serialize(row)?;
        self.metrics.flush()
    }

    /// Writes one probe step: a `weight` row per probe point with a weight
    /// and an `output` row per probe point with an output (every point of
    /// the feed-forward families has one), and an activations row per
    /// response, whose `q` is empty where its point has no output. A block
    /// of tokens' `rank1` is on its first response row, or on a row of its
    /// own (q and rank1 alone) where it has no response; an attention
    /// point has a row per head, `{point}.h{k}`, with its `entropy` alone.
    /// The activations rows are in point order. These are the
    /// columns of
    /// [`gradscope_format::GradientRow`] and [`ActivationRow`], whose serde
    /// form the test below holds these rows to byte for byte. Written field
    /// by field, each number with [`push_num`] into one reused string: the
    /// CSV rows were a fifth of an MLP probe step in `make bench`, and
    /// through serde (a string per number and per name) a probe step of 33
    /// points took 47 µs to write against 36 µs so (a throwaway timing loop).
    pub fn probe(&mut self, step: usize, rec: &ProbeRecord) -> Result<(), ProbeError> {
        let step = step.to_string();
        let numbers = &mut self.numbers;
        let mut bytes = 0;
        for (i, name) in self.names.iter().enumerate() {
            let trunk = if self.trunk[i] { "true" } else { "false" };
            let mut row = |sink: &mut Sink, kind: &str, values: [Option<f64>; 5]| {
                numbers.set(&values);
                let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|k| numbers.field(k));
                let fixed = [step.as_str(), &self.layers[i], name, kind, trunk];
                sink.row(fixed.into_iter().chain([a, b, c, d, e]))
            };
            let grad = |g: &GradStats| [Some(g.l2), Some(g.rms), Some(g.zero_fraction)];
            if let Some(w) = &rec.weight[i] {
                let [l2, rms, zero] = grad(&w.grad);
                let values = [l2, rms, zero, Some(w.norm), Some(w.relative())];
                bytes += row(&mut self.gradients, KIND_WEIGHT, values)?;
            }
            if let Some(o) = rec.output.get(i).and_then(Option::as_ref) {
                let [l2, rms, zero] = grad(o);
                bytes += row(
                    &mut self.gradients,
                    KIND_OUTPUT,
                    [l2, rms, zero, None, None],
                )?;
            }
        }
        // In point order: a point's responses, then its head rows. A
        // block of tokens' rank-collapse residual joins its first response
        // row, or is a row of its own where it has none.
        let mut responses = rec.responses.iter().peekable();
        let mut entropy = rec.entropy.iter().peekable();
        let mut rows = ActivationRows {
            sink: &mut self.activations,
            numbers,
            head: &mut self.head,
            step: &step,
            layers: &self.layers,
            names: &self.names,
            rec,
        };
        for i in 0..self.names.len() {
            // NaN is where the residual is undefined (see `rank_collapse`).
            let mut rank1 = rec.rank1.get(i).copied().flatten().filter(|r| !r.is_nan());
            while let Some(r) = responses.next_if(|r| r.point == i) {
                let [mean, std, saturation, dead] = [r.mean, r.std, r.saturation, r.dead].map(Some);
                bytes += rows.point(i, [mean, std, saturation, dead], rank1.take())?;
            }
            if rank1.is_some() {
                bytes += rows.point(i, [None; 4], rank1)?;
            }
            while let Some(e) = entropy.next_if(|e| e.point == i) {
                bytes += rows.heads(e)?;
            }
        }
        // Readings out of point order (not what `Probe::collect` gives)
        // are written after the rest rather than lost.
        for r in responses {
            let [mean, std, saturation, dead] = [r.mean, r.std, r.saturation, r.dead].map(Some);
            bytes += rows.point(r.point, [mean, std, saturation, dead], None)?;
        }
        for e in entropy {
            bytes += rows.heads(e)?;
        }
        self.unflushed += bytes;
        if self.unflushed >= FLUSH_BYTES || self.flushed_at.elapsed() >= FLUSH_EVERY {
            self.finish()?;
        }
        Ok(())
    }
}

/// The activations rows of one probe step, written field by field.
struct ActivationRows<'a> {
    sink: &'a mut Sink,
    numbers: &'a mut Numbers,
    /// A head row's name, reused from row to row.
    head: &'a mut String,
    step: &'a str,
    layers: &'a [String],
    names: &'a [String],
    rec: &'a ProbeRecord,
}

impl ActivationRows<'_> {
    /// A row of point `i`: its response's mean, std, saturation and dead
    /// fraction (`response`, `None` each where it has none), its output's
    /// q and c where it has an output (c empty where [`crate::forward_c`]
    /// did not read it, NaN), and `rank1`.
    fn point(
        &mut self,
        i: usize,
        response: [Option<f64>; 4],
        rank1: Option<f64>,
    ) -> Result<usize, ProbeError> {
        let has_output = self.rec.output.get(i).is_some_and(Option::is_some);
        let q = self.rec.forward.get(i).copied().filter(|_| has_output);
        let c = (self.rec.correlation.get(i).copied()).filter(|c| has_output && !c.is_nan());
        let [mean, std, saturation, dead] = response;
        self.numbers
            .set(&[mean, std, saturation, dead, q, c, rank1, None]);
        let fixed = [self.step, at(self.layers, i), at(self.names, i)];
        self.sink
            .row(fixed.into_iter().chain(self.numbers.fields()))
    }

    /// A row per head of one attention point, `{point}.h{k}`
    /// ([`gradscope_format::rows::head_name`]), with its entropy alone.
    fn heads(&mut self, e: &HeadEntropy) -> Result<usize, ProbeError> {
        let mut bytes = 0;
        let point = at(self.names, e.point);
        for (k, h) in e.heads.iter().enumerate() {
            self.head.clear();
            // Writing to a String cannot fail.
            let _ = write!(self.head, "{point}{HEAD_SUFFIX}{k}");
            self.numbers
                .set(&[None, None, None, None, None, None, None, Some(*h)]);
            let fixed = [self.step, at(self.layers, e.point), self.head.as_str()];
            bytes += self
                .sink
                .row(fixed.into_iter().chain(self.numbers.fields()))?;
        }
        Ok(bytes)
    }
}

/// Entry `i` of a per-point list of texts (empty past its end).
fn at(texts: &[String], i: usize) -> &str {
    texts.get(i).map_or("", String::as_str)
}

/// A row's numbers as text, side by side in one string that is reused
/// from row to row.
#[derive(Default)]
struct Numbers {
    text: String,
    /// Where each number's text ends.
    ends: Vec<usize>,
}

impl Numbers {
    /// Holds `values` (an empty field for `None`), as [`push_num`] writes them.
    fn set(&mut self, values: &[Option<f64>]) {
        self.text.clear();
        self.ends.clear();
        for v in values {
            if let Some(v) = v {
                push_num(&mut self.text, *v);
            }
            self.ends.push(self.text.len());
        }
    }

    fn field(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.text[start..self.ends[k]]
    }

    /// Every number held, in order.
    fn fields(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len()).map(|k| self.field(k))
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
            output: vec![Some(g(f64::NAN, 0.3, 0.0)), Some(g(4.0, 2e-42, 0.25))],
            responses: vec![ResponseStats {
                point: 0,
                mean: 0.5,
                std: 0.25,
                saturation: 0.0,
                dead: 0.0,
            }],
            forward: vec![0.5, 2e-40],
            correlation: vec![0.125, 0.5],
            rank1: Vec::new(),
            entropy: Vec::new(),
        };
        w.probe(0, &rec).unwrap();
        w.finish().unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(
            read("metrics.csv").starts_with("step,epoch,split,loss,error,lr,grad_norm,elapsed_s\n")
        );
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
            "step,layer,name,mean,std,saturation,dead,q,c,rank1,entropy\n0,0,layer00.linear,0.5,0.25,0,0,0.5,0.125,,\n"
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The rows `probe` writes field by field are the serde rows of the
    /// file contract's types (what `report` and `merge` read back), byte for
    /// byte: for every kind of number `num` writes (normal float32 values,
    /// values below float32's range, 0, NaN, infinities), for both kinds of
    /// gradient row, and for a name the CSV must quote.
    #[test]
    fn probe_rows_are_the_contracts_serde_rows() {
        use gradscope_format::GradientRow;
        let dir = tempfile_dir().join("serde");
        std::fs::create_dir_all(&dir).unwrap();
        let names = vec![
            "in".to_string(),
            "odd, \"name\"".to_string(),
            "head".to_string(),
        ];
        let trunk = vec![false, true, false];
        let mut w = RunWriters::create(&dir, names.clone(), trunk.clone()).unwrap();
        let values = [
            0.1,
            2.5e-42,
            0.0,
            f64::NAN,
            f64::INFINITY,
            -3e-60,
            12345678.9,
            1e-5,
        ];
        let v = |k: usize| values[k % values.len()];
        let g = |k: usize| GradStats {
            l2: v(k),
            rms: v(k + 1),
            zero_fraction: v(k + 2),
        };
        let rec = ProbeRecord {
            weight: vec![
                Some(WeightStats {
                    grad: g(0),
                    norm: v(3),
                }),
                Some(WeightStats {
                    grad: g(4),
                    norm: v(7),
                }),
                None,
            ],
            output: vec![Some(g(1)), Some(g(5)), Some(g(6))],
            responses: (0..3)
                .map(|p| ResponseStats {
                    point: p,
                    mean: v(p),
                    std: v(p + 2),
                    saturation: v(p + 4),
                    dead: v(p + 6),
                })
                .collect(),
            forward: vec![v(8), v(9), v(10)],
            // c is empty where it is undefined (NaN).
            correlation: vec![0.25, f64::NAN, -0.5],
            rank1: Vec::new(),
            entropy: Vec::new(),
        };
        w.probe(17, &rec).unwrap();
        w.finish().unwrap();
        // The same rows through serde.
        let mut grads = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let mut acts = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        grads.write_record(GRADIENTS_HEADER).unwrap();
        acts.write_record(ACTIVATIONS_HEADER).unwrap();
        for (i, name) in names.iter().enumerate() {
            let row = |kind: &str, g: &GradStats| GradientRow {
                step: 17,
                layer: i,
                name: name.clone(),
                kind: kind.to_string(),
                trunk: trunk[i],
                l2: Some(g.l2),
                rms: Some(g.rms),
                zero_fraction: Some(g.zero_fraction),
                weight_norm: None,
                relative: None,
            };
            if let Some(ws) = &rec.weight[i] {
                let mut r = row(KIND_WEIGHT, &ws.grad);
                (r.weight_norm, r.relative) = (Some(ws.norm), Some(ws.relative()));
                grads.serialize(&r).unwrap();
            }
            if let Some(o) = &rec.output[i] {
                grads.serialize(row(KIND_OUTPUT, o)).unwrap();
            }
        }
        for r in &rec.responses {
            acts.serialize(ActivationRow {
                step: 17,
                layer: r.point,
                name: names[r.point].clone(),
                mean: Some(r.mean),
                std: Some(r.std),
                saturation: Some(r.saturation),
                dead: Some(r.dead),
                q: Some(rec.forward[r.point]),
                c: Some(rec.correlation[r.point]).filter(|c| !c.is_nan()),
                rank1: None,
                entropy: None,
            })
            .unwrap();
        }
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        assert_eq!(text(read(GRADIENTS_CSV)), text(grads.into_inner().unwrap()));
        assert_eq!(
            text(read(ACTIVATIONS_CSV)),
            text(acts.into_inner().unwrap())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A point without an output (a recurrent net's weight block or gate
    /// reading) writes no `output` row: a weight block only its `weight`
    /// row, a gate only its activations rows, whose `q` is empty (q is
    /// the forward signal at a point's output). The other rows are as
    /// before.
    #[test]
    fn points_without_an_output_write_no_output_row() {
        let dir = tempfile_dir().join("no-output");
        std::fs::create_dir_all(&dir).unwrap();
        let names = vec!["t000.h".into(), "cell0.w_hh.f".into(), "t000.gate_f".into()];
        let mut w = RunWriters::create(&dir, names, vec![true, false, false]).unwrap();
        let g = |l2: f64| GradStats {
            l2,
            rms: l2 / 2.0,
            zero_fraction: 0.0,
        };
        let response = |point: usize| ResponseStats {
            point,
            mean: 0.5,
            std: 0.25,
            saturation: 0.125,
            dead: 0.0,
        };
        let rec = ProbeRecord {
            weight: vec![
                None,
                Some(WeightStats {
                    grad: g(2.0),
                    norm: 4.0,
                }),
                None,
            ],
            output: vec![Some(g(1.0)), None, None],
            responses: vec![response(0), response(2)],
            forward: vec![0.75, f64::NAN, f64::NAN],
            correlation: Vec::new(),
            rank1: Vec::new(),
            entropy: Vec::new(),
        };
        w.probe(3, &rec).unwrap();
        w.finish().unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let body = |text: String| text.lines().skip(1).map(String::from).collect::<Vec<_>>();
        assert_eq!(
            body(read(GRADIENTS_CSV)),
            [
                "3,0,t000.h,output,true,1,0.5,0,,",
                "3,1,cell0.w_hh.f,weight,false,2,1,0,4,0.5",
            ]
        );
        assert_eq!(
            body(read(ACTIVATIONS_CSV)),
            [
                "3,0,t000.h,0.5,0.25,0.125,0,0.75,,,",
                "3,2,t000.gate_f,0.5,0.25,0.125,0,,,,",
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Issue 35 §3: a block of tokens' `rank1` is on its response row
    /// (with q), or on a row of its own (q and rank1 alone) where it has no
    /// response; an undefined residual (NaN) is empty. An attention point
    /// writes a row per head, `{point}.h{k}`, with its entropy alone (NaN
    /// kept: a diverged run's). The rows read back as [`ActivationRow`]s
    /// whose `head` names the point and head.
    #[test]
    fn token_and_attention_rows_carry_rank1_and_entropy() {
        use crate::HeadEntropy;
        let dir = tempfile_dir().join("tokens");
        std::fs::create_dir_all(&dir).unwrap();
        let names: Vec<String> = ["block00", "block01.attn.probs", "block01", "block02"]
            .map(String::from)
            .to_vec();
        let mut w = RunWriters::create(&dir, names, vec![true, false, true, true]).unwrap();
        let g = GradStats {
            l2: 1.0,
            rms: 0.5,
            zero_fraction: 0.0,
        };
        let rec = ProbeRecord {
            weight: vec![None; 4],
            output: vec![Some(g), None, Some(g), Some(g)],
            responses: vec![ResponseStats {
                point: 0,
                mean: 0.5,
                std: 0.25,
                saturation: 0.0,
                dead: 0.0,
            }],
            forward: vec![2.0, f64::NAN, 3.0, 4.0],
            correlation: Vec::new(),
            rank1: vec![Some(0.125), None, Some(1e-9), Some(f64::NAN)],
            entropy: vec![HeadEntropy {
                point: 1,
                heads: vec![std::f64::consts::LN_2, f64::NAN],
            }],
        };
        w.probe(5, &rec).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(dir.join(ACTIVATIONS_CSV)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "step,layer,name,mean,std,saturation,dead,q,c,rank1,entropy",
                "5,0,block00,0.5,0.25,0,0,2,,0.125,",
                "5,1,block01.attn.probs.h0,,,,,,,,0.6931472",
                "5,1,block01.attn.probs.h1,,,,,,,,NaN",
                "5,2,block01,,,,,3,,1e-9,",
            ],
            "block02's residual is undefined and it has no response: no row"
        );
        let rows: Vec<ActivationRow> = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows[0].rank1, Some(0.125));
        assert_eq!(rows[0].head(), None);
        assert_eq!(rows[1].head(), Some(("block01.attn.probs", 0)));
        assert_eq!(
            rows[2].name,
            gradscope_format::rows::head_name("block01.attn.probs", 1)
        );
        assert_eq!(rows[2].head(), Some(("block01.attn.probs", 1)));
        assert!(rows[2].entropy.unwrap().is_nan());
        assert_eq!(
            (rows[3].q, rows[3].rank1, rows[3].mean),
            (Some(3.0), Some(1e-9), None)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Probe rows wait in memory for at most [`FLUSH_EVERY`]: a probe step
    /// written that long after the last flush reaches the file with every
    /// row before it, whole, without `finish` (what `report --watch` and a
    /// killed run see).
    #[test]
    fn probe_rows_reach_the_file_within_a_second() {
        let dir = tempfile_dir().join("flush");
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = RunWriters::create(&dir, vec!["a".into()], vec![true]).unwrap();
        let g = GradStats {
            l2: 1.0,
            rms: 0.5,
            zero_fraction: 0.0,
        };
        let rec = ProbeRecord {
            weight: vec![None],
            output: vec![Some(g)],
            responses: Vec::new(),
            forward: vec![1.0],
            correlation: Vec::new(),
            rank1: Vec::new(),
            entropy: Vec::new(),
        };
        w.probe(0, &rec).unwrap();
        std::thread::sleep(FLUSH_EVERY);
        w.probe(1, &rec).unwrap();
        let text = std::fs::read_to_string(dir.join(GRADIENTS_CSV)).unwrap();
        assert!(text.ends_with("\n"), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gradscope-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
