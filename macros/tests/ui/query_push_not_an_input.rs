use weir::record::Timestamp;
use weir::{Record, Session};

#[derive(Record)]
struct Bid {
    auction: i64,
    price: i64,
    date_time: Timestamp,
}

#[derive(Record)]
struct Auction {
    id: i64,
    reserve: i64,
}

#[derive(Record)]
struct Person {
    id: i64,
    name: String,
}

#[derive(Record)]
struct Price {
    auction: i64,
    price: i64,
}

fn main() -> weir::Result<()> {
    let session = Session::new()?;
    let query = weir::query!(
        Price = "SELECT auction, price FROM Bid UNION ALL SELECT id AS auction, reserve AS price FROM Auction",
        inputs(Bid, Auction),
    )
    .start(&session)?;
    query.push(&[Person { id: 1, name: "ann".to_owned() }])?;
    Ok(())
}
