//! The committed header is what the pinned cbindgen generates from this crate.
//! `TOYSEAL_BLESS_HEADER=1 cargo test -p toyseal-c --test header` rewrites it.

use std::path::PathBuf;

#[test]
fn committed_header_is_current() -> Result<(), Box<dyn std::error::Error>> {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))?;
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()?
        .write(&mut generated);
    let path = crate_dir.join("include/toyseal.h");
    if std::env::var_os("TOYSEAL_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated)?;
    }
    let committed = std::fs::read(&path)?;
    assert!(
        committed == generated,
        "include/toyseal.h is stale: run TOYSEAL_BLESS_HEADER=1 cargo test -p toyseal-c --test header"
    );
    Ok(())
}
