//! [`GrantLeases`]: the grants a connector's background work acts for (minted
//! as lease handles, re-read every pass so a switch-off stops it), and the
//! per-grant cursors it keeps in the registry.

use super::{grant_for_lease, ForConnector};
use scopegate_contract::{BoxFuture, ConnectorError, FirmGrant, GrantLeases};

impl GrantLeases for ForConnector {
    fn active_grants(&self) -> BoxFuture<'_, Result<Vec<FirmGrant>, ConnectorError>> {
        Box::pin(async move {
            let connector = &self.connector;
            let grants = self
                .core
                .registry
                .active_grants_of(connector.id(), &connector.schema_hash)
                .await?;
            Ok(grants
                .iter()
                .filter_map(|g| {
                    grant_for_lease(g, connector, &format!("{} background", connector.id())).ok()
                })
                .collect())
        })
    }

    fn is_active<'a>(
        &'a self,
        grant: &'a FirmGrant,
    ) -> BoxFuture<'a, Result<bool, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            self.is_active_now(grant).await
        })
    }

    fn cursor<'a>(
        &'a self,
        grant: &'a FirmGrant,
        name: &'a str,
    ) -> BoxFuture<'a, Result<i64, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            Ok(self
                .core
                .registry
                .connector_cursor(grant.grant_id(), name)
                .await?)
        })
    }

    fn advance_cursor<'a>(
        &'a self,
        grant: &'a FirmGrant,
        name: &'a str,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<bool, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            Ok(self
                .core
                .registry
                .advance_connector_cursor(grant.grant_id(), name, from, to)
                .await?)
        })
    }
}
