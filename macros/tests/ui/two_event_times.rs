use weir::record::Timestamp;

#[derive(weir::Record)]
struct Bid {
    #[weir(event_time)]
    date_time: Timestamp,
    #[weir(event_time)]
    processed_at: Timestamp,
}

fn main() {}
