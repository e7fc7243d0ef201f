//! The people of each firm, kept in the registry (`firm_users`). Every query
//! is keyed by the firm as well as the user id, so an id of another firm is
//! simply not found.

use super::{passwords, Role};
use crate::clock::now_ms;
use crate::registry::{is_unique_violation, Registry, StoreError, StoreResult};
use sqlx::Row;

/// A firm's user as settings shows it (never the password hash).
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct FirmUser {
    pub id: String,
    pub firm_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The matching `users.id` in the firm's own database, for fee earners.
    pub firm_user_id: Option<String>,
    /// False for people who only arrive through the host application's hand-off.
    pub has_password: bool,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

/// What is needed to add a user.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub firm_id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub firm_user_id: Option<&'a str>,
    /// `None` for a hand-off-only user.
    pub password: Option<&'a str>,
}

const COLUMNS: &str =
    "id, firm_id, email, name, role, firm_user_id, password_hash, created_at, disabled_at";

/// Unicode's White_Space characters (what `char::is_whitespace` and `str::trim`
/// use), as an ECMA-262 character-class body for the patterns below.
const WHITE_SPACE: &str =
    r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// At most this many characters in an email address, counted as sent.
pub const EMAIL_MAX_CHARS: usize = 254;
/// At most this many characters in a person's name, counted as sent.
pub const NAME_MAX_CHARS: usize = 200;

/// Exactly the emails [`normalise_email`] accepts (with [`EMAIL_MAX_CHARS`]):
/// optional surrounding white space, then something, `@`, and a domain with a
/// dot that does not start with one; no white space or second `@` inside.
pub fn email_pattern() -> String {
    let ws = WHITE_SPACE;
    format!("^[{ws}]*[^@{ws}]+@[^@.{ws}][^@{ws}]*\\.[^@{ws}]*[{ws}]*$")
}

/// Exactly the names [`check_new_user`] accepts (with [`NAME_MAX_CHARS`]):
/// something other than white space.
pub fn name_pattern() -> String {
    format!("[^{WHITE_SPACE}]")
}

/// Emails are compared lower-cased and trimmed.
pub fn normalise_email(email: &str) -> StoreResult<String> {
    let trimmed = email.trim();
    let ok = email.chars().count() <= EMAIL_MAX_CHARS
        && trimmed.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
        })
        && !trimmed.chars().any(char::is_whitespace);
    if ok {
        Ok(trimmed.to_lowercase())
    } else {
        Err(StoreError::Invalid(format!(
            "{trimmed:?} is not an email address"
        )))
    }
}

/// Checks the policy and hashes a new password on the blocking pool.
async fn hash_on_blocking_pool(password: &str) -> StoreResult<passwords::Hashed> {
    let password = password.to_string();
    match tokio::task::spawn_blocking(move || passwords::hash_checked(&password)).await {
        Ok(hashed) => hashed.map_err(StoreError::Invalid),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::Invalid(format!(
            "password hashing was cancelled: {e}"
        ))),
    }
}

/// Checks a new user's email and name (cheap; before any password is hashed).
pub fn check_new_user(new: &NewUser<'_>) -> StoreResult<()> {
    normalise_email(new.email)?;
    if new.name.trim().is_empty() || new.name.chars().count() > NAME_MAX_CHARS {
        return Err(StoreError::Invalid(format!(
            "the name must be 1-{NAME_MAX_CHARS} characters, not all white space"
        )));
    }
    Ok(())
}

impl Registry {
    /// Adds a user to a firm; the email must be new in that firm. A password
    /// is hashed on the blocking pool (unbounded: for the CLI and tests; the
    /// HTTP API hashes under permits and calls [`Self::add_user_with_hash`]).
    pub async fn add_user(&self, new: NewUser<'_>) -> StoreResult<FirmUser> {
        check_new_user(&new)?;
        let hash = match new.password {
            Some(p) => Some(hash_on_blocking_pool(p).await?),
            None => None,
        };
        self.add_user_with_hash(
            NewUser {
                password: None,
                ..new
            },
            hash,
        )
        .await
    }

    /// Adds a user whose new password is already hashed (`new.password` is ignored).
    pub async fn add_user_with_hash(
        &self,
        new: NewUser<'_>,
        hash: Option<passwords::Hashed>,
    ) -> StoreResult<FirmUser> {
        check_new_user(&new)?;
        self.active_firm(new.firm_id).await?;
        let email = normalise_email(new.email)?;
        let name = new.name.trim();
        if let Some(practice_user) = new.firm_user_id {
            self.refuse_second_link(new.firm_id, practice_user, None)
                .await?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO firm_users (id, firm_id, email, name, role, firm_user_id, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id).bind(new.firm_id).bind(&email).bind(name).bind(new.role.as_str())
            .bind(new.firm_user_id).bind(hash.as_ref().map(|h| h.as_str().to_string())).bind(now_ms())
            .execute(self.pool()).await
            .map_err(|e| if is_unique_violation(&e) {
                StoreError::Conflict(format!("{email} already has an account in firm {}", new.firm_id))
            } else { e.into() })?;
        self.user(new.firm_id, &id).await
    }

    /// Refuses to link a second active settings account to `practice_user`
    /// (`except`: the account being updated). A unique index backs this up.
    async fn refuse_second_link(
        &self,
        firm_id: &str,
        practice_user: &str,
        except: Option<&str>,
    ) -> StoreResult<()> {
        let holder: Option<String> = sqlx::query_scalar("SELECT email FROM firm_users WHERE firm_id = $1 AND firm_user_id = $2 AND disabled_at IS NULL AND id <> $3")
            .bind(firm_id)
            .bind(practice_user)
            .bind(except.unwrap_or(""))
            .fetch_optional(self.pool())
            .await?;
        match holder {
            Some(email) => Err(StoreError::Conflict(format!(
                "practice user {practice_user} is already linked to the settings account {email}; disable that account first"
            ))),
            None => Ok(()),
        }
    }

    /// One user of one firm; a user of another firm is "not found".
    pub async fn user(&self, firm_id: &str, user_id: &str) -> StoreResult<FirmUser> {
        let sql = format!("SELECT {COLUMNS} FROM firm_users WHERE firm_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(firm_id)
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user {user_id} in this firm")))?;
        Ok(user_from_row(&row))
    }

    /// The user with this email in this firm, with their password hash.
    pub async fn user_for_login(
        &self,
        firm_id: &str,
        email: &str,
    ) -> StoreResult<Option<(FirmUser, Option<String>)>> {
        let Ok(email) = normalise_email(email) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM firm_users WHERE firm_id = $1 AND email = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(firm_id)
            .bind(&email)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| (user_from_row(&r), r.get("password_hash"))))
    }

    /// Users of one firm, by email.
    pub async fn users(&self, firm_id: &str) -> StoreResult<Vec<FirmUser>> {
        let sql = format!("SELECT {COLUMNS} FROM firm_users WHERE firm_id = $1 ORDER BY email");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(firm_id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    /// Sets a new password for a user of this firm and ends their sessions
    /// (hashed on the blocking pool; the HTTP API uses [`Self::set_password_hash`]).
    pub async fn set_password(
        &self,
        firm_id: &str,
        user_id: &str,
        password: &str,
    ) -> StoreResult<()> {
        let hash = hash_on_blocking_pool(password).await?;
        self.set_password_hash(firm_id, user_id, hash).await
    }

    /// Sets an already hashed new password and ends the user's sessions.
    pub async fn set_password_hash(
        &self,
        firm_id: &str,
        user_id: &str,
        hash: passwords::Hashed,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let changed =
            sqlx::query("UPDATE firm_users SET password_hash = $1 WHERE firm_id = $2 AND id = $3")
                .bind(hash.as_str())
                .bind(firm_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed != 1 {
            return Err(StoreError::NotFound(format!(
                "no user {user_id} in this firm"
            )));
        }
        end_sessions(&mut tx, firm_id, user_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables a user of this firm (they can no longer log in) and ends their sessions.
    pub async fn disable_user(&self, firm_id: &str, user_id: &str) -> StoreResult<FirmUser> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query("UPDATE firm_users SET disabled_at = $1 WHERE firm_id = $2 AND id = $3 AND disabled_at IS NULL")
            .bind(now_ms()).bind(firm_id).bind(user_id)
            .execute(&mut *tx).await?.rows_affected();
        if changed != 1 {
            return Err(StoreError::NotFound(format!(
                "no active user {user_id} in this firm"
            )));
        }
        end_sessions(&mut tx, firm_id, user_id).await?;
        tx.commit().await?;
        self.user(firm_id, user_id).await
    }

    /// The user a hand-off names: created on first arrival (no password), the
    /// role kept in step with the host application's.
    pub async fn handoff_user(
        &self,
        firm_id: &str,
        email: &str,
        name: &str,
        role: Role,
        firm_user_id: Option<&str>,
    ) -> StoreResult<FirmUser> {
        self.active_firm(firm_id).await?;
        if let Some((user, _)) = self.user_for_login(firm_id, email).await? {
            if let Some(practice_user) = firm_user_id {
                self.refuse_second_link(firm_id, practice_user, Some(&user.id))
                    .await?;
            }
            sqlx::query("UPDATE firm_users SET role = $1, firm_user_id = COALESCE($2, firm_user_id) WHERE firm_id = $3 AND id = $4")
                .bind(role.as_str()).bind(firm_user_id).bind(firm_id).bind(&user.id)
                .execute(self.pool()).await?;
            return self.user(firm_id, &user.id).await;
        }
        self.add_user(NewUser {
            firm_id,
            email,
            name,
            role,
            firm_user_id,
            password: None,
        })
        .await
    }
}

fn user_from_row(row: &sqlx::any::AnyRow) -> FirmUser {
    let role: String = row.get("role");
    FirmUser {
        id: row.get("id"),
        firm_id: row.get("firm_id"),
        email: row.get("email"),
        name: row.get("name"),
        role: Role::parse(&role).unwrap_or(Role::FeeEarner),
        firm_user_id: row.get("firm_user_id"),
        has_password: row.get::<Option<String>, _>("password_hash").is_some(),
        created_at: row.get("created_at"),
        disabled_at: row.get("disabled_at"),
    }
}

/// Ends every session of a user (inside the caller's transaction).
async fn end_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    firm_id: &str,
    user_id: &str,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM admin_sessions WHERE firm_id = $1 AND user_id = $2")
        .bind(firm_id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings built from the characters the rules turn on, in every order
    /// a small pseudo-random walk reaches.
    fn samples() -> Vec<String> {
        let alphabet = [
            "a", "B", "@", ".", " ", "\t", "\u{85}", "\u{a0}", "\u{3000}", "\u{feff}", "é", "İ",
            "-",
        ];
        let mut state: u64 = 0x5eed;
        let mut out = vec![
            "a@b.c".to_string(),
            " a@b.c ".into(),
            "a@b.".into(),
            "a@.b".into(),
            "@b.c".into(),
            "a@@b.c".into(),
            "a b@c.d".into(),
            format!("{}@b.c", "é".repeat(250)),
            format!("{}@b.c", "é".repeat(251)),
            "x".repeat(200),
            "x".repeat(201),
            " ".repeat(3),
        ];
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (state >> 60) as usize;
            let mut text = String::new();
            for i in 0..len {
                let pick = (state >> (i * 4 % 56)) as usize % alphabet.len();
                text.push_str(alphabet[pick]);
            }
            out.push(text);
        }
        out
    }

    #[test]
    fn the_documented_patterns_are_exactly_what_is_accepted() {
        let email = regex::Regex::new(&email_pattern()).unwrap();
        let name = regex::Regex::new(&name_pattern()).unwrap();
        for text in samples() {
            assert_eq!(
                email.is_match(&text) && text.chars().count() <= EMAIL_MAX_CHARS,
                normalise_email(&text).is_ok(),
                "email {text:?}"
            );
            let new = NewUser {
                firm_id: "f",
                email: "a@b.c",
                name: &text,
                role: Role::Admin,
                firm_user_id: None,
                password: None,
            };
            assert_eq!(
                name.is_match(&text) && text.chars().count() <= NAME_MAX_CHARS,
                check_new_user(&new).is_ok(),
                "name {text:?}"
            );
        }
    }
}
