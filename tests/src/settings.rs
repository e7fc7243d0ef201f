//! Helpers for settings tests: add a login to a firm, and an admin-API client
//! that carries the session cookie and CSRF token the way the page does.

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use scopegate::accounts::users::{FirmUser, NewUser};
use scopegate::accounts::Role;
use scopegate::registry::Registry;
use serde_json::Value;

/// A password good enough for the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// Adds a user with [`PASSWORD`].
pub async fn add_login(registry: &Registry, firm: &str, email: &str, role: Role) -> FirmUser {
    registry
        .add_user(NewUser {
            firm_id: firm,
            email,
            name: email.split('@').next().unwrap_or(email),
            role,
            firm_user_id: None,
            password: Some(PASSWORD),
        })
        .await
        .expect("add user")
}

/// POSTs a login; returns the raw response.
pub async fn login_response(
    http: &reqwest::Client,
    base: &str,
    firm: &str,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = http
        .post(format!("{base}/admin/v1/session"))
        .json(&serde_json::json!({"firm": firm, "email": email, "password": password}));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.expect("login request")
}

/// The `name=value` of the session cookie set by a response.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sg_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// A logged-in admin-API client.
pub struct AdminClient {
    pub base: String,
    pub http: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

impl AdminClient {
    /// Logs in; panics unless it works.
    pub async fn login(base: &str, firm: &str, email: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = login_response(&http, base, firm, email, PASSWORD, None).await;
        assert_eq!(response.status(), 200, "login failed");
        Self::from_response(base, http, response).await
    }

    /// A client from a successful login or hand-off response (asks `me` for the CSRF token).
    pub async fn from_response(
        base: &str,
        http: reqwest::Client,
        response: reqwest::Response,
    ) -> Self {
        let cookie = session_cookie(&response).expect("session cookie");
        let mut client = Self {
            base: base.to_string(),
            http,
            cookie,
            csrf: String::new(),
        };
        let me = client.get("/admin/v1/me").await;
        assert_eq!(me.status(), 200);
        let me: Value = me.json().await.expect("me json");
        client.csrf = me["csrf_token"].as_str().expect("csrf").to_string();
        client
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("get")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.expect("json")
    }

    /// A state-changing request with the CSRF token.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        request.send().await.expect("request")
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }
}
