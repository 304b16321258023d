//! Generates the `Record` and `RecordField` impls of a validated input. The code is a list of
//! calls into `::weir::record`, one per field, so that the conversions live in the runtime.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{DeriveInput, Index, LitStr, Result};

use crate::ast::Input;
use crate::{fallback, valid};

pub fn derive(input: &DeriveInput) -> TokenStream {
    match try_expand(input) {
        Ok(expanded) => expanded,
        Err(error) => {
            let error = error.to_compile_error();
            let stub = fallback::expand(input);
            quote! {
                #error
                #stub
            }
        }
    }
}

fn try_expand(node: &DeriveInput) -> Result<TokenStream> {
    let input = Input::from_syn(node)?;
    valid::check(&input)?;
    let record = impl_record(&input);
    let callback = schema_callback(&input);
    Ok(quote! {
        #record
        #callback
    })
}

/// The `macro_rules!` through which `weir::query!` learns this record's columns at compile time:
/// `Name! { [continuation macro path] { state } }` expands to
/// `continuation! { @schema Name { "column": Type, ... } state }`. The field types are passed
/// as written (spans kept); `query!` maps them to Arrow types and asks nested records for their
/// own schemas the same way. The macro is defined as `__weir_schema_<Name>` and re-exported
/// `pub(crate)` under the struct's own name, in the macro namespace: wherever the struct can be
/// named (by path or through `use`), so can its callback.
fn schema_callback(input: &Input) -> TokenStream {
    let ident = input.ident;
    let callback = schema_callback_ident(ident);
    let columns = input.columns().map(|field| {
        let name = LitStr::new(&field.column, field.member.span());
        let ty = field.ty;
        quote!(#name: #ty)
    });
    quote! {
        #[doc(hidden)]
        #[allow(unused_macros)]
        macro_rules! #callback {
            ([$($continuation:tt)*] { $($state:tt)* }) => {
                $($continuation)*! { @schema #ident { #(#columns),* } $($state)* }
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) use #callback as #ident;
    }
}

/// The name the schema callback of the record `ident` is defined under: `__weir_schema_<ident>`.
fn schema_callback_ident(ident: &syn::Ident) -> syn::Ident {
    let name = ident.unraw().to_string();
    syn::Ident::new(&format!("__weir_schema_{name}"), ident.span())
}

fn impl_record(input: &Input) -> TokenStream {
    let ident = input.ident;
    let record = quote!(::weir::record);
    let arrow = quote!(::weir::arrow);

    let column_types: Vec<_> = input.columns().map(|field| field.ty).collect();
    let column_names: Vec<_> = input
        .columns()
        .map(|field| LitStr::new(&field.column, field.member.span()))
        .collect();
    let indexes: Vec<_> = (0..column_types.len()).map(Index::from).collect();
    let column_count = Literal::usize_unsuffixed(column_types.len());

    let reader_types = column_types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> <#ty as #record::RecordField>::Reader<'a>));
    let builder_types = column_types
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> <#ty as #record::RecordField>::Builder));
    let arrow_fields = column_types.iter().zip(&column_names).map(|(ty, name)| {
        quote_spanned!(ty.span()=> #arrow::datatypes::Field::new(
            #name,
            <#ty as #record::RecordField>::data_type(),
            <#ty as #record::RecordField>::nullable(),
        ))
    });
    let find_columns = column_types.iter().zip(&column_names).map(|(ty, name)| {
        quote_spanned!(ty.span()=> columns.read(#name, <#ty as #record::RecordField>::reader)?)
    });
    let make_builders = if column_types.is_empty() {
        // `()` as a tail expression is clippy's `unused_unit` in the user's crate.
        quote!(let _ = capacity;)
    } else {
        let builders = column_types
            .iter()
            .map(|ty| quote_spanned!(ty.span()=> <#ty as #record::RecordField>::builder(capacity)));
        quote!((#(#builders,)*))
    };

    let mut column_index = 0;
    let read_fields = input.fields.iter().map(|field| {
        let member = field.member;
        if field.is_column() {
            let index = Index::from(column_index);
            column_index += 1;
            let ty = field.ty;
            quote_spanned!(ty.span()=> #member: #record::FieldReader::read(&readers.#index, row)?)
        } else {
            let ty = field.ty;
            quote_spanned!(ty.span()=> #member: <#ty as ::core::default::Default>::default())
        }
    });
    let appends = input.columns().zip(&indexes).map(|(field, index)| {
        let member = field.member;
        quote_spanned!(field.ty.span()=> #record::FieldBuilder::append(&mut builders.#index, &row.#member);)
    });
    let append_nulls = column_types.iter().zip(&indexes).map(|(ty, index)| {
        quote_spanned!(ty.span()=> #record::FieldBuilder::append_null(&mut builders.#index);)
    });
    let finishes = column_types.iter().zip(&indexes).zip(&column_names).map(|((ty, index), name)| {
        quote_spanned!(ty.span()=> #record::FieldBuilder::finish(&mut builders.#index, #name)?)
    });

    let event_time = match input
        .columns()
        .find(|field| field.attrs.event_time.is_some())
    {
        Some(field) => {
            let ty = field.ty;
            let name = LitStr::new(&field.column, field.member.span());
            quote_spanned!(ty.span()=> #record::event_time_column::<#ty>(#name))
        }
        None => quote!(::core::option::Option::None),
    };

    quote! {
        #[automatically_derived]
        impl #record::Record for #ident {
            type Readers<'a> = (#(#reader_types,)*);
            type Builders = (#(#builder_types,)*);

            fn fields() -> #arrow::datatypes::Fields {
                #arrow::datatypes::Fields::from_iter::<[#arrow::datatypes::Field; #column_count]>([
                    #(#arrow_fields),*
                ])
            }

            fn schema() -> #arrow::datatypes::SchemaRef {
                static SCHEMA: #record::SchemaCell = #record::SchemaCell::new();
                SCHEMA.get_or_init(<Self as #record::Record>::fields)
            }

            fn event_time_column() -> ::core::option::Option<&'static str> {
                #event_time
            }

            fn readers<'a>(
                columns: &#record::Columns<'a>,
            ) -> ::core::result::Result<Self::Readers<'a>, #record::RecordError> {
                ::core::result::Result::Ok((#(#find_columns,)*))
            }

            fn read_row(
                readers: &Self::Readers<'_>,
                row: usize,
            ) -> ::core::result::Result<Self, #record::RecordError> {
                ::core::result::Result::Ok(Self {
                    #(#read_fields,)*
                })
            }

            fn builders(capacity: usize) -> Self::Builders {
                #make_builders
            }

            fn append_row(builders: &mut Self::Builders, row: &Self) {
                #(#appends)*
            }

            fn append_null_row(builders: &mut Self::Builders) {
                #(#append_nulls)*
            }

            fn finish_columns(
                builders: &mut Self::Builders,
            ) -> ::core::result::Result<
                ::std::vec::Vec<#arrow::array::ArrayRef>,
                #record::RecordError,
            > {
                ::core::result::Result::Ok(::std::vec::Vec::from([
                    #(#finishes),*
                ]))
            }
        }

        #[automatically_derived]
        impl #record::RecordField for #ident {
            type Reader<'a> = #record::StructReader<'a, Self>;
            type Builder = #record::StructColumnBuilder<Self>;

            fn data_type() -> #arrow::datatypes::DataType {
                #record::struct_data_type::<Self>()
            }

            fn reader<'a>(
                array: &'a dyn #arrow::array::Array,
                column: &str,
            ) -> ::core::result::Result<Self::Reader<'a>, #record::RecordError> {
                #record::StructReader::new(array, column)
            }

            fn builder(capacity: usize) -> Self::Builder {
                #record::StructColumnBuilder::new(capacity)
            }
        }
    }
}
