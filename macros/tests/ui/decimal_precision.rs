use weir::record::Decimal;

#[derive(weir::Record)]
struct Price {
    amount: Decimal<40, 2>,
    fee: Option<Decimal<10, 12>>,
}

fn main() {}
