//! `--config relay.toml`: every flag of the relay, in a file.
//!
//! A key is a flag's long name (`listen`, `max-frame-bytes`, `tls-cert`, …;
//! `max_frame_bytes` is read the same), a value is a string, number or
//! boolean, and a flag given more than once (`workspace-creator`) takes an
//! array. The file's values become the flags' defaults, so a flag on the
//! command line wins over its `RAPPORT_*` environment variable, which wins
//! over the file, which wins over the built-in default. A key that names
//! no flag, or a value the flag would refuse, stops the start with the key
//! named, with the file.
//!
//! ```toml
//! listen = "0.0.0.0:443"
//! data = "/var/lib/rapport"
//! public-url = "https://relay.example"
//! tls-cert = "/etc/rapport/fullchain.pem"
//! tls-key = "/etc/rapport/privkey.pem"
//! max-connections = 20000
//! webhook-allow = ["hooks.internal.example"]
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

/// The flag that names the file, and its environment variable.
pub const CONFIG_FLAG: &str = "config";
pub const CONFIG_ENV: &str = "RAPPORT_CONFIG";

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read the configuration {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Syntax { path: PathBuf, reason: String },
    #[error("{}: unknown key `{key}`; the keys are the relay's flags without `--` (see --help)", path.display())]
    UnknownKey { path: PathBuf, key: String },
    #[error("{}: `{key}` {reason}", path.display())]
    BadValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// The file `args` name with `--config FILE` (or `--config=FILE`), else
/// the one `RAPPORT_CONFIG` names.
pub fn named_in(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV).map(PathBuf::from)
}

/// `command` (whose arguments are the relay's flags) with the values in
/// the file at `path` as the flags' defaults, and the ids of the flags the
/// file set.
pub fn apply(command: Command, path: &Path) -> Result<(Command, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let mut command = command;
    let mut set = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let bad = |reason: String| ConfigError::BadValue {
            path: path.to_owned(),
            key: key.clone(),
            reason,
        };
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != CONFIG_FLAG)
        else {
            return Err(ConfigError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
            });
        };
        let values = match value {
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>(),
            other => scalar(other).map(|v| vec![v]),
        }
        .map_err(bad)?;
        let takes_many = matches!(arg.get_action(), clap::ArgAction::Append);
        if values.len() != 1 && !takes_many {
            return Err(bad("takes one value, not a list".into()));
        }
        // A switch takes true or false, and nothing else does; other
        // values are checked by the flag's own parser when the command
        // line is read, naming the flag (the key).
        let switch = matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
        );
        if switch != matches!(value, toml::Value::Boolean(_)) {
            return Err(bad(if switch {
                "is true or false".into()
            } else {
                "takes a value, not true or false".into()
            }));
        }
        let id = arg.get_id().clone();
        set.push(id.to_string());
        command = command.mut_arg(id, |arg| arg.default_values(values).required(false));
    }
    Ok((command, set))
}

fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(n) => Ok(n.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("cannot be a {}", other.type_str())),
    }
}

/// The effective configuration `matches` describe, one `key = value` line
/// per flag, each saying where its value came from (`from_file`: the ids
/// [`apply`] set).
pub fn describe(command: &Command, matches: &ArgMatches, from_file: &[String]) -> String {
    let mut out = String::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == CONFIG_FLAG || long == "help" || long == "version" {
            continue;
        }
        let id = arg.get_id().as_str();
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) if from_file.iter().any(|f| f == id) => "file",
            Some(ValueSource::DefaultValue) => "default",
            _ => "unset",
        };
        let shown = match values.as_slice() {
            [] => "(unset)".to_owned(),
            [one] => format!("{one:?}"),
            many => format!("{many:?}"),
        };
        out.push_str(&format!("{long} = {shown}    # {source}\n"));
    }
    out
}
