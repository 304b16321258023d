use weir::Record;
use weir::record::Timestamp;

#[derive(Record)]
struct Bid {
    auction: i64,
    price: i64,
    date_time: Timestamp,
}

#[derive(Record)]
struct Stats {
    auction: i64,
    bids: i32,
    top: i64,
    channel: String,
}

fn main() {
    let _query = weir::query!(
        Stats = "SELECT auction, count(*) AS bids, max(price) AS top, min(price) AS low
                 FROM Bid GROUP BY auction",
        inputs(Bid),
        mode = "update",
    );
}
