//! ResNet-50's blocks and the Inception module, checked against published
//! numbers and against torchvision.

use gradscope_models::bottleneck::{BlockKind, Bottleneck, BottleneckBlock, BottleneckConfig};
use gradscope_models::cost::{self, TARGETS};
use gradscope_models::inception::{InceptionConfig, InceptionNet, ModuleKind};
use gradscope_models::layers::Layers;
use gradscope_models::{Init, Network, Norm, Recording, Variant};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn params(vs: &VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

fn resnet50(variant: Variant, input: [i64; 3], classes: i64, width: i64) -> BottleneckConfig {
    BottleneckConfig {
        input_shape: input.to_vec(),
        classes,
        depth: 50,
        width,
        norm: Norm::Batchnorm,
        init: Init::Kaiming,
        variant,
        channels_last: false,
    }
}

fn total_mults(net: &dyn Network) -> i64 {
    net.layer_costs().iter().map(|c| c.mults()).sum()
}

/// torchvision's `resnet50(num_classes=6)` has 23,520,326 parameters (no
/// conv biases, affine BN; printed by torchvision 0.26). The plain twin
/// lacks exactly the four projection shortcuts and their BN.
#[test]
fn resnet50_has_torchvisions_parameter_count() {
    let vs = VarStore::new(Device::Cpu);
    let net = Bottleneck::new(&vs.root(), resnet50(Variant::Residual, [3, 64, 64], 6, 64)).unwrap();
    assert_eq!(params(&vs), 23_520_326);
    // The recorded costs account for every parameter.
    let counted: i64 = net.layer_costs().iter().map(|c| c.params).sum();
    assert_eq!(counted, 23_520_326);

    let vs = VarStore::new(Device::Cpu);
    let _ = Bottleneck::new(&vs.root(), resnet50(Variant::Plain, [3, 64, 64], 6, 64)).unwrap();
    let projections =
        (64 * 256 + 512) + (256 * 512 + 1024) + (512 * 1024 + 2048) + (1024 * 2048 + 4096);
    assert_eq!(params(&vs), 23_520_326 - projections);
}

/// Reference: torchvision 0.26 `resnet50(num_classes=6)` with each stage's
/// stride moved from conv2 to conv1 (the original/Keras placement used
/// here), multiplications of every Conv2d and Linear counted with forward
/// hooks on a 1×3×64×64 input: 314,781,696. (torchvision's own v1.5
/// placement gives 333,656,064; at 224×224 with 1000 classes the two are
/// 3,857,973,248 and 4,089,184,256.)
#[test]
fn resnet50_multiplications_match_torchvision_with_the_original_stride() {
    let vs = VarStore::new(Device::Cpu);
    let net = Bottleneck::new(&vs.root(), resnet50(Variant::Residual, [3, 64, 64], 6, 64)).unwrap();
    assert_eq!(total_mults(&net), 314_781_696);
    let vs = VarStore::new(Device::Cpu);
    let net = Bottleneck::new(
        &vs.root(),
        resnet50(Variant::Residual, [3, 224, 224], 1000, 64),
    )
    .unwrap();
    assert_eq!(total_mults(&net), 3_857_973_248);
}

/// Probe points: the stem, three convolutions in each of the 16 blocks and
/// the 4 projections (53 convolutions), 16 block outputs and the
/// classifier, in forward order.
#[test]
fn resnet50_probes_every_convolution_in_order() {
    let vs = VarStore::new(Device::Cpu);
    let net = Bottleneck::new(&vs.root(), resnet50(Variant::Residual, [3, 32, 32], 6, 4)).unwrap();
    let names: Vec<&str> = net.probe_points().iter().map(|p| p.name.as_str()).collect();
    let convs = names
        .iter()
        .filter(|n| !n.ends_with(".out") && **n != "fc")
        .count();
    // Stem + 16 blocks × 3 + 4 projections: the "50" counts stem, 48 and fc.
    assert_eq!(convs, 1 + 16 * 3 + 4);
    assert_eq!(names.iter().filter(|n| n.ends_with(".out")).count(), 16);
    assert_eq!(names[0], "stage1.conv");
    assert_eq!(
        names[1..5],
        [
            "stage2.block1.conv1",
            "stage2.block1.conv2",
            "stage2.block1.conv3",
            "stage2.block1.proj"
        ]
    );
    assert_eq!(*names.last().unwrap(), "fc");
    // A forward pass gives logits and one response per main-path conv.
    let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let rec = Recording::new(net.probe_points().len());
    let out = net.forward(&x, true, Some(&rec));
    assert_eq!(out.size(), vec![2, 6]);
    let (outputs, responses) = rec.finish();
    assert!(outputs.iter().all(Option::is_some), "every point recorded");
    assert_eq!(responses.len(), 1 + 16 * 3);
}

/// The identity block keeps its input's shape; the convolution block with
/// stride 2 halves the map and sets the channels to f3.
#[test]
fn block_output_shapes() {
    let vs = VarStore::new(Device::Cpu);
    let mut l = Layers::new(vs.root(), Init::Kaiming, Norm::Batchnorm, false);
    let id = BottleneckBlock::new(
        &mut l,
        "id",
        BlockKind::Identity,
        [16, 8, 8],
        (4, 4, 16),
        1,
        Variant::Residual,
    )
    .unwrap();
    let cb = BottleneckBlock::new(
        &mut l,
        "cb",
        BlockKind::Convolution,
        [16, 8, 8],
        (8, 8, 32),
        2,
        Variant::Residual,
    )
    .unwrap();
    let x = Tensor::randn([2, 16, 8, 8], (Kind::Float, Device::Cpu));
    assert_eq!(id.forward(&x, true, None).size(), vec![2, 16, 8, 8]);
    assert_eq!(cb.forward(&x, true, None).size(), vec![2, 32, 4, 4]);
    assert_eq!((id.output, cb.output), ([16, 8, 8], [32, 4, 4]));
    // The plain twin of the convolution block keeps only its main path.
    let plain = BottleneckBlock::new(
        &mut l,
        "pb",
        BlockKind::Convolution,
        [16, 8, 8],
        (8, 8, 32),
        2,
        Variant::Plain,
    )
    .unwrap();
    assert_eq!(plain.forward(&x, true, None).size(), vec![2, 32, 4, 4]);
    assert!(l.points.iter().all(|p| p.name != "pb.proj"));
}

#[test]
fn impossible_shapes_name_the_failing_layer() {
    let vs = VarStore::new(Device::Cpu);
    let mut l = Layers::new(vs.root(), Init::Kaiming, Norm::Batchnorm, false);
    let err = BottleneckBlock::new(
        &mut l,
        "stage2.block2",
        BlockKind::Identity,
        [64, 16, 16],
        (64, 64, 256),
        1,
        Variant::Residual,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("identity block stage2.block2")
            && err.to_string().contains("64 channels"),
        "{err}"
    );

    let vs = VarStore::new(Device::Cpu);
    let err =
        Bottleneck::new(&vs.root(), resnet50(Variant::Residual, [3, 8, 8], 6, 64)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("dataset:") && msg.contains("3×8×8") && msg.contains("stage4.block1.conv1"),
        "{msg}"
    );
}

/// Szegedy et al. (2015) Table 1: module (3a) outputs 64 + 128 + 32 + 32 =
/// 256 channels; the naive module passes the 192 pooled channels through:
/// 64 + 128 + 32 + 192 = 416.
#[test]
fn inception_module_output_channels() {
    for (name, channels) in [("inception-3a", 256), ("inception-3a-naive", 416)] {
        let vs = VarStore::new(Device::Cpu);
        let net = cost::build(&vs.root(), name, Some([192, 8, 8]), None).unwrap();
        let x = Tensor::randn([1, 192, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(
            net.forward(&x, false, None).size(),
            vec![1, channels, 8, 8],
            "{name}"
        );
    }
}

/// The 1×1 argument (Szegedy et al. 2015 §4, as usually taught): on a
/// 28×28×192 input a 5×5 convolution with 32 filters costs 120,422,400
/// multiplications; a 1×1 reduction to 16 channels first costs 2,408,448 +
/// 10,035,200 = 12,443,648. Module (3a) with its reductions: 128,049,152
/// (the paper's "128M"); without: 303,464,448 (1×1 9,633,792 + 3×3
/// 173,408,256 + 5×5 120,422,400).
#[test]
fn the_one_by_one_argument_is_exact() {
    let mults = |name: &str| {
        let vs = VarStore::new(Device::Cpu);
        let net = cost::build(&vs.root(), name, None, None).unwrap();
        net.layer_costs()
            .iter()
            .map(|c| c.mults())
            .collect::<Vec<_>>()
    };
    assert_eq!(mults("conv5x5"), vec![120_422_400]);
    assert_eq!(mults("reduce5x5"), vec![2_408_448, 10_035_200]);
    assert_eq!(mults("inception-3a").iter().sum::<i64>(), 128_049_152);
    assert_eq!(
        mults("inception-3a-naive"),
        vec![9_633_792, 173_408_256, 120_422_400]
    );
}

/// Every target builds at its default input and counts all its parameters.
#[test]
fn every_target_builds_and_accounts_for_its_parameters() {
    for t in TARGETS {
        let vs = VarStore::new(Device::Cpu);
        let net = cost::build(&vs.root(), t.name, None, None).unwrap();
        let counted: i64 = net.layer_costs().iter().map(|c| c.params).sum();
        assert_eq!(counted, params(&vs), "{}", t.name);
    }
    let err = cost::target("resnet5").unwrap_err().to_string();
    assert!(
        err.contains("resnet50") && err.contains("inception-3a"),
        "{err}"
    );
}

#[test]
fn selecting_a_module_or_an_unknown_layer() {
    let vs = VarStore::new(Device::Cpu);
    let net = cost::build(&vs.root(), "resnet50", None, None).unwrap();
    let rows = cost::select(net.layer_costs(), "stage3.block1").unwrap();
    assert_eq!(rows.len(), 4, "conv1..3 and the projection");
    let err = cost::select(net.layer_costs(), "stage9")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stage3.block1.conv2") && err.contains("stage5"),
        "{err}"
    );
}

/// The small Inception net trains end to end on a batch: forward, backward,
/// and its residual twin has the extra projection only where channels change.
#[test]
fn small_inception_net_shapes() {
    for (variant, kind) in [
        (Variant::Plain, ModuleKind::Reduced),
        (Variant::Residual, ModuleKind::Naive),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let net = InceptionNet::new(
            &vs.root(),
            InceptionConfig {
                input_shape: vec![1, 16, 16],
                classes: 10,
                depth: 3,
                width: 8,
                kind,
                norm: Norm::Batchnorm,
                init: Init::Kaiming,
                variant,
                residual_scale: 1.0,
                channels_last: false,
            },
        )
        .unwrap();
        let x = Tensor::randn([4, 1, 16, 16], (Kind::Float, Device::Cpu));
        let out = net.forward(&x, true, None);
        assert_eq!(out.size(), vec![4, 10]);
        let projections = net
            .probe_points()
            .iter()
            .filter(|p| p.name.ends_with(".proj"))
            .count();
        // Naive modules grow the channels every time (the pooled input
        // passes through), so each residual module needs a projection.
        let expected = match variant {
            Variant::Plain => 0,
            _ => 3,
        };
        assert_eq!(projections, expected);
        out.sum(Kind::Float).backward();
    }
}

/// The Inception twins differ only in the shortcut (issue 30 §3): the
/// residual module is x + s·M(x) with M the plain module unchanged. With
/// the plain net's weights copied from the residual one (its variables are
/// the residual's less the first module's projection), in eval mode, the
/// logits of one module are affine in s, and their slope is the plain net's
/// logits less the classifier bias: no ReLU after the sum, no other branch
/// end.
#[test]
fn inception_twins_differ_only_in_the_shortcut() {
    let config = |variant, residual_scale| InceptionConfig {
        input_shape: vec![1, 12, 12],
        classes: 5,
        depth: 1,
        width: 8,
        kind: ModuleKind::Reduced,
        norm: Norm::Batchnorm,
        init: Init::Kaiming,
        variant,
        residual_scale,
        channels_last: false,
    };
    tch::manual_seed(3);
    let build = |variant, s| {
        let vs = VarStore::new(Device::Cpu);
        let net = InceptionNet::new(&vs.root(), config(variant, s)).unwrap();
        (vs, net)
    };
    let (residual_vs, first) = build(Variant::Residual, 1.0);
    let mut residual = vec![first];
    for s in [2.0, 3.0] {
        let (mut vs, net) = build(Variant::Residual, s);
        vs.copy(&residual_vs).unwrap();
        residual.push(net);
    }
    let (mut plain_vs, plain) = build(Variant::Plain, 1.0);
    let plain_names: Vec<String> = plain_vs.variables().into_keys().collect();
    let extra: Vec<String> = residual_vs
        .variables()
        .into_keys()
        .filter(|n| !plain_names.contains(n))
        .collect();
    assert!(
        !extra.is_empty() && extra.iter().all(|n| n.starts_with("module01.proj")),
        "the residual twin adds only the projection: {extra:?}"
    );
    plain_vs.copy(&residual_vs).unwrap();
    let x = Tensor::randn([3, 1, 12, 12], (Kind::Float, Device::Cpu));
    let logits: Vec<Tensor> = residual
        .iter()
        .map(|n| n.forward(&x, false, None))
        .collect();
    let slope = &logits[1] - &logits[0];
    let max_diff = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap();
    assert!(max_diff(&(&logits[2] - &logits[1]), &slope) < 1e-4);
    let bias = residual_vs
        .variables()
        .into_iter()
        .find(|(n, _)| n == "fc.bias")
        .map(|(_, t)| t)
        .unwrap();
    let plain_logits = plain.forward(&x, false, None) - bias;
    assert!(max_diff(&plain_logits, &slope) < 1e-4);
    assert!(f64::try_from(slope.abs().max()).unwrap() > 1e-3);
}

/// The CIFAR ResNets of He et al. (2016, §4.2) count their layers since
/// they are built with `Layers` (issue 15 §4). Parameters: 269,722 for
/// ResNet-20 and 853,018 for ResNet-56 with option A (the counts
/// akamaster/pytorch_resnet_cifar10 prints, "0.27M" and "0.85M" in He et
/// al. Table 6). Multiply-accumulates of the convolutions and the
/// classifier: 40.55M and 125.49M, the figures the pruning literature
/// quotes for these nets (e.g. Lin et al. 2020, HRank, Table 1).
#[test]
fn cifar_resnets_count_their_layers() {
    for (name, params_expected, mults_expected, convs) in [
        ("resnet20", 269_722, 40_551_040, 19),
        ("resnet56", 853_018, 125_485_696, 55),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let net = cost::build(&vs.root(), name, None, None).unwrap();
        let costs = net.layer_costs();
        assert_eq!(costs.len(), convs + 1, "{name}: every conv and the fc");
        assert_eq!(costs.iter().map(|c| c.params).sum::<i64>(), params_expected);
        assert_eq!(params(&vs), params_expected);
        assert_eq!(total_mults(net.as_ref()), mults_expected, "{name}");
        assert_eq!(costs[0].name, "layer00.conv");
        assert_eq!(costs[0].output, [16, 32, 32]);
        assert_eq!(costs[costs.len() - 2].output, [64, 8, 8]);
    }
}
