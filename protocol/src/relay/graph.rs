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
use std::hash::BuildHasher as _;
use std::sync::Arc;

use automerge::ChangeHash;
use hashbrown::HashTable;

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

/// The change graph. See the module documentation.
///
/// A node is a change's number; what the graph knows of it sits in columns
/// indexed by that number, about 45 bytes a change: the hash, the
/// generation, the dependencies as numbers, and an index from hash to
/// number that stores numbers only. Change bytes are kept for the changes
/// that have them outside the document's snapshot.
#[derive(Debug, Default)]
pub struct ChangeGraph {
    hashes: Vec<ChangeHash>,
    generations: Vec<u32>,
    /// Node `i`'s dependencies are `dep_list[dep_start[i]..dep_start[i + 1]]`.
    dep_start: Vec<u32>,
    dep_list: Vec<u32>,
    /// The bytes of the changes that have their own; the others live only
    /// in the document's snapshot.
    bytes: Map<u32, Arc<[u8]>>,
    /// Node numbers, found by their change's hash.
    index: HashTable<u32>,
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

fn hash_key(hash: &ChangeHash) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(hash)
}

impl ChangeGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when there are no changes.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether the graph holds `hash`.
    pub fn contains(&self, hash: &ChangeHash) -> bool {
        self.index_of(hash).is_some()
    }

    fn index_of(&self, hash: &ChangeHash) -> Option<u32> {
        self.index
            .find(hash_key(hash), |&i| self.hashes[i as usize] == *hash)
            .copied()
    }

    fn deps(&self, index: u32) -> &[u32] {
        let i = index as usize;
        &self.dep_list[self.dep_start[i] as usize..self.dep_start[i + 1] as usize]
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

    /// Forgets the bytes of these changes (a snapshot holds them now).
    pub fn drop_bytes(&mut self, hashes: &[ChangeHash]) {
        for hash in hashes {
            if let Some(i) = self.index_of(hash) {
                self.bytes.remove(&i);
            }
        }
        if self.bytes.capacity() > 4 * self.bytes.len().max(64) {
            self.bytes.shrink_to_fit();
        }
    }

    fn insert(&mut self, hash: ChangeHash, deps: &[ChangeHash], bytes: Option<Arc<[u8]>>) -> bool {
        if self.contains(&hash) {
            return false;
        }
        let Some(deps) = deps
            .iter()
            .map(|d| self.index_of(d))
            .collect::<Option<Vec<u32>>>()
        else {
            return false;
        };
        let (Ok(index), Ok(deps_end)) = (
            u32::try_from(self.hashes.len()),
            u32::try_from(self.dep_list.len() + deps.len()),
        ) else {
            return false; // 2^32 changes (or dependencies) in one document
        };
        let generation = deps
            .iter()
            .map(|&d| self.generations[d as usize] + 1)
            .max()
            .unwrap_or(0);
        for dep in &deps {
            self.heads.remove(dep);
        }
        self.heads.insert(index);
        if self.dep_start.is_empty() {
            self.dep_start.push(0);
        }
        self.dep_list.extend_from_slice(&deps);
        self.dep_start.push(deps_end);
        self.generations.push(generation);
        self.hashes.push(hash);
        if let Some(bytes) = bytes {
            self.bytes.insert(index, bytes);
        }
        let hashes = &self.hashes;
        self.index
            .insert_unique(hash_key(&hash), index, |&i| hash_key(&hashes[i as usize]));
        true
    }

    /// The bytes of the changes with these hashes, in topological order;
    /// unknown hashes and changes without bytes are skipped.
    pub fn bytes_of(&self, hashes: &[ChangeHash]) -> Vec<Arc<[u8]>> {
        self.in_order(hashes)
            .into_iter()
            .filter_map(|(_, bytes)| bytes)
            .collect()
    }

    /// `hashes` the graph holds, in topological order, each with its bytes
    /// if it has its own.
    pub fn in_order(&self, hashes: &[ChangeHash]) -> Vec<(ChangeHash, Option<Arc<[u8]>>)> {
        let mut indices: Vec<u32> = hashes.iter().filter_map(|h| self.index_of(h)).collect();
        indices.sort_unstable();
        indices.dedup();
        indices
            .into_iter()
            .map(|i| (self.hash_of(i), self.bytes.get(&i).cloned()))
            .collect()
    }

    /// How many changes have bytes of their own.
    pub fn with_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The bytes of the changes that have their own.
    pub fn bytes_held(&self) -> usize {
        self.bytes.values().map(|b| b.len()).sum()
    }

    /// How many of `hashes` the graph holds only in the snapshot (without
    /// bytes of their own).
    pub fn count_without_bytes(&self, hashes: &[ChangeHash]) -> usize {
        hashes
            .iter()
            .filter_map(|h| self.index_of(h))
            .filter(|i| !self.bytes.contains_key(i))
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
        let base: Vec<u32> = base.iter().filter_map(|h| self.index_of(h)).collect();
        if base.is_empty() {
            return self.hashes.clone();
        }
        let heads: Vec<u32> = self.heads.iter().copied().collect();
        self.walk_between(&heads, &base)
    }

    /// `from` and their ancestors that are not ancestors of (or in)
    /// `base`, in topological order: what a peer whose heads moved from
    /// `base` to `from` confirmed it holds. Unknown hashes on either side
    /// are ignored. Costs what [`ChangeGraph::not_ancestors_of`] does: the
    /// changes between the two, not the history below them.
    pub fn between(&self, from: &[ChangeHash], base: &[ChangeHash]) -> Vec<ChangeHash> {
        let from: Vec<u32> = from.iter().filter_map(|h| self.index_of(h)).collect();
        let base: Vec<u32> = base.iter().filter_map(|h| self.index_of(h)).collect();
        self.walk_between(&from, &base)
    }

    /// The walk of [`ChangeGraph::not_ancestors_of`] and
    /// [`ChangeGraph::between`], from the nodes `from` down to `base`.
    fn walk_between(&self, from: &[u32], base: &[u32]) -> Vec<ChangeHash> {
        let mut scratch = self.scratch.borrow_mut();
        let Scratch {
            flags,
            touched,
            queue,
        } = &mut *scratch;
        if flags.len() < self.len() {
            flags.resize(self.len(), 0);
        }
        for (&i, flag) in from
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
            queue.push((self.generations[i as usize], i));
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
            for &dep in self.deps(i) {
                // A dependency has a lower generation: it is still queued
                // (or new), never visited already.
                let before = flags[dep as usize];
                if before == 0 {
                    flags[dep as usize] = f;
                    touched.push(dep);
                    queue.push((self.generations[dep as usize], dep));
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
            .filter_map(|h| self.index_of(h))
            .map(|i| self.generations[i as usize])
            .min()
        else {
            return;
        };
        let mut seen: BTreeSet<u32> = BTreeSet::new();
        let mut stack: Vec<u32> = heads.iter().filter_map(|h| self.index_of(h)).collect();
        while let Some(i) = stack.pop() {
            if self.generations[i as usize] < floor || !seen.insert(i) {
                continue;
            }
            self.walked.set(self.walked.get() + 1);
            set.remove(&self.hashes[i as usize]);
            stack.extend_from_slice(self.deps(i));
        }
    }

    /// The dependencies of `hash`, if the graph holds it.
    pub fn deps_of(&self, hash: &ChangeHash) -> Option<impl Iterator<Item = ChangeHash> + '_> {
        let i = self.index_of(hash)?;
        Some(self.deps(i).iter().map(|&d| self.hash_of(d)))
    }

    /// How many nodes the graph's walks have visited since it was made: a
    /// measure of work that does not depend on the machine.
    pub fn nodes_walked(&self) -> u64 {
        self.walked.get()
    }

    fn hash_of(&self, index: u32) -> ChangeHash {
        self.hashes[index as usize]
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
    fn between_is_what_one_set_of_heads_adds_to_another() {
        let g = diamond();
        let cases: [(&[u8], &[u8], &[u8]); 6] = [
            (&[5], &[3], &[4, 5]),
            (&[5, 6], &[2], &[3, 4, 5, 6]),
            (&[3], &[4], &[3]),
            (&[3], &[5], &[]),
            (&[6], &[], &[1, 6]),
            (&[], &[1], &[]),
        ];
        for (from, base, expected) in cases {
            assert_eq!(
                g.between(&hashes(from), &hashes(base)),
                hashes(expected),
                "from {from:?} base {base:?}"
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
