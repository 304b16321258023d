//! Rendering Arrow values the way Spark prints them: cells of `Dataset.show()` (console table)
//! and JSON values (console `json` output, JSON file sink, memory-table rows).

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    LargeStringArray, StringArray,
};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

/// A JSON value whose objects keep their field order (Spark writes fields in schema order;
/// `serde_json::Map` would sort them).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    /// A plain value (never an object).
    Scalar(Value),
    /// An array.
    Array(Vec<Json>),
    /// An object, fields in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Compact JSON text, fields in order.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Scalar(v) => out.push_str(&v.to_string()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(name.clone()).to_string());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The same value as a `serde_json::Value` (object fields then sorted by name).
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Json::Scalar(v) => v.clone(),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

/// Java's `Double.toString`: `1.0`, `0.5`, `1.0E10`, `1.0E-5`, `NaN`, `Infinity`.
pub(crate) fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = v.abs();
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if (1e-3..1e7).contains(&abs) {
        let s = format!("{v}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

/// Microseconds since the epoch from a timestamp array element.
fn timestamp_micros(array: &ArrayRef, row: usize, unit: TimeUnit) -> i64 {
    use arrow::datatypes::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1000),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1000),
    }
}

fn datetime(micros: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_micros(micros)
}

/// Spark's `show()` text of a timestamp (UTC session): `2024-01-01 00:00:00` plus the
/// fraction without trailing zeros.
fn show_timestamp(micros: i64) -> String {
    let Some(dt) = datetime(micros) else {
        return micros.to_string();
    };
    let base = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = micros.rem_euclid(1_000_000);
    if frac == 0 {
        base
    } else {
        let digits = format!("{frac:06}");
        format!("{base}.{}", digits.trim_end_matches('0'))
    }
}

/// ISO-8601 UTC with milliseconds, Spark's JSON default: `2024-01-01T00:00:00.000Z`.
pub(crate) fn iso_timestamp(micros: i64) -> String {
    match datetime(micros) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => micros.to_string(),
    }
}

fn date_string(days: i32) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

fn fallback(array: &ArrayRef, row: usize) -> String {
    ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}

/// A cell as `Dataset.show()` prints it (`null` for nulls).
pub(crate) fn show_value(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) {
        return "null".into();
    }
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).to_string(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).to_string(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).to_string(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).to_string(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).to_string(),
        DataType::Float32 => java_double(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => java_double(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).to_string(),
        DataType::Date32 => date_string(
            array
                .as_primitive::<arrow::datatypes::Date32Type>()
                .value(row),
        ),
        DataType::Timestamp(unit, _) => show_timestamp(timestamp_micros(array, row, *unit)),
        DataType::Binary => {
            let bytes = array.as_binary::<i32>().value(row);
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
            format!("[{}]", hex.join(" "))
        }
        DataType::Struct(_) => {
            let s = array.as_struct();
            let parts: Vec<String> = s.columns().iter().map(|c| show_value(c, row)).collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::List(_) => {
            let values = array.as_list::<i32>().value(row);
            let parts: Vec<String> = (0..values.len()).map(|i| show_value(&values, i)).collect();
            format!("[{}]", parts.join(", "))
        }
        _ => fallback(array, row),
    }
}

/// A cell as a JSON value (`None` for null), Spark's JSON writer style: timestamps ISO-8601
/// UTC, dates `yyyy-MM-dd`, structs as objects, lists as arrays.
pub(crate) fn json_value(array: &ArrayRef, row: usize) -> Option<Json> {
    if array.is_null(row) {
        return None;
    }
    let number = |n: Option<Number>| n.map(Value::Number).unwrap_or(Value::Null);
    Some(Json::Scalar(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_any().downcast_ref::<BooleanArray>()?.value(row)),
        DataType::Int8 => Value::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Value::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row) as f64;
            if v.is_finite() {
                number(Number::from_f64(v))
            } else {
                Value::String(java_double(v))
            }
        }
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            if v.is_finite() {
                number(Number::from_f64(v))
            } else {
                Value::String(java_double(v))
            }
        }
        DataType::Utf8 => Value::String(
            array
                .as_any()
                .downcast_ref::<StringArray>()?
                .value(row)
                .into(),
        ),
        DataType::LargeUtf8 => Value::String(
            array
                .as_any()
                .downcast_ref::<LargeStringArray>()?
                .value(row)
                .into(),
        ),
        DataType::Date32 => Value::String(date_string(
            array.as_any().downcast_ref::<Date32Array>()?.value(row),
        )),
        DataType::Timestamp(unit, _) => {
            Value::String(iso_timestamp(timestamp_micros(array, row, *unit)))
        }
        DataType::Decimal128(_, _) => {
            let d = array.as_any().downcast_ref::<Decimal128Array>()?;
            let text = d.value_as_string(row);
            serde_json::from_str::<Number>(&text)
                .map(Value::Number)
                .unwrap_or(Value::String(text))
        }
        DataType::Binary => {
            let bytes = array.as_any().downcast_ref::<BinaryArray>()?.value(row);
            Value::String(base64_encode(bytes))
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut object = Vec::new();
            for (field, column) in fields.iter().zip(s.columns()) {
                if let Some(v) = json_value(column, row) {
                    object.push((field.name().clone(), v));
                }
            }
            return Some(Json::Object(object));
        }
        DataType::List(_) => {
            let values = array.as_list::<i32>().value(row);
            return Some(Json::Array(
                (0..values.len())
                    .map(|i| json_value(&values, i).unwrap_or(Json::Scalar(Value::Null)))
                    .collect(),
            ));
        }
        _ => Value::String(fallback(array, row)),
    }))
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Each row of `batch` as a JSON object in schema order (null fields left out, as Spark's
/// JSON writer does).
pub(crate) fn json_rows(batch: &RecordBatch) -> Vec<Vec<(String, Json)>> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            let mut object = Vec::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                if let Some(v) = json_value(column, row) {
                    object.push((field.name().clone(), v));
                }
            }
            object
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_java_and_spark() {
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.25), "0.25");
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(show_timestamp(1_500_000), "1970-01-01 00:00:01.5");
        assert_eq!(iso_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date_string(0), "1970-01-01");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }
}
