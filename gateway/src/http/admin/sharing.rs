//! The sharing chart: distinct records a connector received from the
//! session's firm on each of the last 30 UTC days, drawn by the gateway as an
//! SVG (presentation attributes only, so the page's CSP allows it as an
//! image) with a title and description saying the total and the peak day.

use super::connectors::{connector, SHARING_DAYS};
use super::Session;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::outbound_log::usage::records_per_day;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const WIDTH: i64 = 300;
const HEIGHT: i64 = 64;
const BAR: i64 = WIDTH / SHARING_DAYS;

/// The chart of one connector for the session's firm.
#[utoipa::path(get, path = "/admin/v1/connectors/{id}/sharing.svg", tag = "admin",
    params(("id" = String, Path, description = "connector id")),
    responses((status = 200, description = "image/svg+xml: one bar per day, oldest first, with a text alternative (total and peak day)", content_type = "image/svg+xml"),
              (status = 403, description = "Not an owner, admin or bookkeeper"),
              (status = 404, description = "No such connector")))]
pub async fn chart(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    session.require_auditor()?;
    let c = connector(&state, &id)?;
    let days = records_per_day(
        &state.registry,
        session.firm(),
        c.id(),
        SHARING_DAYS,
        crate::clock::now_ms(),
    )
    .await?;
    let svg = render(&c.contract.manifest.name, &days);
    let mut response = svg.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// What the chart says in words: the total and the peak day.
pub fn summary(name: &str, days: &[(i64, i64)]) -> String {
    let total: i64 = days.iter().map(|(_, n)| n).sum();
    let peak = days
        .iter()
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(day, n)| (*n, -day));
    match peak {
        None => format!("{name}: no records shared in the last {} days", days.len()),
        Some((day, n)) => format!(
            "{name}: {total} records shared in the last {} days; peak {n} on {}",
            days.len(),
            day_text(*day)
        ),
    }
}

fn day_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The SVG document: a baseline and one bar per day scaled to the peak.
pub fn render(name: &str, days: &[(i64, i64)]) -> String {
    let peak = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let text = escape(&summary(name, days));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {h}\" width=\"{WIDTH}\" height=\"{h}\" role=\"img\" aria-labelledby=\"t d\">\
<title id=\"t\">{title}</title><desc id=\"d\">{text}</desc>\
<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"#9aa4b2\" stroke-width=\"1\"/>",
        h = HEIGHT + 1,
        title = escape(&format!("Records shared with {name} per day")),
    );
    for (i, (day, n)) in days.iter().enumerate() {
        let height = if *n == 0 {
            0
        } else {
            (n * HEIGHT / peak).max(2)
        };
        svg.push_str(&format!(
            "<rect class=\"day\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{height}\" fill=\"#2f6fde\" data-day=\"{d}\" data-records=\"{n}\"><title>{d}: {n}</title></rect>",
            x = i as i64 * BAR + 1,
            y = HEIGHT - height,
            w = BAR - 2,
            d = day_text(*day),
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_peak_and_the_summary_names_it() {
        let day = 86_400_000;
        let days: Vec<(i64, i64)> = (0..30)
            .map(|i| {
                (
                    i * day,
                    if i == 3 {
                        8
                    } else if i == 4 {
                        2
                    } else {
                        0
                    },
                )
            })
            .collect();
        let svg = render("A & B", &days);
        assert_eq!(svg.matches("<rect class=\"day\"").count(), 30);
        assert!(svg.contains(&format!(
            "height=\"{HEIGHT}\" fill=\"#2f6fde\" data-day=\"1970-01-04\" data-records=\"8\""
        )));
        assert!(svg
            .contains("height=\"16\" fill=\"#2f6fde\" data-day=\"1970-01-05\" data-records=\"2\""));
        assert!(
            svg.contains("A &amp; B: 10 records shared in the last 30 days; peak 8 on 1970-01-04")
        );
        assert!(!svg.contains("style"));
    }
}
