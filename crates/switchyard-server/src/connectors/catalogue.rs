//! The connectors this process serves: the built-in manifests plus an optional directory,
//! reloaded when its files change. A directory that stops loading (a bad edit) keeps the
//! last good set, and the problem is logged with its line and column.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use switchyard_connectors::manifest::AuthMode;
use switchyard_connectors::{Connector, Registry, RegistryError};
use tokio_util::sync::CancellationToken;

/// Cheap to clone; every clone sees reloads.
#[derive(Clone)]
pub struct Catalogue {
    current: Arc<RwLock<Arc<Registry>>>,
    directory: Option<PathBuf>,
}

impl Catalogue {
    /// Loads the built-in connectors and the directory's.
    ///
    /// # Errors
    /// A manifest that does not load: at startup that is a configuration error.
    pub fn load(directory: Option<PathBuf>) -> Result<Self, RegistryError> {
        let registry = build(directory.as_ref())?;
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(registry))),
            directory,
        })
    }

    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn connector(&self, id: &str) -> Option<Arc<dyn Connector>> {
        self.registry().get(id)
    }

    pub fn auth_mode(&self, provider: &str, kind: &str) -> Option<AuthMode> {
        self.registry()
            .manifest(provider)?
            .auth_mode(Some(kind))
            .cloned()
    }

    /// Reloads the directory every `interval` when a file in it changed, until `stop`.
    pub fn watch(
        &self,
        interval: Duration,
        stop: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let directory = self.directory.clone()?;
        let catalogue = self.clone();
        Some(tokio::spawn(async move {
            let mut seen = stamp(&directory);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                let now = stamp(&directory);
                if now == seen {
                    continue;
                }
                seen = now;
                match build(Some(&directory)) {
                    Ok(registry) => {
                        tracing::info!(connectors = registry.len(), directory = %directory.display(), "connector manifests reloaded");
                        *catalogue
                            .current
                            .write()
                            .unwrap_or_else(PoisonError::into_inner) = Arc::new(registry);
                    }
                    Err(error) => {
                        tracing::error!(%error, "connector manifests changed but do not load; keeping the previous ones")
                    }
                }
            }
        }))
    }
}

fn build(directory: Option<&PathBuf>) -> Result<Registry, RegistryError> {
    let mut registry = Registry::builtin()?;
    if let Some(directory) = directory {
        registry.load_directory(directory)?;
    }
    Ok(registry)
}

/// The directory's manifest files with their sizes and modification times: a change in any
/// (or a file added or removed) changes the stamp.
fn stamp(directory: &PathBuf) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            Some((entry.path(), metadata.len(), metadata.modified().ok()))
        })
        .collect();
    files.sort();
    files
}
