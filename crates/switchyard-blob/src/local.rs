//! What the local directory backend needs beyond `object_store::local::LocalFileSystem`.
//!
//! With `with_fsync(true)` a put writes a staging file, fsyncs it, renames it into place and
//! fsyncs the day directory, and fsyncs directories it creates itself. Two gaps remain:
//!
//! - a put that finds the day directory already created by a *concurrent* put (whose directory
//!   fsyncs are still running) returns before the directory's own entry is durable. So after a
//!   put we fsync the ancestors once per day directory (`mm`, `yyyy`, kind, tenant, root) and
//!   remember that we did.
//! - deletes leave empty directories and an interrupted put leaves a staging file (`id#1`), so
//!   retention would leave a tree of empty days behind. `prune` removes both.
//!
//! Pruning takes the write side of `removal` and puts hold the read side, so a directory is never
//! removed (nor the memory of its fsync forgotten) while a put is inside it.

use std::collections::HashSet;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::{RwLock, RwLockReadGuard};

use crate::error::{BlobError, Result};
use crate::key::BlobKey;

/// Bound on remembered day directories; forgetting only costs a few extra fsyncs.
const MAX_REMEMBERED: usize = 65_536;
/// Staging files younger than this may belong to a put in progress.
const STALE_STAGING: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub(crate) struct LocalDirs {
    root: PathBuf,
    synced: Mutex<HashSet<PathBuf>>,
    removal: RwLock<()>,
}

impl LocalDirs {
    /// Creates `root` if needed and makes its own directory entry durable.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(io("create blob directory"))?;
        let root = std::fs::canonicalize(root).map_err(io("resolve blob directory"))?;
        if let Some(parent) = root.parent() {
            fsync_dir(parent).map_err(io("sync blob directory"))?;
        }
        fsync_dir(&root).map_err(io("sync blob directory"))?;
        Ok(Self {
            root,
            synced: Mutex::new(HashSet::new()),
            removal: RwLock::new(()),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Held for the whole of a put.
    pub(crate) async fn put_guard(&self) -> RwLockReadGuard<'_, ()> {
        self.removal.read().await
    }

    /// Makes the directory chain above `key`'s day directory durable (once per directory).
    pub(crate) async fn sync_ancestors(&self, key: &BlobKey) -> Result<()> {
        let day = self.root.join(key.to_path().as_ref());
        let Some(day) = day.parent().map(Path::to_path_buf) else {
            return Ok(());
        };
        if self.remembered(&day) {
            return Ok(());
        }
        let root = self.root.clone();
        let synced_day = day.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // `mm`, `yyyy`, kind, tenant, root: each holds the entry of the one below.
            for dir in synced_day.ancestors().skip(1) {
                fsync_dir(dir)?;
                if dir == root {
                    break;
                }
            }
            Ok(())
        })
        .await
        .map_err(|join| BlobError::Io {
            operation: "sync blob directories",
            source: std::io::Error::other(join),
        })?
        .map_err(io("sync blob directories"))?;
        if let Ok(mut synced) = self.synced.lock() {
            if synced.len() >= MAX_REMEMBERED {
                synced.clear();
            }
            synced.insert(day);
        }
        Ok(())
    }

    fn remembered(&self, day: &Path) -> bool {
        self.synced.lock().is_ok_and(|synced| synced.contains(day))
    }

    /// Removes empty directories and stale staging files under `relative` (a tenant or a
    /// tenant's kind), including `relative` itself when it ends up empty.
    pub(crate) async fn prune(&self, relative: &str) -> Result<()> {
        let _exclusive = self.removal.write().await;
        let dir = self.root.join(relative);
        tokio::task::spawn_blocking(move || prune_dir(&dir).map(drop))
            .await
            .map_err(|join| BlobError::Io {
                operation: "prune blob directories",
                source: std::io::Error::other(join),
            })?
            .map_err(io("prune blob directories"))?;
        // Directories may be gone now; forget them all rather than work out which.
        if let Ok(mut synced) = self.synced.lock() {
            synced.clear();
        }
        Ok(())
    }
}

/// Prunes `dir` bottom-up; returns whether `dir` itself was removed.
fn prune_dir(dir: &Path) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(true),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            prune_dir(&entry.path())?;
        } else if file_type.is_file() && is_stale_staging(&entry)? {
            remove_ignoring_missing(std::fs::remove_file(entry.path()))?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(true),
        Err(error) if error.kind() == ErrorKind::DirectoryNotEmpty => Ok(false),
        Err(error) => Err(error),
    }
}

/// A leftover of an interrupted put: keys never contain `#`, staging files are `{id}#{n}`.
fn is_stale_staging(entry: &std::fs::DirEntry) -> std::io::Result<bool> {
    if !entry.file_name().to_string_lossy().contains('#') {
        return Ok(false);
    }
    let modified = entry.metadata()?.modified()?;
    Ok(SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|age| age > STALE_STAGING))
}

fn remove_ignoring_missing(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> BlobError {
    move |source| BlobError::Io { operation, source }
}
