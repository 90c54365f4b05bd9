//! Synthetic token tasks, for the Transformer family and the rnn family:
//! each example is `length` tokens drawn uniformly from a vocabulary of
//! `vocab` symbols, one-hot per step (`[length, vocab]`, float32), and a
//! target `y` (`[n, steps]`, int64) that the net outputs at its last
//! `steps` positions, as the copy task's head reads its last `recall`
//! steps. Generated from the project's [`SplitMix64`], so a seed alone
//! fixes the data; the first `samples` examples train and the next
//! `test_samples` are held out.
//!
//! - **sort**: the tokens in ascending order, output at every position
//!   (`steps` = `length`), as in the algorithmic tasks of Graves, Wayne &
//!   Danihelka 2014 (priority sort) and Vinyals, Bengio & Kudlur 2016
//!   (sorting numbers). The answer at position 0 depends on every token,
//!   so it needs bidirectional attention (a causal model sees only a
//!   prefix). Its targets are order statistics, not uniform: chance is
//!   1 − mean over positions i of max_v P(X_(i) = v)
//!   ([`gradscope_theory::chance::sorted_tokens_error`]; 0.25 for 2
//!   tokens over 2 symbols).
//! - **reverse**: y\[i\] = x\[length − 1 − i\] (`steps` = `length`), the
//!   sequence reversal of Grefenstette et al. 2015; also a bidirectional
//!   task: a causal model cannot answer positions i below
//!   (length − 1)/2, whose token is still to come. Chance 1 − 1/vocab.
//! - **copy-offset**: the sequence shifted by `offset`: y\[j\] = x\[j\] for j
//!   in 0..length − offset, output at positions offset..length (`steps` =
//!   length − offset), so position t recalls the token `offset` steps back:
//!   a delayed copy (our own form, without the copy task's blanks and
//!   delimiter) that a causal model can do, its lag the distance a
//!   gradient must carry the token. Chance 1 − 1/vocab.
//!
//! Every target token of reverse and copy-offset is uniform over the
//! vocabulary, so the best guess that ignores the input is right 1/vocab
//! of the time; [`chance_error`] gives each task's level.

use crate::rng::SplitMix64;
use crate::{DataError, Dataset};
use tch::Tensor;

/// The token tasks' defaults: 16 tokens over 8 symbols, the copy shifted
/// by one step.
pub const TOKEN_LENGTH: usize = 16;
pub const TOKEN_VOCAB: usize = 8;
pub const TOKEN_OFFSET: usize = 1;

/// Which token task, and what it needs beyond the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTask {
    Sort,
    Reverse,
    /// Recall the token `offset` steps back (1 ≤ offset < length).
    CopyOffset {
        offset: usize,
    },
}

impl TokenTask {
    /// The dataset kind, as the experiment file spells it.
    pub fn name(self) -> &'static str {
        match self {
            TokenTask::Sort => "sort",
            TokenTask::Reverse => "reverse",
            TokenTask::CopyOffset { .. } => "copy-offset",
        }
    }

    /// The positions scored at the end of a sequence of `length` tokens
    /// (saturating: a refused offset past the length gives 0, not a wrap).
    pub fn steps(self, length: usize) -> usize {
        match self {
            TokenTask::Sort | TokenTask::Reverse => length,
            TokenTask::CopyOffset { offset } => length.saturating_sub(offset),
        }
    }
}

/// What a token task is generated from.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpec {
    pub task: TokenTask,
    pub samples: usize,
    pub test_samples: usize,
    /// Tokens per example (2 or more).
    pub length: usize,
    /// Symbols drawn from (2 or more); the inputs' channels and the
    /// classes.
    pub vocab: usize,
    pub seed: u64,
}

impl TokenSpec {
    /// The settings [`tokens`] refuses, each naming its field: a single
    /// symbol or token leaves nothing to learn, and an offset must leave a
    /// token to recall and a position to recall it at.
    pub fn check(&self) -> Result<(), DataError> {
        let invalid = |field, message: String| Err(DataError::Invalid { field, message });
        if self.vocab < 2 {
            return invalid("vocab", format!("{} is below 2", self.vocab));
        }
        if self.length < 2 {
            return invalid("length", format!("{} is below 2", self.length));
        }
        if let TokenTask::CopyOffset { offset } = self.task {
            if offset == 0 || offset >= self.length {
                return invalid(
                    "offset",
                    format!(
                        "{offset} is not in 1..{}: position t recalls the token offset steps back, within dataset.length {}",
                        self.length, self.length
                    ),
                );
            }
        }
        Ok(())
    }

    /// `[n, steps]` targets per example.
    pub fn steps(&self) -> usize {
        self.task.steps(self.length)
    }
}

/// A token task's examples: inputs `[length, vocab]` one-hot, targets
/// `[n, steps]` int64, `classes` the vocabulary's size.
pub fn tokens(spec: &TokenSpec) -> Result<Dataset, DataError> {
    crate::generated_sizes(spec.samples, spec.test_samples)?;
    spec.check()?;
    let (n, t, v, k) = (
        spec.samples + spec.test_samples,
        spec.length,
        spec.vocab,
        spec.steps(),
    );
    let mut rng = SplitMix64::new(spec.seed);
    let mut x = vec![0f32; n * t * v];
    let mut y = vec![0i64; n * k];
    let mut drawn = vec![0i64; t];
    for (i, target) in y.chunks_mut(k).enumerate() {
        let example = &mut x[i * t * v..(i + 1) * t * v];
        for (step, token) in drawn.iter_mut().enumerate() {
            let symbol = rng.below(v);
            *token = symbol as i64;
            example[step * v + symbol] = 1.0;
        }
        match spec.task {
            TokenTask::Sort => {
                target.copy_from_slice(&drawn);
                target.sort_unstable();
            }
            TokenTask::Reverse => {
                target.copy_from_slice(&drawn);
                target.reverse();
            }
            TokenTask::CopyOffset { .. } => target.copy_from_slice(&drawn[..k]),
        }
    }
    let x = Tensor::from_slice(&x).reshape([n as i64, t as i64, v as i64]);
    let y = Tensor::from_slice(&y).reshape([n as i64, k as i64]);
    Ok(Dataset::from_rows(
        spec.task.name(),
        x,
        y,
        spec.samples,
        vec![t as i64, v as i64],
        v as i64,
    ))
}

/// The error of the best predictor that ignores its input, per scored
/// token: 1 − 1/vocab for reverse and copy-offset, whose every target
/// token is uniform; for sort, whose targets are order statistics, the
/// exact level of [`gradscope_theory::chance::sorted_tokens_error`].
/// `None` where no token is drawn (`length` or `vocab` 0).
pub fn chance_error(task: TokenTask, length: usize, vocab: usize) -> Option<f64> {
    if length == 0 || vocab == 0 {
        return None;
    }
    match task {
        TokenTask::Sort => gradscope_theory::chance::sorted_tokens_error(length, vocab),
        TokenTask::Reverse | TokenTask::CopyOffset { .. } => Some(1.0 - 1.0 / vocab as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn spec(task: TokenTask, seed: u64) -> TokenSpec {
        TokenSpec {
            task,
            samples: 300,
            test_samples: 100,
            length: 10,
            vocab: 5,
            seed,
        }
    }

    /// Each example's tokens (from the one-hot rows) and targets, both
    /// splits, train first.
    fn examples(d: &Dataset) -> Vec<(Vec<i64>, Vec<i64>)> {
        let mut out = Vec::new();
        for s in [&d.train, &d.test] {
            let tokens = s.x.argmax(-1, false);
            for i in 0..s.len() {
                out.push((
                    Vec::<i64>::try_from(tokens.get(i)).unwrap(),
                    Vec::<i64>::try_from(s.y.get(i)).unwrap(),
                ));
            }
        }
        out
    }

    /// Every step is one symbol: each one-hot row holds a single 1 and
    /// sums to 1, and the shapes are as documented.
    #[test]
    fn tokens_one_hot_rows_sum_to_one() {
        let d = tokens(&spec(TokenTask::CopyOffset { offset: 3 }, 1)).unwrap();
        assert_eq!(d.name, "copy-offset");
        assert_eq!(d.input_shape, [10, 5]);
        assert_eq!(d.classes, 5);
        assert_eq!(d.train.x.size(), [300, 10, 5]);
        assert_eq!(d.test.y.size(), [100, 7]);
        assert_eq!(
            (d.train.x.kind(), d.train.y.kind()),
            (Kind::Float, Kind::Int64)
        );
        for s in [&d.train, &d.test] {
            let sums = s.x.sum_dim_intlist(-1, false, Kind::Float);
            assert!(sums.eq(1.0).all().int64_value(&[]) == 1);
            let max = s.x.amax(-1, false);
            assert!(max.eq(1.0).all().int64_value(&[]) == 1);
        }
    }

    /// Sort: each target is ascending and holds the input's tokens, each as
    /// often (a permutation of it).
    #[test]
    fn tokens_sort_target_is_sorted_and_a_permutation() {
        let d = tokens(&spec(TokenTask::Sort, 2)).unwrap();
        assert_eq!(d.train.y.size(), [300, 10]);
        for (x, y) in examples(&d) {
            assert!(y.windows(2).all(|w| w[0] <= w[1]), "{y:?}");
            let mut sorted = x.clone();
            sorted.sort();
            assert_eq!(sorted, y, "{x:?}");
        }
    }

    /// Reverse: y[i] = x[length − 1 − i].
    #[test]
    fn tokens_reverse_reads_backwards() {
        let d = tokens(&spec(TokenTask::Reverse, 3)).unwrap();
        for (x, y) in examples(&d) {
            assert_eq!(y.len(), 10);
            for (i, &token) in y.iter().enumerate() {
                assert_eq!(token, x[9 - i]);
            }
        }
    }

    /// Copy-offset: the target output at position offset + j is x[j], the
    /// token `offset` steps back.
    #[test]
    fn tokens_copy_offset_recalls_offset_steps_back() {
        for offset in [1, 4, 9] {
            let d = tokens(&spec(TokenTask::CopyOffset { offset }, 4)).unwrap();
            for (x, y) in examples(&d) {
                assert_eq!(y.len(), 10 - offset);
                for (j, &token) in y.iter().enumerate() {
                    // Scored at position offset + j, of the last 10 − offset.
                    let position = offset + j;
                    assert_eq!(token, x[position - offset], "offset {offset}");
                }
            }
        }
    }

    /// The generator is ours: the same seed gives the same tensors, another
    /// seed others; a task reads the same tokens for a seed, so sort and
    /// reverse differ only in their targets.
    #[test]
    fn tokens_are_fixed_by_their_seed() {
        for task in [
            TokenTask::Sort,
            TokenTask::Reverse,
            TokenTask::CopyOffset { offset: 2 },
        ] {
            let (a, b, c) = (
                tokens(&spec(task, 7)).unwrap(),
                tokens(&spec(task, 7)).unwrap(),
                tokens(&spec(task, 8)).unwrap(),
            );
            assert!(a.train.x.equal(&b.train.x) && a.test.y.equal(&b.test.y));
            assert!(!a.train.x.equal(&c.train.x) && !a.train.y.equal(&c.train.y));
        }
        let (s, r) = (
            tokens(&spec(TokenTask::Sort, 7)).unwrap(),
            tokens(&spec(TokenTask::Reverse, 7)).unwrap(),
        );
        assert!(s.test.x.equal(&r.test.x) && !s.test.y.equal(&r.test.y));
    }

    /// Each refusal is one line that names its field.
    #[test]
    fn tokens_refusals_name_the_field() {
        let refused = |s: TokenSpec| tokens(&s).unwrap_err().to_string();
        let base = || spec(TokenTask::CopyOffset { offset: 1 }, 0);
        for (s, field) in [
            (TokenSpec { vocab: 1, ..base() }, "dataset.vocab: 1 "),
            (
                TokenSpec {
                    length: 1,
                    ..base()
                },
                "dataset.length: 1 ",
            ),
            (
                TokenSpec {
                    task: TokenTask::CopyOffset { offset: 0 },
                    ..base()
                },
                "dataset.offset: 0 ",
            ),
            (
                TokenSpec {
                    task: TokenTask::CopyOffset { offset: 10 },
                    ..base()
                },
                "dataset.offset: 10 ",
            ),
            (
                TokenSpec {
                    samples: 0,
                    ..base()
                },
                "dataset.samples: ",
            ),
        ] {
            let e = refused(s);
            assert!(e.starts_with(field) && !e.contains('\n'), "{e}");
        }
        // The longest offset leaves one token to recall, at the last step.
        let last = tokens(&TokenSpec {
            task: TokenTask::CopyOffset { offset: 9 },
            ..base()
        })
        .unwrap();
        assert_eq!(last.train.y.size(), [300, 1]);
    }

    fn parse(json: &str) -> Result<crate::spec::DatasetSpec, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    /// The dataset section: defaults 16 tokens over 8 symbols (offset 1);
    /// sequence data with a length of their own that no depth replaces;
    /// `steps` outputs of `vocab` classes; measured (`info`) as loaded.
    #[test]
    fn tokens_kinds_parse_and_keep_their_length_at_every_depth() {
        for (kind, steps) in [("sort", 16), ("reverse", 16), ("copy-offset", 15)] {
            let d = parse(&format!(r#"{{"kind": "{kind}", "samples": 8}}"#)).unwrap();
            assert_eq!(d.kind_name(), kind);
            assert!(d.is_sequence() && !d.is_image() && !d.float_target());
            assert_eq!((d.length(), d.output_steps()), (Some(16), Some(steps)));
            assert_eq!(d.at_depth(40), d, "{kind}: the length is the data's own");
            assert_eq!(d.at_depth(40).length(), Some(16));
            assert_eq!(d.validate(), Ok(Some(8)));
            let info = d.info().unwrap();
            assert_eq!(info.name, kind);
            assert_eq!((info.train, info.test), (8, 2));
            assert_eq!((info.input_shape.clone(), info.classes), (vec![16, 8], 8));
            let data = d.load().unwrap();
            assert_eq!(data.name, kind);
            assert_eq!(data.input_shape, info.input_shape);
            assert_eq!(data.train.y.size(), [8, steps as i64]);
        }
        let d =
            parse(r#"{"kind": "copy-offset", "samples": 8, "length": 6, "vocab": 3, "offset": 4}"#)
                .unwrap();
        assert_eq!((d.length(), d.output_steps()), (Some(6), Some(2)));
        assert_eq!(d.info().unwrap().input_shape, [6, 3]);
    }

    /// The file's refusals, at parse and at validation, name the field: an
    /// offset on a task without one, each refused value, an unknown kind
    /// listing the token kinds.
    #[test]
    fn tokens_spec_refusals_name_the_field() {
        let e = parse(r#"{"kind": "sort", "samples": 8, "offset": 2}"#).unwrap_err();
        assert!(e.starts_with("dataset.offset: unknown field"), "{e}");
        let e = parse(r#"{"kind": "tokens", "samples": 8}"#).unwrap_err();
        assert!(e.contains(r#""sort", "reverse", "copy-offset""#), "{e}");
        for (json, field) in [
            (
                r#"{"kind": "sort", "samples": 8, "vocab": 1}"#,
                "dataset.vocab",
            ),
            (
                r#"{"kind": "reverse", "samples": 8, "length": 1}"#,
                "dataset.length",
            ),
            (
                r#"{"kind": "copy-offset", "samples": 8, "offset": 0}"#,
                "dataset.offset",
            ),
            (
                r#"{"kind": "copy-offset", "samples": 8, "length": 4, "offset": 4}"#,
                "dataset.offset",
            ),
            (
                r#"{"kind": "reverse", "samples": 8, "test_samples": 0}"#,
                "dataset.test_samples",
            ),
            (
                r#"{"kind": "sort", "samples": 1000000, "length": 1000, "vocab": 1000}"#,
                "dataset.samples",
            ),
        ] {
            let d = parse(json).unwrap();
            let e = d.validate().unwrap_err();
            assert_eq!(e.field, field, "{json}: {e:?}");
            assert!(!e.message.contains('\n'), "{e:?}");
            if field != "dataset.samples" {
                let loaded = d.load().unwrap_err().to_string();
                assert!(loaded.starts_with(&format!("{field}: ")), "{loaded}");
                assert!(d.info().is_err());
            }
        }
    }

    /// The error of the input-ignoring predictor, measured on the
    /// generator's own data, against [`chance_error`]: per position, the
    /// most frequent target token's share (estimated on 20k examples; the
    /// estimate's std is about 0.002 at these sizes, and picking the mode on
    /// the same draws biases it down by less than that).
    #[test]
    fn tokens_chance_error_matches_monte_carlo() {
        for task in [
            TokenTask::Sort,
            TokenTask::Reverse,
            TokenTask::CopyOffset { offset: 2 },
        ] {
            let d = tokens(&TokenSpec {
                task,
                samples: 20_000,
                test_samples: 1,
                length: 6,
                vocab: 4,
                seed: 11,
            })
            .unwrap();
            let y = &d.train.y;
            let steps = y.size()[1];
            let mut hits = 0.0;
            for position in 0..steps {
                let counts = y.select(1, position).bincount::<Tensor>(None, 4);
                hits += counts.max().double_value(&[]);
            }
            let measured = 1.0 - hits / (20_000.0 * steps as f64);
            let exact = chance_error(task, 6, 4).unwrap();
            assert!(
                (measured - exact).abs() < 0.01,
                "{task:?}: {measured} vs {exact}"
            );
        }
        // Sorting makes the targets predictable: below the uniform 0.75.
        assert!(chance_error(TokenTask::Sort, 6, 4).unwrap() < 0.7);
        assert!((chance_error(TokenTask::Sort, 2, 2).unwrap() - 0.25).abs() < 1e-15);
        assert_eq!(chance_error(TokenTask::Reverse, 4, 8), Some(0.875));
        assert_eq!(chance_error(TokenTask::Reverse, 4, 0), None);
    }
}
