//! The transformer family (issue 35): a stack of self-attention blocks on
//! token sequences, or a tiny Vision Transformer on images, built in the
//! five layouts whose gradients the literature compares.
//!
//! **Input.** Token data are `[T, V]` per example, one-hot over a
//! vocabulary of V (or any V features per step): the embedding is a
//! `Linear(V, d)` without bias, which on one-hot rows is exactly an
//! embedding lookup. Images `[C, H, W]` are cut into non-overlapping p×p
//! patches (`model.patch`), each flattened in (channel, row, column) order
//! to C·p² values, as a ViT's stride-p convolution reads them, and mapped
//! by a `Linear(C·p², d)` with bias; a learned class token is prepended
//! (Dosovitskiy et al. 2021), so a 28×28 image with p = 4 is 49 + 1 = 50
//! tokens. Learned positional embeddings `[tokens, d]` are added. The token
//! embedding, the class token and the positions start N(0, 0.02²), the
//! GPT-2 and ViT convention; every other weight (the patch projection, the
//! blocks, the head) follows `model.init` through [`Init::weight_and_bias`].
//!
//! **Blocks.** Depth is the number of blocks L. Each block has two
//! sublayers F, multi-head self-attention and a ReLU MLP
//! (`d → mlp_ratio·d → d`), wrapped by the run's variant:
//!
//! ```text
//! plain:     x ← LN(F(x))             post-ln without its shortcut
//! residual:  x ← x + F(x)             no LN
//! rezero:    x ← x + α·F(x)           α a learned scalar per sublayer, 0 at init, no LN
//!                                     (Bachlechner et al. 2020)
//! post-ln:   x ← LN(x + F(x))         Vaswani et al. 2017
//! pre-ln:    x ← x + F(LN(x))         and one LN before the head (Xiong et al. 2020)
//! ```
//!
//! so plain and post-ln differ by the shortcut alone, the comparison the
//! other families make. LN is PyTorch's `nn.LayerNorm(d)`: γ = 1 and β = 0
//! at init (learned), eps 1e-5. `highway` is refused: its gate is defined
//! for the MLP and CNN blocks.
//!
//! **Attention** is written out rather than fused, because the probe reads
//! the probabilities: q, k and v come from one `Linear(d, 3d)` whose rows
//! are q's, then k's, then v's (PyTorch's `in_proj_weight` layout), each
//! split into h heads of d/h; scores q·kᵀ/√(d/h), minus ∞ above the
//! diagonal when `model.causal`, softmax over keys, the probabilities times
//! v, the heads concatenated and mapped by W_o, a `Linear(d, d)`.
//!
//! **Head.** A sequence target of k steps (the copy task's) reads the last
//! k positions with one `Linear(d, outputs)` shared by them, `[batch, k,
//! outputs]`, as the rnn family's sequence head does. Otherwise an image
//! net reads the class token's final vector and a token net the mean over
//! its tokens (no class token is added to token data, so the mean stands
//! in for it), `[batch, outputs]`.
//!
//! **Probe points**, in forward order (block numbers zero-padded as
//! [`crate::point_name`] pads layers): `embed` (the embedded tokens plus
//! positions, weight the embedding's); per block i, base index 1 + 8i:
//!
//! ```text
//! +0 blockNN.attn.q      weight rows 0..d of qkv (Reads::WeightRows)
//! +1 blockNN.attn.k      rows d..2d
//! +2 blockNN.attn.v      rows 2d..3d
//! +3 blockNN.attn.probs  the probabilities [heads, T, T] as a response (Reads::Attention)
//! +4 blockNN.attn        W_o's output, weight W_o
//! +5 blockNN.mlp.fc1     fc1's output, weight fc1; its response is the ReLU's output
//! +6 blockNN.mlp         fc2's output, weight fc2 (the block's main weight, the
//!                        FFN's second matrix of Xiong et al.'s Fig. 3)
//! +7 blockNN             the block's output [T, d] (Reads::Tokens), on the trunk,
//!                        also recorded as its own response
//! ```
//!
//! and `head` last (index 1 + 8L). Only the block outputs are on the
//! trunk: one kind of point, in depth order.

use crate::{mark, respond, Activation, Init, ModelError, Network, ProbePoint, Reads, Recording};
use crate::{Variant, Variant::*};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Probe points per block (see the module docs).
pub const POINTS_PER_BLOCK: usize = 8;

/// The patch side when the file gives none.
pub const DEFAULT_PATCH: i64 = 4;

/// Settings of one transformer; the spec's fields resolved for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerConfig {
    /// `[T, V]` (tokens) or `[C, H, W]` (images) per example.
    pub input_shape: Vec<i64>,
    /// Outputs of the head (classes).
    pub outputs: i64,
    /// `Some(k)`: the head reads each of the last k positions.
    pub steps: Option<usize>,
    /// Blocks, 1 or more.
    pub depth: usize,
    /// d, the width of every token.
    pub width: i64,
    /// h, which divides d.
    pub heads: i64,
    /// The MLP's hidden width is `mlp_ratio · d`.
    pub mlp_ratio: i64,
    /// The patch side p for images (`None`: [`DEFAULT_PATCH`]); refused
    /// on token data.
    pub patch: Option<i64>,
    /// Each position attends to itself and earlier ones only.
    pub causal: bool,
    pub init: Init,
    pub variant: Variant,
}

/// What the input is, worked out from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Tokens { length: i64, vocab: i64 },
    Image { grid: (i64, i64), patch: i64 },
}

/// One block's weights.
#[derive(Debug)]
struct Block {
    qkv: nn::Linear,
    wo: nn::Linear,
    fc1: nn::Linear,
    fc2: nn::Linear,
    /// LayerNorm (γ, β) before or after each sublayer, where the layout has one.
    norms: Option<[(Tensor, Tensor); 2]>,
    /// ReZero's α per sublayer.
    alphas: Option<[Tensor; 2]>,
}

/// A transformer on tokens or image patches (see the module docs).
#[derive(Debug)]
pub struct Transformer {
    config: TransformerConfig,
    input: Input,
    /// Tokens per example (patches plus the class token, for images).
    tokens: i64,
    embed: nn::Linear,
    cls: Option<Tensor>,
    pos: Tensor,
    blocks: Vec<Block>,
    /// pre-ln's LayerNorm before the head.
    final_norm: Option<(Tensor, Tensor)>,
    head: nn::Linear,
    points: Vec<ProbePoint>,
}

fn invalid(field: &str, message: String) -> ModelError {
    ModelError::Invalid {
        field: field.into(),
        message,
    }
}

/// `block03` or, with a kind, `block03.attn.q`: zero-padded as
/// [`crate::point_name`] pads, so the names sort in depth order. Without
/// a kind it is also the var-store segment.
pub fn block_name(index: usize, count: usize, kind: &str) -> String {
    let digits = count.saturating_sub(1).to_string().len().max(2);
    if kind.is_empty() {
        format!("block{index:0digits$}")
    } else {
        format!("block{index:0digits$}.{kind}")
    }
}

/// The variants this family builds, as an error names them.
const BUILDS: &str = "\"plain\", \"residual\", \"rezero\", \"post-ln\" and \"pre-ln\"";

/// The refusal of a variant the transformer does not build (highway),
/// for the constructor and the file's checks alike.
pub fn check_variant(variant: Variant) -> Result<(), String> {
    match variant {
        Highway => Err(format!(
            "\"highway\" is not built by the transformer family, which builds {BUILDS}"
        )),
        _ => Ok(()),
    }
}

/// The refusal of `model.heads` that does not divide `model.width`.
pub fn check_heads(width: i64, heads: i64) -> Result<(), String> {
    if heads < 1 || width % heads != 0 {
        return Err(format!(
            "{heads} does not divide model.width {width} (each head has width / heads dimensions)"
        ));
    }
    Ok(())
}

impl TransformerConfig {
    /// The sizes a transformer can be built with, and its input.
    fn check(&self) -> Result<Input, ModelError> {
        check_variant(self.variant).map_err(|m| invalid("variants", m))?;
        if self.init == Init::Fixup {
            return Err(invalid(
                "model.init",
                "\"fixup\" is built for the mlp family only (so far)".into(),
            ));
        }
        if self.depth < 1 {
            return Err(invalid(
                "depths",
                "0 blocks: the transformer's depth is its number of blocks, 1 or more".into(),
            ));
        }
        if self.width < 1 {
            return Err(invalid(
                "model.width",
                format!("{} must be at least 1", self.width),
            ));
        }
        check_heads(self.width, self.heads).map_err(|m| invalid("model.heads", m))?;
        if self.mlp_ratio < 1 {
            return Err(invalid(
                "model.mlp_ratio",
                format!("{} must be at least 1", self.mlp_ratio),
            ));
        }
        if self.outputs < 1 {
            return Err(invalid(
                "dataset",
                format!("{} outputs cannot feed a head", self.outputs),
            ));
        }
        let input = match *self.input_shape.as_slice() {
            [length, vocab] => {
                if let Some(p) = self.patch {
                    return Err(invalid(
                        "model.patch",
                        format!("{p} is for image data; token data ([length, vocab] per example) has no patches: leave it out"),
                    ));
                }
                if length < 1 || vocab < 1 {
                    return Err(invalid(
                        "dataset",
                        format!("sequences of shape {:?} cannot feed a transformer", self.input_shape),
                    ));
                }
                Input::Tokens { length, vocab }
            }
            [c, h, w] => {
                let p = self.patch.unwrap_or(DEFAULT_PATCH);
                if p < 1 || c < 1 || h % p != 0 || w % p != 0 || h < p || w < p {
                    return Err(invalid(
                        "model.patch",
                        format!("{p} does not divide the {h}×{w} image"),
                    ));
                }
                Input::Image {
                    grid: (h / p, w / p),
                    patch: p,
                }
            }
            _ => {
                return Err(invalid(
                    "model.family",
                    format!(
                        "transformer needs token sequences ([length, vocab]) or images ([channels, height, width]), not {:?}",
                        self.input_shape
                    ),
                ))
            }
        };
        match (self.steps, input) {
            (Some(k), Input::Tokens { length, .. }) if k == 0 || k as i64 > length => Err(invalid(
                "dataset",
                format!("a sequence of {length} tokens cannot output at its last {k}"),
            )),
            (Some(_), Input::Image { .. }) => Err(invalid(
                "dataset",
                "a target of several steps needs token data, not images".into(),
            )),
            _ => Ok(input),
        }
    }
}

/// A `Linear(fan_in, fan_out)` under `p` initialized by `init`.
fn linear(p: nn::Path, fan_in: i64, fan_out: i64, init: Init, bias: bool) -> nn::Linear {
    let (ws_init, bs_init) = init.weight_and_bias(fan_in, fan_out);
    nn::linear(
        p,
        fan_in,
        fan_out,
        nn::LinearConfig {
            ws_init,
            bs_init: bias.then_some(bs_init),
            bias,
        },
    )
}

/// GPT-2's and ViT's N(0, 0.02²) for embeddings and positions.
const EMBED_INIT: nn::Init = nn::Init::Randn {
    mean: 0.0,
    stdev: 0.02,
};

/// PyTorch's `nn.LayerNorm(d)` parameters: γ = 1, β = 0.
fn layer_norm_params(p: nn::Path, d: i64) -> (Tensor, Tensor) {
    (
        p.var("weight", &[d], nn::Init::Const(1.0)),
        p.var("bias", &[d], nn::Init::Const(0.0)),
    )
}

/// LayerNorm over the last dimension with PyTorch's eps.
fn layer_norm(x: &Tensor, (gamma, beta): &(Tensor, Tensor)) -> Tensor {
    x.layer_norm([x.size()[2]], Some(gamma), Some(beta), 1e-5, true)
}

impl Transformer {
    /// Builds the net under `p`. Every weight drawn at random is created
    /// first, in forward order, and the LayerNorms and ReZero's α (which
    /// start at constants) after them, so the same seed gives every
    /// variant the same weights: the twins differ by their layout alone.
    pub fn new(p: &nn::Path, config: TransformerConfig) -> Result<Transformer, ModelError> {
        let input = config.check()?;
        let (d, c, l) = (config.width, &config, config.depth);
        let (embed, cls, tokens) = match input {
            Input::Tokens { length, vocab } => {
                let embed = nn::linear(
                    p / "embed",
                    vocab,
                    d,
                    nn::LinearConfig {
                        ws_init: EMBED_INIT,
                        bs_init: None,
                        bias: false,
                    },
                );
                (embed, None, length)
            }
            Input::Image { grid, patch } => {
                let fan_in = c.input_shape[0] * patch * patch;
                let embed = linear(p / "embed", fan_in, d, c.init, true);
                let cls = p.var("cls", &[1, 1, d], EMBED_INIT);
                (embed, Some(cls), grid.0 * grid.1 + 1)
            }
        };
        let pos = p.var("pos", &[tokens, d], EMBED_INIT);
        let hidden = c.mlp_ratio * d;
        let mut blocks: Vec<Block> = (0..l)
            .map(|i| {
                let b = p / block_name(i, l, "");
                Block {
                    qkv: linear(&b / "attn" / "qkv", d, 3 * d, c.init, true),
                    wo: linear(&b / "attn" / "out", d, d, c.init, true),
                    fc1: linear(&b / "mlp" / "fc1", d, hidden, c.init, true),
                    fc2: linear(&b / "mlp" / "fc2", hidden, d, c.init, true),
                    norms: None,
                    alphas: None,
                }
            })
            .collect();
        let head = linear(p / "head", d, c.outputs, c.init, true);
        let has_ln = matches!(c.variant, Plain | PostLn | PreLn);
        for (i, block) in blocks.iter_mut().enumerate() {
            let b = p / block_name(i, l, "");
            if has_ln {
                block.norms = Some([
                    layer_norm_params(&b / "attn" / "ln", d),
                    layer_norm_params(&b / "mlp" / "ln", d),
                ]);
            }
            if c.variant == Rezero {
                let alpha = |s: &str| (&b / s).var("alpha", &[1], nn::Init::Const(0.0));
                block.alphas = Some([alpha("attn"), alpha("mlp")]);
            }
        }
        let final_norm = (c.variant == PreLn).then(|| layer_norm_params(p / "ln_final", d));
        let points = probe_points(&config, &embed, &blocks, &head, tokens);
        Ok(Transformer {
            config,
            input,
            tokens,
            embed,
            cls,
            pos,
            blocks,
            final_norm,
            head,
            points,
        })
    }

    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    /// Tokens per example: the sequence length, or the patches plus the
    /// class token.
    pub fn tokens(&self) -> i64 {
        self.tokens
    }

    /// The index of block `i`'s first probe point (`blockNN.attn.q`).
    pub fn block_point(i: usize) -> usize {
        1 + POINTS_PER_BLOCK * i
    }

    /// The embedded input plus positions, `[batch, tokens, d]`.
    fn embed(&self, x: &Tensor) -> Tensor {
        let h = match self.input {
            Input::Tokens { .. } => self.embed.forward(x),
            Input::Image { grid, patch } => {
                let s = x.size();
                let (b, ch) = (s[0], s[1]);
                // [B, C, gh·p, gw·p] → [B, gh, gw, C, p, p]: each patch's
                // values in (channel, row, column) order, a conv weight's.
                let patches = x
                    .reshape([b, ch, grid.0, patch, grid.1, patch])
                    .permute([0, 2, 4, 1, 3, 5])
                    .reshape([b, grid.0 * grid.1, ch * patch * patch]);
                let cls = self.cls.as_ref().expect("an image net's class token");
                Tensor::cat(
                    &[cls.expand([b, 1, -1], false), self.embed.forward(&patches)],
                    1,
                )
            }
        };
        h + &self.pos
    }

    /// Multi-head self-attention on `x` (`[batch, T, d]`), through W_o;
    /// records block `i`'s probabilities and W_o's output.
    fn attention(&self, i: usize, x: &Tensor, rec: Option<&Recording>) -> Tensor {
        let base = Self::block_point(i);
        let blk = &self.blocks[i];
        let (b, t, d) = (x.size()[0], x.size()[1], self.config.width);
        let h = self.config.heads;
        let (q, k, v) = split_heads(&blk.qkv.forward(x), h);
        let probs = attention_probs(&q, &k, self.config.causal);
        respond(rec, base + 3, &probs);
        // [B, h, T, d/h] → [B, T, h, d/h] → [B, T, d]: heads concatenated.
        let ctx = probs.matmul(&v).transpose(1, 2).reshape([b, t, d]);
        mark(blk.wo.forward(&ctx), rec, base + 4)
    }

    /// The ReLU MLP on `x`; records fc1's output (its response the ReLU's)
    /// and fc2's.
    fn mlp(&self, i: usize, x: &Tensor, rec: Option<&Recording>) -> Tensor {
        let base = Self::block_point(i);
        let blk = &self.blocks[i];
        let a = mark(blk.fc1.forward(x), rec, base + 5).relu();
        respond(rec, base + 5, &a);
        mark(blk.fc2.forward(&a), rec, base + 6)
    }

    /// One sublayer `f` (0: attention, 1: MLP) of block `i` around `x`, in
    /// the layout of the run's variant (see the module docs).
    fn sublayer(&self, i: usize, s: usize, x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let blk = &self.blocks[i];
        let ln = |y: &Tensor| {
            let norms = blk.norms.as_ref().expect("an LN layout's norms");
            layer_norm(y, &norms[s])
        };
        match self.config.variant {
            Plain => ln(&f(x)),
            Residual => x + f(x),
            Rezero => {
                let alphas = blk.alphas.as_ref().expect("ReZero's α");
                x + f(x) * &alphas[s]
            }
            PostLn => ln(&(x + f(x))),
            PreLn => x + f(&ln(x)),
            Highway => unreachable!("refused by Transformer::new"),
        }
    }

    /// Block `i` on `x`, its output recorded (and recorded as its response).
    fn block(&self, i: usize, x: &Tensor, rec: Option<&Recording>) -> Tensor {
        let x = self.sublayer(i, 0, x, |y| self.attention(i, y, rec));
        let x = self.sublayer(i, 1, &x, |y| self.mlp(i, y, rec));
        let x = mark(x, rec, Self::block_point(i) + 7);
        respond(rec, Self::block_point(i) + 7, &x);
        x
    }
}

/// `qkv` (`[B, T, 3d]`, rows q, k, v) as q, k and v, each `[B, h, T, d/h]`.
fn split_heads(qkv: &Tensor, heads: i64) -> (Tensor, Tensor, Tensor) {
    let s = qkv.size();
    let (b, t, d) = (s[0], s[1], s[2] / 3);
    let parts = qkv
        .reshape([b, t, 3, heads, d / heads])
        .permute([2, 0, 3, 1, 4]);
    (parts.get(0), parts.get(1), parts.get(2))
}

/// softmax(q·kᵀ/√(d/h)) over keys, minus ∞ above the diagonal when
/// `causal` (a query sees itself and earlier keys): `[B, h, T, T]`.
pub fn attention_probs(q: &Tensor, k: &Tensor, causal: bool) -> Tensor {
    let dh = *q.size().last().expect("q has a head dimension");
    let scores = q.matmul(&k.transpose(-2, -1)) / (dh as f64).sqrt();
    let scores = if causal {
        let t = scores.size()[2];
        let above = Tensor::ones([t, t], (Kind::Bool, q.device())).triu(1);
        scores.masked_fill(&above, f64::NEG_INFINITY)
    } else {
        scores
    };
    scores.softmax(-1, scores.kind())
}

/// The probe points in forward order (see the module docs).
fn probe_points(
    c: &TransformerConfig,
    embed: &nn::Linear,
    blocks: &[Block],
    head: &nn::Linear,
    tokens: i64,
) -> Vec<ProbePoint> {
    let (d, l) = (c.width, c.depth);
    let point = |name: String, weight: Option<&Tensor>, shape: Vec<i64>, reads| ProbePoint {
        name,
        weight: weight.map(Tensor::shallow_clone),
        output_shape: shape,
        trunk: false,
        reads,
    };
    let mut points = vec![point(
        "embed".into(),
        Some(&embed.ws),
        vec![tokens, d],
        Reads::Output,
    )];
    for (i, b) in blocks.iter().enumerate() {
        let name = |kind: &str| block_name(i, l, kind);
        for (j, part) in ["attn.q", "attn.k", "attn.v"].iter().enumerate() {
            let first_row = j as i64 * d;
            let rows = b.qkv.ws.narrow(0, first_row, d);
            points.push(point(
                name(part),
                Some(&rows),
                vec![tokens, d],
                Reads::WeightRows {
                    parameter: b.qkv.ws.shallow_clone(),
                    first_row,
                },
            ));
        }
        let heads = c.heads;
        points.push(point(
            name("attn.probs"),
            None,
            vec![heads, tokens, tokens],
            Reads::Attention { heads },
        ));
        points.push(point(
            name("attn"),
            Some(&b.wo.ws),
            vec![tokens, d],
            Reads::Output,
        ));
        points.push(point(
            name("mlp.fc1"),
            Some(&b.fc1.ws),
            vec![tokens, c.mlp_ratio * d],
            Reads::Output,
        ));
        points.push(point(
            name("mlp"),
            Some(&b.fc2.ws),
            vec![tokens, d],
            Reads::Output,
        ));
        points.push(ProbePoint {
            trunk: true,
            ..point(name(""), None, vec![tokens, d], Reads::Tokens)
        });
    }
    let head_shape = match c.steps {
        Some(k) => vec![k as i64, c.outputs],
        None => vec![c.outputs],
    };
    points.push(point(
        "head".into(),
        Some(&head.ws),
        head_shape,
        Reads::Output,
    ));
    points
}

impl Network for Transformer {
    /// `x` is `[batch, T, V]` or `[batch, C, H, W]`; the output is
    /// `[batch, outputs]`, or `[batch, k, outputs]` for a sequence head.
    fn forward(&self, x: &Tensor, _train: bool, rec: Option<&Recording>) -> Tensor {
        let mut h = mark(self.embed(x), rec, 0);
        for i in 0..self.blocks.len() {
            h = self.block(i, &h, rec);
        }
        if let Some(norm) = &self.final_norm {
            h = layer_norm(&h, norm);
        }
        let read = match (self.config.steps, self.input) {
            (Some(k), _) => h.narrow(1, self.tokens - k as i64, k as i64),
            (None, Input::Image { .. }) => h.select(1, 0),
            (None, Input::Tokens { .. }) => h.mean_dim(1, false, h.kind()),
        };
        mark(self.head.forward(&read), rec, self.points.len() - 1)
    }

    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }

    /// ReLU, the MLP's nonlinearity.
    fn activation(&self) -> Activation {
        Activation::Relu
    }

    /// Multiplications per example: the embedding (T·in·d), per block
    /// q, k, v (3·T·d²), the scores and the weighted sum (T²·d each, over
    /// all heads), W_o (T·d²) and the MLP (2·r·T·d²), and the head (once
    /// per position it reads). Calls: the embedding, six per block (four
    /// weight layers, two attention products), the head.
    fn unrolled_cost(&self) -> Option<(i64, usize)> {
        let c = &self.config;
        let (t, d, r) = (self.tokens, c.width, c.mlp_ratio);
        let embed_in = self.embed.ws.size()[1];
        let embedded = match self.input {
            Input::Tokens { .. } => t,
            Input::Image { .. } => t - 1,
        };
        let per_block = 3 * t * d * d + 2 * t * t * d + t * d * d + 2 * r * t * d * d;
        let reads = c.steps.unwrap_or(1) as i64;
        let mults = embedded * embed_in * d + c.depth as i64 * per_block + reads * d * c.outputs;
        Some((mults, 2 + 6 * c.depth))
    }
}

#[cfg(test)]
#[path = "transformer_tests.rs"]
mod tests;
