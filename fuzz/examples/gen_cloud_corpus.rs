//! Writes the seed corpora of `signed_request_parse`, `roster_decode`, `roster_chain` and
//! `roster_governance` from the JSON vectors in `docs/spec/vectors/` (signed-requests.json,
//! roster.json).
//! Deterministic: re-running it rewrites identical files.
//!
//! ```text
//! cd fuzz && cargo run --example gen_cloud_corpus
//! ```

use std::{fs, path::Path};

use serde_json::Value;
use toyseal_fuzz::cloud::{RequestText, join_request};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vectors = root.join("../docs/spec/vectors");
    let corpus = root.join("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)
    };
    let s = |v: &Value| v.as_str().map(str::to_owned);

    // signed_request_parse: every signed-request vector as request text.
    let sr: Value =
        serde_json::from_str(&fs::read_to_string(vectors.join("signed-requests.json"))?)?;
    for case in sr["cases"].as_array().ok_or("cases")? {
        let r = &case["request"];
        let h = &r["headers"];
        let text = RequestText {
            method: s(&r["method"]).unwrap_or_default(),
            authority: s(&r["authority"]).unwrap_or_default(),
            path: s(&r["path"]).unwrap_or_default(),
            query: s(&r["query"]),
            content_digest: s(&h["content-digest"]),
            signature_input: s(&h["signature-input"]),
            signature: s(&h["signature"]),
            now: case["now"].as_u64().ok_or("now")?,
            body: hex::decode(r["body_hex"].as_str().ok_or("body_hex")?)?,
        };
        let name = case["name"].as_str().ok_or("name")?;
        write("signed_request_parse", name, &join_request(&text))?;
    }

    // roster_decode: every roster in the roster vectors (chains and candidates).
    let rv: Value = serde_json::from_str(&fs::read_to_string(vectors.join("roster.json"))?)?;
    let mut seen = std::collections::BTreeSet::new();
    for case in rv["cases"].as_array().ok_or("cases")? {
        let name = case["name"].as_str().ok_or("name")?;
        let mut all: Vec<&Value> = case["chain"].as_array().ok_or("chain")?.iter().collect();
        all.push(&case["candidate"]);
        for (i, r) in all.into_iter().enumerate() {
            let bytes = hex::decode(r.as_str().ok_or("roster hex")?)?;
            if seen.insert(bytes.clone()) {
                write("roster_decode", &format!("{name}-{i}"), &bytes)?;
            }
        }
    }

    // roster_chain: structured inputs; a few fixed byte strings (arbitrary maps any bytes).
    for (name, bytes) in [
        ("zeros-64", vec![0u8; 64]),
        ("ones-64", vec![0xffu8; 64]),
        ("ramp-256", (0..=255u8).collect::<Vec<_>>()),
        (
            "ramp-1024",
            (0..1024u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
    ] {
        write("roster_chain", name, &bytes)?;
        write("roster_governance", name, &bytes)?;
    }
    Ok(())
}
