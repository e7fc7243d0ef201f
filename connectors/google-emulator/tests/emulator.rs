//! The emulator answers as Google does: PKCE is checked, codes work once,
//! client-chosen ids are validated, a reused id answers 409 `duplicate`, a
//! second delete 410 `deleted`, a bad token 401 `authError`, revoked refresh
//! tokens `invalid_grant`, and every request is recorded.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scopegate_google_emulator::{Emulator, EmulatorConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn oauth_and_events_answer_like_google() {
    let running = Emulator::new(EmulatorConfig::default())
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = running.emulator.config();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "a".repeat(50);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = |challenge: &str| {
        format!(
            "{}?response_type=code&client_id={}&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&scope=calendar&state=s1&code_challenge={challenge}&code_challenge_method=S256",
            running.auth_url(),
            config.client_id
        )
    };
    let redirect = http.get(authorize(&challenge)).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("http://localhost/cb?state=s1&code="));
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let code = form_urlencoded::parse(format!("c={code}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    let exchange = |code: &str, verifier: &str| {
        http.post(running.token_url()).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", "http://localhost/cb"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
        ])
    };
    let wrong = exchange(&code, &"b".repeat(50)).send().await.unwrap();
    assert_eq!(wrong.status(), 400, "a wrong PKCE verifier is refused");
    // The code was consumed by the failed attempt, as Google does.
    let redirect = http.get(authorize(&challenge)).send().await.unwrap();
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let code = form_urlencoded::parse(format!("c={code}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = exchange(&code, &verifier)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        exchange(&code, &verifier).send().await.unwrap().status(),
        400,
        "a code works once"
    );

    let events = format!("{}calendars/primary/events", running.api_base());
    let event = json!({"id": "abcdefghij0123456789", "summary": "s", "start": {"date": "2026-01-02"}, "end": {"date": "2026-01-03"}});
    let insert = http
        .post(&events)
        .bearer_auth(&access)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(insert.status(), 200);
    let again = http
        .post(&events)
        .bearer_auth(&access)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "duplicate");
    let mut bad = event.clone();
    bad["id"] = json!("UPPER-case_id");
    assert_eq!(
        http.post(&events)
            .bearer_auth(&access)
            .json(&bad)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let no_auth = http
        .post(&events)
        .bearer_auth("nope")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    let one = format!("{events}/abcdefghij0123456789");
    assert_eq!(
        http.delete(&one)
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let gone = http.delete(&one).bearer_auth(&access).send().await.unwrap();
    assert_eq!(gone.status(), 410);
    assert_eq!(
        gone.json::<Value>().await.unwrap()["error"]["errors"][0]["reason"],
        "deleted"
    );
    let list: Value = http
        .get(&events)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    let revoke = http
        .post(running.revoke_url())
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let refreshed = http
        .post(running.token_url())
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 400);
    assert_eq!(
        refreshed.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let received = running.emulator.received();
    assert!(received
        .iter()
        .any(|r| r.kind == "api" && r.status == 409 && r.body.contains("abcdefghij0123456789")));
    assert_eq!(received.iter().filter(|r| r.kind == "revoke").count(), 1);
}
