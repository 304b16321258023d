//! Quickstart: a windowed count over the built-in `rate-micro-batch` source, printed to the
//! console batch by batch.
//!
//! Run with `cargo run --release --example quickstart`.

use weir::prelude::*;

fn main() -> weir::Result<()> {
    let session = Session::new()?;
    // 1 000 rows per batch; event time advances one second per batch.
    let events = session
        .read_stream()
        .format("rate-micro-batch")
        .option("rowsPerBatch", 1000)
        .option("advanceMillisPerBatch", 1000)
        .load()?;
    let counts = events
        .with_watermark("timestamp", "2 seconds")?
        .group_by([
            window(col("timestamp"), "5 seconds")?,
            (col("value") % lit(3i64)).alias("bucket"),
        ])
        .agg([count_star().alias("n"), sum(col("value")).alias("total")])?;
    println!("{}", counts.explain()?);
    let checkpoint = std::env::temp_dir().join(format!("weir-quickstart-{}", std::process::id()));
    let query = counts
        .write_stream()
        .format("console")
        .output_mode("append")
        .trigger(Trigger::ProcessingTime(std::time::Duration::from_millis(
            200,
        )))
        .option("checkpointLocation", checkpoint.display())
        .option("truncate", false)
        .start()?;
    // Run for a few seconds of processing time, then stop cleanly.
    std::thread::sleep(std::time::Duration::from_secs(4));
    query.stop()?;
    if let Some(p) = query.last_progress() {
        println!("last progress: {}", p.json());
    }
    let _ = std::fs::remove_dir_all(&checkpoint);
    Ok(())
}
