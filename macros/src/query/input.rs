//! Parses `query!`'s input: the user's arguments, and the `@schema` blocks that record schema
//! callbacks prepend on the way back. Knows the grammar only; meaning is checked in `analyse`.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Path, Result, Token, Type, braced, bracketed, parenthesized};

/// The user's arguments:
/// `Out = "SELECT ...", inputs(A, B), mode = "update", watermark(A.column, "10 seconds")`.
pub struct Args {
    /// The output Record type.
    pub output: Path,
    /// The SQL query.
    pub sql: LitStr,
    /// The `inputs` keyword, for errors about the list as a whole.
    pub inputs_keyword: Ident,
    /// The input Record types, in order; each is a table named after its last segment.
    pub inputs: Vec<Path>,
    /// `mode = "..."`; Append when absent, as in Spark.
    pub mode: Option<LitStr>,
    /// `watermark(Table.column, "delay")`, any number.
    pub watermarks: Vec<WatermarkArg>,
}

/// `watermark(Table.column, "delay")`.
pub struct WatermarkArg {
    /// The input table (a Record type name from `inputs`).
    pub table: Ident,
    /// The event-time column.
    pub column: Ident,
    /// The delay, an interval string.
    pub delay: LitStr,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> Result<Self> {
        let output: Path = input.parse()?;
        input.parse::<Token![=]>()?;
        let sql: LitStr = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected the SQL query as a string literal: `Out = \"SELECT ...\"`",
            )
        })?;
        let mut inputs: Option<(Ident, Vec<Path>)> = None;
        let mut mode: Option<LitStr> = None;
        let mut watermarks = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let keyword = input.call(Ident::parse_any)?;
            match keyword.to_string().as_str() {
                "inputs" => {
                    if inputs.is_some() {
                        return Err(syn::Error::new(keyword.span(), "duplicate `inputs(...)`"));
                    }
                    let content;
                    parenthesized!(content in input);
                    let types = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
                    inputs = Some((keyword, types.into_iter().collect()));
                }
                "mode" => {
                    if mode.is_some() {
                        return Err(syn::Error::new(keyword.span(), "duplicate `mode`"));
                    }
                    input.parse::<Token![=]>()?;
                    mode = Some(input.parse()?);
                }
                "watermark" => {
                    let content;
                    parenthesized!(content in input);
                    let table = content.call(Ident::parse_any)?;
                    content.parse::<Token![.]>()?;
                    let column = content.call(Ident::parse_any)?;
                    content.parse::<Token![,]>()?;
                    let delay = content.parse()?;
                    if !content.is_empty() {
                        return Err(content.error("expected `watermark(Table.column, \"delay\")`"));
                    }
                    watermarks.push(WatermarkArg {
                        table,
                        column,
                        delay,
                    });
                }
                _ => {
                    return Err(syn::Error::new(
                        keyword.span(),
                        "unknown query! argument; expected `inputs(...)`, `mode = \"...\"` or `watermark(Table.column, \"delay\")`",
                    ));
                }
            }
        }
        let Some((inputs_keyword, inputs)) = inputs else {
            return Err(syn::Error::new(
                sql.span(),
                "query! needs its input Record types: add `inputs(Type, ...)` after the SQL",
            ));
        };
        Ok(Args {
            output,
            sql,
            inputs_keyword,
            inputs,
            mode,
            watermarks,
        })
    }
}

/// The name of a type path's last segment (the table name of an input).
pub fn last_ident(path: &Path) -> Option<&Ident> {
    path.segments.last().map(|segment| &segment.ident)
}

/// The name of an identifier without `r#`.
pub fn name(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// One record's columns as its schema callback reports them.
pub struct SchemaBlock {
    /// The name `query!` asked for (the struct's name, unless a `use ... as` renamed it).
    pub record: Ident,
    /// `(column name, field type)` in declaration order, skipped fields left out.
    pub columns: Vec<(LitStr, Type)>,
}

/// A continuation call: `@schema Name { "column": Type, ... }`*, each newly received one followed
/// by `@for Requested` (the name it was asked for), then `@query [ user args ]`.
pub struct Continuation {
    /// Every schema received so far (the newest first).
    pub schemas: Vec<SchemaBlock>,
    /// The user's arguments, as written.
    pub args: TokenStream,
}

impl Parse for Continuation {
    fn parse(input: ParseStream) -> Result<Self> {
        let mut schemas = Vec::new();
        loop {
            input.parse::<Token![@]>()?;
            let keyword = input.call(Ident::parse_any)?;
            match keyword.to_string().as_str() {
                "schema" => {
                    let record = input.call(Ident::parse_any)?;
                    let content;
                    braced!(content in input);
                    let columns = Punctuated::<Column, Token![,]>::parse_terminated(&content)?;
                    schemas.push(SchemaBlock {
                        record,
                        columns: columns
                            .into_iter()
                            .map(|column| (column.name, column.ty))
                            .collect(),
                    });
                }
                "for" => {
                    let requested = input.call(Ident::parse_any)?;
                    if let Some(newest) = schemas.last_mut() {
                        newest.record = requested;
                    }
                }
                "query" => {
                    let content;
                    bracketed!(content in input);
                    let args = content.parse()?;
                    return Ok(Continuation { schemas, args });
                }
                _ => {
                    return Err(syn::Error::new(
                        keyword.span(),
                        "expected `@schema`, `@for` or `@query`",
                    ));
                }
            }
        }
    }
}

struct Column {
    name: LitStr,
    ty: Type,
}

impl Parse for Column {
    fn parse(input: ParseStream) -> Result<Self> {
        let name = input.parse()?;
        input.parse::<Token![:]>()?;
        let ty = input.parse()?;
        Ok(Column { name, ty })
    }
}
