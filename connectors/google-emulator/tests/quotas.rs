//! With quotas on, the emulator refuses Calendar API calls over a user's or
//! the project's requests per minute with Google's 403 and error body, and
//! counts users apart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scopegate_google_emulator::{Emulator, EmulatorConfig, Quotas, RunningEmulator};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A client that stops at the emulator's redirect to the (absent) app.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An access token of `account`, through the authorize and token endpoints.
async fn access_token(running: &RunningEmulator, http: &reqwest::Client, account: &str) -> String {
    let config = running.emulator.config();
    let verifier = "v".repeat(50);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = format!(
        "{}?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&scope=calendar&state=s&code_challenge={challenge}&code_challenge_method=S256&login_hint={account}",
        running.auth_url(),
        config.client_id
    );
    let redirect = http.get(authorize).send().await.unwrap();
    let location = reqwest::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = http
        .post(running.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", "http://localhost/cb"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

/// Lists `token`'s primary calendar; returns the status and the first error reason.
async fn list(running: &RunningEmulator, http: &reqwest::Client, token: &str) -> (u16, String) {
    let answer = http
        .get(format!("{}calendars/primary/events", running.api_base()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap();
    let reason = body["error"]["errors"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if status == 403 {
        assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
        assert_eq!(body["error"]["code"], 403);
    }
    (status, reason)
}

#[tokio::test]
async fn calls_over_a_users_or_the_projects_quota_answer_403() {
    let running = Emulator::new(EmulatorConfig {
        quotas: Some(Quotas {
            per_user_per_minute: 4,
            per_project_per_minute: 6,
        }),
        ..Default::default()
    })
    .start("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let http = client();
    let alice = access_token(&running, &http, "alice@example.test").await;
    let bob = access_token(&running, &http, "bob@example.test").await;

    for _ in 0..4 {
        assert_eq!(list(&running, &http, &alice).await, (200, String::new()));
    }
    assert_eq!(
        list(&running, &http, &alice).await,
        (403, "userRateLimitExceeded".into()),
        "alice's fifth call in a minute is over her quota"
    );
    for _ in 0..2 {
        assert_eq!(
            list(&running, &http, &bob).await,
            (200, String::new()),
            "bob has his own quota"
        );
    }
    assert_eq!(
        list(&running, &http, &bob).await,
        (403, "rateLimitExceeded".into()),
        "the project's six calls a minute are spent"
    );
    let statuses: Vec<u16> = running
        .emulator
        .received()
        .iter()
        .filter(|r| r.kind == "api")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 403, 200, 200, 403]);
}

#[tokio::test]
async fn without_quotas_every_call_is_answered() {
    let running = Emulator::new(EmulatorConfig::default())
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = client();
    let token = access_token(&running, &http, "carol@example.test").await;
    for _ in 0..(Quotas::GOOGLE.per_user_per_minute + 5) {
        assert_eq!(list(&running, &http, &token).await.0, 200);
    }
}
