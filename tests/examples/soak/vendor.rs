//! One accounting vendor per firm, at a fixed pace: a poll every tick
//! (transactions and matters in turn, resuming from the last cursor, now and
//! then from the start), a fee every fifth tick (now and then a retry of the
//! previous one with its `Idempotency-Key`, which must be replayed), and a
//! new token whenever its token is about to expire or was refused. Refusals
//! while the firm's grant is switched off (or with a credential replaced since)
//! are expected and counted apart; any other answer is a failure.

use crate::firms::Firm;
use crate::tally::{Kind, Tally};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time between a vendor's requests.
pub const TICK: Duration = Duration::from_millis(2000);
/// A token this close to its expiry is replaced.
const REFRESH_AHEAD: Duration = Duration::from_secs(15);

struct Token {
    value: String,
    expires: Instant,
    generation: u64,
}

/// A fee posted, kept to retry it once.
struct Posted {
    key: String,
    body: Value,
}

pub struct Vendor {
    pub firm: Arc<Firm>,
    pub http: reqwest::Client,
    pub base: String,
    pub tally: Arc<Tally>,
    pub stop: Arc<AtomicBool>,
    /// Offset of the first tick, so the firms' requests are spread over the tick.
    pub phase: Duration,
    pub seed: u64,
}

impl Vendor {
    pub async fn run(self) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut token: Option<Token> = None;
        let mut refused_generation = None;
        let mut cursors: [Option<String>; 2] = [None, None];
        let mut last_fee: Option<Posted> = None;
        // Matter ids as this vendor's grant is shown them, learnt from its matter polls.
        let mut matters: Vec<String> = Vec::new();
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + self.phase, TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick: u64 = 0;
        while !self.stop.load(SeqCst) {
            interval.tick().await;
            tick += 1;
            if token
                .as_ref()
                .is_none_or(|t| t.expires <= Instant::now() + REFRESH_AHEAD)
            {
                let credential = self.firm.credential();
                if refused_generation == Some(credential.generation) {
                    continue; // waiting for the switcher's new credential
                }
                match self.token(&credential).await {
                    Ok(t) => token = Some(t),
                    Err(Refused::Credential) => {
                        refused_generation = Some(credential.generation);
                        continue;
                    }
                    Err(Refused::Other) => continue,
                }
            }
            let Some(current) = token.as_ref() else {
                continue;
            };
            let answered = if tick.is_multiple_of(5) && !matters.is_empty() {
                let replay = last_fee.take().filter(|_| rng.gen_ratio(1, 10));
                self.fee(current, &mut rng, replay, &mut last_fee, &matters)
                    .await
            } else {
                let which = if matters.is_empty() {
                    1
                } else {
                    (tick % 2) as usize
                };
                if rng.gen_ratio(1, 30) {
                    cursors[which] = None;
                }
                self.poll(current, which, &mut cursors[which], &mut matters)
                    .await
            };
            if answered == Answer::Refused {
                token = None;
            }
        }
    }

    /// Client credentials with HTTP Basic.
    async fn token(&self, credential: &crate::firms::Credential) -> Result<Token, Refused> {
        let sent = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .basic_auth(&credential.client_id, Some(&credential.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.tally
                    .failed(Kind::Token, format!("{}: {e}", self.firm.id));
                return Err(Refused::Other);
            }
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match (status, body["access_token"].as_str()) {
            (200, Some(value)) => {
                self.tally.done(Kind::Token);
                let ttl = body["expires_in"].as_u64().unwrap_or(60);
                Ok(Token {
                    value: value.to_string(),
                    expires: Instant::now() + Duration::from_secs(ttl),
                    generation: credential.generation,
                })
            }
            (400 | 401, _) if self.firm.refusal_expected(credential.generation) => {
                self.tally.refused();
                Err(Refused::Credential)
            }
            _ => {
                self.tally.failed(
                    Kind::Token,
                    format!("{}: /oauth/token answered {status} {body}", self.firm.id),
                );
                Err(if matches!(status, 400 | 401) {
                    Refused::Credential
                } else {
                    Refused::Other
                })
            }
        }
    }

    /// One page of transactions (`which` 0) or matters (1) from `cursor`.
    /// Matter ids seen go into `matters`.
    async fn poll(
        &self,
        token: &Token,
        which: usize,
        cursor: &mut Option<String>,
        matters: &mut Vec<String>,
    ) -> Answer {
        let path = ["/v1/transactions", "/v1/matters"][which];
        let mut url = format!("{}{path}?limit=100", self.base);
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let sent = self.http.get(&url).bearer_auth(&token.value).send().await;
        let (status, body) = match sent {
            Ok(r) => (r.status().as_u16(), r.json::<Value>().await.ok()),
            Err(e) => {
                self.tally
                    .failed(Kind::Poll, format!("{} {path}: {e}", self.firm.id));
                return Answer::Failed;
            }
        };
        match (
            status,
            body.as_ref().and_then(|b| b["next_cursor"].as_str()),
        ) {
            (200, Some(next)) => {
                self.tally.done(Kind::Poll);
                *cursor = Some(next.to_string());
                if which == 1 {
                    let seen = body.as_ref().and_then(|b| b["data"].as_array());
                    for id in seen.into_iter().flatten().filter_map(|m| m["id"].as_str()) {
                        if !matters.iter().any(|m| m == id) {
                            matters.push(id.to_string());
                        }
                    }
                }
                Answer::Ok
            }
            _ => self.not_ok(Kind::Poll, token, path, status, body),
        }
    }

    /// Posts a new fee, or retries `replay` (which must come back as the original).
    async fn fee(
        &self,
        token: &Token,
        rng: &mut StdRng,
        replay: Option<Posted>,
        last: &mut Option<Posted>,
        matters: &[String],
    ) -> Answer {
        let is_replay = replay.is_some();
        let posted = replay.unwrap_or_else(|| Posted {
            key: uuid::Uuid::new_v4().to_string(),
            body: json!({
                "matter_id": matters[rng.gen_range(0..matters.len())],
                "amount_cents": rng.gen_range(100..5_000_000),
                "currency": "ZAR",
                "description": "Soak: drafting and correspondence",
                "fee_date": "2026-11-20",
            }),
        });
        let sent = self
            .http
            .post(format!("{}/v1/fees", self.base))
            .bearer_auth(&token.value)
            .header("Idempotency-Key", &posted.key)
            .json(&posted.body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.tally
                    .failed(Kind::Fee, format!("{} /v1/fees: {e}", self.firm.id));
                return Answer::Failed;
            }
        };
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let body = response.json::<Value>().await.ok();
        let expected = if is_replay { 200 } else { 201 };
        if status == expected && replayed == is_replay {
            self.tally.done(Kind::Fee);
            *last = Some(posted);
            return Answer::Ok;
        }
        self.not_ok(Kind::Fee, token, "/v1/fees", status, body)
    }

    /// A refusal of a token the switcher revoked, or a failure.
    fn not_ok(
        &self,
        kind: Kind,
        token: &Token,
        path: &str,
        status: u16,
        body: Option<Value>,
    ) -> Answer {
        if matches!(status, 401 | 403) && self.firm.refusal_expected(token.generation) {
            self.tally.refused();
            return Answer::Refused;
        }
        self.tally.failed(
            kind,
            format!(
                "{} {path} answered {status} {}",
                self.firm.id,
                body.unwrap_or(Value::Null)
            ),
        );
        if status == 401 {
            Answer::Refused
        } else {
            Answer::Failed
        }
    }
}

/// Why no token came: the credential was refused (try again only with a new
/// one), or anything else (try again next tick).
enum Refused {
    Credential,
    Other,
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    Refused,
    Failed,
}
