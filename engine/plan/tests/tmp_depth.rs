#[test]
fn probe() {
    for n in [1000usize, 5000, 20000, 50000] {
        let sql = format!("SELECT price{} FROM bids", " + 1".repeat(n));
        let r = weir_plan::sql::parse_sql(&sql);
        eprintln!("parsed {n}: {}", r.is_ok());
        drop(r);
        eprintln!("dropped {n}");
    }
}
