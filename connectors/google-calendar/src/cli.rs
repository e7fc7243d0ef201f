//! `scopegate connector google-calendar --firm F ...`: the operator's view of
//! one firm's Google Calendar connections, usable without the settings page.
//! `connect` prints the authorize URL a fee earner opens; `status` lists the
//! connections; `disconnect` stops syncing for one fee earner (optionally
//! deleting the events the gateway created). Switching the connector off is
//! `scopegate grant disable ... --option delete_events`.

use crate::context::Ctx;
use clap::{Parser, Subcommand};
use scopegate_contract::{ConnectorError, FirmGrant};

#[derive(Parser)]
#[command(
    name = "scopegate connector google-calendar --firm FIRM",
    no_binary_name = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the Google consent URL for a fee earner (`users.id` in the firm's database).
    Connect {
        #[arg(long)]
        user: String,
    },
    /// List the firm's Google Calendar connections.
    Status,
    /// Disconnect a fee earner: stop syncing, revoke the token at Google, forget it here.
    Disconnect {
        #[arg(long)]
        user: String,
        /// Also delete the events the gateway created in their calendar.
        #[arg(long)]
        delete_events: bool,
    },
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Runs one command; returns what to print.
pub async fn run(ctx: &Ctx, grant: &FirmGrant, args: &[String]) -> Result<String, ConnectorError> {
    let cli = Cli::try_parse_from(args).map_err(|e| {
        let text = e.to_string();
        ConnectorError::bad_request(
            None,
            text.lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ")
                .to_string(),
        )
    })?;
    match cli.command {
        Command::Connect { user } => {
            let (url, _) = crate::consent::start(ctx, grant, &user, false).await?;
            Ok(format!(
                "Ask the fee earner to open this link within 10 minutes:\n{url}"
            ))
        }
        Command::Status => {
            let rows = crate::consent::connection_statuses(ctx, grant).await?;
            if rows.is_empty() {
                return Ok(format!(
                    "no Google Calendar connections in firm {}",
                    grant.firm_id()
                ));
            }
            Ok(rows
                .into_iter()
                .map(|c| {
                    format!(
                        "{}\t{}\tevents={}\tlast_sync={}\t{}",
                        c.firm_user_id,
                        c.status,
                        c.events_count,
                        c.last_sync_at
                            .map(rfc3339)
                            .unwrap_or_else(|| "never".into()),
                        c.last_error.unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        Command::Disconnect {
            user,
            delete_events,
        } => {
            let r = crate::consent::disconnect(ctx, grant, &user, delete_events).await?;
            Ok(format!(
                "disconnected {user}: {} event(s) deleted; token {}",
                r.events_deleted,
                if r.revoked_at_google {
                    "revoked at Google and deleted here"
                } else {
                    "deleted here (Google could not confirm the revocation)"
                }
            ))
        }
    }
}
