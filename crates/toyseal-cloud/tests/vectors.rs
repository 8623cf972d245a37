//! Signed-request vectors (docs/spec/vectors/signed-requests.json), checked both ways:
//! regenerated from fixed seeds and compared byte for byte, then every case verified from the
//! file alone (identities, request, headers, `now`) with the expected outcome.
//! `TOYSEAL_REGENERATE_VECTORS=1` rewrites the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toyseal_cloud::api::{self, EnvelopeId};
use toyseal_cloud::{
    Error, ReceivedRequest, RequestTarget, SignatureHeaders, UnverifiedRequest, content_digest,
    sign_request,
};
use toyseal_core::{DeviceId, DeviceIdentity, FamilyId, PublicIdentity, Role};

const NOW: u64 = 1_795_000_000;
const AUTHORITY: &str = "api.toyseal.test";
/// How many cases the file holds; a changed count is a deliberate edit of this test.
const CASES: usize = 41;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Identity {
    name: String,
    role: String,
    /// In the server's key registry (a stranger is not).
    registered: bool,
    device_id: String,
    public_key: String,
    ed25519_public_key_hex: String,
    /// Synthetic test key, published on purpose.
    secret_key: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Request {
    method: String,
    authority: String,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    body_hex: String,
    /// Header name (lower case) → value. Absent headers are absent.
    headers: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Verified {
    device: String,
    nonce: String,
    expires: u64,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Case {
    name: String,
    description: String,
    /// The verifier's clock (Unix seconds).
    now: u64,
    request: Request,
    /// Nonces the server has already seen (unexpired) for this key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    seen_nonces: Vec<String>,
    /// The signature base the verifier reconstructs, when the headers parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature_base: Option<String>,
    /// "ok", a `toyseal_cloud::Error` variant name, or "UnknownKey" (keyid not registered).
    expect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified: Option<Verified>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct File {
    comment: String,
    label: String,
    covered_components: Vec<String>,
    tag: String,
    max_validity_secs: u64,
    max_skew_secs: u64,
    identities: Vec<Identity>,
    cases: Vec<Case>,
}

fn err_name(e: &Error) -> &'static str {
    match e {
        Error::Missing(_) => "Missing",
        Error::Malformed(_) => "Malformed",
        Error::Components => "Components",
        Error::Algorithm => "Algorithm",
        Error::Parameter => "Parameter",
        Error::Validity => "Validity",
        Error::NotYetValid => "NotYetValid",
        Error::Expired => "Expired",
        Error::Digest => "Digest",
        Error::Signature => "Signature",
        Error::Replay => "Replay",
        Error::Key(_) => "Key",
        _ => "Other",
    }
}

// ---- the profile, written out by hand from the spec (a second implementation) ----

/// `Signature-Input` member value with arbitrary (possibly invalid) parameters appended.
fn manual_params(created: i64, expires: i64, nonce: &str, keyid: &str, extra: &str) -> String {
    format!(
        "(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created={created};expires={expires};nonce=\"{nonce}\";keyid=\"{keyid}\";tag=\"toyseal-v1\"{extra}"
    )
}

fn manual_base(t: &RequestTarget<'_>, digest: &str, params: &str) -> String {
    format!(
        "\"@method\": {}\n\"@authority\": {}\n\"@path\": {}\n\"@query\": ?{}\n\"content-digest\": {}\n\"@signature-params\": {}",
        t.method,
        t.authority.to_ascii_lowercase(),
        t.path,
        t.query.unwrap_or(""),
        digest,
        params
    )
}

/// Signs hand-written parameters (for cases `sign_request` refuses to produce).
fn manual_sign(
    id: &DeviceIdentity,
    t: &RequestTarget<'_>,
    body: &[u8],
    params: &str,
) -> SignatureHeaders {
    use base64::Engine;
    let digest = content_digest(body);
    let sig = id.sign(manual_base(t, &digest, params).as_bytes());
    SignatureHeaders {
        content_digest: digest,
        signature_input: format!("toyseal={params}"),
        signature: format!(
            "toyseal=:{}:",
            base64::engine::general_purpose::STANDARD.encode(sig.as_bytes())
        ),
    }
}

fn nonce(rng: &mut ChaCha20Rng) -> String {
    use base64::Engine;
    let mut n = [0u8; 16];
    rng.fill_bytes(&mut n);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n)
}

// ---- generation ----

struct Gen {
    ids: Vec<(String, DeviceIdentity, bool)>,
    rng: ChaCha20Rng,
    cases: Vec<Case>,
}

struct Req<'a> {
    method: &'a str,
    authority: &'a str,
    path: String,
    query: Option<&'a str>,
    body: Vec<u8>,
}

impl Req<'_> {
    fn target(&self) -> RequestTarget<'_> {
        RequestTarget {
            method: self.method,
            authority: self.authority,
            path: &self.path,
            query: self.query,
        }
    }
}

fn headers_map(h: &SignatureHeaders) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("content-digest".to_owned(), h.content_digest.clone()),
        ("signature-input".to_owned(), h.signature_input.clone()),
        ("signature".to_owned(), h.signature.clone()),
    ])
}

impl Gen {
    fn id(&self, name: &str) -> &DeviceIdentity {
        &self.ids.iter().find(|(n, _, _)| n == name).unwrap().1
    }

    fn sign(&mut self, who: &str, r: &Req<'_>) -> SignatureHeaders {
        let id = &self.ids.iter().find(|(n, _, _)| n == who).unwrap().1;
        let h = sign_request(id, &r.target(), &r.body, NOW, 300, &mut self.rng).unwrap();
        // The library and the hand-written profile agree on every byte.
        let params = h.signature_input.strip_prefix("toyseal=").unwrap();
        let again = manual_sign(id, &r.target(), &r.body, params);
        assert_eq!(again, h);
        h
    }

    /// Records a case; its outcome comes from the real verifier (and is checked again from the
    /// file in `check_case`).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &str,
        description: &str,
        now: u64,
        r: &Req<'_>,
        headers: BTreeMap<String, String>,
        seen_nonces: Vec<String>,
        expect: &str,
    ) {
        let identities: Vec<Identity> = self.identities();
        let mut case = Case {
            name: name.to_owned(),
            description: description.to_owned(),
            now,
            request: Request {
                method: r.method.to_owned(),
                authority: r.authority.to_owned(),
                path: r.path.clone(),
                query: r.query.map(str::to_owned),
                body_hex: hex::encode(&r.body),
                headers,
            },
            seen_nonces,
            signature_base: None,
            expect: String::new(),
            verified: None,
        };
        let (base, outcome) = run(&identities, &case);
        case.signature_base = base;
        match outcome {
            Ok(v) => {
                case.expect = "ok".to_owned();
                case.verified = Some(v);
            }
            Err(e) => case.expect = e,
        }
        assert_eq!(case.expect, expect, "case {name}");
        self.cases.push(case);
    }

    fn identities(&self) -> Vec<Identity> {
        self.ids
            .iter()
            .map(|(name, id, registered)| Identity {
                name: name.clone(),
                role: id.role().to_string(),
                registered: *registered,
                device_id: id.device_id().to_string(),
                public_key: id.public().to_string(),
                ed25519_public_key_hex: hex::encode(id.public().signing_key()),
                secret_key: id.export_secret_key_text().unwrap().to_string(),
            })
            .collect()
    }
}

fn generate() -> File {
    let ids = vec![
        (
            "toy".to_owned(),
            DeviceIdentity::generate(Role::Toy, &mut ChaCha20Rng::from_seed([0x71; 32])),
            true,
        ),
        (
            "guardian".to_owned(),
            DeviceIdentity::generate(Role::Guardian, &mut ChaCha20Rng::from_seed([0x72; 32])),
            true,
        ),
        (
            "stranger".to_owned(),
            DeviceIdentity::generate(Role::Guardian, &mut ChaCha20Rng::from_seed([0x73; 32])),
            false,
        ),
    ];
    let mut g = Gen {
        ids,
        // Nonces: one generator, drawn in case order.
        rng: ChaCha20Rng::from_seed([0x4e; 32]),
        cases: Vec::new(),
    };
    let family = FamilyId::from_bytes([0xfa; 16]);
    let body = b"toyseal\x01 (an envelope's bytes; opaque to the signature)".to_vec();
    let envelope_id = EnvelopeId::of(&body);

    let list = Req {
        method: "GET",
        authority: AUTHORITY,
        path: api::envelopes_path(family),
        query: Some("cursor=AAAAAAAAAAE&limit=10"),
        body: Vec::new(),
    };
    let upload = Req {
        method: "POST",
        authority: "127.0.0.1:8443",
        path: api::envelopes_path(family),
        query: None,
        body: body.clone(),
    };
    let delete = Req {
        method: "DELETE",
        authority: AUTHORITY,
        path: api::envelope_path(family, &envelope_id),
        query: None,
        body: Vec::new(),
    };
    let roster = Req {
        method: "GET",
        authority: AUTHORITY,
        path: api::roster_path(family),
        query: Some(""),
        body: Vec::new(),
    };

    // ---- valid ----
    let h_list = g.sign("toy", &list);
    g.push(
        "get-with-query",
        "GET a page of envelopes; the query string is covered as `?` + the raw query",
        NOW + 1,
        &list,
        headers_map(&h_list),
        vec![],
        "ok",
    );
    let h_up = g.sign("toy", &upload);
    g.push(
        "post-with-body",
        "POST an envelope (the worked example of the spec); no query is covered as a lone `?`; the authority keeps its port",
        NOW,
        &upload,
        headers_map(&h_up),
        vec![],
        "ok",
    );
    let h_del = g.sign("guardian", &delete);
    g.push(
        "delete",
        "DELETE one envelope, empty body (its Content-Digest is SHA-256 of zero bytes)",
        NOW + 299,
        &delete,
        headers_map(&h_del),
        vec![],
        "ok",
    );
    let h_roster = g.sign("guardian", &roster);
    g.push(
        "empty-query",
        "`?` with nothing after it is an empty query: `@query` is `?`, the same as no query",
        NOW + 30,
        &roster,
        headers_map(&h_roster),
        vec![],
        "ok",
    );
    let upper = Req {
        authority: "API.Toyseal.TEST",
        ..clone_req(&list)
    };
    g.push(
        "authority-case",
        "the authority is compared in lower case (RFC 9421 §2.2.3): a Host header in another case still verifies",
        NOW + 1,
        &upper,
        headers_map(&h_list),
        vec![],
        "ok",
    );
    let spaced = {
        let mut m = headers_map(&h_up);
        let v = format!("  {}  ", h_up.content_digest);
        m.insert("content-digest".to_owned(), v);
        m
    };
    g.push(
        "digest-whitespace",
        "leading and trailing whitespace of a header value is not part of the component value (RFC 9421 §2.1)",
        NOW,
        &upload,
        spaced,
        vec![],
        "ok",
    );
    let skew = g.sign("toy", &list);
    g.push(
        "clock-skew-60s",
        "`created` 60 s in the verifier's future is accepted (clock skew)",
        NOW - 60,
        &list,
        headers_map(&skew),
        vec![],
        "ok",
    );

    // ---- freshness (T04) ----
    g.push(
        "expired",
        "now = expires: the signature has expired",
        NOW + 300,
        &list,
        headers_map(&h_list),
        vec![],
        "Expired",
    );
    g.push(
        "created-10-minutes-ago",
        "a request captured 10 minutes ago",
        NOW + 600,
        &list,
        headers_map(&h_list),
        vec![],
        "Expired",
    );
    g.push(
        "future",
        "`created` 61 s in the verifier's future",
        NOW - 61,
        &list,
        headers_map(&h_list),
        vec![],
        "NotYetValid",
    );
    let toy = g.id("toy").device_id().to_string();
    let guardian = g.id("guardian").device_id().to_string();
    let stranger = g.id("stranger").device_id().to_string();
    let n = nonce(&mut g.rng);
    let now = NOW as i64;
    let manual = |g: &Gen, who: &str, r: &Req<'_>, params: &str| {
        headers_map(&manual_sign(g.id(who), &r.target(), &r.body, params))
    };
    let long = manual(
        &g,
        "toy",
        &list,
        &manual_params(now, now + 301, &n, &toy, ""),
    );
    g.push(
        "validity-301s",
        "validly signed, but expires − created = 301 s > 300 s",
        NOW + 1,
        &list,
        long,
        vec![],
        "Validity",
    );
    let backwards = manual(&g, "toy", &list, &manual_params(now, now, &n, &toy, ""));
    g.push(
        "expires-equals-created",
        "validly signed, but expires is not after created",
        NOW,
        &list,
        backwards,
        vec![],
        "Validity",
    );
    let no_expires = {
        let p = format!(
            "(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created={now};nonce=\"{n}\";keyid=\"{toy}\";tag=\"toyseal-v1\""
        );
        manual(&g, "toy", &list, &p)
    };
    g.push(
        "expires-missing",
        "`expires` is required",
        NOW,
        &list,
        no_expires,
        vec![],
        "Missing",
    );

    // ---- parameters (T06) ----
    let alg = manual(
        &g,
        "toy",
        &list,
        &manual_params(now, now + 300, &n, &toy, ";alg=\"ed25519\""),
    );
    g.push(
        "alg-present",
        "validly signed, with an `alg` parameter (even the right one): the algorithm is pinned by the key registry",
        NOW,
        &list,
        alg,
        vec![],
        "Algorithm",
    );
    let alg_hmac = manual(
        &g,
        "toy",
        &list,
        &manual_params(now, now + 300, &n, &toy, ";alg=\"hmac-sha256\""),
    );
    g.push(
        "alg-hmac",
        "`alg=\"hmac-sha256\"`: an algorithm-confusion attempt",
        NOW,
        &list,
        alg_hmac,
        vec![],
        "Algorithm",
    );
    let unknown = manual(
        &g,
        "toy",
        &list,
        &manual_params(now, now + 300, &n, &toy, ";extra=1"),
    );
    g.push(
        "unknown-parameter",
        "an unknown parameter",
        NOW,
        &list,
        unknown,
        vec![],
        "Parameter",
    );
    let wrong_tag = {
        let p = manual_params(now, now + 300, &n, &toy, "").replace("toyseal-v1", "toyseal-v2");
        manual(&g, "toy", &list, &p)
    };
    g.push(
        "wrong-tag",
        "`tag` other than \"toyseal-v1\"",
        NOW,
        &list,
        wrong_tag,
        vec![],
        "Parameter",
    );
    let short_nonce = manual(
        &g,
        "toy",
        &list,
        &manual_params(now, now + 300, "AAAAAAAAAAAAAAAAAAAAA", &toy, ""),
    );
    g.push(
        "nonce-too-short",
        "a 21-character nonce (< 128 bits)",
        NOW,
        &list,
        short_nonce,
        vec![],
        "Malformed",
    );
    let bad_nonce = manual(
        &g,
        "toy",
        &list,
        &manual_params(now, now + 300, "AAAAAAAAAAAAAAAAAAAAAAA+", &toy, ""),
    );
    g.push(
        "nonce-not-base64url",
        "a nonce with `+` (base64, not base64url)",
        NOW,
        &list,
        bad_nonce,
        vec![],
        "Malformed",
    );
    let fewer = {
        let p = format!(
            "(\"@method\" \"@authority\" \"@path\" \"@query\");created={now};expires={};nonce=\"{n}\";keyid=\"{toy}\";tag=\"toyseal-v1\"",
            now + 300
        );
        manual(&g, "toy", &list, &p)
    };
    g.push(
        "components-without-digest",
        "content-digest not covered",
        NOW,
        &list,
        fewer,
        vec![],
        "Components",
    );
    let reordered = {
        let p = manual_params(now, now + 300, &n, &toy, "")
            .replace("\"@method\" \"@authority\"", "\"@authority\" \"@method\"");
        manual(&g, "toy", &list, &p)
    };
    g.push(
        "components-reordered",
        "the profile's components in another order",
        NOW,
        &list,
        reordered,
        vec![],
        "Components",
    );
    let mut other_label = headers_map(&h_list);
    for k in ["signature-input", "signature"] {
        let v = other_label[k].replacen("toyseal=", "sig1=", 1);
        other_label.insert(k.to_owned(), v);
    }
    g.push(
        "other-label",
        "a signature under another label only",
        NOW,
        &list,
        other_label,
        vec![],
        "Missing",
    );

    // ---- missing or garbled headers (T01) ----
    for (header, name) in [
        ("signature-input", "missing-signature-input"),
        ("signature", "missing-signature"),
        ("content-digest", "missing-content-digest"),
    ] {
        let mut m = headers_map(&h_up);
        m.remove(header);
        g.push(
            name,
            &format!("no {header} header"),
            NOW,
            &upload,
            m,
            vec![],
            "Missing",
        );
    }
    g.push(
        "no-headers",
        "an unsigned request",
        NOW,
        &upload,
        BTreeMap::new(),
        vec![],
        "Missing",
    );
    let mut sha512 = headers_map(&h_up);
    sha512.insert(
        "content-digest".to_owned(),
        "sha-512=:z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==:".to_owned(),
    );
    g.push(
        "digest-sha512-only",
        "Content-Digest without a sha-256 member",
        NOW,
        &upload,
        sha512,
        vec![],
        "Missing",
    );
    let mut garbled = headers_map(&h_up);
    garbled.insert("content-digest".to_owned(), "sha-256=:!!:".to_owned());
    g.push(
        "digest-garbled",
        "Content-Digest that is not a structured-field dictionary of byte sequences",
        NOW,
        &upload,
        garbled,
        vec![],
        "Malformed",
    );

    // ---- changes after signing (T05) ----
    let changes: [(&str, &str, Req<'_>, &str); 6] = [
        (
            "changed-method",
            "POST replayed as PUT",
            Req {
                method: "PUT",
                ..clone_req(&upload)
            },
            "Signature",
        ),
        (
            "changed-path",
            "the same upload sent to another family's path",
            Req {
                path: api::envelopes_path(FamilyId::from_bytes([0xfb; 16])),
                ..clone_req(&upload)
            },
            "Signature",
        ),
        (
            "changed-query",
            "the query `limit=10` raised to `limit=100`",
            Req {
                query: Some("cursor=AAAAAAAAAAE&limit=100"),
                ..clone_req(&list)
            },
            "Signature",
        ),
        (
            "query-removed",
            "the query dropped",
            Req {
                query: None,
                ..clone_req(&list)
            },
            "Signature",
        ),
        (
            "changed-authority",
            "sent to another server (or another port)",
            Req {
                authority: "127.0.0.1:8444",
                ..clone_req(&upload)
            },
            "Signature",
        ),
        (
            "changed-body",
            "other body bytes under the signed Content-Digest",
            Req {
                body: b"toyseal\x01 (other bytes)".to_vec(),
                ..clone_req(&upload)
            },
            "Digest",
        ),
    ];
    for (name, description, r, expect) in changes {
        let h = if r.method == "GET" { &h_list } else { &h_up };
        g.push(name, description, NOW, &r, headers_map(h), vec![], expect);
    }
    let other_body = b"toyseal\x01 (other bytes)".to_vec();
    let mut redigested = headers_map(&h_up);
    redigested.insert("content-digest".to_owned(), content_digest(&other_body));
    g.push(
        "changed-body-and-digest",
        "other body with a matching, recomputed Content-Digest: the signature covers the digest",
        NOW,
        &Req {
            body: other_body,
            ..clone_req(&upload)
        },
        redigested,
        vec![],
        "Signature",
    );

    // ---- keys (T02, T06) ----
    let claims_guardian = manual(
        &g,
        "toy",
        &upload,
        &manual_params(now, now + 300, &n, &guardian, ""),
    );
    g.push(
        "wrong-keyid",
        "signed by the toy, keyid naming the guardian: verified under the guardian's registered key",
        NOW,
        &upload,
        claims_guardian,
        vec![],
        "Signature",
    );
    let h_stranger = g.sign("stranger", &upload);
    g.push(
        "unregistered-key",
        "a valid signature by a device in no roster: the registry has no key for the keyid",
        NOW,
        &upload,
        headers_map(&h_stranger),
        vec![],
        "UnknownKey",
    );
    let claims_stranger = manual(
        &g,
        "toy",
        &upload,
        &manual_params(now, now + 300, &n, &stranger, ""),
    );
    g.push(
        "keyid-of-stranger",
        "signed by the toy under a keyid nobody registered",
        NOW,
        &upload,
        claims_stranger,
        vec![],
        "UnknownKey",
    );
    let bad_keyid = manual(
        &g,
        "toy",
        &upload,
        &manual_params(now, now + 300, &n, "TOY", ""),
    );
    g.push(
        "keyid-malformed",
        "keyid that is not 32 lower-case hex digits",
        NOW,
        &upload,
        bad_keyid,
        vec![],
        "Malformed",
    );
    let mut flipped = headers_map(&h_up);
    let flipped_sig = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let v = &flipped["signature"];
        let mut raw = b64
            .decode(v.trim_start_matches("toyseal=:").trim_end_matches(':'))
            .unwrap();
        raw[0] ^= 1;
        format!("toyseal=:{}:", b64.encode(raw))
    };
    flipped.insert("signature".to_owned(), flipped_sig);
    g.push(
        "signature-altered",
        "one bit of the Ed25519 signature flipped",
        NOW,
        &upload,
        flipped,
        vec![],
        "Signature",
    );

    // ---- replay (T03): the server's duty, after the signature verifies ----
    let replayed_nonce = g_nonce(&h_up);
    g.push(
        "replay",
        "the worked example again, its nonce already in the server's (shared) nonce store",
        NOW + 5,
        &upload,
        headers_map(&h_up),
        vec![replayed_nonce],
        "Replay",
    );

    File {
        comment: "toyseal signed-request profile vectors (docs/spec/signed-requests.md). Synthetic test devices; secret keys published on purpose. Generated by crates/toyseal-cloud/tests/vectors.rs.".to_owned(),
        label: toyseal_cloud::signing::LABEL.to_owned(),
        covered_components: toyseal_cloud::signing::COVERED.iter().map(|s| (*s).to_owned()).collect(),
        tag: toyseal_cloud::signing::TAG.to_owned(),
        max_validity_secs: toyseal_cloud::signing::MAX_VALIDITY_SECS,
        max_skew_secs: toyseal_cloud::signing::MAX_SKEW_SECS,
        identities: g.identities(),
        cases: g.cases,
    }
}

fn clone_req<'a>(r: &Req<'a>) -> Req<'a> {
    Req {
        method: r.method,
        authority: r.authority,
        path: r.path.clone(),
        query: r.query,
        body: r.body.clone(),
    }
}

fn g_nonce(h: &SignatureHeaders) -> String {
    let i = h.signature_input.find("nonce=\"").unwrap() + 7;
    let rest = &h.signature_input[i..];
    rest[..rest.find('"').unwrap()].to_owned()
}

// ---- verification from the file alone ----

/// What a server does: parse, look the keyid up in the registry, verify, check the nonce.
fn run(ids: &[Identity], case: &Case) -> (Option<String>, Result<Verified, String>) {
    let r = &case.request;
    let body = hex::decode(&r.body_hex).unwrap();
    let req = ReceivedRequest {
        target: RequestTarget {
            method: &r.method,
            authority: &r.authority,
            path: &r.path,
            query: r.query.as_deref(),
        },
        content_digest: r.headers.get("content-digest").map(String::as_str),
        signature_input: r.headers.get("signature-input").map(String::as_str),
        signature: r.headers.get("signature").map(String::as_str),
    };
    let parsed = match UnverifiedRequest::parse(&req, case.now) {
        Ok(p) => p,
        Err(e) => return (None, Err(err_name(&e).to_owned())),
    };
    let base = Some(parsed.signature_base().to_owned());
    let key_id: DeviceId = parsed.key_id();
    let Some(key) = ids
        .iter()
        .filter(|i| i.registered)
        .find(|i| i.device_id == key_id.to_string())
    else {
        return (base, Err("UnknownKey".to_owned()));
    };
    let key: PublicIdentity = key.public_key.parse().unwrap();
    let outcome = parsed
        .verify(&key, &body)
        .map_err(|e| err_name(&e).to_owned())
        .and_then(|v| {
            if case.seen_nonces.iter().any(|n| n == v.nonce()) {
                Err(err_name(&Error::Replay).to_owned())
            } else {
                Ok(Verified {
                    device: v.device().to_string(),
                    nonce: v.nonce().to_owned(),
                    expires: v.expires(),
                })
            }
        });
    (base, outcome)
}

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/spec/vectors/signed-requests.json")
}

fn render(f: &File) -> String {
    let mut s = serde_json::to_string_pretty(f).unwrap();
    s.push('\n');
    s
}

#[test]
fn vectors_regenerate_byte_for_byte() {
    let fresh = render(&generate());
    if std::env::var_os("TOYSEAL_REGENERATE_VECTORS").is_some() {
        std::fs::write(path(), &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(path()).unwrap();
    assert!(
        on_disk == fresh,
        "docs/spec/vectors/signed-requests.json differs from the generator; rerun with TOYSEAL_REGENERATE_VECTORS=1 if the change is intended"
    );
}

#[test]
fn vectors_verify_from_the_file_alone() {
    let file: File = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    assert_eq!(file.cases.len(), CASES);
    // The identities in the file are self-consistent.
    for i in &file.identities {
        let id = DeviceIdentity::from_secret_key_text(&i.secret_key).unwrap();
        assert_eq!(id.public().to_string(), i.public_key);
        assert_eq!(id.device_id().to_string(), i.device_id);
        assert_eq!(
            hex::encode(id.public().signing_key()),
            i.ed25519_public_key_hex
        );
    }
    let (mut ok, mut refused) = (0, 0);
    for case in &file.cases {
        let (base, outcome) = run(&file.identities, case);
        assert_eq!(base, case.signature_base, "{}", case.name);
        match outcome {
            Ok(v) => {
                assert_eq!(case.expect, "ok", "{}", case.name);
                assert_eq!(Some(v), case.verified, "{}", case.name);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e, case.expect, "{}", case.name);
                assert!(case.verified.is_none());
                refused += 1;
            }
        }
        // Valid cases: the base is also what the spec's hand-written construction gives.
        if case.expect == "ok" {
            let r = &case.request;
            let t = RequestTarget {
                method: &r.method,
                authority: &r.authority,
                path: &r.path,
                query: r.query.as_deref().filter(|q| !q.is_empty()),
            };
            let params = r.headers["signature-input"]
                .strip_prefix("toyseal=")
                .unwrap();
            assert_eq!(
                Some(manual_base(&t, r.headers["content-digest"].trim(), params)),
                case.signature_base
            );
        }
    }
    assert_eq!((ok, refused), (7, CASES - 7));
    // Every error variant a verifier can return shows up at least once.
    for name in [
        "Missing",
        "Malformed",
        "Components",
        "Algorithm",
        "Parameter",
        "Validity",
        "NotYetValid",
        "Expired",
        "Digest",
        "Signature",
        "Replay",
        "UnknownKey",
    ] {
        assert!(
            file.cases.iter().any(|c| c.expect == name),
            "no vector expects {name}"
        );
    }
}
