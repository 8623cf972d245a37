//! T60: kill -9 the toy's uploader at random points, many times, against the real server.
//! The uploader (`examples/outbox_uploader.rs`) runs as a child process against `toyseal-server`
//! (its router on SQLite + a blob directory, or PostgreSQL / S3 when their env vars are set),
//! inside a fault layer that also answers some requests with 5xx (before or after the server
//! acted), drops connections, loses answers after the server stored the envelope, and delays.
//! After every kill no queued file may be partial; a scanner thread watches the outbox
//! directory the whole time for the recordings' plaintext marker. In the end every sealed
//! envelope must be stored exactly once (one row, one blob, listed once; never more 201s
//! from the server than envelopes), none lost, nothing else stored, no plaintext on the
//! server, and the outbox must be empty.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(dead_code)]
#[path = "../examples/outbox_uploader.rs"]
mod uploader;

use chacha20::ChaCha20Rng;
use common::faults::{Faults, Target};
use common::{Env, contains, walk};
use rand_core::{Rng, SeedableRng};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use toyseal_cloud::Client;
use toyseal_cloud::api::EnvelopeId;
use toyseal_core::{DeviceIdentity, FamilyId, Role};
use toyseal_roster::{RecoveryKey, RosterProposal};

const ENVELOPES: u64 = 400;
const KILLS: usize = 30;
const SEED: u64 = 60;
/// Share of requests (percent) that meet a random fault.
const FAULT_PERCENT: u64 = 15;

/// The uploader example binary, built by `cargo test -p toyseal-server` (which builds
/// examples); built here if this test was selected alone.
fn uploader_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().unwrap().parent().unwrap();
    let bin = profile_dir
        .join("examples")
        .join(format!("outbox_uploader{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "toyseal-server",
                "--example",
                "outbox_uploader",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building the uploader example failed");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

#[test]
fn t60_outbox_survives_kill9() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = rt.block_on(Env::new());
    let faults = Faults::new();
    let server = rt.block_on(env.start_with_faults(&faults));

    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let toy = DeviceIdentity::generate(Role::Toy, &mut rng);
    let phone = DeviceIdentity::generate(Role::Guardian, &mut rng);
    let family = FamilyId::generate(&mut rng);
    let recovery = RecoveryKey::generate(&mut rng).unwrap();
    let mut v1 = RosterProposal::founding(
        family,
        vec![phone.public().clone(), toy.public().clone()],
        *recovery.public(),
    )
    .unwrap()
    .sign(&phone);
    v1.cosign(&toy);
    v1.cosign_recovery(&recovery);
    let guardian = Client::new(&server.url(), phone).unwrap();
    rt.block_on(guardian.create_family(&v1)).unwrap();
    let phone = guardian.identity();
    // From here on, a share of the requests meets a fault.
    faults.chaos(SEED, FAULT_PERCENT);

    let work = tempfile::tempdir().unwrap();
    let outbox = work.path().join("outbox");
    let state = work.path().join("progress");
    let key = work.path().join("toy.key");
    std::fs::write(&key, toy.export_secret_key_text().unwrap().as_bytes()).unwrap();
    let bin = uploader_binary();
    let spawn = || -> Child {
        Command::new(&bin)
            .args(["--server", &server.url()])
            .arg("--outbox")
            .arg(&outbox)
            .arg("--state")
            .arg(&state)
            .arg("--key")
            .arg(&key)
            .args(["--recipient", &phone.public().to_string()])
            .args(["--family", &family.to_string()])
            .args(["--count", &ENVELOPES.to_string()])
            .args(["--seed", &SEED.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    // Watch the outbox directory for plaintext the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let leaks = Arc::new(AtomicU64::new(0));
    let scans = Arc::new(AtomicU64::new(0));
    let scanner = {
        let (stop, leaks, scans, dir) =
            (stop.clone(), leaks.clone(), scans.clone(), outbox.clone());
        std::thread::spawn(move || {
            let marker = uploader::PLAINTEXT_MARKER.as_bytes();
            while !stop.load(Ordering::Relaxed) {
                for (_, bytes) in walk(&dir) {
                    if contains(&bytes, marker) {
                        leaks.fetch_add(1, Ordering::Relaxed);
                    }
                }
                scans.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let mut delays = ChaCha20Rng::seed_from_u64(SEED + 1);
    let mut killed_while_running = 0;
    for _ in 0..KILLS {
        let mut child = spawn();
        let delay = 5 + u64::from(delays.next_u32() % 150);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush.
        child.wait().unwrap();
        // Whatever is visible under a final name is a complete envelope named by its hash.
        for (path, bytes) in walk(&outbox) {
            let name = Path::new(&path).file_name().unwrap().to_string_lossy();
            if let Some(id) = name.strip_suffix(".tse") {
                assert_eq!(
                    EnvelopeId::of(&bytes).to_string(),
                    id,
                    "partial file visible"
                );
                toyseal_envelope::verify(&bytes, Default::default()).unwrap();
            }
        }
    }
    // A last run without interruption.
    let mut child = spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "uploader did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    scanner.join().unwrap();
    assert!(status.success(), "final uploader run failed: {status}");

    faults.calm();

    // Exactly once, none lost: the server stored each of the sealed envelopes once.
    let expected: HashSet<EnvelopeId> = (0..ENVELOPES)
        .map(|i| {
            EnvelopeId::of(
                &uploader::seal_recording(&toy, phone.public(), family, SEED, i).unwrap(),
            )
        })
        .collect();
    assert_eq!(expected.len() as u64, ENVELOPES);
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = rt
            .block_on(guardian.list(family, cursor.as_deref(), Some(100)))
            .unwrap();
        listed.extend(page.items.iter().map(|i| i.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let listed_set: HashSet<EnvelopeId> = listed.iter().copied().collect();
    let lost = expected.difference(&listed_set).count();
    let unexpected = listed_set.difference(&expected).count();
    let duplicated = listed.len() - listed_set.len();
    let rows = rt.block_on(env.count("envelopes"));
    let blobs = rt.block_on(env.dump_blobs());
    let envelope_blobs = blobs
        .iter()
        .filter(|(k, _)| k.contains("envelopes"))
        .count();
    let created = faults.server_answered(Target::Upload, 201);
    let cancelled = faults.cancelled(Target::Upload);
    let seen = faults.seen();
    let uploads = faults.requests(Target::Upload);
    let faulted = seen.iter().filter(|s| s.fault.is_some()).count();
    let lost_answers = seen
        .iter()
        .filter(|s| s.fault == Some("lose-answer") && s.server_status == Some(201))
        .count();
    eprintln!(
        "T60: {KILLS} kills ({killed_while_running} while running), {ENVELOPES} envelopes, \
         {} listed, {duplicated} duplicated, {lost} lost, {rows} rows, {envelope_blobs} blobs; \
         {uploads} upload requests, {created} answered 201 by the server, {} answered 200, \
         {cancelled} cancelled by a kill; \
         {faulted} of {} requests faulted ({lost_answers} answers lost after a store); \
         {} plaintext scans",
        listed.len(),
        faults.server_answered(Target::Upload, 200),
        seen.len(),
        scans.load(Ordering::Relaxed)
    );
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0);
    assert_eq!(unexpected, 0);
    assert_eq!(listed.len() as u64, ENVELOPES);
    assert_eq!(rows as u64, ENVELOPES);
    assert_eq!(envelope_blobs as u64, ENVELOPES);
    // Each envelope was stored by exactly one request; every other upload of it was told
    // "already stored". (An upload whose client was killed mid-request may have stored the
    // envelope while its answer, and hence the 201, never left: hyper dropped the handler's
    // future. Those are counted as cancelled.)
    assert!(
        created as u64 <= ENVELOPES,
        "{created} stores for {ENVELOPES} envelopes"
    );
    assert!(
        (created + cancelled) as u64 >= ENVELOPES,
        "{created} stores + {cancelled} cancelled uploads < {ENVELOPES} envelopes"
    );
    assert!(faulted > 0, "no fault was injected");
    assert!(
        killed_while_running >= KILLS / 2,
        "kills mostly landed after exit"
    );
    // The outbox holds nothing, not even a temporary file.
    assert!(walk(&outbox).is_empty(), "{:?}", walk(&outbox));
    assert_eq!(
        leaks.load(Ordering::Relaxed),
        0,
        "plaintext seen in the outbox"
    );
    // Neither does the server's storage hold plaintext.
    let marker = uploader::PLAINTEXT_MARKER.as_bytes();
    for (key, bytes) in &blobs {
        assert!(!contains(bytes, marker), "plaintext in blob {key}");
    }
    for (cell, bytes) in rt.block_on(env.dump_db()) {
        assert!(!contains(&bytes, marker), "plaintext in {cell}");
    }
    drop(guardian);
    drop(server);
    rt.shutdown_timeout(Duration::from_secs(1));
}
