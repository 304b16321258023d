#[derive(weir::Record)]
struct Bid {
    #[weir(event_time)]
    date_time: i64,
}

fn main() {}
