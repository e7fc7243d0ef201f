//! The privacy office's reports for a firm's information officer: which third
//! parties received what about a person ([`disclosures`], POPIA s23) and whose
//! data left through a channel in a window ([`breach`], POPIA s22). Both join
//! the outbound log's record-id index to the firm's own records
//! ([`subjects`]); neither sends anything anywhere. [`retention`] keeps a
//! terminated firm's data for the retention period and then purges it;
//! [`unused_grants`] finds grants that have moved no data for a while.

pub mod breach;
pub mod disclosures;
pub mod retention;
pub mod subjects;
pub mod unused_grants;

pub use breach::{
    breach_scope, breach_scope_of_account, AccountSpell, Affected, BreachScope, Channel,
};
pub use disclosures::{disclosures, DisclosureReport, Recipient};
pub use retention::{purge_due, purge_firm, Purged, RetentionPolicy};
pub use subjects::{Client, Subject};
pub use unused_grants::{unused_grants_of, unused_since, UnusedGrant};
