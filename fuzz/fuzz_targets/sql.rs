//! Any SQL text — a query, DDL or a whole script — gives a result or an error from weir's SQL
//! front end and analyzer, never a panic. Crashes found here become regression cases of the
//! `no_panic` property tests in `engine/plan/tests/`.
#![no_main]

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use libfuzzer_sys::fuzz_target;
use weir_plan::plan::Source;
use weir_plan::sql::Catalog;
use weir_plan::{OutputMode, check_streaming};

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("date_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
    ]));
    let _ = catalog.register_source(Source {
        name: "bids".into(),
        format: "memory".into(),
        options: Default::default(),
        table_schema: schema.clone(),
        schema,
        streaming: true,
        watermark: None,
        pushed_filters: Vec::new(),
        projection: None,
    });
    catalog
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut catalog = catalog();
    if let Ok(results) = catalog.execute_script(&text) {
        for r in results {
            if let weir_plan::sql::StatementResult::Query(plan) = r {
                for mode in [OutputMode::Append, OutputMode::Update, OutputMode::Complete] {
                    let _ = check_streaming(&plan, mode);
                    let _ = weir_plan::optimize(&plan);
                }
            }
        }
    }
});
