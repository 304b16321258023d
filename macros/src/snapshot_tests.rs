//! Snapshots of the derive's expansion (pretty-printed), in the workspace's `snapshots/`.

use syn::DeriveInput;

use crate::expand;

fn expand(source: &str) -> String {
    let input: DeriveInput = syn::parse_str(source).expect("test input is a valid item");
    let file: syn::File =
        syn::parse2(expand::derive(&input)).expect("the expansion is a list of items");
    prettyplease::unparse(&file)
}

macro_rules! assert_expansion {
    ($name:literal, $source:expr) => {
        insta::with_settings!(
            { snapshot_path => "../../snapshots", prepend_module_to_snapshot => false },
            { insta::assert_snapshot!($name, expand($source)) }
        )
    };
}

#[test]
fn expands_every_field_form() {
    assert_expansion!(
        "macros__derive_record_bid",
        r#"
        struct Bid {
            auction: i64,
            price: Option<i64>,
            #[weir(rename = "dateTime", event_time)]
            date_time: Timestamp,
            tags: Vec<String>,
            seller: Person,
            #[weir(skip)]
            cache: u64,
        }
        "#
    );
}

#[test]
fn expands_rename_all_and_raw_identifiers() {
    assert_expansion!(
        "macros__derive_record_rename_all",
        r#"
        #[weir(rename_all = "camelCase")]
        struct Auction {
            item_name: String,
            r#type: u8,
            #[weir(rename = "cat")]
            category: i64,
        }
        "#
    );
}

#[test]
fn an_error_comes_with_a_stub_impl() {
    assert_expansion!(
        "macros__derive_record_error_stub",
        r#"
        enum Side { Buy, Sell }
        "#
    );
}

#[test]
fn rename_all_rules_convert_snake_case_names() {
    use crate::attr::RenameRule;
    assert_eq!(RenameRule::CamelCase.apply("date_time"), "dateTime");
    assert_eq!(RenameRule::PascalCase.apply("date_time"), "DateTime");
    assert_eq!(RenameRule::Lowercase.apply("Date_Time"), "date_time");
    assert_eq!(
        RenameRule::ScreamingSnakeCase.apply("date_time"),
        "DATE_TIME"
    );
}
