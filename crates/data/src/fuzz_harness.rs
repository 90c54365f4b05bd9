//! The property-test runner the data and train crates' fuzz tests share
//! ("fuzzing" without a nightly toolchain): a few dozen cases per property
//! in `make test`, or batches until `GRADSCOPE_FUZZ_SECS` seconds have
//! passed in `make fuzz`. Compiled for this crate's tests and, through the
//! `fuzz` feature, for the tests of crates that depend on it.

use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `test` on values of `strategy`: 64 cases, or batches of 256 until
/// `GRADSCOPE_FUZZ_SECS` seconds have passed.
pub fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let secs: Option<u64> = std::env::var("GRADSCOPE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let start = Instant::now();
    let batch = if secs.is_some() { 256 } else { 64 };
    let mut total = 0u64;
    loop {
        let mut runner = TestRunner::new(Config {
            cases: batch,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        total += u64::from(batch);
        match secs {
            Some(s) if start.elapsed() < Duration::from_secs(s) => {}
            _ => break,
        }
    }
    println!(
        "fuzz {name}: {total} cases in {:.1} s, no failure",
        start.elapsed().as_secs_f64()
    );
}
