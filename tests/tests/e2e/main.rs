//! The end-to-end suite as one test binary (one link instead of one per file).
//! Each module was a file of its own under `tests/tests/`; test names are
//! `<module>::<test>`, or `<module>::sqlite::<test>` / `<module>::postgres::<test>`
//! for those declared with `on_both_backends!`, e.g.
//! `cargo test -p scopegate-e2e --test e2e accounting_api::sqlite::`.
//! Every test builds its own registry, firms and gateway on port 0, so they run
//! in parallel; none sets an environment variable.

mod access_trail;
mod accounting_api;
mod audit_checkpoints;
mod backup_google;
mod browser_privacy;
mod browser_security;
mod browser_settings;
mod browser_sharing;
mod browser_trail;
mod cross_firm;
mod google_calendar;
mod google_faults;
mod google_handover;
mod google_instances;
mod google_stuck;
mod grant_records;
mod idempotency;
mod key_rotation;
mod metrics;
mod minimisation_choices;
mod one_connection_per_user;
mod outbound_chain;
mod outbound_exits;
mod outbound_export;
mod privacy_google;
mod privacy_reports;
mod projected_reads;
mod registry_outage;
mod registry_store;
mod retention_purge;
mod service;
mod settings_isolation;
mod settings_security;
mod settings_viewer;
mod sharing_chart;
mod slow_clients;
mod tenant_trouble;
mod throttling;
mod tripwires;
mod unused_grants;
mod what_leaves;
