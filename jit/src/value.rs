//! Row-at-a-time values for the interpreter: reading one value out of any supported Arrow
//! encoding and building Arrow arrays back from values. Owns [`V`]; must not evaluate expressions.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, ListBuilder, StringArray,
    StringBuilder, TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::{
    DataType, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};

use crate::error::{JitError, Result};
use crate::spec::Scalar;

/// One interpreter value. Integers of every width, decimals (unscaled), dates and timestamps are
/// `Int`; Float32 values are stored exactly as f64.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// SQL NULL.
    Null,
    /// Boolean.
    Bool(bool),
    /// Any integer-backed value.
    Int(i128),
    /// Float32/Float64.
    Float(f64),
    /// A string.
    Str(Arc<str>),
    /// A list (split()).
    List(Vec<V>),
}

impl V {
    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, V::Null)
    }
}

/// Converts a literal.
pub fn scalar_value(s: &Scalar) -> V {
    match s {
        Scalar::Null(_) => V::Null,
        Scalar::Boolean(b) => V::Bool(*b),
        Scalar::Int8(v) => V::Int(*v as i128),
        Scalar::Int16(v) => V::Int(*v as i128),
        Scalar::Int32(v) => V::Int(*v as i128),
        Scalar::Int64(v) => V::Int(*v as i128),
        Scalar::UInt8(v) => V::Int(*v as i128),
        Scalar::UInt16(v) => V::Int(*v as i128),
        Scalar::UInt32(v) => V::Int(*v as i128),
        Scalar::UInt64(v) => V::Int(*v as i128),
        Scalar::Float32(v) => V::Float(*v as f64),
        Scalar::Float64(v) => V::Float(*v),
        Scalar::Decimal128(v, _, _) => V::Int(*v),
        Scalar::Date32(v) => V::Int(*v as i128),
        Scalar::TimestampMicros(v, _) => V::Int(*v as i128),
        Scalar::Utf8(s) => V::Str(Arc::from(s.as_str())),
    }
}

/// Reads row `i` of an array of any supported encoding.
pub fn read_value(array: &dyn Array, i: usize) -> Result<V> {
    if array.is_null(i) {
        return Ok(V::Null);
    }
    Ok(match array.data_type() {
        DataType::Boolean => V::Bool(array.as_boolean().value(i)),
        DataType::Int8 => V::Int(array.as_primitive::<Int8Type>().value(i) as i128),
        DataType::Int16 => V::Int(array.as_primitive::<Int16Type>().value(i) as i128),
        DataType::Int32 => V::Int(array.as_primitive::<Int32Type>().value(i) as i128),
        DataType::Int64 => V::Int(array.as_primitive::<Int64Type>().value(i) as i128),
        DataType::UInt8 => V::Int(array.as_primitive::<UInt8Type>().value(i) as i128),
        DataType::UInt16 => V::Int(array.as_primitive::<UInt16Type>().value(i) as i128),
        DataType::UInt32 => V::Int(array.as_primitive::<UInt32Type>().value(i) as i128),
        DataType::UInt64 => V::Int(array.as_primitive::<UInt64Type>().value(i) as i128),
        DataType::Float32 => V::Float(
            array
                .as_primitive::<arrow::datatypes::Float32Type>()
                .value(i) as f64,
        ),
        DataType::Float64 => V::Float(
            array
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(i),
        ),
        DataType::Decimal128(..) => V::Int(
            array
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .value(i),
        ),
        DataType::Date32 => V::Int(
            array
                .as_primitive::<arrow::datatypes::Date32Type>()
                .value(i) as i128,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => V::Int(
            array
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(i) as i128,
        ),
        DataType::Utf8 => V::Str(Arc::from(array.as_string::<i32>().value(i))),
        DataType::LargeUtf8 => V::Str(Arc::from(array.as_string::<i64>().value(i))),
        DataType::Utf8View => V::Str(Arc::from(array.as_string_view().value(i))),
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary();
            let key = dict.normalized_keys()[i];
            read_value(dict.values().as_ref(), key)?
        }
        t => {
            return Err(JitError::SchemaMismatch(format!(
                "unsupported column type {t}"
            )));
        }
    })
}

fn expect_int(v: &V) -> Option<i128> {
    if let V::Int(x) = v { Some(*x) } else { None }
}

/// Builds an array of logical type `dt` from values (Utf8 for strings).
pub fn build_array(dt: &DataType, values: &[V]) -> Result<ArrayRef> {
    let int = |v: &V| expect_int(v);
    // NaN payloads are not observable in SQL; export one canonical NaN so results are comparable.
    let float = |v: &V| {
        if let V::Float(f) = v {
            Some(if f.is_nan() { f64::NAN } else { *f })
        } else {
            None
        }
    };
    Ok(match dt {
        DataType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| if let V::Bool(b) = v { Some(*b) } else { None })
                .collect::<BooleanArray>(),
        ),
        DataType::Int8 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as i8))
                .collect::<Int8Array>(),
        ),
        DataType::Int16 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as i16))
                .collect::<Int16Array>(),
        ),
        DataType::Int32 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as i32))
                .collect::<Int32Array>(),
        ),
        DataType::Int64 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as i64))
                .collect::<Int64Array>(),
        ),
        DataType::UInt8 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as u8))
                .collect::<UInt8Array>(),
        ),
        DataType::UInt16 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as u16))
                .collect::<UInt16Array>(),
        ),
        DataType::UInt32 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as u32))
                .collect::<UInt32Array>(),
        ),
        DataType::UInt64 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as u64))
                .collect::<UInt64Array>(),
        ),
        DataType::Float32 => Arc::new(
            values
                .iter()
                .map(|v| float(v).map(|x| x as f32))
                .collect::<Float32Array>(),
        ),
        DataType::Float64 => Arc::new(values.iter().map(float).collect::<Float64Array>()),
        DataType::Decimal128(p, s) => Arc::new(
            values
                .iter()
                .map(int)
                .collect::<Decimal128Array>()
                .with_precision_and_scale(*p, *s)?,
        ),
        DataType::Date32 => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as i32))
                .collect::<Date32Array>(),
        ),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
            values
                .iter()
                .map(|v| int(v).map(|x| x as i64))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone_opt(tz.clone()),
        ),
        DataType::Utf8 => Arc::new(
            values
                .iter()
                .map(|v| {
                    if let V::Str(s) = v {
                        Some(s.as_ref())
                    } else {
                        None
                    }
                })
                .collect::<StringArray>(),
        ),
        DataType::List(_) => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for v in values {
                match v {
                    V::List(items) => {
                        for it in items {
                            match it {
                                V::Str(s) => b.values().append_value(s),
                                _ => b.values().append_null(),
                            }
                        }
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Null => Arc::new(arrow::array::NullArray::new(values.len())),
        t => {
            return Err(JitError::Unsupported(format!(
                "cannot build an array of type {t}"
            )));
        }
    })
}
