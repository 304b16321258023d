//! The typed view of a `#[derive(Record)]` input: the struct, its fields with their parsed
//! attributes and column names. Keeps the syn nodes for spans; checks only the input's shape.

use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, Ident, Result, Type};

use crate::attr::{self, FieldAttrs};

pub struct Input<'a> {
    pub ident: &'a Ident,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    pub member: &'a Ident,
    pub ty: &'a Type,
    /// The column name: the `rename`, else the field name under `rename_all`.
    pub column: String,
    pub attrs: FieldAttrs,
}

impl Field<'_> {
    pub fn is_column(&self) -> bool {
        self.attrs.skip.is_none()
    }
}

impl<'a> Input<'a> {
    pub fn from_syn(input: &'a DeriveInput) -> Result<Self> {
        let data = match &input.data {
            Data::Struct(data) => data,
            Data::Enum(data) => {
                return Err(Error::new(
                    data.enum_token.span,
                    "weir::Record cannot be derived for an enum; a record is a struct with named fields",
                ));
            }
            Data::Union(data) => {
                return Err(Error::new(
                    data.union_token.span,
                    "weir::Record cannot be derived for a union; a record is a struct with named fields",
                ));
            }
        };
        let named = match &data.fields {
            Fields::Named(named) => named,
            Fields::Unnamed(unnamed) => {
                return Err(Error::new(
                    unnamed.span(),
                    "weir::Record cannot be derived for a tuple struct; name the fields, the names become the column names",
                ));
            }
            Fields::Unit => {
                return Err(Error::new(
                    input.ident.span(),
                    "weir::Record cannot be derived for a unit struct; a record needs named fields",
                ));
            }
        };
        if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
            return Err(Error::new(
                input.generics.span(),
                "weir::Record cannot be derived for a generic struct; use concrete field types",
            ));
        }
        let container = attr::container(&input.attrs);
        let mut errors: Option<Error> = None;
        let mut fields = Vec::with_capacity(named.named.len());
        for field in &named.named {
            let member = field
                .ident
                .as_ref()
                .ok_or_else(|| Error::new(field.span(), "expected a named field"))?;
            match attr::field(&field.attrs) {
                Ok(attrs) => {
                    let name = member.unraw().to_string();
                    let column = match (&attrs.rename, &container) {
                        (Some(rename), _) => rename.value(),
                        (None, Ok(container)) => match container.rename_all {
                            Some(rule) => rule.apply(&name),
                            None => name,
                        },
                        (None, Err(_)) => name,
                    };
                    fields.push(Field {
                        member,
                        ty: &field.ty,
                        column,
                        attrs,
                    });
                }
                Err(error) => combine(&mut errors, error),
            }
        }
        if let Err(error) = container {
            combine(&mut errors, error);
        }
        match errors {
            Some(errors) => Err(errors),
            None => Ok(Input {
                ident: &input.ident,
                fields,
            }),
        }
    }

    pub fn columns(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|field| field.is_column())
    }
}

/// Adds `error` to the errors found so far.
pub fn combine(errors: &mut Option<Error>, error: Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}
