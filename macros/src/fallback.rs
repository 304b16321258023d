//! The stub impls emitted next to a compile error, so that code using the record still
//! type-checks and the user sees the one error that matters. The bodies never run: the crate
//! does not compile while the error is there.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

pub fn expand(input: &DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let record = quote!(::weir::record);
    let arrow = quote!(::weir::arrow);
    quote! {
        #[allow(unused_variables)]
        impl #impl_generics #record::Record for #ident #ty_generics #where_clause {
            type Readers<'a> = ();
            type Builders = ();

            fn fields() -> #arrow::datatypes::Fields {
                ::core::unreachable!()
            }

            fn schema() -> #arrow::datatypes::SchemaRef {
                ::core::unreachable!()
            }

            fn event_time_column() -> ::core::option::Option<&'static str> {
                ::core::unreachable!()
            }

            fn readers<'a>(
                columns: &#record::Columns<'a>,
            ) -> ::core::result::Result<Self::Readers<'a>, #record::RecordError> {
                ::core::unreachable!()
            }

            fn read_row(
                readers: &Self::Readers<'_>,
                row: usize,
            ) -> ::core::result::Result<Self, #record::RecordError> {
                ::core::unreachable!()
            }

            fn builders(capacity: usize) -> Self::Builders {
                ::core::unreachable!()
            }

            fn append_row(builders: &mut Self::Builders, row: &Self) {
                ::core::unreachable!()
            }

            fn append_null_row(builders: &mut Self::Builders) {
                ::core::unreachable!()
            }

            fn finish_columns(
                builders: &mut Self::Builders,
            ) -> ::core::result::Result<
                ::std::vec::Vec<#arrow::array::ArrayRef>,
                #record::RecordError,
            > {
                ::core::unreachable!()
            }
        }
        #[allow(unused_variables)]
        impl #impl_generics #record::RecordField for #ident #ty_generics #where_clause {
            type Reader<'a> = #record::StructReader<'a, Self>;
            type Builder = #record::StructColumnBuilder<Self>;

            fn data_type() -> #arrow::datatypes::DataType {
                ::core::unreachable!()
            }

            fn reader<'a>(
                array: &'a dyn #arrow::array::Array,
                column: &str,
            ) -> ::core::result::Result<Self::Reader<'a>, #record::RecordError> {
                ::core::unreachable!()
            }

            fn builder(capacity: usize) -> Self::Builder {
                ::core::unreachable!()
            }
        }
    }
}
