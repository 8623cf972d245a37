//! The UniFFI binding generator, built from the pinned `uniffi` (so the bindings always match
//! the scaffolding in the library): `uniffi-bindgen generate --library libtoyseal_ffi.so …`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
