//! Family governance against the real server (THREATS.md T16, T17, T18): a fabricated roster
//! chain is refused by a new and by a reinstalled device (the real `toyseal-cloud` client
//! follows only chains through its anchor); one stolen guardian key cannot change the roster or
//! delete the family; a removed device gets nothing sealed after its removal. Plus the paged
//! `GET …/roster?since=`. Runs on PostgreSQL / S3 when their env vars are set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use toyseal_cloud::api::{MAX_ROSTER_PAGE, RosterChain};
use toyseal_cloud::{AnchorStore, Client, Error as ClientError};
use toyseal_core::{DeviceIdentity, OsRng, Role};
use toyseal_roster::{
    Anchor, Error as RosterError, FamilyDeletion, Invitation, RecoveryKey, Roster, RosterProposal,
    SignedRoster,
};

/// The same device after a reinstall: its keys restored from the platform keychain.
fn restored(d: &DeviceIdentity) -> DeviceIdentity {
    DeviceIdentity::from_secret_key_text(&d.export_secret_key_text().unwrap()).unwrap()
}

fn client(s: &TestServer, who: &DeviceIdentity) -> Client {
    Client::new(&format!("http://{}", s.host()), restored(who)).unwrap()
}

/// {guardian, toy} created, then v2 adds dad (guardian + toy sign, dad proves possession).
async fn family_with_dad(s: &TestServer) -> (Family, DeviceIdentity, SignedRoster) {
    let mut fam = Family::new();
    fam.create(s).await;
    let dad = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut members = fam.core();
    members.push(dad.public().clone());
    let v2 = fam.next_roster(members, &[&dad]);
    let r = s.call(&fam.guardian, "POST", &fam.roster_path(), &v2).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v2 = SignedRoster::decode(&v2).unwrap();
    (fam, dad, v2)
}

#[tokio::test]
async fn t16_server_fabricated_roster_refused() {
    let env = Env::new().await;
    let s = env.start().await;
    let (fam, dad, v2) = family_with_dad(&s).await;
    // Mum shows dad a QR code: the invitation anchors him at v2. Over the honest server he
    // joins; the founding guardian (anchor v1) follows the same chain.
    let invitation: Invitation = Invitation::new(&v2, Some(&format!("http://{}", s.host())))
        .unwrap()
        .to_string()
        .parse()
        .unwrap();
    let honest = client(&s, &dad).roster(invitation.anchor()).await.unwrap();
    assert_eq!(honest, fam.roster);
    // Mum's app kept its anchor (v1, which it signed) beside its keys; after a reinstall it
    // reads it back from there.
    let keys = tempfile::tempdir().unwrap();
    AnchorStore::open(keys.path())
        .unwrap()
        .store(&Anchor::of(&fam.chain[0]))
        .unwrap();
    let mum_anchor = AnchorStore::open(keys.path())
        .unwrap()
        .load(fam.id)
        .unwrap()
        .unwrap();
    assert_eq!(
        client(&s, &fam.guardian).roster(&mum_anchor).await.unwrap(),
        fam.roster
    );

    // The operator rewrites the family's chain in its database: its own guardian and "toy"
    // found the same family id and add dad (so the chain lists him), a chain that verifies by
    // itself.
    let fake_guardian = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let fake_toy = DeviceIdentity::generate(Role::Toy, &mut OsRng);
    let fake_recovery = RecoveryKey::generate(&mut OsRng).unwrap();
    let mut f1 = RosterProposal::founding(
        fam.id,
        vec![fake_guardian.public().clone(), fake_toy.public().clone()],
        *fake_recovery.public(),
    )
    .unwrap()
    .sign(&fake_guardian);
    f1.cosign(&fake_toy);
    f1.cosign_recovery(&fake_recovery);
    let fr1 = Roster::verify_founding(f1.clone()).unwrap();
    let mut f2 = RosterProposal::next(
        &fr1,
        vec![
            fake_guardian.public().clone(),
            fake_toy.public().clone(),
            fam.guardian.public().clone(),
            dad.public().clone(),
        ],
    )
    .unwrap()
    .sign(&fake_guardian);
    f2.cosign_recovery(&fake_recovery);
    // (Mum and dad cannot be made to sign it: their proofs of possession are missing. Even
    // with them, no fabricated version can have the anchored versions' hashes.)
    let fabricated = [f1.clone(), f2.clone()];
    let db = env.db().await;
    let family = fam.id.to_string();
    sqlx::query("DELETE FROM roster_versions WHERE family = $1")
        .bind(&family)
        .execute(&db)
        .await
        .unwrap();
    for (i, v) in fabricated.iter().enumerate() {
        sqlx::query(
            "INSERT INTO roster_versions (family, version, bytes, hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(&family)
        .bind(i as i64 + 1)
        .bind(v.encode())
        .bind(v.hash().to_vec())
        .execute(&db)
        .await
        .unwrap();
    }
    // The server really serves the fabricated chain...
    let served: RosterChain = s.call(&dad, "GET", &fam.roster_path(), b"").await.json();
    assert_eq!(served.versions.len(), 2);

    // ...and a new device (dad, through his invitation) refuses it,
    let r = client(&s, &dad).roster(invitation.anchor()).await;
    assert!(
        matches!(
            r,
            Err(ClientError::Roster(
                RosterError::NotAnchored | RosterError::ProofOfPossession
            ))
        ),
        "{r:?}"
    );
    // as does the reinstalled founding guardian (its anchor, v1, kept with its keys).
    let r = client(&s, &fam.guardian).roster(&mum_anchor).await;
    assert!(
        matches!(r, Err(ClientError::Roster(RosterError::NotAnchored))),
        "{r:?}"
    );
    // A chain that simply stops before the anchor (the server withholds v2) is refused too.
    sqlx::query("DELETE FROM roster_versions WHERE family = $1 AND version = 2")
        .bind(&family)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE roster_versions SET bytes = $1, hash = $2 WHERE family = $3")
        .bind(fam.chain[0].encode())
        .bind(fam.chain[0].hash().to_vec())
        .bind(&family)
        .execute(&db)
        .await
        .unwrap();
    let r = client(&s, &dad).roster(invitation.anchor()).await;
    assert!(
        matches!(r, Err(ClientError::Roster(RosterError::NotAnchored))),
        "{r:?}"
    );
}

#[tokio::test]
async fn t17_stolen_phone_cannot_take_over() {
    let env = Env::new().await;
    let s = env.start().await;
    let (mut fam, dad, _) = family_with_dad(&s).await;
    let id = fam
        .upload(&s, &fam.toy, &fam.seal(&fam.toy, b"keep me"))
        .await;
    // The thief holds mum's phone. Alone it removes dad (the other guardian), adds its own
    // device (which proves possession), and deletes the family: all refused.
    let thief = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let remove_dad = RosterProposal::next(&fam.roster, fam.core())
        .unwrap()
        .sign(&fam.guardian);
    let mut members = fam.roster.members().to_vec();
    members.push(thief.public().clone());
    let mut add_thief = RosterProposal::next(&fam.roster, members)
        .unwrap()
        .sign(&fam.guardian);
    add_thief.cosign(&thief);
    for v in [remove_dad, add_thief] {
        let r = s
            .call(&fam.guardian, "POST", &fam.roster_path(), &v.encode())
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let mut deletion = FamilyDeletion::new(&fam.roster);
    deletion.cosign(&fam.guardian);
    let r = s
        .call(&fam.guardian, "DELETE", &fam.path(), &deletion.encode())
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Without a body, or with garbage: 400; nothing erased either way.
    for body in [&b""[..], b"not a deletion"] {
        let r = s.call(&fam.guardian, "DELETE", &fam.path(), body).await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    // The family keeps control: nothing changed, nothing was deleted.
    let chain: RosterChain = s.call(&dad, "GET", &fam.roster_path(), b"").await.json();
    assert_eq!(chain.versions.len(), 2);
    assert_eq!(fam.list_all(&s, &dad).await, vec![id.clone()]);
    // Dad removes the stolen phone: removing a guardian is a grant, so dad and the toy are
    // refused (T35) and dad with the printed recovery key is accepted...
    let mut v3 = RosterProposal::next(
        &fam.roster,
        vec![dad.public().clone(), fam.toy.public().clone()],
    )
    .unwrap()
    .sign(&dad);
    v3.cosign(&fam.toy);
    let r = s.call(&dad, "POST", &fam.roster_path(), &v3.encode()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    v3.cosign_recovery(&fam.recovery);
    let r = s.call(&dad, "POST", &fam.roster_path(), &v3.encode()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    fam.roster = fam.roster.verify_next(v3).unwrap();
    // ...after which the stolen key is unknown to the server.
    let r = s
        .call(&fam.guardian, "GET", &fam.envelopes_path(), b"")
        .await;
    assert_eq!(r.status, 401);
    // A deletion statement decided under the old version does not count (409), the family's
    // own quorum does.
    let mut stale = FamilyDeletion::new(&from_founding(&fam.chain).unwrap());
    stale.cosign(&dad);
    stale.cosign(&fam.toy);
    let r = s.call(&dad, "DELETE", &fam.path(), &stale.encode()).await;
    assert_eq!(r.status, 409, "{}", r.text());
    // Dad and the toy are no deletion quorum (T35); dad and the recovery key are.
    let mut deletion = FamilyDeletion::new(&fam.roster);
    deletion.cosign(&dad);
    deletion.cosign(&fam.toy);
    let r = s
        .call(&dad, "DELETE", &fam.path(), &deletion.encode())
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    deletion.cosign_recovery(&fam.recovery);
    let r = s
        .call(&dad, "DELETE", &fam.path(), &deletion.encode())
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn t18_removed_device_gets_nothing_after_removal() {
    let env = Env::new().await;
    let s = env.start().await;
    let (mut fam, dad, _) = family_with_dad(&s).await;
    // Dad is also in another family, so his key stays known to the server.
    let other = Family::new_with(&[&dad]);
    other.create(&s).await;
    let before = fam
        .upload(&s, &fam.toy, &fam.seal(&fam.toy, b"before removal"))
        .await;
    // Mum and the toy remove dad's phone.
    let v3 = fam.next_roster(fam.core(), &[]);
    let r = s.call(&fam.guardian, "POST", &fam.roster_path(), &v3).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sealed_after = fam.seal(&fam.toy, b"after removal");
    let after = fam.upload(&s, &fam.toy, &sealed_after).await;
    // Listing, fetching (the new one, and the old), the roster: dad's signature verifies, so
    // he is told that he was removed, and at which version — and gets nothing else.
    for (m, target) in [
        ("GET", fam.envelopes_path()),
        ("GET", format!("{}?limit=100", fam.envelopes_path())),
        ("GET", fam.envelope_path(&after)),
        ("GET", fam.envelope_path(&before)),
        ("GET", fam.roster_path()),
        ("GET", format!("{}?since=2", fam.roster_path())),
    ] {
        let r = s.call(&dad, m, &target, b"").await;
        let p: toyseal_cloud::api::Problem = r.json();
        assert_eq!(
            (r.status, p.kind(), p.removed_at_version),
            (401, Some(toyseal_cloud::api::ProblemKind::Removed), Some(3)),
            "{target}"
        );
    }
    // Even with the bytes (from a leak), the envelope sealed after his removal is not his.
    assert!(matches!(
        toyseal_envelope::open(
            &dad,
            &[fam.toy.public().clone()],
            &sealed_after,
            Default::default()
        ),
        Err(toyseal_envelope::Error::NotARecipient)
    ));
    // Removed from his last family too: still told he was removed (the latest removal), and
    // nothing else.
    let mut other = other;
    let v2 = other.next_roster(other.core(), &[]);
    assert_eq!(
        s.call(&other.guardian, "POST", &other.roster_path(), &v2)
            .await
            .status,
        200
    );
    for target in [fam.envelopes_path(), fam.envelope_path(&after)] {
        let r = s.call(&dad, "GET", &target, b"").await;
        let p: toyseal_cloud::api::Problem = r.json();
        assert_eq!(
            (r.status, p.kind()),
            (401, Some(toyseal_cloud::api::ProblemKind::Removed))
        );
    }
    // The family still has both.
    assert_eq!(fam.list_all(&s, &fam.toy).await, vec![before, after]);
}

#[tokio::test]
async fn roster_fetches_are_paged_and_bounded() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let mut fam = Family::new();
    fam.create(&s).await;
    // A long chain: more versions than one page holds.
    let n = MAX_ROSTER_PAGE + 6;
    for _ in 1..n {
        let v = fam.next_roster(fam.core(), &[]);
        let r = s.call(&fam.guardian, "POST", &fam.roster_path(), &v).await;
        assert_eq!(r.status, 200, "{}", r.text());
        // The answer carries the new version only, not the whole chain.
        assert_eq!(r.json::<RosterChain>().versions.len(), 1);
    }
    let page: RosterChain = s
        .call(&fam.toy, "GET", &fam.roster_path(), b"")
        .await
        .json();
    assert_eq!(page.versions.len() as u64, MAX_ROSTER_PAGE);
    assert!(page.more);
    let tail: RosterChain = s
        .call(
            &fam.toy,
            "GET",
            &format!("{}?since={MAX_ROSTER_PAGE}", fam.roster_path()),
            b"",
        )
        .await
        .json();
    assert_eq!(tail.versions.len(), 6);
    assert!(!tail.more);
    let none: RosterChain = s
        .call(
            &fam.toy,
            "GET",
            &format!("{}?since={n}", fam.roster_path()),
            b"",
        )
        .await
        .json();
    assert!(none.versions.is_empty() && !none.more);
    // Any u64 is a version number (spec §6), also above i64::MAX (the database's integer);
    // answered with a 400 before (found while bounding `since` in openapi.json for schemathesis).
    for since in [i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        let r = s
            .call(
                &fam.toy,
                "GET",
                &format!("{}?since={since}", fam.roster_path()),
                b"",
            )
            .await;
        assert_eq!(r.status, 200, "since={since}: {}", r.text());
        let page: RosterChain = r.json();
        assert!(page.versions.is_empty() && !page.more, "since={since}");
    }
    for bad in [
        "since=-1",
        "since=x",
        "limit=5",
        "since=1&since=2",
        "since=18446744073709551616",
    ] {
        let r = s
            .call(
                &fam.toy,
                "GET",
                &format!("{}?{bad}", fam.roster_path()),
                b"",
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    // The client pages through it from its anchor, and updates incrementally.
    let toy = client(&s, &fam.toy);
    let anchor = Anchor::of(&fam.chain[0]);
    let latest = toy.roster(&anchor).await.unwrap();
    assert_eq!(latest.version(), n);
    let mid = from_founding(&fam.chain[..10]).unwrap();
    assert_eq!(toy.roster_update(&mid).await.unwrap(), latest);
    assert_eq!(toy.roster_update(&latest).await.unwrap(), latest);
}

/// The chain verified from its version 1, trusted as given (the founding device's and the
/// server's view; every other device verifies through its anchor).
fn from_founding(chain: &[SignedRoster]) -> Result<Roster, RosterError> {
    let (first, rest) = chain
        .split_first()
        .ok_or(RosterError::Malformed("empty chain"))?;
    Roster::verify_founding(first.clone())?.advance(rest)
}
