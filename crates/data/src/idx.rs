//! The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a 4-byte magic
//! number `0x0000_08DD` (unsigned bytes, `DD` dimensions), one big-endian
//! `u32` size per dimension, then the bytes in row-major order.
//!
//! Files are read raw or gzipped. Gzip is told by its magic bytes `1f 8b`
//! rather than by the `.gz` suffix, since downloads and packagers rename
//! freely; a raw IDX file can never start with them, its magic opens with
//! `00 00`.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tch::{Kind, Tensor};

use crate::{open_file, DataError, Dataset, DatasetInfo, Split};

/// Where Debian's `dataset-fashion-mnist` package installs the four files
/// (gzipped, with the upstream names).
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// How to get Fashion-MNIST where [`FASHION_MNIST_DIR`] expects it.
pub const FASHION_MNIST_HINT: &str =
    "install Debian's package: apt-get install dataset-fashion-mnist";

pub(crate) const IMAGES_MAGIC: u32 = 0x0000_0803;
pub(crate) const LABELS_MAGIC: u32 = 0x0000_0801;

/// The largest payload a header may declare (4 GiB, about 90 times the
/// Fashion-MNIST training images). Anything bigger is a corrupt header, and
/// refusing it keeps the size arithmetic far from overflow.
const MAX_PAYLOAD: u64 = 1 << 32;

/// The classes of MNIST and Fashion-MNIST.
const CLASSES: u8 = 10;

/// The four standard file names, without `.gz`.
pub(crate) const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Reads an IDX3 images file (magic `0x00000803`): the pixels, row-major,
/// and the shape `[n, rows, cols]`.
pub fn read_images(path: &Path) -> Result<(Vec<u8>, [usize; 3]), DataError> {
    let (dims, data) = read_idx(path, IMAGES_MAGIC)?;
    Ok((data, [dims[0], dims[1], dims[2]]))
}

/// Reads an IDX1 labels file (magic `0x00000801`).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let (_, data) = read_idx(path, LABELS_MAGIC)?;
    Ok(data)
}

/// An IDX file opened and its header read: the stream stands at the first
/// data byte.
struct IdxStream {
    dims: Vec<usize>,
    /// Data bytes the header declares.
    payload: u64,
    src: Box<dyn Read>,
    gzipped: bool,
    file_len: u64,
    header_len: usize,
}

/// Opens an IDX file of unsigned bytes whose magic must be `magic` and
/// checks its header (magic, sizes, the payload cap).
fn open_idx(path: &Path, magic: u32) -> Result<IdxStream, DataError> {
    let corrupt = |what: String| DataError::corrupt(path, what);
    let (file, file_len) = open_file(path)?;
    if file_len == 0 {
        return Err(corrupt("empty file".into()));
    }
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| DataError::io(path, e))?;
    let gzipped = head.starts_with(&[0x1f, 0x8b]);
    let mut src: Box<dyn Read> = if gzipped {
        // Multi-member: `cat a.gz b.gz` is a valid gzip file too.
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let read_err = |e: std::io::Error| read_error(path, gzipped, e);

    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    let mut header = vec![0u8; header_len];
    let got = read_up_to(&mut src, &mut header).map_err(read_err)?;
    if got == 0 {
        return Err(corrupt(if gzipped {
            "empty after gzip decompression".into()
        } else {
            "empty file".into()
        }));
    }
    if got < 4 {
        return Err(corrupt(format!(
            "truncated: {got} bytes, too short for an IDX magic number"
        )));
    }
    let be =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let found = be(0);
    if found != magic {
        return Err(corrupt(format!(
            "magic number 0x{found:08x}, expected 0x{magic:08x} ({}){}",
            describe_magic(magic),
            match found {
                IMAGES_MAGIC | LABELS_MAGIC => format!("; this is {}", describe_magic(found)),
                _ => String::new(),
            }
        )));
    }
    if got < header_len {
        return Err(corrupt(format!(
            "truncated header: {got} of {header_len} bytes"
        )));
    }
    let dims: Vec<usize> = (0..ndims).map(|i| be(4 + 4 * i) as usize).collect();
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(corrupt(format!(
            "header declares size 0 for dimension {i} (sizes {dims:?})"
        )));
    }
    // Each size is below 2^32, so the product of at most three fits a u128
    // and the comparison with the cap cannot overflow.
    let declared: u128 = dims.iter().map(|&d| d as u128).product();
    if declared > MAX_PAYLOAD as u128 {
        return Err(corrupt(format!(
            "header declares sizes {dims:?}, {declared} bytes, more than the {MAX_PAYLOAD}-byte limit"
        )));
    }
    Ok(IdxStream {
        dims,
        payload: declared as u64,
        src,
        gzipped,
        file_len,
        header_len,
    })
}

/// A gzipped IDX file must decompress to exactly the `payload` bytes its
/// header declares (`got` is what was read, at most one byte past it).
fn check_decompressed_len(
    path: &Path,
    dims: &[usize],
    payload: u64,
    got: u64,
) -> Result<(), DataError> {
    if got < payload {
        return Err(DataError::corrupt(
            path,
            format!(
                "truncated: header declares sizes {dims:?}, {payload} data bytes, \
                 but the decompressed file holds {got}"
            ),
        ));
    }
    if got > payload {
        return Err(DataError::corrupt(
            path,
            format!("trailing bytes after the {payload} data bytes declared by sizes {dims:?}"),
        ));
    }
    Ok(())
}

/// A raw IDX file must be exactly its header plus the declared payload long.
fn check_raw_len(
    path: &Path,
    dims: &[usize],
    header_len: usize,
    payload: u64,
    file_len: u64,
) -> Result<(), DataError> {
    let expected = header_len as u64 + payload;
    if file_len < expected {
        return Err(DataError::corrupt(
            path,
            format!(
                "truncated: header declares sizes {dims:?}, {expected} bytes in all, \
                 but the file holds {file_len}"
            ),
        ));
    }
    if file_len > expected {
        return Err(DataError::corrupt(
            path,
            format!(
                "{} trailing bytes after the {expected} bytes declared by sizes {dims:?}",
                file_len - expected
            ),
        ));
    }
    Ok(())
}

/// Reads an IDX file of unsigned bytes whose magic must be `magic`; returns
/// the dimensions and the payload.
fn read_idx(path: &Path, magic: u32) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let corrupt = |what: String| DataError::corrupt(path, what);
    let IdxStream {
        dims,
        payload,
        mut src,
        gzipped,
        file_len,
        header_len,
    } = open_idx(path, magic)?;
    let read_err = |e: std::io::Error| read_error(path, gzipped, e);
    let data = if gzipped {
        // The decompressed length is unknown until read: read at most one
        // byte past the declared size (to see trailing bytes), into a buffer
        // that grows only with bytes really there, so a corrupt header on a
        // small file allocates nothing big.
        let mut data = Vec::with_capacity(payload.min(1 << 26) as usize);
        src.take(payload + 1)
            .read_to_end(&mut data)
            .map_err(read_err)?;
        let got = data.len() as u64;
        check_decompressed_len(path, &dims, payload, got)?;
        data
    } else {
        // Raw: the file length says everything before reading.
        check_raw_len(path, &dims, header_len, payload, file_len)?;
        let mut data = vec![0u8; payload as usize];
        let got = read_up_to(&mut src, &mut data).map_err(read_err)?;
        if got < data.len() {
            // The file shrank between the length check and the read.
            return Err(corrupt(format!(
                "truncated while reading: {got} of {payload} data bytes"
            )));
        }
        data
    };
    Ok((dims, data))
}

/// Checks an IDX file as [`read_idx`] does, without keeping its data: the
/// header, and that the data are exactly as long as it declares (a raw
/// file by its length, a gzipped one by decompressing it into nothing,
/// about 0.3 s for Fashion-MNIST's training images). Returns the sizes.
pub(crate) fn check_idx(path: &Path, magic: u32) -> Result<Vec<usize>, DataError> {
    let IdxStream {
        dims,
        payload,
        src,
        gzipped,
        file_len,
        header_len,
    } = open_idx(path, magic)?;
    if gzipped {
        let got = std::io::copy(&mut src.take(payload + 1), &mut std::io::sink())
            .map_err(|e| read_error(path, gzipped, e))?;
        check_decompressed_len(path, &dims, payload, got)?;
    } else {
        check_raw_len(path, &dims, header_len, payload, file_len)?;
    }
    Ok(dims)
}

fn describe_magic(magic: u32) -> &'static str {
    match magic {
        IMAGES_MAGIC => "an IDX3 images file",
        LABELS_MAGIC => "an IDX1 labels file",
        _ => "unknown",
    }
}

/// A read error as a [`DataError`]: inside a gzip stream, bad or cut-off
/// data is the file's fault (corrupt), anything else the file system's.
fn read_error(path: &Path, gzipped: bool, e: std::io::Error) -> DataError {
    match e.kind() {
        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof if gzipped => {
            DataError::corrupt(path, format!("bad gzip data: {e}"))
        }
        _ => DataError::io(path, e),
    }
}

/// Fills `buf` as far as the stream allows; returns how many bytes it got
/// (less than `buf.len()` only at end of stream).
fn read_up_to(src: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Loads an MNIST-style dataset from the four standard IDX files in `dir`
/// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`), each raw or with
/// `.gz` appended; when both exist the raw one is read (no decompression).
///
/// `x` is float32 in `[0, 1]`, `[n, 1, rows, cols]`; `y` is int64; 10
/// classes. A missing file gives [`DataError::Missing`] listing every path
/// tried, with `hint`.
pub fn idx_dataset(dir: &Path, name: &str, hint: &str) -> Result<Dataset, DataError> {
    let found = find_files(dir, hint)?;
    let (train, train_shape) = load_split(&found[0], &found[1])?;
    let (test, test_shape) = load_split(&found[2], &found[3])?;
    same_image_size(&found, train_shape, test_shape)?;
    let [_, rows, cols] = train_shape.map(|d| d as i64);
    Ok(Dataset {
        name: name.to_string(),
        train,
        test,
        input_shape: vec![1, rows, cols],
        classes: CLASSES as i64,
    })
}

/// What [`idx_dataset`] would load from `dir`, found by reading the
/// headers and labels and measuring the images' data without keeping them
/// (see [`check_idx`]): every error [`idx_dataset`] gives, it gives too.
pub fn idx_info(dir: &Path, name: &str, hint: &str) -> Result<DatasetInfo, DataError> {
    let found = find_files(dir, hint)?;
    let train_shape = check_split(&found[0], &found[1])?;
    let test_shape = check_split(&found[2], &found[3])?;
    same_image_size(&found, train_shape, test_shape)?;
    Ok(DatasetInfo {
        name: name.to_string(),
        train: train_shape[0],
        test: test_shape[0],
        input_shape: vec![1, train_shape[1] as i64, train_shape[2] as i64],
        classes: CLASSES as i64,
    })
}

/// The four standard files in `dir`, each raw or gzipped (the raw one when
/// both exist). A `dir` that does not exist is said to be so first, rather
/// than listing eight paths inside it.
fn find_files(dir: &Path, hint: &str) -> Result<Vec<PathBuf>, DataError> {
    crate::check_dir(dir, hint)?;
    let mut found: Vec<PathBuf> = Vec::with_capacity(FILES.len());
    let mut looked = Vec::new();
    for file in FILES {
        let candidates = [dir.join(file), dir.join(format!("{file}.gz"))];
        match candidates.iter().find(|p| p.exists()) {
            Some(p) => found.push(p.clone()),
            None => looked.extend(candidates),
        }
    }
    if !looked.is_empty() {
        return Err(DataError::Missing {
            looked,
            hint: hint.to_string(),
        });
    }
    Ok(found)
}

/// The test images must have the training images' size.
fn same_image_size(
    found: &[PathBuf],
    train_shape: [usize; 3],
    test_shape: [usize; 3],
) -> Result<(), DataError> {
    if train_shape[1..] != test_shape[1..] {
        return Err(DataError::corrupt(
            &found[2],
            format!(
                "images are {}x{} but the training images ({}) are {}x{}",
                test_shape[1],
                test_shape[2],
                found[0].display(),
                train_shape[1],
                train_shape[2]
            ),
        ));
    }
    Ok(())
}

/// [`load_split`]'s checks without the pixels: the images' header and
/// length, and the labels (small: read whole) against it.
fn check_split(images: &Path, labels: &Path) -> Result<[usize; 3], DataError> {
    let dims = check_idx(images, IMAGES_MAGIC)?;
    let shape = [dims[0], dims[1], dims[2]];
    let y = read_labels(labels)?;
    count_matches(images, labels, shape[0], y.len())?;
    check_labels(labels, &y, CLASSES)?;
    Ok(shape)
}

fn count_matches(images: &Path, labels: &Path, n: usize, labelled: usize) -> Result<(), DataError> {
    if labelled != n {
        return Err(DataError::corrupt(
            labels,
            format!(
                "holds {labelled} labels but {} holds {n} images",
                images.display()
            ),
        ));
    }
    Ok(())
}

/// One split from an images file and its labels file.
fn load_split(images: &Path, labels: &Path) -> Result<(Split, [usize; 3]), DataError> {
    let (pixels, shape) = read_images(images)?;
    let y = read_labels(labels)?;
    count_matches(images, labels, shape[0], y.len())?;
    check_labels(labels, &y, CLASSES)?;
    let [n, rows, cols] = shape.map(|d| d as i64);
    let x = Tensor::from_slice(&pixels)
        .view([n, 1, rows, cols])
        .to_kind(Kind::Float)
        / 255.0;
    let y = Tensor::from_slice(&y).to_kind(Kind::Int64);
    Ok((Split { x, y }, shape))
}

/// Every label must name a class.
pub(crate) fn check_labels(path: &Path, labels: &[u8], classes: u8) -> Result<(), DataError> {
    match labels.iter().position(|&l| l >= classes) {
        Some(i) => Err(DataError::corrupt(
            path,
            format!(
                "label {} of example {i} (counting from 0) is not a class 0..={}",
                labels[i],
                classes - 1
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) use crate::test_files::idx_bytes;

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn images(n: u32, r: u32, c: u32) -> Vec<u8> {
        let payload: Vec<u8> = (0..n * r * c).map(|i| (i % 256) as u8).collect();
        idx_bytes(IMAGES_MAGIC, &[n, r, c], &payload)
    }

    fn labels(ys: &[u8]) -> Vec<u8> {
        idx_bytes(LABELS_MAGIC, &[ys.len() as u32], ys)
    }

    /// The error's message, which must name the file.
    fn err_text(err: DataError, path: &Path) -> String {
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string()),
            "message does not name {}: {text}",
            path.display()
        );
        text
    }

    #[test]
    fn reads_raw_and_gzipped_images_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let raw = write(dir.path(), "a", &images(3, 2, 4));
        let gz = write(dir.path(), "b", &gzip(&images(3, 2, 4)));
        for p in [&raw, &gz] {
            let (px, shape) = read_images(p).unwrap();
            assert_eq!(shape, [3, 2, 4]);
            assert_eq!(px, (0..24u8).collect::<Vec<_>>());
        }
        let raw = write(dir.path(), "c", &labels(&[3, 1, 4]));
        let gz = write(dir.path(), "d", &gzip(&labels(&[3, 1, 4])));
        assert_eq!(read_labels(&raw).unwrap(), vec![3, 1, 4]);
        assert_eq!(read_labels(&gz).unwrap(), vec![3, 1, 4]);
    }

    #[test]
    fn gzip_is_told_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let raw_named_gz = write(dir.path(), "x.gz", &labels(&[1, 2]));
        let gz_named_raw = write(dir.path(), "y-idx1-ubyte", &gzip(&labels(&[1, 2])));
        assert_eq!(read_labels(&raw_named_gz).unwrap(), vec![1, 2]);
        assert_eq!(read_labels(&gz_named_raw).unwrap(), vec![1, 2]);
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let all = labels(&[1, 2, 3, 4]);
        let mut bytes = gzip(&all[..6]);
        bytes.extend(gzip(&all[6..]));
        let p = write(dir.path(), "l", &bytes);
        assert_eq!(read_labels(&p).unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn wrong_magic_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "m", &idx_bytes(0x0000_0802, &[2], &[0, 0]));
        let text = err_text(read_labels(&p).unwrap_err(), &p);
        assert!(text.contains("magic number 0x00000802"), "{text}");
        let p = write(dir.path(), "t", b"hello world, not idx");
        let text = err_text(read_images(&p).unwrap_err(), &p);
        assert!(text.contains("magic"), "{text}");
    }

    #[test]
    fn images_file_where_labels_belong_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let img = write(dir.path(), "img", &images(2, 2, 2));
        let text = err_text(read_labels(&img).unwrap_err(), &img);
        assert!(text.contains("this is an IDX3 images file"), "{text}");
        let lab = write(dir.path(), "lab.gz", &gzip(&labels(&[1, 2])));
        let text = err_text(read_images(&lab).unwrap_err(), &lab);
        assert!(text.contains("this is an IDX1 labels file"), "{text}");
    }

    #[test]
    fn truncated_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = images(3, 2, 4);
        bytes.pop();
        let raw = write(dir.path(), "raw", &bytes);
        let gz = write(dir.path(), "gz", &gzip(&bytes));
        for p in [&raw, &gz] {
            let text = err_text(read_images(p).unwrap_err(), p);
            assert!(text.contains("truncated"), "{text}");
        }
        // Header cut inside the sizes.
        let p = write(dir.path(), "head", &images(3, 2, 4)[..9]);
        let text = err_text(read_images(&p).unwrap_err(), &p);
        assert!(text.contains("truncated header: 9 of 16 bytes"), "{text}");
        // Too short even for the magic number.
        let p = write(dir.path(), "tiny", &[0, 0]);
        let text = err_text(read_images(&p).unwrap_err(), &p);
        assert!(text.contains("truncated"), "{text}");
    }

    #[test]
    fn cut_gzip_stream_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let full = gzip(&images(20, 8, 8));
        let p = write(dir.path(), "cut", &full[..full.len() / 2]);
        let text = err_text(read_images(&p).unwrap_err(), &p);
        assert!(
            text.contains("gzip") || text.contains("truncated"),
            "{text}"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = labels(&[1, 2, 3]);
        bytes.push(7);
        let raw = write(dir.path(), "raw", &bytes);
        let gz = write(dir.path(), "gz", &gzip(&bytes));
        for p in [&raw, &gz] {
            let text = err_text(read_labels(p).unwrap_err(), p);
            assert!(text.contains("trailing"), "{text}");
        }
    }

    #[test]
    fn zero_dimensions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "z", &idx_bytes(IMAGES_MAGIC, &[2, 0, 3], &[]));
        let text = err_text(read_images(&p).unwrap_err(), &p);
        assert!(text.contains("size 0 for dimension 1"), "{text}");
        let p = write(dir.path(), "zl", &idx_bytes(LABELS_MAGIC, &[0], &[]));
        assert!(read_labels(&p).is_err());
    }

    #[test]
    fn empty_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "empty", &[]);
        let text = err_text(read_labels(&p).unwrap_err(), &p);
        assert!(text.contains("empty file"), "{text}");
        let p = write(dir.path(), "empty.gz", &gzip(&[]));
        let text = err_text(read_labels(&p).unwrap_err(), &p);
        assert!(text.contains("empty after gzip"), "{text}");
    }

    #[test]
    fn a_directory_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("train-images-idx3-ubyte");
        std::fs::create_dir(&sub).unwrap();
        let err = read_images(&sub).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err:?}");
        let text = err_text(err, &sub);
        assert!(text.contains("is a directory"), "{text}");
    }

    #[test]
    fn absurd_declared_sizes_are_refused_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let huge = idx_bytes(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]);
        for (name, bytes) in [("raw", huge.clone()), ("gz", gzip(&huge))] {
            let p = write(dir.path(), name, &bytes);
            let text = err_text(read_images(&p).unwrap_err(), &p);
            assert!(text.contains("limit"), "{text}");
        }
        // Under the cap but far beyond the bytes there: the gzip reader must
        // stop at the real end (a header-sized allocation would be 3.6 GB).
        let big = idx_bytes(IMAGES_MAGIC, &[60_000, 245, 245], &[1, 2, 3]);
        let p = write(dir.path(), "big.gz", &gzip(&big));
        let text = err_text(read_images(&p).unwrap_err(), &p);
        assert!(text.contains("holds 3"), "{text}");
        let p = write(dir.path(), "big", &big);
        let text = err_text(read_images(&p).unwrap_err(), &p);
        assert!(text.contains("holds 19"), "{text}");
    }

    #[test]
    fn random_bytes_never_panic() {
        // Short random files, some opening with a valid magic or gzip
        // header, must all give a result or an error, never a panic.
        let dir = tempfile::tempdir().unwrap();
        let mut rng = crate::rng::SplitMix64::new(11);
        let mut errors = 0;
        for i in 0..400 {
            let len = rng.below(40);
            let mut bytes: Vec<u8> = match i % 4 {
                0 => IMAGES_MAGIC.to_be_bytes().to_vec(),
                1 => LABELS_MAGIC.to_be_bytes().to_vec(),
                2 => vec![0x1f, 0x8b],
                _ => vec![],
            };
            bytes.extend((0..len).map(|_| rng.next_u64() as u8));
            let p = write(dir.path(), "f", &bytes);
            errors += read_images(&p).is_err() as usize;
            errors += read_labels(&p).is_err() as usize;
            let p = write(dir.path(), "f", &gzip(&bytes));
            errors += read_images(&p).is_err() as usize;
            errors += read_labels(&p).is_err() as usize;
        }
        assert!(errors > 1000, "random bytes mostly must not load: {errors}");
    }

    /// Writes the four standard files into `dir`.
    fn write_set(dir: &Path, train: (u32, &[u8]), test: (u32, &[u8]), gz: bool) {
        let enc = |b: Vec<u8>| if gz { gzip(&b) } else { b };
        let sfx = if gz { ".gz" } else { "" };
        write(
            dir,
            &format!("{}{sfx}", FILES[0]),
            &enc(images(train.0, 3, 2)),
        );
        write(dir, &format!("{}{sfx}", FILES[1]), &enc(labels(train.1)));
        write(
            dir,
            &format!("{}{sfx}", FILES[2]),
            &enc(images(test.0, 3, 2)),
        );
        write(dir, &format!("{}{sfx}", FILES[3]), &enc(labels(test.1)));
    }

    #[test]
    fn idx_dataset_loads_float_images_and_int_labels() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_set(dir.path(), (4, &[0, 9, 2, 3]), (2, &[5, 6]), gz);
            let ds = idx_dataset(dir.path(), "tiny", "no hint").unwrap();
            assert_eq!(ds.name, "tiny");
            assert_eq!(ds.classes, 10);
            assert_eq!(ds.input_shape, vec![1, 3, 2]);
            assert_eq!(ds.train.x.size(), vec![4, 1, 3, 2]);
            assert_eq!(ds.test.x.size(), vec![2, 1, 3, 2]);
            assert_eq!(ds.train.x.kind(), Kind::Float);
            assert_eq!(ds.train.y.kind(), Kind::Int64);
            assert_eq!(Vec::<i64>::try_from(&ds.train.y).unwrap(), vec![0, 9, 2, 3]);
            assert_eq!(Vec::<i64>::try_from(&ds.test.y).unwrap(), vec![5, 6]);
            // Pixel i of the file is i % 256: image 2, row 1, col 1 is
            // byte 2*6 + 1*2 + 1 = 15.
            let v = ds.train.x.double_value(&[2, 0, 1, 1]);
            assert!((v - 15.0 / 255.0).abs() < 1e-6, "{v}");
            assert!(ds.train.x.max().double_value(&[]) <= 1.0);
        }
    }

    #[test]
    fn idx_dataset_prefers_the_raw_file_when_both_exist() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), (4, &[0, 1, 2, 3]), (2, &[5, 6]), true);
        // The raw train images say 4 images of 3x2 too, but other pixels.
        let payload = vec![255u8; 4 * 6];
        write(
            dir.path(),
            FILES[0],
            &idx_bytes(IMAGES_MAGIC, &[4, 3, 2], &payload),
        );
        let ds = idx_dataset(dir.path(), "mix", "").unwrap();
        assert_eq!(ds.train.x.min().double_value(&[]), 1.0);
    }

    #[test]
    fn idx_dataset_refuses_count_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), (4, &[0, 1, 2]), (2, &[5, 6]), false);
        let labels_path = dir.path().join(FILES[1]);
        let text = err_text(idx_dataset(dir.path(), "x", "").unwrap_err(), &labels_path);
        assert!(text.contains("holds 3 labels but"), "{text}");
        assert!(text.contains("holds 4 images"), "{text}");
    }

    #[test]
    fn idx_dataset_refuses_labels_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), (3, &[0, 1, 2]), (2, &[5, 10]), false);
        let p = dir.path().join(FILES[3]);
        let text = err_text(idx_dataset(dir.path(), "x", "").unwrap_err(), &p);
        assert!(text.contains("label 10 of example 1"), "{text}");
    }

    #[test]
    fn idx_dataset_refuses_train_and_test_of_different_sizes() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), (3, &[0, 1, 2]), (2, &[5, 6]), false);
        let p = write(
            dir.path(),
            FILES[2],
            &idx_bytes(IMAGES_MAGIC, &[2, 2, 3], &[0; 12]),
        );
        let text = err_text(idx_dataset(dir.path(), "x", "").unwrap_err(), &p);
        assert!(
            text.contains("images are 2x3 but the training images"),
            "{text}"
        );
    }

    #[test]
    fn idx_dataset_missing_folder_is_said_first() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = dir.path().join("nowhere");
        for err in [
            idx_dataset(&nowhere, "x", "HINT").unwrap_err(),
            idx_info(&nowhere, "x", "HINT").map(|_| ()).unwrap_err(),
        ] {
            assert!(matches!(err, DataError::MissingDir { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("dataset.dir: {} does not exist. HINT", nowhere.display())
            );
        }
        let file = write(dir.path(), "plain-file", b"x");
        let text = idx_dataset(&file, "x", "HINT").unwrap_err().to_string();
        assert!(text.ends_with("is not a directory. HINT"), "{text}");
    }

    #[test]
    fn idx_dataset_missing_files_lists_paths_and_hint() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = dir.path().join("empty");
        std::fs::create_dir(&nowhere).unwrap();
        let err = idx_dataset(&nowhere, "x", "HINT: get the files").unwrap_err();
        let DataError::Missing { looked, hint } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(looked.len(), 8);
        assert_eq!(hint, "HINT: get the files");
        let text = err.to_string();
        for f in FILES {
            for p in [nowhere.join(f), nowhere.join(format!("{f}.gz"))] {
                assert!(text.contains(&p.display().to_string()), "{text}");
            }
        }
        assert!(text.contains("HINT: get the files"), "{text}");

        // One missing file: only its two candidates are listed.
        write_set(dir.path(), (3, &[0, 1, 2]), (2, &[5, 6]), false);
        std::fs::remove_file(dir.path().join(FILES[3])).unwrap();
        let err = idx_dataset(dir.path(), "x", "h").unwrap_err();
        let DataError::Missing { looked, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            looked,
            &vec![
                dir.path().join(FILES[3]),
                dir.path().join(format!("{}.gz", FILES[3]))
            ]
        );
    }

    /// `idx_info` reads headers and labels only, yet answers what
    /// `idx_dataset` answers: the same sizes for a good set, the same error
    /// for each way a set can be broken.
    #[test]
    fn idx_info_agrees_with_idx_dataset() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_set(dir.path(), (4, &[0, 9, 2, 3]), (2, &[5, 6]), gz);
            let info = idx_info(dir.path(), "tiny", "").unwrap();
            assert_eq!(
                info,
                DatasetInfo {
                    name: "tiny".into(),
                    train: 4,
                    test: 2,
                    input_shape: vec![1, 3, 2],
                    classes: 10
                }
            );
            let ds = info.placeholder();
            assert_eq!(ds.train.x.size(), vec![1, 1, 3, 2]);
        }
        type Make = Box<dyn Fn(&Path)>;
        let broken: Vec<(&str, Make)> = vec![
            (
                "count",
                Box::new(|d| write_set(d, (4, &[0, 1, 2]), (2, &[5, 6]), false)),
            ),
            (
                "label",
                Box::new(|d| write_set(d, (3, &[0, 1, 2]), (2, &[5, 10]), true)),
            ),
            (
                "size",
                Box::new(|d| {
                    write_set(d, (3, &[0, 1, 2]), (2, &[5, 6]), false);
                    write(d, FILES[2], &idx_bytes(IMAGES_MAGIC, &[2, 2, 3], &[0; 12]));
                }),
            ),
            (
                "truncated gzip",
                Box::new(|d| {
                    write_set(d, (3, &[0, 1, 2]), (2, &[5, 6]), true);
                    let mut b = images(3, 3, 2);
                    b.pop();
                    write(d, &format!("{}.gz", FILES[0]), &gzip(&b));
                }),
            ),
            (
                "trailing raw",
                Box::new(|d| {
                    write_set(d, (3, &[0, 1, 2]), (2, &[5, 6]), false);
                    let mut b = images(2, 3, 2);
                    b.push(0);
                    write(d, FILES[2], &b);
                }),
            ),
            (
                "missing",
                Box::new(|d| {
                    write_set(d, (3, &[0, 1, 2]), (2, &[5, 6]), false);
                    std::fs::remove_file(d.join(FILES[3])).unwrap();
                }),
            ),
        ];
        for (what, make) in broken {
            let dir = tempfile::tempdir().unwrap();
            make(dir.path());
            let full = idx_dataset(dir.path(), "x", "h").unwrap_err().to_string();
            let info = idx_info(dir.path(), "x", "h").unwrap_err().to_string();
            assert_eq!(info, full, "{what}");
        }
    }

    #[test]
    fn real_fashion_mnist_loads_when_installed() {
        let dir = Path::new(FASHION_MNIST_DIR);
        if !dir.is_dir() {
            println!("skipped: {FASHION_MNIST_DIR} not there ({FASHION_MNIST_HINT})");
            return;
        }
        let info = idx_info(dir, "fashion-mnist", FASHION_MNIST_HINT).unwrap();
        assert_eq!((info.train, info.test), (60_000, 10_000));
        assert_eq!(info.input_shape, vec![1, 28, 28]);
        let ds = idx_dataset(dir, "fashion-mnist", FASHION_MNIST_HINT).unwrap();
        assert_eq!(ds.train.x.size(), vec![60_000, 1, 28, 28]);
        assert_eq!(ds.test.x.size(), vec![10_000, 1, 28, 28]);
        assert_eq!(ds.input_shape, vec![1, 28, 28]);
        assert_eq!(ds.train.y.min().int64_value(&[]), 0);
        assert_eq!(ds.train.y.max().int64_value(&[]), 9);
        let counts = ds.train.y.bincount::<Tensor>(None, 10);
        assert_eq!(Vec::<i64>::try_from(&counts).unwrap(), vec![6000; 10]);
        let counts = ds.test.y.bincount::<Tensor>(None, 10);
        assert_eq!(Vec::<i64>::try_from(&counts).unwrap(), vec![1000; 10]);
        assert!(ds.train.x.min().double_value(&[]) >= 0.0);
        assert!(ds.train.x.max().double_value(&[]) <= 1.0);
        // Fashion-MNIST's mean pixel is about 0.286.
        let mean = ds.train.x.mean(Kind::Double).double_value(&[]);
        assert!((mean - 0.286).abs() < 0.01, "{mean}");
    }
}
