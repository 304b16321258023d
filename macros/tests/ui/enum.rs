use weir::Record;

#[derive(Record)]
enum Side {
    Buy,
    Sell,
}

fn main() {
    // The stub impl keeps this line free of a second error.
    let _ = Side::schema();
}
