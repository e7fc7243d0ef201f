//! The record-id fields of what a vendor is shown, mapped to the ids its
//! grant sees. An id that cannot be mapped is never shown as it is.

use scopegate_contract::{ConnectorError, GrantIdMap};
use serde_json::Value;

/// Replaces each named string field of `item` with the grant's id for it.
pub fn disguise_fields(
    ids: &dyn GrantIdMap,
    item: &mut Value,
    fields: &[&str],
) -> Result<(), ConnectorError> {
    for field in fields {
        if let Some(real) = item.get(*field).and_then(Value::as_str) {
            let shown = ids.disguise(real).ok_or_else(|| {
                ConnectorError::Internal(format!("a record's {field} is not a record id"))
            })?;
            item[*field] = Value::String(shown);
        }
    }
    Ok(())
}
