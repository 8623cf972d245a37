//! The `toyseal-cloud` client against the real server (its router on SQLite + a blob
//! directory, or PostgreSQL / S3 when their env vars are set), with faults injected by a tower
//! layer around the real router (`common::faults`): every route, idempotent uploads and
//! deletes, retries with a fresh signature per attempt (the server records each attempt's
//! nonce), answers lost after the server stored the envelope, dropped connections, delays past
//! the client's timeout, and the checks the client makes instead of trusting the server
//! (roster chain, content hashes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::faults::{Fault, Faults, Target};
use common::*;
use std::sync::Arc;
use std::time::Duration;
use toyseal_cloud::api::{EnvelopeCreated, EnvelopeId, RosterChain};
use toyseal_cloud::{Client, ClientConfig, Deletion, Error};
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal_envelope::SealOptions;
use toyseal_roster::{Anchor, FamilyDeletion, RecoveryKey, Roster, RosterProposal, SignedRoster};

struct Fixture {
    env: Env,
    server: TestServer,
    faults: Faults,
    family: FamilyId,
    guardian: Client,
    toy: Client,
    roster: Roster,
    /// The founding devices' anchor: version 1.
    anchor: Anchor,
    /// The toy's sender state.
    toy_state: std::sync::Mutex<toyseal_core::SenderState>,
}

fn fast() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.initial_backoff = Duration::from_millis(5);
    c.max_backoff = Duration::from_millis(50);
    c.request_timeout = Duration::from_secs(10);
    c
}

/// The tests' families' recovery key (every family keeps one, roster.md §1.2).
static RECOVERY: std::sync::LazyLock<RecoveryKey> =
    std::sync::LazyLock::new(|| RecoveryKey::generate(&mut OsRng).unwrap());

/// A family of one guardian and one toy, version 1 signed by both and the recovery key.
fn founding(family: FamilyId, guardian: &DeviceIdentity, toy: &DeviceIdentity) -> SignedRoster {
    let mut r = RosterProposal::founding(
        family,
        vec![guardian.public().clone(), toy.public().clone()],
        *RECOVERY.public(),
    )
    .unwrap()
    .sign(guardian);
    r.cosign(toy);
    r.cosign_recovery(&RECOVERY);
    r
}

async fn fixture_with(config: ClientConfig) -> Fixture {
    let env = Env::new().await;
    let faults = Faults::new();
    let server = env.start_with_faults(&faults).await;
    let family = FamilyId::generate(&mut OsRng);
    let g = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let t = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let v1 = founding(family, &g, &t);
    let guardian = Client::with_config(&server.url(), g, config.clone()).unwrap();
    let toy = Client::with_config(&server.url(), t, config).unwrap();
    let roster = guardian.create_family(&v1).await.unwrap();
    Fixture {
        anchor: Anchor::of(&v1),
        env,
        server,
        faults,
        family,
        guardian,
        toy,
        roster,
        toy_state: std::sync::Mutex::new(toyseal_core::SenderState::FIRST),
    }
}

async fn fixture() -> Fixture {
    fixture_with(fast()).await
}

impl Fixture {
    /// An envelope from the toy, on its sender chain.
    fn seal(&self, content: &[u8]) -> Vec<u8> {
        let mut state = self.toy_state.lock().unwrap();
        let env = self
            .roster
            .seal(
                self.toy.identity(),
                SealOptions::default()
                    .with_sequence(state.sequence)
                    .with_previous(state.previous),
                content,
                &mut OsRng,
            )
            .unwrap();
        let header = toyseal_envelope::inspect(&env).unwrap();
        *state = toyseal_core::SenderState::after(header.sequence(), header.link_hash()).unwrap();
        env
    }

    /// Envelope rows and stored blobs on the server.
    async fn stored(&self) -> (i64, usize) {
        let rows = self.env.count("envelopes").await;
        let blobs = self
            .env
            .dump_blobs()
            .await
            .into_iter()
            .filter(|(k, _)| k.contains("envelopes"))
            .count();
        (rows, blobs)
    }
}

#[tokio::test]
async fn every_route_round_trips() {
    let f = fixture().await;
    assert_eq!(f.toy.health().await.unwrap().status, "ok");

    // Roster: verified by the client from version 1, through its anchor (version 1 for the
    // founding toy).
    let r = f.toy.roster(&f.anchor).await.unwrap();
    assert_eq!(r.version(), 1);
    assert_eq!(r, f.roster);

    // Upload: 201, then 200 for the same bytes; both checked against EnvelopeId::of.
    let env = f.seal(b"a recording");
    let up = f.toy.upload(f.family, &env).await.unwrap();
    assert!(up.created);
    assert_eq!(up.id, EnvelopeId::of(&env));
    let again = f.toy.upload(f.family, &env).await.unwrap();
    assert!(!again.created);
    assert_eq!(f.faults.server_answered(Target::Upload, 201), 1);
    assert_eq!(f.stored().await, (1, 1));

    // List with a cursor.
    let env2 = f.seal(b"another");
    f.toy.upload(f.family, &env2).await.unwrap();
    let p1 = f.guardian.list(f.family, None, Some(1)).await.unwrap();
    assert_eq!(p1.items.len(), 1);
    assert_eq!(p1.items[0].id, up.id);
    let p2 = f
        .guardian
        .list(f.family, p1.next_cursor.as_deref(), Some(1))
        .await
        .unwrap();
    assert_eq!(p2.items[0].id, EnvelopeId::of(&env2));
    assert!(p2.next_cursor.is_none());

    // Download, then open with the verified roster.
    let bytes = f.guardian.download(f.family, &up.id).await.unwrap();
    assert_eq!(bytes, env);
    let (content, _) = r
        .open(f.guardian.identity(), &bytes, Default::default())
        .unwrap();
    assert_eq!(content, b"a recording");

    // Roster update by the guardian: a second phone (a grant: the guardian and the recovery
    // key).
    let phone = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut members = r.members().to_vec();
    members.push(phone.public().clone());
    let mut v2 = RosterProposal::next(&r, members)
        .unwrap()
        .sign(f.guardian.identity());
    v2.cosign_recovery(&RECOVERY);
    v2.cosign(&phone);
    f.guardian.update_roster(&v2).await.unwrap();
    let r2 = f.toy.roster_update(&r).await.unwrap();
    assert_eq!(r2.version(), 2);
    assert!(r2.contains(phone.public()));

    // A toy may not upload rosters (403).
    assert_eq!(
        f.toy.update_roster(&v2).await.unwrap_err().status(),
        Some(403)
    );
    // The guardian's deletion of the toy's envelope is soft (T36): hidden, listed, restorable.
    let Deletion::Pending(pending) = f.guardian.delete_envelope(f.family, &up.id).await.unwrap()
    else {
        panic!("a guardian's deletion of the toy's envelope must be soft");
    };
    assert_eq!(pending.id, up.id);
    assert_eq!(
        pending.deleted_by,
        f.guardian.identity().device_id().to_string()
    );
    assert_eq!(
        f.guardian
            .download(f.family, &up.id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let listed = f.guardian.deletions(f.family, None, None).await.unwrap();
    assert_eq!(listed.items, vec![pending]);
    assert_eq!(
        f.toy
            .deletions(f.family, None, None)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    f.guardian.restore_envelope(f.family, &up.id).await.unwrap();
    assert_eq!(f.guardian.download(f.family, &up.id).await.unwrap(), env);
    // Its sender retracts it at once.
    assert_eq!(
        f.toy.delete_envelope(f.family, &up.id).await.unwrap(),
        Deletion::Erased
    );
    assert_eq!(
        f.guardian
            .download(f.family, &up.id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    assert_eq!(
        f.guardian
            .restore_envelope(f.family, &up.id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    // One guardian cannot delete the family (T17), nor one with the toy's co-signature (T35:
    // the toy never counts for a deletion); with the recovery key it can.
    let mut deletion = FamilyDeletion::new(&r2);
    deletion.cosign(f.guardian.identity());
    for extra in [None, Some(f.toy.identity())] {
        if let Some(d) = extra {
            deletion.cosign(d);
        }
        assert_eq!(
            f.guardian
                .delete_family(&deletion)
                .await
                .unwrap_err()
                .status(),
            Some(403)
        );
    }
    deletion.cosign_recovery(&RECOVERY);
    f.guardian.delete_family(&deletion).await.unwrap();
    assert_eq!(f.stored().await, (0, 0));
    // The family's devices are in no roster any more: their keys are unknown (401).
    assert_eq!(
        f.toy.roster(&f.anchor).await.unwrap_err().status(),
        Some(401)
    );
}

#[tokio::test]
async fn other_families_look_like_nothing() {
    let a = fixture().await;
    let env = a.seal(b"family A only");
    let id = a.toy.upload(a.family, &env).await.unwrap().id;
    // A device of family B, on the same server.
    let family_b = FamilyId::generate(&mut OsRng);
    let g = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let t = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let b = Client::with_config(&a.server.url(), g, fast()).unwrap();
    b.create_family(&founding(family_b, b.identity(), &t))
        .await
        .unwrap();
    let unknown = FamilyId::generate(&mut OsRng);
    for fam in [a.family, unknown] {
        let anchor: Anchor = format!("{fam}:1:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(b.roster(&anchor).await.unwrap_err().status(), Some(404));
        assert_eq!(
            b.list(fam, None, None).await.unwrap_err().status(),
            Some(404)
        );
        assert_eq!(b.download(fam, &id).await.unwrap_err().status(), Some(404));
        assert_eq!(
            b.delete_envelope(fam, &id).await.unwrap_err().status(),
            Some(404)
        );
    }
    // Its own family does not have A's envelope either.
    assert_eq!(
        b.download(family_b, &id).await.unwrap_err().status(),
        Some(404)
    );
}

#[tokio::test]
async fn idempotent_operations_retry_with_a_fresh_signature() {
    let f = fixture().await;
    let env = f.seal(b"retry me");
    // The first and third attempts reach the server (which records their nonces and stores
    // the envelope on the first) before a 5xx replaces its answer: a retry that reused the
    // signature would be refused as a replay (401) and the upload would fail.
    f.faults.arm(
        Target::Upload,
        [
            Fault::ReplaceAnswer(503),
            Fault::Refuse(429),
            Fault::ReplaceAnswer(500),
        ],
    );
    let up = f.toy.upload(f.family, &env).await.unwrap();
    // Stored by the first attempt, confirmed (200) by the fourth.
    assert!(!up.created);
    assert_eq!(f.faults.requests(Target::Upload), 4);
    assert_eq!(f.faults.server_answered(Target::Upload, 201), 1);
    assert_eq!(f.faults.server_answered(Target::Upload, 200), 2);
    assert_eq!(f.faults.server_answered(Target::Any, 401), 0);
    assert_eq!(f.stored().await, (1, 1));

    f.faults.arm(Target::List, [Fault::ReplaceAnswer(503)]);
    assert_eq!(
        f.toy.list(f.family, None, None).await.unwrap().items.len(),
        1
    );
    assert_eq!(f.faults.server_answered(Target::List, 200), 2);

    // Not idempotent: a roster update is not retried.
    f.faults.arm(Target::RosterUpdate, [Fault::Refuse(503)]);
    let mut v2 = RosterProposal::next(&f.roster, f.roster.members().to_vec())
        .unwrap()
        .sign(f.guardian.identity());
    v2.cosign(f.toy.identity());
    let e = f.guardian.update_roster(&v2).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(e.is_transient());
    assert_eq!(f.faults.requests(Target::RosterUpdate), 1);

    // Retries end: five 503s exhaust the default five attempts.
    f.faults.arm(Target::List, vec![Fault::Refuse(503); 5]);
    assert_eq!(
        f.toy.list(f.family, None, None).await.unwrap_err().status(),
        Some(503)
    );
    assert_eq!(f.faults.pending(), 0);
}

#[tokio::test]
async fn lost_answers_dropped_connections_and_delays_store_once() {
    let mut config = fast();
    config.request_timeout = Duration::from_millis(1500);
    let f = fixture_with(config).await;

    // The connection drops before the server sees the upload, then the server stores it and
    // the answer is lost: the third attempt is told "already stored".
    let env = f.seal(b"lost answer");
    f.faults
        .arm(Target::Upload, [Fault::DropConnection, Fault::LoseAnswer]);
    let up = f.toy.upload(f.family, &env).await.unwrap();
    assert!(!up.created);
    assert_eq!(f.faults.requests(Target::Upload), 3);
    assert_eq!(f.faults.server_answered(Target::Upload, 201), 1);
    assert_eq!(f.stored().await, (1, 1));

    // Longer than the client waits: it gives up on that attempt and retries.
    let slow = f.seal(b"slow");
    f.faults
        .arm(Target::Upload, [Fault::Delay(Duration::from_secs(3))]);
    let up2 = f.toy.upload(f.family, &slow).await.unwrap();
    assert_eq!(up2.id, EnvelopeId::of(&slow));
    // Whether the abandoned attempt reached the server or not, the envelope is stored once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(f.faults.server_answered(Target::Upload, 201), 2);
    assert_eq!(f.stored().await, (2, 2));

    // Downloads and listings survive a dropped connection and a lost answer.
    f.faults
        .arm(Target::Download, [Fault::DropConnection, Fault::LoseAnswer]);
    assert_eq!(f.guardian.download(f.family, &up.id).await.unwrap(), env);
    f.faults.arm(Target::List, [Fault::LoseAnswer]);
    assert_eq!(
        f.guardian
            .list(f.family, None, None)
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // A delete whose answer is lost: the retry finds the envelope gone, which is success.
    f.faults.arm(Target::Any, [Fault::LoseAnswer]);
    assert_eq!(
        f.toy.delete_envelope(f.family, &up.id).await.unwrap(),
        Deletion::Erased
    );
    assert_eq!(f.stored().await, (1, 1));
    assert_eq!(f.faults.pending(), 0);
}

#[tokio::test]
async fn the_client_does_not_trust_the_server() {
    let f = fixture().await;
    // T43 from the client's side: the server appends a version adding its own key.
    let server_key = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let roster = f.roster.clone();
    let append_server = {
        let server_key = server_key.clone();
        move |body: Vec<u8>| {
            let mut chain: RosterChain = serde_json::from_slice(&body).unwrap();
            let mut members = roster.members().to_vec();
            members.push(server_key.public().clone());
            let forged = RosterProposal::next(&roster, members)
                .unwrap()
                .sign(&server_key);
            chain.versions.push(STANDARD.encode(forged.encode()));
            serde_json::to_vec(&chain).unwrap()
        }
    };
    let rewrite = Fault::Rewrite(Arc::new(append_server));
    f.faults
        .arm(Target::RosterFetch, [rewrite.clone(), rewrite]);
    assert!(matches!(
        f.toy.roster(&f.anchor).await,
        Err(Error::Roster(_))
    ));
    assert!(matches!(
        f.toy.roster_update(&f.roster).await,
        Err(Error::Roster(_))
    ));

    // Uploads must be answered with the id and size of the bytes sent.
    let env = f.seal(b"x");
    f.faults.arm(
        Target::Upload,
        [Fault::Rewrite(Arc::new(|body: Vec<u8>| {
            let mut c: EnvelopeCreated = serde_json::from_slice(&body).unwrap();
            c.size += 1;
            serde_json::to_vec(&c).unwrap()
        }))],
    );
    assert!(matches!(
        f.toy.upload(f.family, &env).await,
        Err(Error::Integrity(_))
    ));
    // Downloads must hash to the id asked for.
    let id = f.toy.upload(f.family, &env).await.unwrap().id;
    f.faults.arm(
        Target::Download,
        [Fault::Rewrite(Arc::new(|mut body: Vec<u8>| {
            body.push(0);
            body
        }))],
    );
    assert!(matches!(
        f.guardian.download(f.family, &id).await,
        Err(Error::Integrity(_))
    ));
    assert_eq!(f.faults.pending(), 0);
}

/// Body frames of the download answers, as the server's router produced them.
#[derive(Default)]
struct Frames {
    count: usize,
    largest: usize,
    bytes: usize,
}

#[tokio::test]
async fn downloads_stream_in_bounded_pieces() {
    let env = Env::new().await;
    let frames = Arc::new(std::sync::Mutex::new(Frames::default()));
    let faults = Faults::new();
    let server = {
        let (frames, faults) = (frames.clone(), faults.clone());
        TestServer::start_wrapped(env.config.clone(), move |router| {
            // Counts the frames of every download answer on their way out of the real router:
            // a buffered answer is one frame, a streamed one many.
            let counted = router.layer(axum::middleware::map_response(
                move |resp: axum::response::Response| {
                    let frames = frames.clone();
                    async move {
                        use futures::StreamExt;
                        let is_octets = resp
                            .headers()
                            .get("content-type")
                            .is_some_and(|v| v == "application/octet-stream");
                        if !is_octets {
                            return resp;
                        }
                        let (parts, body) = resp.into_parts();
                        let stream = body.into_data_stream().inspect(move |piece| {
                            if let Ok(p) = piece {
                                let mut f = frames.lock().unwrap();
                                f.count += 1;
                                f.largest = f.largest.max(p.len());
                                f.bytes += p.len();
                            }
                        });
                        axum::response::Response::from_parts(
                            parts,
                            axum::body::Body::from_stream(stream),
                        )
                    }
                },
            ));
            faults.around(counted)
        })
        .await
    };
    let family = FamilyId::generate(&mut OsRng);
    let g = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let t = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let v1 = founding(family, &g, &t);
    let guardian = Client::with_config(&server.url(), g, fast()).unwrap();
    let toy = Client::with_config(&server.url(), t, fast()).unwrap();
    let roster = guardian.create_family(&v1).await.unwrap();

    // A 2 MiB recording.
    let content: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
    let envelope = roster
        .seal(
            toy.identity(),
            SealOptions::default().with_sequence(1),
            &content,
            &mut OsRng,
        )
        .unwrap();
    let id = toy.upload(family, &envelope).await.unwrap().id;

    // The first attempt's connection drops before any byte: retried.
    faults.arm(Target::Download, [Fault::DropConnection]);
    let opener = toyseal_envelope::Opener::new(guardian.identity(), &roster, Default::default())
        .check_recipients(roster.members());
    let mut opened = Vec::new();
    let mut pieces = 0;
    guardian
        .download_open(family, &id, opener, |piece| {
            pieces += 1;
            opened.extend_from_slice(piece);
        })
        .await
        .unwrap();
    assert!(opened == content, "content differs");
    assert!(pieces > 1, "content released in one piece");
    {
        let f = frames.lock().unwrap();
        eprintln!(
            "download of {} bytes: {} frames from the server (largest {} bytes), {pieces} \
             pieces of content from the opener",
            envelope.len(),
            f.count,
            f.largest
        );
        assert_eq!(f.bytes, envelope.len());
        assert!(f.count >= 16, "{} frames: not streamed", f.count);
        assert!(f.largest <= 64 << 10, "a frame of {} bytes", f.largest);
    }

    // The raw pieces, hashed on the way: the same bytes, never held whole by the client.
    let mut received = 0usize;
    let mut calls = 0;
    let size = guardian
        .download_with(family, &id, |piece| {
            received += piece.len();
            calls += 1;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(size as usize, envelope.len());
    assert_eq!(received, envelope.len());
    assert!(calls > 1);

    // A server that serves another (valid) envelope of the family: it opens, but the bytes do
    // not hash to the id asked for, so the result is refused.
    let other = roster
        .seal(
            toy.identity(),
            SealOptions::default().with_sequence(2),
            b"other",
            &mut OsRng,
        )
        .unwrap();
    faults.arm(
        Target::Download,
        [Fault::Rewrite(Arc::new(move |_| other.clone()))],
    );
    let opener = toyseal_envelope::Opener::new(guardian.identity(), &roster, Default::default())
        .check_recipients(roster.members());
    assert!(matches!(
        guardian.download_open(family, &id, opener, |_| {}).await,
        Err(Error::Integrity(_))
    ));
    assert_eq!(faults.pending(), 0);
}

#[tokio::test]
async fn an_upload_reports_its_progress_and_stores_the_same_bytes() {
    let f = fixture().await;
    // A 1 MiB recording: the envelope goes out in pieces of 64 KiB.
    let content: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let envelope = f.seal(&content);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let report = {
        let seen = seen.clone();
        Arc::new(move |sent: u64| seen.lock().unwrap().push(sent))
    };
    let up = f
        .toy
        .upload_with_progress(f.family, &envelope, report)
        .await
        .unwrap();
    assert_eq!(up.id, EnvelopeId::of(&envelope));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 16, "{} reports", seen.len());
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(envelope.len() as u64));
    // What the server stored is the envelope, byte for byte.
    let got = f.guardian.download(f.family, &up.id).await.unwrap();
    assert_eq!(got, envelope);
    assert_eq!(f.stored().await, (1, 1));
}

/// The daily soft-deletion limit (T36) reaches the caller as its own kind with the limit, and
/// is not retried: waiting seconds does not lift a daily limit (a 429 rate limit is retried).
#[tokio::test]
async fn the_deletion_limit_is_reported_and_not_retried() {
    let f = fixture().await;
    let mut ids = Vec::new();
    for i in 0..21 {
        let env = f.seal(format!("recording {i}").as_bytes());
        ids.push(f.toy.upload(f.family, &env).await.unwrap().id);
    }
    for id in &ids[..20] {
        assert!(matches!(
            f.guardian.delete_envelope(f.family, id).await.unwrap(),
            Deletion::Pending(_)
        ));
    }
    let refused = f
        .guardian
        .delete_envelope(f.family, &ids[20])
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Status {
                status: 429,
                kind: Some(toyseal_cloud::api::ProblemKind::DeletionLimit),
                limit: Some(20),
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(f.faults.server_answered(Target::Any, 429), 1, "not retried");
    // Restoring frees the budget: the pending ones are what counts.
    f.guardian
        .restore_envelope(f.family, &ids[0])
        .await
        .unwrap();
    assert!(matches!(
        f.guardian
            .delete_envelope(f.family, &ids[20])
            .await
            .unwrap(),
        Deletion::Pending(_)
    ));
    assert_eq!(
        f.guardian
            .deletions(f.family, None, None)
            .await
            .unwrap()
            .items
            .len(),
        20
    );
}
