//! Property tests of the file readers ("fuzzing" without a nightly
//! toolchain): whatever bytes a file holds, the IDX and CIFAR-10 readers
//! and the dataset preparation after them return `Ok` or a typed
//! [`DataError`] that names the file, and never panic.
//!
//! `make test` runs a few dozen cases per property. `make fuzz` sets
//! `GRADSCOPE_FUZZ_SECS` and each property then runs batches of cases until
//! that many seconds have passed, printing how many it ran. A failure shows
//! the smallest input proptest could shrink it to; each one found becomes a
//! regression test below.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::fuzz_harness::fuzz;

use crate::idx::tests::{gzip, idx_bytes};
use crate::{cifar, idx, DataError};

/// A reader's error must name the file it read (or list it among the
/// missing ones).
fn names(err: &DataError, path: &Path) -> Result<(), TestCaseError> {
    let text = err.to_string();
    prop_assert!(
        text.contains(&path.display().to_string()),
        "error does not name {}: {text}",
        path.display()
    );
    Ok(())
}

/// Sizes a header may declare: small ones that fit the payload, and the
/// edges (0, huge) that corrupt headers carry.
fn dim() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..5,
        1 => Just(u32::MAX),
        1 => Just(1u32 << 16),
        1 => any::<u32>(),
    ]
}

/// IDX-like files: a magic number (right, swapped or random), 0 to 4 sizes,
/// a short payload, then maybe cut, maybe gzipped, maybe with gzip bytes
/// damaged.
fn idx_file() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(0x0803u32), Just(0x0801u32), any::<u32>()],
        proptest::collection::vec(dim(), 0..5),
        proptest::collection::vec(any::<u8>(), 0..80),
        any::<Option<usize>>(),
        any::<bool>(),
        any::<Option<(usize, u8)>>(),
    )
        .prop_map(|(magic, dims, payload, cut, gz, damage)| {
            let mut b = idx_bytes(magic, &dims, &payload);
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            if gz {
                b = gzip(&b);
                if let Some((at, byte)) = damage {
                    let at = at % b.len();
                    b[at] ^= byte | 1;
                }
            }
            b
        })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200)
}

#[test]
fn fuzz_idx_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f-idx-ubyte");
    fuzz(
        "idx reader",
        prop_oneof![idx_file(), any_bytes()],
        |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            let read = idx::read_images(&path);
            if let Err(e) = &read {
                names(e, &path)?;
            }
            // The header-only check (gradscope check) refuses exactly what
            // the reader refuses, with the same words.
            match (idx::check_idx(&path, idx::IMAGES_MAGIC), &read) {
                (Ok(dims), Ok((_, shape))) => prop_assert_eq!(dims, shape.to_vec()),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "check {a:?} but read {:?}", b.as_ref().map(|r| r.1)),
            }
            match idx::read_labels(&path) {
                Ok(labels) => prop_assert!(labels.len() <= bytes.len()),
                Err(e) => names(&e, &path)?,
            }
            Ok(())
        },
    );
}

/// Four small IDX files (sizes 0..4, labels 0..12) in a folder, loaded as a
/// dataset and then subset, split and normalized with small settings: the
/// checks across files (counts, shapes, labels) and the preparation steps.
#[test]
fn fuzz_idx_dataset_and_preparation() {
    let dir = tempfile::tempdir().unwrap();
    let images =
        |n: u32, r: u32, c: u32| idx_bytes(0x0803, &[n, r, c], &vec![7; (n * r * c) as usize]);
    let labels = |ys: &[u8]| idx_bytes(0x0801, &[ys.len() as u32], ys);
    let strategy = (
        (0u32..4, 0u32..3, 0u32..3),
        (0u32..4, 0u32..3, 0u32..3),
        proptest::collection::vec(0u8..12, 0..5),
        proptest::collection::vec(0u8..12, 0..5),
        (0usize..6, 0usize..6, 0usize..6),
    );
    fuzz("idx dataset", strategy, |(tr, te, ytr, yte, (a, b, v))| {
        let files = [
            images(tr.0, tr.1, tr.2),
            labels(&ytr),
            images(te.0, te.1, te.2),
            labels(&yte),
        ];
        for (name, bytes) in [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ]
        .iter()
        .zip(files)
        {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        // The sizes `gradscope check` works out from the headers.
        let info = idx::idx_info(dir.path(), "fuzz", "")
            .and_then(|i| if v > 0 { i.split_validation(v) } else { Ok(i) })
            .and_then(|i| i.subset((a > 0).then_some(a), (b > 0).then_some(b)));
        let loaded = match idx::idx_dataset(dir.path(), "fuzz", "") {
            Ok(ds) => {
                let ds = if v > 0 {
                    ds.split_validation(v)
                } else {
                    Ok(ds)
                };
                let ds = ds.and_then(|d| d.subset((a > 0).then_some(a), (b > 0).then_some(b)));
                match ds {
                    Ok(ds) => {
                        let ds = ds.normalize_per_channel();
                        prop_assert!(!ds.train.is_empty() && !ds.test.is_empty());
                        Ok((ds.train.len() as usize, ds.test.len() as usize))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => {
                names(&e, dir.path())?;
                Err(e.to_string())
            }
        };
        prop_assert_eq!(
            info.map(|i| (i.train, i.test)).map_err(|e| e.to_string()),
            loaded
        );
        Ok(())
    });
}

/// CIFAR-10 batch files: whole and cut records with labels 0..12, or any
/// bytes.
#[test]
fn fuzz_cifar_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    let records = (
        proptest::collection::vec(0u8..12, 0..4),
        any::<Option<usize>>(),
        any::<u8>(),
    )
        .prop_map(|(labels, cut, fill)| {
            let mut b = Vec::new();
            for l in labels {
                b.push(l);
                b.extend(std::iter::repeat_n(fill, 3072));
            }
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            b
        });
    fuzz("cifar reader", prop_oneof![records, any_bytes()], |bytes| {
        std::fs::write(&path, &bytes).unwrap();
        match cifar::read_batch(&path) {
            Ok((px, y)) => {
                prop_assert_eq!(px.len(), y.len() * 3072);
                prop_assert!(y.iter().all(|&l| l < 10));
            }
            Err(e) => names(&e, &path)?,
        }
        Ok(())
    });
}
