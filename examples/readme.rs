//! The Rust example of README.md, kept compiling (and runnable: `cargo run --example readme`).

use weir::prelude::*;

fn main() -> weir::Result<()> {
    let session = Session::new()?;
    let events = session
        .read_stream()
        .format("rate-micro-batch")
        .option("rowsPerBatch", 1000)
        .load()?;
    let counts = events
        .with_watermark("timestamp", "2 seconds")?
        .group_by([
            window(col("timestamp"), "5 seconds")?,
            (col("value") % lit(3i64)).alias("bucket"),
        ])
        .agg([count_star().alias("n"), sum(col("value")).alias("total")])?;
    let query = counts
        .write_stream()
        .format("console")
        .output_mode("update")
        .trigger(Trigger::AvailableNow)
        .option("checkpointLocation", "/tmp/weir-quickstart")
        .start()?;
    query.await_termination()
}
