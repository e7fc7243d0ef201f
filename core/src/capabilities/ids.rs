//! [`PseudonymousIds`]: the grant's own keyed mapping of record ids (see
//! [`crate::security::pseudonyms`]), handed to the connector that serves it.

use super::ForConnector;
use crate::security::pseudonyms::{GrantPseudonyms, GrantRef};
use scopegate_contract::{BoxFuture, ConnectorError, FirmGrant, GrantIdMap, PseudonymousIds};
use std::sync::Arc;

impl GrantIdMap for GrantPseudonyms {
    fn disguise(&self, real: &str) -> Option<String> {
        GrantPseudonyms::disguise(self, real)
    }
    fn reveal(&self, shown: &str) -> Option<String> {
        GrantPseudonyms::reveal(self, shown)
    }
}

impl PseudonymousIds for ForConnector {
    fn for_grant<'a>(
        &'a self,
        grant: &'a FirmGrant,
    ) -> BoxFuture<'a, Result<Arc<dyn GrantIdMap>, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            let mapping = self
                .core
                .pseudonyms
                .for_grant(&GrantRef {
                    firm_id: grant.firm_id(),
                    grant_id: grant.grant_id(),
                    connector: grant.connector(),
                })
                .await
                .map_err(|e| match e {
                    crate::security::pseudonyms::PseudonymError::Store(e) => {
                        ConnectorError::from(e)
                    }
                    other => ConnectorError::Internal(other.to_string()),
                })?;
            Ok(Arc::new(mapping) as Arc<dyn GrantIdMap>)
        })
    }
}
