//! `scopegate user add|reset-password|list`: the operator's way to create
//! settings logins. Passwords are read from stdin (`--password-stdin`) or
//! generated and printed once; only their argon2id hash is stored.

use super::{CliError, CliResult};
use crate::accounts::users::NewUser;
use crate::accounts::{passwords, Role};
use crate::clock::rfc3339;
use crate::registry::Registry;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a settings login to a firm.
    Add {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        email: String,
        /// owner, admin, fee_earner or bookkeeper.
        #[arg(long, value_parser = Role::parse)]
        role: Role,
        /// Display name (defaults to the email).
        #[arg(long)]
        name: Option<String>,
        /// The person's `users.id` in the firm's own database (fee earners).
        #[arg(long)]
        firm_user_id: Option<String>,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for a user (ends their sessions).
    ResetPassword {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a firm's settings logins.
    List {
        #[arg(long)]
        firm: String,
    },
}

fn password(from_stdin: bool) -> Result<(String, bool), CliError> {
    if !from_stdin {
        return Ok((passwords::generate(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError(format!("cannot read the password from stdin: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    passwords::check_policy(&line).map_err(CliError)?;
    Ok((line, false))
}

pub async fn run(
    config: &crate::config::Config,
    registry: &Registry,
    command: UserCommand,
) -> CliResult {
    match command {
        UserCommand::Add {
            firm,
            email,
            role,
            name,
            firm_user_id,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            let user = registry
                .add_user(NewUser {
                    firm_id: &firm,
                    email: &email,
                    name: name.as_deref().unwrap_or(&email),
                    role,
                    firm_user_id: firm_user_id.as_deref(),
                    password: Some(&password),
                })
                .await?;
            let what =
                serde_json::json!({ "user_id": user.id, "email": user.email, "role": user.role });
            super::trail::enter_firm(
                config,
                registry,
                &firm,
                crate::access_trail::Kind::UserAdded,
                &super::trail::operator(),
                what,
            )
            .await?;
            println!(
                "added {} ({}) to firm {}",
                user.email,
                user.role.as_str(),
                user.firm_id
            );
            if generated {
                println!("password={password}");
                eprintln!("the password is shown once and stored only as an argon2id hash");
            }
        }
        UserCommand::ResetPassword {
            firm,
            email,
            password_stdin,
        } => {
            let (user, _) = registry
                .user_for_login(&firm, &email)
                .await?
                .ok_or_else(|| CliError(format!("firm {firm} has no user {email}")))?;
            let (password, generated) = password(password_stdin)?;
            registry.set_password(&firm, &user.id, &password).await?;
            let what = serde_json::json!({ "user_id": user.id, "email": user.email });
            super::trail::enter_firm(
                config,
                registry,
                &firm,
                crate::access_trail::Kind::PasswordReset,
                &super::trail::operator(),
                what,
            )
            .await?;
            println!(
                "password of {} in firm {firm} reset; their sessions ended",
                user.email
            );
            if generated {
                println!("password={password}");
            }
        }
        UserCommand::List { firm } => {
            registry.firm(&firm).await?;
            for u in registry.users(&firm).await? {
                let state = u
                    .disabled_at
                    .map(|t| format!("disabled {}", rfc3339(t)))
                    .unwrap_or_else(|| "active".into());
                println!("{}\t{}\t{}\t{}", u.email, u.role.as_str(), u.name, state);
            }
        }
    }
    Ok(())
}
