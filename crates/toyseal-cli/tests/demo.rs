//! The main job (`toyseal demo`) runs end to end on embedded defaults and every property it
//! checks holds (it exits 7 otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn demo_runs_and_proves_its_properties() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_toyseal"))
        .args(["demo", "--data"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "maker attestation valid: true",
        "identical: true",
        "sender is the toy: true",
        "the toy opened mum's reply: \"Goodnight, sleep tight!\"",
        "anonymous GET of the family's envelopes: HTTP 401",
        "dad asks for another family's envelopes: refused (the server answered HTTP 404)",
        "the toy tries to delete the message (toys may not): refused (the server answered HTTP 403)",
        "plaintext or marker found: false; in the outbox: false",
        "files still holding it: 0",
        "proved:",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
