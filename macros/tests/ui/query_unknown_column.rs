use weir::Record;
use weir::record::Timestamp;

#[derive(Record)]
struct Bid {
    auction: i64,
    price: i64,
    date_time: Timestamp,
}

#[derive(Record)]
struct Prices {
    auction: i64,
    price: i64,
}

fn main() {
    let _query = weir::query!(Prices = "SELECT auction, prise AS price FROM Bid", inputs(Bid));
}
