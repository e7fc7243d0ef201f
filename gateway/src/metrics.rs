//! Metrics in Prometheus text format at `/metrics`, served on an address of
//! its own (`metrics_listen`, default `127.0.0.1:9464`), never on the public
//! listener. The code records through the `metrics` facade (the core's
//! outbound log and tenancy too); this module installs the process's one
//! Prometheus recorder, describes every series, serves the scrape, and
//! counts HTTP requests by route and status.
//!
//! Cardinality is bounded: labels are route templates (`/v1/transactions`,
//! `/admin/v1/users/{id}`, or `unmatched`), methods, status codes, connector
//! ids, and fixed words; never a firm, user, client or address.
//!
//! | series | labels | what |
//! |---|---|---|
//! | `scopegate_http_requests_total` | route, method, status | requests answered (`status="cancelled"`: no answer from the handler: the request timeout answered 503, or the client left) |
//! | `scopegate_http_request_duration_seconds` | route, method | latency histogram |
//! | `scopegate_outbound_records_total` | kind, direction, connector | outbound-log records committed |
//! | `scopegate_outbound_commit_batch_size` | - | records per log transaction (histogram) |
//! | `scopegate_outbound_commit_seconds` | - | log commit latency (histogram) |
//! | `scopegate_outbound_commit_failures_total` | - | log transactions that failed (nothing in them was sent) |
//! | `scopegate_tokens_issued_total` | connector | access tokens issued |
//! | `scopegate_auth_failures_total` | endpoint, reason | failed client authentications and logins |
//! | `scopegate_throttled_total` | limit, scope | refusals by a limit, decided `local`ly, `shared` (Redis), `unavailable` (fail closed); `fallback_local`: Redis unavailable, API limited per process |
//! | `scopegate_redis_errors_total` | check | shared-limit checks Redis did not answer |
//! | `scopegate_tripwire_alerts_total` | - | tripwire alerts raised (all kinds) |
//! | `scopegate_security_events_total` | kind | security events by kind (`decoy_credential`, `out_of_scope`, `forged_id`) |
//! | `scopegate_alert_webhook_deliveries_total` | outcome | alert webhook deliveries (`delivered`, `given_up`) |
//! | `scopegate_alert_webhook_dropped_total` | - | alerts not queued for the webhook (queue full) |
//! | `scopegate_firm_pool_hits_total`, `_opens_total`, `_evictions_total` | - | firm database pool cache |
//! | `scopegate_firm_pools_open` | - | firm pools open now (gauge) |
//! | `scopegate_connector_calls_total` | connector, method, status | calls to third-party APIs made for a connector (`AuditedSender::call`; status 0: no answer), e.g. Google Calendar's |
//! | `scopegate_connector_sync_lag_seconds` | connector | per sync pass of a connector's account that sent changes: from the start of that account's previous pass (when the changes were not yet there) to this pass's end, an upper bound on how long a change waited (histogram) |
//! | `scopegate_runtime_alive_tasks` | - | tokio tasks alive in the gateway's runtime now (gauge, read at scrape time; a steady climb under steady load is a task leak) |

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, seconds.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Connector sync lag, seconds (intervals are tens of seconds).
const LAG: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
];
/// Records per outbound-log transaction (the writer takes at most 512).
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Installs the Prometheus recorder once per process and returns its handle
/// (`None` if another recorder was installed first, e.g. by an embedding program).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("scopegate_outbound_commit_batch_size".into()),
                        BATCH,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("scopegate_connector_sync_lag_seconds".into()),
                        LAG,
                    )
                })
                .expect("non-empty buckets")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics is not served");
                return None;
            }
            describe();
            Some(handle)
        })
        .clone()
}

/// HELP lines for every series, and the ones that must exist before their first event.
fn describe() {
    describe_counter!(
        "scopegate_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "scopegate_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    describe_counter!(
        "scopegate_outbound_records_total",
        "Outbound-log records committed, by kind (send, result), direction and connector"
    );
    describe_histogram!(
        "scopegate_outbound_commit_batch_size",
        Unit::Count,
        "Records per outbound-log transaction (group commit)"
    );
    describe_histogram!(
        "scopegate_outbound_commit_seconds",
        Unit::Seconds,
        "Outbound-log transaction commit latency"
    );
    describe_counter!(
        "scopegate_outbound_commit_failures_total",
        "Outbound-log transactions that failed; nothing in them was sent"
    );
    describe_counter!(
        "scopegate_tokens_issued_total",
        "Access tokens issued, by connector"
    );
    describe_counter!(
        "scopegate_auth_failures_total",
        "Failed client authentications (oauth_token) and settings logins (settings_login), by reason"
    );
    describe_counter!(
        "scopegate_throttled_total",
        "Requests refused by a limit, by limit and where it was decided (local, shared, unavailable), and shared API checks answered per process (fallback_local)"
    );
    describe_counter!(
        "scopegate_redis_errors_total",
        "Shared-limit checks Redis did not answer in time"
    );
    describe_counter!(
        "scopegate_tripwire_alerts_total",
        "Tripwire alerts raised, all kinds"
    );
    describe_counter!(
        "scopegate_security_events_total",
        "Security events raised, by kind (decoy_credential, out_of_scope, forged_id)"
    );
    describe_counter!(
        "scopegate_alert_webhook_deliveries_total",
        "Alert webhook deliveries, by outcome (delivered, given_up after the retries)"
    );
    describe_counter!(
        "scopegate_alert_webhook_dropped_total",
        "Alerts not handed to the webhook because its queue was full (the event is still stored)"
    );
    describe_counter!(
        "scopegate_firm_pool_hits_total",
        "Firm database lookups answered by an open pool"
    );
    describe_counter!(
        "scopegate_firm_pool_opens_total",
        "Firm database pools opened"
    );
    describe_counter!(
        "scopegate_firm_pool_evictions_total",
        "Firm database pools evicted from the bounded cache"
    );
    describe_gauge!("scopegate_firm_pools_open", "Firm database pools open now");
    describe_gauge!(
        "scopegate_runtime_alive_tasks",
        "Tokio tasks alive in the gateway's runtime, read at scrape time"
    );
    describe_counter!(
        "scopegate_connector_calls_total",
        "Calls to a third party's API made for a connector, by method and status answered (0: no answer)"
    );
    describe_histogram!(
        "scopegate_connector_sync_lag_seconds",
        Unit::Seconds,
        "Per sync pass of a connector's account that sent changes: time since that account's previous pass started, to this pass's end (an upper bound on a change's wait)"
    );
    // Present at 0 from the start, so alerts on them work before the first event.
    for name in [
        "scopegate_tripwire_alerts_total",
        "scopegate_outbound_commit_failures_total",
        "scopegate_firm_pool_hits_total",
        "scopegate_firm_pool_opens_total",
        "scopegate_firm_pool_evictions_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    for kind in crate::security::EventKind::ALL {
        metrics::counter!("scopegate_security_events_total", "kind" => kind.as_str()).absolute(0);
    }
}

/// The metrics listener's router: `GET /metrics` and nothing else.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                record_runtime_gauges();
                handle.run_upkeep();
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// Gauges read from the tokio runtime serving the scrape (the gateway's one
/// runtime), updated just before each render.
fn record_runtime_gauges() {
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    metrics::gauge!("scopegate_runtime_alive_tasks").set(alive as f64);
}

/// Serves `/metrics` on `listener` until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(handle))
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

/// A bounded method label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One request being answered; counted when answered, or as `cancelled` if
/// dropped before (request timeout, client gone).
struct InFlight {
    route: String,
    method: &'static str,
    started: Instant,
    status: Option<StatusCode>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let status = match self.status {
            Some(status) => status.as_str().to_string(),
            None => "cancelled".to_string(),
        };
        metrics::counter!(
            "scopegate_http_requests_total",
            "route" => self.route.clone(),
            "method" => self.method,
            "status" => status
        )
        .increment(1);
        metrics::histogram!(
            "scopegate_http_request_duration_seconds",
            "route" => std::mem::take(&mut self.route),
            "method" => self.method
        )
        .record(self.started.elapsed());
    }
}

/// Middleware: counts every request by route template, method and status, with its latency.
pub async fn track_request(request: Request, next: Next) -> Response {
    let mut in_flight = InFlight {
        route: request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "unmatched".to_string()),
        method: method_label(request.method()),
        started: Instant::now(),
        status: None,
    };
    let response = next.run(request).await;
    in_flight.status = Some(response.status());
    response
}
