#[derive(weir::Record)]
struct Person {
    id: i64,
    name: Option<&'static str>,
}

fn main() {}
