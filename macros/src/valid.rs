//! Semantic checks of a parsed input that the type checker cannot make with a clear message:
//! field types with no Arrow mapping at all, duplicate column names, several event-time fields.
//! Every error is spanned on the offending token.

use std::collections::HashMap;

use syn::spanned::Spanned;
use syn::{Error, GenericArgument, PathArguments, Result, Type};

use crate::ast::{Input, combine};

pub fn check(input: &Input) -> Result<()> {
    let mut errors = None;
    let mut columns: HashMap<&str, &syn::Ident> = HashMap::new();
    let mut event_time: Option<&syn::Ident> = None;
    for field in input.columns() {
        if let Err(error) = check_type(field.ty) {
            combine(&mut errors, error);
        }
        if let Some(first) = columns.insert(&field.column, field.member) {
            let span = match &field.attrs.rename {
                Some(rename) => rename.span(),
                None => field.member.span(),
            };
            combine(
                &mut errors,
                Error::new(
                    span,
                    format!(
                        "duplicate column `{}`: fields `{first}` and `{}` both map to it",
                        field.column, field.member
                    ),
                ),
            );
        }
        if let Some(span) = field.attrs.event_time {
            match event_time {
                Some(first) => combine(
                    &mut errors,
                    Error::new(
                        span,
                        format!(
                            "a record has one event-time column, and `{first}` is already #[weir(event_time)]"
                        ),
                    ),
                ),
                None => event_time = Some(field.member),
            }
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(()),
    }
}

/// Rejects the type forms that can never be a column; named types are left to the
/// `RecordField` trait bound, whose error names the type.
fn check_type(ty: &Type) -> Result<()> {
    let unsupported = |what: &str, hint: &str| {
        Err(Error::new(
            ty.span(),
            format!("{what} cannot be a field of a weir Record; {hint}"),
        ))
    };
    match ty {
        Type::Path(path) => {
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(arguments) = &segment.arguments {
                    for argument in &arguments.args {
                        if let GenericArgument::Type(inner) = argument {
                            check_type(inner)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Type::Group(group) => check_type(&group.elem),
        Type::Paren(paren) => check_type(&paren.elem),
        Type::Reference(reference) => Err(Error::new(
            reference.and_token.span,
            "a reference cannot be a field of a weir Record; a record owns its values (use String for text, Vec<T> for lists)",
        )),
        Type::Ptr(_) => unsupported("a raw pointer", "use an owned value"),
        Type::Tuple(_) => unsupported(
            "a tuple",
            "use a struct that derives weir::Record (an Arrow struct column)",
        ),
        Type::Array(_) | Type::Slice(_) => {
            unsupported("an array", "use Vec<T> (an Arrow list column)")
        }
        Type::BareFn(_) | Type::TraitObject(_) | Type::ImplTrait(_) => unsupported(
            "this type",
            "use a data type, or mark the field #[weir(skip)]",
        ),
        _ => unsupported("this type", "use a concrete data type"),
    }
}
