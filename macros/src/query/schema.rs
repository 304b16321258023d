//! Rust field types as Arrow types, at compile time, following the table of `weir::record`
//! (which is the runtime truth: the two must agree), and the check that a query's output
//! columns can be read into the output Record.
//!
//! Types are recognised by the last segment of their path (`i64`, `String`, `Timestamp`,
//! `Option<T>`, ...); any other path is a nested Record, whose schema comes from its own
//! callback. A type alias therefore cannot be seen through (documented on `query!`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, GenericArgument, Lit, Path, PathArguments, Result, Type};

use super::input::{SchemaBlock, name};

/// What a field type is, as far as `query!` can tell from its syntax.
enum Shape<'a> {
    /// A type with a fixed Arrow type.
    Leaf(DataType),
    /// `Option<T>`.
    Option(&'a Type),
    /// `Vec<T>`.
    List(&'a Type),
    /// A nested Record, by path.
    Record(&'a Path),
}

fn shape(ty: &Type) -> Result<Shape<'_>> {
    let path = match ty {
        Type::Group(group) => return shape(&group.elem),
        Type::Paren(paren) => return shape(&paren.elem),
        Type::Path(path) if path.qself.is_none() => &path.path,
        _ => {
            return Err(Error::new(
                ty.span(),
                "query! cannot map this field type to an Arrow type",
            ));
        }
    };
    let Some(last) = path.segments.last() else {
        return Err(Error::new(ty.span(), "expected a type"));
    };
    let leaf = |data_type| Ok(Shape::Leaf(data_type));
    match last.ident.to_string().as_str() {
        "i8" => leaf(DataType::Int8),
        "i16" => leaf(DataType::Int16),
        "i32" => leaf(DataType::Int32),
        "i64" => leaf(DataType::Int64),
        "u8" => leaf(DataType::UInt8),
        "u16" => leaf(DataType::UInt16),
        "u32" => leaf(DataType::UInt32),
        "u64" => leaf(DataType::UInt64),
        "f32" => leaf(DataType::Float32),
        "f64" => leaf(DataType::Float64),
        "bool" => leaf(DataType::Boolean),
        "String" => leaf(DataType::Utf8),
        "Timestamp" => leaf(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )),
        "Date" => leaf(DataType::Date32),
        "Decimal" => {
            let (precision, scale) = decimal_arguments(&last.arguments).ok_or_else(|| {
                Error::new(
                    ty.span(),
                    "query! needs a Decimal's precision and scale as literals: Decimal<10, 2>",
                )
            })?;
            leaf(DataType::Decimal128(precision, scale))
        }
        "Option" => single_argument(&last.arguments, ty).map(Shape::Option),
        "Vec" => single_argument(&last.arguments, ty).map(Shape::List),
        _ => Ok(Shape::Record(path)),
    }
}

fn single_argument<'a>(arguments: &'a PathArguments, ty: &Type) -> Result<&'a Type> {
    if let PathArguments::AngleBracketed(arguments) = arguments
        && arguments.args.len() == 1
        && let Some(GenericArgument::Type(inner)) = arguments.args.first()
    {
        return Ok(inner);
    }
    Err(Error::new(ty.span(), "expected one type argument"))
}

fn decimal_arguments(arguments: &PathArguments) -> Option<(u8, i8)> {
    let PathArguments::AngleBracketed(arguments) = arguments else {
        return None;
    };
    let literal = |argument: Option<&GenericArgument>| match argument {
        Some(GenericArgument::Const(Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }))) => Some(int.clone()),
        _ => None,
    };
    let precision = literal(arguments.args.first())?.base10_parse().ok()?;
    let scale = literal(arguments.args.get(1))?.base10_parse().ok()?;
    Some((precision, scale))
}

/// The nested Record types that `ty` mentions (paths as written in the struct).
pub fn nested_records<'a>(ty: &'a Type, found: &mut Vec<&'a Path>) {
    match shape(ty) {
        Ok(Shape::Option(inner) | Shape::List(inner)) => nested_records(inner, found),
        Ok(Shape::Record(path)) => found.push(path),
        Ok(Shape::Leaf(_)) | Err(_) => {}
    }
}

/// Every received schema by record name, to resolve nested Records.
pub struct Schemas<'a> {
    blocks: HashMap<String, &'a SchemaBlock>,
}

impl<'a> Schemas<'a> {
    pub fn new(blocks: &'a [SchemaBlock]) -> Self {
        Schemas {
            blocks: blocks
                .iter()
                .map(|block| (name(&block.record), block))
                .collect(),
        }
    }

    pub fn contains(&self, record: &str) -> bool {
        self.blocks.contains_key(record)
    }

    /// The Arrow schema of the record named `record`, as `weir::record` builds it.
    pub fn schema(&self, record: &str, span: Span) -> Result<Arc<Schema>> {
        Ok(Arc::new(Schema::new(self.fields(record, span, 0)?)))
    }

    fn fields(&self, record: &str, span: Span, depth: usize) -> Result<Fields> {
        let block = self.blocks.get(record).ok_or_else(|| {
            Error::new(
                span,
                format!("query! has no schema for `{record}`; does it #[derive(weir::Record)]?"),
            )
        })?;
        if depth > 32 {
            return Err(Error::new(
                block.record.span(),
                format!("the Record `{record}` contains itself; a record cannot be recursive"),
            ));
        }
        block
            .columns
            .iter()
            .map(|(column, ty)| {
                let (data_type, nullable) = self.data_type(ty, depth)?;
                Ok(Field::new(column.value(), data_type, nullable))
            })
            .collect()
    }

    /// The Arrow type of a field type, and whether it is nullable.
    fn data_type(&self, ty: &Type, depth: usize) -> Result<(DataType, bool)> {
        Ok(match shape(ty)? {
            Shape::Leaf(data_type) => (data_type, false),
            Shape::Option(inner) => (self.data_type(inner, depth)?.0, true),
            Shape::List(inner) => {
                let (item, nullable) = self.data_type(inner, depth)?;
                (
                    DataType::List(Arc::new(Field::new_list_field(item, nullable))),
                    false,
                )
            }
            Shape::Record(path) => {
                let record = path
                    .segments
                    .last()
                    .map(|segment| name(&segment.ident))
                    .unwrap_or_default();
                (
                    DataType::Struct(self.fields(&record, ty.span(), depth + 1)?),
                    false,
                )
            }
        })
    }
}

/// Why the query's output cannot be read into the output Record, one line per problem; empty
/// when it can. Columns are matched by name (as `Record::from_batch` does), every column of
/// the query must have a field and every field a column.
pub fn output_mismatches(query: &Schema, output: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    for column in query.fields() {
        match output.field_with_name(column.name()) {
            Ok(field) => field_mismatch(column.name(), column, field, &mut problems),
            Err(_) => problems.push(format!(
                "the query's column `{}` ({}) has no field",
                column.name(),
                describe(column)
            )),
        }
    }
    for field in output.fields() {
        if query.field_with_name(field.name()).is_err() {
            problems.push(format!(
                "the field for column `{}` ({}) is not a column of the query",
                field.name(),
                describe(field)
            ));
        }
    }
    problems
}

fn describe(field: &Field) -> String {
    if field.is_nullable() {
        format!("{}, nullable", field.data_type())
    } else {
        field.data_type().to_string()
    }
}

fn field_mismatch(path: &str, column: &Field, field: &Field, problems: &mut Vec<String>) {
    if !readable(column.data_type(), field.data_type()) {
        problems.push(format!(
            "column `{path}` has type {} but its field has type {}",
            column.data_type(),
            field.data_type()
        ));
    } else if column.is_nullable() && !field.is_nullable() {
        problems.push(format!(
            "column `{path}` can be null but its field is not an Option; declare it as Option<...>"
        ));
    }
    if let (DataType::Struct(columns), DataType::Struct(fields)) =
        (column.data_type(), field.data_type())
    {
        for child in fields {
            if let Some((_, column)) = columns.find(child.name()) {
                field_mismatch(&format!("{path}.{}", child.name()), column, child, problems);
            }
        }
    }
}

/// Whether a column of type `column` can be read into a field of type `field`, by the rules of
/// `weir::record` (any time zone, a narrower decimal, the other string encodings).
fn readable(column: &DataType, field: &DataType) -> bool {
    match (column, field) {
        (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Timestamp(..)) => true,
        (DataType::Decimal128(p, s), DataType::Decimal128(field_p, field_s)) => {
            p <= field_p && s == field_s
        }
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, DataType::Utf8) => true,
        (DataType::List(column), DataType::List(field)) => {
            readable(column.data_type(), field.data_type())
                && (field.is_nullable() || !column.is_nullable())
        }
        // Children are compared (and reported) one by one by `field_mismatch`.
        (DataType::Struct(columns), DataType::Struct(fields)) => fields
            .iter()
            .all(|child| columns.find(child.name()).is_some()),
        _ => column == field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: Vec<Field>) -> Schema {
        Schema::new(fields)
    }

    #[test]
    fn reads_like_the_record_runtime() {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let naive = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert!(readable(&naive, &utc));
        assert!(!readable(
            &DataType::Timestamp(TimeUnit::Millisecond, None),
            &utc
        ));
        assert!(readable(
            &DataType::Decimal128(8, 2),
            &DataType::Decimal128(10, 2)
        ));
        assert!(!readable(
            &DataType::Decimal128(12, 2),
            &DataType::Decimal128(10, 2)
        ));
        assert!(!readable(
            &DataType::Decimal128(10, 3),
            &DataType::Decimal128(10, 2)
        ));
        assert!(readable(&DataType::LargeUtf8, &DataType::Utf8));
        assert!(!readable(&DataType::Int32, &DataType::Int64));
        let list =
            |nullable| DataType::List(Arc::new(Field::new_list_field(DataType::Int64, nullable)));
        assert!(readable(&list(false), &list(true)));
        assert!(!readable(&list(true), &list(false)));
    }

    #[test]
    fn reports_every_mismatch_by_column() {
        let query = schema(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, true),
            Field::new("c", DataType::Utf8, false),
        ]);
        let output = schema(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, false),
            Field::new("d", DataType::Utf8, false),
        ]);
        assert_eq!(
            output_mismatches(&query, &output),
            vec![
                "column `b` can be null but its field is not an Option; declare it as Option<...>",
                "the query's column `c` (Utf8) has no field",
                "the field for column `d` (Utf8) is not a column of the query",
            ]
        );
        assert!(output_mismatches(&query, &query).is_empty());
    }

    #[test]
    fn compares_nested_struct_fields() {
        let window = |nullable| {
            DataType::Struct(Fields::from(vec![Field::new(
                "start",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                nullable,
            )]))
        };
        let query = schema(vec![Field::new("window", window(true), false)]);
        let output = schema(vec![Field::new("window", window(false), false)]);
        assert_eq!(
            output_mismatches(&query, &output),
            vec![
                "column `window.start` can be null but its field is not an Option; declare it as Option<...>"
            ]
        );
    }

    #[test]
    fn maps_field_types_like_the_record_table() {
        use super::super::input::SchemaBlock;
        use syn::parse_quote;
        let block = |record: &str, columns: Vec<(&str, Type)>| SchemaBlock {
            record: syn::Ident::new(record, Span::call_site()),
            columns: columns
                .into_iter()
                .map(|(column, ty)| (syn::LitStr::new(column, Span::call_site()), ty))
                .collect(),
        };
        let blocks = vec![
            block(
                "Row",
                vec![
                    ("id", parse_quote!(u32)),
                    ("name", parse_quote!(Option<::std::string::String>)),
                    ("tags", parse_quote!(Vec<Option<i16>>)),
                    ("amount", parse_quote!(weir::record::Decimal<10, 2>)),
                    ("day", parse_quote!(Date)),
                    ("inner", parse_quote!(crate::Inner)),
                ],
            ),
            block("Inner", vec![("at", parse_quote!(Timestamp))]),
        ];
        let schemas = Schemas::new(&blocks);
        let row = schemas.schema("Row", Span::call_site()).unwrap();
        let expected = Schema::new(vec![
            Field::new("id", DataType::UInt32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true))),
                false,
            ),
            Field::new("amount", DataType::Decimal128(10, 2), false),
            Field::new("day", DataType::Date32, false),
            Field::new(
                "inner",
                DataType::Struct(Fields::from(vec![Field::new(
                    "at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                )])),
                false,
            ),
        ]);
        assert_eq!(*row, expected);
        let mut nested = Vec::new();
        for (_, ty) in &blocks[0].columns {
            nested_records(ty, &mut nested);
        }
        assert_eq!(nested.len(), 1);
        assert!(schemas.schema("Missing", Span::call_site()).is_err());
    }
}
