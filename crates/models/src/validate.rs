//! [`ModelSpec::validate`]: the model section's checks that serde cannot
//! make (a width in range, an init's numbers, a depth each family can
//! build, the variants a family builds), against the depths and the kind
//! of data the experiment gives it. Failures name the field as the
//! experiment file writes it (`model.width`, `depths[2]`).

use crate::bottleneck::stage_blocks;
use crate::cnn::blocks_per_stage;
use crate::spec::{
    Axis, BottleneckSpec, CnnSpec, InceptionSpec, MlpSpec, ModelSpec, RnnSpec, TransformerSpec,
};
use crate::{Init, Variant};
use gradscope_data::validate::Invalid;

impl ModelSpec {
    /// Checks the model section for an experiment that trains `variants`
    /// at `depths` on image data (`image_data`) or on vectors.
    pub fn validate(
        &self,
        variants: &[Variant],
        depths: &[usize],
        image_data: bool,
    ) -> Result<(), Invalid> {
        let mlp_or_cnn = matches!(self, ModelSpec::Mlp(_) | ModelSpec::Cnn(_));
        // The rnn family names its own refusal of every variant but plain,
        // the transformer its refusal of highway.
        let rnn = matches!(self, ModelSpec::Rnn(_));
        let transformer = matches!(self, ModelSpec::Transformer(_));
        for (i, v) in variants.iter().enumerate() {
            if transformer {
                continue;
            }
            if v.is_ln_layout() {
                return Invalid::refuse(
                    format!("variants[{i}]"),
                    format!("{:?} is built for the transformer family only", v.as_str()),
                );
            }
            if matches!(v, Variant::Rezero | Variant::Highway) && !mlp_or_cnn && !rnn {
                return Invalid::refuse(
                    format!("variants[{i}]"),
                    format!(
                        "{:?} is built for the mlp and cnn families only",
                        v.as_str()
                    ),
                );
            }
        }
        let image = |family, width, min_width, init| ImageFamily {
            family,
            width,
            min_width,
            init,
            depths,
            image_data,
        };
        match self {
            ModelSpec::Mlp(MlpSpec { width, init, .. }) => {
                if !(1..=65_536).contains(width) {
                    return Invalid::refuse(
                        "model.width",
                        format!("{width} must be between 1 and 65536"),
                    );
                }
                inits_ok(init)
            }
            ModelSpec::Cnn(CnnSpec { width, init, .. }) => {
                no_fixup(init)?;
                image("cnn", *width, 1, init).check(blocks_per_stage)
            }
            ModelSpec::Bottleneck(BottleneckSpec { width, init, .. }) => {
                no_fixup(init)?;
                image("bottleneck", *width, 1, init).check(stage_blocks)
            }
            ModelSpec::Inception(InceptionSpec { width, init, .. }) => {
                no_fixup(init)?;
                // The 5×5 reduction has width/4 filters.
                image("inception", *width, 4, init).check(|d| match d {
                    ..=64 => Ok(()),
                    _ => Err(format!("{d} Inception modules: at most 64")),
                })
            }
            ModelSpec::Rnn(r) => rnn_ok(r, variants, depths, image_data),
            ModelSpec::Transformer(t) => transformer_ok(t, variants, depths, image_data),
        }
    }
}

/// The transformer family: every variant but highway, `heads` dividing
/// `width`, sizes in range, `patch` on images only, 1 block or more. That
/// the patch divides the image is checked where the image's size is known
/// (building the net; `gradscope check` builds every run's).
fn transformer_ok(
    t: &TransformerSpec,
    variants: &[Variant],
    depths: &[usize],
    image_data: bool,
) -> Result<(), Invalid> {
    for (i, v) in variants.iter().enumerate() {
        crate::transformer::check_variant(*v)
            .map_err(|m| Invalid::new(format!("variants[{i}]"), m))?;
    }
    if !(1..=4096).contains(&t.width) {
        return Invalid::refuse(
            "model.width",
            format!("{} must be between 1 and 4096", t.width),
        );
    }
    crate::transformer::check_heads(t.width, t.heads)
        .map_err(|m| Invalid::new("model.heads", m))?;
    if !(1..=64).contains(&t.mlp_ratio) {
        return Invalid::refuse(
            "model.mlp_ratio",
            format!("{} must be between 1 and 64", t.mlp_ratio),
        );
    }
    match t.patch {
        Some(p) if !image_data => {
            return Invalid::refuse(
                "model.patch",
                format!("{p} is for image data; token data ([length, vocab] per example) has no patches: leave it out"),
            )
        }
        Some(p) if !(1..=1024).contains(&p) => {
            return Invalid::refuse("model.patch", format!("{p} must be between 1 and 1024"))
        }
        _ => {}
    }
    no_fixup(&t.init)?;
    inits_ok(&t.init)?;
    for (i, &d) in depths.iter().enumerate() {
        if d == 0 {
            return Invalid::refuse(
                format!("depths[{i}]"),
                "0 blocks: the transformer family's depths count blocks, 1 or more",
            );
        }
    }
    Ok(())
}

/// The rnn family: plain only (the cell is its twin axis), sequence
/// data, a width and a stack in range, lengths (`depths`) of 1 or more.
fn rnn_ok(
    r: &RnnSpec,
    variants: &[Variant],
    depths: &[usize],
    image_data: bool,
) -> Result<(), Invalid> {
    for (i, v) in variants.iter().enumerate() {
        crate::rnn::check_variant(*v).map_err(|m| Invalid::new(format!("variants[{i}]"), m))?;
    }
    if image_data {
        return Invalid::refuse(
            "model.family",
            "rnn needs sequence data (dataset kind \"adding\" or \"copy\", or \"mnist\", \"fashion-mnist\" or \"cifar10\" with dataset.sequence \"rows\" or \"pixels\"), not images",
        );
    }
    if !(1..=4096).contains(&r.width) {
        return Invalid::refuse(
            "model.width",
            format!("{} must be between 1 and 4096", r.width),
        );
    }
    if !(1..=16).contains(&r.layers) {
        return Invalid::refuse(
            "model.layers",
            format!("{} must be between 1 and 16", r.layers),
        );
    }
    if !r.forget_bias.is_finite() {
        return Invalid::refuse(
            "model.forget_bias",
            format!("{} must be a finite number", r.forget_bias),
        );
    }
    no_fixup(&r.init)?;
    inits_ok(&r.init)?;
    for (i, &d) in depths.iter().enumerate() {
        if d == 0 {
            return Invalid::refuse(
                format!("depths[{i}]"),
                "a sequence length of 0: the rnn family's depths are sequence lengths, 1 or more",
            );
        }
    }
    Ok(())
}

/// Fixup's rescaling is written for the MLP's residual blocks.
fn no_fixup(init: &Axis<Init>) -> Result<(), Invalid> {
    if init.values().contains(&Init::Fixup) {
        return Invalid::refuse(
            "model.init",
            "\"fixup\" is built for the mlp family only (so far)",
        );
    }
    Ok(())
}

/// What every convolutional family checks alike.
struct ImageFamily<'a> {
    family: &'a str,
    width: i64,
    min_width: i64,
    init: &'a Axis<Init>,
    depths: &'a [usize],
    image_data: bool,
}

impl ImageFamily<'_> {
    /// Image data, a width in `min_width..=1024`, an init's numbers in
    /// range, and `depth_ok` for every depth.
    fn check<T>(&self, depth_ok: impl Fn(usize) -> Result<T, String>) -> Result<(), Invalid> {
        let family = self.family;
        if !self.image_data {
            return Invalid::refuse("model.family", format!("{family} needs image data ([channels, height, width]); dataset kind \"synthetic\" gives vectors (use \"synthetic-images\")"));
        }
        let (width, min) = (self.width, self.min_width);
        if !(min..=1024).contains(&width) {
            return Invalid::refuse(
                "model.width",
                format!("{width} must be between {min} and 1024"),
            );
        }
        inits_ok(self.init)?;
        for (i, &d) in self.depths.iter().enumerate() {
            depth_ok(d).map_err(|m| Invalid::new(format!("depths[{i}]"), m))?;
        }
        Ok(())
    }
}

fn inits_ok(init: &Axis<Init>) -> Result<(), Invalid> {
    init.values().iter().try_for_each(init_ok)
}

/// The numbers inside an init: a std, gain or σ_w² above 0, a σ_b² of 0
/// or more, each finite.
fn init_ok(init: &Init) -> Result<(), Invalid> {
    let check = |field: &str, v: f64, zero_ok: bool| {
        if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) {
            return Ok(());
        }
        let what = if zero_ok { "0 or more" } else { "above 0" };
        Invalid::refuse(field, format!("{v} must be a finite number {what}"))
    };
    match *init {
        Init::Normal { std } => check("model.init.normal.std", std, false),
        Init::Orthogonal { gain } => check("model.init.orthogonal.gain", gain, false),
        Init::Variance { weight, bias } => {
            check("model.init.variance.weight", weight, false)?;
            check("model.init.variance.bias", bias, true)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(json: &str) -> ModelSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn cnn_refuses_vectors_and_depths_off_6n_plus_2() {
        // He et al. 2016 §4.2: the CIFAR nets have 6n + 2 layers.
        let cnn = model(r#"{"family": "cnn"}"#);
        assert!(cnn.validate(&[Variant::Plain], &[20, 56], true).is_ok());
        let e = cnn
            .validate(&[Variant::Plain], &[20, 21], true)
            .unwrap_err();
        assert_eq!(e.field, "depths[1]", "{e:?}");
        let e = cnn.validate(&[Variant::Plain], &[20], false).unwrap_err();
        assert_eq!(e.field, "model.family", "{e:?}");
    }

    /// Issue 34: the rnn family builds plain only (its cells are the
    /// twins), on sequences, at lengths of 1 or more.
    #[test]
    fn rnn_refuses_other_variants_images_and_a_length_of_0() {
        let rnn = model(r#"{"family": "rnn", "width": 8, "cell": ["tanh", "gru"]}"#);
        assert!(rnn.validate(&[Variant::Plain], &[10, 50], false).is_ok());
        let e = rnn
            .validate(&[Variant::Plain, Variant::Highway], &[10], false)
            .unwrap_err();
        assert_eq!(e.field, "variants[1]", "{e:?}");
        assert!(e.message.contains("model.cell"), "{e:?}");
        let e = rnn
            .validate(&[Variant::Plain], &[10, 0], false)
            .unwrap_err();
        assert_eq!(e.field, "depths[1]", "{e:?}");
        let e = rnn.validate(&[Variant::Plain], &[10], true).unwrap_err();
        assert_eq!(e.field, "model.family", "{e:?}");
        let e =
            serde_json::from_str::<ModelSpec>(r#"{"family": "rnn", "width": 8, "cell": "rnn"}"#)
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("model.cell: unknown variant `rnn`"), "{e}");
    }

    /// Issue 35: the transformer builds every variant but highway, with
    /// heads dividing the width, a patch on images only, 1 block or more.
    #[test]
    fn transformer_refusals_name_their_field() {
        let tf = model(r#"{"family": "transformer", "width": 32}"#);
        let all = [
            Variant::Plain,
            Variant::Residual,
            Variant::Rezero,
            Variant::PostLn,
            Variant::PreLn,
        ];
        assert!(tf.validate(&all, &[1, 4], true).is_ok());
        assert!(tf.validate(&all, &[1, 4], false).is_ok());
        let e = tf
            .validate(&[Variant::PreLn, Variant::Highway], &[2], true)
            .unwrap_err();
        assert_eq!(e.field, "variants[1]", "{e:?}");
        assert!(e.message.contains("\"pre-ln\""), "{e:?}");
        let e = tf.validate(&all, &[2, 0], true).unwrap_err();
        assert_eq!(e.field, "depths[1]", "{e:?}");
        let heads = model(r#"{"family": "transformer", "width": 32, "heads": 6}"#);
        let e = heads.validate(&all, &[2], true).unwrap_err();
        assert_eq!(e.field, "model.heads", "{e:?}");
        assert!(
            e.message.starts_with("6 does not divide model.width 32"),
            "{e:?}"
        );
        let patch = model(r#"{"family": "transformer", "width": 32, "patch": 7}"#);
        assert!(patch.validate(&all, &[2], true).is_ok());
        let e = patch.validate(&all, &[2], false).unwrap_err();
        assert_eq!(e.field, "model.patch", "{e:?}");
        let e = serde_json::from_str::<ModelSpec>(
            r#"{"family": "transformer", "width": 32, "depth": 3}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("depth"), "{e}");
        let e = serde_json::from_str::<ModelSpec>(r#"{"family": "transformers"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"transformer\""), "{e}");
    }

    #[test]
    fn variants_and_inits_a_family_cannot_build_are_named() {
        let inception = model(r#"{"family": "inception"}"#);
        let e = inception
            .validate(&[Variant::Plain, Variant::Highway], &[2], true)
            .unwrap_err();
        assert_eq!(e.field, "variants[1]", "{e:?}");
        let fixup = model(r#"{"family": "cnn", "init": "fixup"}"#);
        let e = fixup.validate(&[Variant::Plain], &[20], true).unwrap_err();
        assert_eq!(e.field, "model.init", "{e:?}");
        let bad = model(
            r#"{"family": "mlp", "width": 8, "activation": "tanh", "init": {"variance": {"weight": 1, "bias": -1}}}"#,
        );
        let e = bad.validate(&[Variant::Plain], &[4], false).unwrap_err();
        assert_eq!(e.field, "model.init.variance.bias", "{e:?}");
    }
}
