#[derive(weir::Record)]
struct Bid {
    #[weir(renam = "auctionId")]
    auction: i64,
}

fn main() {}
