use weir::Record;
use weir::record::Timestamp;

#[derive(Record)]
struct Bid {
    auction: i64,
    bidder: i64,
    date_time: Timestamp,
}

#[derive(Record)]
struct Bidders {
    auction: i64,
    bidders: i64,
}

fn main() {
    let _query = weir::query!(
        Bidders = "SELECT auction, count(DISTINCT bidder) AS bidders FROM Bid GROUP BY auction",
        inputs(Bid),
        mode = "update",
    );
}
