-- The contract of tables a firm's own practice database offers to scopegate
-- (PostgreSQL flavour). Ids are UUID strings so an id of one firm never names a
-- record of another. Times are Unix milliseconds (UTC); amounts are cents.
-- change_seq columns grow on every insert/update so pollers can ask
-- "what changed since N" cheaply through an index.
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    id_number TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    address TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS matters (
    id TEXT PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id),
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    change_seq BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS matters_change_seq ON matters(change_seq);
CREATE TABLE IF NOT EXISTS diary_entries (
    id TEXT PRIMARY KEY,
    matter_id TEXT NOT NULL REFERENCES matters(id),
    owner_user_id TEXT NOT NULL REFERENCES users(id),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    all_day BIGINT NOT NULL,
    description TEXT NOT NULL,
    location TEXT NOT NULL,
    private_notes TEXT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    change_seq BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS diary_entries_owner_change ON diary_entries(owner_user_id, change_seq);
CREATE TABLE IF NOT EXISTS accounting_transactions (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL CHECK (account IN ('business', 'trust')),
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    matter_id TEXT NOT NULL REFERENCES matters(id),
    reference TEXT NOT NULL,
    posted_at BIGINT NOT NULL,
    internal_note TEXT NOT NULL,
    change_seq BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounting_transactions_change_seq ON accounting_transactions(change_seq);
CREATE TABLE IF NOT EXISTS fees (
    id TEXT PRIMARY KEY,
    matter_id TEXT NOT NULL REFERENCES matters(id),
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    fee_date TEXT NOT NULL,
    source TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (source, idempotency_key)
);
CREATE TABLE IF NOT EXISTS change_counter (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    value BIGINT NOT NULL
);
INSERT INTO change_counter (only_row, value) VALUES (1, 0) ON CONFLICT DO NOTHING;
