//! The `changes` of a sync message, split into single changes.
//!
//! A v1 sync message carries one change chunk per entry; a v2 message may
//! carry several chunks back to back in one entry, or one whole document
//! chunk. Every chunk starts with the same header: magic bytes, a checksum,
//! a type byte and a LEB128 length.

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
}

/// Every change in `entries`, in the order they appear.
pub fn split_changes<'a>(
    entries: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<StoredChange>, ChunkError> {
    let mut changes = Vec::new();
    for entry in entries {
        let mut rest = entry;
        while !rest.is_empty() {
            let (kind, chunk, after) = next_chunk(rest)?;
            rest = after;
            match kind {
                CHANGE | COMPRESSED_CHANGE => changes.push(load_change(chunk)?),
                DOCUMENT => changes.extend(load_document(chunk)?),
                other => return Err(ChunkError::UnknownType(other)),
            }
        }
    }
    Ok(changes)
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
}
