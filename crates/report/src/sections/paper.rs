//! He et al. (2016) Table 6 beside our CNN numbers; the only numbers in the report
//! that are not ours (marked as theirs).

use super::{cfg_str, pct_stat};
use crate::analysis::stat;
use crate::runs::Loaded;
use std::fmt::Write as _;

/// He et al. 2016, Table 6: CIFAR-10 test error (%) of their ResNets.
pub(crate) const HE_TABLE6_RESNET: [(u32, f64); 5] =
    [(20, 8.75), (32, 7.51), (44, 7.17), (56, 6.97), (110, 6.43)];

pub(crate) fn paper(md: &mut String, loaded: &Loaded) {
    let config = loaded.config();
    mdln!(md, "## Beside the paper");
    mdln!(md);
    let family = cfg_str(config, "/model/family").unwrap_or("?");
    let dataset = cfg_str(config, "/dataset/kind").unwrap_or("?");
    if family != "cnn" && family != "mlp" {
        mdln!(
            md,
            "He et al. (2016) Table 6 is for their CIFAR CNNs (family `cnn`); this family (`{family}`) has no numbers of theirs to set beside ours."
        );
        mdln!(md);
        return;
    }
    if family == "mlp" {
        mdln!(
            md,
            "He et al. (2016) report no MLP results. What carries over is the trend of their Fig. 6 \
             (theirs, CIFAR-10 CNNs): with BatchNorm, plain-56 has a higher training error than \
             plain-20 throughout training, while ResNet-56 has a lower one than ResNet-20. Our trend \
             is in \"What the numbers show\" above."
        );
        mdln!(md);
        return;
    }
    mdln!(
        md,
        "**Theirs**: He et al. (2016), Table 6, CIFAR-10 test error of ResNets trained 64k \
         iterations with augmentation; their plain nets (Fig. 6) get worse with depth, no table \
         values. **Ours**: this experiment ({dataset}, the budget above). The settings differ \
         (dataset, training length), so compare trends, not values."
    );
    mdln!(md);
    mdln!(
        md,
        "| depth | theirs: ResNet test error % (CIFAR-10) | ours: residual test % | ours: plain test % | ours: residual train % | ours: plain train % |"
    );
    mdln!(md, "|---|---|---|---|---|---|");
    let mut depths: Vec<u32> = loaded.depths();
    depths.extend(HE_TABLE6_RESNET.iter().map(|&(d, _)| d));
    depths.sort_unstable();
    depths.dedup();
    let ours = |v: &str, d: u32, test: bool| {
        pct_stat(stat(
            loaded
                .group(v, d)
                .iter()
                .filter(|e| e.is_completed())
                .map(|e| {
                    e.record.as_ref().and_then(|r| {
                        if test {
                            r.final_metrics.test_error
                        } else {
                            r.final_metrics.train_error
                        }
                    })
                }),
        ))
    };
    for d in depths {
        let theirs = HE_TABLE6_RESNET
            .iter()
            .find(|&&(pd, _)| pd == d)
            .map_or("—".into(), |&(_, e)| format!("{e:.2}"));
        mdln!(
            md,
            "| {d} | {theirs} | {} | {} | {} | {} |",
            ours("residual", d, true),
            ours("plain", d, true),
            ours("residual", d, false),
            ours("plain", d, false)
        );
    }
    mdln!(md);
}
