//! Fault injection for the client tests: a tower layer (axum middleware) around the real
//! router that, for the requests it is armed for, refuses them with a status, drops the
//! connection, delays them, or lets the server act and then loses or replaces its answer, or
//! rewrites the body the server sent (a lying server). It also records what the server itself
//! answered, so a test can count stores (201) and re-stores (200).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to one request.
#[derive(Clone)]
pub enum Fault {
    /// Answered with this status (and `Retry-After: 0`) before the server sees it: an
    /// overloaded proxy.
    Refuse(u16),
    /// The server handles it (nonce recorded, envelope stored), then the client gets this
    /// status instead of the server's answer: a retry that reused the signature would be a
    /// replay (401).
    ReplaceAnswer(u16),
    /// The connection closes before the server sees the request.
    DropConnection,
    /// The server handles it, then the connection closes: the answer is lost.
    LoseAnswer,
    /// Waits this long, then passes the request on.
    Delay(Duration),
    /// The server handles it; its answer body is rewritten.
    Rewrite(Arc<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>),
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::Refuse(_) => "refuse",
            Fault::ReplaceAnswer(_) => "replace-answer",
            Fault::DropConnection => "drop-connection",
            Fault::LoseAnswer => "lose-answer",
            Fault::Delay(_) => "delay",
            Fault::Rewrite(_) => "rewrite",
        }
    }
}

/// Which requests an armed fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every request.
    Any,
    /// `POST …/envelopes`.
    Upload,
    /// `GET …/envelopes` (a listing).
    List,
    /// `GET …/envelopes/{id}`.
    Download,
    /// `GET …/roster`.
    RosterFetch,
    /// `POST …/roster`.
    RosterUpdate,
}

impl Target {
    fn matches(self, method: &Method, path: &str) -> bool {
        let download = path.contains("/envelopes/");
        match self {
            Target::Any => true,
            Target::Upload => method == Method::POST && path.ends_with("/envelopes"),
            Target::List => method == Method::GET && path.ends_with("/envelopes"),
            Target::Download => method == Method::GET && download,
            Target::RosterFetch => method == Method::GET && path.ends_with("/roster"),
            Target::RosterUpdate => method == Method::POST && path.ends_with("/roster"),
        }
    }
}

/// One request as the layer saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    /// The fault applied, if any.
    pub fault: Option<&'static str>,
    /// What the real server answered (`None`: it never saw the request).
    pub server_status: Option<u16>,
}

/// Random faults on a share of requests (seeded, reproducible).
#[derive(Clone, Copy, Debug)]
struct Chaos {
    state: u64,
    percent: u64,
}

impl Chaos {
    fn next(&mut self) -> u64 {
        // xorshift64*: enough to pick faults reproducibly.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick(&mut self) -> Option<Fault> {
        if self.next() % 100 >= self.percent {
            return None;
        }
        Some(match self.next() % 7 {
            0 => Fault::Refuse(503),
            1 => Fault::Refuse(500),
            2 => Fault::ReplaceAnswer(503),
            3 => Fault::ReplaceAnswer(502),
            4 => Fault::DropConnection,
            5 => Fault::LoseAnswer,
            _ => Fault::Delay(Duration::from_millis(20 + self.next() % 200)),
        })
    }
}

#[derive(Default)]
struct Inner {
    armed: Vec<(Target, Fault)>,
    chaos: Option<Chaos>,
    seen: Vec<Seen>,
}

/// The shared switchboard of the fault layer (cheap to clone).
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<Inner>>,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `faults`, applied in order to the next requests matching `target`.
    pub fn arm(&self, target: Target, faults: impl IntoIterator<Item = Fault>) {
        let mut i = self.inner.lock().unwrap();
        i.armed.extend(faults.into_iter().map(|f| (target, f)));
    }

    /// From now on about `percent` % of the requests not hit by an armed fault get a random
    /// one (5xx before or after the server acted, dropped connections, lost answers, delays).
    pub fn chaos(&self, seed: u64, percent: u64) {
        self.inner.lock().unwrap().chaos = Some(Chaos {
            state: seed | 1,
            percent,
        });
    }

    /// Stops all faults (armed and random).
    pub fn calm(&self) {
        let mut i = self.inner.lock().unwrap();
        i.armed.clear();
        i.chaos = None;
    }

    /// Armed faults not yet used.
    pub fn pending(&self) -> usize {
        self.inner.lock().unwrap().armed.len()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Requests matching `target` that the server answered with `status`.
    pub fn server_answered(&self, target: Target, status: u16) -> usize {
        self.seen()
            .iter()
            .filter(|s| target.matches(&s.method, &s.path) && s.server_status == Some(status))
            .count()
    }

    /// Requests matching `target` that reached the layer.
    pub fn requests(&self, target: Target) -> usize {
        self.seen()
            .iter()
            .filter(|s| target.matches(&s.method, &s.path))
            .count()
    }

    /// Wraps the real router in this layer.
    pub fn around(&self, router: axum::Router) -> axum::Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), inject))
    }

    fn take(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut i = self.inner.lock().unwrap();
        if path == "/v1/health" {
            return None;
        }
        if let Some(pos) = i.armed.iter().position(|(t, _)| t.matches(method, path)) {
            return Some(i.armed.remove(pos).1);
        }
        i.chaos.as_mut().and_then(Chaos::pick)
    }

    fn record(
        &self,
        method: Method,
        path: String,
        fault: Option<&'static str>,
        status: Option<u16>,
    ) {
        self.inner.lock().unwrap().seen.push(Seen {
            method,
            path,
            fault,
            server_status: status,
        });
    }

    /// Requests matching `target` whose handling was cancelled (the client went away and
    /// hyper dropped the request's future): the server may or may not have acted.
    pub fn cancelled(&self, target: Target) -> usize {
        self.seen()
            .iter()
            .filter(|s| target.matches(&s.method, &s.path) && s.fault == Some(CANCELLED))
            .count()
    }
}

/// The `fault` of a request whose future was dropped before it finished.
pub const CANCELLED: &str = "cancelled";

/// Records a request whose future is dropped before it finished.
struct Unfinished {
    faults: Faults,
    request: Option<(Method, String)>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some((method, path)) = self.request.take() {
            self.faults.record(method, path, Some(CANCELLED), None);
        }
    }
}

/// A response whose body fails at once: hyper closes the connection, the client sees a
/// transport error.
fn broken_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("fault injection: connection dropped"))
    });
    Body::from_stream(failing).into_response()
}

fn status_only(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, [("retry-after", "0")], "").into_response()
}

async fn pass_on(next: Next, req: Request) -> (Response, Option<u16>) {
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    (resp, Some(status))
}

/// Lets the server finish (a streamed body too) and returns its body.
async fn drain(resp: Response) -> Bytes {
    axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default()
}

async fn inject(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let fault = faults.take(&method, &path);
    let mut unfinished = Unfinished {
        faults: faults.clone(),
        request: Some((method.clone(), path.clone())),
    };
    let (answer, server_status) = match &fault {
        None => pass_on(next, req).await,
        Some(Fault::Refuse(code)) => (status_only(*code), None),
        Some(Fault::DropConnection) => (broken_connection(), None),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(*d).await;
            pass_on(next, req).await
        }
        Some(Fault::ReplaceAnswer(code)) => {
            let (resp, status) = pass_on(next, req).await;
            drain(resp).await;
            (status_only(*code), status)
        }
        Some(Fault::LoseAnswer) => {
            let (resp, status) = pass_on(next, req).await;
            drain(resp).await;
            (broken_connection(), status)
        }
        Some(Fault::Rewrite(f)) => {
            let (resp, status) = pass_on(next, req).await;
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            (
                Response::from_parts(parts, Body::from(f(bytes.to_vec()))),
                status,
            )
        }
    };
    unfinished.request = None;
    faults.record(method, path, fault.as_ref().map(Fault::name), server_status);
    answer
}
