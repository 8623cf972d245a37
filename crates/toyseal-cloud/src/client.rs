//! The async client for the toyseal API (docs/spec/signed-requests.md §6), feature `client`.
//!
//! Every request is signed with [`sign_request`] by the device's identity, afresh for each
//! attempt (new nonce, new `created`), so a retry is never a replay. The client trusts nothing
//! the server says without checking: roster chains are verified from version 1 and must pass
//! through the device's anchor (roster.md §6), later versions are fetched incrementally and
//! verified from the last trusted one, uploaded and downloaded envelopes are checked against
//! their content hash.
//!
//! Retries (exponential backoff with jitter, `Retry-After` respected) happen only for
//! idempotent operations — reads, envelope uploads (content-addressed) and deletes — and only
//! on transport errors, 408, 429 and 5xx. Every operation has an overall deadline
//! ([`ClientConfig::timeout`], 30 s by default) over all its tries and waits: a silent server
//! is abandoned then, with an error naming the URL, the tries and the time-out.
//!
//! Error answers are read as RFC 9457 problem details ([`api::Problem`]): at most
//! [`MAX_PROBLEM_BYTES`] of the body, the rest ignored; the detail kept only after control and
//! bidi-formatting characters are stripped and its length capped ([`crate::MAX_DETAIL_CHARS`]).

use crate::api::{
    self, Access, DeletionPage, Endpoint, EnvelopeCreated, EnvelopeId, EnvelopePage, Health,
    MAX_PAGE, PendingDeletion, ProblemKind, RosterChain, ServerLimits,
};
use crate::{Error, RequestTarget, sign_request};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use reqwest::{Method, StatusCode, Url};
use std::borrow::Borrow;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use toyseal_core::{DeviceIdentity, FamilyId, OsRng};
use toyseal_envelope::{Opened, Opener, TrustedSenders};
use toyseal_roster::{
    Anchor, ChainFollower, EnvelopeErasure, FamilyDeletion, Roster, SignedRoster,
};

/// The most of an error answer's body the client reads (the rest is ignored).
pub const MAX_PROBLEM_BYTES: usize = 4096;

/// Timeouts, retries and limits of a [`Client`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Time to establish a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Time for one whole attempt, request and response body (default 30 s); never more than
    /// what remains of [`timeout`](Self::timeout).
    pub request_timeout: Duration,
    /// Time for the whole operation: every try and every wait between tries (default 30 s).
    /// A streamed download's body counts too.
    pub timeout: Duration,
    /// Attempts for an idempotent operation, the first included (at least 1; default 5).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// Validity of each signature, 1..=300 s.
    pub signature_validity_secs: u64,
    /// Largest envelope the client downloads.
    pub max_envelope_bytes: u64,
    /// Largest JSON answer the client reads.
    pub max_json_bytes: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            // The longest the profile allows: tolerates clock skew; the server's nonce store
            // makes the window useless for replays.
            signature_validity_secs: crate::signing::MAX_VALIDITY_SECS,
            max_envelope_bytes: 256 << 20,
            max_json_bytes: 1 << 20,
        }
    }
}

/// A client of one toyseal server, acting as one device.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    authority: String,
    identity: std::sync::Arc<DeviceIdentity>,
    config: ClientConfig,
    /// The server's limits, from its first `GET /v1/health` answer.
    limits: OnceLock<ServerLimits>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("device", &self.identity.device_id())
            .finish_non_exhaustive()
    }
}

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The envelope's id (checked against the server's answer).
    pub id: EnvelopeId,
    /// `true` for 201 (stored now), `false` for 200 (it was already stored).
    pub created: bool,
}

/// What a `DELETE …/envelopes/{id}` did ([`Client::delete_envelope`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deletion {
    /// Erased at once (the device's own envelope), or already gone on a retry.
    Erased,
    /// Soft-deleted (another device's envelope): hidden, restorable by any guardian until
    /// the server erases it at `erase_at`.
    Pending(PendingDeletion),
}

/// One try's outcome: final, or worth another try (with the server's `Retry-After`).
enum Try<T> {
    Done(T),
    Again(T, Option<Duration>),
}

/// Whether an operation may be retried.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotent {
    Yes,
    No,
}

struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Client {
    /// A client for `base_url` (`https://host[:port]`, or `http://` for loopback tests) acting
    /// as `identity`, with the default [`ClientConfig`]. The identity is shared (`Arc`) with the
    /// device's other components (its BLE endpoint, its sealer); pass a `DeviceIdentity` to
    /// give it one of its own.
    pub fn new(
        base_url: &str,
        identity: impl Into<std::sync::Arc<DeviceIdentity>>,
    ) -> Result<Self, Error> {
        Self::with_config(base_url, identity, ClientConfig::default())
    }

    /// As [`new`](Self::new), with explicit timeouts, retries and limits.
    pub fn with_config(
        base_url: &str,
        identity: impl Into<std::sync::Arc<DeviceIdentity>>,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        let identity = identity.into();
        let base = Url::parse(base_url).map_err(|_| Error::Malformed("base URL"))?;
        if !matches!(base.scheme(), "https" | "http")
            || base.path() != "/"
            || base.query().is_some()
            || base.fragment().is_some()
            || !base.username().is_empty()
            || base.password().is_some()
        {
            return Err(Error::Malformed(
                "base URL must be http(s)://host[:port] with no path, query or credentials",
            ));
        }
        let host = base.host_str().ok_or(Error::Malformed("base URL host"))?;
        // What reqwest sends as `Host` (the port only when it is not the scheme's default),
        // hence what the server sees as `@authority`.
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        if config.max_attempts == 0
            || config.timeout.is_zero()
            || config.request_timeout.is_zero()
            || config.connect_timeout.is_zero()
            || config.signature_validity_secs == 0
            || config.signature_validity_secs > crate::signing::MAX_VALIDITY_SECS
        {
            return Err(Error::Malformed("client config"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // A redirect would send the signed request's body elsewhere unsigned for the new
            // authority: refuse it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| Error::Transport {
                cause: "building the HTTP client",
                url: base.as_str().to_owned(),
                tries: 0,
                timeout: None,
            })?;
        Ok(Self {
            http,
            base,
            authority,
            identity,
            config,
            limits: OnceLock::new(),
        })
    }

    /// The device this client signs as.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// `GET /v1/health` (unsigned).
    pub async fn health(&self) -> Result<Health, Error> {
        let a = self
            .send(
                Endpoint::Health,
                Endpoint::Health.template(),
                None,
                &[],
                Idempotent::Yes,
            )
            .await?;
        expect(&a, &[StatusCode::OK])?;
        let health: Health = self.json(&a)?;
        // The first answer wins; a later health check does not move the limit under a caller.
        let _ = self.limits.set(health.limits);
        Ok(health)
    }

    /// The server's limits (`GET /v1/health`), asked once per client and then cached.
    pub async fn server_limits(&self) -> Result<ServerLimits, Error> {
        if let Some(l) = self.limits.get() {
            return Ok(*l);
        }
        let health = self.health().await?;
        Ok(*self.limits.get().unwrap_or(&health.limits))
    }

    /// `POST /v1/families/{family}`: creates the family with roster version 1, which this
    /// client checks first (a founding guardian and the toy must have signed it).
    pub async fn create_family(&self, roster: &SignedRoster) -> Result<Roster, Error> {
        let verified = Roster::verify_founding(roster.clone())?;
        let path = api::family_path(verified.family());
        let a = self
            .send(
                Endpoint::CreateFamily,
                &path,
                None,
                &roster.encode(),
                Idempotent::No,
            )
            .await?;
        expect(&a, &[StatusCode::CREATED])?;
        Ok(verified)
    }

    /// `GET …/roster?since=`, paged, for a device that trusts nothing but its **anchor**
    /// (roster.md §6: the version that added it, from its invitation; version 1 for the
    /// founding devices): the chain is verified from version 1 and must pass through the
    /// anchor, which must list this device. A new or reinstalled device calls this with the
    /// anchor it keeps beside its keys ([`crate::AnchorStore`]); the server's word is never
    /// taken (T16). Memory is one
    /// roster and one page whatever the chain's length. Returns the latest verified version.
    pub async fn roster(&self, anchor: &Anchor) -> Result<Roster, Error> {
        let mut follower = ChainFollower::new(*anchor);
        loop {
            let (page, more) = self.roster_page(anchor.family(), follower.since()).await?;
            for v in page {
                follower.push(v)?;
            }
            if !more {
                break;
            }
        }
        let anchored = follower
            .anchored()
            .ok_or(toyseal_roster::Error::NotAnchored)?;
        if !anchored.contains(self.identity.public()) {
            return Err(Error::Integrity(
                "the anchored roster version does not list this device",
            ));
        }
        Ok(follower.finish()?)
    }

    /// The versions after `current`, fetched with `since` and verified from `current`: the
    /// server cannot rewrite history (each version chains to the one before) nor roll back.
    /// Returns `current` itself when nothing is newer.
    pub async fn roster_update(&self, current: &Roster) -> Result<Roster, Error> {
        let mut latest = current.clone();
        loop {
            let (page, more) = self.roster_page(current.family(), latest.version()).await?;
            latest = latest.advance(&page)?;
            if !more {
                return Ok(latest);
            }
        }
    }

    /// One page of versions after `since`, decoded but not verified; a page that claims more
    /// but brings nothing would loop forever: refused.
    async fn roster_page(
        &self,
        family: FamilyId,
        since: u64,
    ) -> Result<(Vec<SignedRoster>, bool), Error> {
        let query = format!("since={since}");
        let a = self
            .send(
                Endpoint::GetRoster,
                &api::roster_path(family),
                Some(&query),
                &[],
                Idempotent::Yes,
            )
            .await?;
        expect(&a, &[StatusCode::OK])?;
        let chain: RosterChain = self.json(&a)?;
        if chain.versions.len() as u64 > api::MAX_ROSTER_PAGE
            || (chain.more && chain.versions.is_empty())
        {
            return Err(Error::Integrity("roster page out of bounds"));
        }
        let page = chain
            .versions
            .iter()
            .map(|v| {
                let bytes = STANDARD
                    .decode(v)
                    .map_err(|_| Error::Malformed("roster base64"))?;
                Ok(SignedRoster::decode(&bytes)?)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((page, chain.more))
    }

    /// `POST …/roster`: uploads the next roster version (this client's guardian signed it).
    pub async fn update_roster(&self, next: &SignedRoster) -> Result<(), Error> {
        let path = api::roster_path(next.proposal().family());
        let a = self
            .send(
                Endpoint::UpdateRoster,
                &path,
                None,
                &next.encode(),
                Idempotent::No,
            )
            .await?;
        expect(&a, &[StatusCode::OK])
    }

    /// `POST …/envelopes`. Idempotent: 201 (stored now) and 200 (already stored) both mean
    /// stored; the returned id must be the SHA-256 of `envelope`. An envelope larger than the
    /// server's advertised limit ([`server_limits`](Self::server_limits)) is refused with
    /// [`Error::TooLarge`] before a byte of it is sent.
    pub async fn upload(&self, family: FamilyId, envelope: &[u8]) -> Result<Uploaded, Error> {
        self.upload_observed(family, envelope, None).await
    }

    /// As [`upload`](Self::upload), calling `sent` with the bytes of the envelope handed to
    /// the connection so far (a progress bar; it starts again at 0 on a retry).
    pub async fn upload_with_progress(
        &self,
        family: FamilyId,
        envelope: &[u8],
        sent: SentBytes,
    ) -> Result<Uploaded, Error> {
        self.upload_observed(family, envelope, Some(sent)).await
    }

    async fn upload_observed(
        &self,
        family: FamilyId,
        envelope: &[u8],
        sent: Option<SentBytes>,
    ) -> Result<Uploaded, Error> {
        let id = EnvelopeId::of(envelope);
        let size = envelope.len() as u64;
        let limit = self.server_limits().await?.max_body_bytes;
        if size > limit {
            return Err(Error::TooLarge { size, limit });
        }
        let a = self
            .send_counting(
                Endpoint::UploadEnvelope,
                &api::envelopes_path(family),
                None,
                envelope,
                Idempotent::Yes,
                sent,
            )
            .await?
            .0;
        expect(&a, &[StatusCode::CREATED, StatusCode::OK]).map_err(|e| match e {
            Error::Status {
                kind: Some(ProblemKind::TooLarge),
                limit: Some(limit),
                ..
            } => Error::TooLarge { size, limit },
            e => e,
        })?;
        let created: EnvelopeCreated = self.json(&a)?;
        if created.id != id || created.size != envelope.len() as u64 {
            return Err(Error::Integrity("the server stored other bytes"));
        }
        Ok(Uploaded {
            id,
            created: a.status == StatusCode::CREATED,
        })
    }

    /// `GET …/envelopes?cursor=&limit=`: one page, oldest first. `limit` is capped at
    /// [`MAX_PAGE`]; `cursor` is a previous page's `next_cursor`.
    pub async fn list(
        &self,
        family: FamilyId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<EnvelopePage, Error> {
        let query = page_query(cursor, limit);
        let a = self
            .send(
                Endpoint::ListEnvelopes,
                &api::envelopes_path(family),
                query.as_deref(),
                &[],
                Idempotent::Yes,
            )
            .await?;
        expect(&a, &[StatusCode::OK])?;
        self.json(&a)
    }

    /// `GET …/envelopes/{id}`: the envelope's bytes, whose SHA-256 must be `id`. (Opening it,
    /// with the sender checked against the verified roster, is `Roster::open`.)
    pub async fn download(&self, family: FamilyId, id: &EnvelopeId) -> Result<Vec<u8>, Error> {
        let a = self
            .send(
                Endpoint::GetEnvelope,
                &api::envelope_path(family, id),
                None,
                &[],
                Idempotent::Yes,
            )
            .await?;
        expect(&a, &[StatusCode::OK])?;
        if EnvelopeId::of(&a.body) != *id {
            return Err(Error::Integrity("downloaded bytes do not hash to the id"));
        }
        Ok(a.body)
    }

    /// `GET …/envelopes/{id}`, streamed: hands the envelope to `sink` piece by piece as it
    /// arrives, never holding it whole (the server streams it from its blob store too), and
    /// returns its size once every byte has arrived and the whole hashes to `id`. Until then,
    /// treat what `sink` received as unconfirmed: an [`Error::Integrity`] at the end means the
    /// server sent other bytes. Attempts are retried (transport errors, 408, 429, 5xx) only
    /// until the first piece reaches `sink`; a failure after that is returned, transient, and
    /// the caller starts over. [`download_open`](Self::download_open) feeds an `Opener`.
    pub async fn download_with(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
        mut sink: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let path = api::envelope_path(family, id);
        let mut url = self.base.clone();
        url.set_path(&path);
        let deadline = Instant::now() + self.config.timeout;
        let (mut resp, tries) = self
            .with_retries(&url, self.config.max_attempts, deadline, || async {
                let r = self
                    .start(
                        Endpoint::GetEnvelope.method(),
                        &url,
                        &path,
                        None,
                        &[],
                        true,
                        None,
                    )
                    .await?;
                Ok(if retryable_status(r.status()) {
                    let wait = retry_after(&r);
                    Try::Again(r, wait)
                } else {
                    Try::Done(r)
                })
            })
            .await?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let body = read_bounded(&mut resp, MAX_PROBLEM_BYTES).await;
            return Err(refusal(status, &body));
        }
        let limit = self.config.max_envelope_bytes;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(Error::Integrity("answer larger than its limit"));
        }
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut size = 0u64;
        loop {
            let piece = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Ok(Ok(Some(piece))) => piece,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(self.located(transport(&e), &url, tries)),
                Err(_) => return Err(self.timed_out(&url, tries, self.config.timeout)),
            };
            size += piece.len() as u64;
            if size > limit {
                return Err(Error::Integrity("answer larger than its limit"));
            }
            hash.update(&piece);
            sink(&piece)?;
        }
        if hash.finish().as_ref() != id.as_bytes() {
            return Err(Error::Integrity("downloaded bytes do not hash to the id"));
        }
        Ok(size)
    }

    /// Downloads and opens in one pass ([`download_with`](Self::download_with) into `opener`),
    /// in memory bounded by the opener's segment, not the envelope: each piece of content the
    /// opener has proved the sender's goes to `content` as it is released. `Ok` only if the
    /// bytes hash to `id`, the opener finished (the content is complete and the sender's) and
    /// the envelope names `family`; until then treat the content released as unconfirmed.
    /// Take the opener from the family's roster, [`Roster::opener`] (the rules of
    /// [`Roster::open`]: admitted senders, the re-encryption check, the family).
    pub async fn download_open<P: TrustedSenders, I: Borrow<DeviceIdentity>>(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
        mut opener: Opener<P, I>,
        mut content: impl FnMut(&[u8]),
    ) -> Result<Opened, Error> {
        self.download_with(family, id, |piece| {
            Ok(opener.push_with(piece, &mut content)?)
        })
        .await?;
        let opened = opener.finish()?;
        // As `Roster::open`: an envelope sealed for another family is not this family's, even
        // from a sender the opener admits.
        if opened.family != Some(family) {
            return Err(Error::Integrity("the envelope names another family"));
        }
        Ok(opened)
    }

    /// `DELETE …/envelopes/{id}`: the device's own envelope is erased at once
    /// ([`Deletion::Erased`]); a guardian's deletion of another device's envelope is soft
    /// ([`Deletion::Pending`]: hidden, restorable by any guardian until its `erase_at`, T36).
    /// A retry that finds the envelope gone counts as erased: an earlier attempt erased it.
    /// Beyond the server's daily limit of soft deletions the answer is
    /// [`ProblemKind::DeletionLimit`] (not retried): an [`EnvelopeErasure`] signed by a quorum
    /// ([`erase`](Self::erase)) is the way past it.
    pub async fn delete_envelope(
        &self,
        family: FamilyId,
        id: &EnvelopeId,
    ) -> Result<Deletion, Error> {
        let (a, attempts) = self
            .send_counting(
                Endpoint::DeleteEnvelope,
                &api::envelope_path(family, id),
                None,
                &[],
                Idempotent::Yes,
                None,
            )
            .await?;
        match a.status {
            StatusCode::NO_CONTENT => Ok(Deletion::Erased),
            StatusCode::ACCEPTED => {
                let pending: PendingDeletion = self.json(&a)?;
                if pending.id != *id {
                    return Err(Error::Integrity("the server named another envelope"));
                }
                Ok(Deletion::Pending(pending))
            }
            StatusCode::NOT_FOUND if attempts > 1 => Ok(Deletion::Erased),
            status => Err(refusal(status, &a.body)),
        }
    }

    /// `GET …/deletions?cursor=&limit=` (guardians): one page of the family's pending soft
    /// deletions. `limit` is capped at [`MAX_PAGE`]; `cursor` is a previous page's
    /// `next_cursor`.
    pub async fn deletions(
        &self,
        family: FamilyId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<DeletionPage, Error> {
        let query = page_query(cursor, limit);
        let a = self
            .send(
                Endpoint::ListDeletions,
                &api::deletions_path(family),
                query.as_deref(),
                &[],
                Idempotent::Yes,
            )
            .await?;
        expect(&a, &[StatusCode::OK])?;
        self.json(&a)
    }

    /// `POST …/envelopes/{id}/restore` (guardians): undoes a pending soft deletion. Restoring
    /// an envelope that is not deleted succeeds (idempotent); one already erased is a 404.
    pub async fn restore_envelope(&self, family: FamilyId, id: &EnvelopeId) -> Result<(), Error> {
        let a = self
            .send(
                Endpoint::RestoreEnvelope,
                &api::restore_path(family, id),
                None,
                &[],
                Idempotent::Yes,
            )
            .await?;
        expect(&a, &[StatusCode::NO_CONTENT])
    }

    /// `POST …/erasures` (guardians): erases the envelopes `erasure` names at once, pending
    /// soft deletions included. The statement must be signed by two guardians, or a guardian
    /// and the recovery key, of the current roster (roster.md §5.1): one guardian alone cannot
    /// erase others' envelopes (T36). Idempotent: ids no longer stored are skipped.
    pub async fn erase(&self, erasure: &EnvelopeErasure) -> Result<(), Error> {
        let a = self
            .send(
                Endpoint::EraseEnvelopes,
                &api::erasures_path(erasure.family()),
                None,
                &erasure.encode(),
                Idempotent::Yes,
            )
            .await?;
        expect(&a, &[StatusCode::NO_CONTENT])
    }

    /// `DELETE /v1/families/{family}` (guardians): the family, its rosters and envelopes. The
    /// body is `deletion`, signed by a quorum of the current roster (roster.md §5): one
    /// guardian alone cannot delete a family (T17).
    pub async fn delete_family(&self, deletion: &FamilyDeletion) -> Result<(), Error> {
        self.delete_with(
            Endpoint::DeleteFamily,
            &api::family_path(deletion.family()),
            &deletion.encode(),
        )
        .await
    }

    async fn delete_with(&self, endpoint: Endpoint, path: &str, body: &[u8]) -> Result<(), Error> {
        match self
            .send_counting(endpoint, path, None, body, Idempotent::Yes, None)
            .await?
        {
            (a, _) if a.status == StatusCode::NO_CONTENT => Ok(()),
            (a, attempts) if a.status == StatusCode::NOT_FOUND && attempts > 1 => Ok(()),
            (a, _) => Err(refusal(a.status, &a.body)),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, a: &Answer) -> Result<T, Error> {
        serde_json::from_slice(&a.body).map_err(|_| Error::Malformed("JSON answer"))
    }

    async fn send(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        idempotent: Idempotent,
    ) -> Result<Answer, Error> {
        self.send_counting(endpoint, path, query, body, idempotent, None)
            .await
            .map(|(a, _)| a)
    }

    /// Sends `path` (built by the `api` path builder of `endpoint`) with the endpoint's method,
    /// signed unless the endpoint is public, with retries; returns the final answer (any
    /// status) and the attempts made.
    async fn send_counting(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        idempotent: Idempotent,
        sent: Option<SentBytes>,
    ) -> Result<(Answer, u32), Error> {
        debug_assert_eq!(
            Endpoint::recognize(&endpoint.method(), path).map(|(e, _)| e),
            Some(endpoint),
            "{path} is not a path of {endpoint:?}"
        );
        let (method, signed) = (endpoint.method(), endpoint.access() != Access::Public);
        let mut url = self.base.clone();
        url.set_path(path);
        url.set_query(query);
        let limit = if endpoint == Endpoint::GetEnvelope {
            self.config.max_envelope_bytes
        } else {
            self.config.max_json_bytes
        };
        let attempts = match idempotent {
            Idempotent::Yes => self.config.max_attempts,
            Idempotent::No => 1,
        };
        let deadline = Instant::now() + self.config.timeout;
        self.with_retries(&url, attempts, deadline, || async {
            let (a, retry_after) = self
                .attempt(
                    method.clone(),
                    &url,
                    (path, query),
                    body,
                    signed,
                    limit,
                    sent.clone(),
                )
                .await?;
            Ok(if retryable_status(a.status) && !is_final_refusal(&a) {
                Try::Again(a, retry_after)
            } else {
                Try::Done(a)
            })
        })
        .await
    }

    /// Runs `op` until it is done, up to `attempts` times, before `deadline`: a try gets the
    /// per-try time-out or what remains, whichever is shorter; the wait before another try
    /// must end before the deadline. Returns the last answer (any status) and the tries
    /// made; a transport error names the URL, the tries and the time-out that fired.
    async fn with_retries<T, F, Fut>(
        &self,
        url: &Url,
        attempts: u32,
        deadline: Instant,
        mut op: F,
    ) -> Result<(T, u32), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Try<T>, Error>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let (budget, which) = if self.config.request_timeout < remaining {
                (self.config.request_timeout, self.config.request_timeout)
            } else {
                (remaining, self.config.timeout)
            };
            let outcome = match tokio::time::timeout(budget, op()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(self.timed_out(url, tries, which)),
            };
            let (last, retry_after) = match outcome {
                Ok(Try::Done(t)) => return Ok((t, tries)),
                Ok(Try::Again(t, retry_after)) => (Ok((t, tries)), retry_after),
                Err(e) if e.is_transient() => (Err(self.located(e, url, tries)), None),
                Err(e) => return Err(self.located(e, url, tries)),
            };
            if tries >= attempts {
                return last;
            }
            let wait = self.backoff(tries, retry_after);
            if Instant::now() + wait >= deadline {
                // No time left for another try: the last outcome stands, its time-out being
                // the overall one when it was a transport failure.
                return last.map_err(|e| match e {
                    Error::Transport {
                        cause, url, tries, ..
                    } if cause == "timeout" => Error::Transport {
                        cause,
                        url,
                        tries,
                        timeout: Some(self.config.timeout),
                    },
                    e => e,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// A transport error with the URL (no query) and the tries filled in.
    fn located(&self, e: Error, url: &Url, tries: u32) -> Error {
        match e {
            Error::Transport { cause, timeout, .. } => Error::Transport {
                cause,
                url: shown(url),
                tries,
                // reqwest's own time-out is the connect time-out: the try's is ours.
                timeout: timeout.or((cause == "timeout").then_some(self.config.connect_timeout)),
            },
            e => e,
        }
    }

    fn timed_out(&self, url: &Url, tries: u32, which: Duration) -> Error {
        Error::Transport {
            cause: "timeout",
            url: shown(url),
            tries,
            timeout: Some(which),
        }
    }

    /// Exponential backoff with jitter: uniformly in [d/2, d] for d = initial · 2^(n−1),
    /// capped; a server's `Retry-After` raises the wait (also capped).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .config
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.config.max_backoff);
        let frac = f64::from(random_u32(&mut OsRng)) / f64::from(u32::MAX);
        let jittered = exp.mul_f64(0.5 + 0.5 * frac);
        match retry_after {
            Some(ra) => jittered.max(ra.min(self.config.max_backoff)),
            None => jittered,
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        method: Method,
        url: &Url,
        (path, query): (&str, Option<&str>),
        body: &[u8],
        signed: bool,
        limit: u64,
        sent: Option<SentBytes>,
    ) -> Result<(Answer, Option<Duration>), Error> {
        let mut resp = self
            .start(method, url, path, query, body, signed, sent)
            .await?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        if !status.is_success() {
            // An error answer: problem details, read bounded; what is past the bound is not
            // the client's concern (the connection is dropped with it).
            let body = read_bounded(&mut resp, MAX_PROBLEM_BYTES).await;
            return Ok((Answer { status, body }, retry_after));
        }
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(Error::Integrity("answer larger than its limit"));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e))? {
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(Error::Integrity("answer larger than its limit"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok((Answer { status, body: out }, retry_after))
    }

    /// Signs (afresh) and sends one request; returns the answer with its body unread. With
    /// `sent`, the body goes out in pieces and `sent` hears how much was handed over.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        method: Method,
        url: &Url,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        signed: bool,
        sent: Option<SentBytes>,
    ) -> Result<reqwest::Response, Error> {
        let mut req = self.http.request(method.clone(), url.clone());
        if signed {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|_| Error::Malformed("system clock before 1970"))?
                .as_secs();
            let target = RequestTarget {
                method: method.as_str(),
                authority: &self.authority,
                path,
                query,
            };
            // A fresh nonce for every attempt: a retry is a new request, never a replay.
            let h = sign_request(
                &self.identity,
                &target,
                body,
                now,
                self.config.signature_validity_secs,
                &mut OsRng,
            )?;
            req = req
                .header("content-digest", h.content_digest)
                .header("signature-input", h.signature_input)
                .header("signature", h.signature);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/octet-stream");
            req = match sent {
                None => req.body(body.to_vec()),
                // The length is declared, so the body is not chunked (the server answers an
                // oversized `Content-Length` before reading a byte).
                Some(sent) => req
                    .header("content-length", body.len())
                    .body(reqwest::Body::wrap_stream(observed_pieces(body, sent))),
            };
        }
        req.send().await.map_err(|e| transport(&e))
    }
}

/// Called with the number of a request body's bytes handed to the connection so far.
pub type SentBytes = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// Pieces of a request body handed over to the HTTP stack.
const UPLOAD_PIECE: usize = 64 * 1024;

/// `body` as a stream of [`UPLOAD_PIECE`]-byte pieces; `sent` hears the running total as the
/// connection takes each.
fn observed_pieces(
    body: &[u8],
    sent: SentBytes,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let pieces: Vec<Vec<u8>> = body.chunks(UPLOAD_PIECE).map(<[u8]>::to_vec).collect();
    let mut total = 0u64;
    futures::stream::iter(pieces).map(move |piece| {
        total += piece.len() as u64;
        sent(total);
        Ok(piece)
    })
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn random_u32(rng: &mut impl toyseal_core::CryptoRng) -> u32 {
    let mut r = [0u8; 4];
    rng.fill_bytes(&mut r);
    u32::from_le_bytes(r)
}

fn retryable_status(s: StatusCode) -> bool {
    s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// A refusal with a retryable status that a retry cannot change: the daily soft-deletion
/// limit (a 429 for hours, not seconds).
fn is_final_refusal(a: &Answer) -> bool {
    a.status == StatusCode::TOO_MANY_REQUESTS
        && matches!(
            refusal(a.status, &a.body),
            Error::Status {
                kind: Some(ProblemKind::DeletionLimit),
                ..
            }
        )
}

/// `cursor=&limit=` of a page request (limit capped at [`MAX_PAGE`]), if either is given.
fn page_query(cursor: Option<&str>, limit: Option<u32>) -> Option<String> {
    let mut query = Vec::new();
    if let Some(c) = cursor {
        query.push(format!("cursor={}", percent_encode(c)));
    }
    if let Some(l) = limit {
        query.push(format!("limit={}", l.clamp(1, MAX_PAGE)));
    }
    (!query.is_empty()).then(|| query.join("&"))
}

fn expect(a: &Answer, ok: &[StatusCode]) -> Result<(), Error> {
    if ok.contains(&a.status) {
        Ok(())
    } else {
        Err(refusal(a.status, &a.body))
    }
}

/// Reads at most `max` bytes of an answer's body; a failure to read ends it (what was read
/// stands: an error answer is explained by what arrived, or by its status alone).
async fn read_bounded(resp: &mut reqwest::Response, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(max - out.len());
                if let Some(part) = chunk.get(..take) {
                    out.extend_from_slice(part);
                }
            }
            _ => break,
        }
    }
    out
}

/// The members of a problem the client uses; unknown members are ignored (RFC 9457 §3.2:
/// a client must ignore extensions it does not know).
#[derive(serde::Deserialize)]
struct ProblemView {
    #[serde(rename = "type")]
    kind: Option<String>,
    detail: Option<String>,
    limit: Option<u64>,
    removed_at_version: Option<u64>,
}

/// The error for a refused request: [`Error::Status`] with what a problem-details body says,
/// sanitized; any other body gives the status alone.
fn refusal(status: StatusCode, body: &[u8]) -> Error {
    let problem = serde_json::from_slice::<ProblemView>(body).ok();
    let kind = problem
        .as_ref()
        .and_then(|p| p.kind.as_deref())
        .and_then(|t| t.strip_prefix(api::PROBLEM_TYPE_PREFIX))
        .and_then(|slug| ProblemKind::ALL.into_iter().find(|k| k.slug() == slug));
    let (detail, limit, removed_at_version) = match problem {
        Some(p) => (
            p.detail.map(|d| sanitize(&d)).filter(|d| !d.is_empty()),
            p.limit,
            p.removed_at_version
                .filter(|_| kind == Some(ProblemKind::Removed)),
        ),
        None => (None, None, None),
    };
    Error::Status {
        status: status.as_u16(),
        kind,
        detail,
        limit,
        removed_at_version,
    }
}

/// The server's text made safe to show: control characters (terminal escapes, new lines) and
/// invisible or bidi-formatting characters replaced by a space, runs of spaces folded, and the
/// length capped at [`crate::MAX_DETAIL_CHARS`] characters.
fn sanitize(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for c in text.chars() {
        let c = if c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
        {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if chars == crate::MAX_DETAIL_CHARS {
            out.push('…');
            break;
        }
        out.push(c);
        chars += 1;
    }
    out.trim_end().to_owned()
}

/// A URL as errors show it: scheme, host, port and path; no query, no credentials.
fn shown(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(p) => format!("{}://{host}:{p}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// Keeps only the kind of a reqwest error (its text may carry the URL with its query); the
/// caller adds the URL as [`shown`] gives it, and the tries.
fn transport(e: &reqwest::Error) -> Error {
    Error::Transport {
        cause: if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else if e.is_body() || e.is_decode() {
            "reading the answer"
        } else {
            "request"
        },
        url: String::new(),
        tries: 0,
        timeout: None,
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the signed query is
/// exactly the one sent.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(percent_encode("a b&c=d/"), "a%20b%26c%3Dd%2F");
    }

    #[test]
    fn base_url_rules() {
        let id = || DeviceIdentity::generate(toyseal_core::Role::Toy, &mut OsRng);
        assert!(Client::new("https://api.example", id()).is_ok());
        let c = Client::new("http://127.0.0.1:8080/", id()).unwrap_or_else(|_| unreachable!());
        assert_eq!(c.authority, "127.0.0.1:8080");
        let c = Client::new("https://API.example:443", id()).unwrap_or_else(|_| unreachable!());
        assert_eq!(c.authority, "api.example");
        for bad in [
            "ftp://x",
            "https://x/prefix",
            "https://x/?q=1",
            "https://u:p@x",
            "not a url",
        ] {
            assert!(Client::new(bad, id()).is_err(), "{bad}");
        }
    }

    fn problem(kind: ProblemKind, detail: &str) -> Vec<u8> {
        serde_json::to_vec(&api::Problem {
            kind: kind.type_uri(),
            title: kind.title().into(),
            status: 400,
            detail: detail.into(),
            request_id: None,
            limit: Some(7),
            removed_at_version: Some(4),
        })
        .unwrap()
    }

    #[test]
    fn problem_details_are_read_into_the_status_error() {
        let e = refusal(
            StatusCode::BAD_REQUEST,
            &problem(ProblemKind::BadRequest, "quorum not met: 1 of 2"),
        );
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.problem_kind(), Some(ProblemKind::BadRequest));
        assert_eq!(e.detail(), Some("quorum not met: 1 of 2"));
        assert!(e.to_string().contains("quorum not met: 1 of 2"), "{e}");
        // removed_at_version is kept only for the `removed` kind.
        assert!(matches!(
            e,
            Error::Status {
                limit: Some(7),
                removed_at_version: None,
                ..
            }
        ));
        let e = refusal(
            StatusCode::UNAUTHORIZED,
            &problem(ProblemKind::Removed, "removed"),
        );
        assert!(matches!(
            e,
            Error::Status {
                kind: Some(ProblemKind::Removed),
                removed_at_version: Some(4),
                ..
            }
        ));
        assert!(e.to_string().contains("removed at roster version 4"), "{e}");
    }

    #[test]
    fn non_problem_bodies_give_the_status_alone() {
        for body in [
            &b""[..],
            b"<html>502 Bad Gateway</html>",
            b"{\"detail\": 5}",
            b"\xff\xfe",
        ] {
            let e = refusal(StatusCode::BAD_GATEWAY, body);
            assert_eq!(e.status(), Some(502));
            assert_eq!(e.detail(), None);
            assert_eq!(e.problem_kind(), None);
            assert_eq!(e.to_string(), "the server answered HTTP 502");
        }
        // An unknown type is no kind, but its detail is still shown.
        let e = refusal(
            StatusCode::CONFLICT,
            br#"{"type": "about:blank", "detail": "busy", "extra": [1]}"#,
        );
        assert_eq!((e.problem_kind(), e.detail()), (None, Some("busy")));
    }

    #[test]
    fn hostile_details_are_stripped_and_capped() {
        let hostile = "\u{1b}[2J\u{1b}]0;pwned\u{7}ok\r\nFAKE: line\u{202E}txt.exe\u{0}";
        let e = refusal(
            StatusCode::BAD_REQUEST,
            &problem(ProblemKind::BadRequest, hostile),
        );
        let d = e.detail().unwrap();
        assert!(
            !d.chars().any(|c| c.is_control() || c == '\u{202E}'),
            "{d:?}"
        );
        assert!(d.contains("ok") && d.contains("FAKE: line"), "{d:?}");
        let long = "x".repeat(10_000);
        let e = refusal(
            StatusCode::BAD_REQUEST,
            &problem(ProblemKind::BadRequest, &long),
        );
        let d = e.detail().unwrap();
        assert_eq!(d.chars().count(), crate::MAX_DETAIL_CHARS + 1);
        assert!(d.ends_with('…'));
    }

    #[test]
    fn shown_urls_carry_no_query_or_credentials() {
        let u = Url::parse("http://127.0.0.1:8080/v1/families/ab/envelopes?cursor=s3cret").unwrap();
        assert_eq!(shown(&u), "http://127.0.0.1:8080/v1/families/ab/envelopes");
        let u = Url::parse("https://toys.example/v1/health").unwrap();
        assert_eq!(shown(&u), "https://toys.example:443/v1/health");
    }

    #[test]
    fn backoff_grows_is_capped_and_respects_retry_after() {
        let c = Client::new(
            "http://127.0.0.1:1",
            DeviceIdentity::generate(toyseal_core::Role::Toy, &mut OsRng),
        )
        .unwrap_or_else(|_| unreachable!());
        let b1 = c.backoff(1, None);
        assert!(b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(200));
        let b4 = c.backoff(4, None);
        assert!(b4 >= Duration::from_millis(800) && b4 <= Duration::from_millis(1600));
        assert!(c.backoff(30, None) <= Duration::from_secs(10));
        assert!(c.backoff(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert!(c.backoff(1, Some(Duration::from_secs(3600))) <= Duration::from_secs(10));
    }
}
