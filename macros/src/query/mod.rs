//! `query!`: SQL over Record types, planned and analysed at compile time by weir-plan.
//!
//! A proc macro cannot see the struct definitions of its argument types, so the schemas come
//! through callbacks: `#[derive(Record)]` emits a `macro_rules!` named like each struct (in the
//! macro namespace; see `expand::schema_callback`), and `query!` calls the callback of every
//! type it still needs, by the path the user wrote, with itself as the continuation and
//! `@for <name>` (the name it asked for, which a `use ... as` may have changed). Each callback
//! prepends `@schema Name { ... }` to the state and calls `::weir::query!` again; when every
//! input, the output and every nested Record have a schema, [`analyse`] builds the catalog,
//! plans the SQL, runs the streaming checks and compares the output columns with the output
//! Record, and [`generate`] emits the `::weir::typed::TypedQuery` that runs the same SQL at
//! run time.
//!
//! Errors point at the SQL literal (stable Rust cannot span inside a literal) and carry the
//! runtime analyzer's message with the line and column inside the SQL text.

mod input;
mod schema;

#[cfg(test)]
mod snapshot_tests;

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::{Error, LitStr, Path, Result};
use weir_plan::analyzer::check_streaming;
use weir_plan::expr::parse_duration;
use weir_plan::plan::{OutputMode, Source};
use weir_plan::sql::{Catalog, sql_to_plan};

use input::{Args, Continuation, SchemaBlock, last_ident, name};
use schema::{Schemas, nested_records, output_mismatches};

/// The most inputs a typed query takes (`weir::typed::TypedInputs` is implemented up to this).
const MAX_INPUTS: usize = 6;

/// Expands one `query!` call: the user's, or a continuation from a schema callback.
pub fn expand(input: TokenStream) -> TokenStream {
    let step = if input.is_empty() {
        Err(Error::new(
            Span::call_site(),
            "expected `Out = \"SELECT ...\", inputs(Type, ...)`",
        ))
    } else if is_continuation(&input) {
        syn::parse2::<Continuation>(input).and_then(|state| step(state.schemas, state.args))
    } else {
        step(Vec::new(), input)
    };
    step.unwrap_or_else(|error| error.to_compile_error())
}

/// A continuation starts with `@`; a user's call with the output type.
fn is_continuation(input: &TokenStream) -> bool {
    matches!(
        input.clone().into_iter().next(),
        Some(TokenTree::Punct(punct)) if punct.as_char() == '@'
    )
}

/// Asks for the next missing schema, or analyses the query when none is missing.
fn step(schemas: Vec<SchemaBlock>, args_tokens: TokenStream) -> Result<TokenStream> {
    let args: Args = syn::parse2(args_tokens.clone())?;
    if let Some(missing) = next_missing(&args, &schemas)? {
        return Ok(request_schema(missing, &schemas, &args_tokens));
    }
    let mode = analyse(&args, &schemas)?;
    Ok(generate(&args, mode))
}

/// The first type (inputs, then the output, then nested Records) with no schema yet.
fn next_missing<'a>(args: &'a Args, schemas: &'a [SchemaBlock]) -> Result<Option<&'a Path>> {
    let known = Schemas::new(schemas);
    let mut wanted: Vec<&Path> = args.inputs.iter().collect();
    wanted.push(&args.output);
    for block in schemas {
        for (_, ty) in &block.columns {
            nested_records(ty, &mut wanted);
        }
    }
    for path in wanted {
        let ident = last_ident(path).ok_or_else(|| Error::new(Span::call_site(), "empty path"))?;
        if !known.contains(&name(ident)) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// `path::Name! { [::weir::query] { @for Name @schema ... @query [args] } }`: the callback of
/// `path`'s Record, spanned on the type so a type that is not a Record is reported there.
fn request_schema(path: &Path, schemas: &[SchemaBlock], args: &TokenStream) -> TokenStream {
    let mut callback = path.clone();
    let mut requested = None;
    if let Some(last) = callback.segments.last_mut() {
        last.arguments = syn::PathArguments::None;
        requested = Some(last.ident.clone());
    }
    let received = schemas.iter().map(|block| {
        let record = &block.record;
        let columns = block
            .columns
            .iter()
            .map(|(column, ty)| quote!(#column: #ty));
        quote!(@schema #record { #(#columns),* })
    });
    quote! {
        #callback! { [::weir::query] { @for #requested #(#received)* @query [#args] } }
    }
}

/// The compile-time checks: inputs, watermarks, the SQL against a catalog of the inputs, the
/// streaming rules for the output mode, and the output Record against the query's columns.
/// Returns the output mode.
fn analyse(args: &Args, blocks: &[SchemaBlock]) -> Result<OutputMode> {
    let schemas = Schemas::new(blocks);
    let sql = args.sql.value();
    let sql_error = |error: weir_plan::Error| {
        Error::new(
            args.sql.span(),
            format!("in the SQL of query!: {}", error.render_with_source(&sql)),
        )
    };

    if args.inputs.is_empty() || args.inputs.len() > MAX_INPUTS {
        return Err(Error::new(
            args.inputs_keyword.span(),
            format!("a typed query has 1 to {MAX_INPUTS} inputs"),
        ));
    }
    let input_names: Vec<String> = args
        .inputs
        .iter()
        .filter_map(last_ident)
        .map(name)
        .collect();
    let mut watermarked = BTreeSet::new();
    for watermark in &args.watermarks {
        let table = name(&watermark.table);
        if !input_names.contains(&table) {
            return Err(Error::new(
                watermark.table.span(),
                format!(
                    "`{table}` is not an input of this query; a watermark goes on one of inputs({}), spelled as there",
                    input_names.join(", ")
                ),
            ));
        }
        if !watermarked.insert(table.clone()) {
            return Err(Error::new(
                watermark.table.span(),
                format!("`{table}` already has a watermark; an input has at most one"),
            ));
        }
    }
    let mut tables = BTreeSet::new();
    let mut catalog = Catalog::new();
    for path in &args.inputs {
        let ident = last_ident(path).ok_or_else(|| Error::new(Span::call_site(), "empty path"))?;
        let table = name(ident);
        if !tables.insert(table.to_ascii_lowercase()) {
            return Err(Error::new(
                ident.span(),
                format!("`{table}` is already an input; each input is a different Record type"),
            ));
        }
        let mut source = Source::new(
            table.clone(),
            "memory",
            schemas.schema(&table, ident.span())?,
            true,
        );
        let watermark = args.watermarks.iter().find(|w| name(&w.table) == table);
        if let Some(watermark) = watermark {
            let delay = parse_duration(&watermark.delay.value())
                .map_err(|error| Error::new(watermark.delay.span(), error.to_string()))?;
            source = source.with_watermark(name(&watermark.column), delay);
        }
        catalog.register_source(source).map_err(|error| {
            let span = watermark.map_or(ident.span(), |w| w.column.span());
            Error::new(span, error.to_string())
        })?;
    }

    let mode = output_mode(args)?;
    let plan = sql_to_plan(&catalog, &sql).map_err(sql_error)?;
    check_streaming(&plan, mode).map_err(sql_error)?;

    let output_ident =
        last_ident(&args.output).ok_or_else(|| Error::new(Span::call_site(), "empty path"))?;
    let output_name = name(output_ident);
    let output = schemas.schema(&output_name, output_ident.span())?;
    let problems = output_mismatches(plan.schema(), &output);
    if !problems.is_empty() {
        let columns: Vec<String> = plan
            .schema()
            .fields()
            .iter()
            .map(|field| {
                let nullable = if field.is_nullable() {
                    " (nullable)"
                } else {
                    ""
                };
                format!("{}: {}{nullable}", field.name(), field.data_type())
            })
            .collect();
        return Err(Error::new_spanned(
            &args.output,
            format!(
                "the Record `{output_name}` does not match the query's output:\n  - {}\nthe query's columns are [{}]",
                problems.join("\n  - "),
                columns.join(", ")
            ),
        ));
    }
    Ok(mode)
}

fn output_mode(args: &Args) -> Result<OutputMode> {
    match &args.mode {
        None => Ok(OutputMode::Append),
        Some(mode) => mode
            .value()
            .parse()
            .map_err(|error: weir_plan::Error| Error::new(mode.span(), error.to_string())),
    }
}

/// The typed query: `::weir::typed::TypedQuery::<Out, (In, ...)>::new(...)`. Names only
/// `::weir::…` paths and the user's own types.
fn generate(args: &Args, mode: OutputMode) -> TokenStream {
    let output = &args.output;
    let inputs = &args.inputs;
    let sql = &args.sql;
    let tables = args
        .inputs
        .iter()
        .filter_map(last_ident)
        .map(|ident| LitStr::new(&name(ident), ident.span()));
    let mode = match mode {
        OutputMode::Append => format_ident!("Append"),
        OutputMode::Update => format_ident!("Update"),
        OutputMode::Complete => format_ident!("Complete"),
    };
    let watermarks = args.watermarks.iter().map(|watermark| {
        let table = LitStr::new(&name(&watermark.table), watermark.table.span());
        let column = LitStr::new(&name(&watermark.column), watermark.column.span());
        let delay = &watermark.delay;
        quote! {
            ::weir::typed::InputWatermark { table: #table, column: #column, delay: #delay }
        }
    });
    quote_spanned! {sql.span()=>
        ::weir::typed::TypedQuery::<#output, (#(#inputs,)*)>::new(
            #sql,
            &[#(#tables),*],
            ::weir::plan::OutputMode::#mode,
            &[#(#watermarks),*],
        )
    }
}
