//! The connectors this gateway runs, by id: each one's data contract (built
//! into its crate, or read from a folder given with `--schemas-dir` so an
//! operator can ship a new contract version), the hash a grant must match and
//! its compiled projections. The catalogue names no connector itself: the
//! gateway's registration list hands it their contracts. A connector whose
//! manifest offers minimisation choices has projections compiled for every
//! combination of options, so a firm's choice costs no compilation per read.

use crate::projection::Projection;
use scopegate_contract::choices::Chosen;
use scopegate_contract::{BuiltInContract, ConnectorContract, ContractError, Schema};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One connector: its contract, the hash a grant must match, compiled projections.
#[derive(Debug)]
pub struct Connector {
    pub contract: ConnectorContract,
    pub schema_hash: String,
    /// The projections of a firm that never chose (the schemas as written).
    pub projections: BTreeMap<String, Projection>,
    /// The projections under every other combination of choices.
    variants: BTreeMap<Chosen, BTreeMap<String, Projection>>,
}

/// At most this many combinations of choices a manifest may offer.
const MAX_VARIANTS: usize = 64;

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
    /// The catalogue of the given built-in contracts.
    pub fn from_built_in(contracts: &[BuiltInContract]) -> Result<Self, CatalogueError> {
        let mut connectors = BTreeMap::new();
        for built_in in contracts {
            let connector = compile(built_in.load()?)?;
            connectors.insert(connector.id().to_string(), Arc::new(connector));
        }
        Ok(Self {
            connectors: Arc::new(connectors),
        })
    }

    /// This catalogue with the contracts shipped in `dir/<id>/manifest.json`
    /// in force; a connector without a folder there keeps its built-in contract.
    pub fn overridden_from(&self, dir: &Path) -> Result<Self, CatalogueError> {
        if !dir.is_dir() {
            return Err(CatalogueError::Io {
                path: dir.display().to_string(),
                reason: "not a folder".into(),
            });
        }
        let mut connectors = self.connectors.as_ref().clone();
        for id in self.ids() {
            let folder = dir.join(&id);
            if folder.exists() {
                connectors.insert(id, Arc::new(load_folder(&folder)?));
            }
        }
        Ok(Self {
            connectors: Arc::new(connectors),
        })
    }

    /// The catalogue of connector folders (each with a `manifest.json`).
    pub fn from_folders(folders: &[&Path]) -> Result<Self, CatalogueError> {
        let mut connectors = BTreeMap::new();
        for folder in folders {
            let connector = load_folder(folder)?;
            connectors.insert(connector.id().to_string(), Arc::new(connector));
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

fn load_folder(folder: &Path) -> Result<Connector, CatalogueError> {
    let manifest_path = folder.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).map_err(|e| CatalogueError::Io {
        path: manifest_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let contract = ConnectorContract::load(&manifest, |name| {
        std::fs::read_to_string(folder.join(name)).ok()
    })?;
    compile(contract)
}

fn compile(contract: ConnectorContract) -> Result<Connector, CatalogueError> {
    let projections = compile_projections(&contract)?;
    let defaults = contract.default_choices();
    let mut variants = BTreeMap::new();
    for chosen in combinations(&contract)? {
        if chosen != defaults {
            let projections = compile_projections(&contract.with_choices(&chosen))?;
            variants.insert(chosen, projections);
        }
    }
    Ok(Connector {
        schema_hash: contract.schema_hash(),
        contract,
        projections,
        variants,
    })
}

fn compile_projections(
    contract: &ConnectorContract,
) -> Result<BTreeMap<String, Projection>, CatalogueError> {
    let mut projections = BTreeMap::new();
    for name in contract.schemas.keys() {
        let projection =
            Projection::compile(contract, name).map_err(|reason| CatalogueError::Projection {
                connector: contract.manifest.id.clone(),
                schema: name.clone(),
                reason,
            })?;
        projections.insert(name.clone(), projection);
    }
    Ok(projections)
}

/// Every combination of the manifest's options (one combination, empty, without choices).
fn combinations(contract: &ConnectorContract) -> Result<Vec<Chosen>, CatalogueError> {
    let mut all = vec![Chosen::new()];
    for (name, choice) in &contract.manifest.choices {
        all = all
            .into_iter()
            .flat_map(|chosen| {
                choice.options.keys().map(move |option| {
                    let mut next = chosen.clone();
                    next.insert(name.clone(), option.clone());
                    next
                })
            })
            .collect();
        if all.len() > MAX_VARIANTS {
            return Err(CatalogueError::Contract(ContractError::Choice {
                connector: contract.manifest.id.clone(),
                choice: name.clone(),
                reason: format!("the choices make more than {MAX_VARIANTS} combinations"),
            }));
        }
    }
    Ok(all)
}

impl Connector {
    /// The compiled schemas, by name (what a connector's capabilities check with).
    pub fn schemas(&self) -> BTreeMap<String, Schema> {
        self.projections
            .iter()
            .map(|(name, p)| (name.clone(), p.schema().clone()))
            .collect()
    }

    pub fn id(&self) -> &str {
        &self.contract.manifest.id
    }

    /// The projections of a firm whose effective choices are `chosen`.
    pub fn projections_for(&self, chosen: &Chosen) -> &BTreeMap<String, Projection> {
        self.variants.get(chosen).unwrap_or(&self.projections)
    }

    /// A name for the firm's variant of the projections: `None` for the
    /// schemas as written, else the chosen options (what a connector keeps
    /// to notice that a firm changed its choice).
    pub fn variant_name(&self, chosen: &Chosen) -> Option<String> {
        self.variants
            .contains_key(chosen)
            .then(|| serde_json::to_string(chosen).expect("choices serialise"))
    }

    pub fn projection(&self, schema: &str) -> &Projection {
        self.projections
            .get(schema)
            .unwrap_or_else(|| panic!("connector {} has no schema {schema}", self.id()))
    }
}

/// The repository's connector folders, for tests of the core.
#[cfg(test)]
pub(crate) fn repository_catalogue() -> Catalogue {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    Catalogue::from_folders(&[
        &schemas.join("accounting"),
        &schemas.join("google-calendar"),
    ])
    .expect("the repository's schemas load")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_folders_load_and_unknown_ids_are_named() {
        let catalogue = repository_catalogue();
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
