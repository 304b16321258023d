mod common;
use weir_plan::{sql_to_plan, check_streaming, OutputMode};

#[test]
fn explore() {
    let c = common::catalog();
    for q in [
        "SELECT window(date_time, '10 seconds') AS w, auction, count(*) AS n FROM bids GROUP BY window(date_time, '10 seconds'), auction",
        "SELECT auction, price * 2 AS p2, price / 3, upper(channel) FROM bids WHERE price > 10 AND channel LIKE 'a%'",
        "SELECT user_id, sum(amount), avg(amount), amount + 1.5 FROM events GROUP BY user_id, amount",
        "SELECT b.auction, a.item FROM bids b JOIN auctions a ON b.auction = a.id",
        "SELECT explode(split(tags, ',')) AS tag, id FROM events",
        "SELECT w.start, n FROM (SELECT window(date_time, '1 minute') AS w, count(*) AS n FROM bids GROUP BY 1) t",
        "SELECT nope FROM bids",
        "SELECT auction, bidder FROM bids GROUP BY auction",
        "SELECT lowr(channel) FROM bids",
        "SELECT auction FROM bids ORDER BY auction",
    ] {
        println!("=== {q}");
        match sql_to_plan(&c, q) {
            Ok(p) => {
                println!("{p}schema: {}", p.schema_description());
                for m in [OutputMode::Append, OutputMode::Update, OutputMode::Complete] {
                    println!("  {m}: {:?}", check_streaming(&p, m).err().map(|e| e.to_string()));
                }
            }
            Err(e) => println!("{}", e.render_with_source(q)),
        }
    }
}
