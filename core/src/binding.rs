//! What a connector's sealed value is bound to: the associated data the
//! keyring seals it with. Both the capability that seals and opens
//! (the `capabilities` module) and the re-sealing job rebuild it from the same
//! parts, so it lives on its own, below both.

/// The associated data of a connector's sealed value: a copy in another
/// firm's or grant's record, in another record of the same grant, or in
/// another connector's, does not open. `row` is the key of the record that
/// keeps the value (for a parked consent, the SHA-256 of its state). The
/// core rebuilds it from the row and the purpose in clear when it re-seals.
pub(crate) fn binding(
    connector: &str,
    purpose: &str,
    firm_id: &str,
    grant_id: &str,
    row: &str,
) -> String {
    format!(
        "connector-secret|{connector}|{purpose}|{firm_id}|{grant_id}|{}|{row}",
        row.len()
    )
}

/// The purpose a parked consent's payload is sealed for.
pub(crate) const PARKED_PURPOSE: &str = "parked-consent";
