//! Tests of the transformer family: the attention against libtorch's
//! fused op, each layout against its formula, causality, the probe points
//! and the refusals.

use super::*;
use tch::{Device, Kind};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn config(input_shape: &[i64], variant: Variant) -> TransformerConfig {
    TransformerConfig {
        input_shape: input_shape.to_vec(),
        outputs: 3,
        steps: None,
        depth: 3,
        width: 16,
        heads: 4,
        mlp_ratio: 4,
        patch: None,
        causal: false,
        init: Init::PytorchDefault,
        variant,
    }
}

fn build(c: TransformerConfig) -> (nn::VarStore, Transformer) {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Transformer::new(&vs.root(), c).unwrap();
    (vs, net)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// The explicit attention, softmax(q·kᵀ/√d_h)·v with the causal mask
/// above the diagonal (Vaswani et al. 2017, eq. 1), equals libtorch's
/// `scaled_dot_product_attention` (PyTorch's
/// `F.scaled_dot_product_attention`, default scale 1/√d_h) within 1e-5,
/// bidirectional and causal.
#[test]
fn explicit_attention_equals_libtorchs_fused_op() {
    tch::manual_seed(1);
    let [q, k, v] = [0, 1, 2].map(|_| Tensor::randn([2, 4, 7, 4], CPU));
    for causal in [false, true] {
        let ours = attention_probs(&q, &k, causal).matmul(&v);
        let fused = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            causal,
            None,
            false,
        );
        let diff = max_diff(&ours, &fused);
        assert!(diff < 1e-5, "causal {causal}: {diff}");
    }
}

/// A block's sublayers assembled from functional ops: the attention
/// through libtorch's fused op, the MLP as fc2(relu(fc1(x))).
fn attn_ref(net: &Transformer, i: usize, x: &Tensor) -> Tensor {
    let b = &net.blocks[i];
    let s = x.size();
    let (n, t, d) = (s[0], s[1], s[2]);
    let h = net.config.heads;
    let qkv = x.linear(&b.qkv.ws, b.qkv.bs.as_ref());
    let heads = |j: i64| {
        qkv.narrow(2, j * d, d)
            .reshape([n, t, h, d / h])
            .transpose(1, 2)
    };
    let ctx = Tensor::scaled_dot_product_attention(
        &heads(0),
        &heads(1),
        &heads(2),
        None::<Tensor>,
        0.0,
        net.config.causal,
        None,
        false,
    );
    ctx.transpose(1, 2)
        .reshape([n, t, d])
        .linear(&b.wo.ws, b.wo.bs.as_ref())
}

fn mlp_ref(net: &Transformer, i: usize, x: &Tensor) -> Tensor {
    let b = &net.blocks[i];
    x.linear(&b.fc1.ws, b.fc1.bs.as_ref())
        .relu()
        .linear(&b.fc2.ws, b.fc2.bs.as_ref())
}

/// LayerNorm at init (γ = 1, β = 0), PyTorch's eps.
fn ln(x: &Tensor) -> Tensor {
    x.layer_norm([x.size()[2]], None::<Tensor>, None::<Tensor>, 1e-5, true)
}

/// Each layout follows its formula (module docs): post-ln x ← LN(x + F(x))
/// (Vaswani et al. 2017), pre-ln x ← x + F(LN(x)) with a final LN (Xiong
/// et al. 2020, Fig. 1), residual x ← x + F(x), plain x ← LN(F(x)), and
/// rezero x ← x + α·F(x) (Bachlechner et al. 2020), checked against a
/// reference assembled from functional ops on the net's own weights,
/// within 1e-5. At init ReZero's α = 0, so every block is the identity
/// and each block's output is the embedding, exactly.
#[test]
fn every_layout_equals_its_formula() {
    tch::manual_seed(2);
    let x = Tensor::randn([3, 6, 5], CPU);
    for causal in [false, true] {
        for variant in [Plain, Residual, Rezero, PostLn, PreLn] {
            let (_vs, net) = build(TransformerConfig {
                causal,
                ..config(&[6, 5], variant)
            });
            let mut h = x.matmul(&net.embed.ws.tr()) + &net.pos;
            let embedded = h.shallow_clone();
            for i in 0..net.blocks.len() {
                let sub = |h: &Tensor, f: &dyn Fn(&Tensor) -> Tensor| match variant {
                    Plain => ln(&f(h)),
                    Residual | Rezero => h + f(h),
                    PostLn => ln(&(h + f(h))),
                    PreLn => h + f(&ln(h)),
                    Highway => unreachable!(),
                };
                let h1 = sub(&h, &|y| attn_ref(&net, i, y));
                h = sub(&h1, &|y| mlp_ref(&net, i, y));
                if variant == Rezero {
                    // α = 0: the reference would add F; the net adds 0·F.
                    h = embedded.shallow_clone();
                }
            }
            if variant == PreLn {
                h = ln(&h);
            }
            let want = h
                .mean_dim(1, false, Kind::Float)
                .linear(&net.head.ws, net.head.bs.as_ref());
            let rec = Recording::new(net.probe_points().len());
            let got = net.forward(&x, true, Some(&rec));
            let diff = max_diff(&got, &want);
            assert!(diff < 1e-5, "{variant:?} causal {causal}: {diff}");
            if variant == Rezero {
                let (outputs, _) = rec.finish();
                for i in 0..net.blocks.len() {
                    let out = outputs[Transformer::block_point(i) + 7].as_ref().unwrap();
                    assert!(out.equal(&embedded), "block {i} is not the identity");
                }
            }
        }
    }
}

/// Causal self-attention (Vaswani et al. 2017 §3.2.3: "prevent leftward
/// information flow"): with a head on every position, changing token 4
/// leaves the logits of positions 0–3 as they were and changes position
/// 4's; without the mask it changes position 0's too.
#[test]
fn a_later_token_does_not_change_earlier_logits_under_the_causal_mask() {
    tch::manual_seed(3);
    let x = Tensor::randn([2, 6, 5], CPU);
    let y = x.copy();
    let _ = y.narrow(1, 4, 1).fill_(3.0);
    for variant in [Plain, Residual, PostLn, PreLn] {
        for causal in [true, false] {
            let (_vs, net) = build(TransformerConfig {
                causal,
                steps: Some(6),
                ..config(&[6, 5], variant)
            });
            let (a, b) = (net.forward(&x, false, None), net.forward(&y, false, None));
            assert_eq!(a.size(), [2, 6, 3]);
            let early = max_diff(&a.narrow(1, 0, 4), &b.narrow(1, 0, 4));
            let at4 = max_diff(&a.select(1, 4), &b.select(1, 4));
            assert!(at4 > 1e-4, "{variant:?}: token 4 changed nothing");
            if causal {
                assert!(early < 1e-6, "{variant:?}: {early}");
            } else {
                assert!(early > 1e-4, "{variant:?} without the mask: {early}");
            }
        }
    }
}

/// The probe points (module docs): 1 + 8L + 1 of them in forward order,
/// every recorded output of the shape its point states (batch first), an
/// output exactly where [`Reads::output`] says, the block outputs alone on
/// the trunk, and each row of the attention probabilities a distribution
/// (sums to 1 within 1e-5), on tokens and on images.
#[test]
fn probe_points_are_ordered_and_recorded_at_their_shapes() {
    let (_vs, net) = build(config(&[6, 5], PreLn));
    let names: Vec<&str> = net.probe_points().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 1 + 8 * 3 + 1);
    assert_eq!(
        &names[..10],
        [
            "embed",
            "block00.attn.q",
            "block00.attn.k",
            "block00.attn.v",
            "block00.attn.probs",
            "block00.attn",
            "block00.mlp.fc1",
            "block00.mlp",
            "block00",
            "block01.attn.q"
        ]
    );
    assert_eq!(names[Transformer::block_point(2) + 7], "block02");
    assert_eq!(*names.last().unwrap(), "head");
    assert_eq!(block_name(3, 101, "mlp"), "block003.mlp");
    for (shape, cfg) in [
        (vec![2, 6, 5], config(&[6, 5], PostLn)),
        (
            vec![2, 1, 8, 8],
            TransformerConfig {
                patch: Some(2),
                ..config(&[1, 8, 8], Rezero)
            },
        ),
        (
            vec![2, 6, 5],
            TransformerConfig {
                steps: Some(2),
                causal: true,
                ..config(&[6, 5], Residual)
            },
        ),
    ] {
        let (_vs, net) = build(cfg);
        let x = Tensor::randn(shape.as_slice(), CPU);
        let rec = Recording::new(net.probe_points().len());
        let _ = net.forward(&x, true, Some(&rec));
        let (outputs, responses) = rec.finish();
        let points = net.probe_points();
        for (p, out) in points.iter().zip(&outputs) {
            assert_eq!(out.is_some(), p.reads.output(), "{}", p.name);
            if let Some(o) = out {
                assert_eq!(o.size()[1..], p.output_shape[..], "{}", p.name);
            }
            assert_eq!(p.trunk, matches!(p.reads, Reads::Tokens), "{}", p.name);
        }
        // Per block: the probabilities, the ReLU's output, the block output.
        assert_eq!(responses.len(), 3 * 3);
        for (i, r) in &responses {
            let p = &points[*i];
            assert_eq!(r.size()[1..], p.output_shape[..], "{}", p.name);
            if let Reads::Attention { heads } = p.reads {
                assert_eq!(heads, 4);
                let rows = r.sum_dim_intlist(-1, false, Kind::Double);
                assert!(max_diff(&rows, &rows.ones_like()) < 1e-5, "{}", p.name);
            }
        }
        // The q, k, v points are the three row blocks of one parameter.
        let qkv = &net.blocks[0].qkv.ws;
        for j in 0..3 {
            let p = &points[1 + j];
            let Reads::WeightRows {
                parameter,
                first_row,
            } = &p.reads
            else {
                panic!("{} reads weight rows", p.name)
            };
            assert_eq!(*first_row, 16 * j as i64);
            assert!(parameter.equal(qkv));
            assert!(p
                .weight
                .as_ref()
                .unwrap()
                .equal(&qkv.narrow(0, 16 * j as i64, 16)));
        }
    }
}

/// A ViT on 28×28 images with 4×4 patches has 7·7 = 49 patch tokens and
/// the class token (Dosovitskiy et al. 2021, eq. 1): 50 tokens; it reads
/// the class token into a `[batch, outputs]` head.
#[test]
fn a_vit_on_28_by_28_with_patch_4_has_50_tokens() {
    let (_vs, net) = build(TransformerConfig {
        depth: 1,
        ..config(&[1, 28, 28], PostLn)
    });
    assert_eq!(net.tokens(), 50);
    assert_eq!(net.probe_points()[0].output_shape, [50, 16]);
    let x = Tensor::randn([2, 1, 28, 28], CPU);
    assert_eq!(net.forward(&x, false, None).size(), [2, 3]);
    // The patch projection reads C·p² = 16 values per patch.
    assert_eq!(net.embed.ws.size(), [16, 16]);
}

/// The same seed gives every variant the same weights (GPT-2/ViT's
/// N(0, 0.02²) embeddings and positions among them: std within 20% of
/// 0.02), so plain and post-ln differ by the shortcut alone (the
/// feed-forward families' twin convention), and their outputs differ.
#[test]
fn variants_share_weights_and_differ_by_layout() {
    let (vs_a, a) = build(config(&[6, 5], Plain));
    let (vs_b, b) = build(config(&[6, 5], PostLn));
    let (va, vb) = (vs_a.variables(), vs_b.variables());
    for (name, t) in &va {
        assert!(t.equal(&vb[name]), "{name}");
    }
    let pos_std = va["pos"].std(true).double_value(&[]);
    assert!((pos_std / 0.02 - 1.0).abs() < 0.2, "{pos_std}");
    let x = Tensor::randn([2, 6, 5], CPU);
    assert!(max_diff(&a.forward(&x, false, None), &b.forward(&x, false, None)) > 1e-4);
}

/// Bad settings are refused with one line that names the field.
#[test]
fn bad_settings_are_refused_naming_the_field() {
    let refused = |c: TransformerConfig| {
        let vs = nn::VarStore::new(Device::Cpu);
        let e = Transformer::new(&vs.root(), c).unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        e
    };
    let e = refused(TransformerConfig {
        width: 32,
        heads: 6,
        ..config(&[6, 5], PreLn)
    });
    assert!(
        e.starts_with("model.heads: 6 does not divide model.width 32"),
        "{e}"
    );
    let e = refused(TransformerConfig {
        patch: Some(5),
        ..config(&[1, 28, 28], PreLn)
    });
    assert_eq!(e, "model.patch: 5 does not divide the 28×28 image");
    let e = refused(TransformerConfig {
        patch: Some(2),
        ..config(&[6, 5], PreLn)
    });
    assert!(e.starts_with("model.patch: 2 is for image data"), "{e}");
    let e = refused(config(&[6, 5], Highway));
    assert!(e.starts_with("variants: \"highway\""), "{e}");
    assert!(e.contains("\"post-ln\" and \"pre-ln\""), "{e}");
    let e = refused(TransformerConfig {
        steps: Some(7),
        ..config(&[6, 5], PreLn)
    });
    assert!(e.starts_with("dataset:"), "{e}");
}

/// `gradscope check`'s count: for T = 6, d = 16, r = 4, V = 5, L = 3 and
/// 3 classes, 6·5·16 + 3·(3·6·16² + 2·6²·16 + 6·16² + 2·4·6·16²) + 16·3.
#[test]
fn unrolled_cost_counts_the_attention_products() {
    let (_vs, net) = build(config(&[6, 5], PreLn));
    let per_block = 3 * 6 * 256 + 2 * 36 * 16 + 6 * 256 + 8 * 6 * 256;
    assert_eq!(
        net.unrolled_cost(),
        Some((6 * 5 * 16 + 3 * per_block + 16 * 3, 2 + 6 * 3))
    );
}
