//! One stored change as bytes: `hash (32) | dependency count (u32 LE) |
//! dependencies (32 each) | actor length (u32 LE) | actor | change bytes`.
//! The metadata is stored beside the bytes so that loading a document does
//! not parse its changes.

use std::sync::Arc;

use automerge::ChangeHash;
use rapport_protocol::relay::StoredChange;

/// How many bytes [`encode`] makes of `change`.
pub(crate) fn encoded_len(change: &StoredChange) -> usize {
    40 + 32 * change.deps.len() + change.actor.len() + change.bytes.len()
}

pub(crate) fn encode(change: &StoredChange) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(change));
    out.extend_from_slice(&change.hash.0);
    out.extend_from_slice(&(change.deps.len() as u32).to_le_bytes());
    for dep in &change.deps {
        out.extend_from_slice(&dep.0);
    }
    out.extend_from_slice(&(change.actor.len() as u32).to_le_bytes());
    out.extend_from_slice(&change.actor);
    out.extend_from_slice(&change.bytes);
    out
}

/// A compacted change: `hash | dependency count | dependencies`.
pub(crate) fn encode_meta(hash: &ChangeHash, deps: &[ChangeHash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + 32 * deps.len());
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(&(deps.len() as u32).to_le_bytes());
    for dep in deps {
        out.extend_from_slice(&dep.0);
    }
    out
}

/// `None` when the bytes are not a compacted change.
pub(crate) fn decode_meta(bytes: &[u8]) -> Option<(ChangeHash, Vec<ChangeHash>)> {
    let mut rest = bytes;
    let hash = ChangeHash(take(&mut rest, 32)?.try_into().ok()?);
    let count = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
    if count != rest.len() / 32 || !rest.len().is_multiple_of(32) {
        return None;
    }
    let deps = rest
        .chunks_exact(32)
        .map(|d| d.try_into().ok().map(ChangeHash))
        .collect::<Option<Vec<_>>>()?;
    Some((hash, deps))
}

/// `None` when the bytes are not a stored change (a corrupt file).
pub(crate) fn decode(bytes: &[u8]) -> Option<StoredChange> {
    let mut rest = bytes;
    let hash = ChangeHash(take(&mut rest, 32)?.try_into().ok()?);
    let count = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
    if count > rest.len() / 32 {
        return None;
    }
    let mut deps = Vec::with_capacity(count);
    for _ in 0..count {
        deps.push(ChangeHash(take(&mut rest, 32)?.try_into().ok()?));
    }
    let actor_len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
    let actor = take(&mut rest, actor_len)?.to_vec();
    Some(StoredChange {
        hash,
        deps,
        actor,
        bytes: Arc::from(rest),
    })
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_truncation() {
        let change = StoredChange {
            hash: ChangeHash([1; 32]),
            deps: vec![ChangeHash([2; 32]), ChangeHash([3; 32])],
            actor: vec![4; 40],
            bytes: Arc::from(vec![5u8; 100]),
        };
        let bytes = encode(&change);
        assert_eq!(decode(&bytes), Some(change));
        for cut in 0..(32 + 4 + 64 + 4 + 40) {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }
}
