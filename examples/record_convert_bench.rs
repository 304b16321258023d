//! Benchmark of `#[derive(weir::Record)]` conversions: 10 M Nexmark Bid rows converted from a
//! `RecordBatch` into `Vec<Bid>` and back, beside a hand-written conversion loop over the same
//! arrays. Prints rows/s and the ratio derive / hand-written; it never asserts on time.
//!
//! Run with `cargo run --release --example record_convert_bench [ROWS]`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::Record;
use weir::arrow::array::{
    Array, ArrayRef, Int64Array, Int64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use weir::record::{RecordError, Timestamp};

/// A Nexmark bid, as the benchmark's SQL schema names its columns.
#[derive(Record, Debug, Clone, PartialEq)]
struct Bid {
    auction: i64,
    bidder: i64,
    price: i64,
    channel: String,
    url: String,
    #[weir(event_time)]
    date_time: Timestamp,
    extra: String,
}

const DEFAULT_ROWS: usize = 10_000_000;
const RUNS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("expected a row count, got '{arg}'"))?,
        None => DEFAULT_ROWS,
    };
    println!("generating {rows} Bid rows ...");
    let batch = generate(rows)?;

    let (derive_read, hand_read) = best_of(
        || Ok(black_box(Bid::from_batch(&batch)?).len()),
        || Ok(black_box(hand_from_batch(&batch)?).len()),
    )?;

    let bids = Bid::from_batch(&batch)?;
    if bids != hand_from_batch(&batch)? {
        return Err("the derived and the hand-written conversion disagree".into());
    }
    let (derive_write, hand_write) = best_of(
        || Ok(black_box(Bid::to_batch(&bids)?).num_rows()),
        || Ok(black_box(hand_to_batch(&bids)?).num_rows()),
    )?;
    if Bid::to_batch(&bids)? != hand_to_batch(&bids)? {
        return Err("the derived and the hand-written batches disagree".into());
    }

    println!("best of {RUNS} runs, {rows} rows");
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "direction", "derive rows/s", "hand rows/s", "ratio"
    );
    report("RecordBatch -> Vec<Bid>", rows, derive_read, hand_read);
    report("Vec<Bid> -> RecordBatch", rows, derive_write, hand_write);
    Ok(())
}

fn report(direction: &str, rows: usize, derive: Duration, hand: Duration) {
    let rate = |time: Duration| rows as f64 / time.as_secs_f64();
    println!(
        "{direction:<28} {:>14.0} {:>14.0} {:>7.2}x",
        rate(derive),
        rate(hand),
        rate(derive) / rate(hand)
    );
}

type BenchResult = Result<usize, Box<dyn std::error::Error>>;

/// The fastest of [`RUNS`] runs of `derive` and of `hand`, run in turns so that a busy machine
/// slows both alike.
fn best_of(
    mut derive: impl FnMut() -> BenchResult,
    mut hand: impl FnMut() -> BenchResult,
) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..RUNS {
        let start = Instant::now();
        black_box(derive()?);
        best.0 = best.0.min(start.elapsed());
        let start = Instant::now();
        black_box(hand()?);
        best.1 = best.1.min(start.elapsed());
    }
    Ok(best)
}

/// Nexmark-like bids: 1,000 auctions, 10,000 bidders, 10 channels, one bid per millisecond.
fn generate(rows: usize) -> Result<RecordBatch, RecordError> {
    let channels = ["Google", "Facebook", "Baidu", "Apple", "channel-4"];
    let n = |row: usize, modulus: usize| (row % modulus) as i64;
    let auction = Int64Array::from_iter_values((0..rows).map(|row| 1000 + n(row * 7, 1_000)));
    let bidder = Int64Array::from_iter_values((0..rows).map(|row| 2000 + n(row * 13, 10_000)));
    let price = Int64Array::from_iter_values((0..rows).map(|row| 100 + n(row * 31, 100_000)));
    let channel = StringArray::from_iter_values((0..rows).map(|row| channels[row % 5]));
    let url = StringArray::from_iter_values((0..rows).map(|row| {
        format!(
            "https://www.nexmark.com/item.htm?query=1&channel_id={}",
            row % 10_000
        )
    }));
    let date_time = TimestampMicrosecondArray::from_iter_values(
        (0..rows).map(|row| 1_700_000_000_000_000 + 1_000 * row as i64),
    )
    .with_timezone("UTC");
    let extra = StringArray::from_iter_values((0..rows).map(|row| {
        if row % 4 == 0 {
            String::new()
        } else {
            format!("extra-{row}")
        }
    }));
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("auction", Arc::new(auction)),
        ("bidder", Arc::new(bidder)),
        ("price", Arc::new(price)),
        ("channel", Arc::new(channel)),
        ("url", Arc::new(url)),
        ("date_time", Arc::new(date_time)),
        ("extra", Arc::new(extra)),
    ];
    Ok(RecordBatch::try_from_iter(columns)?)
}

/// The conversion a careful user writes by hand: downcast each column once, reject nulls once
/// per column, then index.
fn hand_from_batch(batch: &RecordBatch) -> Result<Vec<Bid>, String> {
    fn column<'a, A: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a A, String> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| format!("missing column {name}"))?;
        if array.null_count() > 0 {
            return Err(format!("nulls in column {name}"));
        }
        array
            .as_any()
            .downcast_ref::<A>()
            .ok_or_else(|| format!("wrong type for column {name}"))
    }
    let auction = column::<Int64Array>(batch, "auction")?.values();
    let bidder = column::<Int64Array>(batch, "bidder")?.values();
    let price = column::<Int64Array>(batch, "price")?.values();
    let channel = column::<StringArray>(batch, "channel")?;
    let url = column::<StringArray>(batch, "url")?;
    let date_time = column::<TimestampMicrosecondArray>(batch, "date_time")?.values();
    let extra = column::<StringArray>(batch, "extra")?;
    let mut bids = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        bids.push(Bid {
            auction: auction[row],
            bidder: bidder[row],
            price: price[row],
            channel: channel.value(row).to_owned(),
            url: url.value(row).to_owned(),
            date_time: Timestamp::from_micros(date_time[row]),
            extra: extra.value(row).to_owned(),
        });
    }
    Ok(bids)
}

/// The hand-written way back: one Arrow builder per column.
fn hand_to_batch(bids: &[Bid]) -> Result<RecordBatch, RecordError> {
    let mut auction = Int64Builder::with_capacity(bids.len());
    let mut bidder = Int64Builder::with_capacity(bids.len());
    let mut price = Int64Builder::with_capacity(bids.len());
    let mut channel = StringBuilder::with_capacity(bids.len(), 0);
    let mut url = StringBuilder::with_capacity(bids.len(), 0);
    let mut date_time = TimestampMicrosecondBuilder::with_capacity(bids.len()).with_timezone("UTC");
    let mut extra = StringBuilder::with_capacity(bids.len(), 0);
    for bid in bids {
        auction.append_value(bid.auction);
        bidder.append_value(bid.bidder);
        price.append_value(bid.price);
        channel.append_value(&bid.channel);
        url.append_value(&bid.url);
        date_time.append_value(bid.date_time.micros());
        extra.append_value(&bid.extra);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(auction.finish()),
        Arc::new(bidder.finish()),
        Arc::new(price.finish()),
        Arc::new(channel.finish()),
        Arc::new(url.finish()),
        Arc::new(date_time.finish()),
        Arc::new(extra.finish()),
    ];
    Ok(RecordBatch::try_new(Bid::schema(), columns)?)
}
