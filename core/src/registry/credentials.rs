//! Credentials (client id + secret) issued for exactly one grant, and the
//! short-lived opaque access tokens exchanged for them. Secrets and tokens are
//! stored only as SHA-256; every use re-checks that the grant is still on, so
//! switching a connector off refuses its tokens on the very next request, on
//! every gateway instance sharing the registry.

use super::{Registry, StoreError, StoreResult};
use crate::clock::now_ms;
use crate::secrets::{self, SecretKind};
use secrecy::{ExposeSecret, SecretString};

use sqlx::Row;

/// Returned once when a credential is issued; the secret is never stored.
#[derive(Debug)]
pub struct IssuedCredential {
    pub credential_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// A credential listed for an admin (no secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CredentialInfo {
    pub id: String,
    pub client_id: String,
    pub connector: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A client that proved its secret, with the grant it belongs to.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub credential_id: String,
    pub client_id: String,
    pub grant_id: String,
    pub firm_id: String,
    pub connector: String,
    pub schema_hash: String,
}

/// What a valid bearer token stands for. The firm comes from here, never from a parameter.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub grant_id: String,
    pub firm_id: String,
    pub connector: String,
    pub credential_id: String,
    pub schema_hash: String,
    pub scopes: Vec<String>,
    pub expires_at: i64,
    /// The registry generation it was resolved under (`generation_cache`).
    pub resolved_under: i64,
}

/// Result of a token exchange; the token itself is shown once.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub expires_at: i64,
    pub scopes: Vec<String>,
}

impl Registry {
    /// Issues a new credential for the firm's enabled grant of `connector`.
    pub async fn issue_credential(
        &self,
        firm_id: &str,
        connector: &str,
    ) -> StoreResult<IssuedCredential> {
        let grant = self.grant(firm_id, connector).await?;
        if !grant.enabled {
            return Err(StoreError::Conflict(format!(
                "connector {connector} is not enabled for firm {firm_id}; enable it first"
            )));
        }
        let mut conn = self.pool().acquire().await?;
        insert_credential(&mut conn, &grant.id, firm_id, connector).await
    }

    /// Replaces one credential of a firm's connector with a new one in a single
    /// transaction: the new secret exists only if the old credential (and its
    /// tokens) is revoked, and the old one stays live if anything fails.
    pub async fn rotate_credential(
        &self,
        firm_id: &str,
        connector: &str,
        client_id: &str,
    ) -> StoreResult<IssuedCredential> {
        let grant = self.grant(firm_id, connector).await?;
        let mut tx = self.begin_write().await?;
        revoke_in(&mut tx, firm_id, client_id).await?;
        let issued = insert_credential(&mut tx, &grant.id, firm_id, connector).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// Credentials of one firm (all connectors), newest first.
    pub async fn credentials(&self, firm_id: &str) -> StoreResult<Vec<CredentialInfo>> {
        self.firm(firm_id).await?;
        let rows = sqlx::query("SELECT c.id, c.client_id, g.connector, c.created_at, c.revoked_at FROM credentials c JOIN grants g ON g.id = c.grant_id WHERE c.firm_id = $1 ORDER BY c.created_at DESC, c.id")
            .bind(firm_id).fetch_all(self.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| CredentialInfo {
                id: r.get("id"),
                client_id: r.get("client_id"),
                connector: r.get("connector"),
                created_at: r.get("created_at"),
                revoked_at: r.get("revoked_at"),
            })
            .collect())
    }

    /// Revokes one credential of a firm and every token issued with it.
    pub async fn revoke_credential(&self, firm_id: &str, client_id: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        revoke_in(&mut tx, firm_id, client_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a client id and secret. `None` for any mismatch, with no hint which part was wrong.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> StoreResult<Option<AuthenticatedClient>> {
        if secrets::check_format(SecretKind::ClientId, client_id).is_err()
            || secrets::check_format(SecretKind::ClientSecret, secret).is_err()
        {
            return Ok(None);
        }
        let row = sqlx::query("SELECT c.id, c.secret_sha256, g.id AS grant_id, g.firm_id, g.connector, g.schema_hash FROM credentials c JOIN grants g ON g.id = c.grant_id WHERE c.client_id = $1 AND c.revoked_at IS NULL AND g.enabled = 1")
            .bind(client_id).fetch_optional(self.pool()).await?;
        // The secret is hashed and compared whether or not the client id is
        // live, so an unknown, revoked or decoy id costs what a wrong secret costs.
        let stored: String = row
            .as_ref()
            .map(|r| r.get("secret_sha256"))
            .unwrap_or_else(|| "0".repeat(64));
        let matches =
            secrets::constant_time_eq(stored.as_bytes(), secrets::sha256_hex(secret).as_bytes());
        let Some(row) = row.filter(|_| matches) else {
            return Ok(None);
        };
        Ok(Some(AuthenticatedClient {
            credential_id: row.get("id"),
            client_id: client_id.to_string(),
            grant_id: row.get("grant_id"),
            firm_id: row.get("firm_id"),
            connector: row.get("connector"),
            schema_hash: row.get("schema_hash"),
        }))
    }

    /// Issues an access token bound to the client's grant and the given scopes.
    pub async fn issue_token(
        &self,
        client: &AuthenticatedClient,
        scopes: &[String],
        ttl_secs: i64,
    ) -> StoreResult<IssuedToken> {
        let token = secrets::generate(SecretKind::AccessToken);
        let now = now_ms();
        let expires_at = now + ttl_secs * 1000;
        let inserted = sqlx::query("INSERT INTO access_tokens (token_sha256, grant_id, credential_id, firm_id, scopes, issued_at, expires_at) SELECT $1, g.id, c.id, g.firm_id, $2, $3, $4 FROM credentials c JOIN grants g ON g.id = c.grant_id WHERE c.id = $5 AND c.revoked_at IS NULL AND g.enabled = 1")
            .bind(secrets::sha256_hex(&token)).bind(scopes.join(" ")).bind(now).bind(expires_at).bind(&client.credential_id)
            .execute(self.pool()).await?
            .rows_affected();
        if inserted != 1 {
            return Err(StoreError::Conflict("the credential was revoked".into()));
        }
        Ok(IssuedToken {
            access_token: SecretString::from(token),
            expires_at,
            scopes: scopes.to_vec(),
        })
    }

    /// Resolves a bearer token: `None` unless well-formed, known, unexpired,
    /// unrevoked, its credential live and its grant switched on. A token
    /// resolved under the registry's current generation is taken from memory
    /// (`generation_cache`); any change to a token, credential or grant since
    /// moves the generation, and the token is looked up again.
    pub async fn resolve_token(&self, token: &str) -> StoreResult<Option<TokenGrant>> {
        if secrets::check_format(SecretKind::AccessToken, token).is_err() {
            return Ok(None);
        }
        let token_sha256 = secrets::sha256_hex(token);
        let now = now_ms();
        // Read before the lookup: a change committed after it moves the
        // generation past the one the result is kept under.
        let generation = self.generation().await?;
        if let Some(cached) = self.tokens.get(&token_sha256, generation) {
            if cached.expires_at > now {
                return Ok(Some(cached));
            }
        }
        let row = sqlx::query("SELECT t.grant_id, t.firm_id, t.credential_id, t.scopes, t.expires_at, g.connector, g.schema_hash FROM access_tokens t JOIN grants g ON g.id = t.grant_id JOIN credentials c ON c.id = t.credential_id WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND c.revoked_at IS NULL AND g.enabled = 1")
            .bind(&token_sha256).bind(now)
            .fetch_optional(self.pool()).await?;
        let resolved = row.map(|r| TokenGrant {
            grant_id: r.get("grant_id"),
            firm_id: r.get("firm_id"),
            connector: r.get("connector"),
            credential_id: r.get("credential_id"),
            schema_hash: r.get("schema_hash"),
            scopes: r
                .get::<String, _>("scopes")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            expires_at: r.get("expires_at"),
            resolved_under: generation,
        });
        if let Some(grant) = &resolved {
            self.tokens.put(token_sha256, generation, grant.clone());
        }
        Ok(resolved)
    }

    /// RFC 7009 revocation by the client that owns the token; unknown tokens are not an error.
    pub async fn revoke_token(
        &self,
        client: &AuthenticatedClient,
        token: &SecretString,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE token_sha256 = $2 AND credential_id = $3 AND revoked_at IS NULL")
            .bind(now_ms()).bind(secrets::sha256_hex(token.expose_secret())).bind(&client.credential_id)
            .execute(self.pool()).await?;
        Ok(())
    }

    /// Deletes tokens that expired more than a day ago (they are useless and only take space).
    pub async fn prune_expired_tokens(&self) -> StoreResult<u64> {
        let cutoff = now_ms() - 24 * 3600 * 1000;
        Ok(
            sqlx::query("DELETE FROM access_tokens WHERE expires_at < $1")
                .bind(cutoff)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}

/// Inserts a new credential for an enabled grant (refused if it was switched off meanwhile).
async fn insert_credential(
    conn: &mut sqlx::AnyConnection,
    grant_id: &str,
    firm_id: &str,
    connector: &str,
) -> StoreResult<IssuedCredential> {
    let credential_id = uuid::Uuid::new_v4().to_string();
    let client_id = secrets::generate(SecretKind::ClientId);
    let secret = secrets::generate(SecretKind::ClientSecret);
    let inserted = sqlx::query("INSERT INTO credentials (id, grant_id, firm_id, client_id, secret_sha256, created_at) SELECT $1, g.id, g.firm_id, $2, $3, $4 FROM grants g WHERE g.id = $5 AND g.enabled = 1")
        .bind(&credential_id).bind(&client_id).bind(secrets::sha256_hex(&secret)).bind(now_ms()).bind(grant_id)
        .execute(&mut *conn).await?
        .rows_affected();
    if inserted != 1 {
        return Err(StoreError::Conflict(format!(
            "connector {connector} is not enabled for firm {firm_id}; enable it first"
        )));
    }
    Ok(IssuedCredential {
        credential_id,
        client_id,
        client_secret: SecretString::from(secret),
    })
}

/// Revokes one active credential of a firm and every token issued with it.
async fn revoke_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    firm_id: &str,
    client_id: &str,
) -> StoreResult<()> {
    let now = now_ms();
    let row = sqlx::query(
        "SELECT id FROM credentials WHERE firm_id = $1 AND client_id = $2 AND revoked_at IS NULL",
    )
    .bind(firm_id)
    .bind(client_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "firm {firm_id} has no active credential {client_id}"
        ))
    })?;
    let id: String = row.get("id");
    sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE credential_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
