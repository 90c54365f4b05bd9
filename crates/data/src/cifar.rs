//! CIFAR-10, binary version (Krizhevsky 2009): `data_batch_1.bin` …
//! `data_batch_5.bin` (training) and `test_batch.bin`, each a run of
//! 3073-byte records: one label byte, then 32×32 red, green and blue planes
//! (row-major), 10000 records per file.

use std::io::Read;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::idx::check_labels;
use crate::{open_file, DataError, Dataset, DatasetInfo, Split};

/// How to get the files [`cifar10`] reads.
pub const CIFAR10_HINT: &str = "download the CIFAR-10 binary version archive \
     (cifar-10-binary.tar.gz) from its official site \
     (https://www.cs.toronto.edu/~kriz/cifar.html) and extract it";

/// The folder the official archive extracts to.
const ARCHIVE_FOLDER: &str = "cifar-10-batches-bin";

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const RECORD: usize = 1 + PIXELS;
/// Records in one official batch file; more means the file is not one.
const MAX_RECORDS: usize = 10_000;
const CLASSES: u8 = 10;

const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_FILE: &str = "test_batch.bin";

/// Loads CIFAR-10 from `dir`, or from `dir/cifar-10-batches-bin` (where the
/// official archive extracts to, so either the extraction folder or the one
/// above it works). All six files must sit in the same folder.
///
/// `x` is float32 in `[0, 1]`, `[n, 3, 32, 32]` (channels R, G, B); `y` is
/// int64; 10 classes. A file may hold fewer than 10000 records, but not 0.
pub fn cifar10(dir: &Path) -> Result<Dataset, DataError> {
    let base = find_base(dir)?;

    let mut train_px = Vec::new();
    let mut train_y = Vec::new();
    for name in TRAIN_FILES {
        let (px, y) = read_batch(&base.join(name))?;
        train_px.extend_from_slice(&px);
        train_y.extend_from_slice(&y);
    }
    let (test_px, test_y) = read_batch(&base.join(TEST_FILE))?;
    Ok(Dataset {
        name: "cifar10".to_string(),
        train: to_split(&train_px, &train_y),
        test: to_split(&test_px, &test_y),
        input_shape: vec![3, SIDE as i64, SIDE as i64],
        classes: CLASSES as i64,
    })
}

/// What [`cifar10`] would load from `dir`, from the files' sizes alone
/// (each is a whole number of 3073-byte records, at most 10000): the
/// label bytes are not read here, so a label out of range is found only by
/// [`cifar10`].
pub fn cifar10_info(dir: &Path) -> Result<DatasetInfo, DataError> {
    let base = find_base(dir)?;
    let mut train = 0;
    for name in TRAIN_FILES {
        let path = base.join(name);
        let (_, len) = open_file(&path)?;
        train += records(&path, len)? as usize;
    }
    let path = base.join(TEST_FILE);
    let (_, len) = open_file(&path)?;
    Ok(DatasetInfo {
        name: "cifar10".to_string(),
        train,
        test: records(&path, len)? as usize,
        input_shape: vec![3, SIDE as i64, SIDE as i64],
        classes: CLASSES as i64,
    })
}

/// The folder holding all six files: `dir` or `dir/cifar-10-batches-bin`.
fn find_base(dir: &Path) -> Result<PathBuf, DataError> {
    crate::check_dir(dir, CIFAR10_HINT)?;
    let names: Vec<&str> = TRAIN_FILES.iter().copied().chain([TEST_FILE]).collect();
    let mut looked = Vec::new();
    for candidate in [dir.to_path_buf(), dir.join(ARCHIVE_FOLDER)] {
        let missing: Vec<PathBuf> = names
            .iter()
            .map(|n| candidate.join(n))
            .filter(|p| !p.exists())
            .collect();
        if missing.is_empty() {
            return Ok(candidate);
        }
        looked.extend(missing);
    }
    Err(DataError::Missing {
        looked,
        hint: CIFAR10_HINT.to_string(),
    })
}

/// The records a batch file of `len` bytes holds, or why it is not one.
fn records(path: &Path, len: u64) -> Result<u64, DataError> {
    let corrupt = |what: String| DataError::corrupt(path, what);
    if len == 0 {
        return Err(corrupt("empty file".into()));
    }
    if !len.is_multiple_of(RECORD as u64) {
        return Err(corrupt(format!(
            "truncated: {len} bytes is not a whole number of {RECORD}-byte records \
             (1 label byte + {PIXELS} pixel bytes); {} whole records and {} bytes over",
            len / RECORD as u64,
            len % RECORD as u64
        )));
    }
    let records = len / RECORD as u64;
    if records > MAX_RECORDS as u64 {
        return Err(corrupt(format!(
            "{len} bytes hold {records} records, more than the {MAX_RECORDS} of a CIFAR-10 batch file"
        )));
    }
    Ok(records)
}

fn to_split(pixels: &[u8], labels: &[u8]) -> Split {
    let n = labels.len() as i64;
    let s = SIDE as i64;
    Split {
        x: Tensor::from_slice(pixels)
            .view([n, 3, s, s])
            .to_kind(Kind::Float)
            / 255.0,
        y: Tensor::from_slice(labels).to_kind(Kind::Int64),
    }
}

/// Reads one batch file: pixels (`n × 3072`, the records with their label
/// bytes taken out) and labels.
pub(crate) fn read_batch(path: &Path) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let corrupt = |what: String| DataError::corrupt(path, what);
    let (file, len) = open_file(path)?;
    // Checked before allocating, so a huge stray file is refused unread.
    records(path, len)?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 != len {
        // The file changed between the length check and the read.
        return Err(corrupt(format!(
            "changed while reading: {} bytes read, {len} expected",
            bytes.len()
        )));
    }
    let labels: Vec<u8> = bytes.chunks_exact(RECORD).map(|r| r[0]).collect();
    check_labels(path, &labels, CLASSES)?;
    let mut pixels = Vec::with_capacity(labels.len() * PIXELS);
    for record in bytes.chunks_exact(RECORD) {
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::tests::write;

    /// `n` records whose labels are `first_label + i (mod 10)` and whose
    /// pixels are 0 except one marker per record: value `100 + i % 100` at
    /// channel `i % 3`, row `i % 32`, column `(3 * i) % 32`.
    fn batch(n: usize, first_label: u8) -> Vec<u8> {
        let mut b = vec![0u8; n * RECORD];
        for i in 0..n {
            let r = &mut b[i * RECORD..(i + 1) * RECORD];
            r[0] = ((first_label as usize + i) % 10) as u8;
            r[1 + (i % 3) * 1024 + (i % 32) * 32 + (3 * i) % 32] = (100 + i % 100) as u8;
        }
        b
    }

    fn write_all(dir: &Path, per_file: usize) {
        for (k, name) in TRAIN_FILES.iter().enumerate() {
            write(dir, name, &batch(per_file, k as u8));
        }
        write(dir, TEST_FILE, &batch(per_file, 7));
    }

    #[test]
    fn loads_records_in_channel_row_column_order() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), 4);
        let ds = cifar10(dir.path()).unwrap();
        assert_eq!(ds.name, "cifar10");
        assert_eq!(ds.classes, 10);
        assert_eq!(ds.input_shape, vec![3, 32, 32]);
        assert_eq!(ds.train.x.size(), vec![20, 3, 32, 32]);
        assert_eq!(ds.test.x.size(), vec![4, 3, 32, 32]);
        assert_eq!(ds.train.x.kind(), Kind::Float);
        assert_eq!(ds.train.y.kind(), Kind::Int64);
        // Files in order 1..5: record 1 of data_batch_3 is example 9,
        // label 2 + 1.
        assert_eq!(ds.train.y.int64_value(&[9]), 3);
        assert_eq!(Vec::<i64>::try_from(&ds.test.y).unwrap(), vec![7, 8, 9, 0]);
        // Test record 2: value 102 at channel 2 (blue), row 2, column 6.
        let v = ds.test.x.double_value(&[2, 2, 2, 6]);
        assert!((v - 102.0 / 255.0).abs() < 1e-6, "{v}");
        assert_eq!(ds.test.x.double_value(&[2, 0, 2, 6]), 0.0);
        assert_eq!(ds.test.x.double_value(&[2, 2, 6, 2]), 0.0);
        // Exactly one marker per image, so the sum is known.
        let total = ds.test.x.sum(Kind::Double).double_value(&[]) * 255.0;
        assert!(
            (total - (100.0 + 101.0 + 102.0 + 103.0)).abs() < 1e-3,
            "{total}"
        );
    }

    /// Sizes alone: the same answer as loading for a good set and for
    /// broken lengths; a bad label byte is left to `cifar10`.
    #[test]
    fn cifar10_info_agrees_with_cifar10_on_sizes() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), 3);
        let info = cifar10_info(dir.path()).unwrap();
        assert_eq!((info.train, info.test), (15, 3));
        assert_eq!(info.input_shape, vec![3, 32, 32]);
        let ds = cifar10(dir.path()).unwrap();
        assert_eq!(ds.train.len(), 15);

        let mut b = batch(2, 0);
        b.truncate(2 * RECORD - 5);
        write(dir.path(), "data_batch_4.bin", &b);
        assert_eq!(
            cifar10_info(dir.path()).unwrap_err().to_string(),
            cifar10(dir.path()).unwrap_err().to_string()
        );
        write(dir.path(), "data_batch_4.bin", &[]);
        assert_eq!(
            cifar10_info(dir.path()).unwrap_err().to_string(),
            cifar10(dir.path()).unwrap_err().to_string()
        );
        let nowhere = dir.path().join("nowhere");
        let text = cifar10_info(&nowhere).unwrap_err().to_string();
        assert!(text.starts_with("dataset.dir: "), "{text}");
        assert!(text.contains("does not exist"), "{text}");
    }

    #[test]
    fn finds_the_archive_folder() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join(ARCHIVE_FOLDER);
        std::fs::create_dir(&sub).unwrap();
        write_all(&sub, 1);
        assert_eq!(cifar10(dir.path()).unwrap().train.len(), 5);
    }

    #[test]
    fn truncated_file_is_refused_by_name_and_length() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), 2);
        let mut b = batch(2, 0);
        b.truncate(2 * RECORD - 5);
        let p = write(dir.path(), "data_batch_4.bin", &b);
        let text = cifar10(dir.path()).unwrap_err().to_string();
        assert!(text.contains(&p.display().to_string()), "{text}");
        assert!(text.contains("truncated: 6141 bytes"), "{text}");
    }

    #[test]
    fn empty_file_and_bad_label_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), 2);
        let p = write(dir.path(), TEST_FILE, &[]);
        let text = cifar10(dir.path()).unwrap_err().to_string();
        assert!(text.contains(&p.display().to_string()), "{text}");
        assert!(text.contains("empty file"), "{text}");

        let mut b = batch(3, 0);
        b[2 * RECORD] = 10;
        let p = write(dir.path(), TEST_FILE, &b);
        let err = cifar10(dir.path()).unwrap_err();
        assert!(matches!(err, DataError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&p.display().to_string()), "{text}");
        assert!(text.contains("label 10 of example 2"), "{text}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), 1);
        write(dir.path(), TEST_FILE, &batch(MAX_RECORDS + 1, 0));
        let text = cifar10(dir.path()).unwrap_err().to_string();
        assert!(text.contains("10001 records"), "{text}");
    }

    #[test]
    fn missing_files_list_where_it_looked_and_how_to_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = cifar10(dir.path()).unwrap_err();
        let DataError::Missing { looked, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(looked.len(), 12);
        let text = err.to_string();
        for p in [
            dir.path().join("data_batch_1.bin"),
            dir.path().join(TEST_FILE),
            dir.path().join(ARCHIVE_FOLDER).join("data_batch_5.bin"),
        ] {
            assert!(text.contains(&p.display().to_string()), "{text}");
        }
        assert!(text.contains("cifar-10-binary.tar.gz"), "{text}");

        // A directory where a batch file belongs is an I/O error naming it.
        write_all(dir.path(), 1);
        let p = dir.path().join("data_batch_2.bin");
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let text = cifar10(dir.path()).unwrap_err().to_string();
        assert!(text.contains(&p.display().to_string()), "{text}");
        assert!(text.contains("is a directory"), "{text}");
    }
}
