struct Connection;

#[derive(weir::Record)]
struct Bid {
    auction: i64,
    #[weir(skip)]
    connection: Connection,
}

fn main() {}
