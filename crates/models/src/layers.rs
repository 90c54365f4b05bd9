//! Building blocks of the ImageNet-style families ([`crate::bottleneck`],
//! [`crate::inception`]): a convolution + BN unit that registers its probe
//! point and records its geometry as a [`LayerCost`] while it is built.
//!
//! Recording the cost at construction, from the layer that is actually
//! built, is what lets `gradscope cost` count the network gradscope trains
//! rather than a second, hand-written description of it.

use crate::{mark, respond, Init, ModelError, Norm, ProbePoint, Reads, Recording};
use serde::Serialize;
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// `[channels, height, width]` of one example.
pub type Shape = [i64; 3];

/// What a counted layer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LayerOp {
    /// A `k×k` convolution with this stride and zero padding (groups = 1).
    Conv { k: i64, stride: i64, pad: i64 },
    /// A fully connected layer; `input` is `[features, 1, 1]`.
    Linear,
}

/// One weight layer: its shapes, multiplications and parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerCost {
    /// The probe-point name (`stage3.block1.conv2`, `3a.b5x5`).
    pub name: String,
    pub op: LayerOp,
    pub input: Shape,
    pub output: Shape,
    /// Trainable parameters of the layer and of its BN (affine γ, β).
    pub params: i64,
}

impl LayerCost {
    /// Multiplications of one forward pass for one example: every output
    /// value is a dot product of `c_in · k · k` terms (Szegedy et al. 2015
    /// and the usual 1×1 argument count the same way; bias additions and BN
    /// are not multiplications of the layer's weights and are left out).
    pub fn mults(&self) -> i64 {
        let [c_out, h, w] = self.output;
        match self.op {
            LayerOp::Conv { k, .. } => c_out * h * w * self.input[0] * k * k,
            LayerOp::Linear => self.input[0] * c_out,
        }
    }

    /// `conv 5×5/1 192→32` or `fc 2048→6`.
    pub fn describe(&self) -> String {
        match self.op {
            LayerOp::Conv { k, stride, .. } => {
                format!("conv {k}×{k}/{stride} {}→{}", self.input[0], self.output[0])
            }
            LayerOp::Linear => format!("fc {}→{}", self.input[0], self.output[0]),
        }
    }
}

/// PyTorch's output size of a convolution or pooling window.
pub fn out_size(size: i64, k: i64, stride: i64, pad: i64) -> i64 {
    (size + 2 * pad - k) / stride + 1
}

/// A convolution (no bias: BN's β plays its part, the torchvision
/// convention the papers' parameter counts assume), its BN and probe point.
#[derive(Debug)]
pub struct ConvUnit {
    conv: nn::Conv2D,
    bn: Option<nn::BatchNorm>,
    /// Index of the conv's probe point.
    pub point: usize,
    pub output: Shape,
}

impl ConvUnit {
    /// conv (its output is the probe point) → BN (no nonlinearity: callers
    /// decide where the ReLU goes, e.g. after the shortcut addition).
    pub fn forward(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        let h = mark(self.conv.forward(x), rec, self.point);
        match &self.bn {
            Some(bn) => bn.forward_t(&h, train),
            None => h,
        }
    }

    /// Starts the unit's output at 0, as the last unit of a residual branch
    /// under `branch_init: "zero"`: BN's γ (zero-γ, Goyal et al. 2017), or
    /// the conv's weight without BN (SkipInit).
    pub fn start_at_zero(&mut self) {
        tch::no_grad(|| {
            let _ = match self.bn.as_mut() {
                Some(bn) => bn.ws.as_mut().map(|w| w.zero_()),
                None => Some(self.conv.ws.zero_()),
            };
        });
    }

    /// [`ConvUnit::forward`], recording the result as this layer's response
    /// (He et al. Fig. 7: the BN output, before the addition and the ReLU).
    pub fn forward_recorded(&self, x: &Tensor, train: bool, rec: Option<&Recording>) -> Tensor {
        let h = self.forward(x, train, rec);
        respond(rec, self.point, &h);
        h
    }
}

/// An NCHW tensor with NHWC strides (PyTorch's `channels_last`): tch has no
/// memory-format argument, but libtorch picks the layout from the strides.
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Builds layers under one var-store path and collects their probe points
/// and costs in forward order.
pub struct Layers<'a> {
    p: nn::Path<'a>,
    pub init: Init,
    pub norm: Norm,
    pub channels_last: bool,
    pub points: Vec<ProbePoint>,
    pub costs: Vec<LayerCost>,
}

impl<'a> Layers<'a> {
    pub fn new(p: nn::Path<'a>, init: Init, norm: Norm, channels_last: bool) -> Layers<'a> {
        Layers {
            p,
            init,
            norm,
            channels_last,
            points: Vec::new(),
            costs: Vec::new(),
        }
    }

    /// The var-store path of a dotted name (tch forbids `.` inside a segment).
    fn path(&self, name: &str) -> nn::Path<'a> {
        name.split('.').fold(self.p.clone(), |p, seg| p / seg)
    }

    /// A `k×k` convolution with `c_out` filters, "same" padding (`k/2`) and
    /// `stride`, on an input of shape `input`. Fails, naming the layer, when
    /// the input cannot be downsampled any further.
    pub fn conv(
        &mut self,
        name: &str,
        input: Shape,
        c_out: i64,
        k: i64,
        stride: i64,
    ) -> Result<ConvUnit, ModelError> {
        let [c_in, h, w] = input;
        let pad = k / 2;
        if stride > 1 && (h < 2 || w < 2) {
            return Err(too_small(
                name,
                input,
                &format!("a stride-{stride} {k}×{k} convolution"),
            ));
        }
        let output = [
            c_out,
            out_size(h, k, stride, pad),
            out_size(w, k, stride, pad),
        ];
        let (ws_init, refill) = self.init.conv_weight(c_in * k * k, c_out * k * k);
        let cfg = nn::ConvConfig {
            stride,
            padding: pad,
            bias: false,
            ws_init,
            ..Default::default()
        };
        let mut conv = nn::conv2d(self.path(name), c_in, c_out, k, cfg);
        if refill {
            self.init.fill(&mut conv.ws);
        }
        if self.channels_last {
            let nhwc = channels_last(&conv.ws);
            tch::no_grad(|| conv.ws.set_data(&nhwc));
        }
        let bn = match self.norm {
            Norm::None => None,
            Norm::Batchnorm => Some(nn::batch_norm2d(
                self.path(&format!("{name}_bn")),
                c_out,
                nn::BatchNormConfig {
                    // PyTorch's defaults (tch's own γ init is U(0, 1)).
                    ws_init: nn::Init::Const(1.0),
                    bs_init: nn::Init::Const(0.0),
                    ..Default::default()
                },
            )),
        };
        let bn_params = if bn.is_some() { 2 * c_out } else { 0 };
        self.points.push(ProbePoint {
            name: name.to_string(),
            weight: Some(conv.ws.shallow_clone()),
            output_shape: output.to_vec(),
            trunk: false,
            reads: Reads::Output,
        });
        self.costs.push(LayerCost {
            name: name.to_string(),
            op: LayerOp::Conv { k, stride, pad },
            input,
            output,
            params: c_in * c_out * k * k + bn_params,
        });
        Ok(ConvUnit {
            conv,
            bn,
            point: self.points.len() - 1,
            output,
        })
    }

    /// A weightless probe point (a block's or module's output): a trunk point.
    pub fn point(&mut self, name: &str, shape: Shape) -> usize {
        self.points.push(ProbePoint {
            name: name.to_string(),
            weight: None,
            output_shape: shape.to_vec(),
            trunk: true,
            reads: Reads::Output,
        });
        self.points.len() - 1
    }

    /// The classifier on pooled features; returns it and its probe point.
    pub fn linear(&mut self, name: &str, c_in: i64, classes: i64) -> (nn::Linear, usize) {
        let (ws_init, bs_init) = self.init.weight_and_bias(c_in, classes);
        let fc = nn::linear(
            self.path(name),
            c_in,
            classes,
            nn::LinearConfig {
                ws_init,
                bs_init: Some(bs_init),
                bias: true,
            },
        );
        self.points.push(ProbePoint {
            name: name.to_string(),
            weight: Some(fc.ws.shallow_clone()),
            output_shape: vec![classes],
            trunk: false,
            reads: Reads::Output,
        });
        self.costs.push(LayerCost {
            name: name.to_string(),
            op: LayerOp::Linear,
            input: [c_in, 1, 1],
            output: [classes, 1, 1],
            params: c_in * classes + classes,
        });
        (fc, self.points.len() - 1)
    }
}

/// The error for an input a layer cannot take; `field` is `dataset`, where
/// the input shape comes from.
pub fn too_small(layer: &str, input: Shape, what: &str) -> ModelError {
    let [c, h, w] = input;
    ModelError::Invalid {
        field: "dataset".into(),
        message: format!(
            "layer {layer}: its input {c}×{h}×{w} is too small for {what} (the input image is too small for this network's downsampling)"
        ),
    }
}

/// Max-pooling output shape, failing (naming `layer`) where the map is too
/// small for the window.
pub fn pool_shape(
    layer: &str,
    input: Shape,
    k: i64,
    stride: i64,
    pad: i64,
) -> Result<Shape, ModelError> {
    let [c, h, w] = input;
    if h + 2 * pad < k || w + 2 * pad < k || (stride > 1 && (h < 2 || w < 2)) {
        return Err(too_small(
            layer,
            input,
            &format!("a {k}×{k}/{stride} max-pool"),
        ));
    }
    Ok([c, out_size(h, k, stride, pad), out_size(w, k, stride, pad)])
}

/// `x` in the memory layout the net's weights use: channels-last (NHWC
/// strides) when asked, as is otherwise.
pub fn input_layout(x: &Tensor, channels_last: bool) -> Tensor {
    if channels_last {
        self::channels_last(x)
    } else {
        x.shallow_clone()
    }
}

/// The head of every convolutional family: global average pooling, then
/// the classifier, whose output is its probe point.
pub fn pooled_logits(h: &Tensor, fc: &nn::Linear, rec: Option<&Recording>, point: usize) -> Tensor {
    let pooled = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
    mark(fc.forward(&pooled), rec, point)
}
