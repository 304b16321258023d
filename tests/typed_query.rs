//! `weir::query!` end to end: Nexmark's Person, Auction and Bid as Records, queries checked at
//! compile time, run trigger by trigger, and compared with the same SQL run as runtime SQL
//! (a Catalog over memory streams and `Session::dataframe`) fed the same rows.

use std::sync::{Arc, Mutex};

use weir::arrow::record_batch::RecordBatch;
use weir::plan::sql::{Catalog, sql_to_plan};
use weir::record::Timestamp;
use weir::{Record, Session, StreamingQuery};

/// Nexmark's three event types, as in the benchmark's generator.
mod nexmark {
    use weir::Record;
    use weir::record::Timestamp;

    #[derive(Record, Debug, Clone, PartialEq)]
    pub struct Person {
        pub id: i64,
        pub name: String,
        pub email_address: String,
        pub credit_card: String,
        pub city: String,
        pub state: String,
        #[weir(event_time)]
        pub date_time: Timestamp,
        pub extra: String,
    }

    #[derive(Record, Debug, Clone, PartialEq)]
    pub struct Auction {
        pub id: i64,
        pub item_name: String,
        pub description: String,
        pub initial_bid: i64,
        pub reserve: i64,
        #[weir(event_time)]
        pub date_time: Timestamp,
        pub expires: Timestamp,
        pub seller: i64,
        pub category: i64,
        pub extra: String,
    }

    #[derive(Record, Debug, Clone, PartialEq)]
    pub struct Bid {
        pub auction: i64,
        pub bidder: i64,
        pub price: i64,
        pub channel: String,
        pub url: String,
        #[weir(event_time)]
        pub date_time: Timestamp,
        pub extra: String,
    }
}

use nexmark::{Auction, Bid, Person};

/// A tumbling window as the query returns it (Spark's window fields are nullable).
#[derive(Record, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Window {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

/// Bids per auction per 10-second window.
#[derive(Record, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AuctionWindow {
    auction: i64,
    window: Window,
    bids: i64,
    max_price: Option<i64>,
}

const WINDOWED_SQL: &str = "SELECT auction, window(date_time, '10 seconds') AS window, \
     count(*) AS bids, max(price) AS max_price \
     FROM Bid GROUP BY auction, window(date_time, '10 seconds')";

fn seconds(s: i64) -> Timestamp {
    Timestamp::from_micros(s * 1_000_000)
}

fn bid(auction: i64, price: i64, at_second: i64) -> Bid {
    Bid {
        auction,
        bidder: 1000 + price % 7,
        price,
        channel: "web".to_owned(),
        url: format!("https://nexmark.example/{auction}"),
        date_time: seconds(at_second),
        extra: String::new(),
    }
}

fn window(start_second: i64) -> Window {
    Window {
        start: Some(seconds(start_second)),
        end: Some(seconds(start_second + 10)),
    }
}

/// The same query as runtime SQL: memory streams named like the Records, a catalog over them.
struct RuntimeQuery {
    query: StreamingQuery,
    streams: Vec<weir::engine::source::MemoryStream>,
    output: Arc<Mutex<Vec<(u64, Vec<RecordBatch>)>>>,
}

impl RuntimeQuery {
    fn start(
        session: &Session,
        sql: &str,
        mode: &str,
        inputs: &[(&str, weir::arrow::datatypes::SchemaRef, Option<(&str, i64)>)],
    ) -> RuntimeQuery {
        let mut catalog = Catalog::new();
        let mut streams = Vec::new();
        for (table, schema, watermark) in inputs {
            let (stream, frame) = session.read_stream().memory(schema.clone()).unwrap();
            let weir::plan::LogicalPlan::Source(source) = frame.logical_plan() else {
                panic!("a memory stream is a plain scan");
            };
            let mut source = source.clone();
            source.name = (*table).to_owned();
            if let Some((column, delay_us)) = watermark {
                source = source.with_watermark(*column, *delay_us);
            }
            catalog.register_source(source).unwrap();
            streams.push(stream);
        }
        let plan = sql_to_plan(&catalog, sql).unwrap();
        let output: Arc<Mutex<Vec<(u64, Vec<RecordBatch>)>>> = Arc::default();
        let sink = Arc::clone(&output);
        let query = session
            .dataframe(plan)
            .write_stream()
            .output_mode(mode)
            .foreach_batch(move |batches, id| {
                sink.lock().unwrap().push((id, batches.to_vec()));
                Ok(())
            })
            .start()
            .unwrap();
        RuntimeQuery {
            query,
            streams,
            output,
        }
    }

    fn take_output<T: Record>(&self) -> Vec<(u64, Vec<T>)> {
        std::mem::take(&mut *self.output.lock().unwrap())
            .into_iter()
            .map(|(id, batches)| {
                let rows = batches
                    .iter()
                    .flat_map(|batch| T::from_batch(batch).unwrap())
                    .collect();
                (id, rows)
            })
            .collect()
    }
}

/// Batches with rows, each sorted (a batch's row order is not part of the semantics).
fn non_empty_sorted<T: Ord>(batches: Vec<(u64, Vec<T>)>) -> Vec<(u64, Vec<T>)> {
    batches
        .into_iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(id, mut rows)| {
            rows.sort();
            (id, rows)
        })
        .collect()
}

#[test]
fn windowed_aggregation_matches_runtime_sql_trigger_by_trigger() {
    let session = Session::new().unwrap();
    let typed = weir::query!(
        AuctionWindow = "SELECT auction, window(date_time, '10 seconds') AS window, \
             count(*) AS bids, max(price) AS max_price \
             FROM Bid GROUP BY auction, window(date_time, '10 seconds')",
        inputs(nexmark::Bid),
        mode = "update",
        watermark(Bid.date_time, "5 seconds"),
    );
    assert_eq!(typed.sql(), WINDOWED_SQL);
    let typed = typed.start(&session).unwrap();
    let runtime = RuntimeQuery::start(
        &session,
        WINDOWED_SQL,
        "update",
        &[("Bid", Bid::schema(), Some(("date_time", 5_000_000)))],
    );

    let triggers: Vec<(Vec<Bid>, Vec<AuctionWindow>)> = vec![
        (
            vec![bid(1, 100, 1), bid(1, 250, 4), bid(2, 90, 9)],
            vec![
                AuctionWindow { auction: 1, window: window(0), bids: 2, max_price: Some(250) },
                AuctionWindow { auction: 2, window: window(0), bids: 1, max_price: Some(90) },
            ],
        ),
        // 8 s is behind the newest event but ahead of the watermark (9 - 5 = 4 s): counted.
        (
            vec![bid(1, 300, 8), bid(2, 95, 12), bid(2, 80, 15)],
            vec![
                AuctionWindow { auction: 1, window: window(0), bids: 3, max_price: Some(300) },
                AuctionWindow { auction: 2, window: window(10), bids: 2, max_price: Some(95) },
            ],
        ),
        // The watermark is now 15 - 5 = 10 s: the bid at 3 s is late and dropped.
        (
            vec![bid(1, 999, 3), bid(3, 40, 31)],
            vec![AuctionWindow { auction: 3, window: window(30), bids: 1, max_price: Some(40) }],
        ),
    ];
    for (trigger, (bids, expected)) in triggers.into_iter().enumerate() {
        typed.push(&bids).unwrap();
        runtime.streams[0].add_batch(Bid::to_batch(&bids).unwrap());
        typed.process_all_available().unwrap();
        runtime.query.process_all_available().unwrap();

        let typed_batches = non_empty_sorted(typed.take_output());
        let runtime_batches = non_empty_sorted(runtime.take_output::<AuctionWindow>());
        assert_eq!(typed_batches, runtime_batches, "trigger {trigger}");
        let rows: Vec<AuctionWindow> = typed_batches.into_iter().flat_map(|(_, rows)| rows).collect();
        assert_eq!(rows, expected, "trigger {trigger}");
    }
    typed.stop().unwrap();
    runtime.query.stop().unwrap();
}
