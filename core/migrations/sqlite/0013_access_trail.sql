-- The access trail: who logged in (or failed to), handed off, added, disabled
-- or reset a user, issued, rotated or revoked a credential, got a token,
-- switched a grant, changed a minimisation choice, planted a tripwire,
-- rotated the keys, terminated or purged a firm; when, from where and what
-- (ids and names, never a secret). One chain per firm (chain = the firm id)
-- and one operator chain ('@operator', which no firm id can be), each keyed
-- like the outbound log (HMAC-SHA256 under the chain key of master key
-- `mac_key`) and serialised by its head row.
CREATE TABLE access_trail (
    chain TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    origin TEXT NOT NULL,
    what TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    mac_key TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX access_trail_by_kind ON access_trail(chain, kind, seq);
CREATE TABLE access_trail_heads (
    chain TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
-- What remains of a purged firm's trail: its last seq and hash, MAC'ed with
-- the chain key, so `audit verify` sees a purge, not a deletion.
CREATE TABLE access_trail_tombstones (
    chain TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    purged_at INTEGER NOT NULL,
    mac_key TEXT NOT NULL,
    mac TEXT NOT NULL
);
