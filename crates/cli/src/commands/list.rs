//! `gradscope list`: what an experiment file may say, one line each.
//!
//! The tables hold a sample value for every field, and a test builds an
//! experiment from each family and dataset kind with all of its fields set
//! to those values: the parser refuses unknown fields, so a name listed
//! here that the parser does not take fails the test. Every field that a
//! list sweeps (gradscope-format's `SWEPT_FIELDS`) is marked `[list]`.

use gradscope_format::names::{path, SWEPT_FIELDS};

/// A field of an object: name, a sample JSON value, and what it means.
#[derive(Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    /// Read by the tests, which build experiments from these values.
    #[cfg_attr(not(test), allow(dead_code))]
    pub sample: &'static str,
    pub about: &'static str,
}

/// A choice (`family`, `kind`, …) with its description and its fields.
pub struct Choice {
    pub name: &'static str,
    pub about: &'static str,
    pub fields: &'static [Field],
}

const fn f(name: &'static str, sample: &'static str, about: &'static str) -> Field {
    Field {
        name,
        sample,
        about,
    }
}

const fn c(name: &'static str, about: &'static str, fields: &'static [Field]) -> Choice {
    Choice {
        name,
        about,
        fields,
    }
}

/// The options every convolutional family shares.
const CONV_INIT: Field = f(
    "init",
    r#""kaiming""#,
    "weight init (default kaiming; any value of model.init below)",
);
const CONV_NORM: Field = f(
    "norm",
    r#""batchnorm""#,
    "normalization after each conv (default batchnorm)",
);
const CHANNELS_LAST: Field = f(
    "channels_last",
    "true",
    "NHWC memory on CPU, faster convolutions (default true)",
);

const BRANCH_INIT: Field = f(
    "branch_init",
    r#""zero""#,
    "zero: each residual branch's last layer (its BN γ with BN) starts at 0, so residual and rezero blocks start as the identity (default: as init)",
);
const GATE_BIAS: Field = f(
    "gate_bias",
    "-2",
    "the highway gates' initial bias b_T; a block carries σ(−b_T) of its input at init (default -1)",
);

pub const FAMILIES: &[Choice] = &[
    c(
        "mlp",
        "fully connected stack; depth d = input layer, d-2 hidden layers, output layer; the residual twin adds a shortcut around each hidden layer",
        &[
            f("width", "16", "units per hidden layer (required)"),
            f("activation", r#""tanh""#, "the nonlinearity (required; see activations)"),
            f("init", r#""glorot""#, "weight init (default pytorch-default)"),
            f("norm", r#""batchnorm""#, "normalization before each nonlinearity (default none)"),
            BRANCH_INIT,
            GATE_BIAS,
        ],
    ),
    c(
        "cnn",
        "He et al. 2016's CIFAR nets, depth 6n+2 (8, 14, 20, 32, 44, 56, 110), BN and ReLU after every conv",
        &[
            f("width", "4", "filters of the first stage (default 16)"),
            f("shortcut", r#""a""#, "a: zero-padded identity (default), b: 1x1 projection"),
            CONV_NORM,
            CONV_INIT,
            CHANNELS_LAST,
            BRANCH_INIT,
            GATE_BIAS,
        ],
    ),
    c(
        "bottleneck",
        "ResNet-50/101/152 of bottleneck blocks (depth 50, 101 or 152); the plain twin drops every shortcut",
        &[
            f("width", "8", "filters of the stem and stage 2 (default 64)"),
            CONV_NORM,
            CONV_INIT,
            CHANNELS_LAST,
        ],
    ),
    c(
        "inception",
        "a small Inception net (Szegedy et al. 2015), depth = number of modules (at most 64)",
        &[
            f("width", "8", "1x1 filters per module (default 16, at least 4)"),
            f("module", r#""reduced""#, "reduced (1x1 reductions, default) or naive"),
            CONV_NORM,
            CONV_INIT,
            CHANNELS_LAST,
            f(
                "residual_scale",
                "0.2",
                "s in the residual twin's x + s·M(x), M the plain module unchanged (default 1; Inception-ResNet: 0.1 to 0.3)",
            ),
        ],
    ),    c(
        "rnn",
        "a recurrent net unrolled over time, probed at every time step; depth = sequence length; variants: \"plain\" only (its cells are the plain net and its twins); needs sequence data: dataset kind \"adding\" (task \"regression\"), \"copy\", or an image set with dataset.sequence",
        &[
            f("width", "8", "hidden size (required)"),
            f("cell", r#""lstm""#, "tanh (Elman, the plain twin), lstm or gru (required)"),
            f("layers", "2", "stacked layers; the probe reads the last one's h_t (default 1)"),
            f("forget_bias", "1", "the LSTM's initial forget-gate bias (default 1)"),
            f("init", r#""orthogonal""#, "weight init (default pytorch-default: U(±1/√width))"),
        ],
    ),
];

pub const ACTIVATIONS: &[Choice] = &[
    c(
        "sigmoid",
        "1/(1+e^-x); its slope is at most 1/4, so deep plain nets lose the gradient",
        &[],
    ),
    c("tanh", "zero-centred, slope at most 1", &[]),
    c(
        "relu",
        "max(0, x); a unit at 0 passes no gradient (counted as saturated)",
        &[],
    ),
];

pub const INITS: &[Choice] = &[
    c(
        "\"pytorch-default\"",
        "weights and biases U(±1/√fan_in): PyTorch's default, Glorot & Bengio's \"standard\" init",
        &[],
    ),
    c(
        "\"glorot\"",
        "U(±√6/√(fan_in+fan_out)), biases 0: Glorot & Bengio's normalized init",
        &[],
    ),
    c(
        "\"kaiming\"",
        "N(0, 2/fan_in), biases 0: He et al. 2015, for ReLU nets",
        &[],
    ),
    c("{\"normal\": {\"std\": 0.05}}", "N(0, std²), biases 0", &[]),
    c(
        "\"orthogonal\"",
        "orthogonal weights (PyTorch's orthogonal_, Saxe et al. 2014), biases 0",
        &[],
    ),
    c(
        "{\"orthogonal\": {\"gain\": 1.4}}",
        "orthogonal weights times a gain, biases 0",
        &[],
    ),
    c(
        "{\"variance\": {\"weight\": 2, \"bias\": 0.05}}",
        "W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²): mean-field σ_w², σ_b² (Poole et al. 2016)",
        &[],
    ),
    c(
        "\"fixup\"",
        "Fixup (Zhang et al. 2019), mlp: He init, residual branches and the classifier at 0, scalar biases and multipliers",
        &[],
    ),
];

pub const NORMS: &[Choice] = &[
    c("none", "no normalization", &[]),
    c(
        "batchnorm",
        "batch normalization with PyTorch's defaults (γ = 1, β = 0)",
        &[],
    ),
];

/// The fields that read an image set as a sequence (for the rnn family).
const SEQUENCE_FIELDS: [Field; 2] = [
    f(
        "sequence",
        r#""rows""#,
        "for the rnn family: rows (one image row per step, 28 steps of 28 for MNIST) or pixels (one pixel per step, 196 of 1 at downsample 2); depths must be that length",
    ),
    f(
        "permute_seed",
        "1",
        "with sequence: the steps in a fixed random order drawn from this seed (permuted MNIST)",
    ),
];

/// The fields every file dataset takes.
const FILE_FIELDS: [Field; 6] = [
    f(
        "subset_train",
        "8",
        "use only the first N training examples",
    ),
    f("subset_test", "4", "use only the first N test examples"),
    f(
        "validation",
        "2",
        "hold out the last N training examples as the evaluation split",
    ),
    f(
        "normalize",
        "true",
        "per-channel mean/std from the training split (default true)",
    ),
    f(
        "augment",
        "false",
        "pad 4, random crop, horizontal flip (default false)",
    ),
    f(
        "downsample",
        "2",
        "average-pool the images by this factor (2: 28×28 → 14×14)",
    ),
];

pub const DATASETS: &[Choice] = &[
    c(
        "synthetic",
        "Gaussian vectors labelled by a fixed random one-hidden-layer teacher",
        &[
            f("samples", "256", "training examples (required)"),
            f("test_samples", "64", "held-out examples (default a quarter of samples)"),
            f("classes", "4", "classes (required)"),
            f("features", "8", "input size (required)"),
            f("teacher_width", "8", "the teacher's hidden units (default 2 × classes)"),
            f("seed", "0", "seed of the data, the same for every run (default 0)"),
        ],
    ),
    c(
        "synthetic-images",
        "images whose class is a random 4×4 texture tiled at a random phase, plus noise",
        &[
            f("samples", "64", "training examples (required)"),
            f("test_samples", "16", "held-out examples (default a quarter of samples)"),
            f("classes", "4", "classes (required)"),
            f("shape", "[1, 16, 16]", "[channels, height, width] (required)"),
            f("noise", "0.5", "noise std relative to the pattern's (default 0.5)"),
            f("seed", "0", "seed of the data (default 0)"),
        ],
    ),
    c(
        "fashion-mnist",
        "the four IDX files (raw or gzipped) of Fashion-MNIST",
        &[
            f(
                "dir",
                r#""/usr/share/datasets/fashion-mnist""#,
                "their folder (default Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist)",
            ),
            FILE_FIELDS[0],
            FILE_FIELDS[1],
            FILE_FIELDS[2],
            FILE_FIELDS[3],
            FILE_FIELDS[4],
            FILE_FIELDS[5],
            SEQUENCE_FIELDS[0],
            SEQUENCE_FIELDS[1],
        ],
    ),
    c(
        "mnist",
        "the four MNIST IDX files (raw or gzipped)",
        &[
            f("dir", r#""data/mnist""#, "their folder (required)"),
            FILE_FIELDS[0],
            FILE_FIELDS[1],
            FILE_FIELDS[2],
            FILE_FIELDS[3],
            FILE_FIELDS[4],
            FILE_FIELDS[5],
            SEQUENCE_FIELDS[0],
            SEQUENCE_FIELDS[1],
        ],
    ),
    c(
        "cifar10",
        "CIFAR-10, binary version (data_batch_1..5.bin, test_batch.bin)",
        &[
            f(
                "dir",
                r#""data/cifar-10-batches-bin""#,
                "their folder, or the one above cifar-10-batches-bin (required)",
            ),
            FILE_FIELDS[0],
            FILE_FIELDS[1],
            FILE_FIELDS[2],
            FILE_FIELDS[3],
            FILE_FIELDS[4],
            FILE_FIELDS[5],
            SEQUENCE_FIELDS[0],
            SEQUENCE_FIELDS[1],
        ],
    ),
    c(
        "adding",
        "the adding problem (Hochreiter & Schmidhuber 1997): [length, 2] inputs, a value and a marker channel; the target is the sum of the two marked values (task \"regression\")",
        &[
            f("samples", "64", "training examples (required)"),
            f("test_samples", "16", "held-out examples (default a quarter of samples)"),
            f("length", "6", "time steps (default: each run's depth, so depths sweep the length)"),
            f("seed", "0", "seed of the data (default 0)"),
        ],
    ),
    c(
        "copy",
        "the copy task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): recall random symbols, blanks, a delimiter, then the rnn outputs the symbols at the last recall steps (task \"classify\"; error per symbol, chance 1 − 1/symbols: 0.875 for 8)",
        &[
            f("samples", "64", "training examples (required)"),
            f("test_samples", "16", "held-out examples (default a quarter of samples)"),
            f("length", "9", "time steps, at least 2 · recall + 1 (default: each run's depth)"),
            f("symbols", "4", "the alphabet's size K; inputs are one-hot over K + 2 (blank, delimiter) (default 8)"),
            f("recall", "4", "symbols to remember and output (default 10)"),
            f("seed", "0", "seed of the data (default 0)"),
        ],
    ),
    c(
        "sort",
        "length uniform tokens over vocab symbols, one-hot; output them sorted, one per position (task \"classify\"; error per token; chance that of the order statistics, below 1 − 1/vocab)",
        TOKEN_FIELDS,
    ),
    c(
        "reverse",
        "length uniform tokens over vocab symbols, one-hot; output them reversed, one per position (task \"classify\"; error per token, chance 1 − 1/vocab)",
        TOKEN_FIELDS,
    ),
    c(
        "copy-offset",
        "length uniform tokens over vocab symbols, one-hot; position t outputs the token offset steps back, at positions offset..length (task \"classify\"; error per token, chance 1 − 1/vocab)",
        &[
            TOKEN_SAMPLES,
            TOKEN_TEST,
            TOKEN_LENGTH,
            TOKEN_VOCAB,
            f("offset", "2", "steps back each output recalls, in 1..length (default 1)"),
            TOKEN_SEED,
        ],
    ),
];

/// The token tasks' fields (sort, reverse; copy-offset adds its offset).
const TOKEN_FIELDS: &[Field] = &[
    TOKEN_SAMPLES,
    TOKEN_TEST,
    TOKEN_LENGTH,
    TOKEN_VOCAB,
    TOKEN_SEED,
];
const TOKEN_SAMPLES: Field = f("samples", "64", "training examples (required)");
const TOKEN_TEST: Field = f(
    "test_samples",
    "16",
    "held-out examples (default a quarter of samples)",
);
const TOKEN_LENGTH: Field = f(
    "length",
    "6",
    "tokens per example, 2 or more (default 16); every depth must equal it",
);
const TOKEN_VOCAB: Field = f(
    "vocab",
    "4",
    "symbols, 2 or more: the inputs' channels and the classes (default 8)",
);
const TOKEN_SEED: Field = f("seed", "0", "seed of the data (default 0)");

/// The train section's fields (`train.FIELD`).
pub const TRAIN: &[Field] = &[
    f("optimizer", r#""adam""#, "sgd (default), adam or adamw (decoupled weight decay)"),
    f("lr", "0.1", "learning rate (required)"),
    f("momentum", "0", "SGD's momentum (default 0)"),
    f("weight_decay", "0.0001", "L2 weight decay; decoupled under adamw (default 0)"),
    f("beta1", "0.9", "Adam's β₁ (default 0.9)"),
    f("beta2", "0.999", "Adam's β₂ (default 0.999)"),
    f("eps", "1e-8", "Adam's ε (default 1e-8)"),
    f("batch_size", "2", "examples per step (required)"),
    f("steps", "1", "optimizer steps per run (give steps or epochs)"),
    f("epochs", "1", "passes over the training split per run (give steps or epochs)"),
    f("lr_milestones", "[1]", "steps at which the lr is multiplied by lr_gamma"),
    f("lr_gamma", "0.1", "the factor at each milestone (default 0.1)"),
    f("warmup", r#"{"steps": 1}"#, r#"{"steps": N}: linear warm-up over N steps; {"lr": 0.01, "until_train_error": 0.8}: He et al.'s (each number [list])"#),
    f("clip_grad_norm", "1", "clip the gradient's global norm to this (metrics.csv's grad_norm is the norm before clipping)"),
    f("eval_every", "1", "held-out evaluation every N steps (required)"),
    f("log_every", "1", "a training row in metrics.csv every N steps (default eval_every)"),
    f("checkpoint_every", "1", "save a checkpoint every N steps, for --resume (default off)"),
    f("save_weights", "false", "keep each run's final weights, model.ot (default false)"),
];

/// The probe section's fields (`probe.FIELD`).
pub const PROBE: &[Field] = &[
    f(
        "every",
        "1",
        "probe every N steps (default 10; step 0 and the last always)",
    ),
    f(
        "dense_steps",
        "0",
        "probe every step for the first N steps (default 0)",
    ),
];

/// `[list]` when a list in `prefix.field` sweeps it.
fn sweeps(prefix: &str, field: &str) -> &'static str {
    let full = format!("{prefix}.{field}");
    match SWEPT_FIELDS.iter().any(|f| path(f) == full) {
        true => "[list] ",
        false => "",
    }
}

fn section(text: &mut String, title: &str, prefix: &str, choices: &[Choice]) {
    outln!(text, "{title}");
    let width = choices.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for choice in choices {
        outln!(text, "  {:width$}  {}", choice.name, choice.about);
        for field in choice.fields {
            let mark = sweeps(prefix, field.name);
            outln!(
                text,
                "  {:width$}    {:14} {mark}{}",
                "",
                field.name,
                field.about
            );
        }
    }
    text.push('\n');
}

fn fields(text: &mut String, title: &str, prefix: &str, fields: &[Field]) {
    outln!(text, "{title}");
    for field in fields {
        let mark = sweeps(prefix, field.name);
        outln!(text, "  {:16} {mark}{}", field.name, field.about);
    }
    text.push('\n');
}

/// The whole listing.
pub fn listing() -> String {
    let mut text = String::new();
    outln!(
        text,
        "[list]: a list of values sweeps the field (one run per value, every combination); \
         so do lists in model.activation, model.init and model.norm.\n"
    );
    section(
        &mut text,
        "model.family (and its fields, model.FIELD):",
        "model",
        FAMILIES,
    );
    section(&mut text, "model.activation (mlp) [list]:", "", ACTIVATIONS);
    section(&mut text, "model.init [list]:", "", INITS);
    section(&mut text, "model.norm [list]:", "", NORMS);
    section(
        &mut text,
        "dataset.kind (and its fields, dataset.FIELD):",
        "dataset",
        DATASETS,
    );
    fields(&mut text, "train.FIELD:", "train", TRAIN);
    fields(&mut text, "probe.FIELD:", "probe", PROBE);
    outln!(
        text,
        "variants: \"plain\", \"residual\", and for mlp and cnn \"rezero\" (x + α·F(x), α = 0 at init) \
         and \"highway\" (gated shortcut, see model.gate_bias); task: \"classify\" (default), \
         \"identity\" (mlp only) or \"regression\" (rnn on the adding problem; error = MSE / Var(target)); \
         on the copy task \"classify\" scores each recalled symbol (error = wrong symbols' share).\n\
         A whole file: gradscope example quickstart. Every field: README, \"Writing an experiment\"."
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_train::spec::Experiment;
    use std::path::Path;

    /// An experiment with `dataset` and `model` objects as given.
    fn file(dataset: &str, model: &str, depth: usize) -> String {
        format!(
            r#"{{"name": "t", "dataset": {dataset}, "model": {model},
               "variants": ["plain", "residual"], "depths": [{depth}], "seeds": [0],
               "train": {{"lr": 0.1, "batch_size": 2, "steps": 1, "eval_every": 1}}}}"#
        )
    }

    fn object(tag: &str, value: &str, fields: &[Field]) -> String {
        let mut parts = vec![format!("{tag:?}: {value:?}")];
        parts.extend(fields.iter().map(|f| format!("{:?}: {}", f.name, f.sample)));
        format!("{{{}}}", parts.join(", "))
    }

    fn parses(text: &str) {
        if let Err(e) = Experiment::from_json(text, Path::new("list.json")) {
            panic!("{e}\n{text}");
        }
    }

    const IMAGES: &str =
        r#"{"kind": "synthetic-images", "samples": 64, "classes": 4, "shape": [3, 32, 32]}"#;
    const VECTORS: &str = r#"{"kind": "synthetic", "samples": 64, "classes": 4, "features": 8}"#;

    /// A recurrent experiment: plain only, on the adding problem.
    fn recurrent(dataset: &str, model: &str) -> String {
        recurrent_task(dataset, model, "regression", 6)
    }

    fn recurrent_task(dataset: &str, model: &str, task: &str, depth: usize) -> String {
        format!(
            r#"{{"name": "t", "dataset": {dataset}, "model": {model}, "task": {task:?},
               "variants": ["plain"], "depths": [{depth}], "seeds": [0],
               "train": {{"lr": 0.1, "batch_size": 2, "steps": 1, "eval_every": 1}}}}"#
        )
    }

    const ADDING: &str = r#"{"kind": "adding", "samples": 16}"#;

    #[test]
    fn every_family_takes_every_listed_field() {
        for fam in FAMILIES {
            if fam.name == "rnn" {
                parses(&recurrent(ADDING, &object("family", fam.name, fam.fields)));
                continue;
            }
            let (data, depth) = match fam.name {
                "mlp" => (VECTORS, 3),
                "cnn" => (IMAGES, 8),
                "bottleneck" => (IMAGES, 50),
                _ => (IMAGES, 2),
            };
            parses(&file(data, &object("family", fam.name, fam.fields), depth));
        }
    }

    #[test]
    fn every_dataset_kind_takes_every_listed_field() {
        let rnn = r#"{"family": "rnn", "width": 4, "cell": "gru"}"#;
        for kind in DATASETS {
            let all = object("kind", kind.name, kind.fields);
            match kind.name {
                "adding" => {
                    parses(&recurrent(&all, rnn));
                    continue;
                }
                // The sample length, 9, holds 2 · 4 + 1 steps.
                "copy" => {
                    parses(&recurrent_task(&all, rnn, "classify", 9));
                    continue;
                }
                // The token tasks' sample length is 6.
                "sort" | "reverse" | "copy-offset" => {
                    parses(&recurrent_task(&all, rnn, "classify", 6));
                    continue;
                }
                _ => {}
            }
            // The sequence fields are the rnn family's; every other one is
            // taken by a feed-forward family too.
            let sequence = |f: &&Field| SEQUENCE_FIELDS.iter().any(|s| s.name == f.name);
            if kind.fields.iter().any(|f| sequence(&f)) {
                parses(&recurrent_task(&all, rnn, "classify", 28));
            }
            let fields: Vec<Field> = kind
                .fields
                .iter()
                .filter(|f| !sequence(f))
                .copied()
                .collect();
            let model = if kind.name == "synthetic" {
                r#"{"family": "mlp", "width": 8, "activation": "tanh"}"#
            } else {
                r#"{"family": "cnn", "width": 4}"#
            };
            let depth = if kind.name == "synthetic" { 3 } else { 8 };
            parses(&file(&object("kind", kind.name, &fields), model, depth));
        }
    }

    #[test]
    fn every_activation_init_and_norm_is_accepted() {
        let mlp = |key: &str, value: &str| {
            let model = format!(
                r#"{{"family": "mlp", "width": 8, "activation": "tanh", {key:?}: {value}}}"#
            );
            parses(&file(VECTORS, &model, 3));
        };
        for a in ACTIVATIONS {
            mlp("activation", &format!("{:?}", a.name));
        }
        for i in INITS {
            mlp("init", i.name);
        }
        for n in NORMS {
            mlp("norm", &format!("{:?}", n.name));
        }
    }

    /// Every listed train and probe field is one the parser takes (each
    /// added alone to a minimal file, as some exclude others), and the
    /// sweepable ones are marked.
    #[test]
    fn every_train_and_probe_field_is_taken_and_sweeps_are_marked() {
        let model = r#"{"family": "mlp", "width": 8, "activation": "tanh"}"#;
        for field in TRAIN {
            let base = r#""optimizer": "adam", "lr": 0.1, "batch_size": 2, "eval_every": 1"#;
            let budget = if ["steps", "epochs"].contains(&field.name) {
                ""
            } else {
                r#", "steps": 1"#
            };
            let train = match field.name {
                "optimizer" | "lr" | "batch_size" | "eval_every" => format!("{{{base}{budget}}}"),
                _ => format!("{{{base}{budget}, {:?}: {}}}", field.name, field.sample),
            };
            parses(&format!(
                r#"{{"name": "t", "dataset": {VECTORS}, "model": {model},
                   "variants": ["plain"], "depths": [3], "seeds": [0], "train": {train}}}"#
            ));
        }
        for field in PROBE {
            // `every` is required once there is a probe section.
            let probe = match field.name {
                "every" => format!(r#"{{"every": {}}}"#, field.sample),
                _ => format!(r#"{{"every": 1, {:?}: {}}}"#, field.name, field.sample),
            };
            let text = file(VECTORS, model, 3).replacen(
                r#""eval_every": 1}"#,
                &format!(r#""eval_every": 1}}, "probe": {probe}"#),
                1,
            );
            parses(&text);
        }
        let text = listing();
        for line in [
            "lr               [list]",
            "batch_size       [list]",
            "gate_bias      [list]",
            "residual_scale [list]",
            "downsample     [list]",
        ] {
            assert!(text.contains(line), "{line} not marked:\n{text}");
        }
        assert!(text.contains("lr_milestones    steps"), "{text}");
    }
}
