-- Named cursors a connector's background work keeps per grant (how far a
-- push has got). Moved only by compare-and-set, so instances sharing the
-- registry never move one backwards.
CREATE TABLE connector_cursors (
    grant_id TEXT NOT NULL REFERENCES grants(id),
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (grant_id, name)
);
