//! Typed streaming: Nexmark bids as a Rust struct, a windowed aggregation written in SQL and
//! checked at compile time by `weir::query!`, and its output read back as Rust structs,
//! micro-batch by micro-batch.
//!
//! Run with `cargo run --release --example typed_stream`.

use weir::record::Timestamp;
use weir::{Record, Session};

#[derive(Record, Debug, Clone)]
struct Bid {
    auction: i64,
    bidder: i64,
    price: i64,
    #[weir(event_time)]
    date_time: Timestamp,
}

/// A 10-second tumbling window (Spark's window fields are nullable).
#[derive(Record, Debug)]
struct Window {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

/// Bids and the highest price per auction per window.
#[derive(Record, Debug)]
struct AuctionStats {
    auction: i64,
    window: Window,
    bids: i64,
    max_price: Option<i64>,
}

fn bid(auction: i64, price: i64, second: i64) -> Bid {
    Bid {
        auction,
        bidder: price % 5,
        price,
        date_time: Timestamp::from_micros(second * 1_000_000),
    }
}

fn main() -> weir::Result<()> {
    // A wrong column, a type error or an append-mode aggregation without a watermark would not
    // compile: the SQL is analysed by the same analyzer at compile time.
    let query = weir::query!(
        AuctionStats = "SELECT auction, window(date_time, '10 seconds') AS window,
                               count(*) AS bids, max(price) AS max_price
                        FROM Bid
                        GROUP BY auction, window(date_time, '10 seconds')",
        inputs(Bid),
        mode = "update",
        watermark(Bid.date_time, "5 seconds"),
    );
    let session = Session::new()?;
    let running = query.start(&session)?;

    let micro_batches = [
        vec![bid(1, 100, 1), bid(1, 250, 4), bid(2, 90, 9)],
        vec![bid(1, 300, 8), bid(2, 95, 12), bid(2, 80, 15)],
        // The watermark is 15 - 5 = 10 s now: the bid at 3 s is late and dropped.
        vec![bid(1, 999, 3), bid(3, 40, 31)],
    ];
    for bids in &micro_batches {
        running.push(bids)?;
        running.process_all_available()?;
        for (batch_id, rows) in running.take_output() {
            if rows.is_empty() {
                println!("batch {batch_id}: no rows (a no-data batch: the watermark moved)");
                continue;
            }
            println!("batch {batch_id}: {} updated row(s)", rows.len());
            for row in rows {
                let start = row.window.start.map(|t| t.to_string()).unwrap_or_default();
                println!(
                    "  auction {} window from {start}: {} bid(s), max price {:?}",
                    row.auction, row.bids, row.max_price
                );
            }
        }
    }
    running.stop()
}
