//! Tiny files in the datasets' own formats, for tests: this crate's, and
//! (through the `fuzz` feature, the test support other crates' tests
//! share) the train crate's end-to-end sweeps, which must never need the
//! real datasets.

use std::path::Path;

/// An IDX file of unsigned bytes: magic, sizes, payload.
pub fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

/// The four standard MNIST-format files in `dir` (created): `train` and
/// `test` images of `rows × cols`, pixel j of image i `(7·i + j) % 256`
/// (each image differs), labels `i % 10`.
pub fn write_idx_set(dir: &Path, train: u32, test: u32, rows: u32, cols: u32) {
    std::fs::create_dir_all(dir).expect("a test folder");
    let size = rows * cols;
    let images = |n: u32| {
        let pixels: Vec<u8> = (0..n * size)
            .map(|p| ((7 * (p / size) + p % size) % 256) as u8)
            .collect();
        idx_bytes(crate::idx::IMAGES_MAGIC, &[n, rows, cols], &pixels)
    };
    let labels = |n: u32| {
        let ys: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        idx_bytes(crate::idx::LABELS_MAGIC, &[n], &ys)
    };
    let files = [images(train), labels(train), images(test), labels(test)];
    for (name, bytes) in crate::idx::FILES.iter().zip(files) {
        std::fs::write(dir.join(name), bytes).expect("a test file");
    }
}
