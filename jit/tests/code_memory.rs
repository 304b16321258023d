//! Code memory is returned when a compiled kernel is dropped: compiling and dropping 10 000
//! kernels leaves the resident set flat. (Its own test binary, so other tests' allocations do
//! not disturb the measurement.)

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use weir_jit::{BinaryOp, JitEngine, JitOptions, KernelSpec, Scalar};

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("rss field");
    pages * 4096
}

#[test]
fn compiling_and_dropping_kernels_keeps_rss_flat() {
    let engine = JitEngine::new(JitOptions {
        verify: false,
        ..JitOptions::default()
    })
    .expect("engine");
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
    let compile = |i: i64| {
        let mut b = KernelSpec::builder(schema.clone());
        let x = b.column(0).unwrap();
        let c = b.literal(Scalar::Int64(i)).unwrap();
        let p = b.binary(BinaryOp::Gt, x, c).unwrap();
        let s = b.binary(BinaryOp::Add, x, c).unwrap();
        b.filter(p).project(vec![("s".into(), s)]);
        // Distinct specs: the cache cannot hand back an old kernel.
        engine.compile(&b.build().unwrap()).unwrap()
    };
    for i in 0..500 {
        drop(compile(i));
    }
    let before = rss_bytes();
    for i in 500..10_500 {
        let k = compile(i);
        assert!(k.clif().is_some());
        drop(k);
    }
    let after = rss_bytes();
    let growth = after.saturating_sub(before);
    println!(
        "rss before {} KiB, after {} KiB",
        before / 1024,
        after / 1024
    );
    // A leaked module costs at least two pages (code + read-only data); 10 000 of them would be >= 80 MB.
    assert!(
        growth < 24 * 1024 * 1024,
        "RSS grew by {} KiB",
        growth / 1024
    );
}
