use std::collections::HashMap;

#[derive(weir::Record)]
struct Counts {
    by_key: HashMap<String, i64>,
}

fn main() {}
