//! The tests that drive the real `scopegate` binary (CLI, `serve`, `demo`) as
//! an operator would, as one test binary (one link instead of one per file).
//! Test names are `<module>::<test>`, e.g.
//! `cargo test -p scopegate --test process graceful_shutdown::`.
//! Each test uses its own data directory, ports and databases, so they run in
//! parallel; children get their settings as flags or on their own environment,
//! never through this process's.

mod common;

mod audit_checkpoint_cli;
mod backup_restore;
mod calls_in_flight;
mod cli_bad_input;
mod cli_user;
mod demo;
mod disk_full;
mod google_failover;
mod google_gateway;
mod google_kill;
mod graceful_shutdown;
mod key_rotation;
mod privacy_cli;
mod secrets_at_rest;
mod service_logs;
mod shared_limits;
mod tls_proxy;
mod trail_cli;
mod tripwire_cli;
mod two_processes;
