#[derive(weir::Record)]
struct Segment {
    ends: (i64, i64),
}

fn main() {}
