//! The `changes` of a sync message, split into single changes.
//!
//! A v1 sync message carries one change chunk per entry; a v2 message may
//! carry several chunks back to back in one entry, or one whole document
//! chunk. Every chunk starts with the same header: magic bytes, a checksum,
//! a type byte and a LEB128 length.

use std::io::Read as _;
use std::sync::Arc;

use automerge::{Automerge, Change};

use super::graph::StoredChange;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;

/// Why the changes of a sync message cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    #[error("a chunk does not start with automerge's magic bytes")]
    BadMagic,
    #[error("a chunk ends before its declared length")]
    Truncated,
    #[error("unknown chunk type {0}")]
    UnknownType(u8),
    #[error("a change chunk does not load: {0}")]
    BadChange(String),
    #[error("a document chunk does not load: {0}")]
    BadDocument(String),
    /// Inflated, the chunk would be larger than allowed: refused before it
    /// is inflated in full.
    #[error("a {what} would inflate past {limit} bytes")]
    TooLarge {
        /// `change` or `document`.
        what: &'static str,
        /// The limit it passed.
        limit: usize,
    },
}

/// How large a chunk may grow once inflated: a compressed change or a
/// document's compressed columns are checked against these before automerge
/// inflates them, so a small frame cannot make the relay allocate without
/// bound (a decompression bomb).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// The largest change, inflated.
    pub max_change_bytes: usize,
    /// The largest document chunk, inflated.
    pub max_document_bytes: usize,
}

impl Default for ChunkLimits {
    /// 8 MiB a change, 64 MiB a document (the relay's default frame limit).
    fn default() -> Self {
        Self {
            max_change_bytes: 8 * 1024 * 1024,
            max_document_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Every change in `entries`, in the order they appear, under the default
/// [`ChunkLimits`].
pub fn split_changes<'a>(
    entries: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<StoredChange>, ChunkError> {
    split_changes_within(entries, &ChunkLimits::default())
}

/// Every change in `entries`, in the order they appear; a chunk that would
/// inflate past `limits` is refused before it is inflated in full.
pub fn split_changes_within<'a>(
    entries: impl Iterator<Item = &'a [u8]>,
    limits: &ChunkLimits,
) -> Result<Vec<StoredChange>, ChunkError> {
    let mut changes = Vec::new();
    for entry in entries {
        let mut rest = entry;
        while !rest.is_empty() {
            let (kind, chunk, after) = next_chunk(rest)?;
            rest = after;
            match kind {
                CHANGE => changes.push(load_change(chunk)?),
                COMPRESSED_CHANGE => {
                    let body = &chunk[body_start(chunk)?..];
                    inflated_within(body, limits.max_change_bytes, "change")?;
                    changes.push(load_change(chunk)?);
                }
                DOCUMENT => {
                    document_within(&chunk[body_start(chunk)?..], limits.max_document_bytes)?;
                    changes.extend(load_document(chunk)?);
                }
                other => return Err(ChunkError::UnknownType(other)),
            }
        }
    }
    Ok(changes)
}

/// Whether `entry` is exactly one document chunk (a saved document), as
/// automerge sends a peer that has none of a document.
pub(crate) fn is_one_document(entry: &[u8]) -> bool {
    matches!(next_chunk(entry), Ok((DOCUMENT, _, rest)) if rest.is_empty())
}

/// Where a chunk's body starts, after magic, checksum, type and length.
fn body_start(chunk: &[u8]) -> Result<usize, ChunkError> {
    let (_, header) =
        read_leb128(chunk.get(9..).ok_or(ChunkError::Truncated)?).ok_or(ChunkError::Truncated)?;
    Ok(9 + header)
}

/// Inflates raw deflate `data` no further than `limit` bytes; returns how
/// many it inflated to, or [`ChunkError::TooLarge`].
fn inflated_within(data: &[u8], limit: usize, what: &'static str) -> Result<usize, ChunkError> {
    let limit_plus_one = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut inflater = flate2::read::DeflateDecoder::new(data).take(limit_plus_one);
    let mut sink = [0u8; 16 * 1024];
    let mut total = 0usize;
    loop {
        match inflater.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => return Err(ChunkError::BadChange(format!("bad compressed data: {e}"))),
        }
        if total > limit {
            return Err(ChunkError::TooLarge { what, limit });
        }
    }
    Ok(total)
}

/// Checks that a document chunk's body, with its compressed columns
/// inflated, stays within `limit` bytes. The body's prefix: actors, heads,
/// then the change and op column specs (a LEB128 spec whose bit 3 marks a
/// deflated column, and a length), then the columns' data.
fn document_within(body: &[u8], limit: usize) -> Result<(), ChunkError> {
    let bad = || ChunkError::BadDocument("the document chunk's columns do not parse".into());
    let mut at = 0usize;
    let leb = |at: &mut usize| -> Result<u64, ChunkError> {
        let (value, used) = read_leb128(body.get(*at..).ok_or_else(bad)?).ok_or_else(bad)?;
        *at += used;
        Ok(value)
    };
    let actors = leb(&mut at)?;
    for _ in 0..actors {
        let len = usize::try_from(leb(&mut at)?).map_err(|_| bad())?;
        at = at
            .checked_add(len)
            .filter(|&end| end <= body.len())
            .ok_or_else(bad)?;
    }
    let heads = usize::try_from(leb(&mut at)?).map_err(|_| bad())?;
    at = heads
        .checked_mul(32)
        .and_then(|n| at.checked_add(n))
        .filter(|&end| end <= body.len())
        .ok_or_else(bad)?;
    let mut columns = Vec::new();
    for _ in 0..2 {
        let count = leb(&mut at)?;
        for _ in 0..count {
            let spec = leb(&mut at)?;
            let len = usize::try_from(leb(&mut at)?).map_err(|_| bad())?;
            columns.push((spec & 0b1000 != 0, len));
        }
    }
    let mut total = at;
    for (deflated, len) in columns {
        let end = at
            .checked_add(len)
            .filter(|&end| end <= body.len())
            .ok_or_else(bad)?;
        let size = if deflated {
            let left = limit.saturating_sub(total);
            inflated_within(&body[at..end], left, "document").map_err(|e| match e {
                ChunkError::TooLarge { what, .. } => ChunkError::TooLarge { what, limit },
                other => other,
            })?
        } else {
            len
        };
        total = total.saturating_add(size);
        if total > limit {
            return Err(ChunkError::TooLarge {
                what: "document",
                limit,
            });
        }
        at = end;
    }
    Ok(())
}

/// The first chunk of `bytes`: its type, its bytes (header included), and
/// what follows it.
fn next_chunk(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), ChunkError> {
    if bytes.len() < 9 {
        return Err(ChunkError::Truncated);
    }
    if bytes[..4] != MAGIC {
        return Err(ChunkError::BadMagic);
    }
    let kind = bytes[8];
    let (len, header) = read_leb128(&bytes[9..]).ok_or(ChunkError::Truncated)?;
    let end = 9usize
        .checked_add(header)
        .and_then(|n| n.checked_add(usize::try_from(len).ok()?))
        .filter(|&end| end <= bytes.len())
        .ok_or(ChunkError::Truncated)?;
    Ok((kind, &bytes[..end], &bytes[end..]))
}

/// An unsigned LEB128 number and how many bytes it took.
fn read_leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn load_change(chunk: &[u8]) -> Result<StoredChange, ChunkError> {
    let change =
        Change::from_bytes(chunk.to_vec()).map_err(|e| ChunkError::BadChange(e.to_string()))?;
    // The header's checksum is the start of the change's hash: a chunk whose
    // bytes were damaged no longer matches it.
    if change.hash().0[..4] != chunk[4..8] {
        return Err(ChunkError::BadChange(
            "the checksum does not match the contents".into(),
        ));
    }
    Ok(StoredChange {
        hash: change.hash(),
        deps: change.deps().to_vec(),
        actor: change.actor_id().to_bytes().to_vec(),
        bytes: Arc::from(chunk),
    })
}

fn load_document(chunk: &[u8]) -> Result<Vec<StoredChange>, ChunkError> {
    let doc = Automerge::load(chunk).map_err(|e| ChunkError::BadDocument(e.to_string()))?;
    Ok(doc
        .get_changes(&[])
        .iter()
        .map(StoredChange::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ROOT;
    use automerge::transaction::Transactable;

    fn doc_with(n: i64) -> Automerge {
        let mut doc = Automerge::new();
        for i in 0..n {
            doc.transact(|tx| tx.put(ROOT, "n", i)).unwrap();
        }
        doc
    }

    #[test]
    fn single_and_concatenated_change_chunks_split() {
        let doc = doc_with(3);
        let raw: Vec<Vec<u8>> = doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let one_each = split_changes(raw.iter().map(Vec::as_slice)).unwrap();
        let joined = raw.concat();
        let all_in_one = split_changes(std::iter::once(joined.as_slice())).unwrap();
        assert_eq!(one_each, all_in_one);
        assert_eq!(one_each.len(), 3);
        assert_eq!(one_each[1].deps, vec![one_each[0].hash]);
    }

    #[test]
    fn a_document_chunk_yields_its_changes() {
        let doc = doc_with(4);
        let saved = doc.save();
        let changes = split_changes(std::iter::once(saved.as_slice())).unwrap();
        let hashes: Vec<_> = changes.iter().map(|c| c.hash).collect();
        let expected: Vec<_> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
        assert_eq!(hashes, expected);
    }

    #[test]
    fn compressed_change_chunks_load_and_pass_the_checksum() {
        let mut doc = Automerge::new();
        doc.transact(|tx| tx.put(ROOT, "big", "x".repeat(10_000)))
            .unwrap();
        let mut change = doc.get_changes(&[])[0].clone();
        let chunk = change.bytes().into_owned();
        assert_eq!(
            chunk[8], COMPRESSED_CHANGE,
            "a large change goes compressed"
        );
        let split = split_changes(std::iter::once(chunk.as_slice())).unwrap();
        assert_eq!(split[0].hash, change.hash());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let doc = doc_with(1);
        let raw = doc.get_changes(&[])[0].raw_bytes().to_vec();
        for cut in 0..raw.len() {
            assert!(split_changes(std::iter::once(&raw[..cut])).is_err() || cut == 0);
        }
        let mut flipped = raw.clone();
        flipped[20] ^= 0xff;
        assert!(split_changes(std::iter::once(flipped.as_slice())).is_err());
        assert_eq!(
            split_changes(std::iter::once(&b"nope, not a chunk"[..])),
            Err(ChunkError::BadMagic)
        );
    }

    /// A compressed change chunk around `body` (its checksum is wrong, but
    /// the size check comes first).
    fn compressed_chunk(body: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflater.write_all(body).unwrap();
        let deflated = deflater.finish().unwrap();
        let mut chunk = MAGIC.to_vec();
        chunk.extend([0, 0, 0, 0, COMPRESSED_CHANGE]);
        let mut len = deflated.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                chunk.push(byte);
                break;
            }
            chunk.push(byte | 0x80);
        }
        chunk.extend(deflated);
        chunk
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_it_is_inflated() {
        // 64 MiB of zeros deflate to about 64 KiB.
        let bomb = compressed_chunk(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < 128 * 1024, "{}", bomb.len());
        let limits = ChunkLimits {
            max_change_bytes: 1024 * 1024,
            ..ChunkLimits::default()
        };
        assert_eq!(
            split_changes_within(std::iter::once(bomb.as_slice()), &limits),
            Err(ChunkError::TooLarge {
                what: "change",
                limit: 1024 * 1024
            })
        );
    }

    #[test]
    fn documents_with_compressed_columns_pass_within_their_limit_only() {
        let mut doc = Automerge::new();
        doc.transact(|tx| tx.put(ROOT, "big", "y".repeat(300_000)))
            .unwrap();
        let saved = doc.save();
        assert!(
            saved.len() < 20_000,
            "columns are deflated: {}",
            saved.len()
        );
        let roomy = ChunkLimits::default();
        assert_eq!(
            split_changes_within(std::iter::once(saved.as_slice()), &roomy)
                .unwrap()
                .len(),
            1
        );
        let tight = ChunkLimits {
            max_document_bytes: 100_000,
            ..ChunkLimits::default()
        };
        assert_eq!(
            split_changes_within(std::iter::once(saved.as_slice()), &tight),
            Err(ChunkError::TooLarge {
                what: "document",
                limit: 100_000
            })
        );
    }
}
