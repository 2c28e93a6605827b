//! The relay's control socket: `DATA/control.sock`, a Unix socket only its
//! owner may open (mode 0600), for commands from the operator's own
//! machine while the relay serves. The database file is the running
//! relay's alone, so `rapport-server backup` asks the relay to make the
//! copy.
//!
//! One command per connection, one line each way:
//! `backup PATH` → `ok BYTES` or `error MESSAGE`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tracing::{info, warn};

use crate::relay::{Relay, lock};
use crate::storage::backup::BackupError;
use crate::storage::{DATABASE_FILE, Store};

/// The socket's file name in the data folder.
pub const SOCKET_FILE: &str = "control.sock";

/// Longest command line read.
const MAX_LINE: usize = 4096;

/// The control socket, bound in `relay`'s data folder when the relay opens
/// ([`serve`] answers on it); `None` where it cannot be.
#[cfg(unix)]
pub(crate) fn bind(relay: &Relay) -> Option<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = relay.config.data_dir.join(SOCKET_FILE);
    let _ = std::fs::remove_file(&path);
    let bound = std::os::unix::net::UnixListener::bind(&path)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener));
    let listener = match bound {
        Ok(listener) => listener,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "no control socket: `rapport-server backup` cannot reach this relay");
            return None;
        }
    };
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        warn!(path = %path.display(), error = %e, "cannot restrict the control socket");
    }
    Some(listener)
}

/// Answers on the control socket until `stop`, then removes it.
#[cfg(unix)]
pub(crate) async fn serve(
    relay: Arc<Relay>,
    listener: Option<std::os::unix::net::UnixListener>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(listener) = listener.and_then(|l| tokio::net::UnixListener::from_std(l).ok()) else {
        return;
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(answer(Arc::clone(&relay), stream));
                }
            }
            _ = stop.changed() => break,
        }
    }
    let _ = std::fs::remove_file(relay.config.data_dir.join(SOCKET_FILE));
}

/// No control socket off Unix: a backup needs the relay stopped there.
#[cfg(not(unix))]
pub(crate) fn bind(_relay: &Relay) -> Option<()> {
    None
}

#[cfg(not(unix))]
pub(crate) async fn serve(
    _relay: Arc<Relay>,
    _listener: Option<()>,
    _stop: tokio::sync::watch::Receiver<bool>,
) {
}

#[cfg(unix)]
async fn answer(relay: Arc<Relay>, stream: tokio::net::UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader =
        tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_LINE as u64));
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let reply = match line.trim_end().split_once(' ') {
        Some(("backup", path)) => {
            let store = relay.store().clone();
            let to = PathBuf::from(path);
            match tokio::task::spawn_blocking(move || store.backup_to(&to)).await {
                Ok(Ok(bytes)) => {
                    info!(to = path, bytes, "backup written");
                    format!("ok {bytes}\n")
                }
                Ok(Err(e)) => format!("error {}\n", one_line(&e.to_string())),
                Err(_) => "error the backup stopped unexpectedly\n".to_owned(),
            }
        }
        Some(("export", rest)) => match rest.split_once(' ') {
            Some((workspace, path)) => {
                let relay = Arc::clone(&relay);
                let (workspace, to) = (workspace.to_owned(), PathBuf::from(path));
                let done = tokio::task::spawn_blocking(move || {
                    let documents = lock(&relay.workspaces)
                        .get(&workspace)
                        .map(|w| w.documents.keys().copied().collect::<Vec<_>>())
                        .map_err(|_| BackupError::UnknownWorkspace(workspace.clone()))?;
                    write_export(relay.store(), &workspace, &documents, &to)
                })
                .await;
                match done {
                    Ok(Ok(count)) => format!("ok {count}\n"),
                    Ok(Err(e)) => format!("error {}\n", one_line(&e.to_string())),
                    Err(_) => "error the export stopped unexpectedly\n".to_owned(),
                }
            }
            None => "error `export WORKSPACE PATH`\n".to_owned(),
        },
        _ => "error unknown command; the relay understands `backup PATH` and `export WORKSPACE PATH`\n".to_owned(),
    };
    let _ = write.write_all(reply.as_bytes()).await;
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// Writes a consistent backup of the relay whose data folder is
/// `data_dir` to `to`: asked of the running relay through its control
/// socket, or made directly when no relay runs there. Returns the size in
/// bytes. Blocking.
pub fn backup(data_dir: &Path, to: &Path) -> Result<u64, BackupError> {
    let to = target(data_dir, to)?;
    match Store::open(data_dir) {
        Ok(store) => store.backup_to(&to),
        Err(_) => ask(data_dir, &format!("backup {}", to.display()), &to),
    }
}

/// `to` as an absolute path, once `data_dir` is known to hold a relay: a
/// relative target names a place where the command runs, not where the
/// relay runs.
fn target(data_dir: &Path, to: &Path) -> Result<PathBuf, BackupError> {
    if !data_dir.join(DATABASE_FILE).exists() {
        return Err(BackupError::NoRelay {
            path: data_dir.to_owned(),
        });
    }
    std::path::absolute(to).map_err(|e| BackupError::Write {
        path: to.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes workspace `workspace`'s documents, as the relay whose data
/// folder is `data_dir` holds them, to the new or empty folder `to` in the
/// export format (`rapport_model::export`); asked of the running relay, or
/// read directly when none runs there. Returns how many. Blocking.
pub fn export(data_dir: &Path, workspace: &str, to: &Path) -> Result<u64, BackupError> {
    let to = target(data_dir, to)?;
    match Store::open(data_dir) {
        Ok(store) => {
            let workspaces = crate::workspace::Workspaces::load(&store, None)?;
            let documents: Vec<_> = workspaces
                .get(workspace)
                .map_err(|_| BackupError::UnknownWorkspace(workspace.to_owned()))?
                .documents
                .keys()
                .copied()
                .collect();
            write_export(&store, workspace, &documents, &to).map(|n| n as u64)
        }
        Err(_) => ask(
            data_dir,
            &format!("export {workspace} {}", to.display()),
            &to,
        ),
    }
}

/// The export of `documents` into `to`, written beside it and renamed into
/// place once complete.
fn write_export(
    store: &Store,
    workspace: &str,
    documents: &[rapport_protocol::ids::DocumentId],
    to: &Path,
) -> Result<usize, BackupError> {
    use rapport_model::export::{Manifest, document_files};
    let failed = |path: &Path, e: &dyn std::fmt::Display| BackupError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if to.exists()
        && std::fs::read_dir(to)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(BackupError::NotEmpty {
            path: to.to_owned(),
        });
    }
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_dir_all(&partial);
    let now = crate::relay::now().0;
    let written = (|| {
        std::fs::create_dir_all(&partial).map_err(|e| failed(&partial, &e))?;
        let mut manifest = Manifest::new(
            Some(workspace.to_owned()),
            "relay".to_owned(),
            i64::try_from(now).unwrap_or(i64::MAX),
        );
        for id in documents {
            let doc = store.load_automerge(*id)?;
            let (entry, files) = document_files(*id, &doc);
            for file in files {
                let path = partial.join(&file.name);
                std::fs::write(&path, &file.bytes).map_err(|e| failed(&path, &e))?;
            }
            manifest.documents.push(entry);
        }
        let file = manifest.file();
        let path = partial.join(&file.name);
        std::fs::write(&path, &file.bytes).map_err(|e| failed(&path, &e))?;
        if to.exists() {
            std::fs::remove_dir(to).map_err(|e| failed(to, &e))?;
        }
        std::fs::rename(&partial, to).map_err(|e| failed(to, &e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    written.map(|()| documents.len())
}

/// Sends `command` to the relay running on `data_dir`; the number it
/// answers with.
#[cfg(unix)]
fn ask(data_dir: &Path, command: &str, to: &Path) -> Result<u64, BackupError> {
    let socket = data_dir.join(SOCKET_FILE);
    let failed = |reason: String| BackupError::Write {
        path: to.to_owned(),
        reason,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).map_err(|e| {
        failed(format!(
            "the database is in use and the relay's control socket {} does not answer ({e})",
            socket.display()
        ))
    })?;
    writeln!(stream, "{command}").map_err(|e| failed(e.to_string()))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| failed(e.to_string()))?;
    match reply.trim_end().split_once(' ') {
        Some(("ok", bytes)) => Ok(bytes.parse().unwrap_or(0)),
        Some(("error", message)) => Err(BackupError::Relay(message.to_owned())),
        _ => Err(failed(format!("the relay answered `{}`", reply.trim_end()))),
    }
}

#[cfg(not(unix))]
fn ask(_data_dir: &Path, _command: &str, to: &Path) -> Result<u64, BackupError> {
    Err(BackupError::Write {
        path: to.to_owned(),
        reason: "the database is in use; stop the relay to back it up or export on this platform"
            .into(),
    })
}
