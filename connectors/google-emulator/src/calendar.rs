//! Calendar API v3 `events` as Google answers it: bearer-token checks (401
//! `authError`), client-chosen ids (base32hex, 5-1024 characters; a reused id
//! answers 409 `duplicate`), deleted events kept as `cancelled` (a second
//! delete answers 410 `deleted`), usage quotas when configured (403
//! `userRateLimitExceeded` / `rateLimitExceeded`), and injected latency, 429/503 faults, slow
//! answers and per-account faults (never answering; 429 with a long
//! `Retry-After`; any 5xx; a trickled body; an oversized body; a redirect).

// Checks return the finished error response Google would send; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use crate::quota::Exceeded;
use crate::{now_ms, AccountFault, Emulator, EmulatorConfig, StoredEvent};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{json, Map, Value};

/// Fields a client may set on an event (the rest are read-only or unsupported here).
const WRITABLE: &[&str] = &[
    "id",
    "summary",
    "description",
    "start",
    "end",
    "location",
    "attendees",
    "status",
    "transparency",
    "visibility",
    "colorId",
    "reminders",
    "extendedProperties",
    "recurrence",
];

fn google_error(status: StatusCode, reason: &str, message: &str) -> Response {
    let status_text = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        410 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "UNAVAILABLE",
    };
    let domain = match reason {
        "rateLimitExceeded" | "userRateLimitExceeded" => "usageLimits",
        _ => "global",
    };
    let mut error = json!({ "domain": domain, "reason": reason, "message": message });
    if status == StatusCode::UNAUTHORIZED {
        error["location"] = json!("Authorization");
        error["locationType"] = json!("header");
    }
    let body = json!({ "error": { "errors": [error], "code": status.as_u16(), "message": message, "status": status_text } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// Runs one API call: latency, authentication, fault injection, then `handle`; records it.
async fn api(
    emulator: &Emulator,
    method: Method,
    path: String,
    headers: &HeaderMap,
    body: &Bytes,
    handle: impl FnOnce(&Emulator, &str) -> Response,
) -> Response {
    let config = emulator.config();
    if config.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(config.latency_ms)).await;
    }
    let admitted = authenticate(emulator, headers)
        .and_then(|account| within_quota(emulator, &config, account));
    let response = match admitted {
        Err(r) => r,
        Ok(account) => {
            let roll: f64 = rand::thread_rng().gen();
            if let Some(fault) = config.account_faults.get(&account) {
                match fault {
                    AccountFault::Hang => {
                        emulator.record(
                            "api",
                            method.as_str(),
                            &path,
                            0,
                            &String::from_utf8_lossy(body),
                        );
                        // Never answers; the task ends when the client gives up.
                        std::future::pending::<()>().await;
                        unreachable!("a pending future never completes");
                    }
                    AccountFault::RateLimited { retry_after_secs } => {
                        let mut r = google_error(
                            StatusCode::TOO_MANY_REQUESTS,
                            "rateLimitExceeded",
                            "Rate Limit Exceeded",
                        );
                        r.headers_mut().insert(
                            header::RETRY_AFTER,
                            retry_after_secs.to_string().parse().expect("header"),
                        );
                        r
                    }
                    AccountFault::ServerError { status } => google_error(
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        "backendError",
                        "Backend Error",
                    ),
                    AccountFault::SlowBody { interval_ms } => {
                        let answer = handle(emulator, &account);
                        trickled(answer, std::time::Duration::from_millis(*interval_ms)).await
                    }
                    AccountFault::OversizedBody { bytes } => oversized(emulator, &account, *bytes),
                    AccountFault::Redirect { status, location } => (
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::FOUND),
                        [(header::LOCATION, location.as_str())],
                    )
                        .into_response(),
                }
            } else if roll < config.fault_rate {
                if roll < config.fault_rate / 2.0 {
                    let mut r = google_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rateLimitExceeded",
                        "Rate Limit Exceeded",
                    );
                    if config.retry_after_secs > 0 {
                        r.headers_mut().insert(
                            header::RETRY_AFTER,
                            config.retry_after_secs.to_string().parse().expect("header"),
                        );
                    }
                    r
                } else {
                    google_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "backendError",
                        "Backend Error",
                    )
                }
            } else if roll < config.fault_rate + config.slow_rate {
                tokio::time::sleep(std::time::Duration::from_millis(config.slow_ms)).await;
                handle(emulator, &account)
            } else {
                handle(emulator, &account)
            }
        }
    };
    emulator.record(
        "api",
        method.as_str(),
        &path,
        response.status().as_u16(),
        &String::from_utf8_lossy(body),
    );
    response
}

/// The same answer, its body sent one byte every `interval`.
async fn trickled(answer: Response, interval: std::time::Duration) -> Response {
    let (parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let stream = futures::stream::unfold(0usize, move |at| {
        let bytes = bytes.clone();
        async move {
            if at >= bytes.len() {
                return None;
            }
            tokio::time::sleep(interval).await;
            Some((Ok::<_, std::io::Error>(bytes.slice(at..at + 1)), at + 1))
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// A 200 with a valid event `total` bytes long, in 64 KiB chunks, counting what is handed over.
fn oversized(emulator: &Emulator, account: &str, total: u64) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let head: &'static [u8] =
        br#"{"kind":"calendar#event","status":"confirmed","summary":"oversized","description":""#;
    let tail: &'static [u8] = br#""}"#;
    let filler = total.saturating_sub((head.len() + tail.len()) as u64);
    let total = filler + (head.len() + tail.len()) as u64;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    emulator.0.world.lock().expect("world").streamed.push((
        account.to_string(),
        total,
        sent.clone(),
    ));
    // State: how much filler is left to send (None: the head is not out yet).
    let stream = futures::stream::unfold(Some(None::<u64>), move |state| {
        let sent = sent.clone();
        async move {
            let chunk = match state? {
                None => (Bytes::from_static(head), Some(Some(filler))),
                Some(0) => (Bytes::from_static(tail), None),
                Some(left) => {
                    let n = left.min(CHUNK);
                    (Bytes::from(vec![b'x'; n as usize]), Some(Some(left - n)))
                }
            };
            sent.fetch_add(chunk.0.len() as u64, std::sync::atomic::Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(chunk.0), chunk.1))
        }
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=UTF-8".to_string(),
            ),
            (header::CONTENT_LENGTH, total.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn authenticate(emulator: &Emulator, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let world = emulator.0.world.lock().expect("world");
    match world.access.get(token) {
        Some(a) if !a.revoked && a.expires_at_ms > now_ms() => Ok(a.account.clone()),
        _ => Err(google_error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Invalid Credentials",
        )),
    }
}

/// The account again when its call is within the quotas (counting it), else Google's 403.
fn within_quota(
    emulator: &Emulator,
    config: &EmulatorConfig,
    account: String,
) -> Result<String, Response> {
    let Some(quotas) = &config.quotas else {
        return Ok(account);
    };
    let mut world = emulator.0.world.lock().expect("world");
    match world
        .quota_windows
        .admit(quotas, &account, std::time::Instant::now())
    {
        Ok(()) => Ok(account),
        Err(Exceeded::User) => Err(google_error(
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
        )),
        Err(Exceeded::Project) => Err(google_error(
            StatusCode::FORBIDDEN,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        )),
    }
}

fn calendar_of(account: &str, calendar: &str) -> Result<String, Response> {
    if calendar == "primary" || calendar == account {
        Ok(account.to_string())
    } else {
        Err(google_error(StatusCode::NOT_FOUND, "notFound", "Not Found"))
    }
}

fn valid_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

fn check_time(event: &Map<String, Value>, field: &str) -> Result<(), Response> {
    let Some(time) = event.get(field).and_then(Value::as_object) else {
        return Err(google_error(
            StatusCode::BAD_REQUEST,
            "required",
            &format!("Missing {field} time."),
        ));
    };
    let date_ok = time
        .get("date")
        .and_then(Value::as_str)
        .map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
    let date_time_ok = time
        .get("dateTime")
        .and_then(Value::as_str)
        .map(|d| chrono::DateTime::parse_from_rfc3339(d).is_ok());
    match (date_ok, date_time_ok) {
        (Some(true), None) | (None, Some(true)) => Ok(()),
        _ => Err(google_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid start time.",
        )),
    }
}

/// Parses and checks a full event body (insert and update).
fn parse_event(body: &Bytes) -> Result<Map<String, Value>, Response> {
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(body) else {
        return Err(google_error(
            StatusCode::BAD_REQUEST,
            "parseError",
            "Parse Error",
        ));
    };
    for key in event.keys() {
        if !WRITABLE.contains(&key.as_str()) {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("Invalid field: {key}"),
            ));
        }
    }
    check_time(&event, "start")?;
    check_time(&event, "end")?;
    Ok(event)
}

fn stored_view(id: &str, account: &str, fields: &Map<String, Value>, cancelled: bool) -> Value {
    let mut event = fields.clone();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    event.insert("kind".into(), json!("calendar#event"));
    event.insert("id".into(), json!(id));
    event.insert(
        "status".into(),
        json!(if cancelled { "cancelled" } else { "confirmed" }),
    );
    event.insert("etag".into(), json!(format!("\"{}\"", now_ms())));
    event.insert(
        "htmlLink".into(),
        json!(format!(
            "https://calendar.emulator.test/event?eid={id}&account={account}"
        )),
    );
    event.insert("updated".into(), json!(now));
    Value::Object(event)
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        value.to_string(),
    )
        .into_response()
}

type Key = (String, String, String);

fn key(account: &str, calendar: &str, id: &str) -> Key {
    (account.to_string(), calendar.to_string(), id.to_string())
}

pub async fn insert(
    State(emulator): State<Emulator>,
    Path(calendar): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/calendar/v3/calendars/{calendar}/events");
    api(
        &emulator.clone(),
        Method::POST,
        path,
        &headers,
        &body.clone(),
        move |emulator, account| {
            let cal = match calendar_of(account, &calendar) {
                Ok(c) => c,
                Err(r) => return r,
            };
            let mut event = match parse_event(&body) {
                Ok(e) => e,
                Err(r) => return r,
            };
            let id = match event.remove("id") {
                Some(Value::String(id)) => {
                    if !valid_id(&id) {
                        return google_error(
                            StatusCode::BAD_REQUEST,
                            "invalid",
                            "Invalid resource id value.",
                        );
                    }
                    id
                }
                Some(_) => {
                    return google_error(
                        StatusCode::BAD_REQUEST,
                        "invalid",
                        "Invalid resource id value.",
                    )
                }
                None => uuid::Uuid::new_v4().simple().to_string(),
            };
            let mut world = emulator.0.world.lock().expect("world");
            let k = key(account, &cal, &id);
            if world.events.contains_key(&k) {
                return google_error(
                    StatusCode::CONFLICT,
                    "duplicate",
                    "The requested identifier already exists.",
                );
            }
            let view = stored_view(&id, account, &event, false);
            world.events.insert(
                k,
                StoredEvent {
                    account: account.to_string(),
                    calendar: cal,
                    event: view.clone(),
                    cancelled: false,
                },
            );
            json_response(StatusCode::OK, &view)
        },
    )
    .await
}

/// Calendars: get. The primary calendar's id is the account's address, as at Google.
pub async fn get_calendar(
    State(emulator): State<Emulator>,
    Path(calendar): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/calendar/v3/calendars/{calendar}");
    api(
        &emulator.clone(),
        Method::GET,
        path,
        &headers,
        &Bytes::new(),
        move |_, account| match calendar_of(account, &calendar) {
            Ok(cal) => json_response(
                StatusCode::OK,
                &serde_json::json!({
                    "kind": "calendar#calendar",
                    "etag": format!("\"{}\"", cal.len()),
                    "id": cal,
                    "summary": cal,
                    "timeZone": "UTC",
                }),
            ),
            Err(r) => r,
        },
    )
    .await
}

pub async fn get_one(
    State(emulator): State<Emulator>,
    Path((calendar, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/calendar/v3/calendars/{calendar}/events/{id}");
    api(
        &emulator.clone(),
        Method::GET,
        path,
        &headers,
        &Bytes::new(),
        move |emulator, account| {
            let cal = match calendar_of(account, &calendar) {
                Ok(c) => c,
                Err(r) => return r,
            };
            let world = emulator.0.world.lock().expect("world");
            match world.events.get(&key(account, &cal, &id)) {
                Some(e) => json_response(StatusCode::OK, &e.event),
                None => google_error(StatusCode::NOT_FOUND, "notFound", "Not Found"),
            }
        },
    )
    .await
}

pub async fn list(
    State(emulator): State<Emulator>,
    Path(calendar): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = format!("/calendar/v3/calendars/{calendar}/events");
    api(
        &emulator.clone(),
        Method::GET,
        path,
        &headers,
        &Bytes::new(),
        move |emulator, account| {
            let cal = match calendar_of(account, &calendar) {
                Ok(c) => c,
                Err(r) => return r,
            };
            let mut show_deleted = false;
            let mut max = 250usize;
            let mut offset = 0usize;
            for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
                match k.as_ref() {
                    "showDeleted" => show_deleted = v == "true",
                    "maxResults" => max = v.parse().unwrap_or(250).clamp(1, 2500),
                    "pageToken" => match v.parse() {
                        Ok(o) => offset = o,
                        Err(_) => {
                            return google_error(
                                StatusCode::BAD_REQUEST,
                                "invalid",
                                "Invalid page token value.",
                            )
                        }
                    },
                    _ => {}
                }
            }
            let world = emulator.0.world.lock().expect("world");
            let all: Vec<&StoredEvent> = world
                .events
                .values()
                .filter(|e| e.account == account && e.calendar == cal)
                .filter(|e| show_deleted || !e.cancelled)
                .collect();
            let items: Vec<Value> = all
                .iter()
                .skip(offset)
                .take(max)
                .map(|e| e.event.clone())
                .collect();
            let mut body = json!({ "kind": "calendar#events", "summary": account, "items": items });
            if offset + max < all.len() {
                body["nextPageToken"] = json!((offset + max).to_string());
            }
            json_response(StatusCode::OK, &body)
        },
    )
    .await
}

fn replace(
    emulator: &Emulator,
    account: &str,
    calendar: &str,
    id: &str,
    body: &Bytes,
    merge: bool,
) -> Response {
    let cal = match calendar_of(account, calendar) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
        return google_error(StatusCode::BAD_REQUEST, "parseError", "Parse Error");
    };
    let mut world = emulator.0.world.lock().expect("world");
    let k = key(account, &cal, id);
    let Some(existing) = world.events.get(&k).cloned() else {
        return google_error(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    let mut fields = if merge {
        let mut base: Map<String, Value> = existing
            .event
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| WRITABLE.contains(&k.as_str()))
            .collect();
        base.extend(patch);
        base
    } else {
        patch
    };
    if fields.get("id").is_some_and(|v| v.as_str() != Some(id)) {
        return google_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid resource id value.",
        );
    }
    fields.remove("id");
    fields.remove("status");
    let body_bytes = Bytes::from(Value::Object(fields.clone()).to_string());
    if let Err(r) = parse_event(&body_bytes) {
        return r;
    }
    let view = stored_view(id, account, &fields, false);
    world.events.insert(
        k,
        StoredEvent {
            account: account.to_string(),
            calendar: cal,
            event: view.clone(),
            cancelled: false,
        },
    );
    json_response(StatusCode::OK, &view)
}

pub async fn update(
    State(emulator): State<Emulator>,
    Path((calendar, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/calendar/v3/calendars/{calendar}/events/{id}");
    api(
        &emulator.clone(),
        Method::PUT,
        path,
        &headers,
        &body.clone(),
        move |emulator, account| replace(emulator, account, &calendar, &id, &body, false),
    )
    .await
}

pub async fn patch(
    State(emulator): State<Emulator>,
    Path((calendar, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/calendar/v3/calendars/{calendar}/events/{id}");
    api(
        &emulator.clone(),
        Method::PATCH,
        path,
        &headers,
        &body.clone(),
        move |emulator, account| replace(emulator, account, &calendar, &id, &body, true),
    )
    .await
}

pub async fn remove(
    State(emulator): State<Emulator>,
    Path((calendar, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/calendar/v3/calendars/{calendar}/events/{id}");
    api(
        &emulator.clone(),
        Method::DELETE,
        path,
        &headers,
        &Bytes::new(),
        move |emulator, account| {
            let cal = match calendar_of(account, &calendar) {
                Ok(c) => c,
                Err(r) => return r,
            };
            let mut world = emulator.0.world.lock().expect("world");
            match world.events.get_mut(&key(account, &cal, &id)) {
                None => google_error(StatusCode::NOT_FOUND, "notFound", "Not Found"),
                Some(e) if e.cancelled => {
                    google_error(StatusCode::GONE, "deleted", "Resource has been deleted")
                }
                Some(e) => {
                    e.cancelled = true;
                    e.event["status"] = json!("cancelled");
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        },
    )
    .await
}
