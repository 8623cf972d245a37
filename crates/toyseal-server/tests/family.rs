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

/// T38 against the real server: a device's envelopes are stored only on its sender chain
/// (sequence 0, a re-used sequence and an unused one that does not fit its stored neighbours
/// are refused with 409 `sender-chain`, an identical re-upload is idempotent); once the roster
/// removes it with its last envelope recorded, nothing new from it is stored, and its real
/// earlier envelopes still open for the family through the roster opener.
#[tokio::test]
async fn t38_removed_device_cannot_back_date_or_reuse_a_sequence_on_the_server() {
    use toyseal_cloud::api::{Problem, ProblemKind};
    let env = Env::new().await;
    let s = env.start().await;
    let (mut fam, dad, _) = family_with_dad(&s).await;
    // Dad's phone: sequences 1, 2, 3, then 4 (emitted, never uploaded: lost), then 5 naming 4.
    let mut real = Vec::new();
    for i in 0..3 {
        real.push(fam.seal(&dad, format!("dad's message {i}").as_bytes()));
    }
    let lost_4 = fam.seal(&dad, b"lost on the way");
    real.push(fam.seal(&dad, b"dad's message 5"));
    for e in &real {
        fam.upload(&s, &dad, e).await;
    }
    // An identical re-upload is idempotent.
    let r = s.call(&dad, "POST", &fam.envelopes_path(), &real[1]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let link = |e: &[u8]| toyseal_envelope::inspect(e).unwrap().link_hash();
    let refused_409 = |r: &common::http::Resp, what: &str| {
        let p: Problem = r.json();
        assert_eq!(
            (r.status, p.kind()),
            (409, Some(ProblemKind::SenderChain)),
            "{what}: {}",
            r.text()
        );
    };
    // Dad's key, stolen while he is still a member: new content under a re-used sequence,
    // under the unused (lost) sequence 4 naming its real predecessor, unsequenced, and naming
    // a predecessor that is not the stored one.
    let attacks = [
        (
            "re-used sequence 2",
            fam.seal_at(&dad, 2, link(&real[0]), b"forged"),
        ),
        (
            "re-used sequence 5",
            fam.seal_at(&dad, 5, link(&lost_4), b"forged"),
        ),
        (
            "unused sequence 4",
            fam.seal_at(&dad, 4, link(&real[2]), b"forged"),
        ),
        ("sequence 0", fam.seal_at(&dad, 0, [0; 32], b"forged")),
        (
            "wrong previous",
            fam.seal_at(&dad, 6, link(&real[2]), b"forged"),
        ),
    ];
    let rows_before = env.count("envelopes").await;
    for (what, e) in &attacks {
        let r = s.call(&dad, "POST", &fam.envelopes_path(), e).await;
        refused_409(&r, what);
    }
    assert_eq!(env.count("envelopes").await, rows_before, "nothing stored");
    // The listing carries each envelope's signed sequence.
    let r = s
        .call(&fam.guardian, "GET", &fam.envelopes_path(), b"")
        .await;
    let page: toyseal_cloud::api::EnvelopePage = r.json();
    let mut sequences: Vec<u64> = page.items.iter().map(|i| i.sequence).collect();
    sequences.sort_unstable();
    assert_eq!(sequences, [1, 2, 3, 5]);
    // Mum and the toy remove dad, recording his last envelope (sequence 5) as his chain head.
    let head = toyseal_envelope::inspect(&real[3]).unwrap();
    let v3 = fam.next_roster_with(fam.core(), &[], |p| {
        p.with_last_envelope(dad.device_id(), head.sequence(), head.link_hash())
            .unwrap()
    });
    let r = s.call(&fam.guardian, "POST", &fam.roster_path(), &v3).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // After the removal the server stores nothing from him: back-dated or re-used.
    for (what, e) in [
        ("unused sequence 4", &attacks[2].1),
        ("re-used sequence 2", &attacks[0].1),
        ("the lost envelope 4", &lost_4),
    ] {
        let r = s.call(&dad, "POST", &fam.envelopes_path(), e).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
    }
    assert_eq!(env.count("envelopes").await, rows_before);
    // The roster opener with mum's receive state (the headers she verified, including the
    // lost 4's, which dad's phone still holds): dad's real envelopes still open, every attack
    // is refused.
    let mut known = toyseal_envelope::ReceiveState::new();
    for e in real.iter().chain([&lost_4]) {
        known.observe(
            dad.device_id(),
            toyseal_envelope::inspect(e).unwrap().chain_link(),
        );
    }
    for e in &real {
        let (_, opened) = fam
            .roster
            .open_with_chains(&fam.guardian, &known, e, Default::default())
            .unwrap();
        assert!(opened.sequence <= 5);
    }
    for (what, e) in &attacks {
        assert!(
            fam.roster
                .open_with_chains(&fam.guardian, &known, e, Default::default())
                .is_err(),
            "{what}"
        );
    }
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

/// T39 at the server: the family lost its only phone. The recovery version (signed by the
/// recovery key and co-signed by the toy at the toy, adding the new phone as guardian and
/// removing the lost one) is published by the new phone itself, which the server never saw:
/// accepted because it verifies as the next version and makes that phone a guardian. A
/// stranger who posts a version listing itself, without the family's quorum, learns nothing
/// (404, as for a family that does not exist); the lost phone is refused afterwards.
#[tokio::test]
async fn t39_a_recovering_phone_publishes_the_recovery_version() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new_with(&[]);
    fam.create(&s).await;
    let new_phone = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let stranger = DeviceIdentity::generate(Role::Guardian, &mut OsRng);

    // A stranger's version listing itself as guardian, signed by itself only: no quorum.
    let mut forged = RosterProposal::next(
        &fam.roster,
        vec![stranger.public().clone(), fam.toy.public().clone()],
    )
    .unwrap()
    .sign(&stranger);
    forged.cosign(&fam.toy);
    let r = s
        .call(&stranger, "POST", &fam.roster_path(), &forged.encode())
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // With a body that is no roster, the stranger is just an unknown device: 401, before any
    // family is looked at.
    let r = s
        .call(&stranger, "POST", &fam.roster_path(), b"not a roster")
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // The same stranger posting to a family that does not exist: the same answer.
    let nowhere = format!(
        "/v1/families/{}/roster",
        toyseal_core::FamilyId::generate(&mut OsRng)
    );
    let r = s.call(&stranger, "POST", &nowhere, &forged.encode()).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // The recovery version: the new phone as guardian, the toy; the lost phone departed.
    let mut v2 = RosterProposal::next(
        &fam.roster,
        vec![new_phone.public().clone(), fam.toy.public().clone()],
    )
    .unwrap()
    .sign_with_recovery(&fam.recovery);
    v2.cosign(&fam.toy);
    v2.cosign(&new_phone);
    // A member (not guardian) role in the version would not do: only a guardian it adds may
    // publish. The new phone, unknown to the server until now, publishes it.
    let r = s
        .call(&new_phone, "POST", &fam.roster_path(), &v2.encode())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.call(&new_phone, "GET", &fam.roster_path(), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Replayed: no longer the next version; the new phone is a member now, so it is told.
    let r = s
        .call(&new_phone, "POST", &fam.roster_path(), &v2.encode())
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    // The lost phone is out: 401 removed.
    let r = s.call(&fam.guardian, "GET", &fam.roster_path(), b"").await;
    assert_eq!(r.status, 401, "{}", r.text());
}

/// T39 at the server: a fork (one version number, two hashes) is refused and reported as such.
/// The family holds version 2 adding gran; a second version 2 adding someone else, carrying a
/// full quorum of version 1, gets 409 `roster-fork` naming the version, and nothing changes.
#[tokio::test]
async fn t39_the_server_reports_a_roster_fork() {
    let env = Env::new().await;
    let s = env.start().await;
    let mut fam = Family::new_with(&[]);
    fam.create(&s).await;
    let v1 = Roster::verify_founding(fam.chain[0].clone()).unwrap();
    let gran = DeviceIdentity::generate(Role::Member, &mut OsRng);
    let mut with_gran = fam.roster.members().to_vec();
    with_gran.push(gran.public().clone());
    let v2 = fam.next_roster(with_gran, &[&gran]);
    let r = s.call(&fam.guardian, "POST", &fam.roster_path(), &v2).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Another version 2, from version 1, with its own quorum (the guardian and the recovery
    // key) and the newcomer's proof of possession.
    let other = DeviceIdentity::generate(Role::Member, &mut OsRng);
    let mut with_other = v1.members().to_vec();
    with_other.push(other.public().clone());
    let mut fork = RosterProposal::next(&v1, with_other)
        .unwrap()
        .sign(&fam.guardian);
    fork.cosign_recovery(&fam.recovery);
    fork.cosign(&other);
    assert!(
        v1.verify_next(fork.clone()).is_ok(),
        "a valid version 2 on its own"
    );
    let r = s
        .call(&fam.guardian, "POST", &fam.roster_path(), &fork.encode())
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("problem:roster-fork") && r.text().contains("version 2"),
        "{}",
        r.text()
    );
    // The family's roster is still the version 2 it holds.
    let r = s.call(&fam.guardian, "GET", &fam.roster_path(), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let chain: RosterChain = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(chain.versions.len(), 2);
}
