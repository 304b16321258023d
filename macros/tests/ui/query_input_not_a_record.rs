use weir::Record;

struct Bid {
    auction: i64,
}

#[derive(Record)]
struct Auctions {
    auction: i64,
}

fn main() {
    let _bid = Bid { auction: 1 };
    let _query = weir::query!(Auctions = "SELECT auction FROM Bid", inputs(Bid));
}
