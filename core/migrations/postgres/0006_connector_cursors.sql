-- Named cursors a connector's background work keeps per grant (how far a
-- push has got). Moved only by compare-and-set, so instances sharing the
-- registry never move one backwards.
CREATE TABLE connector_cursors (
    grant_id TEXT NOT NULL REFERENCES grants(id),
    name TEXT NOT NULL,
    value BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, name)
);
