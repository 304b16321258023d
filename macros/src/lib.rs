//! weir-macros: `#[derive(Record)]` and `query!` for weir's typed Rust API.
//!
//! The derive turns a struct with named fields into a `weir::Record`: its Arrow schema and its
//! conversions from and to record batches. The pipeline follows dtolnay's derive crates:
//! `ast` (typed view of the input, spans kept) → `attr` (`#[weir(...)]`) → `valid`
//! (semantic checks) → `expand` (code), with `fallback` emitting a stub impl next to a
//! compile error so the user sees one error, not a cascade. It also emits a `macro_rules!`
//! schema callback per struct, through which [`query!`] (module `query`) learns the columns of
//! its Record types and analyses its SQL at compile time with weir-plan, the runtime analyzer.
//!
//! Generated code names only `::weir::…` paths (and `::core`), so it compiles in a crate that
//! depends on `weir` alone. The runtime it calls is `weir_engine::record` and
//! `weir_engine::typed`; this crate must not depend on the engine (weir-plan, which it uses at
//! compile time, has no runtime). User documentation lives there, on `weir::Record` and on
//! [`query!`].

mod ast;
mod attr;
mod expand;
mod fallback;
mod query;
mod valid;

#[cfg(test)]
mod snapshot_tests;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `weir::Record` for a struct with named fields: see `weir::record` for the field
/// types and `#[weir(rename = "...")]`, `#[weir(event_time)]`, `#[weir(skip)]` and
/// `#[weir(rename_all = "...")]`.
#[proc_macro_derive(Record, attributes(weir))]
pub fn derive_record(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}

/// A SQL query over `#[derive(weir::Record)]` types, planned and analysed at compile time.
///
/// ```text
/// weir::query!(
///     Out = "SELECT ... FROM In1 JOIN In2 ...",   // output Record = SQL string literal
///     inputs(In1, path::to::In2),                 // the input Records; each is a table named
///                                                 //   after its type (last path segment)
///     mode = "update",                            // optional: "append" (default), "update", "complete"
///     watermark(In1.event_col, "10 seconds"),     // optional, any number: withWatermark on an input
/// )
/// ```
///
/// The SQL is planned with weir-plan against the inputs' schemas, checked with the streaming
/// analyzer for the output mode, and its output columns are compared with `Out`'s fields (by
/// name; every column needs a field and every field a column; a nullable column needs an
/// `Option` field). Any problem is a compile error on the SQL literal (or on `Out`, a
/// watermark, the mode) with the runtime analyzer's message and the line and column inside
/// the SQL text. The expression is a `weir::typed::TypedQuery<Out, (In1, In2)>`; `start(&session)`
/// plans the same SQL over memory streams of the inputs and runs it like runtime SQL, giving a
/// `TypedStreamingQuery` with `push(&[In])`, `process_all_available()` and
/// `take_output() -> Vec<(batch_id, Vec<Out>)>`.
///
/// An input or output type that does not derive `weir::Record` is reported as "cannot find macro
/// `Type`": the derive defines a hidden macro of the struct's name that hands its columns over.
///
/// Limits: every type must derive `weir::Record` in the same crate (the schema callback is
/// `pub(crate)`); field types are recognised by name, so a type alias of a field type is not
/// seen through; a nested Record field type must be nameable, as written in its struct, where
/// `query!` is called; one to six inputs.
#[proc_macro]
pub fn query(input: TokenStream) -> TokenStream {
    query::expand(input.into()).into()
}
