//! Embeds the web app's built bundle (`web/dist/`, committed) into the
//! relay: every file becomes an entry of `$OUT_DIR/web_assets.rs`, a table
//! of paths, content types and `include_bytes!` contents that
//! `src/web.rs` serves. No npm is needed to build the relay.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    println!("cargo::rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    collect(&dist, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for file in &files {
        let path = file.strip_prefix(&dist).expect("under dist");
        let url = format!("/{}", path.to_string_lossy().replace('\\', "/"));
        println!("cargo::rerun-if-changed={}", file.display());
        writeln!(
            table,
            "    Asset {{ path: {url:?}, content_type: {:?}, bytes: include_bytes!({:?}) }},",
            content_type(file),
            file.canonicalize().expect("a file that exists"),
        )
        .expect("writing to a string");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("web_assets.rs"), table).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // No bundle (a checkout without web/dist): the relay serves a page
        // saying so, and every API keeps working.
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
