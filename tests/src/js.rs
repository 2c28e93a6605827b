//! Run the real automerge-repo JS packages from Rust tests.
//!
//! `tests/js` is a small npm package pinning `@automerge/automerge-repo` and
//! `@automerge/automerge-repo-network-websocket` 2.5.6 (plus `ws`) by
//! `package-lock.json`. [`ensure_installed`] runs `npm ci` there when needed
//! ([`ensure_installed_in`] does the same for any npm folder, such as
//! `web/` for the browser tests);
//! [`js_decode`] feeds CBOR frames to `tests/js/cbor-decode.mjs`, which
//! decodes them with the very function the WebSocket adapters use
//! (`cbor.decode` from `@automerge/automerge-repo/slim`, i.e. cbor-x's
//! default `decode`) and prints what JS sees in a lossless canonical JSON
//! form:
//!
//! | JS value                          | canonical JSON                                  |
//! |-----------------------------------|-------------------------------------------------|
//! | string, boolean, null             | itself                                          |
//! | number (finite, not -0)           | a JSON number (an integral float prints as an integer) |
//! | NaN, ±Infinity, -0                | `{"$number": "NaN"}`, `"Infinity"`, `"-Infinity"`, `"-0"` |
//! | bigint                            | `{"$bigint": "123"}`                            |
//! | undefined                         | `{"$undefined": true}`                          |
//! | Uint8Array / Buffer               | `{"$bytes": "<lowercase hex>"}`                 |
//! | other typed array                 | `{"$typed": "<class>", "$bytes": "<hex>"}`      |
//! | array                             | a JSON array                                    |
//! | plain object                      | a JSON object in the object's key order; a key starting with `$` gets one more `$` |
//! | Map / Set / Date / unknown tag    | `{"$map": [[k, v], ..]}`, `{"$set": [..]}`, `{"$date": ms}`, `{"$tag": n, "$value": v}` |
//! | a frame that fails to decode      | `{"$error": "<message>"}`                       |
//!
//! Numbers: JS has a single number type, so a float64 `1.7e12` and an integer
//! `1700000000000` both come out as the JSON text `1700000000000`, which
//! `serde_json` parses as an integer; compare against `json!(1700000000000u64)`,
//! not `json!(1.7e12)`.
//!
//! Key order: this workspace builds `serde_json` without `preserve_order`, so a
//! parsed [`Value`] sorts object keys. Use [`js_decode_lines`] (the JSON text as
//! node printed it) when the order matters.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

/// The oldest Node.js major version the harness supports.
const MIN_NODE_MAJOR: u32 = 20;

const INSTALL_HINT: &str = "install Node.js 20 or later, which ships npm \
    (https://nodejs.org/ or your system's package manager, e.g. `apt-get install nodejs npm`)";

/// The `tests/js` folder holding `package.json`, `package-lock.json` and the
/// scripts.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

fn npm_program() -> &'static str {
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

/// Whether `node_modules` was installed from the current `package-lock.json`
/// (npm writes `node_modules/.package-lock.json` at the end of an install).
fn install_is_fresh(dir: &Path) -> Result<bool> {
    let lock = dir.join("package-lock.json");
    let lock_time = fs::metadata(&lock)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading {}", lock.display()))?;
    let hidden = dir.join("node_modules").join(".package-lock.json");
    match fs::metadata(&hidden) {
        Ok(meta) => Ok(meta.modified()? >= lock_time),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", hidden.display())),
    }
}

/// Runs `<program> --version`, turning "not found" into an install hint.
fn tool_version(program: &str) -> Result<String> {
    let out = match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("`{program}` was not found on PATH: {INSTALL_HINT}")
        }
        Err(e) => return Err(e).with_context(|| format!("running `{program} --version`")),
    };
    if !out.status.success() {
        bail!(
            "`{program} --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Checks once per process that a recent enough `node` is on PATH.
pub fn check_node() -> Result<()> {
    static NODE: OnceLock<Result<(), String>> = OnceLock::new();
    NODE.get_or_init(|| {
        let version = tool_version("node").map_err(|e| format!("{e:#}"))?;
        let major = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        match major {
            Some(m) if m >= MIN_NODE_MAJOR => Ok(()),
            _ => Err(format!(
                "node {version} is too old or unrecognised (need {MIN_NODE_MAJOR}+): {INSTALL_HINT}"
            )),
        }
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// Makes sure `tests/js/node_modules` matches its `package-lock.json`
/// ([`ensure_installed_in`]) and returns [`js_dir`].
pub fn ensure_installed() -> Result<PathBuf> {
    let dir = js_dir();
    ensure_installed_in(&dir)?;
    Ok(dir)
}

/// Makes sure `dir/node_modules` matches `dir/package-lock.json`, running
/// `npm ci --no-audit --no-fund` in `dir` if it is missing or older than
/// the lock file. Installs are serialised across threads and processes
/// (parallel test binaries) by an exclusive lock on `dir/.install.lock`.
pub fn ensure_installed_in(dir: &Path) -> Result<()> {
    static IN_PROCESS: Mutex<()> = Mutex::new(());

    if install_is_fresh(dir)? {
        return Ok(());
    }
    let _thread_guard = IN_PROCESS.lock().unwrap_or_else(PoisonError::into_inner);
    let lock_path = dir.join(".install.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // Released when `lock_file` is dropped (also if this process dies).
    lock_file
        .lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    // Another process may have installed while we waited for the lock.
    if install_is_fresh(dir)? {
        return Ok(());
    }

    check_node()?;
    let npm = npm_program();
    tool_version(npm)?;
    let out = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{npm} ci` in {}", dir.display()))?;
    if !out.status.success() {
        bail!(
            "`npm ci --no-audit --no-fund` in {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim(),
        );
    }
    if !install_is_fresh(dir)? {
        bail!(
            "`npm ci` in {} succeeded but node_modules/.package-lock.json is still missing or stale",
            dir.display()
        );
    }
    Ok(())
}

/// Decodes each frame with automerge-repo's JS CBOR decoder (one `node`
/// process for all frames) and returns the canonical JSON text node printed
/// for each, in order, with the decoder's object key order intact.
pub fn js_decode_lines(frames: &[Vec<u8>]) -> Result<Vec<String>> {
    if frames.is_empty() {
        return Ok(Vec::new());
    }
    let dir = ensure_installed()?;
    check_node()?;

    let mut input = String::with_capacity(frames.iter().map(|f| 2 * f.len() + 1).sum());
    for frame in frames {
        input.push_str(&hex::encode(frame));
        input.push('\n');
    }

    let mut child = Command::new("node")
        .arg("cbor-decode.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `node cbor-decode.mjs` in {}", dir.display()))?;
    let mut stdin = child.stdin.take().context("node's stdin was not piped")?;
    // Write from another thread so a large batch cannot deadlock against
    // node filling its stdout pipe; dropping `stdin` sends EOF.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .context("waiting for `node cbor-decode.mjs`")?;
    let written = writer
        .join()
        .map_err(|_| anyhow!("the thread writing to node's stdin panicked"))?;
    if !out.status.success() {
        bail!(
            "`node cbor-decode.mjs` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    written.context("writing frames to `node cbor-decode.mjs`")?;

    let stdout = String::from_utf8(out.stdout).context("cbor-decode.mjs printed invalid UTF-8")?;
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    if lines.len() != frames.len() {
        bail!(
            "cbor-decode.mjs printed {} lines for {} frames:\n{stdout}\nstderr:\n{}",
            lines.len(),
            frames.len(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(lines)
}

/// Decodes each frame with automerge-repo's JS CBOR decoder and returns its
/// canonical JSON form (see the module docs), one value per frame. A frame
/// the decoder rejects yields `{"$error": "<message>"}`, not an `Err`.
pub fn js_decode(frames: &[Vec<u8>]) -> Result<Vec<Value>> {
    js_decode_lines(frames)?
        .iter()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("parsing cbor-decode.mjs output for frame {i}: {line}"))
        })
        .collect()
}

/// [`js_decode`] for a single frame.
pub fn js_decode_one(frame: &[u8]) -> Result<Value> {
    let mut values = js_decode(&[frame.to_vec()])?;
    values.pop().context("no output for the frame")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).expect("valid hex in test")
    }

    #[test]
    fn js_decodes_hand_built_frames_canonically() -> Result<()> {
        let frames = vec![
            // {"type": "test", "data": h'0102ff', "storageId": undefined,
            //  "timestamp": 1700000000123.0 (float64)}, 16-bit map header
            h("b9 0004
               64 74797065 64 74657374
               64 64617461 43 0102ff
               69 73746f726167654964 f7
               69 74696d657374616d70 fb 4278bcfe5687b000"),
            // {"u32": 0xffffffff, "u64": 5 (8-byte head), "big": 2^32 (8-byte head),
            //  "neg": -2^32 - 1, "neg32": -2^32 (4-byte head)}
            h("a5
               63 753332 1a ffffffff
               63 753634 1b 0000000000000005
               63 626967 1b 0000000100000000
               63 6e6567 3b 0000000100000000
               65 6e65673332 3a ffffffff"),
            // {"b": 1, 2: "x", "$bytes": null}: JS moves integer-like keys first
            h("a3 61 62 01 02 61 78 66 2462797465 73 f6"),
            // a real `join` frame captured from automerge-repo 2.5.6
            // (shared/vectors/automerge-repo-2.5.6-session.txt, conn#1)
            h("b9 00 04 64 74 79 70 65 64 6a 6f 69 6e 68 73 65 6e 64 65 72 49 64 6f 69 6e 74 65 72 6f 70 2d 41
               2d 32 33 34 30 31 6c 70 65 65 72 4d 65 74 61 64 61 74 61 b9 00 02 69 73 74 6f 72 61 67 65 49 64
               f7 6b 69 73 45 70 68 65 6d 65 72 61 6c f5 78 19 73 75 70 70 6f 72 74 65 64 50 72 6f 74 6f 63 6f
               6c 56 65 72 73 69 6f 6e 73 81 61 31"),
            // trailing bytes after a complete item
            h("01 02"),
            // empty frame
            Vec::new(),
        ];

        let lines = js_decode_lines(&frames)?;
        // The exact text pins the decoder's key order as well.
        assert_eq!(
            lines[0],
            r#"{"type":"test","data":{"$bytes":"0102ff"},"storageId":{"$undefined":true},"timestamp":1700000000123}"#
        );
        assert_eq!(
            lines[1],
            r#"{"u32":4294967295,"u64":{"$bigint":"5"},"big":{"$bigint":"4294967296"},"neg":{"$bigint":"-4294967297"},"neg32":-4294967296}"#
        );
        assert_eq!(lines[2], r#"{"2":"x","b":1,"$$bytes":null}"#);
        assert_eq!(
            lines[3],
            r#"{"type":"join","senderId":"interop-A-23401","peerMetadata":{"storageId":{"$undefined":true},"isEphemeral":true},"supportedProtocolVersions":["1"]}"#
        );
        assert_eq!(
            lines[4],
            r#"{"$error":"Data read, but end of buffer not reached"}"#
        );
        assert_eq!(lines[5], r#"{"$error":"Unexpected end of CBOR data"}"#);

        let values = js_decode(&frames)?;
        assert_eq!(values.len(), frames.len());
        assert_eq!(
            values[0],
            json!({
                "type": "test",
                "data": {"$bytes": "0102ff"},
                "storageId": {"$undefined": true},
                "timestamp": 1_700_000_000_123u64,
            })
        );
        assert_eq!(
            values[4]["$error"],
            "Data read, but end of buffer not reached"
        );
        assert_eq!(
            js_decode_one(&h("a1 64 74797065 64 70656572"))?,
            json!({"type": "peer"})
        );
        Ok(())
    }

    #[test]
    fn js_decode_of_nothing_runs_nothing() -> Result<()> {
        assert!(js_decode(&[])?.is_empty());
        Ok(())
    }
}
