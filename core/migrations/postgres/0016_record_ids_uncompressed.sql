-- A send's record ids (about 4 kB of JSON text for a 100-row page) are kept
-- in the row, uncompressed: ids are mostly random hex, which pglz seldom
-- shrinks enough to keep, and trying, then moving the text to the TOAST table
-- and its index, took most of PostgreSQL's time in the outbound log's commits
-- (BENCHMARKS.md §12). A row is toasted only past 8160 bytes (a page); rows
-- written before keep the storage they have, and both read the same.
ALTER TABLE outbound_log ALTER COLUMN record_ids SET STORAGE EXTERNAL;
ALTER TABLE outbound_log SET (toast_tuple_target = 8160);
