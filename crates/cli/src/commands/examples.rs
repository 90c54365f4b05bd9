//! `gradscope example NAME`: the experiment files of `experiments/`,
//! compiled into the binary, so a first run works outside the repository
//! (`gradscope example quickstart > quickstart.json`).

/// Name, one-line summary and the file's text, in the README's order.
pub const EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "quickstart",
        "deep sigmoid MLPs on synthetic data, plain against residual (make reproduce)",
        include_str!("../../../../experiments/quickstart.json"),
    ),
    (
        "fashion-mlp",
        "ReLU MLPs with BatchNorm on Fashion-MNIST, depths 4-64, 3 seeds (make fashion)",
        include_str!("../../../../experiments/fashion-mlp.json"),
    ),
    (
        "fashion-cnn",
        "He et al.'s CNN-20 and CNN-56 on a slice of Fashion-MNIST (make fashion)",
        include_str!("../../../../experiments/fashion-cnn.json"),
    ),
    (
        "fashion-mlp-full",
        "the GPU version of fashion-mlp",
        include_str!("../../../../experiments/fashion-mlp-full.json"),
    ),
    (
        "fashion-cnn-full",
        "the GPU version of fashion-cnn",
        include_str!("../../../../experiments/fashion-cnn-full.json"),
    ),
    (
        "glorot-sigmoid",
        "Glorot & Bengio 2010: sigmoid MLP, standard against normalized init (make glorot)",
        include_str!("../../../../experiments/glorot-sigmoid.json"),
    ),
    (
        "glorot-tanh",
        "Glorot & Bengio 2010: tanh MLP, standard against normalized init (make glorot)",
        include_str!("../../../../experiments/glorot-tanh.json"),
    ),
    (
        "mnist-cnn",
        "CNN-20 and CNN-56 on MNIST (needs the IDX files in data/mnist)",
        include_str!("../../../../experiments/mnist-cnn.json"),
    ),
    (
        "cifar10-he2016",
        "He et al.'s CIFAR-10 recipe, for a GPU (needs the binary archive)",
        include_str!("../../../../experiments/cifar10-he2016.json"),
    ),
    (
        "identity",
        "can a stack learn f(x) = x? ReLU MLPs, depths 2-32",
        include_str!("../../../../experiments/identity.json"),
    ),
    (
        "rnn-adding",
        "vanishing through time: tanh RNN against LSTM and GRU on the adding problem, lengths 10-200",
        include_str!("../../../../experiments/rnn-adding.json"),
    ),
    (
        "transformer-ln",
        "where the LayerNorm sits: post-LN, pre-LN and plain Transformers of 2-18 blocks sorting tokens, with and without a warm-up",
        include_str!("../../../../experiments/transformer-ln.json"),
    ),
    (
        "isometry",
        "dynamical isometry: tanh and ReLU MLPs of depth 100 at criticality, Gaussian against orthogonal (then gradscope jacobian)",
        include_str!("../../../../experiments/isometry.json"),
    ),
    (
        "criticality",
        "the phase diagram of trainable depth: tanh MLPs over sigma_w^2 0.5-4 and depth 10-200 (Schoenholz et al. 2017)",
        include_str!("../../../../experiments/criticality.json"),
    ),
    (
        "resnet50-signs-shape",
        "ResNet-50 and its plain twin on synthetic 64x64x3 images",
        include_str!("../../../../experiments/resnet50-signs-shape.json"),
    ),
    (
        "inception",
        "2 to 16 Inception modules, plain against x + s·M(x) at s = 1 and 0.2, on 14x14 Fashion-MNIST",
        include_str!("../../../../experiments/inception.json"),
    ),
    (
        "inception-full",
        "the GPU version of inception: 4-32 modules on all of Fashion-MNIST",
        include_str!("../../../../experiments/inception-full.json"),
    ),
    (
        "landscape",
        "Li et al. 2018's loss landscapes: plain and residual CNN-20 and CNN-56 with saved weights",
        include_str!("../../../../experiments/landscape.json"),
    ),
    (
        "lesion",
        "Veit et al. 2016's lesion and path studies: plain and residual CNN-20 and CNN-56 with saved weights",
        include_str!("../../../../experiments/lesion.json"),
    ),
    (
        "landscape-full",
        "the GPU version of landscape: CNN-20, -56 and -110 on all of Fashion-MNIST",
        include_str!("../../../../experiments/landscape-full.json"),
    ),
    (
        "residual-inits",
        "unnormalized ReLU MLPs at 8-128 layers: plain, residual, rezero and highway at the He init and Fixup",
        include_str!("../../../../experiments/residual-inits.json"),
    ),
];

/// The text of example `name`, or the list of names when it is unknown.
pub fn example(name: &str) -> Result<&'static str, String> {
    EXAMPLES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, text)| *text)
        .ok_or_else(|| {
            format!(
                "no example {name:?}; the examples are:\n{}",
                list().trim_end()
            )
        })
}

/// One line per example: its name and summary.
pub fn list() -> String {
    let mut text = String::new();
    for (name, about, _) in EXAMPLES {
        outln!(text, "  {name:26} {about}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_train::spec::Experiment;
    use std::path::Path;

    /// Every example parses, and is named as its file is.
    #[test]
    fn every_example_is_a_valid_experiment() {
        for (name, _, text) in EXAMPLES {
            let e = Experiment::from_json(text, Path::new(name))
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(e.name, *name);
        }
    }

    /// No file of experiments/ is left out.
    #[test]
    fn every_experiment_file_is_an_example() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect();
        files.sort();
        let mut names: Vec<String> = EXAMPLES.iter().map(|(n, _, _)| n.to_string()).collect();
        names.sort();
        assert_eq!(files, names);
    }
}
