//! Issue 35 end to end: a transformer run through the sweep writes the
//! token readings (each block output's rank collapse, each head's
//! attention entropy) and the weight-gradient decay, and at
//! initialization they read as the literature says they should.

use crate::spec::Experiment;
use crate::sweep::{Existing, Sweep};
use gradscope_format::rows::ActivationRow;
use gradscope_format::tokens::{entropy_profile, rank1_profile};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tch::Device;

/// Plain (no shortcut) and pre-LN Transformers of 3 blocks on the sort
/// task, probed at step 0:
/// - every block output has a `rank1` and every block one entropy row per
///   head;
/// - no head's entropy exceeds ln T (T = 8 tokens; uniform attention is
///   the maximum), and at init every head attends almost uniformly: with
///   PyTorch's default init (Var W = 1/(3d)) on unit-variance (LN'd)
///   tokens, q and k have variance 1/3 per unit and a score q·k/√d_head
///   variance 1/9, which lowers the entropy below ln T by about half
///   that, 0.06 nats (less where the tokens are smaller, as a plain net's
///   first block's embeddings at N(0, 0.02²)): within 0.15;
/// - attention that averages the tokens with no shortcut around it makes
///   every token the same vector (Dong, Cordonnier & Loukas 2021): the
///   plain net's last block is within 1% of rank 1, while the pre-LN
///   net's shortcut keeps its tokens apart (rank1 above 0.05);
/// - `summary`'s weight-gradient decay is read for both.
#[test]
fn a_transformer_run_reads_rank_collapse_and_attention_entropy() {
    let exp = Experiment::from_json(
        r#"{"name": "tf",
          "dataset": {"kind": "sort", "length": 8, "vocab": 4, "samples": 64, "test_samples": 16, "seed": 1},
          "model": {"family": "transformer", "width": 16, "heads": 2},
          "variants": ["plain", "pre-ln"], "depths": [3], "seeds": [0],
          "train": {"optimizer": "adam", "lr": 0.001, "batch_size": 16, "steps": 2, "eval_every": 2},
          "probe": {"every": 1}}"#,
        Path::new("tf.json"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sweep = Sweep::prepare(
        exp,
        dir.path(),
        Device::Cpu,
        1,
        Existing::Refuse,
        None,
        "run",
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let mut last_rank1 = Vec::new();
    for run in sweep.pending().to_vec() {
        let record = sweep.run(&run, &stop, &mut |_| {}).unwrap();
        assert!(
            record
                .gradient_ends
                .wgrad_decay_init
                .is_some_and(f64::is_finite),
            "{}",
            run.name()
        );
        let path = sweep.run_dir(&run).join("activations.csv");
        let rows: Vec<ActivationRow> = csv::Reader::from_path(&path)
            .unwrap()
            .deserialize()
            .map(Result::unwrap)
            .collect();
        let rank1 = rank1_profile(&rows, 0);
        assert_eq!(rank1.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
        let heads = rows.iter().filter(|r| r.step == 0 && r.head().is_some());
        assert_eq!(heads.count(), 3 * 2, "{}", run.name());
        for (block, e) in entropy_profile(&rows, 0) {
            let below = 8f64.ln() - e;
            assert!((-1e-6..0.15).contains(&below), "block {block}: {e}");
        }
        last_rank1.push((run.name(), rank1[2].1));
    }
    let of = |v: &str| {
        last_rank1
            .iter()
            .find(|(n, _)| n.starts_with(v))
            .map(|p| p.1)
            .unwrap()
    };
    assert!(of("plain") < 0.01, "{last_rank1:?}");
    assert!(of("pre-ln") > 0.05, "{last_rank1:?}");
}
