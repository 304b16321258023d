//! Shared fixtures: the catalog of the design's example script.

use weir_plan::Catalog;

/// DDL used by every test: a watermarked stream, an un-watermarked stream, a static table.
pub const SCRIPT: &str = "
CREATE SOURCE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
                    date_time TIMESTAMP, extra STRING,
                    WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND)
  WITH (format = 'csv', path = 'data/bids', maxFilesPerTrigger = '1');
CREATE SOURCE events (id STRING, user_id BIGINT, amount DECIMAL(10,2), ts TIMESTAMP, tags STRING)
  WITH (format = 'json', path = 'data/events');
CREATE TABLE auctions (id BIGINT, item STRING, seller BIGINT) WITH (format = 'parquet', path = 'data/auctions');
";

/// A catalog with [`SCRIPT`] applied.
pub fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    if let Err(e) = catalog.execute_script(SCRIPT) {
        panic!("fixture script failed: {}", e.render_with_source(SCRIPT));
    }
    catalog
}
