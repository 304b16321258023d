use weir::Record;
use weir::record::Timestamp;

#[derive(Record)]
struct Bid {
    auction: i64,
    price: i64,
    date_time: Timestamp,
}

#[derive(Record)]
struct Top {
    auction: i64,
    top: Option<i64>,
}

fn main() {
    // Append mode emits a group once, when it is final: that needs a watermark on a grouping key.
    let _query = weir::query!(
        Top = "SELECT auction, max(price) AS top FROM Bid GROUP BY auction",
        inputs(Bid),
        mode = "append",
    );
}
