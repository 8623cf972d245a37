//! toyseal's profile of HTTP Message Signatures (RFC 9421) with Content-Digest (RFC 9530):
//! the signer for devices and a sans-IO verifier any server can embed
//! (docs/spec/signed-requests.md).
//!
//! Profile, fixed (no negotiation):
//! - one signature, label `toyseal`;
//! - covered components, in this order: `"@method" "@authority" "@path" "@query"
//!   "content-digest"` (RFC 9421 §2.2.1, §2.2.3, §2.2.6, §2.2.7; RFC 9530 §2);
//! - parameters, in this order: `created`, `expires`, `nonce`, `keyid`, `tag="toyseal-v1"`;
//!   no others (in particular no `alg`: the algorithm is Ed25519, pinned by the key registry,
//!   never chosen by the request);
//! - `expires − created ≤ 300 s`; `created` at most 300 s old and at most 60 s in the future;
//! - `nonce`: 22 to 64 characters of base64url (≥ 128 bits), unique per key until it expires;
//! - `keyid`: the device id (32 hex digits);
//! - `Content-Digest: sha-256=:…:` always present (also for empty bodies).

use crate::Error;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sfv::{BareItem, DictSerializer, Dictionary, KeyRef, ListEntry, Parser, StringRef};
use toyseal_core::{CryptoRng, DeviceId, DeviceIdentity, PublicIdentity, Signature};

/// The signature label.
pub const LABEL: &str = "toyseal";
/// The fixed `tag` parameter.
pub const TAG: &str = "toyseal-v1";
/// The covered components, in order.
pub const COVERED: [&str; 5] = ["@method", "@authority", "@path", "@query", "content-digest"];
/// Longest allowed validity (`expires − created`) and oldest allowed `created`, in seconds.
pub const MAX_VALIDITY_SECS: u64 = 300;
/// How far in the future `created` may be (clock skew), in seconds.
pub const MAX_SKEW_SECS: u64 = 60;

/// `Content-Digest` field value for `body`: `sha-256=:<base64 of SHA-256(body)>:`.
pub fn content_digest(body: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, body);
    format!("sha-256=:{}:", STANDARD.encode(d.as_ref()))
}

/// The parts of a request that are signed.
#[derive(Clone, Copy, Debug)]
pub struct RequestTarget<'a> {
    /// Method, e.g. `POST` (case-sensitive, as sent).
    pub method: &'a str,
    /// Host and optional port, e.g. `api.example` or `127.0.0.1:8080`.
    pub authority: &'a str,
    /// Absolute path, e.g. `/v1/families/…/envelopes`.
    pub path: &'a str,
    /// Query string without `?`, if any.
    pub query: Option<&'a str>,
}

/// The three headers a signed request carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Content-Digest`.
    pub content_digest: String,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
}

/// Signature parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Params {
    created: u64,
    expires: u64,
    nonce: String,
    keyid: DeviceId,
}

fn int(v: u64) -> Result<sfv::Integer, Error> {
    i64::try_from(v)
        .ok()
        .and_then(|v| sfv::Integer::try_from(v).ok())
        .ok_or(Error::Malformed("time out of range"))
}

/// The `Signature-Input` member value (`(…);created=…;…`), which is also the
/// `@signature-params` line of the signature base (RFC 9421 §2.3).
fn signature_params(p: &Params) -> Result<String, Error> {
    let keyid = p.keyid.to_string();
    let mut ser = DictSerializer::new();
    {
        let mut list = ser.inner_list(KeyRef::constant(LABEL));
        for c in COVERED {
            list.bare_item(StringRef::from_str(c).map_err(|_| Error::Malformed("component"))?);
        }
        list.finish()
            .parameter(KeyRef::constant("created"), int(p.created)?)
            .parameter(KeyRef::constant("expires"), int(p.expires)?)
            .parameter(
                KeyRef::constant("nonce"),
                StringRef::from_str(&p.nonce).map_err(|_| Error::Malformed("nonce"))?,
            )
            .parameter(
                KeyRef::constant("keyid"),
                StringRef::from_str(&keyid).map_err(|_| Error::Malformed("keyid"))?,
            )
            .parameter(KeyRef::constant("tag"), StringRef::constant(TAG));
    }
    let whole = ser
        .finish()
        .ok_or(Error::Malformed("empty signature input"))?;
    whole
        .strip_prefix("toyseal=")
        .map(str::to_owned)
        .ok_or(Error::Malformed("signature input"))
}

/// The signature base (RFC 9421 §2.5).
fn signature_base(target: &RequestTarget<'_>, digest_value: &str, params: &str) -> String {
    let query = target
        .query
        .map_or_else(|| "?".to_owned(), |q| format!("?{q}"));
    let path = if target.path.is_empty() {
        "/"
    } else {
        target.path
    };
    format!(
        "\"@method\": {}\n\"@authority\": {}\n\"@path\": {}\n\"@query\": {}\n\"content-digest\": {}\n\"@signature-params\": {}",
        target.method,
        target.authority.to_ascii_lowercase(),
        path,
        query,
        digest_value.trim(),
        params
    )
}

/// Signs a request as `identity`, valid for `validity_secs` (1..=300) from `now_unix`.
pub fn sign_request(
    identity: &DeviceIdentity,
    target: &RequestTarget<'_>,
    body: &[u8],
    now_unix: u64,
    validity_secs: u64,
    rng: &mut impl CryptoRng,
) -> Result<SignatureHeaders, Error> {
    if validity_secs == 0 || validity_secs > MAX_VALIDITY_SECS {
        return Err(Error::Malformed("validity must be 1..=300 seconds"));
    }
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    let params = Params {
        created: now_unix,
        expires: now_unix + validity_secs,
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        keyid: identity.device_id(),
    };
    let params_value = signature_params(&params)?;
    let content_digest = content_digest(body);
    let base = signature_base(target, &content_digest, &params_value);
    let sig = identity.sign(base.as_bytes());
    Ok(SignatureHeaders {
        content_digest,
        signature_input: format!("{LABEL}={params_value}"),
        signature: format!("{LABEL}=:{}:", STANDARD.encode(sig.as_bytes())),
    })
}

/// A request as received, before verification: the signed components and the three headers
/// (`None` when absent).
#[derive(Clone, Copy, Debug)]
pub struct ReceivedRequest<'a> {
    /// The request target.
    pub target: RequestTarget<'a>,
    /// `Content-Digest`, if present.
    pub content_digest: Option<&'a str>,
    /// `Signature-Input`, if present.
    pub signature_input: Option<&'a str>,
    /// `Signature`, if present.
    pub signature: Option<&'a str>,
}

/// A structurally valid, fresh signature whose key has not been looked up yet.
///
/// Sans-IO verification is two steps so that the key lookup (a database query) happens in
/// between: [`UnverifiedRequest::parse`] → look up [`UnverifiedRequest::key_id`] →
/// [`UnverifiedRequest::verify`].
#[derive(Clone, Debug)]
pub struct UnverifiedRequest {
    params: Params,
    digest: [u8; 32],
    base: String,
    signature: Signature,
}

/// A request whose signature verified: the caller must still check the nonce is new
/// ([`nonce`](Self::nonce), until [`expires`](Self::expires)) and authorize the device.
///
/// Only [`UnverifiedRequest::verify`] makes one: holding a `VerifiedRequest` is the proof that
/// the signature verified (its fields are private).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRequest {
    device: DeviceId,
    nonce: String,
    expires: u64,
}

impl VerifiedRequest {
    /// The authenticated device.
    pub fn device(&self) -> DeviceId {
        self.device
    }
    /// The request's nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
    /// When the signature expires (Unix seconds); the nonce must be remembered until then.
    pub fn expires(&self) -> u64 {
        self.expires
    }
}

fn dict(value: Option<&str>, what: &'static str) -> Result<Dictionary, Error> {
    let value = value.ok_or(Error::Missing(what))?;
    Parser::new(value)
        .parse::<Dictionary>()
        .map_err(|_| Error::Malformed(what))
}

fn byte_sequence(d: &Dictionary, key: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    match d.get(key) {
        Some(ListEntry::Item(item)) => match &item.bare_item {
            BareItem::ByteSequence(b) if item.params.is_empty() => Ok(b.clone()),
            _ => Err(Error::Malformed(what)),
        },
        Some(_) => Err(Error::Malformed(what)),
        None => Err(Error::Missing(what)),
    }
}

impl UnverifiedRequest {
    /// Parses and checks everything that needs no key: headers present and well-formed, the
    /// profile's components and parameters exactly, freshness at `now_unix`.
    pub fn parse(req: &ReceivedRequest<'_>, now_unix: u64) -> Result<Self, Error> {
        let input = dict(req.signature_input, "Signature-Input")?;
        let entry = input
            .get(LABEL)
            .ok_or(Error::Missing("toyseal signature"))?;
        let ListEntry::InnerList(list) = entry else {
            return Err(Error::Malformed("Signature-Input"));
        };
        let components: Vec<&str> = list
            .items
            .iter()
            .map(|i| match &i.bare_item {
                BareItem::String(s) if i.params.is_empty() => Ok(s.as_str()),
                _ => Err(Error::Malformed("covered component")),
            })
            .collect::<Result<_, _>>()?;
        if components != COVERED {
            return Err(Error::Components);
        }
        let mut created = None;
        let mut expires = None;
        let mut nonce = None;
        let mut keyid = None;
        let mut tag = None;
        for (k, v) in &list.params {
            match (k.as_str(), v) {
                ("created", BareItem::Integer(i)) => created = u64::try_from(i64::from(*i)).ok(),
                ("expires", BareItem::Integer(i)) => expires = u64::try_from(i64::from(*i)).ok(),
                ("nonce", BareItem::String(s)) => nonce = Some(s.as_str().to_owned()),
                ("keyid", BareItem::String(s)) => keyid = Some(s.as_str().to_owned()),
                ("tag", BareItem::String(s)) => tag = Some(s.as_str().to_owned()),
                ("alg", _) => return Err(Error::Algorithm),
                _ => return Err(Error::Parameter),
            }
        }
        let created = created.ok_or(Error::Missing("created"))?;
        let expires = expires.ok_or(Error::Missing("expires"))?;
        let nonce = nonce.ok_or(Error::Missing("nonce"))?;
        let keyid = keyid.ok_or(Error::Missing("keyid"))?;
        if tag.as_deref() != Some(TAG) {
            return Err(Error::Parameter);
        }
        let nonce_ok = (22..=64).contains(&nonce.len())
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !nonce_ok {
            return Err(Error::Malformed("nonce"));
        }
        let keyid: DeviceId = keyid.parse().map_err(|_| Error::Malformed("keyid"))?;
        if expires <= created || expires - created > MAX_VALIDITY_SECS {
            return Err(Error::Validity);
        }
        if created > now_unix + MAX_SKEW_SECS {
            return Err(Error::NotYetValid);
        }
        if now_unix >= expires || now_unix.saturating_sub(created) > MAX_VALIDITY_SECS {
            return Err(Error::Expired);
        }
        let sig = byte_sequence(&dict(req.signature, "Signature")?, LABEL, "Signature")?;
        let signature = Signature::from_bytes(
            sig.as_slice()
                .try_into()
                .map_err(|_| Error::Malformed("Signature length"))?,
        );
        let digest_value = req.content_digest.ok_or(Error::Missing("Content-Digest"))?;
        let digest = byte_sequence(
            &dict(Some(digest_value), "Content-Digest")?,
            "sha-256",
            "Content-Digest",
        )?;
        let digest: [u8; 32] = digest
            .as_slice()
            .try_into()
            .map_err(|_| Error::Malformed("Content-Digest length"))?;
        let params = Params {
            created,
            expires,
            nonce,
            keyid,
        };
        let base = signature_base(&req.target, digest_value, &signature_params(&params)?);
        Ok(Self {
            params,
            digest,
            base,
            signature,
        })
    }

    /// The device the request claims to come from.
    pub fn key_id(&self) -> DeviceId {
        self.params.keyid
    }

    /// Checks the body against the signed `Content-Digest` (step 6 alone), for a server that
    /// must find the key in the body itself (family creation: a member of the roster it
    /// carries) and so may look at the body only once it is the one that was signed.
    pub fn check_body(&self, body: &[u8]) -> Result<(), Error> {
        let d = ring::digest::digest(&ring::digest::SHA256, body);
        if self.digest.as_slice() == d.as_ref() {
            Ok(())
        } else {
            Err(Error::Digest)
        }
    }

    /// Verifies with the registered key of [`key_id`](Self::key_id) and the body.
    pub fn verify(self, key: &PublicIdentity, body: &[u8]) -> Result<VerifiedRequest, Error> {
        let d = ring::digest::digest(&ring::digest::SHA256, body);
        self.verify_with_body_digest(key, d.as_ref())
    }

    /// As [`verify`](Self::verify), for a server that hashed a streamed body itself.
    pub fn verify_with_body_digest(
        self,
        key: &PublicIdentity,
        body_sha256: &[u8],
    ) -> Result<VerifiedRequest, Error> {
        if key.device_id() != self.params.keyid {
            return Err(Error::Signature);
        }
        // The signature covers the Content-Digest header; the header must match the body.
        // Both digests are public: a plain comparison is fine.
        if self.digest.as_slice() != body_sha256 {
            return Err(Error::Digest);
        }
        key.verify(self.base.as_bytes(), &self.signature)
            .map_err(|_| Error::Signature)?;
        Ok(VerifiedRequest {
            device: self.params.keyid,
            nonce: self.params.nonce,
            expires: self.params.expires,
        })
    }

    /// The signature base that was (or should have been) signed; for debugging and vectors.
    pub fn signature_base(&self) -> &str {
        &self.base
    }
}
