//! Authentication and authorization threats (THREATS.md T01–T08), plus the basic flow, against
//! a real server on loopback. Runs on PostgreSQL / S3 when their env vars are set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::http::{self, RawRequest};
use common::*;
use std::collections::HashSet;
use toyseal_cloud::api::{EnvelopePage, Health, Problem, ProblemKind, RosterChain};
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal_server::{Access, Endpoint};

#[tokio::test]
async fn upload_list_download_delete_roundtrip() {
    let env = Env::new().await;
    let s = env.start().await;
    let r = s.unsigned("GET", "/v1/health", b"").await;
    assert_eq!(r.json::<Health>().status, "ok");
    let fam = Family::new();
    fam.create(&s).await;
    let e1 = fam.seal(&fam.toy, &recording("hello"));
    let id = fam.upload(&s, &fam.toy, &e1).await;
    assert_eq!(id, toyseal_cloud::api::EnvelopeId::of(&e1).to_string());
    let page: EnvelopePage = s
        .call(&fam.guardian, "GET", &fam.envelopes_path(), b"")
        .await
        .json();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].sender, fam.toy.device_id().to_string());
    assert_eq!(page.items[0].size, e1.len() as u64);
    let got = s
        .call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, e1);
    // The guardian can open what the server returned.
    let (content, _) = fam
        .roster
        .open(&fam.guardian, &got.body, Default::default())
        .unwrap();
    assert_eq!(content, recording("hello"));
    let chain: RosterChain = s
        .call(&fam.toy, "GET", &fam.roster_path(), b"")
        .await
        .json();
    assert_eq!(STANDARD.decode(&chain.versions[0]).unwrap(), fam.v1());
    // The guardian's deletion of the toy's envelope is soft (T36): hidden, pending.
    let d = s
        .call(&fam.guardian, "DELETE", &fam.envelope_path(&id), b"")
        .await;
    assert_eq!(d.status, 202, "{}", d.text());
    assert!(fam.list_all(&s, &fam.toy).await.is_empty());
    // Its sender's deletion erases it at once.
    let d = s
        .call(&fam.toy, "DELETE", &fam.envelope_path(&id), b"")
        .await;
    assert_eq!(d.status, 204, "{}", d.text());
    let d = s
        .call(&fam.guardian, "DELETE", &fam.path(), &fam.deletion())
        .await;
    assert_eq!(d.status, 204, "{}", d.text());
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let r = s.unsigned("GET", "/openapi.json", b"").await;
    assert_eq!(r.status, 200);
    let doc: serde_json::Value = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        for m in ["get", "post", "delete", "put", "patch"] {
            if item.get(m).is_some() {
                documented += 1;
                assert!(
                    Endpoint::ALL.iter().any(
                        |r| r.template() == path && r.method().as_str().eq_ignore_ascii_case(m)
                    ),
                    "documented but not served: {m} {path}"
                );
            }
        }
    }
    for route in Endpoint::ALL {
        let op = &paths[route.template()][route.method().as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "not documented: {} {}",
            route.method(),
            route.template()
        );
        // The one definition's name and access rule are the document's.
        assert_eq!(op["operationId"], route.operation_id(), "{route:?}");
        let secured = op
            .get("security")
            .and_then(|s| s.as_array())
            .is_some_and(|s| !s.is_empty());
        assert_eq!(
            secured,
            route.access() != Access::Public,
            "{route:?} security"
        );
    }
    assert_eq!(documented, Endpoint::ALL.len());
    // The documented bodies and limits are the server's.
    let e401 =
        &doc["components"]["responses"]["E401"]["content"]["application/problem+json"]["example"];
    assert_eq!(e401.to_string(), UNAUTHENTICATED);
    let e404 =
        &doc["components"]["responses"]["E404"]["content"]["application/problem+json"]["example"];
    assert_eq!(e404.to_string(), NOT_FOUND);
    let scheme = &doc["components"]["securitySchemes"]["toysealSignature"];
    assert!(scheme["x-toyseal-rfc9421"]["covered-components"].is_array());
    let list = &paths["/v1/families/{family}/envelopes"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["minimum"], 1);
    // Any u64 is taken (above 100 capped, not refused); beyond that is no number the API reads.
    assert_eq!(
        limit["schema"]["maximum"],
        u64::MAX,
        "larger is capped, not refused"
    );
    for route in Endpoint::ALL
        .iter()
        .filter(|r| r.access() != Access::Public)
    {
        let op = &paths[route.template()][route.method().as_str().to_ascii_lowercase()];
        for code in ["400", "401", "404", "408", "413", "429", "503"] {
            assert!(
                op["responses"].get(code).is_some(),
                "{code} on {}",
                route.template()
            );
        }
    }
}

/// One concrete request for every route of the table, on `fam`'s objects.
fn route_request(
    id: Endpoint,
    fam: &Family,
    envelope: &str,
    body_roster: &[u8],
) -> (String, String, Vec<u8>) {
    let (m, p, b): (&str, String, Vec<u8>) = match id {
        Endpoint::Health => ("GET", "/v1/health".into(), vec![]),
        Endpoint::OpenApi => ("GET", "/openapi.json".into(), vec![]),
        Endpoint::CreateFamily => ("POST", fam.path(), body_roster.to_vec()),
        Endpoint::DeleteFamily => ("DELETE", fam.path(), fam.deletion()),
        Endpoint::GetRoster => ("GET", fam.roster_path(), vec![]),
        Endpoint::UpdateRoster => ("POST", fam.roster_path(), body_roster.to_vec()),
        Endpoint::UploadEnvelope => ("POST", fam.envelopes_path(), b"not an envelope".to_vec()),
        Endpoint::ListEnvelopes => ("GET", format!("{}?limit=10", fam.envelopes_path()), vec![]),
        Endpoint::GetEnvelope => ("GET", fam.envelope_path(envelope), vec![]),
        Endpoint::DeleteEnvelope => ("DELETE", fam.envelope_path(envelope), vec![]),
        Endpoint::ListDeletions => ("GET", format!("{}?limit=10", fam.deletions_path()), vec![]),
        Endpoint::RestoreEnvelope => ("POST", fam.restore_path(envelope), vec![]),
        Endpoint::EraseEnvelopes => ("POST", fam.erasures_path(), fam.erasure(&[envelope])),
        other => panic!("route {other:?} has no test request: add it"),
    };
    (m.to_owned(), p, b)
}

#[tokio::test]
async fn t01_no_signature_any_route() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let id = fam.upload(&s, &fam.toy, &fam.seal(&fam.toy, b"x")).await;
    let missing = Family::new();
    for route in Endpoint::ALL {
        for (f, e) in [(&fam, id.clone()), (&missing, random_hex(32))] {
            let (m, p, b) = route_request(route, f, &e, &f.v1());
            let r = s.unsigned(&m, &p, &b).await;
            if route.access() == Access::Public {
                assert_eq!(r.status, 200, "{m} {p}");
            } else {
                assert_eq!(r.status, 401, "{m} {p}");
                assert_eq!(r.problem_text(), UNAUTHENTICATED, "{m} {p}");
            }
        }
    }
    // Garbage signature headers are the same generic 401.
    let mut req = s.signed(&fam.toy, "GET", &fam.envelopes_path(), b"");
    req.headers[2].1 = b"toyseal=:AAAA:".to_vec();
    let r = http::send(s.addr, &req).await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    // Nothing was changed by any of it.
    assert_eq!(fam.list_all(&s, &fam.guardian).await, vec![id]);
}

#[tokio::test]
async fn t02_unknown_or_removed_device() {
    let env = Env::new().await;
    let s = env.start().await;
    let dad = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut a = Family::new_with(&[&dad]);
    let mut b = Family::new_with(&[&dad]);
    a.create(&s).await;
    b.create(&s).await;
    // A key in no roster: 401.
    let stranger = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let r = s.call(&stranger, "GET", &a.envelopes_path(), b"").await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    // Removed from B, still in A: B's routes answer 401 `removed` with B's version (its
    // signature verified under the key B's roster removed); A's work.
    let v2 = b.next_roster(b.core(), &[]);
    let r = s.call(&b.guardian, "POST", &b.roster_path(), &v2).await;
    assert_eq!(r.status, 200, "{}", r.problem_text());
    for p in [b.envelopes_path(), b.roster_path()] {
        let r = s.call(&dad, "GET", &p, b"").await;
        assert_eq!(r.status, 401, "{p}");
        let problem: Problem = r.json();
        assert_eq!(problem.kind(), Some(ProblemKind::Removed), "{p}");
        assert_eq!(problem.removed_at_version, Some(2), "{p}");
    }
    assert_eq!(
        s.call(&dad, "GET", &a.envelopes_path(), b"").await.status,
        200
    );
    // Removed from its last family: unknown to the registry, yet told it was removed (before
    // its body is read), on every family's routes.
    let v2 = a.next_roster(a.core(), &[]);
    assert_eq!(
        s.call(&a.guardian, "POST", &a.roster_path(), &v2)
            .await
            .status,
        200
    );
    for p in [a.envelopes_path(), b.envelopes_path(), a.roster_path()] {
        let r = s.call(&dad, "GET", &p, b"").await;
        let problem: Problem = r.json();
        assert_eq!(
            (r.status, problem.kind(), problem.removed_at_version),
            (401, Some(ProblemKind::Removed), Some(2)),
            "{p}"
        );
    }
    // Nobody else learns it: a request claiming dad's key id but signed by another key, and a
    // replay of dad's own request, get the generic 401.
    let req = s.signed(&dad, "GET", &a.envelopes_path(), b"");
    assert_eq!(http::send(s.addr, &req).await.status, 401);
    let r = http::send(s.addr, &req).await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    let impostor = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut forged = s.signed(&impostor, "GET", &a.envelopes_path(), b"");
    let dad_id = dad.public().device_id().to_string();
    let impostor_id = impostor.public().device_id().to_string();
    for (_, v) in forged.headers.iter_mut() {
        let text = String::from_utf8(v.clone()).unwrap();
        *v = text.replace(&impostor_id, &dad_id).into_bytes();
    }
    let r = http::send(s.addr, &forged).await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    // Its envelope uploads are refused too.
    let env_bytes = a.seal(&a.toy, b"for the record");
    let r = s.call(&dad, "POST", &a.envelopes_path(), &env_bytes).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn t03_replay_same_and_second_instance() {
    let env = Env::new().await;
    // Two instances behind one name, on one database, with separate process state.
    let config = env
        .config
        .clone()
        .with_public_names(vec!["api.toyseal.test".into()]);
    let s1 = env.start_with(config.clone()).await;
    let s2 = env.start_with(config).await;
    let fam = Family::new();
    fam.create(&s1).await;
    let envelope = fam.seal(&fam.toy, b"once");
    // A captured upload: first delivery works, replays fail on both instances.
    let req = s1.signed(&fam.toy, "POST", &fam.envelopes_path(), &envelope);
    assert_eq!(http::send(s1.addr, &req).await.status, 201);
    let r = http::send(s1.addr, &req).await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    let r = http::send(s2.addr, &req).await;
    assert_eq!(
        (r.status, r.problem_text().as_str()),
        (401, UNAUTHENTICATED)
    );
    // First seen on the second instance, replayed to the first.
    let req = s1.signed(&fam.guardian, "GET", &fam.envelopes_path(), b"");
    assert_eq!(http::send(s2.addr, &req).await.status, 200);
    assert_eq!(http::send(s1.addr, &req).await.status, 401);
    // A replayed delete cannot delete again (nor a re-created object).
    let id = toyseal_cloud::api::EnvelopeId::of(&envelope).to_string();
    let del = s1.signed(&fam.toy, "DELETE", &fam.envelope_path(&id), b"");
    assert_eq!(http::send(s1.addr, &del).await.status, 204);
    fam.upload(&s2, &fam.toy, &envelope).await;
    assert_eq!(http::send(s2.addr, &del).await.status, 401);
    assert_eq!(fam.list_all(&s1, &fam.guardian).await, vec![id]);
    // Purging keeps unexpired nonces: the replay is still refused afterwards.
    s1.server.purge_expired_nonces().await.unwrap();
    assert_eq!(http::send(s2.addr, &del).await.status, 401);
}

/// Builds signature headers by hand (for parameters `sign_request` refuses to produce).
#[allow(clippy::too_many_arguments)]
fn forge(
    who: &DeviceIdentity,
    keyid: &str,
    host: &str,
    method: &str,
    path: &str,
    body: &[u8],
    created: u64,
    expires: u64,
    extra: &str,
) -> RawRequest {
    let digest = toyseal_cloud::content_digest(body);
    let mut nonce = [0u8; 16];
    rand_core::Rng::fill_bytes(&mut OsRng, &mut nonce);
    let params = format!(
        "(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created={created};expires={expires};nonce=\"{}\";keyid=\"{keyid}\";tag=\"toyseal-v1\"{extra}",
        URL_SAFE_NO_PAD.encode(nonce)
    );
    let base = format!(
        "\"@method\": {method}\n\"@authority\": {host}\n\"@path\": {path}\n\"@query\": ?\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
    );
    let sig = who.sign(base.as_bytes());
    RawRequest {
        method: method.into(),
        target: path.into(),
        host: host.into(),
        headers: vec![
            ("Content-Digest".into(), digest.into_bytes()),
            (
                "Signature-Input".into(),
                format!("toyseal={params}").into_bytes(),
            ),
            (
                "Signature".into(),
                format!("toyseal=:{}:", STANDARD.encode(sig.as_bytes())).into_bytes(),
            ),
        ],
        body: body.to_vec(),
    }
}

#[tokio::test]
async fn t04_stale_or_long_signatures() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let p = fam.envelopes_path();
    let id = fam.toy.device_id().to_string();
    let t = now();
    // The forge helper itself is right: a fresh one passes.
    let ok = forge(&fam.toy, &id, &s.host(), "GET", &p, b"", t, t + 60, "");
    assert_eq!(http::send(s.addr, &ok).await.status, 200);
    for (what, req) in [
        (
            "created 10 min ago",
            signed_request(&fam.toy, &s.host(), "GET", &p, b"", t - 600, 300),
        ),
        (
            "expired",
            signed_request(&fam.toy, &s.host(), "GET", &p, b"", t - 100, 30),
        ),
        (
            "validity 10 min",
            forge(&fam.toy, &id, &s.host(), "GET", &p, b"", t, t + 600, ""),
        ),
        (
            "created in the future",
            forge(
                &fam.toy,
                &id,
                &s.host(),
                "GET",
                &p,
                b"",
                t + 600,
                t + 700,
                "",
            ),
        ),
    ] {
        let r = http::send(s.addr, &req).await;
        assert_eq!(
            (r.status, r.problem_text().as_str()),
            (401, UNAUTHENTICATED),
            "{what}"
        );
    }
}

#[tokio::test]
async fn t05_changed_after_signing() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    let other = Family::new();
    fam.create(&s).await;
    other.create(&s).await;
    let envelope = fam.seal(&fam.toy, b"original");
    let base = s.signed(&fam.toy, "POST", &fam.envelopes_path(), &envelope);
    let mut changed = Vec::new();
    let mut r = base.clone();
    r.method = "PUT".into();
    changed.push(("method", r));
    let mut r = base.clone();
    r.target = other.envelopes_path();
    changed.push(("path", r));
    let mut r = base.clone();
    r.target = format!("{}?limit=1", fam.envelopes_path());
    changed.push(("query", r));
    let mut r = base.clone();
    r.host = "evil.example".into();
    changed.push(("authority", r));
    let mut r = base.clone();
    r.body = fam.seal(&fam.toy, b"swapped");
    changed.push(("body", r));
    let mut r = base.clone();
    r.headers[0].1 = toyseal_cloud::content_digest(b"another body").into_bytes();
    changed.push(("digest header", r));
    for (what, req) in changed {
        let resp = http::send(s.addr, &req).await;
        assert!(
            resp.status == 401 || resp.status == 405,
            "{what}: {} {}",
            resp.status,
            resp.text()
        );
    }
    assert!(fam.list_all(&s, &fam.guardian).await.is_empty());
    // The unchanged request still works (nothing above burned its nonce).
    assert_eq!(http::send(s.addr, &base).await.status, 201);
}

#[tokio::test]
async fn t06_alg_and_other_keyid() {
    let env = Env::new().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let p = fam.envelopes_path();
    let t = now();
    let toy_id = fam.toy.device_id().to_string();
    let guardian_id = fam.guardian.device_id().to_string();
    for (what, req) in [
        (
            "alg parameter",
            forge(
                &fam.toy,
                &toy_id,
                &s.host(),
                "GET",
                &p,
                b"",
                t,
                t + 60,
                ";alg=\"ed25519\"",
            ),
        ),
        (
            "alg hmac",
            forge(
                &fam.toy,
                &toy_id,
                &s.host(),
                "GET",
                &p,
                b"",
                t,
                t + 60,
                ";alg=\"hmac-sha256\"",
            ),
        ),
        (
            "keyid of another device",
            forge(
                &fam.toy,
                &guardian_id,
                &s.host(),
                "DELETE",
                &fam.path(),
                b"",
                t,
                t + 60,
                "",
            ),
        ),
    ] {
        let r = http::send(s.addr, &req).await;
        assert_eq!(
            (r.status, r.problem_text().as_str()),
            (401, UNAUTHENTICATED),
            "{what}"
        );
    }
    // The family is still there.
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.roster_path(), b"")
            .await
            .status,
        200
    );
}

/// T07: every route of the table, called by family A's devices on family B's objects (real and
/// guessed ids), answers exactly what a genuinely missing resource answers.
#[tokio::test]
async fn t07_cross_family_matrix() {
    let env = Env::new().await;
    let s = env.start().await;
    let mut a = Family::new();
    let b = Family::new();
    a.create(&s).await;
    b.create(&s).await;
    let a_env = a.seal(&a.toy, b"family A");
    let b_env = b.seal(&b.toy, b"family B secret");
    let a_id = a.upload(&s, &a.toy, &a_env).await;
    let b_id = b.upload(&s, &b.toy, &b_env).await;
    let ghost = Family::new(); // never created
    let guessed = random_hex(32);
    let a_v2 = a.next_roster(a.core(), &[]);
    // An envelope sealed by A's toy but naming family B in its header.
    let forged_b = {
        let opts = toyseal_envelope::SealOptions::default().with_family(b.id, 1);
        toyseal_envelope::seal(
            &a.toy,
            &[a.guardian.public().clone()],
            &opts,
            b"into B",
            &mut OsRng,
        )
        .unwrap()
    };

    // (description, attacker, request on B's object, the same request on a missing object)
    type Req = (String, String, Vec<u8>);
    let mut covered = HashSet::new();
    let mut cases: Vec<(String, &DeviceIdentity, Req, Req)> = Vec::new();
    for route in Endpoint::ALL {
        let n = cases.len();
        for who in [&a.guardian, &a.toy] {
            let name = |s: &str| {
                format!(
                    "{} {} by A's {}: {s}",
                    route.method(),
                    route.template(),
                    who.role()
                )
            };
            match route {
                Endpoint::Health | Endpoint::OpenApi => {
                    cases.push((
                        name("public"),
                        who,
                        route_request(route, &b, "", &[]),
                        route_request(route, &ghost, "", &[]),
                    ));
                }
                Endpoint::CreateFamily => {
                    // A's roster posted at B's path, and at a missing family's path.
                    cases.push((
                        name("own roster at B"),
                        who,
                        ("POST".into(), b.path(), a.v1()),
                        ("POST".into(), ghost.path(), a.v1()),
                    ));
                    // B's own roster replayed by A's device (A's key is not in it).
                    cases.push((
                        name("B's roster"),
                        who,
                        ("POST".into(), b.path(), b.v1()),
                        ("POST".into(), ghost.path(), ghost.v1()),
                    ));
                }
                Endpoint::DeleteFamily
                | Endpoint::GetRoster
                | Endpoint::ListEnvelopes
                | Endpoint::ListDeletions => {
                    cases.push((
                        name("B"),
                        who,
                        route_request(route, &b, "", &[]),
                        route_request(route, &ghost, "", &[]),
                    ));
                }
                Endpoint::UpdateRoster => {
                    cases.push((
                        name("A's v2 at B"),
                        who,
                        route_request(route, &b, "", &a_v2),
                        route_request(route, &ghost, "", &a_v2),
                    ));
                    cases.push((
                        name("B's v1 at B"),
                        who,
                        route_request(route, &b, "", &b.v1()),
                        route_request(route, &ghost, "", &b.v1()),
                    ));
                }
                Endpoint::UploadEnvelope => {
                    cases.push((
                        name("A's envelope at B"),
                        who,
                        ("POST".into(), b.envelopes_path(), a_env.clone()),
                        ("POST".into(), ghost.envelopes_path(), a_env.clone()),
                    ));
                    cases.push((
                        name("envelope naming B"),
                        who,
                        ("POST".into(), b.envelopes_path(), forged_b.clone()),
                        ("POST".into(), ghost.envelopes_path(), forged_b.clone()),
                    ));
                }
                Endpoint::EraseEnvelopes => {
                    // B's real id, and a guessed one, in a statement for B.
                    cases.push((
                        name("erasure of B's id at B"),
                        who,
                        route_request(route, &b, &b_id, &[]),
                        route_request(route, &ghost, &b_id, &[]),
                    ));
                    cases.push((
                        name("erasure of a guessed id at B"),
                        who,
                        route_request(route, &b, &guessed, &[]),
                        route_request(route, &ghost, &guessed, &[]),
                    ));
                }
                Endpoint::RestoreEnvelope => {
                    cases.push((
                        name("B's id at B"),
                        who,
                        route_request(route, &b, &b_id, &[]),
                        route_request(route, &ghost, &b_id, &[]),
                    ));
                    cases.push((
                        name("guessed id at B"),
                        who,
                        route_request(route, &b, &guessed, &[]),
                        route_request(route, &ghost, &guessed, &[]),
                    ));
                }
                Endpoint::GetEnvelope | Endpoint::DeleteEnvelope => {
                    let m = route.method().as_str().to_owned();
                    // B's real id under B's path; B's real id under A's own path; guessed ids.
                    cases.push((
                        name("B's id at B"),
                        who,
                        (m.clone(), b.envelope_path(&b_id), vec![]),
                        (m.clone(), ghost.envelope_path(&b_id), vec![]),
                    ));
                    cases.push((
                        name("B's id at A"),
                        who,
                        (m.clone(), a.envelope_path(&b_id), vec![]),
                        (m.clone(), a.envelope_path(&guessed), vec![]),
                    ));
                    cases.push((
                        name("guessed id at B"),
                        who,
                        (m.clone(), b.envelope_path(&guessed), vec![]),
                        (m.clone(), ghost.envelope_path(&guessed), vec![]),
                    ));
                }
                _ => {}
            }
        }
        if cases.len() > n {
            covered.insert(route);
        }
    }
    for route in Endpoint::ALL {
        assert!(
            covered.contains(&route),
            "route {} {} has no cross-family matrix case: add one to t07",
            route.method(),
            route.template()
        );
    }

    let mut checked = 0;
    for (name, who, (m1, p1, b1), (m2, p2, b2)) in &cases {
        let on_b = s.call(who, m1, p1, b1).await;
        let missing = s.call(who, m2, p2, b2).await;
        assert_eq!(
            (
                on_b.status,
                on_b.problem_text(),
                on_b.header("content-type")
            ),
            (
                missing.status,
                missing.problem_text(),
                missing.header("content-type")
            ),
            "{name}: B's object must look exactly like a missing one"
        );
        let route = Endpoint::ALL
            .iter()
            .find(|r| {
                r.method().as_str() == m1.as_str()
                    && p1
                        .split('?')
                        .next()
                        .is_some_and(|p| path_matches(r.template(), p))
            })
            .unwrap();
        match route.access() {
            Access::Public => assert_eq!(on_b.status, 200, "{name}"),
            // A roster for another family is refused the same way whichever family the path
            // names; a roster A's device is not in is a 401.
            Access::FoundingGuardian => assert!(
                matches!(on_b.status, 400 | 401 | 403),
                "{name}: {}",
                on_b.status
            ),
            // In its own family a toy meets the role check (403) before the object lookup:
            // the same answer for B's id and a guessed one, so nothing about B leaks.
            Access::Guardian if who.role() == Role::Toy && p1.starts_with(&a.path()) => {
                assert_eq!(on_b.status, 403, "{name}")
            }
            _ => assert_eq!(
                (on_b.status, on_b.problem_text().as_str()),
                (404, NOT_FOUND),
                "{name}"
            ),
        }
        checked += 1;
    }
    assert!(
        checked >= 2 * Endpoint::ALL.len(),
        "ran {checked} matrix cases"
    );
    // Nothing of B changed or leaked: B's envelope and roster are intact.
    assert_eq!(b.list_all(&s, &b.guardian).await, vec![b_id.clone()]);
    let got = s
        .call(&b.guardian, "GET", &b.envelope_path(&b_id), b"")
        .await;
    assert_eq!(got.body, b_env);
    let chain: RosterChain = s
        .call(&b.guardian, "GET", &b.roster_path(), b"")
        .await
        .json();
    assert_eq!(chain.versions.len(), 1);
    assert_eq!(a.list_all(&s, &a.guardian).await, vec![a_id]);
    // The ghost family was never created by any of it.
    let r = s
        .call(&ghost.guardian, "GET", &ghost.roster_path(), b"")
        .await;
    assert_eq!(r.status, 401);
    let _ = FamilyId::generate(&mut OsRng);
}

fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[tokio::test]
async fn t08_toy_cannot_delete_or_update_roster() {
    let env = Env::new().await;
    let s = env.start().await;
    let mut fam = Family::new();
    fam.create(&s).await;
    // The guardian's envelope: the toy may not delete it (it may retract only its own, T36).
    let id = fam
        .upload(&s, &fam.guardian, &fam.seal(&fam.guardian, b"keep me"))
        .await;
    let newcomer = DeviceIdentity::generate(Role::Guardian, &mut OsRng);
    let mut members = fam.core();
    members.push(newcomer.public().clone());
    let v2 = fam.next_roster(members, &[&newcomer]);
    for (m, p, b) in [
        ("DELETE", fam.envelope_path(&id), vec![]),
        ("DELETE", fam.path(), fam.deletion()),
        ("POST", fam.roster_path(), v2.clone()),
    ] {
        let r = s.call(&fam.toy, m, &p, &b).await;
        assert_eq!(r.status, 403, "{m} {p}: {}", r.text());
        assert!(r.text().contains("guardian"), "{}", r.text());
    }
    // Nothing changed; the guardian can do each of them.
    assert_eq!(fam.list_all(&s, &fam.toy).await, vec![id.clone()]);
    let chain: RosterChain = s
        .call(&fam.toy, "GET", &fam.roster_path(), b"")
        .await
        .json();
    assert_eq!(chain.versions.len(), 1);
    assert_eq!(
        s.call(&fam.guardian, "POST", &fam.roster_path(), &v2)
            .await
            .status,
        200
    );
    // A replayed old version or a re-upload of v2 is a conflict, not a change.
    assert_eq!(
        s.call(&fam.guardian, "POST", &fam.roster_path(), &v2)
            .await
            .status,
        409
    );
    assert_eq!(
        s.call(&newcomer, "GET", &fam.roster_path(), b"")
            .await
            .status,
        200
    );
    assert_eq!(
        s.call(&fam.guardian, "DELETE", &fam.envelope_path(&id), b"")
            .await
            .status,
        204
    );
    // The toy retracts its own envelope at once.
    let own = fam.upload(&s, &fam.toy, &fam.seal(&fam.toy, b"mine")).await;
    assert_eq!(
        s.call(&fam.toy, "DELETE", &fam.envelope_path(&own), b"")
            .await
            .status,
        204
    );
    assert!(fam.list_all(&s, &fam.guardian).await.is_empty());
}

/// Path ids are typed and have one spelling (lower-case hex). A bad id is looked at only after
/// the request authenticated: unsigned it is the generic 401 like any other request; signed by
/// a member it is a 400 naming the rule — never a 500 and never another family's object.
#[tokio::test]
async fn path_ids_are_typed_and_checked_after_authentication() {
    let env = Env::hermetic().await;
    let s = env.start().await;
    let fam = Family::new();
    fam.create(&s).await;
    let id = fam.upload(&s, &fam.toy, &fam.seal(&fam.toy, b"x")).await;
    let upper_family = fam
        .envelopes_path()
        .replace(&fam.id.to_string(), &fam.id.to_string().to_uppercase());
    let bad = [
        upper_family,
        fam.envelope_path(&id.to_uppercase()),
        fam.envelope_path(&id[..63]),
        fam.envelope_path(&format!("{}g", &id[..63])),
        format!("{}0/envelopes", fam.path()),
    ];
    for path in &bad {
        let r = s.unsigned("GET", path, b"").await;
        assert_eq!(
            (r.status, r.problem_text()),
            (401, UNAUTHENTICATED.to_owned()),
            "unsigned {path}"
        );
        let r = s.call(&fam.guardian, "GET", path, b"").await;
        assert_eq!(r.status, 400, "signed {path}: {}", r.text());
        assert!(r.text().contains("lower-case hex"), "{path}: {}", r.text());
    }
    // The canonical spelling of the same objects works.
    assert_eq!(
        s.call(&fam.guardian, "GET", &fam.envelope_path(&id), b"")
            .await
            .status,
        200
    );
}
