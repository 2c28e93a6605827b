//! The web app, embedded: `web/dist/` as the build script found it, served
//! at `/` and `/join` (the page), `/sw.js` (its service worker, which must
//! live at the root to cover the whole site) and `/assets/*` (content-hashed
//! files, cached for a year).
//!
//! Every answer carries the headers such a page needs: a strict
//! Content-Security-Policy (scripts and styles from this origin only,
//! `wasm-unsafe-eval` for automerge's WebAssembly, no framing), no MIME
//! sniffing, no referrer (an invite's secret lives in the fragment, but the
//! page's address should go nowhere either). Files are sent gzipped to
//! browsers that take it, compressed once on first request.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    /// The path it is served at, from `/`.
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What every page and script is allowed to do.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Hashed assets never change under their name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page and the service worker are checked on every load.
const REVALIDATE: &str = "no-cache";

/// What is derived from an asset once: its ETag and its gzipped bytes.
struct Prepared {
    etag: String,
    gzipped: Option<Vec<u8>>,
}

fn prepared(index: usize) -> &'static Prepared {
    static PREPARED: OnceLock<Vec<OnceLock<Prepared>>> = OnceLock::new();
    let all = PREPARED.get_or_init(|| ASSETS.iter().map(|_| OnceLock::new()).collect());
    all[index].get_or_init(|| {
        let bytes = ASSETS[index].bytes;
        let digest = Sha256::digest(bytes);
        let etag = format!(
            "\"{}\"",
            digest[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Prepared {
            etag,
            gzipped: gzip(bytes),
        }
    })
}

/// `bytes` gzipped, if that makes them smaller.
fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    let gzipped = encoder.finish().ok()?;
    (gzipped.len() < bytes.len()).then_some(gzipped)
}

/// `GET /` and `GET /join`: the app's page.
pub(crate) async fn page(headers: HeaderMap) -> Response {
    serve("/index.html", REVALIDATE, &headers).await
}

/// `GET /sw.js`: the service worker that keeps the app for offline use.
pub(crate) async fn service_worker(headers: HeaderMap) -> Response {
    serve("/sw.js", REVALIDATE, &headers).await
}

/// `GET /assets/{file}`.
pub(crate) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("/assets/{file}"), IMMUTABLE, &headers).await
}

async fn serve(path: &str, cache: &'static str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.path == path) else {
        return not_found(path);
    };
    // Hashing and compressing the 3.6 MB wasm once is work for a blocking
    // thread, not an async worker.
    let Ok(prepared) = tokio::task::spawn_blocking(move || prepared(index)).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot prepare the file\n",
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let mut response = if request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == prepared.etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let takes_gzip = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        match (&prepared.gzipped, takes_gzip) {
            (Some(gzipped), true) => (
                [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                gzipped.as_slice(),
            )
                .into_response(),
            _ => asset.bytes.into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(etag) = HeaderValue::from_str(&prepared.etag) {
        headers.insert(header::ETAG, etag);
    }
    secure(headers);
    response
}

/// The headers every answer from the web app carries.
pub(crate) fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

fn not_found(path: &str) -> Response {
    let text = if path == "/index.html" {
        "this relay was built without the web app (web/dist was missing)\n"
    } else {
        "no such file\n"
    };
    let mut response = (StatusCode::NOT_FOUND, text).into_response();
    secure(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_embedded_with_its_page_script_and_wasm() {
        let path = |p: &str| ASSETS.iter().find(|a| a.path == p);
        let page = path("/index.html").expect("web/dist/index.html is embedded");
        let page = std::str::from_utf8(page.bytes).expect("the page is text");
        // Every file the page names is embedded, and none is inline.
        for name in page.split('"').filter(|s| s.starts_with("/assets/")) {
            assert!(
                path(name).is_some(),
                "{name} is named by the page but missing"
            );
        }
        assert!(!page.contains("<script>") && !page.contains("<style"));
        assert!(
            ASSETS
                .iter()
                .any(|a| a.content_type == "application/wasm" && a.path.starts_with("/assets/"))
        );
        assert!(path("/sw.js").is_some());
    }

    #[test]
    fn compressing_helps_and_round_trips() {
        use std::io::Read as _;
        let text = "rapport ".repeat(1000);
        let gzipped = gzip(text.as_bytes()).expect("repetitive text compresses");
        let mut back = String::new();
        flate2::read::GzDecoder::new(gzipped.as_slice())
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        assert_eq!(gzip(&[7]), None, "one byte does not get smaller");
    }
}
