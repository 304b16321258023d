//! [`StateSchemaFingerprint`]: a stable description of a state's key and value columns.
//!
//! The lead stores it in the checkpoint to refuse, at restart, a query whose stateful part changed;
//! the state store compares it with the columns found in every state file it loads. It owns only
//! this description and its comparison; it must not read or write files.

use std::fmt;
use std::path::Path;

use arrow::datatypes::{DataType, IntervalUnit, Schema, TimeUnit, UnionMode};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One state column as recorded in a fingerprint: its name and a canonical type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateColumn {
    /// The column name.
    pub name: String,
    /// The canonical, Arrow-version-independent type name (e.g. `int64`, `timestamp(ms, UTC)`,
    /// `struct<start: timestamp(ms), end: timestamp(ms)>`).
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The key and value columns of a state, in order. Nullability is not part of it: it may change
/// between releases without making old state unreadable.
///
/// Its text form ([`StateSchemaFingerprint::to_json`], also its `Display`) is stable JSON, e.g.
/// `{"keys":[{"name":"word","type":"utf8"}],"values":[{"name":"count","type":"int64"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSchemaFingerprint {
    /// The key columns (the leading `key_columns` columns of the state schema).
    pub keys: Vec<StateColumn>,
    /// The value columns (all the others).
    pub values: Vec<StateColumn>,
}

impl StateSchemaFingerprint {
    /// The fingerprint of `schema` whose first `key_columns` columns are the key.
    ///
    /// Fails with [`Error::Internal`] when `key_columns` exceeds the number of columns.
    pub fn of(schema: &Schema, key_columns: usize) -> Result<Self> {
        let fields = schema.fields();
        if key_columns > fields.len() {
            return Err(Error::Internal(format!(
                "state schema has {} columns but {key_columns} key columns were declared",
                fields.len()
            )));
        }
        let column = |field: &arrow::datatypes::FieldRef| StateColumn {
            name: field.name().clone(),
            type_name: type_name(field.data_type()),
        };
        Ok(StateSchemaFingerprint {
            keys: fields[..key_columns].iter().map(column).collect(),
            values: fields[key_columns..].iter().map(column).collect(),
        })
    }

    /// The stable JSON text of this fingerprint.
    pub fn to_json(&self) -> String {
        let columns = |cols: &[StateColumn]| {
            cols.iter()
                .map(|c| {
                    format!(
                        "{{\"name\":{},\"type\":{}}}",
                        serde_json::Value::String(c.name.clone()),
                        serde_json::Value::String(c.type_name.clone())
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{{\"keys\":[{}],\"values\":[{}]}}",
            columns(&self.keys),
            columns(&self.values)
        )
    }

    /// Parses the text written by [`StateSchemaFingerprint::to_json`]; `origin` names the file
    /// it was read from, for the error.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| {
            Error::state(
                origin,
                format!(
                    "the recorded state schema is not readable ({e}); restore the file or delete \
                     the checkpoint to start over"
                ),
            )
        })
    }

    /// A short hex id (CRC32C of the JSON text), for logs and file names.
    pub fn id(&self) -> String {
        format!("{:08x}", crc32c::crc32c(self.to_json().as_bytes()))
    }

    /// `None` when `self` (the recorded state) and `current` (the running query) are equal;
    /// otherwise a sentence naming every added, removed, retyped or reordered column.
    pub fn describe_change(&self, current: &StateSchemaFingerprint) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(change) = describe_column_change("key", &self.keys, &current.keys) {
            parts.push(change);
        }
        if let Some(change) = describe_column_change("value", &self.values, &current.values) {
            parts.push(change);
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

impl fmt::Display for StateSchemaFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

fn describe_column_change(role: &str, old: &[StateColumn], new: &[StateColumn]) -> Option<String> {
    if old == new {
        return None;
    }
    let mut details = Vec::new();
    for column in old {
        match new.iter().find(|c| c.name == column.name) {
            None => details.push(format!("removed {}: {}", column.name, column.type_name)),
            Some(now) if now.type_name != column.type_name => details.push(format!(
                "{} changed type from {} to {}",
                column.name, column.type_name, now.type_name
            )),
            Some(_) => {}
        }
    }
    for column in new {
        if !old.iter().any(|c| c.name == column.name) {
            details.push(format!("added {}: {}", column.name, column.type_name));
        }
    }
    if details.is_empty() {
        details.push("same columns in a different order".to_string());
    }
    Some(format!(
        "{role} columns were [{}], now [{}] ({})",
        list(old),
        list(new),
        details.join(", ")
    ))
}

fn list(columns: &[StateColumn]) -> String {
    columns
        .iter()
        .map(|c| format!("{}: {}", c.name, c.type_name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// A canonical type name that does not depend on how a given Arrow release prints types.
fn type_name(data_type: &DataType) -> String {
    use DataType as T;
    let simple = match data_type {
        T::Null => "null",
        T::Boolean => "boolean",
        T::Int8 => "int8",
        T::Int16 => "int16",
        T::Int32 => "int32",
        T::Int64 => "int64",
        T::UInt8 => "uint8",
        T::UInt16 => "uint16",
        T::UInt32 => "uint32",
        T::UInt64 => "uint64",
        T::Float16 => "float16",
        T::Float32 => "float32",
        T::Float64 => "float64",
        T::Date32 => "date32",
        T::Date64 => "date64",
        T::Binary => "binary",
        T::LargeBinary => "large_binary",
        T::BinaryView => "binary_view",
        T::Utf8 => "utf8",
        T::LargeUtf8 => "large_utf8",
        T::Utf8View => "utf8_view",
        _ => "",
    };
    if !simple.is_empty() {
        return simple.to_string();
    }
    let struct_body = |fields: &arrow::datatypes::Fields| {
        fields
            .iter()
            .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match data_type {
        T::Timestamp(unit, None) => format!("timestamp({})", unit_name(unit)),
        T::Timestamp(unit, Some(tz)) => format!("timestamp({}, {tz})", unit_name(unit)),
        T::Time32(unit) => format!("time32({})", unit_name(unit)),
        T::Time64(unit) => format!("time64({})", unit_name(unit)),
        T::Duration(unit) => format!("duration({})", unit_name(unit)),
        T::Interval(IntervalUnit::YearMonth) => "interval(year_month)".to_string(),
        T::Interval(IntervalUnit::DayTime) => "interval(day_time)".to_string(),
        T::Interval(IntervalUnit::MonthDayNano) => "interval(month_day_nano)".to_string(),
        T::FixedSizeBinary(n) => format!("fixed_size_binary({n})"),
        T::Decimal32(p, s) => format!("decimal32({p}, {s})"),
        T::Decimal64(p, s) => format!("decimal64({p}, {s})"),
        T::Decimal128(p, s) => format!("decimal128({p}, {s})"),
        T::Decimal256(p, s) => format!("decimal256({p}, {s})"),
        T::List(f) => format!("list<{}>", type_name(f.data_type())),
        T::LargeList(f) => format!("large_list<{}>", type_name(f.data_type())),
        T::ListView(f) => format!("list_view<{}>", type_name(f.data_type())),
        T::LargeListView(f) => format!("large_list_view<{}>", type_name(f.data_type())),
        T::FixedSizeList(f, n) => format!("fixed_size_list<{}>({n})", type_name(f.data_type())),
        T::Struct(fields) => format!("struct<{}>", struct_body(fields)),
        T::Map(entries, sorted) => format!(
            "map<{}>{}",
            type_name(entries.data_type()),
            if *sorted { "(sorted)" } else { "" }
        ),
        T::Dictionary(key, value) => {
            format!("dictionary<{}, {}>", type_name(key), type_name(value))
        }
        T::RunEndEncoded(ends, values) => format!(
            "run_end_encoded<{}, {}>",
            type_name(ends.data_type()),
            type_name(values.data_type())
        ),
        T::Union(fields, mode) => format!(
            "{}_union<{}>",
            match mode {
                UnionMode::Sparse => "sparse",
                UnionMode::Dense => "dense",
            },
            fields
                .iter()
                .map(|(id, f)| format!("{id} {}: {}", f.name(), type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Fields};

    use super::*;

    fn window_schema() -> Schema {
        let window = DataType::Struct(Fields::from(vec![
            Field::new(
                "start",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new(
                "end",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
        ]));
        Schema::new(vec![
            Field::new("window", window, false),
            Field::new("auction", DataType::Int64, false),
            Field::new("count", DataType::Int64, false),
            Field::new(
                "last_ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
                true,
            ),
        ])
    }

    #[test]
    fn json_text_is_stable_and_round_trips() {
        let fingerprint = StateSchemaFingerprint::of(&window_schema(), 2).unwrap();
        let json = fingerprint.to_json();
        assert_eq!(
            json,
            r#"{"keys":[{"name":"window","type":"struct<start: timestamp(ms), end: timestamp(ms)>"},{"name":"auction","type":"int64"}],"values":[{"name":"count","type":"int64"},{"name":"last_ts","type":"timestamp(us, UTC)"}]}"#
        );
        let parsed = StateSchemaFingerprint::from_json(&json, Path::new("x")).unwrap();
        assert_eq!(parsed, fingerprint);
        assert_eq!(fingerprint.to_string(), json);
        assert_eq!(fingerprint.id().len(), 8);
    }

    #[test]
    fn nullability_is_not_part_of_the_fingerprint() {
        let a = Schema::new(vec![Field::new("k", DataType::Utf8, false)]);
        let b = Schema::new(vec![Field::new("k", DataType::Utf8, true)]);
        assert_eq!(
            StateSchemaFingerprint::of(&a, 1).unwrap(),
            StateSchemaFingerprint::of(&b, 1).unwrap()
        );
    }

    #[test]
    fn describe_change_names_added_removed_and_retyped_columns() {
        let old = StateSchemaFingerprint::of(
            &Schema::new(vec![
                Field::new("word", DataType::Utf8, false),
                Field::new("count", DataType::Int64, false),
                Field::new("total", DataType::Int64, false),
            ]),
            1,
        )
        .unwrap();
        let new = StateSchemaFingerprint::of(
            &Schema::new(vec![
                Field::new("word", DataType::Utf8, false),
                Field::new("lang", DataType::Utf8, false),
                Field::new("count", DataType::Int64, false),
                Field::new("total", DataType::Float64, false),
            ]),
            2,
        )
        .unwrap();
        assert_eq!(old.describe_change(&old), None);
        let text = old.describe_change(&new).unwrap();
        assert_eq!(
            text,
            "key columns were [word: utf8], now [word: utf8, lang: utf8] (added lang: utf8); \
             value columns were [count: int64, total: int64], now [count: int64, total: float64] \
             (total changed type from int64 to float64)"
        );
    }

    #[test]
    fn too_many_key_columns_is_an_error() {
        let schema = Schema::new(vec![Field::new("k", DataType::Utf8, false)]);
        assert!(StateSchemaFingerprint::of(&schema, 2).is_err());
    }

    #[test]
    fn unreadable_text_names_the_file() {
        let err = StateSchemaFingerprint::from_json("{", Path::new("/ck/metadata")).unwrap_err();
        assert!(err.to_string().contains("/ck/metadata"), "{err}");
    }
}
