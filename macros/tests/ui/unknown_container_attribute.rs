#[derive(weir::Record)]
#[weir(table = "bids")]
struct Bid {
    auction: i64,
}

fn main() {}
