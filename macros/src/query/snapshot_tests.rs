//! Snapshot of a `query!` expansion (the final step, with the schemas the callbacks report),
//! in the workspace's `snapshots/`.

use quote::quote;

use super::expand;

#[test]
fn expands_a_windowed_aggregation_into_a_typed_query() {
    let tokens = expand(quote! {
        @schema Bid { "auction": i64, "bidder": i64, "price": i64, "date_time": Timestamp }
        @schema AuctionWindow { "auction": i64, "window": Window, "bids": i64, "max_price": Option<i64> }
        @schema Window { "start": Option<Timestamp>, "end": Option<Timestamp> }
        @query [
            AuctionWindow = "SELECT auction, window(date_time, '10 seconds') AS window, count(*) AS bids, max(price) AS max_price \
                             FROM Bid GROUP BY auction, window(date_time, '10 seconds')",
            inputs(Bid),
            mode = "update",
            watermark(Bid.date_time, "5 seconds"),
        ]
    });
    let file: syn::File = syn::parse_quote!(
        fn typed_query() {
            let _ = #tokens;
        }
    );
    insta::with_settings!(
        { snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false },
        { insta::assert_snapshot!("macros__query_windowed_aggregation", prettyplease::unparse(&file)) }
    );
}

#[test]
fn asks_the_first_missing_record_for_its_schema() {
    let tokens = expand(quote! {
        AuctionCount = "SELECT auction, count(*) AS bids FROM Bid GROUP BY auction",
        inputs(model::Bid),
        mode = "complete",
    });
    insta::with_settings!(
        { snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false },
        { insta::assert_snapshot!("macros__query_schema_request", tokens.to_string()) }
    );
}
