#[derive(weir::Record)]
struct Point(i64, i64);

fn main() {}
