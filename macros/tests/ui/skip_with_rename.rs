#[derive(weir::Record)]
struct Bid {
    auction: i64,
    #[weir(skip, rename = "cache")]
    cache: Vec<u8>,
}

fn main() {}
