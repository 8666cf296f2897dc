//! The attributes of the ork guest SDK. Use them through the `ork` crate
//! (`ork::executor`, `ork::task`); this crate is an implementation detail and
//! its generated code names `::ork`.
//!
//! Both attributes leave the item they are placed on unchanged and add the
//! program's `fn main`, which hands the item to the SDK's runner. Misuse is
//! reported as a compile error at the offending token, never as a panic.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Item, ItemFn, ItemStruct, ReturnType};

/// Turns a struct into an ork custom executor: see `ork::executor`.
#[proc_macro_attribute]
pub fn executor(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, "executor", expand_executor)
}

/// Turns a function into an ork task program: see `ork::task`.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, "task", expand_task)
}

/// Shared front end: rejects attribute arguments, parses the item and turns
/// any `syn::Error` into `compile_error!` tokens.
fn expand(
    attr: TokenStream,
    item: TokenStream,
    name: &str,
    f: fn(Item) -> syn::Result<TokenStream2>,
) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let parsed = syn::parse::<Item>(item.clone());
    // On error, a stand-in for the `main` the attribute would have generated
    // keeps the error the only one reported (rather than also "`main`
    // function not found"); a function already called `main` needs none.
    let named_main = matches!(&parsed, Ok(Item::Fn(func)) if func.sig.ident == "main");
    let result = if !attr.is_empty() {
        Err(syn::Error::new_spanned(
            attr,
            format!("#[ork::{}] takes no arguments", name),
        ))
    } else {
        parsed.and_then(f)
    };
    match result {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            // Keep the user's item, so code using it still resolves.
            let mut out = TokenStream2::from(item);
            out.extend(err.to_compile_error());
            if !named_main {
                out.extend(quote! {
                    #[allow(dead_code)]
                    fn main() {}
                });
            }
            out.into()
        }
    }
}

fn expand_executor(item: Item) -> syn::Result<TokenStream2> {
    const WHAT: &str = "#[ork::executor] must be placed on a struct \
        (`#[executor] struct MyExecutor { .. }` with `impl MyExecutor { fn new(..); fn run(..) }`)";
    let st: ItemStruct = match item {
        Item::Struct(st) => st,
        Item::Enum(e) => {
            return Err(syn::Error::new_spanned(
                e.enum_token,
                format!("{}, not an enum", WHAT),
            ))
        }
        Item::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                format!("{}, not a union", WHAT),
            ))
        }
        Item::Fn(f) => {
            return Err(syn::Error::new_spanned(
                f.sig.fn_token,
                format!(
                    "{}, not a function (use #[ork::task] for a task function)",
                    WHAT
                ),
            ))
        }
        other => return Err(syn::Error::new_spanned(other, WHAT)),
    };
    if !st.generics.params.is_empty() || st.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &st.generics,
            "an ork executor cannot be generic: ork must know the concrete type to construct",
        ));
    }
    let ident = &st.ident;
    // Spanned at the struct's name, so a `new`/`run` whose signature does not
    // match the executor interface is reported there.
    let main = quote_spanned! {ident.span()=>
        fn main() {
            ::ork::__private::run_executor(#ident::new, #ident::run)
        }
    };
    Ok(quote! {
        #st
        #main
    })
}

fn expand_task(item: Item) -> syn::Result<TokenStream2> {
    const WHAT: &str = "#[ork::task] must be placed on a function \
        `fn name(ctx: &Context, upstream: &serde_json::Value, params: P) -> Result<O>`";
    let func: ItemFn = match item {
        Item::Fn(f) => f,
        Item::Struct(s) => {
            return Err(syn::Error::new_spanned(
                s.struct_token,
                format!(
                    "{}, not a struct (use #[ork::executor] for an executor struct)",
                    WHAT
                ),
            ))
        }
        other => return Err(syn::Error::new_spanned(other, WHAT)),
    };
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            token,
            "an ork task function cannot be async: ork calls it once, synchronously",
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            token,
            "an ork task function cannot be unsafe",
        ));
    }
    if let Some(token) = &sig.constness {
        return Err(syn::Error::new_spanned(
            token,
            "an ork task function cannot be const",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "an ork task function cannot be variadic",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "an ork task function cannot be generic: ork must know the concrete params and output types",
        ));
    }
    if sig.ident == "main" {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            "an ork task function cannot be called `main`: #[ork::task] generates the program's `main`",
        ));
    }
    if let Some(receiver) = sig.receiver() {
        return Err(syn::Error::new_spanned(
            receiver,
            "an ork task function takes no `self`: it must be a free function in the crate root",
        ));
    }
    if sig.inputs.len() != 3 {
        let msg = format!(
            "an ork task function takes 3 arguments `(ctx: &Context, upstream: &serde_json::Value, params: P)`, found {}",
            sig.inputs.len()
        );
        // Point at the first argument too many, or at the too-short list.
        let span = sig
            .inputs
            .iter()
            .nth(3)
            .map_or(sig.paren_token.span, Spanned::span);
        return Err(syn::Error::new(span, msg));
    }
    if let ReturnType::Default = sig.output {
        // syn 1 keeps one span for the parenthesised argument list: point there.
        return Err(syn::Error::new(
            sig.paren_token.span,
            "an ork task function must return `ork::Result<O>` where O: serde::Serialize (for no output, `-> ork::Result<()>`)",
        ));
    }
    let ident = &sig.ident;
    let main = quote_spanned! {ident.span()=>
        fn main() {
            ::ork::__private::run_task(#ident)
        }
    };
    Ok(quote! {
        #func
        #main
    })
}
