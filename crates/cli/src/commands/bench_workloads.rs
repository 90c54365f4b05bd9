//! What `gradscope bench` measures: the workloads, the probe settings, and
//! each workload's experiment file, batch and step count. The PyTorch side
//! (`bench/pytorch_reference.py`) builds the same models by these names;
//! any change here must be made there too.

/// The workloads of the benchmark (issue: MLP depth 32 width 128, CNN-20 and
/// CNN-56 on 1×28×28, batch 128; issue 34: an LSTM of width 128 on 100 steps
/// of the adding problem, batch 64; issue 35: a pre-LN transformer of 6
/// blocks, d 128, 4 heads, on 32-token sequences to sort, batch 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    MlpPlain,
    MlpResidual,
    Cnn20,
    Cnn56,
    Lstm,
    Transformer,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::MlpPlain,
        Workload::MlpResidual,
        Workload::Cnn20,
        Workload::Cnn56,
        Workload::Lstm,
        Workload::Transformer,
    ];

    /// The name on the command line, in the tables and for the Python side.
    pub fn name(self) -> &'static str {
        match self {
            Workload::MlpPlain => "mlp-plain",
            Workload::MlpResidual => "mlp-residual",
            Workload::Cnn20 => "cnn20",
            Workload::Cnn56 => "cnn56",
            Workload::Lstm => "lstm",
            Workload::Transformer => "transformer",
        }
    }

    /// Examples per step: 128 images, or 64 sequences (an LSTM step is
    /// 100 cell steps, a transformer's 64 × 32 tokens through 6 blocks, so
    /// a smaller batch keeps their measurements as long as a CNN's).
    pub fn batch(self) -> usize {
        match self {
            Workload::Lstm | Workload::Transformer => 64,
            _ => 128,
        }
    }

    /// The Python side's name for the same net run by PyTorch's fused
    /// kernel, where one exists: `torch.nn.LSTM` runs the whole sequence in
    /// one op, hiding h_t from hooks, and `scaled_dot_product_attention`
    /// (what `nn.TransformerEncoderLayer` calls) never materializes the
    /// attention probabilities the probe reads; so each is timed unprobed
    /// only, as what a user would otherwise train.
    pub fn fused(self) -> Option<&'static str> {
        match self {
            Workload::Lstm => Some("lstm-fused"),
            Workload::Transformer => Some("transformer-fused"),
            _ => None,
        }
    }

    /// Whether the CNN runs channels-last (on the CPU, as the Python side).
    pub fn is_cnn(self) -> bool {
        matches!(self, Workload::Cnn20 | Workload::Cnn56)
    }
}

/// How often a measurement probes: never in the timed window, every step,
/// every 10 steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    Off,
    Every,
    Every10,
}

impl Probe {
    pub const ALL: [Probe; 3] = [Probe::Off, Probe::Every, Probe::Every10];

    pub fn name(self) -> &'static str {
        match self {
            Probe::Off => "off",
            Probe::Every => "every",
            Probe::Every10 => "every10",
        }
    }
}

/// The experiment file text for one workload: synthetic data of the same
/// shapes as Fashion-MNIST (or the adding problem, or 32 tokens to sort),
/// SGD as in the reference script.
pub fn experiment_json(workload: Workload, probe: Probe, steps: usize) -> String {
    let mlp = (
        r#"{ "kind": "synthetic", "samples": 2048, "test_samples": 256, "classes": 10, "features": 784 }"#,
        r#"{ "family": "mlp", "width": 128, "activation": "relu", "init": "pytorch-default" }"#,
    );
    let cnn = (
        r#"{ "kind": "synthetic-images", "samples": 2048, "test_samples": 256, "classes": 10, "shape": [1, 28, 28] }"#,
        r#"{ "family": "cnn", "width": 16, "shortcut": "a" }"#,
    );
    // The rnn family's default init is nn.LSTM's, with forget bias 1; the
    // depth is the sequence length, at which the adding data are made.
    let lstm = (
        r#"{ "kind": "adding", "samples": 2048, "test_samples": 256, "seed": 1 }"#,
        r#"{ "family": "rnn", "width": 128, "cell": "lstm" }"#,
    );
    // Sorting needs every token before the first answer, so attention is
    // not causal; the per-token head reads all 32 positions. The depth
    // counts blocks; the data keep their own length.
    let transformer = (
        r#"{ "kind": "sort", "samples": 2048, "test_samples": 256, "length": 32, "vocab": 16, "seed": 1 }"#,
        r#"{ "family": "transformer", "width": 128, "heads": 4, "mlp_ratio": 4 }"#,
    );
    let ((dataset, model), variant, depth) = match workload {
        Workload::MlpPlain => (mlp, "plain", 32),
        Workload::MlpResidual => (mlp, "residual", 32),
        Workload::Cnn20 => (cnn, "residual", 20),
        Workload::Cnn56 => (cnn, "residual", 56),
        Workload::Lstm => (lstm, "plain", 100),
        Workload::Transformer => (transformer, "pre-ln", 6),
    };
    let task = match workload {
        Workload::Lstm => "regression",
        _ => "classify",
    };
    // "off" still probes step 0 and the last step, both outside the window.
    let every = match probe {
        Probe::Off => steps + 1,
        Probe::Every => 1,
        Probe::Every10 => 10,
    };
    let batch = workload.batch();
    format!(
        r#"{{ "name": "bench", "task": "{task}", "dataset": {dataset}, "model": {model}, "variants": ["{variant}"], "depths": [{depth}], "seeds": [0],
             "train": {{ "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0001, "batch_size": {batch}, "steps": {steps},
                        "eval_every": {steps}, "log_every": 10 }},
             "probe": {{ "every": {every} }} }}"#
    )
}

/// Timed steps of one measurement: the base count (about as long a
/// measurement per workload) times `scale`, in tens (training rows are
/// logged every 10 steps).
pub fn steps_for(workload: Workload, scale: f64) -> usize {
    let base = match workload {
        Workload::Cnn20 => 20.0,
        Workload::Cnn56 => 10.0,
        Workload::Lstm => 50.0,
        Workload::Transformer => 20.0,
        Workload::MlpPlain | Workload::MlpResidual => 200.0,
    };
    (((base * scale) / 10.0).round().max(1.0) * 10.0) as usize
}

/// The batch in a report's header: "batch 128", and each workload whose
/// batch differs in brackets.
pub fn batch_note(workloads: &[Workload]) -> String {
    let odd: Vec<String> = workloads
        .iter()
        .filter(|w| w.batch() != 128)
        .map(|w| format!("{} {}", w.name(), w.batch()))
        .collect();
    if odd.is_empty() {
        "batch 128".into()
    } else {
        format!("batch 128 ({})", odd.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_train::plan::RunSpec;
    use gradscope_train::spec::{Experiment, Task};
    use gradscope_train::sweep::{load_dataset, run_dataset};
    use gradscope_train::train_loop::build_network;
    use std::path::Path;
    use tch::Tensor;

    /// Every cell's experiment parses, with the batch and task the Python
    /// side trains with; the LSTM's adding data are made at its depth,
    /// the 100 steps the script unrolls, and the transformer's tokens keep
    /// their own length, 32, whatever its depth in blocks.
    #[test]
    fn every_workload_is_a_valid_experiment() {
        for w in Workload::ALL {
            for p in Probe::ALL {
                let text = experiment_json(w, p, 21);
                let exp = Experiment::from_json(&text, Path::new("<bench>")).unwrap();
                assert_eq!(exp.train.batch_size, w.batch(), "{}", w.name());
                let regression = w == Workload::Lstm;
                assert_eq!(exp.task == Task::Regression, regression, "{}", w.name());
                let run = RunSpec {
                    variant: exp.variants[0],
                    setting: Default::default(),
                    depth: exp.depths[0],
                    seed: 0,
                };
                let length = run_dataset(&exp, &run).length();
                let expected = match w {
                    Workload::Lstm => Some(100),
                    Workload::Transformer => Some(32),
                    _ => None,
                };
                assert_eq!(length, expected, "{}", w.name());
            }
        }
    }

    /// The LSTM's steps in tens like the others', and the batch named in
    /// a header only where a benched workload differs from 128.
    #[test]
    fn lstm_steps_and_batch_note() {
        assert_eq!(steps_for(Workload::Lstm, 1.0), 50);
        assert_eq!(steps_for(Workload::Lstm, 0.05), 10);
        assert_eq!(steps_for(Workload::Cnn56, 1.0), 10);
        assert_eq!(
            batch_note(&[Workload::MlpPlain, Workload::Cnn56]),
            "batch 128"
        );
        assert_eq!(
            batch_note(&Workload::ALL),
            "batch 128 (lstm 64, transformer 64)"
        );
        assert_eq!(Workload::Lstm.fused(), Some("lstm-fused"));
        assert!(Workload::ALL[..4].iter().all(|w| w.fused().is_none()));
    }

    /// Issue 35's workload, as the script builds it: a pre-LN transformer
    /// of 6 blocks, d 128, 4 heads, MLP 4d, on 32 tokens over 16 symbols,
    /// a per-token head on all 32 positions, batch 64; its 50 probe points
    /// are the embedding, 8 per block and the head. Its steps are in tens
    /// like the others', and its fused twin has the script's name.
    #[test]
    fn transformer_is_issue_35s_net() {
        let w = Workload::Transformer;
        assert_eq!(w.name(), "transformer");
        assert_eq!(w.batch(), 64);
        assert_eq!(w.fused(), Some("transformer-fused"));
        assert!(!w.is_cnn());
        assert_eq!(steps_for(w, 1.0), 20);
        assert_eq!(steps_for(w, 0.1), 10);
        assert_eq!(batch_note(&[w]), "batch 128 (transformer 64)");
        let exp =
            Experiment::from_json(&experiment_json(w, Probe::Every, 31), Path::new("<bench>"))
                .unwrap();
        assert_eq!(exp.task, Task::Classify);
        assert_eq!(exp.depths, vec![6]);
        assert_eq!(exp.variants, vec![gradscope_models::Variant::PreLn]);
        assert_eq!(exp.dataset.output_steps(), Some(32));
        assert!(exp.probe.probes(11, 31) && exp.probe.probes(12, 31));
        let run = RunSpec {
            variant: exp.variants[0],
            setting: Default::default(),
            depth: exp.depths[0],
            seed: 0,
        };
        let data = load_dataset(&run_dataset(&exp, &run)).unwrap();
        assert_eq!(data.classes, 16);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = build_network(&vs.root(), &exp, &data, &run).unwrap();
        assert_eq!(net.probe_points().len(), 1 + 8 * 6 + 1);
        let x = data.train.x.narrow(0, 0, 2);
        assert_eq!(x.size(), [2, 32, 16]);
        assert_eq!(net.forward(&x, true, None).size(), [2, 32, 16]);
        // Every weight the script's model holds: per block qkv, W_o, fc1,
        // fc2 (weight and bias) and two LNs (γ, β); the embedding, the
        // positions, the final LN (γ, β) and the head (weight and bias).
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum();
        let (d, v, t) = (128i64, 16i64, 32i64);
        let block =
            (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 4 * d;
        assert_eq!(params, v * d + t * d + 6 * block + 2 * d + (d * v + v));
    }

    /// The script knows every workload and fused twin by the names this
    /// side gives them, so neither side can rename one alone.
    #[test]
    fn the_script_builds_every_workload_by_name() {
        let script = include_str!("../../../../bench/pytorch_reference.py");
        // The WORKLOADS tuple, over as many lines as it takes.
        let start = script
            .find("\nWORKLOADS = (")
            .expect("the script's WORKLOADS");
        let names = &script[start..];
        let names = &names[..names.find(')').expect("the end of WORKLOADS")];
        for w in Workload::ALL {
            for name in std::iter::once(w.name()).chain(w.fused()) {
                assert!(names.contains(&format!("\"{name}\"")), "{name}: {names}");
            }
        }
    }
}
