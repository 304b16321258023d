use weir::Record;
use weir::record::Timestamp;

#[derive(Record)]
struct Bid {
    auction: i64,
    price: i64,
    date_time: Timestamp,
}

#[derive(Record)]
struct Later {
    auction: i64,
    later: Timestamp,
}

fn main() {
    let _query = weir::query!(
        Later = "SELECT auction,
                        price + date_time AS later
                 FROM Bid",
        inputs(Bid),
    );
}
