//! Resolved bearer tokens, kept in memory while the registry's generation
//! stands. Every change to a token, credential or grant moves the generation
//! in its own transaction (a trigger, migration 0016 on SQLite, 0017 on
//! PostgreSQL), so a request reads the generation, one row on a page that is
//! always in the cache, and uses a token resolved under the same generation
//! without the three-table join. The join's pages are spread over the whole
//! registry: at 100,000 firms they no longer fit SQLite's page cache and each
//! lookup read some of them back from the OS (BENCHMARKS.md §10, §13).
//!
//! The generation is read before the join, so a change committed between
//! the two is either seen by the join or leaves the entry under an older
//! generation than the next request reads. Another instance's change moves
//! the same row, so every instance misses on its next request. A cached token
//! still expires at its own time.

use super::credentials::TokenGrant;
use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many tokens are kept (about 450 bytes each; `tenancy`'s
/// peak RSS at 100,000 firms, 10,000 tokens in use, was 10-13 MB higher);
/// when full, the cache starts again empty rather than tracking which entry
/// is oldest.
const MAX_ENTRIES: usize = 16_384;

/// Token hash -> the generation it was resolved under, and its grant.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<String, (i64, TokenGrant)>>,
}

impl TokenCache {
    /// The grant of `token_sha256` if it was resolved under `generation` and
    /// has not expired by `now_ms`.
    pub(crate) fn get(
        &self,
        token_sha256: &str,
        generation: i64,
        now_ms: i64,
    ) -> Option<TokenGrant> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(token_sha256) {
            Some((resolved_under, grant))
                if *resolved_under == generation && grant.expires_at > now_ms =>
            {
                Some(grant.clone())
            }
            _ => None,
        }
    }

    /// Keeps `grant`, resolved under `generation`.
    pub(crate) fn put(&self, token_sha256: String, generation: i64, grant: TokenGrant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&token_sha256) {
            entries.clear();
        }
        entries.insert(token_sha256, (generation, grant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_at: i64) -> TokenGrant {
        TokenGrant {
            grant_id: "g".into(),
            firm_id: "f".into(),
            connector: "accounting".into(),
            credential_id: "c".into(),
            schema_hash: "h".into(),
            scopes: vec!["transactions:read".into()],
            expires_at,
        }
    }

    #[test]
    fn a_token_is_kept_only_under_its_generation_and_until_it_expires() {
        let cache = TokenCache::default();
        cache.put("t".into(), 7, grant(1_000));
        assert!(cache.get("t", 7, 999).is_some());
        assert!(
            cache.get("t", 8, 999).is_none(),
            "a newer generation misses"
        );
        assert!(
            cache.get("t", 7, 1_000).is_none(),
            "an expired token misses"
        );
        assert!(cache.get("u", 7, 0).is_none());
    }

    #[test]
    fn a_full_cache_starts_again() {
        let cache = TokenCache::default();
        for i in 0..MAX_ENTRIES {
            cache.put(format!("t{i}"), 1, grant(10));
        }
        cache.put("last".into(), 1, grant(10));
        assert!(cache.get("last", 1, 0).is_some());
        assert!(cache.get("t0", 1, 0).is_none());
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }
}
