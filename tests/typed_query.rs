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

/// One `foreachBatch` call: the batch id and its batches.
type SinkBatch = (u64, Vec<RecordBatch>);

/// A runtime input: table name, schema, and an optional watermark (column, delay in µs).
type RuntimeInput<'a> = (
    &'a str,
    weir::arrow::datatypes::SchemaRef,
    Option<(&'a str, i64)>,
);

/// The same query as runtime SQL: memory streams named like the Records, a catalog over them.
struct RuntimeQuery {
    query: StreamingQuery,
    streams: Vec<weir::engine::source::MemoryStream>,
    output: Arc<Mutex<Vec<SinkBatch>>>,
}

impl RuntimeQuery {
    fn start(session: &Session, sql: &str, mode: &str, inputs: &[RuntimeInput]) -> RuntimeQuery {
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
        let output: Arc<Mutex<Vec<SinkBatch>>> = Arc::default();
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
                AuctionWindow {
                    auction: 1,
                    window: window(0),
                    bids: 2,
                    max_price: Some(250),
                },
                AuctionWindow {
                    auction: 2,
                    window: window(0),
                    bids: 1,
                    max_price: Some(90),
                },
            ],
        ),
        // 8 s is behind the newest event but ahead of the watermark (9 - 5 = 4 s): counted.
        (
            vec![bid(1, 300, 8), bid(2, 95, 12), bid(2, 80, 15)],
            vec![
                AuctionWindow {
                    auction: 1,
                    window: window(0),
                    bids: 3,
                    max_price: Some(300),
                },
                AuctionWindow {
                    auction: 2,
                    window: window(10),
                    bids: 2,
                    max_price: Some(95),
                },
            ],
        ),
        // The watermark is now 15 - 5 = 10 s: the bid at 3 s is late and dropped.
        (
            vec![bid(1, 999, 3), bid(3, 40, 31)],
            vec![AuctionWindow {
                auction: 3,
                window: window(30),
                bids: 1,
                max_price: Some(40),
            }],
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
        let rows: Vec<AuctionWindow> = typed_batches
            .into_iter()
            .flat_map(|(_, rows)| rows)
            .collect();
        assert_eq!(rows, expected, "trigger {trigger}");
    }
    typed.stop().unwrap();
    runtime.query.stop().unwrap();
}

#[test]
fn append_mode_emits_each_window_once_when_the_watermark_passes_it() {
    let session = Session::new().unwrap();
    let typed = weir::query!(
        AuctionWindow = "SELECT auction, window(date_time, '10 seconds') AS window, \
             count(*) AS bids, max(price) AS max_price \
             FROM Bid GROUP BY auction, window(date_time, '10 seconds')",
        inputs(Bid),
        mode = "append",
        watermark(Bid.date_time, "5 seconds"),
    )
    .start(&session)
    .unwrap();
    let runtime = RuntimeQuery::start(
        &session,
        WINDOWED_SQL,
        "append",
        &[("Bid", Bid::schema(), Some(("date_time", 5_000_000)))],
    );
    let triggers: Vec<(Vec<Bid>, Vec<AuctionWindow>)> = vec![
        (vec![bid(1, 100, 1), bid(1, 250, 4), bid(2, 90, 9)], vec![]),
        // The watermark reaches 16 - 5 = 11 s: window [0, 10) is final.
        (
            vec![bid(1, 300, 8), bid(2, 95, 16)],
            vec![
                AuctionWindow {
                    auction: 1,
                    window: window(0),
                    bids: 3,
                    max_price: Some(300),
                },
                AuctionWindow {
                    auction: 2,
                    window: window(0),
                    bids: 1,
                    max_price: Some(90),
                },
            ],
        ),
        (
            vec![bid(3, 40, 41)],
            vec![AuctionWindow {
                auction: 2,
                window: window(10),
                bids: 1,
                max_price: Some(95),
            }],
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
        let mut rows: Vec<AuctionWindow> = typed_batches
            .into_iter()
            .flat_map(|(_, rows)| rows)
            .collect();
        rows.sort();
        assert_eq!(rows, expected, "trigger {trigger}");
    }
    typed.stop().unwrap();
    runtime.query.stop().unwrap();
}

/// A new person or auction (Nexmark's "new entities"), from two inputs.
#[derive(Record, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct NewEntity {
    kind: String,
    id: i64,
    label: String,
}

const NEW_ENTITIES_SQL: &str = "SELECT 'person' AS kind, id, name AS label FROM Person WHERE state = 'OR' \
     UNION ALL SELECT 'auction' AS kind, id, item_name AS label FROM Auction WHERE category = 10";

fn person(id: i64, name: &str, state: &str) -> Person {
    Person {
        id,
        name: name.to_owned(),
        email_address: format!("{name}@nexmark.example"),
        credit_card: "0000 0000 0000 0000".to_owned(),
        city: "Portland".to_owned(),
        state: state.to_owned(),
        date_time: seconds(id),
        extra: String::new(),
    }
}

fn auction(id: i64, item_name: &str, category: i64) -> Auction {
    Auction {
        id,
        item_name: item_name.to_owned(),
        description: String::new(),
        initial_bid: 10,
        reserve: 100,
        date_time: seconds(id),
        expires: seconds(id + 3600),
        seller: 1,
        category,
        extra: String::new(),
    }
}

#[test]
fn two_inputs_take_typed_rows_and_match_runtime_sql() {
    let session = Session::new().unwrap();
    let typed = weir::query!(
        NewEntity = "SELECT 'person' AS kind, id, name AS label FROM Person WHERE state = 'OR' \
             UNION ALL SELECT 'auction' AS kind, id, item_name AS label FROM Auction WHERE category = 10",
        inputs(Person, Auction),
    );
    assert_eq!(typed.sql(), NEW_ENTITIES_SQL);
    let typed = typed.start(&session).unwrap();
    let runtime = RuntimeQuery::start(
        &session,
        NEW_ENTITIES_SQL,
        "append",
        &[
            ("Person", Person::schema(), None),
            ("Auction", Auction::schema(), None),
        ],
    );

    let people = vec![person(1, "ann", "OR"), person(2, "bo", "WA")];
    let auctions = vec![auction(3, "lamp", 10), auction(4, "desk", 11)];
    typed.push(&people).unwrap();
    typed.push(&auctions).unwrap();
    runtime.streams[0].add_batch(Person::to_batch(&people).unwrap());
    runtime.streams[1].add_batch(Auction::to_batch(&auctions).unwrap());
    typed.process_all_available().unwrap();
    runtime.query.process_all_available().unwrap();

    let typed_rows: Vec<NewEntity> = {
        let mut rows: Vec<NewEntity> = typed
            .take_output()
            .into_iter()
            .flat_map(|(_, rows)| rows)
            .collect();
        rows.sort();
        rows
    };
    let mut runtime_rows: Vec<NewEntity> = runtime
        .take_output()
        .into_iter()
        .flat_map(|(_, rows)| rows)
        .collect();
    runtime_rows.sort();
    assert_eq!(typed_rows, runtime_rows);
    assert_eq!(
        typed_rows,
        vec![
            NewEntity {
                kind: "auction".into(),
                id: 3,
                label: "lamp".into()
            },
            NewEntity {
                kind: "person".into(),
                id: 1,
                label: "ann".into()
            },
        ]
    );
    typed.stop().unwrap();
    runtime.query.stop().unwrap();
}

#[test]
fn a_renamed_import_and_a_record_local_to_a_function_work() {
    use nexmark::Bid as NexmarkBid;

    #[derive(Record, Debug, PartialEq)]
    struct Price {
        auction: i64,
        price: i64,
    }

    let session = Session::new().unwrap();
    let query = weir::query!(
        Price = "SELECT auction, price FROM NexmarkBid WHERE price >= 100",
        inputs(NexmarkBid),
    )
    .start(&session)
    .unwrap();
    query.push(&[bid(1, 100, 1), bid(2, 50, 2)]).unwrap();
    query.process_all_available().unwrap();
    let rows: Vec<Price> = query
        .take_output()
        .into_iter()
        .flat_map(|(_, rows)| rows)
        .collect();
    assert_eq!(
        rows,
        vec![Price {
            auction: 1,
            price: 100
        }]
    );
    query.stop().unwrap();
}
