//! Semantic checks of a parsed input that the type checker cannot make with a clear message:
//! field types with no Arrow mapping at all, duplicate column names, several event-time fields.
//! Every error is spanned on the offending token.

use std::collections::HashMap;

use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, GenericArgument, Lit, LitInt, PathArguments, Result, Type};

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
            if let Some(last) = path.path.segments.last()
                && last.ident == "Decimal"
            {
                check_decimal(&last.arguments)?;
            }
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

/// `Decimal<PRECISION, SCALE>` with literal arguments: 1 <= PRECISION <= 38 and SCALE <=
/// PRECISION, as Arrow's Decimal128 requires (the runtime type asserts it too, but only when the
/// code is generated, which `cargo check` never does).
fn check_decimal(arguments: &PathArguments) -> Result<()> {
    let PathArguments::AngleBracketed(arguments) = arguments else {
        return Ok(());
    };
    let literal = |argument: Option<&GenericArgument>| match argument {
        Some(GenericArgument::Const(Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }))) => Some(int.clone()),
        _ => None,
    };
    let (Some(precision), scale) = (
        literal(arguments.args.first()),
        literal(arguments.args.get(1)),
    ) else {
        return Ok(());
    };
    let value = |int: &LitInt| int.base10_parse::<u32>();
    let precision_value = value(&precision)?;
    if !(1..=38).contains(&precision_value) {
        return Err(Error::new(
            precision.span(),
            "a Decimal's precision must be between 1 and 38 (Arrow Decimal128)",
        ));
    }
    if let Some(scale) = scale
        && value(&scale)? > precision_value
    {
        return Err(Error::new(
            scale.span(),
            "a Decimal's scale cannot exceed its precision",
        ));
    }
    Ok(())
}
