//! Parses `#[weir(...)]` attributes on the struct and on its fields. Knows the attribute
//! grammar only; rules that involve several fields live in `valid`.

use proc_macro2::Span;
use syn::{Attribute, LitStr, Result};

/// How field names become column names, from `#[weir(rename_all = "...")]`.
#[derive(Clone, Copy)]
pub enum RenameRule {
    CamelCase,
    PascalCase,
    Lowercase,
    ScreamingSnakeCase,
}

impl RenameRule {
    const NAMES: &'static str =
        "\"camelCase\", \"PascalCase\", \"lowercase\", \"SCREAMING_SNAKE_CASE\"";

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "camelCase" => RenameRule::CamelCase,
            "PascalCase" => RenameRule::PascalCase,
            "lowercase" => RenameRule::Lowercase,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnakeCase,
            _ => return None,
        })
    }

    /// Applies the rule to a snake_case field name.
    pub fn apply(self, field: &str) -> String {
        match self {
            RenameRule::Lowercase => field.to_lowercase(),
            RenameRule::ScreamingSnakeCase => field.to_uppercase(),
            RenameRule::PascalCase | RenameRule::CamelCase => {
                let mut column = String::with_capacity(field.len());
                let mut capitalize = matches!(self, RenameRule::PascalCase);
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        column.extend(ch.to_uppercase());
                        capitalize = false;
                    } else {
                        column.push(ch);
                    }
                }
                column
            }
        }
    }
}

/// `#[weir(...)]` on the struct.
#[derive(Default)]
pub struct ContainerAttrs {
    pub rename_all: Option<RenameRule>,
}

/// `#[weir(...)]` on a field; each flag keeps the span of its keyword for later errors.
#[derive(Default)]
pub struct FieldAttrs {
    pub rename: Option<LitStr>,
    pub event_time: Option<Span>,
    pub skip: Option<Span>,
}

pub fn container(attrs: &[Attribute]) -> Result<ContainerAttrs> {
    let mut parsed = ContainerAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("weir")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                if parsed.rename_all.is_some() {
                    return Err(meta.error("duplicate weir attribute `rename_all`"));
                }
                let rule: LitStr = meta.value()?.parse().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        format!("expected a rule as a string, one of {}", RenameRule::NAMES),
                    )
                })?;
                parsed.rename_all = Some(RenameRule::from_name(&rule.value()).ok_or_else(|| {
                    syn::Error::new(
                        rule.span(),
                        format!("unknown rename_all rule; expected one of {}", RenameRule::NAMES),
                    )
                })?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown weir container attribute; expected `rename_all` (field attributes `rename`, `event_time` and `skip` go on fields)",
                ))
            }
        })?;
    }
    Ok(parsed)
}

pub fn field(attrs: &[Attribute]) -> Result<FieldAttrs> {
    let mut parsed = FieldAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("weir")) {
        attr.parse_nested_meta(|meta| {
            let duplicate = || {
                let name = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
                Err(meta.error(format!("duplicate weir attribute `{name}`")))
            };
            if meta.path.is_ident("rename") {
                if parsed.rename.is_some() {
                    return duplicate();
                }
                let column: LitStr = meta.value()?.parse().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        "expected the column name as a string: #[weir(rename = \"...\")]",
                    )
                })?;
                if column.value().is_empty() {
                    return Err(syn::Error::new(column.span(), "a column name cannot be empty"));
                }
                parsed.rename = Some(column);
            } else if meta.path.is_ident("event_time") {
                if parsed.event_time.is_some() {
                    return duplicate();
                }
                parsed.event_time = Some(meta.path.require_ident()?.span());
            } else if meta.path.is_ident("skip") {
                if parsed.skip.is_some() {
                    return duplicate();
                }
                parsed.skip = Some(meta.path.require_ident()?.span());
            } else {
                return Err(meta.error(
                    "unknown weir field attribute; expected `rename = \"...\"`, `event_time` or `skip`",
                ));
            }
            Ok(())
        })?;
    }
    if let Some(skip) = parsed.skip
        && (parsed.rename.is_some() || parsed.event_time.is_some())
    {
        return Err(syn::Error::new(
            skip,
            "a `skip` field has no column, so it cannot also be `rename`d or be the `event_time`",
        ));
    }
    Ok(parsed)
}
