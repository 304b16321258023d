//! Behaviour of `#[derive(weir::Record)]`: schemas, and batches converted to records and back,
//! through the facade exactly as a user crate sees it.

use std::sync::Arc;

use weir::Record;
use weir::arrow::array::{
    Array, ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use weir::arrow::datatypes::{DataType, Field, Fields, Int64Type, Schema, TimeUnit};
use weir::record::{Date, Decimal, RecordError, Timestamp};

#[derive(Record, Debug, Clone, PartialEq)]
struct AllTypes {
    tiny: i8,
    small: i16,
    int: i32,
    big: i64,
    utiny: u8,
    usmall: u16,
    uint: u32,
    ubig: u64,
    single: f32,
    double: f64,
    flag: bool,
    text: String,
    at: Timestamp,
    day: Date,
    amount: Decimal<10, 2>,
    maybe_big: Option<i64>,
    maybe_text: Option<String>,
    maybe_at: Option<Timestamp>,
}

fn all_types_rows() -> Vec<AllTypes> {
    vec![
        AllTypes {
            tiny: i8::MIN,
            small: i16::MAX,
            int: -7,
            big: i64::MAX,
            utiny: u8::MAX,
            usmall: 7,
            uint: u32::MAX,
            ubig: u64::MAX,
            single: 1.5,
            double: -0.25,
            flag: true,
            text: "héllo".to_owned(),
            at: Timestamp::from_micros(1_700_000_000_123_456),
            day: Date::from_days(20_000),
            amount: Decimal::from_unscaled(-99_999_999),
            maybe_big: Some(3),
            maybe_text: None,
            maybe_at: Some(Timestamp::from_micros(-1)),
        },
        AllTypes {
            tiny: 0,
            small: 0,
            int: 0,
            big: 0,
            utiny: 0,
            usmall: 0,
            uint: 0,
            ubig: 0,
            single: 0.0,
            double: f64::MAX,
            flag: false,
            text: String::new(),
            at: Timestamp::from_micros(0),
            day: Date::from_days(-1),
            amount: Decimal::from_unscaled(0),
            maybe_big: None,
            maybe_text: Some("x".to_owned()),
            maybe_at: None,
        },
    ]
}

#[test]
fn every_field_type_round_trips_with_nulls() {
    let rows = all_types_rows();
    let batch = AllTypes::to_batch(&rows).expect("rows convert");
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.schema(), AllTypes::schema());
    assert_eq!(
        batch.column_by_name("maybe_big").map(|c| c.null_count()),
        Some(1)
    );
    assert_eq!(AllTypes::from_batch(&batch).expect("batch converts"), rows);
}

#[test]
fn schema_maps_types_and_nullability() {
    let schema = AllTypes::schema();
    let field = |name: &str| schema.field_with_name(name).expect("field exists").clone();
    assert_eq!(field("big"), Field::new("big", DataType::Int64, false));
    assert_eq!(field("text"), Field::new("text", DataType::Utf8, false));
    assert_eq!(
        field("at"),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false
        )
    );
    assert_eq!(field("day"), Field::new("day", DataType::Date32, false));
    assert_eq!(
        field("amount"),
        Field::new("amount", DataType::Decimal128(10, 2), false)
    );
    assert_eq!(
        field("maybe_text"),
        Field::new("maybe_text", DataType::Utf8, true)
    );
    assert_eq!(schema.fields().len(), 18);
    assert!(
        Arc::ptr_eq(&schema, &AllTypes::schema()),
        "the schema is built once"
    );
}

#[derive(Record, Debug, Clone, PartialEq)]
struct Person {
    id: i64,
    name: String,
    email: Option<String>,
}

#[derive(Record, Debug, Clone, PartialEq)]
struct Auction {
    id: i64,
    seller: Person,
    reviewer: Option<Person>,
    tags: Vec<String>,
    scores: Option<Vec<Option<i64>>>,
    history: Vec<Person>,
}

fn auctions() -> Vec<Auction> {
    let alice = Person {
        id: 1,
        name: "alice".to_owned(),
        email: Some("a@example.com".to_owned()),
    };
    let bob = Person {
        id: 2,
        name: "bob".to_owned(),
        email: None,
    };
    vec![
        Auction {
            id: 10,
            seller: alice.clone(),
            reviewer: None,
            tags: vec!["old".to_owned(), "rare".to_owned()],
            scores: Some(vec![Some(1), None, Some(3)]),
            history: vec![bob.clone(), alice.clone()],
        },
        Auction {
            id: 11,
            seller: bob.clone(),
            reviewer: Some(alice),
            tags: vec![],
            scores: None,
            history: vec![],
        },
    ]
}

#[test]
fn nested_structs_and_lists_round_trip() {
    let rows = auctions();
    let batch = Auction::to_batch(&rows).expect("rows convert");
    let seller = batch.column_by_name("seller").expect("struct column");
    assert!(matches!(seller.data_type(), DataType::Struct(fields) if fields.len() == 3));
    assert_eq!(
        batch.column_by_name("reviewer").map(|c| c.null_count()),
        Some(1)
    );
    assert!(matches!(
        Auction::schema().field_with_name("tags").map(|f| f.data_type().clone()),
        Ok(DataType::List(item)) if item.data_type() == &DataType::Utf8 && !item.is_nullable()
    ));
    assert_eq!(Auction::from_batch(&batch).expect("batch converts"), rows);
}

#[test]
fn iter_batch_yields_the_same_rows() {
    let rows = auctions();
    let batch = Auction::to_batch(&rows).expect("rows convert");
    let iter = Auction::iter_batch(&batch).expect("columns found");
    assert_eq!(iter.len(), 2);
    let read: Result<Vec<_>, _> = iter.collect();
    assert_eq!(read.expect("rows convert"), rows);
}

#[derive(Record, Debug, PartialEq)]
struct Bid {
    auction: i64,
    #[weir(rename = "dateTime", event_time)]
    date_time: Timestamp,
    #[weir(skip)]
    seen: u32,
    r#type: Option<String>,
}

#[test]
fn columns_match_by_name_in_any_order_with_rename_skip_and_extra_columns() {
    let batch = RecordBatch::try_from_iter([
        (
            "type",
            Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
        ),
        ("unused", Arc::new(Int32Array::from(vec![0, 0])) as ArrayRef),
        (
            "dateTime",
            Arc::new(TimestampMicrosecondArray::from(vec![5, 6]).with_timezone("UTC")) as ArrayRef,
        ),
        (
            "auction",
            Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
        ),
    ])
    .expect("valid batch");
    let bids = Bid::from_batch(&batch).expect("batch converts");
    assert_eq!(
        bids,
        vec![
            Bid {
                auction: 1,
                date_time: Timestamp::from_micros(5),
                seen: 0,
                r#type: Some("a".to_owned()),
            },
            Bid {
                auction: 2,
                date_time: Timestamp::from_micros(6),
                seen: 0,
                r#type: None,
            },
        ]
    );
    let names: Vec<_> = Bid::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["auction", "dateTime", "type"]);
    assert_eq!(Bid::event_time_column(), Some("dateTime"));
    assert_eq!(Person::event_time_column(), None);
}

#[derive(Record, Debug, PartialEq)]
#[weir(rename_all = "camelCase")]
struct NexmarkPerson {
    id: i64,
    credit_card: String,
    #[weir(rename = "ts")]
    date_time: Timestamp,
}

#[test]
fn rename_all_applies_to_fields_without_a_rename() {
    let names: Vec<_> = NexmarkPerson::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "creditCard", "ts"]);
}

#[test]
fn a_missing_column_names_it_and_lists_the_batch_columns() {
    let batch = RecordBatch::try_from_iter([
        ("auction", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        (
            "date_time",
            Arc::new(TimestampMicrosecondArray::from(vec![5])) as ArrayRef,
        ),
    ])
    .expect("valid batch");
    let error = Bid::from_batch(&batch).expect_err("dateTime is missing");
    assert!(
        matches!(&error, RecordError::MissingColumn { column, available }
            if column == "dateTime" && available == &["auction", "date_time"]),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(
            "column 'dateTime' not found; the input has columns [auction, date_time]."
        ),
        "{error}"
    );
}

#[test]
fn a_wrong_type_names_column_expected_and_found() {
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
        ("name", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
        ("email", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
    ])
    .expect("valid batch");
    let error = Person::from_batch(&batch).expect_err("id is Int32");
    assert_eq!(
        error.to_string(),
        "column 'id' has type Int32, but the record field needs Int64"
    );
}

#[test]
fn a_null_in_a_non_option_field_names_column_and_row() {
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        (
            "name",
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])) as ArrayRef,
        ),
        (
            "email",
            Arc::new(StringArray::from(vec![None::<&str>, None, None])) as ArrayRef,
        ),
    ])
    .expect("valid batch");
    let error = Person::from_batch(&batch).expect_err("name is null in row 2");
    assert!(
        matches!(&error, RecordError::NullValue { column, row: 2 } if column == "name"),
        "{error:?}"
    );
    let mut rows = Person::iter_batch(&batch).expect("columns found");
    assert!(rows.next().is_some_and(|row| row.is_ok()));
    assert!(rows.next().is_some_and(|row| row.is_ok()));
    assert!(rows.next().is_some_and(|row| row.is_err()));
    assert!(rows.next().is_none());
}

#[test]
fn nested_errors_carry_the_column_path() {
    let person_fields = Fields::from(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]);
    let seller = StructArray::new(
        person_fields,
        vec![
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef,
        ],
        None,
    );
    let batch = RecordBatch::try_from_iter([("seller", Arc::new(seller) as ArrayRef)])
        .expect("valid batch");

    #[derive(Record, Debug)]
    struct Lot {
        seller: Person,
    }
    let error = Lot::from_batch(&batch).expect_err("email is missing");
    assert!(
        error
            .to_string()
            .starts_with("column 'seller.email' not found; the input has columns [id, name]."),
        "{error}"
    );

    #[derive(Record, Debug)]
    struct Named {
        name: String,
    }
    #[derive(Record, Debug)]
    struct NamedLot {
        seller: Named,
    }
    let error = NamedLot::from_batch(&batch).expect_err("name is null");
    assert!(
        matches!(&error, RecordError::NullValue { column, row: 0 } if column == "seller.name"),
        "{error:?}"
    );
}

#[test]
fn a_null_list_element_names_its_position() {
    let scores = ListArray::from_iter_primitive::<Int64Type, _, _>([
        Some(vec![Some(1)]),
        Some(vec![Some(2), None]),
    ]);
    let batch = RecordBatch::try_from_iter([("scores", Arc::new(scores) as ArrayRef)])
        .expect("valid batch");

    #[derive(Record, Debug)]
    struct Scores {
        scores: Vec<i64>,
    }
    let error = Scores::from_batch(&batch).expect_err("element 1 of row 1 is null");
    assert!(
        matches!(&error, RecordError::NullValue { column, row: 1 } if column == "scores[1]"),
        "{error:?}"
    );
}

#[test]
fn an_empty_slice_makes_an_empty_batch_with_the_schema() {
    let batch = Auction::to_batch(&[]).expect("no rows convert");
    assert_eq!(batch.num_rows(), 0);
    assert_eq!(batch.schema(), Auction::schema());
    assert!(Auction::from_batch(&batch).expect("empty").is_empty());
}

#[test]
fn a_record_without_columns_keeps_the_row_count() {
    #[derive(Record, Debug, Default, PartialEq)]
    struct OnlySkipped {
        #[weir(skip)]
        note: String,
    }
    let batch = OnlySkipped::to_batch(&[OnlySkipped::default(), OnlySkipped::default()])
        .expect("rows convert");
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.num_columns(), 0);
    assert_eq!(OnlySkipped::from_batch(&batch).expect("converts").len(), 2);
    assert_eq!(*OnlySkipped::schema(), Schema::empty());
}

#[test]
fn a_decimal_beyond_its_precision_is_an_error_not_a_bad_batch() {
    #[derive(Record, Debug)]
    struct Price {
        amount: Decimal<4, 2>,
    }
    let error = Price::to_batch(&[Price {
        amount: Decimal::from_unscaled(123_456),
    }])
    .expect_err("six digits in DECIMAL(4, 2)");
    assert!(
        error
            .to_string()
            .starts_with("cannot build column 'amount': "),
        "{error}"
    );
}
