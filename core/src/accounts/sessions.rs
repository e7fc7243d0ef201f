//! Server-side sessions. The browser holds a random id in an `HttpOnly`,
//! `SameSite=Strict` cookie; the registry holds only its SHA-256, the user,
//! the firm, and the times that bound it (idle timeout and absolute expiry).
//! The CSRF token is derived from the session id, so it needs no storage and
//! dies with the session.

use super::users::FirmUser;
use crate::clock::now_ms;
use crate::registry::{Registry, StoreResult};
use crate::secrets::sha256_hex;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The cookie's name.
pub const COOKIE: &str = "sg_session";

/// A live session: who, of which firm.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id_sha256: String,
    pub user: FirmUser,
    pub csrf_token: String,
}

/// The CSRF token that belongs to a session id.
pub fn csrf_token(session_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("scopegate-csrf:{session_id}")))
}

impl Registry {
    /// Starts a session for a user; returns the id to put in the cookie.
    pub async fn create_session(&self, user: &FirmUser, max_ms: i64) -> StoreResult<String> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let id = URL_SAFE_NO_PAD.encode(raw);
        let now = now_ms();
        sqlx::query("INSERT INTO admin_sessions (id_sha256, user_id, firm_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)")
            .bind(sha256_hex(&id)).bind(&user.id).bind(&user.firm_id).bind(now).bind(now + max_ms)
            .execute(self.pool()).await?;
        Ok(id)
    }

    /// Resolves a cookie's session id, refreshing its idle timer. `None` when
    /// unknown, idle too long, past its lifetime, or its user is disabled.
    pub async fn resume_session(
        &self,
        session_id: &str,
        idle_ms: i64,
    ) -> StoreResult<Option<LiveSession>> {
        if session_id.is_empty() || session_id.len() > 100 {
            return Ok(None);
        }
        let id_sha256 = sha256_hex(session_id);
        let now = now_ms();
        let touched = sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE id_sha256 = $2 AND last_seen_at > $3 AND expires_at > $1")
            .bind(now).bind(&id_sha256).bind(now - idle_ms)
            .execute(self.pool()).await?.rows_affected();
        if touched != 1 {
            sqlx::query("DELETE FROM admin_sessions WHERE id_sha256 = $1")
                .bind(&id_sha256)
                .execute(self.pool())
                .await?;
            return Ok(None);
        }
        let row = sqlx::query("SELECT user_id, firm_id FROM admin_sessions WHERE id_sha256 = $1")
            .bind(&id_sha256)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let firm_id: String = row.get("firm_id");
        let user_id: String = row.get("user_id");
        let user = match self.user(&firm_id, &user_id).await {
            Ok(u) if u.disabled_at.is_none() => u,
            _ => return Ok(None),
        };
        Ok(Some(LiveSession {
            id_sha256,
            user,
            csrf_token: csrf_token(session_id),
        }))
    }

    /// Ends a session (logout).
    pub async fn end_session(&self, id_sha256: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_sha256 = $1")
            .bind(id_sha256)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes sessions past their lifetime or idle timeout, and spent hand-off nonces.
    pub async fn prune_sessions(&self, idle_ms: i64) -> StoreResult<u64> {
        let now = now_ms();
        let sessions =
            sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                .bind(now)
                .bind(now - idle_ms)
                .execute(self.pool())
                .await?
                .rows_affected();
        let nonces = sqlx::query("DELETE FROM handoff_nonces WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(sessions + nonces)
    }
}
