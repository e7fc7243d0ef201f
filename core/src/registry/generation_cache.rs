//! What the registry resolved, kept in memory while the registry's
//! generation stands: bearer tokens (their grant), each firm's minimisation
//! choices per connector, and grants found on (the check before every call
//! to a third party). Every change to a token, credential,
//! grant or choice moves the generation in its own transaction (triggers:
//! migrations 0016 and 0017 on SQLite, 0017 and 0018 on PostgreSQL), so a
//! request reads the generation, one row on a page that is always in the
//! cache, and uses what was resolved under the same generation without the
//! lookup. A token's join reads pages spread over the whole registry: at
//! 100,000 firms they no longer fit SQLite's page cache and each lookup read
//! some of them back from the OS (BENCHMARKS.md §10, §13). The choices cost a
//! poll a second registry round trip (BENCHMARKS.md §14).
//!
//! The generation is read before the lookup, so a change committed between
//! the two is either seen by the lookup or leaves the entry under an older
//! generation than the next request reads. Another instance's change moves
//! the same row, so every instance misses on its next request.

use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many entries are kept per cache (a token's is about 450
/// bytes; `tenancy`'s peak RSS at 100,000 firms, 10,000 tokens in use, was
/// 10-13 MB higher); when full, the cache starts again empty rather than
/// tracking which entry is oldest.
const MAX_ENTRIES: usize = 16_384;

/// Key -> the generation its value was resolved under, and the value.
#[derive(Debug)]
pub(crate) struct GenerationCache<V> {
    entries: Mutex<HashMap<String, (i64, V)>>,
}

impl<V> Default for GenerationCache<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> GenerationCache<V> {
    /// The value of `key` if it was resolved under `generation`.
    pub(crate) fn get(&self, key: &str, generation: i64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((resolved_under, value)) if *resolved_under == generation => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value`, resolved under `generation`.
    pub(crate) fn put(&self, key: String, generation: i64, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (generation, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_kept_only_under_its_generation() {
        let cache = GenerationCache::default();
        cache.put("t".into(), 7, 1_000);
        assert_eq!(cache.get("t", 7), Some(1_000));
        assert_eq!(cache.get("t", 8), None, "a newer generation misses");
        assert_eq!(cache.get("u", 7), None);
        cache.put("t".into(), 8, 2_000);
        assert_eq!(cache.get("t", 7), None, "replaced under the newer one");
        assert_eq!(cache.get("t", 8), Some(2_000));
    }

    #[test]
    fn a_full_cache_starts_again() {
        let cache = GenerationCache::default();
        for i in 0..MAX_ENTRIES {
            cache.put(format!("t{i}"), 1, 10);
        }
        cache.put("last".into(), 1, 10);
        assert!(cache.get("last", 1).is_some());
        assert!(cache.get("t0", 1).is_none());
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }
}
