//! The connectors this gateway knows, loaded from their manifests and schemas
//! under `schemas/` (built into the binary, or read from a folder given with
//! `--schemas-dir` so an operator can ship a new contract version).

use crate::projection::Projection;
use scopegate_contract::{ConnectorContract, ContractError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Connector folders built into the binary: (id, manifest, [(file, text)]).
type BuiltIn = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
const BUILT_IN: &[BuiltIn] = &[
    (
        "accounting",
        include_str!("../../schemas/accounting/manifest.json"),
        &[
            (
                "transaction.json",
                include_str!("../../schemas/accounting/transaction.json"),
            ),
            (
                "matter-ref.json",
                include_str!("../../schemas/accounting/matter-ref.json"),
            ),
            (
                "fee.json",
                include_str!("../../schemas/accounting/fee.json"),
            ),
            (
                "fee-result.json",
                include_str!("../../schemas/accounting/fee-result.json"),
            ),
            (
                "transactions-page.json",
                include_str!("../../schemas/accounting/transactions-page.json"),
            ),
            (
                "matters-page.json",
                include_str!("../../schemas/accounting/matters-page.json"),
            ),
        ],
    ),
    (
        "google-calendar",
        include_str!("../../schemas/google-calendar/manifest.json"),
        &[
            (
                "diary-entry.json",
                include_str!("../../schemas/google-calendar/diary-entry.json"),
            ),
            (
                "event.json",
                include_str!("../../schemas/google-calendar/event.json"),
            ),
            (
                "event-time.json",
                include_str!("../../schemas/google-calendar/event-time.json"),
            ),
        ],
    ),
];

/// One connector: its contract, the hash a grant must match, compiled projections.
#[derive(Debug)]
pub struct Connector {
    pub contract: ConnectorContract,
    pub schema_hash: String,
    pub projections: BTreeMap<String, Projection>,
}

/// Every known connector, by id.
#[derive(Debug, Clone)]
pub struct Catalogue {
    connectors: Arc<BTreeMap<String, Arc<Connector>>>,
}

/// Why the catalogue could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error("schema {schema} of connector {connector}: {reason}")]
    Projection {
        connector: String,
        schema: String,
        reason: String,
    },
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
}

impl Catalogue {
    /// The connectors built into this binary.
    pub fn built_in() -> Self {
        let mut connectors = BTreeMap::new();
        for (id, manifest, files) in BUILT_IN {
            let contract = ConnectorContract::load(manifest, |name| {
                files
                    .iter()
                    .find(|(f, _)| *f == name)
                    .map(|(_, text)| text.to_string())
            })
            .expect("built-in connector contracts are valid (checked by tests)");
            connectors.insert(
                id.to_string(),
                Arc::new(compile(contract).expect("built-in projections compile")),
            );
        }
        Self {
            connectors: Arc::new(connectors),
        }
    }

    /// Connectors read from `dir/<id>/manifest.json`; a connector without a
    /// folder there keeps its built-in contract.
    pub fn from_dir(dir: &Path) -> Result<Self, CatalogueError> {
        if !dir.is_dir() {
            return Err(CatalogueError::Io {
                path: dir.display().to_string(),
                reason: "not a folder".into(),
            });
        }
        let mut connectors = Self::built_in().connectors.as_ref().clone();
        for (id, _, _) in BUILT_IN {
            let folder = dir.join(id);
            if !folder.exists() {
                // Not shipped in the folder: the built-in contract stays in force.
                continue;
            }
            let manifest_path = folder.join("manifest.json");
            let manifest =
                std::fs::read_to_string(&manifest_path).map_err(|e| CatalogueError::Io {
                    path: manifest_path.display().to_string(),
                    reason: e.to_string(),
                })?;
            let contract = ConnectorContract::load(&manifest, |name| {
                std::fs::read_to_string(folder.join(name)).ok()
            })?;
            connectors.insert(id.to_string(), Arc::new(compile(contract)?));
        }
        Ok(Self {
            connectors: Arc::new(connectors),
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Connector>> {
        self.connectors.get(id).cloned()
    }

    /// Looks a connector up, with the error line a user should see.
    pub fn require(&self, id: &str) -> Result<Arc<Connector>, String> {
        self.get(id).ok_or_else(|| {
            format!(
                "unknown connector {id:?}; known connectors: {}",
                self.ids().join(", ")
            )
        })
    }

    pub fn ids(&self) -> Vec<String> {
        self.connectors.keys().cloned().collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Connector>> {
        self.connectors.values()
    }
}

fn compile(contract: ConnectorContract) -> Result<Connector, CatalogueError> {
    let mut projections = BTreeMap::new();
    for name in contract.schemas.keys() {
        let projection =
            Projection::compile(&contract, name).map_err(|reason| CatalogueError::Projection {
                connector: contract.manifest.id.clone(),
                schema: name.clone(),
                reason,
            })?;
        projections.insert(name.clone(), projection);
    }
    Ok(Connector {
        schema_hash: contract.schema_hash(),
        contract,
        projections,
    })
}

impl Connector {
    pub fn id(&self) -> &str {
        &self.contract.manifest.id
    }

    pub fn projection(&self, schema: &str) -> &Projection {
        self.projections
            .get(schema)
            .unwrap_or_else(|| panic!("connector {} has no schema {schema}", self.id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_connectors_load() {
        let catalogue = Catalogue::built_in();
        let accounting = catalogue.require("accounting").unwrap();
        assert_eq!(
            accounting.contract.manifest.scopes,
            vec!["transactions:read", "fees:write"]
        );
        assert!(catalogue
            .require("nope")
            .unwrap_err()
            .contains("accounting"));
    }
}
