#[derive(weir::Record)]
struct Bid {
    #[weir(rename = auction_id)]
    auction: i64,
}

fn main() {}
