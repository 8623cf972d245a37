//! The async client against a loopback test server (tests/support): every route, idempotent
//! uploads, retries with a fresh signature per attempt, and the checks the client makes
//! instead of trusting the server (roster chain, content hashes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;
use support::{Tamper, TestServer, founding};
use toyseal_cloud::api::EnvelopeId;
use toyseal_cloud::{Client, ClientConfig, Error};
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal_envelope::SealOptions;
use toyseal_roster::{Anchor, FamilyDeletion, Roster, RosterProposal};

struct Fixture {
    server: TestServer,
    family: FamilyId,
    guardian: Client,
    toy: Client,
    roster: Roster,
    /// The founding devices' anchor: version 1.
    anchor: Anchor,
}

fn fast() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.initial_backoff = Duration::from_millis(5);
    c.max_backoff = Duration::from_millis(50);
    c.request_timeout = Duration::from_secs(10);
    c
}

async fn fixture() -> Fixture {
    let server = TestServer::start().await;
    let family = FamilyId::generate(&mut OsRng);
    let g = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let t = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let v1 = founding(family, &g, &t);
    let guardian = Client::with_config(&server.url, g, fast()).unwrap();
    let toy = Client::with_config(&server.url, t, fast()).unwrap();
    let roster = guardian.create_family(&v1).await.unwrap();
    Fixture {
        anchor: Anchor::of(&v1),
        server,
        family,
        guardian,
        toy,
        roster,
    }
}

fn seal(f: &Fixture, content: &[u8]) -> Vec<u8> {
    f.roster
        .seal(
            f.toy.identity(),
            SealOptions::default(),
            content,
            &mut OsRng,
        )
        .unwrap()
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
    let env = seal(&f, b"a recording");
    let up = f.toy.upload(f.family, &env).await.unwrap();
    assert!(up.created);
    assert_eq!(up.id, EnvelopeId::of(&env));
    let again = f.toy.upload(f.family, &env).await.unwrap();
    assert!(!again.created);
    assert_eq!(f.server.state.lock().unwrap().creates[&up.id], 1);

    // List with a cursor.
    let env2 = seal(&f, b"another");
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

    // Roster update by the guardian: a second phone.
    let phone = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut members = r.members().to_vec();
    members.push(phone.public().clone());
    let mut v2 = RosterProposal::next(&r, members)
        .unwrap()
        .sign(f.guardian.identity());
    v2.cosign(f.toy.identity());
    v2.cosign(&phone);
    f.guardian.update_roster(&v2).await.unwrap();
    let r2 = f.toy.roster_update(&r).await.unwrap();
    assert_eq!(r2.version(), 2);
    assert!(r2.contains(phone.public()));

    // A toy may not upload rosters or delete (403); a guardian may (204).
    assert_eq!(
        f.toy.update_roster(&v2).await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        f.toy
            .delete_envelope(f.family, &up.id)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    f.guardian.delete_envelope(f.family, &up.id).await.unwrap();
    assert_eq!(
        f.guardian
            .download(f.family, &up.id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    // One guardian cannot delete the family (T17); with the toy's co-signature it can.
    let mut deletion = FamilyDeletion::new(&r2);
    deletion.cosign(f.guardian.identity());
    assert_eq!(
        f.guardian
            .delete_family(&deletion)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    deletion.cosign(f.toy.identity());
    f.guardian.delete_family(&deletion).await.unwrap();
    // The family's devices are in no roster any more: their keys are unknown (401).
    assert_eq!(
        f.toy.roster(&f.anchor).await.unwrap_err().status(),
        Some(401)
    );
}

#[tokio::test]
async fn other_families_look_like_nothing() {
    let a = fixture().await;
    let env = seal(&a, b"family A only");
    let id = a.toy.upload(a.family, &env).await.unwrap().id;
    // A device of family B, on the same server.
    let family_b = FamilyId::generate(&mut OsRng);
    let g = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let t = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    a.server.add_family(founding(family_b, &g, &t));
    let b = Client::with_config(&a.server.url, g, fast()).unwrap();
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
    let env = seal(&f, b"retry me");
    // The server records each attempt's nonce before failing it, so a retry that reused the
    // signature would be refused as a replay (401) and the upload would fail.
    f.server.state.lock().unwrap().fail_next = vec![503, 429, 500];
    let before = f.server.state.lock().unwrap().requests;
    let up = f.toy.upload(f.family, &env).await.unwrap();
    assert!(up.created);
    assert_eq!(f.server.state.lock().unwrap().requests - before, 4);

    f.server.state.lock().unwrap().fail_next = vec![503];
    assert_eq!(
        f.toy.list(f.family, None, None).await.unwrap().items.len(),
        1
    );

    // Not idempotent: a roster update is not retried.
    f.server.state.lock().unwrap().fail_next = vec![503];
    let mut v2 = RosterProposal::next(&f.roster, f.roster.members().to_vec())
        .unwrap()
        .sign(f.guardian.identity());
    v2.cosign(f.toy.identity());
    let e = f.guardian.update_roster(&v2).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(e.is_transient());

    // Retries end: five 503s exhaust the default five attempts.
    f.server.state.lock().unwrap().fail_next = vec![503; 5];
    assert_eq!(
        f.toy.list(f.family, None, None).await.unwrap_err().status(),
        Some(503)
    );
}

#[tokio::test]
async fn the_client_does_not_trust_the_server() {
    let f = fixture().await;
    // T43 from the client's side: the server appends a version adding its own key.
    f.server.state.lock().unwrap().tamper = Tamper::RosterAddsServer;
    assert!(matches!(
        f.toy.roster(&f.anchor).await,
        Err(Error::Roster(_))
    ));
    assert!(matches!(
        f.toy.roster_update(&f.roster).await,
        Err(Error::Roster(_))
    ));
    // Downloads must hash to the id asked for.
    f.server.state.lock().unwrap().tamper = Tamper::WrongBytes;
    let env = seal(&f, b"x");
    let id = f.toy.upload(f.family, &env).await.unwrap().id;
    assert!(matches!(
        f.guardian.download(f.family, &id).await,
        Err(Error::Integrity(_))
    ));
}

#[tokio::test]
async fn transport_errors_are_typed_and_say_nothing_secret() {
    // A port nothing listens on (bound, then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = fast();
    config.max_attempts = 2;
    let toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let secret = toy.export_secret_key_text().unwrap();
    let c = Client::with_config(&format!("http://127.0.0.1:{port}"), toy, config).unwrap();
    let e = c.health().await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.is_transient());
    let text = format!("{e} {e:?}");
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert!(!format!("{c:?}").contains(secret.as_str()));
}
