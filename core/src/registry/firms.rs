//! Registered firms: an id, a display name and where the firm's own practice
//! database lives. The registry never holds firm records, only this pointer.

use super::{is_unique_violation, Registry, StoreError, StoreResult};
use crate::clock::now_ms;
use sqlx::Row;

/// A firm as the registry knows it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Firm {
    pub id: String,
    pub name: String,
    /// URL of the firm's own database (password redacted when shown).
    #[serde(skip)]
    pub data_url: String,
    pub created_at: i64,
}

/// Turns "Harbour & Co Law" into "harbour-co-law".
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(63).collect()
}

/// Firm ids are lowercase slugs, 2-63 characters.
pub fn validate_firm_id(id: &str) -> StoreResult<()> {
    let ok = (2..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "firm id {id:?} must be 2-63 characters of a-z, 0-9 and '-'"
        )))
    }
}

/// The registry keeps no database passwords: a firm database URL must not carry
/// one (PostgreSQL reads it from the scopegate user's `~/.pgpass` / `PGPASSFILE`).
pub fn refuse_embedded_password(url: &str) -> StoreResult<()> {
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let in_query = url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|p| p.to_ascii_lowercase().starts_with("password="))
    });
    if in_userinfo || in_query {
        return Err(StoreError::Invalid(
            "the database URL carries a password; scopegate stores no database passwords: put it in the ~/.pgpass (or PGPASSFILE) of the user running scopegate and give the URL without it".into(),
        ));
    }
    Ok(())
}

impl Registry {
    pub async fn add_firm(&self, id: &str, name: &str, data_url: &str) -> StoreResult<Firm> {
        validate_firm_id(id)?;
        refuse_embedded_password(data_url)?;
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("firm name must not be empty".into()));
        }
        let firm = Firm {
            id: id.to_string(),
            name: name.trim().to_string(),
            data_url: data_url.to_string(),
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO firms (id, name, data_url, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&firm.id)
            .bind(&firm.name)
            .bind(&firm.data_url)
            .bind(firm.created_at)
            .execute(self.pool())
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("firm {id} is already registered"))
                } else {
                    e.into()
                }
            })?;
        Ok(firm)
    }

    pub async fn firm(&self, id: &str) -> StoreResult<Firm> {
        let row = sqlx::query("SELECT id, name, data_url, created_at FROM firms WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("unknown firm {id:?}")))?;
        Ok(firm_from_row(&row))
    }

    /// The firm, if it is a current customer: a terminated firm gets no new
    /// grant, user or hand-off (its data waits for the purge).
    pub async fn active_firm(&self, id: &str) -> StoreResult<Firm> {
        let firm = self.firm(id).await?;
        let terminated: Option<i64> =
            sqlx::query_scalar("SELECT terminated_at FROM firms WHERE id = $1")
                .bind(id)
                .fetch_one(self.pool())
                .await?;
        match terminated {
            Some(_) => Err(StoreError::Conflict(format!(
                "firm {id} was terminated; its data is kept only until the retention period ends"
            ))),
            None => Ok(firm),
        }
    }

    pub async fn firms(&self) -> StoreResult<Vec<Firm>> {
        let rows = sqlx::query("SELECT id, name, data_url, created_at FROM firms ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(firm_from_row).collect())
    }
}

fn firm_from_row(row: &sqlx::any::AnyRow) -> Firm {
    Firm {
        id: row.get("id"),
        name: row.get("name"),
        data_url: row.get("data_url"),
        created_at: row.get("created_at"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_refused() {
        assert!(refuse_embedded_password("postgres://u:pw@db/firm").is_err());
        assert!(refuse_embedded_password("postgres://u@db/firm?password=pw").is_err());
        assert!(refuse_embedded_password("postgres://u@db:5432/firm").is_ok());
        assert!(refuse_embedded_password("sqlite:///var/lib/scopegate/firms/a.db").is_ok());
    }

    #[test]
    fn slugs_are_valid_firm_ids() {
        assert_eq!(slug("Harbour & Co Law"), "harbour-co-law");
        assert!(validate_firm_id(&slug("  Ndlovu Attorneys Inc. ")).is_ok());
        assert!(validate_firm_id("A").is_err());
        assert!(validate_firm_id("bad_id").is_err());
    }
}
