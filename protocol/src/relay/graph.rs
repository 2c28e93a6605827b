//! The change graph of one document: hashes, dependencies, actors and the
//! raw change bytes, without the document itself.
//!
//! Nodes are numbered in the order they were added, which is a topological
//! order (a change is added only after its dependencies). Each node also has
//! a generation: one more than the largest generation of its dependencies,
//! so an ancestor always has a smaller generation than its descendants.
//! Generations let the questions the sync protocol asks ("which changes are
//! not ancestors of these heads?") be answered by walking back only as far
//! as the heads in question reach, instead of over the whole history.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;

use automerge::ChangeHash;

/// Maps and sets keyed by change hashes and by node numbers. Fx hashing, a
/// few multiplications: SipHash spent a large part of each sync answer's
/// time. The keys are SHA-256 digests, which nobody can choose, and
/// numbers of our own.
type Map<K, V> = rustc_hash::FxHashMap<K, V>;
pub(crate) type HashSet<T> = rustc_hash::FxHashSet<T>;

/// One change as the relay keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub hash: ChangeHash,
    pub deps: Vec<ChangeHash>,
    /// The actor id's bytes.
    pub actor: Vec<u8>,
    /// The change chunk as it arrived.
    pub bytes: Arc<[u8]>,
}

impl From<&automerge::Change> for StoredChange {
    fn from(change: &automerge::Change) -> Self {
        Self {
            hash: change.hash(),
            deps: change.deps().to_vec(),
            actor: change.actor_id().to_bytes().to_vec(),
            bytes: Arc::from(change.raw_bytes()),
        }
    }
}

impl StoredChange {
    /// The changes of `doc` that are not ancestors of `heads`, as stored.
    pub fn since(doc: &automerge::Automerge, heads: &[ChangeHash]) -> Vec<Self> {
        doc.get_changes(heads).iter().map(Self::from).collect()
    }
}

impl std::fmt::Debug for StoredChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredChange")
            .field("hash", &self.hash)
            .field("deps", &self.deps.len())
            .field("actor", &self.actor.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

#[derive(Debug)]
struct Node {
    hash: ChangeHash,
    deps: Box<[u32]>,
    generation: u32,
    /// `None` for a change whose bytes live only in the document's snapshot.
    bytes: Option<Arc<[u8]>>,
}

/// The change graph. See the module documentation.
#[derive(Debug, Default)]
pub struct ChangeGraph {
    nodes: Vec<Node>,
    by_hash: Map<ChangeHash, u32>,
    heads: BTreeSet<u32>,
    /// Nodes visited by walks so far: the work the sync answers cost.
    walked: Cell<u64>,
    /// Room for [`ChangeGraph::not_ancestors_of`], kept between walks: a
    /// sync answer walks once or twice, and hashing each visited node into
    /// a fresh map cost more than the walk itself.
    scratch: RefCell<Scratch>,
}

/// A walk's working state; every flag is back to zero between walks.
#[derive(Debug, Default)]
struct Scratch {
    /// One per node: [`FROM_HEADS`] and [`FROM_BASE`].
    flags: Vec<u8>,
    /// The nodes whose flags the walk set.
    touched: Vec<u32>,
    /// Nodes to visit, highest generation first.
    queue: BinaryHeap<(u32, u32)>,
}

/// Painting flags of the walk in [`ChangeGraph::not_ancestors_of`].
const FROM_HEADS: u8 = 1;
const FROM_BASE: u8 = 2;

impl ChangeGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no changes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether the graph holds `hash`.
    pub fn contains(&self, hash: &ChangeHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The current heads, sorted.
    pub fn heads(&self) -> Vec<ChangeHash> {
        let mut heads: Vec<_> = self.heads.iter().map(|&i| self.hash_of(i)).collect();
        heads.sort_unstable();
        heads
    }

    /// Adds a change whose dependencies are all present. Returns false (and
    /// changes nothing) if a dependency is missing, the change is known, or
    /// the document already holds 2^32 changes.
    pub fn add(&mut self, change: &StoredChange) -> bool {
        self.insert(change.hash, &change.deps, Some(Arc::clone(&change.bytes)))
    }

    /// Adds a change whose bytes are in the snapshot only; as [`Self::add`].
    pub fn add_without_bytes(&mut self, hash: ChangeHash, deps: &[ChangeHash]) -> bool {
        self.insert(hash, deps, None)
    }

    /// Supplies the bytes of a change added without them.
    pub fn fill_bytes(&mut self, hash: &ChangeHash, bytes: Arc<[u8]>) {
        if let Some(&i) = self.by_hash.get(hash) {
            self.nodes[i as usize].bytes.get_or_insert(bytes);
        }
    }

    fn insert(&mut self, hash: ChangeHash, deps: &[ChangeHash], bytes: Option<Arc<[u8]>>) -> bool {
        if self.contains(&hash) {
            return false;
        }
        let Some(deps) = deps
            .iter()
            .map(|d| self.by_hash.get(d).copied())
            .collect::<Option<Box<[u32]>>>()
        else {
            return false;
        };
        let generation = deps
            .iter()
            .map(|&d| self.nodes[d as usize].generation + 1)
            .max()
            .unwrap_or(0);
        let Ok(index) = u32::try_from(self.nodes.len()) else {
            return false; // 2^32 changes in one document: refuse more
        };
        for dep in deps.iter() {
            self.heads.remove(dep);
        }
        self.heads.insert(index);
        self.by_hash.insert(hash, index);
        self.nodes.push(Node {
            hash,
            deps,
            generation,
            bytes,
        });
        true
    }

    /// Whether every change among `hashes` has its bytes at hand.
    pub fn has_bytes_of(&self, hashes: &[ChangeHash]) -> bool {
        hashes
            .iter()
            .filter_map(|h| self.by_hash.get(h))
            .all(|&i| self.nodes[i as usize].bytes.is_some())
    }

    /// The bytes of the changes with these hashes, in topological order;
    /// unknown hashes and changes without bytes are skipped.
    pub fn bytes_of(&self, hashes: &[ChangeHash]) -> Vec<Arc<[u8]>> {
        let mut indices: Vec<u32> = hashes
            .iter()
            .filter_map(|h| self.by_hash.get(h).copied())
            .collect();
        indices.sort_unstable();
        indices.dedup();
        indices
            .iter()
            .filter_map(|&i| self.nodes[i as usize].bytes.clone())
            .collect()
    }

    /// How many of `hashes` the graph holds only in the snapshot (without
    /// bytes of their own).
    pub fn count_without_bytes(&self, hashes: &[ChangeHash]) -> usize {
        hashes
            .iter()
            .filter_map(|h| self.by_hash.get(h))
            .filter(|&&i| self.nodes[i as usize].bytes.is_none())
            .count()
    }

    /// Every change that is not an ancestor of (or in) `base`, in
    /// topological order: what a peer whose heads are `base` lacks.
    /// Unknown hashes in `base` are ignored.
    ///
    /// Cost: the walk from the heads and from `base` stops as soon as every
    /// open path is known to lead into `base`'s ancestry, so it visits the
    /// changes since `base` and the few around them, not the whole history.
    pub fn not_ancestors_of(&self, base: &[ChangeHash]) -> Vec<ChangeHash> {
        let base: Vec<u32> = base
            .iter()
            .filter_map(|h| self.by_hash.get(h).copied())
            .collect();
        if base.is_empty() {
            return self.nodes.iter().map(|n| n.hash).collect();
        }
        let mut scratch = self.scratch.borrow_mut();
        let Scratch {
            flags,
            touched,
            queue,
        } = &mut *scratch;
        if flags.len() < self.nodes.len() {
            flags.resize(self.nodes.len(), 0);
        }
        for (&i, flag) in self
            .heads
            .iter()
            .map(|i| (i, FROM_HEADS))
            .chain(base.iter().map(|i| (i, FROM_BASE)))
        {
            if flags[i as usize] == 0 {
                touched.push(i);
            }
            flags[i as usize] |= flag;
        }
        let mut open = 0usize; // queued nodes not known to be in base's ancestry
        for &i in touched.iter() {
            queue.push((self.nodes[i as usize].generation, i));
            if flags[i as usize] & FROM_BASE == 0 {
                open += 1;
            }
        }
        let mut result = Vec::new();
        while open > 0 {
            let Some((_, i)) = queue.pop() else { break };
            self.walked.set(self.walked.get() + 1);
            let f = flags[i as usize];
            if f & FROM_BASE == 0 {
                open -= 1;
                result.push(i);
            }
            for &dep in self.nodes[i as usize].deps.iter() {
                // A dependency has a lower generation: it is still queued
                // (or new), never visited already.
                let before = flags[dep as usize];
                if before == 0 {
                    flags[dep as usize] = f;
                    touched.push(dep);
                    queue.push((self.nodes[dep as usize].generation, dep));
                    if f & FROM_BASE == 0 {
                        open += 1;
                    }
                } else {
                    flags[dep as usize] |= f;
                    if before & FROM_BASE == 0 && f & FROM_BASE != 0 {
                        open -= 1;
                    }
                }
            }
        }
        for &i in touched.iter() {
            flags[i as usize] = 0;
        }
        touched.clear();
        queue.clear();
        drop(scratch);
        result.sort_unstable();
        result.into_iter().map(|i| self.hash_of(i)).collect()
    }

    /// Removes from `set` every hash that is `heads` or an ancestor of them.
    pub fn remove_ancestors(&self, set: &mut HashSet<ChangeHash>, heads: &[ChangeHash]) {
        if set.is_empty() {
            return;
        }
        let Some(floor) = set
            .iter()
            .filter_map(|h| self.by_hash.get(h))
            .map(|&i| self.nodes[i as usize].generation)
            .min()
        else {
            return;
        };
        let mut seen: BTreeSet<u32> = BTreeSet::new();
        let mut stack: Vec<u32> = heads
            .iter()
            .filter_map(|h| self.by_hash.get(h).copied())
            .collect();
        while let Some(i) = stack.pop() {
            let node = &self.nodes[i as usize];
            if node.generation < floor || !seen.insert(i) {
                continue;
            }
            self.walked.set(self.walked.get() + 1);
            set.remove(&node.hash);
            stack.extend(node.deps.iter().copied());
        }
    }

    /// The dependencies of `hash`, if the graph holds it.
    pub fn deps_of(&self, hash: &ChangeHash) -> Option<impl Iterator<Item = ChangeHash> + '_> {
        let &i = self.by_hash.get(hash)?;
        Some(self.nodes[i as usize].deps.iter().map(|&d| self.hash_of(d)))
    }

    /// How many nodes the graph's walks have visited since it was made: a
    /// measure of work that does not depend on the machine.
    pub fn nodes_walked(&self) -> u64 {
        self.walked.get()
    }

    /// Every change's hash, in topological order.
    pub fn hashes(&self) -> impl Iterator<Item = ChangeHash> + '_ {
        self.nodes.iter().map(|n| n.hash)
    }

    fn hash_of(&self, index: u32) -> ChangeHash {
        self.nodes[index as usize].hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u8, deps: &[u8]) -> StoredChange {
        StoredChange {
            hash: ChangeHash([n; 32]),
            deps: deps.iter().map(|&d| ChangeHash([d; 32])).collect(),
            actor: vec![1],
            bytes: Arc::from(vec![n]),
        }
    }

    fn hashes(ns: &[u8]) -> Vec<ChangeHash> {
        ns.iter().map(|&n| ChangeHash([n; 32])).collect()
    }

    /// 1 ← 2 ← 3 ← 5, 2 ← 4 ← 5 (4 concurrent with 3), 6 on 1 alone.
    fn diamond() -> ChangeGraph {
        let mut g = ChangeGraph::new();
        for (n, deps) in [
            (1, &[][..]),
            (2, &[1]),
            (3, &[2]),
            (4, &[2]),
            (5, &[3, 4]),
            (6, &[1]),
        ] {
            assert!(g.add(&change(n, deps)));
        }
        g
    }

    #[test]
    fn heads_follow_additions() {
        let g = diamond();
        assert_eq!(g.heads(), hashes(&[5, 6]));
        assert_eq!(g.len(), 6);
    }

    #[test]
    fn a_change_with_a_missing_dependency_is_not_added() {
        let mut g = diamond();
        assert!(!g.add(&change(9, &[8])));
        assert!(
            !g.add(&change(5, &[3, 4])),
            "a known change is not added twice"
        );
        assert_eq!(g.len(), 6);
    }

    #[test]
    fn not_ancestors_of_matches_a_full_walk() {
        let g = diamond();
        let cases: [(&[u8], &[u8]); 7] = [
            (&[], &[1, 2, 3, 4, 5, 6]),
            (&[5, 6], &[]),
            (&[3], &[4, 5, 6]),
            (&[4], &[3, 5, 6]),
            (&[3, 4], &[5, 6]),
            (&[6], &[2, 3, 4, 5]),
            (&[1], &[2, 3, 4, 5, 6]),
        ];
        for (base, expected) in cases {
            assert_eq!(
                g.not_ancestors_of(&hashes(base)),
                hashes(expected),
                "base {base:?}"
            );
        }
    }

    #[test]
    fn remove_ancestors_keeps_the_rest() {
        let g = diamond();
        let mut set: HashSet<_> = hashes(&[3, 4, 6]).into_iter().collect();
        g.remove_ancestors(&mut set, &hashes(&[3]));
        let mut left: Vec<_> = set.into_iter().collect();
        left.sort_unstable();
        assert_eq!(left, hashes(&[4, 6]));
    }
}
