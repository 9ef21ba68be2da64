//! The RFC 9162 (Certificate Transparency v2) Merkle tree over entry hashes: hashing,
//! the append-only frontier the sequencer keeps in memory, proof *plans* (which stored
//! perfect subtrees a proof needs, so a store answers with O(log n) reads), and proof
//! verification.
//!
//! Storage model: every perfect, aligned subtree — leaves `[i·2^l, (i+1)·2^l)` — is a
//! [`NodeId`] `{ level: l, index: i }`, written once when its last leaf is appended and
//! never changed. Any subtree the RFC needs is either such a node or, on the right edge
//! of the tree, the fold of at most log₂ n of them.

use crate::hash::Hash;
use std::collections::HashMap;

/// RFC 9162 leaf hash: SHA-256(0x00 || leaf input).
pub fn leaf_hash(input: &[u8]) -> Hash {
    Hash::of_parts(&[&[0x00], input])
}

/// RFC 9162 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::of_parts(&[&[0x01], &left.0, &right.0])
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Hash::of(b"")
}

/// A perfect, aligned subtree: the leaves `[index << level, (index + 1) << level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub fn first_leaf(&self) -> u64 {
        self.index << self.level
    }
    pub fn end_leaf(&self) -> u64 {
        (self.index + 1) << self.level
    }
}

/// Why a proof did not verify, or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {first} is larger than tree size {second}")]
    SizesReversed { first: u64, second: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyFirstTree,
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("a hash in the proof, a leaf or a root is not 32 bytes")]
    MalformedHash,
    #[error("the recomputed root does not match the expected root")]
    RootMismatch,
    #[error("the store lacks Merkle node level {level} index {index}")]
    MissingNode { level: u8, index: u64 },
}

/// Largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees whose fold (right to left) is the hash of leaves `[lo, hi)`,
/// for ranges that occur in RFC 9162 trees (where `lo` is aligned to the largest part).
pub fn range_parts(mut lo: u64, hi: u64) -> Vec<NodeId> {
    let mut parts = Vec::new();
    while lo < hi {
        let level = 63 - (hi - lo).leading_zeros() as u8;
        // Alignment holds for every range the RFC recursion produces; guard anyway so a
        // misuse yields smaller parts, never a wrong NodeId.
        let level = level.min(lo.trailing_zeros().min(63) as u8);
        parts.push(NodeId {
            level,
            index: lo >> level,
        });
        lo += 1 << level;
    }
    parts
}

/// Folds the hashes of a range's parts (left to right) into the range's hash.
fn fold_parts(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// The leaf ranges whose hashes form the inclusion proof of leaf `index` in a tree of
/// `size` leaves (RFC 9162 §2.1.3.1 PATH), in proof order (nearest the leaf first).
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut lo, mut hi) = (0, size);
    let mut top_down = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index - lo < k {
            top_down.push((lo + k, hi));
            hi = lo + k;
        } else {
            top_down.push((lo, lo + k));
            lo += k;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// The leaf ranges whose hashes form the consistency proof from `first` to `second`
/// leaves (RFC 9162 §2.1.4.1 SUBPROOF), in proof order.
pub fn consistency_ranges(first: u64, second: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if first > second {
        return Err(ProofError::SizesReversed { first, second });
    }
    if first == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    let mut top_down = Vec::new();
    let (mut m, mut lo, mut hi, mut complete) = (first, 0u64, second, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !complete {
                top_down.push((lo, hi));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            top_down.push((lo + k, hi));
            hi = lo + k;
        } else {
            top_down.push((lo, lo + k));
            m -= k;
            lo += k;
            complete = false;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// A proof to be filled from storage: the ranges it needs and the perfect nodes behind
/// them. A store answers [`ProofPlan::nodes`] in one read, then [`ProofPlan::assemble`].
#[derive(Debug, Clone)]
pub struct ProofPlan {
    ranges: Vec<(u64, u64)>,
}

impl ProofPlan {
    pub fn inclusion(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
        Ok(ProofPlan {
            ranges: inclusion_ranges(index, size)?,
        })
    }

    pub fn consistency(first: u64, second: u64) -> Result<ProofPlan, ProofError> {
        let ranges = if first == second {
            Vec::new()
        } else {
            consistency_ranges(first, second)?
        };
        Ok(ProofPlan { ranges })
    }

    /// The root of a tree of `size` leaves, as a plan with one range.
    pub fn root(size: u64) -> ProofPlan {
        ProofPlan {
            ranges: if size == 0 { vec![] } else { vec![(0, size)] },
        }
    }

    /// Every perfect node the proof needs, without duplicates. At most 2·log₂ n.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self
            .ranges
            .iter()
            .flat_map(|&(lo, hi)| range_parts(lo, hi))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Builds the proof hashes from the fetched nodes.
    pub fn assemble(&self, nodes: &HashMap<NodeId, Hash>) -> Result<Vec<Hash>, ProofError> {
        self.ranges
            .iter()
            .map(|&(lo, hi)| {
                let hashes = range_parts(lo, hi)
                    .into_iter()
                    .map(|id| {
                        nodes.get(&id).copied().ok_or(ProofError::MissingNode {
                            level: id.level,
                            index: id.index,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                fold_parts(&hashes).ok_or(ProofError::WrongLength)
            })
            .collect()
    }
}

/// The right edge of a tree of `size` leaves: the perfect subtrees of the binary
/// decomposition of `size`, largest first. Appending needs only these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The node ids of the peaks of a tree of `size` leaves, largest first.
    pub fn peak_ids(size: u64) -> Vec<NodeId> {
        range_parts(0, size)
    }

    /// Rebuilds a frontier from stored peaks (as listed by [`Frontier::peak_ids`]).
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Option<Frontier> {
        (peaks.len() == size.count_ones() as usize).then_some(Frontier { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf hash and reports every perfect node it completes (levels >= 1).
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, Hash)) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0u8;
        while (self.size >> level) & 1 == 1 {
            // Invariant: one peak per set bit of `size`, so a set bit has a peak to pop.
            let Some(left) = self.peaks.pop() else {
                unreachable!("frontier has fewer peaks than set bits in its size")
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(
                NodeId {
                    level,
                    index: index >> level,
                },
                hash,
            );
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        fold_parts(&self.peaks).unwrap_or_else(empty_root)
    }
}

fn hash_arg(bytes: &[u8]) -> Result<Hash, ProofError> {
    Hash::from_slice(bytes).ok_or(ProofError::MalformedHash)
}

/// Verifies an RFC 9162 §2.1.3.2 inclusion proof.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = hash_arg(leaf)?;
    for p in proof {
        let p = hash_arg(p.as_ref())?;
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(&p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, &p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r.0.as_slice() != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies an RFC 9162 §2.1.4.2 consistency proof between tree sizes `first` and
/// `second`. Equal sizes need an empty proof and equal roots; the empty first tree is
/// refused because nothing can be proved about it.
pub fn verify_consistency<P: AsRef<[u8]>>(
    first: u64,
    second: u64,
    proof: &[P],
    first_root: &[u8],
    second_root: &[u8],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesReversed { first, second });
    }
    if first == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(hash_arg(first_root)?);
    }
    for p in proof {
        path.push(hash_arg(p.as_ref())?);
    }
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr.0.as_slice() != first_root || sr.0.as_slice() != second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every perfect node of a tree, computed the slow way, keyed for plan assembly.
    fn all_nodes(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
        let mut nodes = HashMap::new();
        let mut frontier = Frontier::new();
        for (i, leaf) in leaves.iter().enumerate() {
            nodes.insert(
                NodeId {
                    level: 0,
                    index: i as u64,
                },
                *leaf,
            );
            frontier.push(*leaf, |id, h| {
                nodes.insert(id, h);
            });
        }
        nodes
    }

    /// RFC 9162 MTH by its recursive definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn frontier_root_matches_the_recursive_definition() {
        let all = leaves(70);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for n in 1..=all.len() {
            frontier.push(all[n - 1], |_, _| {});
            assert_eq!(frontier.root(), mth(&all[..n]), "size {n}");
        }
    }

    #[test]
    fn planned_proofs_verify_for_every_index_and_size_pair() {
        let all = leaves(40);
        let nodes = all_nodes(&all);
        for size in 1..=all.len() as u64 {
            let root = mth(&all[..size as usize]);
            let plan = ProofPlan::root(size);
            assert_eq!(plan.assemble(&nodes).unwrap(), vec![root]);
            for index in 0..size {
                let plan = ProofPlan::inclusion(index, size).unwrap();
                assert!(plan.nodes().len() <= 2 * 64);
                let proof = plan.assemble(&nodes).unwrap();
                verify_inclusion(index, size, &all[index as usize].0, &proof, &root.0)
                    .unwrap_or_else(|e| panic!("inclusion {index}/{size}: {e}"));
            }
            for first in 1..=size {
                let first_root = mth(&all[..first as usize]);
                let proof = ProofPlan::consistency(first, size)
                    .unwrap()
                    .assemble(&nodes)
                    .unwrap();
                verify_consistency(first, size, &proof, &first_root.0, &root.0)
                    .unwrap_or_else(|e| panic!("consistency {first}->{size}: {e}"));
                if first < size {
                    let wrong = mth(&all[1..first as usize + 1]);
                    assert!(verify_consistency(first, size, &proof, &wrong.0, &root.0).is_err());
                }
            }
        }
    }

    #[test]
    fn plans_read_logarithmically_many_nodes() {
        let size = (1u64 << 40) + 12345;
        for index in [0, 1, size / 2, size - 1] {
            assert!(ProofPlan::inclusion(index, size).unwrap().nodes().len() <= 2 * 41);
        }
        assert!(
            ProofPlan::consistency(size / 3, size)
                .unwrap()
                .nodes()
                .len()
                <= 2 * 41
        );
    }
}
