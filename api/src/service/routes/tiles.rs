//! The C2SP tlog-tiles read API (<https://c2sp.org/tlog-tiles>), so standard
//! transparency-log clients can mirror the log and check it against its checkpoints:
//!
//! - `/tlog/checkpoint`: the latest signed checkpoint;
//! - `/tlog/tile/<L>/<N>[.p/<W>]`: the hashes of the tree's nodes at height 8·L, 256 to
//!   a tile (W in a partial tile at the right edge), 32 bytes each;
//! - `/tlog/tile/entries/<N>[.p/<W>]`: entry bundles, each entry a big-endian uint16
//!   length and its bytes.
//!
//! The log's Merkle leaf is SHA-256(0x00 ‖ entry hash) (docs/ledger-format.md), so the
//! tlog "entry" whose leaf that is, and what the bundles hold, is the 32-byte entry
//! hash; the entries themselves are at `/v1/ledger/entries` and in the export. Full
//! tiles never change and are served as immutable; a partial tile of any width the tree
//! has is served (its hashes are the full tile's first W); everything is hashes.

use crate::service::access::{decide, Action, Caller};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use ledger::hash::Hash;
use ledger::merkle::NodeId;
use ledger::store::LedgerStore;
use std::sync::Arc;

/// Hashes per tile (tile height 8).
const WIDTH: u64 = 256;
const HEIGHT: u32 = 8;
/// Highest tile level served: 8·7 = 56 levels cover any log this side of 2^63 entries.
const MAX_LEVEL: u32 = 7;

/// Which tile a path names.
#[derive(Debug, PartialEq, Eq)]
struct TileRef {
    /// `None` for an entry bundle.
    level: Option<u32>,
    index: u64,
    /// 1..=255 for a partial tile; 256 for a full one.
    width: u64,
}

/// Parses `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, N written as three-digit groups
/// with all but the last prefixed by `x` (`x001/x234/067`).
fn parse(path: &str) -> Option<TileRef> {
    let (head, rest) = path.split_once('/')?;
    let level = match head {
        "entries" => None,
        l if l.len() == 1 => Some(l.parse::<u32>().ok().filter(|l| *l <= MAX_LEVEL)?),
        _ => return None,
    };
    let (index_path, width) = match rest.split_once(".p/") {
        Some((index, w)) => {
            if w.starts_with('0') {
                return None;
            }
            let w: u64 = w.parse().ok().filter(|w| (1..WIDTH).contains(w))?;
            (index, w)
        }
        None => (rest, WIDTH),
    };
    let groups: Vec<&str> = index_path.split('/').collect();
    let mut index: u64 = 0;
    for (i, group) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last {
            *group
        } else {
            group.strip_prefix('x')?
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    Some(TileRef {
        level,
        index,
        width,
    })
}

/// `GET /tlog/tile/{*path}`.
pub async fn tile(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    decide(&caller, Action::ReadProofs)?;
    let tile = parse(&path).ok_or_else(|| {
        ApiError::NotFound(format!(
            "{path:?} is not a tile path: <L>/<N>[.p/<W>] or entries/<N>[.p/<W>], N as x001/x234/067"
        ))
    })?;
    let (size, _) = super::ledger::latest(&state).await?;
    let height = tile.level.unwrap_or(0) * HEIGHT;
    // Complete nodes at this height in the tree of the latest checkpoint.
    let available = size.checked_shr(height).unwrap_or(0);
    let start = tile.index.checked_mul(WIDTH).ok_or_else(|| beyond(size))?;
    let end = start.checked_add(tile.width).ok_or_else(|| beyond(size))?;
    // Any width the tree has: a client holding an older checkpoint asks for the
    // partial tile of its size, and the first W hashes of a tile never change.
    if end > available {
        return Err(beyond(size));
    }
    let ledger = state.ledger();
    let mut body = Vec::with_capacity((tile.width * 34) as usize);
    match tile.level {
        Some(level) => {
            let ids: Vec<NodeId> = (start..end)
                .map(|index| NodeId {
                    level: (level * HEIGHT) as u8,
                    index,
                })
                .collect();
            let nodes = ledger
                .store()
                .nodes(ledger.chain_id(), &ids)
                .await
                .map_err(ApiError::internal)?;
            for id in &ids {
                let hash = nodes
                    .get(id)
                    .ok_or_else(|| ApiError::internal(format!("node {id:?} is missing")))?;
                body.extend_from_slice(&hash.0);
            }
        }
        None => {
            let entries = ledger
                .store()
                .entries(ledger.chain_id(), start, tile.width as u32)
                .await
                .map_err(ApiError::internal)?;
            if entries.len() as u64 != tile.width {
                return Err(ApiError::internal("entries are missing from the store"));
            }
            for entry in entries {
                let hash: Hash = Hash::of(&entry.bytes);
                body.extend_from_slice(&32u16.to_be_bytes());
                body.extend_from_slice(&hash.0);
            }
        }
    }
    let cache = if tile.width == WIDTH {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    ))
}

fn beyond(size: u64) -> ApiError {
    ApiError::NotFound(format!(
        "no such tile in the tree of the latest checkpoint (size {size})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_as_c2sp_writes_them() {
        assert_eq!(
            parse("0/x001/x234/067"),
            Some(TileRef {
                level: Some(0),
                index: 1_234_067,
                width: 256
            })
        );
        assert_eq!(
            parse("entries/000.p/5"),
            Some(TileRef {
                level: None,
                index: 0,
                width: 5
            })
        );
        assert_eq!(
            parse("2/001.p/255"),
            Some(TileRef {
                level: Some(2),
                index: 1,
                width: 255
            })
        );
        for bad in [
            "0/1",
            "0/x001",
            "0/001/002",
            "0/000.p/256",
            "0/000.p/0",
            "9/000",
            "00/000",
            "0/000.p/05",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
