//! He et al. (2016) Table 6 beside our CNN numbers; the only numbers in the report
//! that are not ours (marked as theirs).

use super::{cells, cfg_str, pct_stat};
use crate::analysis::stat;
use crate::page::Block;
use crate::runs::Loaded;

/// He et al. 2016, Table 6: CIFAR-10 test error (%) of their ResNets.
pub(crate) const HE_TABLE6_RESNET: [(u32, f64); 5] =
    [(20, 8.75), (32, 7.51), (44, 7.17), (56, 6.97), (110, 6.43)];

pub(crate) fn paper(loaded: &Loaded) -> Vec<Block> {
    let config = loaded.config();
    let mut out = vec![Block::Heading(2, "Beside the paper".to_owned())];
    let family = cfg_str(config, "/model/family").unwrap_or("?");
    let dataset = cfg_str(config, "/dataset/kind").unwrap_or("?");
    if family != "cnn" && family != "mlp" {
        out.push(Block::Para(format!(
            "He et al. (2016) Table 6 is for their CIFAR CNNs (family `cnn`); this family (`{family}`) has no numbers of theirs to set beside ours."
        )));
        return out;
    }
    if family == "mlp" {
        out.push(Block::Para(
            "He et al. (2016) report no MLP results. What carries over is the trend of their Fig. 6 \
             (theirs, CIFAR-10 CNNs): with BatchNorm, plain-56 has a higher training error than \
             plain-20 throughout training, while ResNet-56 has a lower one than ResNet-20. Our trend \
             is in \"What the numbers show\" above."
                .to_owned(),
        ));
        return out;
    }
    out.push(Block::Para(format!(
        "**Theirs**: He et al. (2016), Table 6, CIFAR-10 test error of ResNets trained 64k \
         iterations with augmentation; their plain nets (Fig. 6) get worse with depth, no table \
         values. **Ours**: this experiment ({dataset}, the budget above). The settings differ \
         (dataset, training length), so compare trends, not values."
    )));
    let header = [
        "depth",
        "theirs: ResNet test error % (CIFAR-10)",
        "ours: residual test %",
        "ours: plain test %",
        "ours: residual train %",
        "ours: plain train %",
    ];
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
    let rows = table_depths(&loaded.depths())
        .into_iter()
        .map(|d| {
            vec![
                d.to_string(),
                theirs(d),
                ours("residual", d, true),
                ours("plain", d, true),
                ours("residual", d, false),
                ours("plain", d, false),
            ]
        })
        .collect();
    out.push(Block::Table(cells(&header), rows));
    out
}

/// The rows of the table: our depths and Table 6's, each once, in order.
fn table_depths(ours: &[u32]) -> Vec<u32> {
    let mut depths = ours.to_vec();
    depths.extend(HE_TABLE6_RESNET.iter().map(|&(d, _)| d));
    depths.sort_unstable();
    depths.dedup();
    depths
}

/// He et al.'s test error at `depth`, or `—` where Table 6 has none.
fn theirs(depth: u32) -> String {
    HE_TABLE6_RESNET
        .iter()
        .find(|&&(pd, _)| pd == depth)
        .map_or("—".into(), |&(_, e)| format!("{e:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sections::fixture::{loaded, trained};
    use serde_json::json;

    /// He et al. (2016), Table 6: CIFAR-10 test error of ResNet-20, 32, 44,
    /// 56 and 110. Our depths and theirs are the table's rows, each once,
    /// theirs "—" where the paper has none.
    #[test]
    fn the_table_has_their_depths_and_ours() {
        assert_eq!(
            HE_TABLE6_RESNET,
            [(20, 8.75), (32, 7.51), (44, 7.17), (56, 6.97), (110, 6.43)]
        );
        assert_eq!(table_depths(&[8, 20, 56]), [8, 20, 32, 44, 56, 110]);
        assert_eq!(theirs(56), "6.97");
        assert_eq!(theirs(8), "—");
    }

    /// Only CNNs are set beside Table 6; an MLP gets the trend of their
    /// Fig. 6 in words, any other family a sentence that there is nothing
    /// to compare.
    #[test]
    fn only_cnns_get_the_table() {
        let of = |family: &str| {
            paper(&loaded(
                &json!({"model": {"family": family}, "dataset": {"kind": "fashion-mnist"}}),
                vec![
                    ("plain", 20, 0, trained(0.1)),
                    ("residual", 20, 0, trained(0.08)),
                ],
            ))
        };
        let cnn = of("cnn");
        let Some(Block::Table(_, rows)) = cnn.last() else {
            panic!("{cnn:?}")
        };
        assert_eq!(rows[0], ["20", "8.75", "8.00", "10.00", "8.00", "10.00"]);
        assert!(
            matches!(&cnn[1], Block::Para(t) if t.contains("(fashion-mnist, the budget above)"))
        );
        let mlp = of("mlp");
        assert_eq!(mlp.len(), 2);
        assert!(
            matches!(&mlp[1], Block::Para(t) if t.starts_with("He et al. (2016) report no MLP results"))
        );
        let inception = of("inception");
        assert!(
            matches!(&inception[1], Block::Para(t) if t.contains("this family (`inception`) has no numbers"))
        );
    }
}
