//! Storage threats (THREATS.md T09–T15, T61, T62) against a real server and real storage:
//! every test scans the database and the blob store itself. Runs on PostgreSQL / S3 when their
//! env vars are set (tests that need the local blob directory or SQLite file say so).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::child;
use common::http::{self, RawRequest};
use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toyseal_cloud::api::{EnvelopeCreated, EnvelopeId, EnvelopePage, MAX_PAGE};
use toyseal_core::{DeviceIdentity, OsRng, Role};

async fn assert_nothing_stored(env: &Env) {
    assert_eq!(env.count("envelopes").await, 0, "no envelope row");
    let blobs = env.dump_blobs().await;
    assert!(
        blobs.is_empty(),
        "no blob: {:?}",
        blobs.iter().map(|b| &b.0).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn t09_sender_mismatch_or_bad_signature_upload() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    // Sealed by the guardian, uploaded by the toy: the sender is not the signer.
    let by_guardian = fam.seal(&fam.guardian, b"not from the toy");
    let r = s
        .call(&fam.toy, "POST", &fam.envelopes_path(), &by_guardian)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("sender"), "{}", r.text());
    // A flipped bit anywhere breaks the sender signature.
    let good = fam.seal(&fam.toy, &recording("flip"));
    for pos in [10, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        let r = s.call(&fam.toy, "POST", &fam.envelopes_path(), &bad).await;
        assert_eq!(r.status, 400, "bit {pos}: {}", r.text());
    }
    // Truncated.
    let r = s
        .call(
            &fam.toy,
            "POST",
            &fam.envelopes_path(),
            &good[..good.len() - 20],
        )
        .await;
    assert_eq!(r.status, 400);
    // An outsider's validly signed envelope naming this family, uploaded by a member.
    let stranger = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let opts = toyseal_envelope::SealOptions::default().with_family(fam.id, 1);
    let foreign = toyseal_envelope::seal(
        &stranger,
        &[fam.guardian.public().clone()],
        &opts,
        b"spoof",
        &mut OsRng,
    )
    .unwrap();
    let r = s
        .call(&fam.toy, "POST", &fam.envelopes_path(), &foreign)
        .await;
    assert_eq!(r.status, 403);
    // The member's envelope for another family.
    let other = Family::new();
    let r = s
        .call(
            &fam.toy,
            "POST",
            &fam.envelopes_path(),
            &other.seal(&other.toy, b"x"),
        )
        .await;
    assert!(r.status == 403 || r.status == 400, "{}", r.status);
    assert_nothing_stored(&env).await;
    // And the good one is accepted.
    fam.upload(&s, &fam.toy, &good).await;
    assert_eq!(env.count("envelopes").await, 1);
}

#[tokio::test]
async fn t10_no_overwrite() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let e1 = fam.seal(&fam.toy, b"first");
    let r = s.call(&fam.toy, "POST", &fam.envelopes_path(), &e1).await;
    assert_eq!(r.status, 201);
    let c: EnvelopeCreated = r.json();
    // Identical bytes: 200, same id, one row.
    let r = s.call(&fam.toy, "POST", &fam.envelopes_path(), &e1).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json::<EnvelopeCreated>(), c);
    assert_eq!(env.count("envelopes").await, 1);
    // Other bytes can never land on that id: the id is their hash.
    let e2 = fam.seal(&fam.toy, b"second");
    let id2 = fam.upload(&s, &fam.toy, &e2).await;
    assert_ne!(id2, c.id.to_string());
    let got = s
        .call(
            &fam.guardian,
            "GET",
            &fam.envelope_path(&c.id.to_string()),
            b"",
        )
        .await;
    assert_eq!(got.body, e1);
    // The store itself is create-only: a second write at an existing key is refused.
    let key = format!("envelopes/{}/{}", fam.id, c.id);
    let store: Box<dyn object_store::ObjectStore> = match &env.config.blobs {
        toyseal_server::BlobConfig::Dir(d) => {
            Box::new(object_store::local::LocalFileSystem::new_with_prefix(d).unwrap())
        }
        other => Box::new(s3_store(other)),
    };
    let put = store
        .put_opts(
            &object_store::path::Path::from(key.as_str()),
            object_store::PutPayload::from(e2.clone()),
            object_store::PutOptions {
                mode: object_store::PutMode::Create,
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(put, Err(object_store::Error::AlreadyExists { .. })),
        "{put:?}"
    );
    let got = s
        .call(
            &fam.guardian,
            "GET",
            &fam.envelope_path(&c.id.to_string()),
            b"",
        )
        .await;
    assert_eq!(got.body, e1);
}

#[tokio::test]
async fn t11_limits() {
    let env = Env::new().await;
    let config = env
        .config
        .clone()
        .with_body_limit(64 * 1024)
        .with_request_timeout(Duration::from_secs(1))
        .with_rate_limit(20, 40);
    let s = env.start_with(config).await;
    let fam = Family::new();
    fam.create(&s).await;
    // Oversized body: 413, nothing stored.
    let big = vec![7u8; 128 * 1024];
    let r = s.call(&fam.toy, "POST", &fam.envelopes_path(), &big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let p: toyseal_cloud::api::Problem = r.json();
    assert_eq!(
        (p.kind(), p.limit),
        (
            Some(toyseal_cloud::api::ProblemKind::TooLarge),
            Some(64 * 1024)
        )
    );
    // Slow body: headers, a few bytes, then silence → 408.
    let req = s.signed(&fam.toy, "POST", &fam.envelopes_path(), &[1u8; 1000]);
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(&req.encode_head(false)).await.unwrap();
    tcp.write_all(&[1u8; 10]).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A burst: 429 after the bucket empties, and the server still answers.
    let mut statuses = Vec::new();
    for _ in 0..120 {
        statuses.push(
            s.call(&fam.guardian, "GET", &fam.envelopes_path(), b"")
                .await
                .status,
        );
    }
    let limited = statuses.iter().filter(|&&c| c == 429).count();
    assert!(limited > 0, "no 429 in {statuses:?}");
    assert!(statuses.iter().all(|&c| c == 200 || c == 429));
    // A 429 says when to come back. (The bucket refills 20 tokens/s, so the request right
    // after the loop may find a fresh token on a slow machine: look at the next 429.)
    let mut r = s
        .call(&fam.guardian, "GET", &fam.envelopes_path(), b"")
        .await;
    for _ in 0..20 {
        if r.status == 429 {
            break;
        }
        r = s
            .call(&fam.guardian, "GET", &fam.envelopes_path(), b"")
            .await;
    }
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    // Another device is not affected; the health route still answers.
    assert_eq!(
        s.call(&fam.toy, "GET", &fam.envelopes_path(), b"")
            .await
            .status,
        200
    );
    assert_eq!(s.unsigned("GET", "/v1/health", b"").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelopes_path(), b"")
            .await
            .status,
        200
    );
    drop(s);

    // A huge limit is capped at MAX_PAGE; cursors walk the rest.
    let s = env.start().await;
    let n = MAX_PAGE as usize + 5;
    let mut ids = Vec::new();
    for i in 0..n {
        let e = fam.seal(&fam.toy, format!("note {i}").as_bytes());
        ids.push(fam.upload(&s, &fam.toy, &e).await);
    }
    let r = s
        .call(
            &fam.guardian,
            "GET",
            &format!("{}?limit=100000", fam.envelopes_path()),
            b"",
        )
        .await;
    let page: EnvelopePage = r.json();
    assert_eq!(page.items.len(), MAX_PAGE as usize);
    assert!(page.next_cursor.is_some());
    // Oldest first, every id exactly once.
    assert_eq!(fam.list_all(&s, &fam.guardian).await, ids);
}

#[tokio::test]
async fn t12_dump_contains_no_plaintext() {
    let env = Env::new().await;
    let s = env.start().await;
    let marker = "MARKER: Teddy says hello to Alice, age 5, at 12 Acacia Road";
    let dad = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut fam = Family::new();
    fam.create(&s).await;
    // A family's life: recordings, playback, a new member, a reply, a deletion.
    let voice = recording(marker);
    let e1 = fam.seal(&fam.toy, &voice);
    let id1 = fam.upload(&s, &fam.toy, &e1).await;
    let got = s
        .call(&fam.guardian, "GET", &fam.envelope_path(&id1), b"")
        .await;
    let (plain, _) = fam
        .roster
        .open(&fam.guardian, &got.body, Default::default())
        .unwrap();
    assert_eq!(plain, voice);
    let mut members = fam.core();
    members.push(dad.public().clone());
    let v2 = fam.next_roster(members, &[&dad]);
    assert_eq!(
        s.call(&fam.guardian, "POST", &fam.roster_path(), &v2)
            .await
            .status,
        200
    );
    let reply = recording("MARKER: bedtime story from dad");
    let e2 = fam.seal(&dad, &reply);
    fam.upload(&s, &dad, &e2).await;
    let e3 = fam.seal(&fam.toy, &recording(marker));
    let id3 = fam.upload(&s, &fam.toy, &e3).await;
    // The toy retracts its own recording (erased at once; a guardian's deletion is soft).
    assert_eq!(
        s.call(&fam.toy, "DELETE", &fam.envelope_path(&id3), b"")
            .await
            .status,
        204
    );

    // Dump everything: every cell of every table, the raw SQLite files, every blob.
    let mut dump = env.dump_db().await;
    dump.extend(env.raw_db_files());
    dump.extend(env.dump_blobs().await);
    assert!(dump.len() > 10);
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("marker", marker.as_bytes().to_vec()),
        ("dad's marker", b"bedtime story".to_vec()),
        ("'Alice'", b"Alice".to_vec()),
        (
            "audio samples",
            voice[marker.len() + 200..marker.len() + 264].to_vec(),
        ),
        ("reply samples", reply[40..104].to_vec()),
        ("content type", b"audio/wav".to_vec()),
        ("codec", b"pcm_s16le".to_vec()),
    ];
    for (where_, bytes) in &dump {
        for (what, needle) in &needles {
            assert!(!contains(bytes, needle), "{what} found in {where_}");
        }
    }
    // Only routing columns exist: no names, ages, or profile fields anywhere.
    let allowed = [
        "family",
        "current_version",
        "created_at",
        "version",
        "bytes",
        "hash",
        "device_id",
        "public_key",
        "role",
        "from_version",
        "until_version",
        "seq",
        "id",
        "sender",
        "size",
        "roster_version",
        "received_at",
        "blob_key",
        // Soft deletion (T36): who deleted an envelope (a device id), when, until when.
        "deleted_by",
        "deleted_at",
        "erase_at",
        // The sender chain (signed header fields, public): sequence and two header hashes.
        "sender_sequence",
        "header_hash",
        "previous",
        "device",
        "nonce",
        "expires",
    ];
    for (col, _) in env.dump_db().await {
        let name = col.split('.').nth(1).unwrap();
        assert!(allowed.contains(&name), "unexpected column {col}");
    }
    // What is there is ciphertext: the blobs are exactly the uploaded envelopes.
    let blobs: Vec<Vec<u8>> = env.dump_blobs().await.into_iter().map(|b| b.1).collect();
    assert_eq!(blobs.len(), 2);
    assert!(blobs.contains(&e1) && blobs.contains(&e2));
}

#[tokio::test]
async fn t13_blob_store_not_anonymously_readable() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let e = fam.seal(&fam.toy, b"private");
    let id = fam.upload(&s, &fam.toy, &e).await;
    let key = format!("envelopes/{}/{id}", fam.id);
    // The only way to the bytes is the signed download route.
    for target in [
        format!("/{key}"),
        format!("/blobs/{key}"),
        format!("/v1/blobs/{}/{id}", fam.id),
        format!("/data/blobs/{key}"),
        format!("/toyseal-data/blobs/{key}"),
        format!("/v1/families/{}/envelopes/{id}/raw", fam.id),
        format!("/v1/families/{}/envelopes/../../../blobs/{key}", fam.id),
        format!("/v1/families/{}/envelopes/{id}?download=1", fam.id),
        fam.envelope_path(&id),
    ] {
        for m in ["GET", "HEAD"] {
            let r = s.unsigned(m, &target, b"").await;
            assert!(
                matches!(r.status, 401 | 404 | 405),
                "{m} {target}: {}",
                r.status
            );
            assert!(
                !contains(&r.body, &e[..64]),
                "{m} {target} returned the blob"
            );
        }
    }
    // Local store: the data and blob directories are the server user's only.
    if let Some(dir) = env.blob_dir() {
        use std::os::unix::fs::PermissionsExt;
        for d in [env.data_dir(), dir] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
    }
    // S3: the object is written without a public ACL, so an anonymous GET of it (and of its
    // ACL) is denied by the store itself (moto and AWS both evaluate object ACLs for anonymous
    // requests; a `public-read` object would answer 200).
    if let Some((endpoint, bucket)) = &env.s3 {
        let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
        for target in [format!("/{bucket}/{key}"), format!("/{bucket}/{key}?acl")] {
            let r = http::send(
                host.parse().unwrap(),
                &RawRequest {
                    method: "GET".into(),
                    target: target.clone(),
                    host: host.into(),
                    headers: vec![],
                    body: vec![],
                },
            )
            .await;
            assert_eq!(r.status, 403, "anonymous {target}: {}", r.text());
            assert!(!contains(&r.body, &e[..64]));
        }
    }
}

#[tokio::test]
async fn t14_malformed_input() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let p = fam.envelopes_path();
    let cases: Vec<(&str, RawRequest, &str)> = vec![
        (
            "invalid UTF-8 header",
            {
                let mut r = s.signed(&fam.toy, "GET", &p, b"");
                r.headers[1].1 = b"toyseal=(\xff\xfe)".to_vec();
                r
            },
            "not valid",
        ),
        (
            "bad family id",
            s.signed(&fam.toy, "GET", "/v1/families/XYZ/envelopes", b""),
            "family id",
        ),
        (
            "short family id",
            s.signed(&fam.toy, "GET", "/v1/families/abcd/roster", b""),
            "family id",
        ),
        (
            "bad envelope id",
            s.signed(&fam.toy, "GET", &format!("{p}/nothex"), b""),
            "envelope id",
        ),
        (
            "upper-case envelope id",
            s.signed(&fam.toy, "GET", &format!("{p}/{}", "AB".repeat(32)), b""),
            "envelope id",
        ),
        (
            "limit not a number",
            s.signed(&fam.toy, "GET", &format!("{p}?limit=abc"), b""),
            "query",
        ),
        (
            "negative limit",
            s.signed(&fam.toy, "GET", &format!("{p}?limit=-1"), b""),
            "query",
        ),
        (
            "unknown query field",
            s.signed(&fam.toy, "GET", &format!("{p}?limit=5&admin=1"), b""),
            "query",
        ),
        (
            "bad cursor",
            s.signed(&fam.toy, "GET", &format!("{p}?cursor=zz"), b""),
            "cursor",
        ),
        (
            "JSON instead of an envelope",
            s.signed(&fam.toy, "POST", &p, br#"{"id": 1, "audio": "..."}"#),
            "envelope",
        ),
        (
            "bad JSON",
            s.signed(&fam.toy, "POST", &p, b"{\"id\": "),
            "envelope",
        ),
        (
            "JSON instead of a roster",
            s.signed(
                &fam.guardian,
                "POST",
                &fam.roster_path(),
                br#"{"members": []}"#,
            ),
            "roster",
        ),
        (
            "body on a GET",
            s.signed(&fam.toy, "GET", &p, b"unexpected"),
            "no body",
        ),
    ];
    for (what, req, needle) in cases {
        let r = http::send(s.addr, &req).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        let body: toyseal_cloud::api::Problem = r.json();
        assert!(body.detail.contains(needle), "{what}: {}", body.detail);
    }
    // A founding request whose body is no roster cannot name the key it is signed with: the
    // generic 401, no parser detail before authentication.
    let r = http::send(
        s.addr,
        &s.signed(
            &fam.guardian,
            "POST",
            &Family::new().path(),
            b"\x00\x01garbage",
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    // Nothing half-written: one family, one roster version, no envelope, no blob.
    assert_eq!(env.count("families").await, 1);
    assert_eq!(env.count("roster_versions").await, 1);
    assert_nothing_stored(&env).await;
    assert_eq!(s.unsigned("GET", "/v1/health", b"").await.status, 200);
}

#[tokio::test]
async fn t15_deletion_erases_everything() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    let other = Family::new();
    fam.create(&s).await;
    other.create(&s).await;
    let e1 = fam.seal(&fam.toy, &recording("one"));
    let e2 = fam.seal(&fam.toy, &recording("two"));
    let kept = other.seal(&other.toy, &recording("other family"));
    let id1 = fam.upload(&s, &fam.toy, &e1).await;
    let id2 = fam.upload(&s, &fam.toy, &e2).await;
    let kept_id = other.upload(&s, &other.toy, &kept).await;

    // Its sender deletes one message: erased at once (a guardian's deletion of it would be
    // soft, T36; tests/deletion.rs).
    assert_eq!(
        s.call(&fam.toy, "DELETE", &fam.envelope_path(&id1), b"")
            .await
            .status,
        204
    );
    let blobs = env.dump_blobs().await;
    assert!(!blobs.iter().any(|b| b.1 == e1 || b.0.contains(&id1)));
    assert!(blobs.iter().any(|b| b.1 == e2));
    assert!(
        !env.dump_db()
            .await
            .iter()
            .any(|c| contains(&c.1, id1.as_bytes()))
    );
    // Not in the database files either, the write-ahead log included (SQLite keeps old page
    // copies there until a checkpoint; the deletion checkpoints). Found by `toyseal demo`.
    for (file, bytes) in env.raw_db_files() {
        assert!(
            !contains(&bytes, id1.as_bytes()),
            "deleted envelope's id in {file}"
        );
    }
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id1), b"")
            .await
            .status,
        404
    );

    // Delete the family.
    assert_eq!(
        s.call(&fam.guardian, "DELETE", &fam.path(), &fam.deletion())
            .await
            .status,
        204
    );
    let family_hex = fam.id.to_string();
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("family id".into(), family_hex.clone().into_bytes()),
        ("family id bytes".into(), fam.id.as_bytes().to_vec()),
        ("envelope id".into(), id2.clone().into_bytes()),
        ("roster".into(), fam.v1()[..80].to_vec()),
        ("toy key".into(), fam.toy.public().to_bytes().to_vec()),
        (
            "guardian key".into(),
            fam.guardian.public().to_bytes().to_vec(),
        ),
    ];
    needles.push(("ciphertext".into(), e2[200..264].to_vec()));
    let mut dump = env.dump_db().await;
    dump.extend(env.raw_db_files());
    dump.extend(env.dump_blobs().await);
    for (where_, bytes) in &dump {
        for (what, needle) in &needles {
            assert!(!contains(bytes, needle), "{what} still in {where_}");
        }
        assert!(!where_.contains(&family_hex), "{where_}");
    }
    // Blob store: only the other family's envelope is left.
    let blobs = env.dump_blobs().await;
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].1, kept);
    if let Some(dir) = env.blob_dir() {
        assert!(!walk_dirs(&dir).iter().any(|d| d.contains(&family_hex)));
    }
    // The family's devices are gone from the registry: 401.
    let r = s.call(&fam.guardian, "GET", &fam.roster_path(), b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(other.list_all(&s, &other.guardian).await, vec![kept_id]);
}

fn walk_dirs(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.push(e.path().display().to_string());
                out.extend(walk_dirs(&e.path()));
            }
        }
    }
    out
}

#[tokio::test]
async fn t61_server_killed_mid_upload() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let e = fam.seal(&fam.toy, &vec![3u8; 200_000]);
    let id = EnvelopeId::of(&e).to_string();
    // Send headers and half the body, then kill the server mid-upload.
    let req = s.signed(&fam.toy, "POST", &fam.envelopes_path(), &e);
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(&req.encode_head(false)).await.unwrap();
    tcp.write_all(&e[..e.len() / 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.crash();
    drop(tcp);
    // No partial blob anywhere, no row.
    assert_nothing_stored(&env).await;
    // A restarted instance: the envelope is not visible; the retry succeeds.
    let s = env.start().await;
    assert!(fam.list_all(&s, &fam.guardian).await.is_empty());
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
            .await
            .status,
        404
    );
    assert_eq!(fam.upload(&s, &fam.toy, &e).await, id);
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
            .await
            .body,
        e
    );

    // A crash between blob and row leaves an orphan blob: invisible, reused by the retry.
    let e2 = fam.seal(&fam.toy, b"orphaned once");
    let id2 = EnvelopeId::of(&e2).to_string();
    let store: Box<dyn object_store::ObjectStore> = match &env.config.blobs {
        toyseal_server::BlobConfig::Dir(d) => {
            Box::new(object_store::local::LocalFileSystem::new_with_prefix(d).unwrap())
        }
        other => Box::new(s3_store(other)),
    };
    let key = object_store::path::Path::from(format!("envelopes/{}/{id2}", fam.id));
    store.put(&key, e2.clone().into()).await.unwrap();
    assert_eq!(fam.list_all(&s, &fam.guardian).await, vec![id.clone()]);
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id2), b"")
            .await
            .status,
        404
    );
    assert_eq!(fam.upload(&s, &fam.toy, &e2).await, id2);
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id2), b"")
            .await
            .body,
        e2
    );
    // A corrupt orphan at the key is replaced, never served.
    let e3 = fam.seal(&fam.toy, b"corrupted orphan");
    let id3 = EnvelopeId::of(&e3).to_string();
    let key3 = object_store::path::Path::from(format!("envelopes/{}/{id3}", fam.id));
    store.put(&key3, e3[..100].to_vec().into()).await.unwrap();
    assert_eq!(fam.upload(&s, &fam.toy, &e3).await, id3);
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id3), b"")
            .await
            .body,
        e3
    );
    // The sweeper removes orphans no row points to, and nothing else.
    let key4 = object_store::path::Path::from(format!("envelopes/{}/{}", fam.id, random_hex(32)));
    store.put(&key4, b"orphan".to_vec().into()).await.unwrap();
    assert_eq!(
        s.server.sweep_orphan_blobs(Duration::ZERO).await.unwrap(),
        1
    );
    assert_eq!(env.dump_blobs().await.len(), 3);
    assert_eq!(fam.list_all(&s, &fam.guardian).await.len(), 3);
}

#[tokio::test]
async fn t62_storage_unavailable() {
    let env = Env::hermetic().await;
    let config = env
        .config
        .clone()
        .with_db_timeout(Duration::from_millis(300));
    let s = env.start_with(config).await;
    let fam = Family::new();
    fam.create(&s).await;
    let before = fam.seal(&fam.toy, b"stored before the outage");
    let before_id = fam.upload(&s, &fam.toy, &before).await;

    // Blob store down: the blob directory is replaced by a file.
    let dir = env.blob_dir().unwrap();
    let aside = dir.with_extension("aside");
    std::fs::rename(&dir, &aside).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let e = fam.seal(&fam.toy, b"during the blob outage");
    let r = s.call(&fam.toy, "POST", &fam.envelopes_path(), &e).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let p: toyseal_cloud::api::Problem = r.json();
    assert_eq!(p.detail, "storage is unavailable, retry later");
    let r = s
        .call(&fam.guardian, "GET", &fam.envelope_path(&before_id), b"")
        .await;
    assert_eq!(r.status, 503);
    // Back: the retry succeeds, nothing was lost, no restart.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    let id = fam.upload(&s, &fam.toy, &e).await;
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&before_id), b"")
            .await
            .body,
        before
    );
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
            .await
            .body,
        e
    );

    // Database down: another process holds the write lock past the busy timeout.
    let db = env.db().await;
    let mut locker = db.acquire().await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let e2 = fam.seal(&fam.toy, b"during the database outage");
    let r = s.call(&fam.toy, "POST", &fam.envelopes_path(), &e2).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let p: toyseal_cloud::api::Problem = r.json();
    assert_eq!(p.detail, "storage is unavailable, retry later");
    sqlx::query("ROLLBACK").execute(&mut *locker).await.unwrap();
    drop(locker);
    db.close().await;
    // Recovered without a restart; the failed upload left nothing; the retry works.
    assert_eq!(
        fam.list_all(&s, &fam.guardian).await,
        vec![before_id.clone(), id.clone()]
    );
    let id2 = fam.upload(&s, &fam.toy, &e2).await;
    assert_eq!(
        fam.list_all(&s, &fam.guardian).await,
        vec![before_id, id, id2]
    );
}

/// A recording of about 2 MiB: its envelope takes a measurable time to write.
fn big_recording(i: u8) -> Vec<u8> {
    let mut v = recording(&format!("big recording {i}"));
    v.resize(2 << 20, i);
    v
}

/// Uploads three large envelopes at once to a child server on `env`'s data directory (and
/// `s`'s) and SIGKILLs it as soon as a staging file appears, until a kill leaves one (at most
/// 40 tries; after a miss, what was stored whole is deleted so that the same envelopes are
/// written again). Returns the staging files left and the envelopes.
async fn kill9_until_staging_left(
    env: &Env,
    s: &TestServer,
    fam: &Family,
) -> (Vec<std::path::PathBuf>, Vec<Vec<u8>>) {
    let family_dir = env
        .blob_dir()
        .unwrap()
        .join("envelopes")
        .join(fam.id.to_string());
    let sent: Vec<Vec<u8>> = (0..3)
        .map(|i| fam.seal(&fam.toy, &big_recording(i)))
        .collect();
    for attempt in 0..40 {
        let left = child::kill9_during_blob_write(&env.data_dir(), &family_dir, |host| {
            sent.iter()
                .map(|e| {
                    signed_request(&fam.toy, host, "POST", &fam.envelopes_path(), e, now(), 60)
                })
                .collect()
        })
        .await;
        if !left.is_empty() {
            eprintln!(
                "a SIGKILL left a staging file after {} attempts",
                attempt + 1
            );
            return (left, sent);
        }
        // Their sender erases them at once (a guardian's deletion would only hide them, T36).
        for id in fam.list_all(s, &fam.guardian).await {
            let r = s
                .call(&fam.toy, "DELETE", &fam.envelope_path(&id), b"")
                .await;
            assert_eq!(r.status, 204, "{}", r.text());
        }
    }
    panic!("no SIGKILL landed during a blob write in 40 attempts");
}

/// Every file under the blob directory whose name is a staging name.
fn staging_anywhere(dir: &std::path::Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.rsplit('/').next().is_some_and(child::is_staging))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t15_deletion_erases_what_a_server_killed_mid_write_left() {
    // The directory store's staging files exist only there; hermetic.
    let env = Env::hermetic().await;
    let s = env.start().await;
    let fam = Family::new();
    let other = Family::new();
    fam.create(&s).await;
    other.create(&s).await;
    let kept = other.seal(&other.toy, &recording("the other family's"));
    other.upload(&s, &other.toy, &kept).await;
    let stored = fam.seal(&fam.toy, &recording("stored whole"));
    fam.upload(&s, &fam.toy, &stored).await;

    // A real server process, killed with SIGKILL while it writes a blob: it leaves ciphertext
    // in a staging file that the store's listing never shows.
    let (left, mut sent) = kill9_until_staging_left(&env, &s, &fam).await;
    let staged = std::fs::read(&left[0]).unwrap();
    assert!(
        sent.iter().any(|e| e.starts_with(&staged)),
        "the staging file holds the start of an envelope"
    );
    sent.push(stored);

    // The family deletion (a quorum) erases it, and answers 204 only then.
    let r = s
        .call(&fam.guardian, "DELETE", &fam.path(), &fam.deletion())
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let family_hex = fam.id.to_string();
    let blob_dir = env.blob_dir().unwrap();
    assert_eq!(staging_anywhere(&blob_dir), Vec::<String>::new());
    assert!(!walk_dirs(&blob_dir).iter().any(|d| d.contains(&family_hex)));
    let mut dump = env.dump_db().await;
    dump.extend(env.raw_db_files());
    dump.extend(walk(&env.data_dir()));
    for (where_, bytes) in &dump {
        assert!(!where_.contains(&family_hex), "{where_}");
        assert!(
            !contains(bytes, family_hex.as_bytes()),
            "family id in {where_}"
        );
        for e in &sent {
            // Any 64 bytes of ciphertext past the header, within what a staging file holds.
            let at = 4096.min(staged.len().saturating_sub(64)).max(200);
            assert!(!contains(bytes, &e[at..at + 64]), "ciphertext in {where_}");
        }
    }
    // The other family's envelope is untouched.
    let blobs = env.dump_blobs().await;
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].1, kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t61_server_killed_during_a_blob_write() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let (left, sent) = kill9_until_staging_left(&env, &s, &fam).await;
    let blob_dir = env.blob_dir().unwrap();
    // The partial write is nowhere a reader could reach: no row, no blob at any key (the
    // store's own listing).
    let listed: Vec<String> = fam.list_all(&s, &fam.guardian).await;
    for e in &sent {
        let id = EnvelopeId::of(e).to_string();
        if !listed.contains(&id) {
            assert_eq!(
                s.call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
                    .await
                    .status,
                404
            );
        }
    }
    // The sweeper leaves a young staging file alone (its upload may be in flight) ...
    s.server
        .sweep_orphan_blobs(toyseal_server::ORPHAN_MIN_AGE)
        .await
        .unwrap();
    assert!(left.iter().all(|p| p.exists()));
    // ... and removes it once it is older than the sweeper's age (3 h here).
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 3600);
    for p in &left {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let swept = s
        .server
        .sweep_orphan_blobs(toyseal_server::ORPHAN_MIN_AGE)
        .await
        .unwrap();
    // At least the staging files (the count may include an orphan the kill left elsewhere);
    // none is left, and every envelope the server lists still reads back whole.
    assert!(
        swept >= left.len() as u64,
        "{swept} swept, {} staging",
        left.len()
    );
    assert_eq!(staging_anywhere(&blob_dir), Vec::<String>::new());
    for id in fam.list_all(&s, &fam.guardian).await {
        let r = s
            .call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
            .await;
        assert_eq!(r.status, 200, "listed envelope {id} was swept");
        assert_eq!(EnvelopeId::of(&r.body).to_string(), id);
    }
    // Every envelope's retry succeeds and reads back whole.
    for e in &sent {
        let id = fam.upload(&s, &fam.toy, e).await;
        let r = s
            .call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
            .await;
        assert!(r.body == *e, "envelope {id} reads back whole");
    }
}

#[tokio::test]
async fn t61_sweeper_removes_old_staging_files_only() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let e = fam.seal(&fam.toy, &recording("kept"));
    let id = fam.upload(&s, &fam.toy, &e).await;
    let blob_dir = env.blob_dir().unwrap();
    let dir = blob_dir.join("envelopes").join(fam.id.to_string());
    let gone_family = blob_dir.join("envelopes").join(random_hex(16));
    std::fs::create_dir_all(&gone_family).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 3600);
    let staged = |path: std::path::PathBuf, age: Option<std::time::SystemTime>| {
        std::fs::write(&path, &e[..e.len() / 2]).unwrap();
        if let Some(t) = age {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        path
    };
    let old_here = staged(dir.join(format!("{}#1", random_hex(32))), Some(old));
    let old_elsewhere = staged(gone_family.join(format!("{}#3", random_hex(32))), Some(old));
    let young = staged(dir.join(format!("{}#2", random_hex(32))), None);
    // A name with '#' that is no staging name is not the sweeper's (no key of this server
    // has one, but the rule is the store's: digits only after '#').
    let not_staging = staged(dir.join(format!("{}#x", random_hex(32))), Some(old));
    let swept = s
        .server
        .sweep_orphan_blobs(toyseal_server::ORPHAN_MIN_AGE)
        .await
        .unwrap();
    assert!(!old_here.exists() && !old_elsewhere.exists());
    assert!(young.exists() && not_staging.exists());
    // Two staging files, and the '#x' file, which the store lists as a key no row points to.
    assert_eq!(swept, 3);
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
            .await
            .body,
        e
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t15_uploads_racing_a_family_deletion() {
    let env = Env::new().await;
    let s = std::sync::Arc::new(env.start().await);
    let fam = std::sync::Arc::new(Family::new());
    // The toy is in another family too, so after the deletion it is still a registered device:
    // its uploads to the deleted family meet the authorization (404), not the registry (401).
    let other = Family::new_with(&[&fam.toy]);
    fam.create(&s).await;
    other.create(&s).await;
    let kept = other.seal(&other.toy, &recording("kept"));
    other.upload(&s, &other.toy, &kept).await;

    const UPLOADERS: usize = 12;
    const EACH: usize = 4;
    let sealed: Vec<Vec<Vec<u8>>> = (0..UPLOADERS)
        .map(|u| {
            (0..EACH)
                .map(|i| fam.seal(&fam.toy, &vec![(u * EACH + i) as u8; 300_000]))
                .collect()
        })
        .collect();
    let started = std::time::Instant::now();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for envelopes in sealed.clone() {
        let (s, fam, answered) = (s.clone(), fam.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for e in envelopes {
                let sent = started.elapsed();
                let r = s.call(&fam.toy, "POST", &fam.envelopes_path(), &e).await;
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                out.push((sent, started.elapsed(), r.status, r.text()));
            }
            out
        }));
    }
    // The deletion starts once the first uploads are stored, while the rest are in flight.
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deletion_sent = started.elapsed();
    let r = s
        .call(&fam.guardian, "DELETE", &fam.path(), &fam.deletion())
        .await;
    let deletion_answered = started.elapsed();
    assert_eq!(r.status, 204, "{}", r.text());
    let mut counts = std::collections::BTreeMap::new();
    for t in tasks {
        for (sent, got, status, text) in t.await.unwrap() {
            *counts.entry(status).or_insert(0) += 1;
            match status {
                // Stored: the upload was sent before the deletion answered (its row and blob
                // were erased by it).
                200 | 201 => assert!(sent < deletion_answered, "{status} sent after the 204"),
                // Refused: answered after the deletion began. 410 ("family deleted") for an
                // upload authorized before the rows went, 404 for one after.
                410 => {
                    assert!(got > deletion_sent);
                    let p: toyseal_cloud::api::Problem = serde_json::from_str(&text).unwrap();
                    assert_eq!(p.kind, toyseal_cloud::api::ProblemKind::Gone.type_uri());
                }
                404 => assert!(got > deletion_sent),
                other => panic!("upload answered {other}: {text}"),
            }
        }
    }
    eprintln!("upload answers around the deletion: {counts:?}");
    // Nothing of the family is left, whatever the interleaving.
    let family_hex = fam.id.to_string();
    let mut dump = env.dump_db().await;
    dump.extend(env.raw_db_files());
    let blobs = env.dump_blobs().await;
    assert_eq!(
        blobs.len(),
        1,
        "{:?}",
        blobs.iter().map(|b| &b.0).collect::<Vec<_>>()
    );
    assert_eq!(blobs[0].1, kept);
    if let Some(dir) = env.blob_dir() {
        dump.extend(walk(&dir));
        assert!(!walk_dirs(&dir).iter().any(|d| d.contains(&family_hex)));
    }
    for (where_, bytes) in &dump {
        assert!(!where_.contains(&family_hex), "{where_}");
        assert!(
            !contains(bytes, family_hex.as_bytes()),
            "family id in {where_}"
        );
        for e in sealed.iter().flatten() {
            assert!(!contains(bytes, &e[1000..1064]), "ciphertext in {where_}");
        }
    }
}
