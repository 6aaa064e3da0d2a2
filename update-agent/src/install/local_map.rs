//! What the booted slot already holds: a map from chunk hash to its offset
//! in the booted slot, so that chunks the new image shares with the running
//! one are copied locally instead of downloaded (DESIGN §3 step 5).
//!
//! The map comes from the booted version's signed chunk index when the
//! repository still has it (no reading needed), otherwise from hashing the
//! booted slot once. Either way every copied chunk is re-hashed before it
//! is written, so a wrong map costs time, never correctness.

use std::collections::HashMap;

use moho_release::{ChunkIndex, Sha256Digest};

use super::slot_io::{AlignedBuf, SlotIo, SlotIoError};

/// Chunk hash → byte offset in the booted slot.
pub type LocalMap = HashMap<Sha256Digest, u64>;

/// The map from the booted image's chunk index, if its chunk size matches.
pub fn from_index(booted: &ChunkIndex, chunk_size: u64) -> Option<LocalMap> {
    if booted.chunk_size() != chunk_size {
        return None;
    }
    let mut map = LocalMap::new();
    for i in 0..booted.chunk_count() {
        if let (Some(h), Some(r)) = (booted.chunk_sha256(i), booted.chunk_range(i)) {
            map.entry(h).or_insert(r.start);
        }
    }
    Some(map)
}

/// The map from hashing whole chunks of the booted slot, up to `limit` bytes.
pub fn by_hashing(slot: &SlotIo, chunk_size: u64, limit: u64) -> Result<LocalMap, SlotIoError> {
    let size = usize::try_from(chunk_size).unwrap_or(usize::MAX);
    let mut buf = AlignedBuf::new(size);
    let mut map = LocalMap::new();
    let end = limit.min(slot.len());
    let mut at = 0;
    while at + chunk_size <= end {
        slot.read_at(at, &mut buf, size)?;
        map.entry(Sha256Digest::of(&buf.as_slice()[..size]))
            .or_insert(at);
        at += chunk_size;
    }
    Ok(map)
}
