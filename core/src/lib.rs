//! The core of scopegate: everything that touches firm data or the gateway's
//! own state, and the implementation of the capabilities connectors are given.
//!
//! A tour of the one rule (firm data leaves only through an active grant,
//! only as its schema's projection, only after a committed outbound record;
//! the firm comes from the credential, never a parameter):
//!
//! 1. [`registry`] keeps firms, grants (off by default) with their consent
//!    ledger, credentials and tokens (stored only as hashes). A token resolves
//!    to the grant it was issued for, re-checked on every use.
//! 2. [`capabilities::grant_for_token`] (and its session and lease siblings) turns
//!    that resolution into a [`scopegate_contract::FirmGrant`], the only handle
//!    that names a firm; nothing else mints one.
//! 3. [`catalogue`] compiles each connector's schemas into [`projection`]s: the
//!    columns a schema names are the only ones ever selected.
//! 4. [`tenancy`] opens one firm's database for one grant at a time.
//! 5. [`outbound_log`] commits a send record (SHA-256 of the exact bytes),
//!    chained per firm, before anything leaves, and the result after.
//! 6. [`capabilities`] ties 2-5 together behind the contract's traits:
//!    a connector reads projections and sends checked payloads, and can do
//!    nothing else with firm data.
//!
//! [`keys`] and [`secrets`] hold the master keyring and the secret formats;
//! [`privacy`] answers the privacy office: disclosures and breach scope;
//! [`security`] keeps the tripwires (decoy credentials, per-grant
//! pseudonymous ids) and raises their alerts;
//! [`reseal`] re-seals stored secrets under a new master key, rebuilding
//! each binding (`binding`) as the capabilities made it;
//! [`clock`] the time.

pub mod access_trail;
pub mod accounts;
pub mod backup;
mod binding;
pub mod capabilities;
pub mod catalogue;
pub mod clock;
pub mod keyed_chain;
pub mod keys;
pub mod outbound_log;
pub mod privacy;
pub mod projection;
pub mod registry;
pub mod reseal;
pub mod secrets;
pub mod security;
pub mod tenancy;
