#[derive(weir::Record)]
#[weir(rename_all = "kebab-case")]
struct Bid {
    auction: i64,
}

fn main() {}
