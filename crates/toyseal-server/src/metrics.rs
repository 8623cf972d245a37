//! Prometheus metrics of one server instance (server README, "Metrics"): requests by route and
//! status, their latency, refusals by problem kind, accepted upload bytes and downloads in
//! progress. Each [`crate::Server`] keeps its own recorder (no process-global state, so two
//! servers in one process count apart); the text format is served by
//! [`crate::Server::metrics_router`] on the opt-in `--metrics-listen` address. Labels are
//! route templates, status codes and problem slugs only: never a family, device or envelope id.

use metrics::{Counter, Gauge, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::time::Duration;
use toyseal_cloud::api::ProblemKind;

const REQUESTS: &str = "toyseal_requests_total";
const DURATION: &str = "toyseal_request_duration_seconds";
const REFUSALS: &str = "toyseal_refusals_total";
const UPLOAD_BYTES: &str = "toyseal_upload_bytes_total";
const DOWNLOADS: &str = "toyseal_downloads_in_progress";

/// Latency buckets in seconds (a request is bounded by the request timeout).
const DURATION_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The recorder and its renderer.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

/// A download in progress: the gauge goes down when the response body is dropped (sent, or
/// the connection cut).
pub(crate) struct LiveDownload(Gauge);

impl Metrics {
    pub(crate) fn new() -> Self {
        // Buckets for one matcher fail only when empty (they are not); were they refused, the
        // latency would be a summary, still a valid exposition.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), &DURATION_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(name.into(), unit, help.into());
        };
        describe(
            REQUESTS,
            None,
            "Requests answered, by route template and status.",
        );
        describe(REFUSALS, None, "Error answers, by problem kind (slug).");
        describe(
            UPLOAD_BYTES,
            Some(Unit::Bytes),
            "Bytes of envelope uploads answered 201 or 200.",
        );
        recorder.describe_histogram(
            DURATION.into(),
            Some(Unit::Seconds),
            "Time from request head to response head, by route template.".into(),
        );
        recorder.describe_gauge(
            DOWNLOADS.into(),
            None,
            "Envelope downloads whose body is being sent.".into(),
        );
        Self { recorder, handle }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    /// One answered request.
    pub(crate) fn request(&self, route: &str, status: u16) {
        self.counter(
            REQUESTS,
            vec![
                Label::new("route", route.to_owned()),
                Label::new("status", status.to_string()),
            ],
        )
        .increment(1);
    }

    /// The latency of one answered request.
    pub(crate) fn latency(&self, route: &str, took: Duration) {
        self.recorder
            .register_histogram(
                &Key::from_parts(DURATION, vec![Label::new("route", route.to_owned())]),
                &METADATA,
            )
            .record(took.as_secs_f64());
    }

    /// One error answer of `kind`.
    pub(crate) fn refusal(&self, kind: ProblemKind) {
        self.counter(REFUSALS, vec![Label::new("kind", kind.slug())])
            .increment(1);
    }

    /// An accepted upload of `bytes`.
    pub(crate) fn upload(&self, bytes: u64) {
        self.counter(UPLOAD_BYTES, Vec::new()).increment(bytes);
    }

    /// A download starts; it ends when the guard is dropped.
    pub(crate) fn download(&self) -> LiveDownload {
        let g = self
            .recorder
            .register_gauge(&Key::from_name(DOWNLOADS), &METADATA);
        g.increment(1.0);
        LiveDownload(g)
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        self.handle.render()
    }
}

impl Drop for LiveDownload {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
