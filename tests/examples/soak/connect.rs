//! Fee earners connecting their Google calendars as they would: the operator's
//! `connector google-calendar connect` prints a consent link (all of them
//! before the gateway starts, while nothing else writes the SQLite registry),
//! then each fee earner opens theirs, approves at the emulator's consent
//! screen and is sent back to the gateway's callback.

use crate::firms::Firm;
use crate::gateway::Deployment;
use std::sync::Arc;

/// One fee earner's parked consent.
pub struct Link {
    pub firm: String,
    pub user: String,
    pub url: String,
}

/// A consent link for every fee earner of every firm.
pub async fn links(deployment: &Deployment, firms: &[Arc<Firm>]) -> Result<Vec<Link>, String> {
    let mut links = Vec::new();
    for firm in firms {
        for user in &firm.fee_earners {
            let ran = deployment
                .run(&[
                    "connector",
                    "google-calendar",
                    "--firm",
                    &firm.id,
                    "connect",
                    "--user",
                    user,
                ])
                .await;
            let url = ran
                .stdout
                .lines()
                .find(|l| l.starts_with("http"))
                .filter(|_| ran.ok)
                .ok_or_else(|| format!("connect {} {user}: {}", firm.id, ran.stderr.trim()))?;
            links.push(Link {
                firm: firm.id.clone(),
                user: user.clone(),
                url: url.to_string(),
            });
        }
    }
    Ok(links)
}

/// The fee earner opens the link signed in at Google as `<user>@gmail.example`,
/// approves, and lands on the gateway's callback, which must answer 200.
pub async fn consent(base: &str, link: &Link) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let to_google = http
        .get(format!(
            "{}&login_hint={}%40gmail.example",
            link.url, link.user
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let back = to_google
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.split_once('?'))
        .map(|(_, query)| query.to_string())
        .ok_or_else(|| format!("Google answered {} without a redirect", to_google.status()))?;
    let answer = http
        .get(format!("{base}/oauth/google/callback?{back}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match answer.status().as_u16() {
        200 => Ok(()),
        other => Err(format!(
            "callback for {} {} answered {other}",
            link.firm, link.user
        )),
    }
}
