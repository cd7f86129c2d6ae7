//! The connectors a process knows: the built-in manifests embedded in the binary, plus the
//! manifests of an optional directory (which may replace a built-in one of the same id).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::connector::{Connector, ConnectorError, ConnectorMetadata};
use crate::engine::ManifestConnector;
use crate::manifest::{self, Manifest, ManifestError};

/// The manifests shipped in the binary (`providers/*.yaml`), by file name.
const BUILTIN: &[(&str, &str)] = &[
    ("github.yaml", include_str!("../providers/github.yaml")),
    ("jira.yaml", include_str!("../providers/jira.yaml")),
    ("okta.yaml", include_str!("../providers/okta.yaml")),
    ("slack.yaml", include_str!("../providers/slack.yaml")),
];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{origin}: {source}")]
    Connector {
        origin: String,
        source: ConnectorError,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{second} declares connector `{id}`, as {first} does")]
    Duplicate {
        id: String,
        first: String,
        second: String,
    },
}

struct Entry {
    connector: Arc<dyn Connector>,
    /// The manifest of a manifest-based connector (auth modes, streams, webhook rules).
    manifest: Option<Arc<Manifest>>,
    origin: String,
}

/// Connectors by id.
#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("connectors", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// The built-in connectors.
    pub fn builtin() -> Result<Self, RegistryError> {
        let mut registry = Self::default();
        for (file, text) in BUILTIN {
            registry.add_manifest(text, &format!("builtin:{file}"), false)?;
        }
        Ok(registry)
    }

    /// Adds every `*.yaml`/`*.yml` manifest of `dir`; one of a built-in's id replaces it.
    pub fn load_directory(&mut self, dir: &Path) -> Result<(), RegistryError> {
        let io = |source| RegistryError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| RegistryError::Io {
                path: path.clone(),
                source,
            })?;
            self.add_manifest(&text, &path.display().to_string(), true)?;
        }
        Ok(())
    }

    /// Loads one manifest. `replace_builtin`: a manifest of a built-in's id takes its place;
    /// two from the same place with one id are an error.
    pub fn add_manifest(
        &mut self,
        text: &str,
        origin: &str,
        replace_builtin: bool,
    ) -> Result<(), RegistryError> {
        let manifest = manifest::load(text, origin)?;
        let id = manifest.id.clone();
        if let Some(existing) = self.entries.get(&id) {
            let builtin = existing.origin.starts_with("builtin:");
            if !(replace_builtin && builtin) {
                return Err(RegistryError::Duplicate {
                    id,
                    first: existing.origin.clone(),
                    second: origin.to_owned(),
                });
            }
            tracing::info!(connector = %id, origin, "a manifest replaces the built-in connector");
        }
        let kept = Arc::new(manifest.clone());
        let connector =
            ManifestConnector::new(manifest).map_err(|source| RegistryError::Connector {
                origin: origin.to_owned(),
                source,
            })?;
        self.entries.insert(
            id,
            Entry {
                connector: Arc::new(connector),
                manifest: Some(kept),
                origin: origin.to_owned(),
            },
        );
        Ok(())
    }

    /// Adds a connector written in code.
    pub fn add(&mut self, connector: Arc<dyn Connector>, origin: &str) {
        let id = connector.metadata().id.clone();
        self.entries.insert(
            id,
            Entry {
                connector,
                manifest: None,
                origin: origin.to_owned(),
            },
        );
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn Connector>> {
        self.entries
            .get(id)
            .map(|entry| Arc::clone(&entry.connector))
    }

    /// The manifest of a manifest-based connector.
    pub fn manifest(&self, id: &str) -> Option<Arc<Manifest>> {
        self.entries
            .get(id)
            .and_then(|entry| entry.manifest.clone())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every connector's metadata, by id.
    pub fn list(&self) -> impl Iterator<Item = &ConnectorMetadata> {
        self.entries
            .values()
            .map(|entry| entry.connector.metadata())
    }
}
