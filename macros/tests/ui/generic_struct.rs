#[derive(weir::Record)]
struct Wrapper<T> {
    value: T,
}

fn main() {}
