//! The OpenAPI paths of the connector's settings routes and consent callback
//! (merged into the gateway's `/openapi.json`).

use scopegate_contract::utoipa::openapi::OpenApi;
use serde_json::json;

const BASE: &str = "/admin/v1/connectors/google-calendar";

fn csrf() -> serde_json::Value {
    json!({ "name": "X-CSRF-Token", "in": "header", "required": true,
            "description": "from GET /admin/v1/me", "schema": { "type": "string" } })
}

fn problem(description: &str) -> serde_json::Value {
    json!({ "description": description,
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
}

/// The paths, as an OpenAPI document to merge.
pub fn paths() -> OpenApi {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "Google Calendar connector", "version": "1" },
        "paths": {
            format!("{BASE}/connection"): { "get": {
                "tags": ["admin"],
                "summary": "The session user's own Google Calendar connection; owners and admins also get every fee earner's",
                "operationId": "google_calendar_connection",
                "responses": {
                    "200": { "description": "{available, firm_enabled, linked, me: {connected, status, last_sync_at, events, needs_reconsent, error}, fee_earners?: [...] (owners and admins only)}",
                             "content": { "application/json": { "schema": { "type": "object" } } } },
                    "401": problem("No session")
                }
            }},
            format!("{BASE}/connect"): { "post": {
                "tags": ["admin"],
                "summary": "Starts connecting the session user's Google Calendar: returns Google's authorize URL",
                "operationId": "google_calendar_connect",
                "parameters": [csrf()],
                "responses": {
                    "200": { "description": "{authorize_url}: send the browser there; Google returns it to /oauth/google/callback and then to /settings?connector=google-calendar&outcome=<outcome>",
                             "content": { "application/json": { "schema": { "type": "object", "properties": { "authorize_url": { "type": "string" } } } } } },
                    "401": problem("No session"),
                    "403": problem("Bad CSRF token; the login is not linked to a practice-system user; or the firm has not switched Google Calendar on"),
                    "503": problem("The operator has not configured Google Calendar")
                }
            }},
            format!("{BASE}/disconnect"): { "post": {
                "tags": ["admin"],
                "summary": "Disconnects the session user's own Google Calendar: syncing stops, the token is revoked at Google and deleted here",
                "operationId": "google_calendar_disconnect",
                "parameters": [csrf()],
                "requestBody": { "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": { "delete_events": { "type": "boolean", "description": "also delete the events the gateway created" } } } } } },
                "responses": {
                    "200": { "description": "{events_deleted, revoked_at_google}",
                             "content": { "application/json": { "schema": { "type": "object" } } } },
                    "400": problem("The body is not the expected JSON"),
                    "401": problem("No session"),
                    "403": problem("Bad CSRF token, or the login is not linked to a practice-system user"),
                    "404": problem("You have no Google Calendar connection"),
                    "503": problem("The operator has not configured Google Calendar")
                }
            }},
            crate::routes::CALLBACK_PATH: { "get": {
                "tags": ["oauth"],
                "summary": "Where Google returns a fee earner's browser after consent",
                "operationId": "google_calendar_callback",
                "parameters": [
                    { "name": "state", "in": "query", "required": true, "schema": { "type": "string", "minLength": 1 } },
                    { "name": "code", "in": "query", "required": false, "schema": { "type": "string", "minLength": 1 } },
                    { "name": "error", "in": "query", "required": false, "schema": { "type": "string" } }
                ],
                "responses": {
                    "200": { "description": "Connected (a consent the operator started)", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "303": { "description": "Back to the settings page with the outcome (a consent started there)" },
                    "400": problem("Unknown, used or expired state; a missing code; or Google did not grant access"),
                    "403": problem("Google Calendar is switched off for the firm"),
                    "502": problem("Google refused to complete the consent")
                }
            }}
        }
    });
    serde_json::from_value(doc).expect("the connector's OpenAPI paths are valid")
}
