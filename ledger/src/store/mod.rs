//! Storage behind one trait, with two backends that pass one test suite: embedded
//! SQLite (the default, a file in the data directory) and PostgreSQL (production).
//!
//! A store is dumb on purpose: it keeps what the sequencer hands it, in one transaction
//! per batch, and answers reads. Every integrity rule lives above it, so the two
//! backends cannot drift apart in what they accept.

pub mod migrations;
pub mod postgres;
pub mod sqlite;

use crate::entry::Content;
use crate::hash::Hash;
use crate::keyring::KeyRecord;
use crate::merkle::NodeId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which backend a store is; printed by `bench` as `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    SqliteWriter(#[from] rusqlite::Error),
    #[error("could not apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("another writer appended to this log (head is at {found}, this writer expected {expected}); retry")]
    HeadMoved { expected: u64, found: u64 },
    #[error("a stream or stream version was taken concurrently (constraint {0}); retry")]
    StreamRace(&'static str),
    #[error("the store is inconsistent: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Sink(String),
}

impl StoreError {
    /// Maps unique-constraint violations to the domain's words: PostgreSQL names the
    /// constraint, SQLite lists its columns in the message.
    pub(crate) fn from_sqlx(error: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &error {
            if let Some(race) = stream_race(db.constraint(), db.message()) {
                return race;
            }
        }
        StoreError::Database(error)
    }

    pub(crate) fn from_rusqlite(error: rusqlite::Error) -> StoreError {
        if let rusqlite::Error::SqliteFailure(_, Some(message)) = &error {
            if let Some(race) = stream_race(None, message) {
                return race;
            }
        }
        StoreError::SqliteWriter(error)
    }
}

fn stream_race(constraint: Option<&str>, message: &str) -> Option<StoreError> {
    let constraint = constraint.unwrap_or_default();
    if constraint == "entries_by_stream" || message.contains("entries.stream_id") {
        return Some(StoreError::StreamRace("entries_by_stream"));
    }
    if constraint == "streams_pkey" || message.contains("streams.stream") {
        return Some(StoreError::StreamRace("streams_pkey"));
    }
    None
}

/// The digest by which an idempotency key is found again: the first 16 bytes of
/// SHA-256(author || 0x0A || key). A match is confirmed against the entry itself.
pub fn idempotency_digest(author: &str, key: &str) -> [u8; 16] {
    let h = Hash::of_parts(&[author.as_bytes(), b"\n", key.as_bytes()]);
    let mut first = [0u8; 16];
    first.copy_from_slice(&h.0[..16]);
    first
}

/// A stored idempotency digest column.
pub(crate) fn digest_column(bytes: &[u8]) -> Result<[u8; 16], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("an idempotency digest of {} bytes", bytes.len())))
}

/// The state of one chain that the sequencer needs to continue it.
#[derive(Debug, Clone)]
pub struct ChainState {
    pub chain_id: i64,
    pub origin: String,
    pub size: u64,
    pub last_entry_hash: Hash,
    pub last_recorded_at: String,
    /// Hashes of the frontier's perfect subtrees, largest first.
    pub peaks: Vec<Hash>,
}

/// One entry of a batch, with the copies of its fields that the indexes need.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub seq: u64,
    pub bytes: Vec<u8>,
    pub hash: Hash,
    pub author: String,
    pub event_type: String,
    pub stream: String,
    /// The sequence number of the stream's first entry: how the store names the stream.
    pub stream_id: u64,
    /// Whether this entry opens its stream (and the store records the stream's name).
    pub opens_stream: bool,
    pub stream_version: u64,
    pub idempotency_key: String,
    /// [`idempotency_digest`] of (author, idempotency key).
    pub key_digest: [u8; 16],
    pub submission_hash: Hash,
    /// Salt and canonical body bytes of the redactable content.
    pub content: Option<(String, Vec<u8>)>,
}

/// Everything one group commit writes, in one transaction.
#[derive(Debug, Clone)]
pub struct Batch {
    pub chain_id: i64,
    /// The head this batch was sequenced on (its size and last entry's hash); the
    /// commit fails if the stored head is anywhere else.
    pub base_size: u64,
    pub base_hash: Hash,
    pub entries: Vec<NewEntry>,
    /// New perfect Merkle nodes, leaves (level 0) included; stores keep only levels
    /// >= 1, since a leaf is SHA-256(0x00 || entry hash).
    pub nodes: Vec<(NodeId, Hash)>,
    pub last_recorded_at: String,
    pub checkpoint_note: String,
    /// Key records created or changed by this batch's key entries.
    pub keys: Vec<KeyRecord>,
    /// Entries whose redactable content this batch deletes.
    pub redactions: Vec<u64>,
}

impl Batch {
    pub fn new_size(&self) -> u64 {
        self.base_size + self.entries.len() as u64
    }
}

/// An entry as stored: its canonical bytes and, unless redacted, its content.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub seq: u64,
    pub bytes: Vec<u8>,
    pub content: Option<Content>,
}

/// The first use of an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyHit {
    pub seq: u64,
    pub submission_hash: Hash,
}

/// Where a stream stands: its id (the sequence number of its first entry) and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    pub id: u64,
    pub version: u64,
}

/// Hands one page of a snapshot to `sink`, in order, stopping at the checkpoint's
/// `size`. Returns whether the page brought anything below `size`: if not, nothing is
/// left (a tampered store may have gaps or be truncated; the auditor names them).
pub(crate) fn sink_page(
    page: impl IntoIterator<Item = Result<StoredEntry, StoreError>>,
    size: u64,
    next: &mut u64,
    sink: &mut (dyn FnMut(StoredEntry) -> Result<(), String> + Send),
) -> Result<bool, StoreError> {
    let before = *next;
    for entry in page {
        let entry = entry?;
        if entry.seq >= size {
            break;
        }
        *next = entry.seq + 1;
        sink(entry).map_err(StoreError::Sink)?;
    }
    Ok(*next != before)
}

/// The query behind `chain` and `sole_chain`, before its `WHERE` clause.
pub(crate) const HEAD_ROWS: &str = "SELECT c.chain_id, c.origin, h.size, h.last_entry_hash, \
     h.last_recorded_at FROM chains c JOIN chain_heads h ON h.chain_id = c.chain_id";

/// A stream's position from its stored id and highest version.
pub(crate) fn stream_position(
    stream: String,
    id: i64,
    version: Option<i64>,
) -> Result<(String, StreamPosition), StoreError> {
    let version = version.ok_or_else(|| {
        StoreError::Corrupt(format!("stream {stream:?} is recorded but has no entries"))
    })?;
    Ok((
        stream,
        StreamPosition {
            id: to_u64(id, "stream_id")?,
            version: to_u64(version, "stream_version")?,
        },
    ))
}

/// The operations the ledger needs from a database. Both backends implement all of it.
pub trait LedgerStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// The chain with this origin, if it exists.
    fn chain(
        &self,
        origin: &str,
    ) -> impl Future<Output = Result<Option<ChainState>, StoreError>> + Send;

    /// The only chain in the store, for commands that are not told an origin.
    fn sole_chain(&self) -> impl Future<Output = Result<Option<ChainState>, StoreError>> + Send;

    /// Creates an empty chain and its head row; returns its id.
    fn create_chain(
        &self,
        origin: &str,
        created_at: &str,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Writes a batch atomically and durably (one commit, one fsync).
    fn commit(&self, batch: Arc<Batch>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every stream's id and version as of the first `below` entries; the sequencer
    /// loads this when it starts, with `below` the head it read just before (another
    /// writer may have appended since, and what it wrote must not be seen yet).
    fn all_stream_versions(
        &self,
        chain_id: i64,
        below: u64,
    ) -> impl Future<Output = Result<HashMap<String, StreamPosition>, StoreError>> + Send;

    /// Hands the idempotency digest of each of the first `below` entries, with its
    /// sequence number, to `each` (loaded at start, as `all_stream_versions`).
    fn all_idempotency_digests(
        &self,
        chain_id: i64,
        below: u64,
        each: &mut (dyn FnMut(u64, [u8; 16]) + Send),
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The (author, idempotency key) of each of these entries, with its first use.
    fn idempotency_hits(
        &self,
        chain_id: i64,
        seqs: &[u64],
    ) -> impl Future<Output = Result<HashMap<(String, String), IdempotencyHit>, StoreError>> + Send;

    /// The hashes of these perfect Merkle nodes, in one read.
    fn nodes(
        &self,
        chain_id: i64,
        ids: &[NodeId],
    ) -> impl Future<Output = Result<HashMap<NodeId, Hash>, StoreError>> + Send;

    /// Up to `limit` entries from `from_seq` on, in order.
    fn entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredEntry>, StoreError>> + Send;

    /// As [`LedgerStore::entries`], but without the redactable content (every
    /// `content` is `None`): for readers that never show it, such as the views and the
    /// notice feed, which then neither read nor parse it.
    fn bare_entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredEntry>, StoreError>> + Send;

    /// Every entry of one stream (by its id, the seq of its first entry), in stream
    /// order, through the `entries_by_stream` index.
    fn stream_entries(
        &self,
        chain_id: i64,
        stream_id: u64,
    ) -> impl Future<Output = Result<Vec<StoredEntry>, StoreError>> + Send;

    /// Reads the latest checkpoint and every entry it covers from one consistent snapshot
    /// (so a redaction committed meanwhile cannot tear the export), handing each entry
    /// to `sink` in order. Returns the checkpoint's tree size and note.
    fn snapshot(
        &self,
        chain_id: i64,
        sink: &mut (dyn FnMut(StoredEntry) -> Result<(), String> + Send),
    ) -> impl Future<Output = Result<Option<(u64, String)>, StoreError>> + Send;

    /// The signed checkpoint for exactly this tree size, if one was made.
    fn checkpoint(
        &self,
        chain_id: i64,
        tree_size: u64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The first checkpoint whose tree includes entry `seq` (the one its receipt carried).
    fn checkpoint_covering(
        &self,
        chain_id: i64,
        seq: u64,
    ) -> impl Future<Output = Result<Option<(u64, String)>, StoreError>> + Send;

    /// The signed checkpoint with the largest tree size.
    fn latest_checkpoint(
        &self,
        chain_id: i64,
    ) -> impl Future<Output = Result<Option<(u64, String)>, StoreError>> + Send;

    /// Every key of the chain with its validity range, in registration order.
    fn keys(
        &self,
        chain_id: i64,
    ) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;
}

/// Either backend, chosen at run time (`--database-url` or not).
#[derive(Debug, Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Postgres($store) => $call.await,
        }
    };
}

impl LedgerStore for AnyStore {
    fn backend(&self) -> Backend {
        match self {
            AnyStore::Sqlite(s) => s.backend(),
            AnyStore::Postgres(s) => s.backend(),
        }
    }
    async fn chain(&self, origin: &str) -> Result<Option<ChainState>, StoreError> {
        delegate!(self, s => s.chain(origin))
    }
    async fn sole_chain(&self) -> Result<Option<ChainState>, StoreError> {
        delegate!(self, s => s.sole_chain())
    }
    async fn create_chain(&self, origin: &str, created_at: &str) -> Result<i64, StoreError> {
        delegate!(self, s => s.create_chain(origin, created_at))
    }
    async fn commit(&self, batch: Arc<Batch>) -> Result<(), StoreError> {
        delegate!(self, s => s.commit(batch))
    }
    async fn all_stream_versions(
        &self,
        chain_id: i64,
        below: u64,
    ) -> Result<HashMap<String, StreamPosition>, StoreError> {
        delegate!(self, s => s.all_stream_versions(chain_id, below))
    }
    async fn all_idempotency_digests(
        &self,
        chain_id: i64,
        below: u64,
        each: &mut (dyn FnMut(u64, [u8; 16]) + Send),
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.all_idempotency_digests(chain_id, below, each))
    }
    async fn idempotency_hits(
        &self,
        chain_id: i64,
        seqs: &[u64],
    ) -> Result<HashMap<(String, String), IdempotencyHit>, StoreError> {
        delegate!(self, s => s.idempotency_hits(chain_id, seqs))
    }
    async fn nodes(
        &self,
        chain_id: i64,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>, StoreError> {
        delegate!(self, s => s.nodes(chain_id, ids))
    }
    async fn entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        delegate!(self, s => s.entries(chain_id, from_seq, limit))
    }
    async fn bare_entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        delegate!(self, s => s.bare_entries(chain_id, from_seq, limit))
    }
    async fn stream_entries(
        &self,
        chain_id: i64,
        stream_id: u64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        delegate!(self, s => s.stream_entries(chain_id, stream_id))
    }
    async fn checkpoint(
        &self,
        chain_id: i64,
        tree_size: u64,
    ) -> Result<Option<String>, StoreError> {
        delegate!(self, s => s.checkpoint(chain_id, tree_size))
    }
    async fn snapshot(
        &self,
        chain_id: i64,
        sink: &mut (dyn FnMut(StoredEntry) -> Result<(), String> + Send),
    ) -> Result<Option<(u64, String)>, StoreError> {
        delegate!(self, s => s.snapshot(chain_id, sink))
    }
    async fn checkpoint_covering(
        &self,
        chain_id: i64,
        seq: u64,
    ) -> Result<Option<(u64, String)>, StoreError> {
        delegate!(self, s => s.checkpoint_covering(chain_id, seq))
    }
    async fn latest_checkpoint(&self, chain_id: i64) -> Result<Option<(u64, String)>, StoreError> {
        delegate!(self, s => s.latest_checkpoint(chain_id))
    }
    async fn keys(&self, chain_id: i64) -> Result<Vec<KeyRecord>, StoreError> {
        delegate!(self, s => s.keys(chain_id))
    }
}

/// Sequence numbers and versions are u64 in the format and i64 in SQL; the ledger never
/// comes near 2^63 entries, so a failed conversion means a corrupt row.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what}: {value}")))
}

pub(crate) fn to_i64(value: u64) -> i64 {
    // Sequence numbers are bounded by the number of entries, far below i64::MAX.
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn hash_column(bytes: &[u8], what: &str) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).ok_or_else(|| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

/// A chain's head row as either backend reads it, before its frontier is loaded.
pub(crate) struct HeadRow {
    pub chain_id: i64,
    pub origin: String,
    pub size: i64,
    pub last_entry_hash: Vec<u8>,
    pub last_recorded_at: String,
}

/// Completes the one head row a chain query found (refusing several) with the hashes of
/// its frontier, read in one query.
pub(crate) async fn chain_state<S: LedgerStore>(
    store: &S,
    rows: Vec<HeadRow>,
) -> Result<Option<ChainState>, StoreError> {
    if rows.len() > 1 {
        return Err(StoreError::Corrupt(
            "more than one chain; name the origin".into(),
        ));
    }
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let size = to_u64(row.size, "size")?;
    let ids = crate::merkle::Frontier::peak_ids(size);
    let nodes = store.nodes(row.chain_id, &ids).await?;
    let peaks = ids
        .iter()
        .map(|id| {
            nodes.get(id).copied().ok_or_else(|| {
                StoreError::Corrupt(format!("missing frontier node {}/{}", id.level, id.index))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ChainState {
        chain_id: row.chain_id,
        origin: row.origin,
        size,
        last_entry_hash: hash_column(&row.last_entry_hash, "last_entry_hash")?,
        last_recorded_at: row.last_recorded_at,
        peaks,
    }))
}

/// Merkle nodes below this level (other than leaves, which are entry hashes) are not
/// stored but recomputed from the leaves they cover, at most 2^(level - 1) of them, when
/// a proof needs one. Levels 1 to 3 hold seven eighths of all nodes: not writing them
/// spares the append path most of its Merkle-node inserts.
pub(crate) const LOWEST_STORED_LEVEL: u8 = 4;

/// Whether a batch's node goes to `tree_nodes`.
pub(crate) fn stored_node(id: &NodeId) -> bool {
    id.level >= LOWEST_STORED_LEVEL
}

/// What to read to answer a request for `ids`: stored nodes and leaves as they are, and
/// for each node of the unstored levels the leaves it covers.
pub(crate) fn node_sources(ids: &[NodeId]) -> Vec<NodeId> {
    let mut sources = Vec::with_capacity(ids.len());
    for id in ids {
        if id.level == 0 || stored_node(id) {
            sources.push(*id);
        } else {
            let first = id.first_leaf();
            sources.extend(
                (first..first + (1u64 << id.level)).map(|index| NodeId { level: 0, index }),
            );
        }
    }
    sources.sort_unstable();
    sources.dedup();
    sources
}

/// The requested nodes, computed from what was read for `node_sources(ids)`. A node
/// that cannot be had (beyond the tree, or missing from a damaged store) is left out.
pub(crate) fn derive_nodes(ids: &[NodeId], read: &HashMap<NodeId, Hash>) -> HashMap<NodeId, Hash> {
    fn subtree(id: NodeId, read: &HashMap<NodeId, Hash>) -> Option<Hash> {
        if id.level == 0 || stored_node(&id) {
            return read.get(&id).copied();
        }
        let child = |index| NodeId {
            level: id.level - 1,
            index,
        };
        Some(crate::merkle::node_hash(
            &subtree(child(id.index * 2), read)?,
            &subtree(child(id.index * 2 + 1), read)?,
        ))
    }
    ids.iter()
        .filter_map(|id| subtree(*id, read).map(|hash| (*id, hash)))
        .collect()
}

/// The last leaf a Merkle node covers: how `tree_nodes` is keyed (with the level).
pub(crate) fn last_leaf(id: &NodeId) -> i64 {
    // Node ids come from proof plans over existing tree sizes, far below 2^63 leaves.
    let span = 1u64.checked_shl(u32::from(id.level)).unwrap_or(u64::MAX);
    to_i64(
        id.index
            .saturating_add(1)
            .saturating_mul(span)
            .saturating_sub(1),
    )
}

/// A Merkle node as read back, by level and the last leaf it covers: stored nodes
/// (levels >= 4) as they are; a leaf (level 0) is not stored but derived from its
/// entry's hash, which is what the query returns.
pub(crate) fn node_row(
    level: i64,
    last_leaf: i64,
    hash: &[u8],
) -> Result<(NodeId, Hash), StoreError> {
    let level = u8::try_from(level)
        .ok()
        .filter(|l| *l < 64)
        .ok_or_else(|| StoreError::Corrupt(format!("tree level {level}")))?;
    let id = NodeId {
        level,
        index: ((to_u64(last_leaf, "node's last leaf")? + 1) >> level).saturating_sub(1),
    };
    let hash = hash_column(hash, "node hash")?;
    Ok((
        id,
        if level == 0 {
            crate::entry::entry_leaf(&hash)
        } else {
            hash
        },
    ))
}

/// A `signing_keys` row as a key record.
pub(crate) fn key_record(
    partner: String,
    key_id: String,
    verifier_key: String,
    custody: &str,
    from_seq: i64,
    until_seq: Option<i64>,
) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        partner,
        key_id,
        verifier_key,
        custody: crate::keyring::Custody::parse(custody)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown custody {custody:?}")))?,
        from_seq: to_u64(from_seq, "from_seq")?,
        until_seq: until_seq.map(|u| to_u64(u, "until_seq")).transpose()?,
    })
}

/// Entries read per query by `snapshot`.
pub(crate) const SNAPSHOT_PAGE: i64 = 5_000;

/// An `entries` row joined with its `contents` row (absent once redacted).
pub(crate) fn stored_entry(
    seq: i64,
    bytes: Vec<u8>,
    salt: Option<String>,
    body: Option<Vec<u8>>,
) -> Result<StoredEntry, StoreError> {
    let content = match (salt, body) {
        (Some(salt), Some(body)) => {
            let body = serde_json::from_slice(&body)
                .map_err(|e| StoreError::Corrupt(format!("stored content is not JSON: {e}")))?;
            Some(Content { salt, body })
        }
        _ => None,
    };
    Ok(StoredEntry {
        seq: to_u64(seq, "seq")?,
        bytes,
        content,
    })
}
