//! The privacy office in the admin API, for a firm's own owners and admins:
//! the disclosure report (`/admin/v1/privacy/disclosures`, POPIA s23) and the
//! breach scope (`/admin/v1/privacy/breach-scope`, POPIA s22, JSON or CSV).
//! The firm is the session's; a subject or channel of another firm is simply
//! not found in this one. Every parameter the document allows is answered
//! (an unknown client is a report with no records, an empty window one with
//! no calls); anything else is a problem naming the parameter.

use super::Session;
use crate::capabilities::grant_for_session;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::privacy::{self, Channel, Subject};
use crate::recipient_accounts::{account_spells, spells_of};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/privacy/disclosures", get(disclosures))
        .route("/admin/v1/privacy/breach-scope", get(breach_scope))
}

/// The characters an id may have in `subject` and `channel` (ids here are
/// UUIDs, `sg_...` client ids and account addresses).
fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '+')
}

/// One `kind:id` value of a pattern above, or a problem naming `field`.
fn kind_and_id<'a>(
    field: &str,
    value: &'a str,
    kinds: &[&str],
) -> Result<(&'a str, &'a str), Problem> {
    value
        .split_once(':')
        .filter(|(kind, id)| {
            kinds.contains(kind) && (1..=200).contains(&id.len()) && id.chars().all(id_char)
        })
        .ok_or_else(|| {
            let forms: Vec<String> = kinds.iter().map(|k| format!("{k}:<id>")).collect();
            Problem::unprocessable(field, format!("{field} must be {}", forms.join(" or ")))
        })
}

/// The query's parameters, each at most once, none unknown.
pub(super) fn params(
    query: &Option<String>,
    known: &[&str],
) -> Result<Vec<(String, String)>, Problem> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()) {
        if !known.contains(&key.as_ref()) {
            return Err(Problem::bad_request(format!(
                "unknown parameter {key:?}; use {}",
                known.join(", ")
            )));
        }
        if seen.iter().any(|(k, _)| *k == key) {
            return Err(Problem::unprocessable(
                &key,
                format!("{key} is given twice"),
            ));
        }
        seen.push((key.into_owned(), value.into_owned()));
    }
    Ok(seen)
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn time_param(params: &[(String, String)], name: &str) -> Result<Option<i64>, Problem> {
    param(params, name)
        .map(|v| {
            v.parse::<i64>().ok().filter(|ms| *ms >= 0).ok_or_else(|| {
                Problem::unprocessable(name, format!("{name} must be Unix time in milliseconds"))
            })
        })
        .transpose()
}

/// Which third parties received data about a client or a matter of the firm.
#[utoipa::path(get, path = "/admin/v1/privacy/disclosures", tag = "admin",
    params(("subject" = String, Query, pattern = "^(client|matter):[A-Za-z0-9_.@+-]{1,200}$",
            description = "client:<client id> or matter:<matter id>, ids as in the firm's database")),
    responses((status = 200, description = "The report: records about the subject, and one entry per connector grant that received any (fields, first and last time, records, calls)", body = Object),
              (status = 400, description = "A parameter the report does not take"),
              (status = 403, description = "Not an owner or admin"),
              (status = 422, description = "subject missing or malformed")))]
pub async fn disclosures(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Json<privacy::DisclosureReport>, Problem> {
    session.require_manager()?;
    let params = params(&query, &["subject"])?;
    let value = param(&params, "subject").ok_or_else(|| {
        Problem::unprocessable("subject", "subject is required: client:<id> or matter:<id>")
    })?;
    let subject = match kind_and_id("subject", value, &["client", "matter"])? {
        ("client", id) => Subject::Client(id.to_string()),
        (_, id) => Subject::Matter(id.to_string()),
    };
    let db = state.tenancy.firm_db(&session).await?;
    let spells = spells(&state, &session).await?;
    let report =
        privacy::disclosures(&state.registry, &db, session.firm(), subject, &spells).await?;
    Ok(Json(report))
}

/// Whose data left through one grant or credential of the firm in a window.
#[utoipa::path(get, path = "/admin/v1/privacy/breach-scope", tag = "admin",
    params(("channel" = String, Query, pattern = "^(grant|credential|account):[A-Za-z0-9_.@+-]{1,200}$",
            description = "grant:<grant id>, credential:<client id>, or account:<address> (an account at the third party, e.g. a fee earner's Google account)"),
           ("since" = i64, Query, minimum = 0, description = "window start, Unix ms, inclusive"),
           ("until" = Option<i64>, Query, minimum = 0, description = "window end, Unix ms, exclusive (default now)"),
           ("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "json (default) or csv")),
    responses((status = 200, description = "The clients affected, with fields and times (JSON, or text/csv with format=csv)", body = Object),
              (status = 400, description = "A parameter the report does not take"),
              (status = 403, description = "Not an owner or admin"),
              (status = 404, description = "No such grant, credential or account in this firm"),
              (status = 422, description = "A parameter missing or malformed")))]
pub async fn breach_scope(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    session.require_manager()?;
    let params = params(&query, &["channel", "since", "until", "format"])?;
    let value = param(&params, "channel").ok_or_else(|| {
        Problem::unprocessable(
            "channel",
            "channel is required: grant:<id>, credential:<client id> or account:<address>",
        )
    })?;
    let channel = match kind_and_id("channel", value, &["grant", "credential", "account"])? {
        ("grant", id) => Channel::Grant(id.to_string()),
        ("credential", id) => Channel::Credential(id.to_string()),
        (_, id) => Channel::Account(id.to_string()),
    };
    let since = time_param(&params, "since")?
        .ok_or_else(|| Problem::unprocessable("since", "since is required (Unix ms)"))?;
    let until = time_param(&params, "until")?.unwrap_or_else(crate::clock::now_ms);
    let csv = match param(&params, "format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(Problem::unprocessable(
                "format",
                "format must be json or csv",
            ))
        }
    };
    let db = state.tenancy.firm_db(&session).await?;
    let scope = match channel {
        Channel::Account(account) => {
            let spells = spells_of(&spells(&state, &session).await?, &account);
            privacy::breach_scope_of_account(
                &state.registry,
                &db,
                session.firm(),
                &account,
                &spells,
                since,
                until,
            )
            .await?
        }
        channel => {
            privacy::breach_scope(&state.registry, &db, session.firm(), channel, since, until)
                .await?
        }
    };
    if csv {
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"breach-scope.csv\"",
                ),
            ],
            scope.to_csv(),
        )
            .into_response())
    } else {
        Ok(Json(scope).into_response())
    }
}

/// The accounts the firm's connectors delivered to, read through the session's handle.
async fn spells(
    state: &AppState,
    session: &Session,
) -> Result<Vec<(String, privacy::AccountSpell)>, Problem> {
    account_spells(
        &state.connectors,
        &state.registry,
        &state.catalogue,
        session.firm(),
        |g, c| grant_for_session(g, c, &session.user.id),
    )
    .await
    .map_err(Problem::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_ids_are_read_as_documented() {
        for (text, ok) in [
            ("client:c-1", true),
            ("matter:0e8a9c1e-5b6f-4c7e-9a1d-2f3b4c5d6e7f", true),
            ("client:", false),
            ("client:a b", false),
            ("client:a\u{feff}", false),
            ("firm:x", false),
            ("client", false),
        ] {
            assert_eq!(
                kind_and_id("subject", text, &["client", "matter"]).is_ok(),
                ok,
                "{text}"
            );
        }
        for text in [
            "grant:g1",
            "credential:sg_abc",
            "account:partner+cal@harbour.example",
        ] {
            assert!(kind_and_id("channel", text, &["grant", "credential", "account"]).is_ok());
        }
    }
}
