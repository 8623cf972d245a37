//! Soft deletion and quorum erasure (THREATS T36, DESIGN "Deletion") against the real server
//! and real storage (PostgreSQL / S3 when their env vars are set, else SQLite + a blob
//! directory): every test scans the database and the blob store itself, as the T15 tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::{Duration, SystemTime};
use toyseal_cloud::api::{DeletionPage, PendingDeletion, Problem, ProblemKind};
use toyseal_core::{DeviceIdentity, OsRng, Role};

const DAY: u64 = 86_400;

/// Mum (the fixture's guardian), dad (a second guardian) and the toy.
fn family_with_dad() -> (Family, DeviceIdentity) {
    let dad = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    (Family::new_with(&[&dad]), dad)
}

/// Rows and blobs of envelopes in storage, and whether each of `envelopes` is stored whole
/// (a blob with exactly its bytes).
async fn scan(env: &Env, envelopes: &[Vec<u8>]) -> (i64, usize, Vec<bool>) {
    let blobs: Vec<(String, Vec<u8>)> = env
        .dump_blobs()
        .await
        .into_iter()
        .filter(|(k, _)| k.contains("envelopes"))
        .collect();
    let whole = envelopes
        .iter()
        .map(|e| blobs.iter().any(|(_, b)| b == e))
        .collect();
    (env.count("envelopes").await, blobs.len(), whole)
}

async fn pending(s: &TestServer, fam: &Family, who: &DeviceIdentity) -> Vec<PendingDeletion> {
    let r = s
        .call(
            who,
            "GET",
            &format!("{}?limit=100", fam.deletions_path()),
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page: DeletionPage = r.json();
    assert!(page.next_cursor.is_none());
    page.items
}

/// The review's attack: dad's stolen phone deletes the twelve recordings of the toy, one
/// envelope at a time. Nothing is erased: each is hidden, listed to mum with who deleted it,
/// and restorable by her; the 21st soft deletion of the day is refused; a statement signed by
/// dad alone, or by dad and the toy, erases nothing.
#[tokio::test]
async fn t36_one_guardian_cannot_erase_the_archive() {
    let env = Env::new().await;
    let s = env.start().await;
    let (fam, dad) = family_with_dad();
    fam.create(&s).await;
    let mum = &fam.guardian;
    let mut envelopes = Vec::new();
    let mut ids = Vec::new();
    for i in 0..12 {
        let e = fam.seal(&fam.toy, &recording(&format!("recording {i}")));
        ids.push(fam.upload(&s, &fam.toy, &e).await);
        envelopes.push(e);
    }

    // Twelve DELETEs by dad's phone: twelve 202s, not 204s.
    let before = now();
    for id in &ids {
        let r = s.call(&dad, "DELETE", &fam.envelope_path(id), b"").await;
        assert_eq!(r.status, 202, "{}", r.text());
        let p: PendingDeletion = r.json();
        assert_eq!(p.id.to_string(), *id);
        assert_eq!(p.deleted_by, dad.device_id().to_string());
        assert_eq!(p.sender, fam.toy.device_id().to_string());
        assert!(p.deleted_at >= before && p.deleted_at <= now());
        assert_eq!(p.erase_at, p.deleted_at + 30 * DAY);
    }
    // Hidden from listings and downloads (a download answers exactly as a missing envelope)...
    assert!(fam.list_all(&s, mum).await.is_empty());
    let hidden = s.call(mum, "GET", &fam.envelope_path(&ids[0]), b"").await;
    let missing = s
        .call(mum, "GET", &fam.envelope_path(&random_hex(32)), b"")
        .await;
    assert_eq!(
        (hidden.status, hidden.problem_text()),
        (missing.status, missing.problem_text())
    );
    assert_eq!(hidden.problem_text(), NOT_FOUND);
    // ...but nothing is erased: every row and every blob, byte for byte.
    assert_eq!(scan(&env, &envelopes).await, (12, 12, vec![true; 12]));
    // Listed to every guardian (mum sees dad's deletions), to no other member.
    let listed = pending(&s, &fam, mum).await;
    assert_eq!(listed.len(), 12);
    assert!(
        listed
            .iter()
            .all(|p| p.deleted_by == dad.device_id().to_string())
    );
    assert_eq!(
        s.call(&fam.toy, "GET", &fam.deletions_path(), b"")
            .await
            .status,
        403
    );
    // Mum restores all twelve: listed and downloadable again, the same bytes.
    for id in &ids {
        let r = s.call(mum, "POST", &fam.restore_path(id), b"").await;
        assert_eq!(r.status, 204, "{}", r.text());
    }
    assert_eq!(fam.list_all(&s, mum).await, ids);
    for (id, e) in ids.iter().zip(&envelopes) {
        let r = s.call(mum, "GET", &fam.envelope_path(id), b"").await;
        assert_eq!((r.status, &r.body), (200, e));
    }
    assert!(pending(&s, &fam, mum).await.is_empty());

    // The daily limit: 20 soft deletions from one device in 24 hours, the 21st refused.
    for i in 12..21 {
        let e = fam.seal(&fam.toy, &recording(&format!("recording {i}")));
        ids.push(fam.upload(&s, &fam.toy, &e).await);
        envelopes.push(e);
    }
    for id in &ids[..20] {
        let r = s.call(&dad, "DELETE", &fam.envelope_path(id), b"").await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let r = s
        .call(&dad, "DELETE", &fam.envelope_path(&ids[20]), b"")
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    let problem: Problem = r.json();
    assert_eq!(problem.kind(), Some(ProblemKind::DeletionLimit));
    assert_eq!(problem.limit, Some(20));
    assert!(r.header("retry-after").is_none());
    assert_eq!(fam.list_all(&s, mum).await, vec![ids[20].clone()]);
    // Deleting an already pending envelope again is the same pending deletion, not a 21st.
    let again = s
        .call(&dad, "DELETE", &fam.envelope_path(&ids[0]), b"")
        .await;
    assert_eq!(again.status, 202, "{}", again.text());

    // Erasing at once needs two guardians (or one and the recovery key): dad alone, or dad
    // and the toy, erase nothing.
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    for signers in [vec![&dad], vec![&dad, &fam.toy]] {
        let r = s
            .call(
                &dad,
                "POST",
                &fam.erasures_path(),
                &fam.erasure_by(&all, &signers),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.text());
    }
    assert_eq!(scan(&env, &envelopes).await, (21, 21, vec![true; 21]));
    // Mum restores every one of dad's twenty.
    for id in &ids[..20] {
        assert_eq!(
            s.call(mum, "POST", &fam.restore_path(id), b"").await.status,
            204
        );
    }
    assert_eq!(fam.list_all(&s, mum).await, ids);
}

/// The purge erases a soft-deleted envelope once its period is over, not before, with a clock
/// the test sets; storage is scanned afterwards (rows, blobs, the SQLite files). The period is
/// the operator's (here 2 days).
#[tokio::test]
async fn t36_purge_erases_after_the_period() {
    let env = Env::new().await;
    let config = env
        .config
        .clone()
        .with_soft_deletion(Duration::from_secs(2 * DAY), 20);
    let s = env.start_with(config).await;
    let fam = Family::new();
    fam.create(&s).await;
    let gone = fam.seal(&fam.toy, &recording("to be erased"));
    let kept = fam.seal(&fam.toy, &recording("kept"));
    let restored = fam.seal(&fam.toy, &recording("restored in time"));
    let gone_id = fam.upload(&s, &fam.toy, &gone).await;
    let kept_id = fam.upload(&s, &fam.toy, &kept).await;
    let restored_id = fam.upload(&s, &fam.toy, &restored).await;
    let mut erase_at = 0;
    for id in [&gone_id, &restored_id] {
        let r = s
            .call(&fam.guardian, "DELETE", &fam.envelope_path(id), b"")
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let p: PendingDeletion = r.json();
        assert_eq!(p.erase_at, p.deleted_at + 2 * DAY);
        erase_at = erase_at.max(p.erase_at);
    }
    let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    // A day before the end of the period: nothing is erased.
    assert_eq!(
        s.server
            .purge_soft_deletions(at(erase_at - DAY))
            .await
            .unwrap(),
        0
    );
    let all = [gone.clone(), kept.clone(), restored.clone()];
    assert_eq!(scan(&env, &all).await, (3, 3, vec![true; 3]));
    // Restored in time: the purge leaves it alone.
    assert_eq!(
        s.call(&fam.guardian, "POST", &fam.restore_path(&restored_id), b"")
            .await
            .status,
        204
    );
    // After the period: the one still pending is erased, blob and row; the others stay whole.
    assert_eq!(
        s.server
            .purge_soft_deletions(at(erase_at + 1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(scan(&env, &all).await, (2, 2, vec![false, true, true]));
    let mut dump = env.dump_db().await;
    dump.extend(env.raw_db_files());
    dump.extend(env.dump_blobs().await);
    for (where_, bytes) in &dump {
        assert!(
            !contains(bytes, gone_id.as_bytes()),
            "erased envelope's id in {where_}"
        );
        assert!(
            !contains(bytes, &gone[200..264]),
            "erased ciphertext in {where_}"
        );
    }
    assert_eq!(
        fam.list_all(&s, &fam.guardian).await,
        vec![kept_id, restored_id]
    );
    assert!(pending(&s, &fam, &fam.guardian).await.is_empty());
    // Too late to restore: it is gone.
    assert_eq!(
        s.call(&fam.guardian, "POST", &fam.restore_path(&gone_id), b"")
            .await
            .status,
        404
    );
    // A second purge finds nothing.
    assert_eq!(
        s.server
            .purge_soft_deletions(at(erase_at + 1))
            .await
            .unwrap(),
        0
    );
}

/// Another guardian restores what one guardian deleted; a member that is no guardian can
/// neither delete others' envelopes nor restore.
#[tokio::test]
async fn t36_restore_by_another_guardian() {
    let env = Env::new().await;
    let s = env.start().await;
    let (fam, dad) = family_with_dad();
    fam.create(&s).await;
    let e = fam.seal(&fam.guardian, &recording("mum's bedtime story"));
    let id = fam.upload(&s, &fam.guardian, &e).await;
    // The toy may not delete mum's envelope.
    let r = s
        .call(&fam.toy, "DELETE", &fam.envelope_path(&id), b"")
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let problem: Problem = r.json();
    assert_eq!(problem.kind(), Some(ProblemKind::Forbidden));
    // Dad deletes it softly; the toy cannot restore it; mum can.
    assert_eq!(
        s.call(&dad, "DELETE", &fam.envelope_path(&id), b"")
            .await
            .status,
        202
    );
    assert_eq!(
        s.call(&fam.toy, "POST", &fam.restore_path(&id), b"")
            .await
            .status,
        403
    );
    assert!(fam.list_all(&s, &fam.toy).await.is_empty());
    assert_eq!(
        s.call(&fam.guardian, "POST", &fam.restore_path(&id), b"")
            .await
            .status,
        204
    );
    assert_eq!(fam.list_all(&s, &fam.toy).await, vec![id.clone()]);
    assert_eq!(scan(&env, &[e]).await, (1, 1, vec![true]));
}

/// A sender's own envelope is erased at once (blob and row), soft-deleted or not.
#[tokio::test]
async fn t36_sender_erases_its_own_at_once() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let by_toy = fam.seal(&fam.toy, &recording("oops"));
    let by_mum = fam.seal(&fam.guardian, &recording("mum's reply"));
    let toy_id = fam.upload(&s, &fam.toy, &by_toy).await;
    let mum_id = fam.upload(&s, &fam.guardian, &by_mum).await;
    // The guardian's own: 204, gone from storage.
    assert_eq!(
        s.call(&fam.guardian, "DELETE", &fam.envelope_path(&mum_id), b"")
            .await
            .status,
        204
    );
    assert_eq!(
        scan(&env, &[by_toy.clone(), by_mum.clone()]).await,
        (1, 1, vec![true, false])
    );
    // The toy's, soft-deleted by the guardian first, then retracted by the toy: erased.
    assert_eq!(
        s.call(&fam.guardian, "DELETE", &fam.envelope_path(&toy_id), b"")
            .await
            .status,
        202
    );
    assert_eq!(
        s.call(&fam.toy, "DELETE", &fam.envelope_path(&toy_id), b"")
            .await
            .status,
        204
    );
    assert_eq!(
        scan(&env, &[by_toy, by_mum]).await,
        (0, 0, vec![false, false])
    );
    assert!(pending(&s, &fam, &fam.guardian).await.is_empty());
}

/// The erasure statement (roster.md §5.1): signed by mum and dad it erases at once, pending
/// soft deletions included and beyond the daily limit; signed by mum and the toy it is
/// refused; one decided under an older roster version is a conflict.
#[tokio::test]
async fn t36_erasure_statement_needs_two_guardians() {
    let env = Env::new().await;
    let config = env
        .config
        .clone()
        .with_soft_deletion(Duration::from_secs(30 * DAY), 1);
    let s = env.start_with(config).await;
    let (mut fam, dad) = family_with_dad();
    fam.create(&s).await;
    let envelopes: Vec<Vec<u8>> = (0..3)
        .map(|i| fam.seal(&fam.toy, &recording(&format!("erase {i}"))))
        .collect();
    let mut ids = Vec::new();
    for e in &envelopes {
        ids.push(fam.upload(&s, &fam.toy, e).await);
    }
    // One soft deletion allowed a day here: the second is refused.
    assert_eq!(
        s.call(&dad, "DELETE", &fam.envelope_path(&ids[0]), b"")
            .await
            .status,
        202
    );
    assert_eq!(
        s.call(&dad, "DELETE", &fam.envelope_path(&ids[1]), b"")
            .await
            .status,
        429
    );
    let names: Vec<&str> = ids[..2].iter().map(String::as_str).collect();
    // Mum and the toy: refused, nothing erased.
    let r = s
        .call(
            &fam.guardian,
            "POST",
            &fam.erasures_path(),
            &fam.erasure(&names),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("two guardians"), "{}", r.text());
    assert_eq!(scan(&env, &envelopes).await, (3, 3, vec![true; 3]));
    // A statement that is no erasure: 400.
    let r = s
        .call(&dad, "POST", &fam.erasures_path(), &fam.deletion())
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Mum and dad: the pending one and the one past the limit are erased at once.
    let both = fam.erasure_by(&names, &[&fam.guardian, &dad]);
    let r = s.call(&dad, "POST", &fam.erasures_path(), &both).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        scan(&env, &envelopes).await,
        (1, 1, vec![false, false, true])
    );
    assert!(pending(&s, &fam, &dad).await.is_empty());
    // The same statement again changes nothing (idempotent).
    let r = s.call(&dad, "POST", &fam.erasures_path(), &both).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Decided under version 1, presented after version 2: 409, nothing erased.
    let stale = fam.erasure_by(&[ids[2].as_str()], &[&fam.guardian, &dad]);
    let mut members = fam.core();
    members.push(dad.public().clone());
    let v2 = fam.next_roster(members, &[]);
    assert_eq!(
        s.call(&fam.guardian, "POST", &fam.roster_path(), &v2)
            .await
            .status,
        200
    );
    let r = s.call(&dad, "POST", &fam.erasures_path(), &stale).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(
        scan(&env, &envelopes).await,
        (1, 1, vec![false, false, true])
    );
}
