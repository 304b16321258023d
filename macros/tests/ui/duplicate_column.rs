#[derive(weir::Record)]
struct Bid {
    auction: i64,
    #[weir(rename = "auction")]
    auction_id: i64,
}

fn main() {}
