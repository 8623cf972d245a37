//! A toy's uploader loop, drivable from outside (this crate's T60 kill -9 test runs it as a
//! child against the real server): seals `count` synthetic recordings one by one into a
//! `toyseal_cloud::Outbox`, recording its progress durably, and uploads the outbox after each
//! one. Killed at any point and restarted with the same arguments, it carries on; it exits 0
//! once every envelope is uploaded.
//!
//! ```text
//! toyseal serve &   # or any toyseal-server
//! cargo run -p toyseal-server --example outbox_uploader -- \
//!     --server http://127.0.0.1:8080 --outbox /tmp/outbox --state /tmp/progress \
//!     --key toy.key --recipient toyseal1… --family <32 hex> --count 100 --seed 7
//! ```
//!
//! Sealing is deterministic per recording (a ChaCha20 generator seeded from `--seed` and the
//! recording's index) so that a recording re-sealed after a crash between "queued" and
//! "progress saved" gives the same bytes, hence the same envelope id: this stands in for a
//! toy that re-seals from its own durable recording buffer. Real devices seal with `OsRng`.

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toyseal_cloud::{Client, ClientConfig, Outbox};
use toyseal_core::{DeviceIdentity, FamilyId, PublicIdentity};
use toyseal_envelope::SealOptions;

/// Marker text inside every synthetic recording: must never appear on disk or on the server.
pub const PLAINTEXT_MARKER: &str = "TOYSEAL-T60-PLAINTEXT-MARKER";

/// The synthetic recording `i` (about 3 KB).
pub fn recording(i: u64) -> Vec<u8> {
    let line = format!("{PLAINTEXT_MARKER} recording {i}; ");
    line.repeat(3000 / line.len() + 1).into_bytes()
}

/// Seals recording `i` deterministically (see the module docs), on the toy's sender chain:
/// sequence `i + 1`, naming recording `i − 1`'s header hash (itself re-sealed
/// deterministically, so a restarted uploader re-creates the same bytes).
pub fn seal_recording(
    toy: &DeviceIdentity,
    recipient: &PublicIdentity,
    family: FamilyId,
    seed: u64,
    i: u64,
) -> Result<Vec<u8>, toyseal_envelope::Error> {
    let mut previous = [0u8; 32];
    let mut envelope = Vec::new();
    for j in 0..=i {
        let mut rng = ChaCha20Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ j);
        let options = SealOptions::default()
            .with_chunk_size_log2(10)?
            .with_family(family, 1)
            .with_sequence(j + 1)
            .with_previous(previous);
        envelope = toyseal_envelope::seal(
            toy,
            std::slice::from_ref(recipient),
            &options,
            &recording(j),
            &mut rng,
        )?;
        previous = toyseal_envelope::inspect(&envelope)?.link_hash();
    }
    Ok(envelope)
}

struct Args {
    server: String,
    outbox: PathBuf,
    state: PathBuf,
    key: PathBuf,
    recipient: PublicIdentity,
    family: FamilyId,
    count: u64,
    seed: u64,
}

fn args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut map = std::collections::HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        map.insert(k, v);
    }
    let mut get = |k: &str| map.remove(k).ok_or(format!("missing {k}"));
    Ok(Args {
        server: get("--server")?,
        outbox: get("--outbox")?.into(),
        state: get("--state")?.into(),
        key: get("--key")?.into(),
        recipient: get("--recipient")?.parse()?,
        family: get("--family")?.parse()?,
        count: get("--count")?.parse()?,
        seed: get("--seed")?.parse()?,
    })
}

fn read_progress(path: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s.trim().parse()?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Atomic, durable replace: temp file, fsync, rename, fsync the directory.
fn write_progress(path: &Path, n: u64) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(n.to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

async fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let key_text = std::fs::read_to_string(&a.key)?;
    let toy = DeviceIdentity::from_secret_key_text(key_text.trim())?;
    let outbox = Outbox::open(&a.outbox)?;
    let mut config = ClientConfig::default();
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(500);
    config.max_attempts = 10;
    config.request_timeout = Duration::from_secs(10);
    let client = Client::with_config(&a.server, toy, config)?;
    let mut next = read_progress(&a.state)?;
    loop {
        if next < a.count {
            let env = seal_recording(client.identity(), &a.recipient, a.family, a.seed, next)?;
            outbox.enqueue(a.family, &env)?;
            next += 1;
            write_progress(&a.state, next)?;
        }
        match outbox.upload_all(&client).await {
            Ok(report) if report.refused.is_empty() => {}
            Ok(report) => return Err(format!("refused: {:?}", report.refused).into()),
            Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(e.into()),
        }
        if next >= a.count && outbox.pending()?.is_empty() {
            println!("done {next}");
            return Ok(());
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(a))
}
