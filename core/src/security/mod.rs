//! Tripwires and the alerts they raise. Three kinds of trip: a decoy
//! credential used ([`tripwires`]), a valid token probing outside its grant,
//! and a record id no grant of the firm handed out ([`pseudonyms`] maps each
//! grant's view of record ids). An alert ([`alerts`]) is a security-event row
//! in the registry ([`events`]), an error-level log line, a metric and a
//! message on the webhook queue the gateway drains; raising one never waits
//! on any of them. [`trace`] names where a leaked pseudonymous id came from.

pub mod alerts;
pub mod events;
pub mod pseudonyms;
pub mod trace;
pub mod tripwires;

pub use alerts::Alerts;
pub use events::{EventKind, NewSecurityEvent, SecurityEvent};
