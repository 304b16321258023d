//! weir-macros: `#[derive(Record)]` for weir's typed Rust API.
//!
//! The derive turns a struct with named fields into a `weir::Record`: its Arrow schema and its
//! conversions from and to record batches. The pipeline follows dtolnay's derive crates:
//! [`ast`] (typed view of the input, spans kept) → [`attr`] (`#[weir(...)]`) → [`valid`]
//! (semantic checks) → [`expand`] (code), with [`fallback`] emitting a stub impl next to a
//! compile error so the user sees one error, not a cascade.
//!
//! Generated code names only `::weir::…` paths (and `::core`), so it compiles in a crate that
//! depends on `weir` alone. The runtime it calls is `weir_engine::record`; this crate must not
//! depend on the engine. User documentation lives there and on `weir::Record`.

mod ast;
mod attr;
mod expand;
mod fallback;
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
