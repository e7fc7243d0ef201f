//! `scopegate credential issue|list|revoke`.

use super::CliResult;
use crate::clock::rfc3339;
use crate::registry::Registry;
use clap::Subcommand;
use secrecy::ExposeSecret;

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Issue a client id and secret for a firm's enabled connector (the secret is shown once).
    Issue {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        connector: String,
    },
    /// List a firm's credentials (never their secrets).
    List {
        #[arg(long)]
        firm: String,
    },
    /// Revoke one credential and every token issued with it.
    Revoke {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        client_id: String,
    },
}

pub async fn run(
    config: &crate::config::Config,
    registry: &Registry,
    command: CredentialCommand,
) -> CliResult {
    match command {
        CredentialCommand::Issue { firm, connector } => {
            let issued = registry.issue_credential(&firm, &connector).await?;
            let what = serde_json::json!({ "connector": connector, "client_id": issued.client_id });
            super::trail::enter_firm(
                config,
                registry,
                &firm,
                crate::access_trail::Kind::CredentialIssued,
                &super::trail::operator(),
                what,
            )
            .await?;
            println!("client_id={}", issued.client_id);
            println!("client_secret={}", issued.client_secret.expose_secret());
            eprintln!("the secret is shown once and stored only as a hash; keep it now");
        }
        CredentialCommand::List { firm } => {
            for c in registry.credentials(&firm).await? {
                let state = c
                    .revoked_at
                    .map(|t| format!("revoked {}", rfc3339(t)))
                    .unwrap_or_else(|| "active".into());
                println!(
                    "{}\t{}\t{}\t{}",
                    c.client_id,
                    c.connector,
                    rfc3339(c.created_at),
                    state
                );
            }
        }
        CredentialCommand::Revoke { firm, client_id } => {
            registry.revoke_credential(&firm, &client_id).await?;
            let what = serde_json::json!({ "client_id": client_id });
            super::trail::enter_firm(
                config,
                registry,
                &firm,
                crate::access_trail::Kind::CredentialRevoked,
                &super::trail::operator(),
                what,
            )
            .await?;
            println!("revoked {client_id}");
        }
    }
    Ok(())
}
