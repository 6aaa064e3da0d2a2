//! Which bytes of the new image come from where (pure): chunks already in
//! the inactive slot (a resumed install), chunks copied from the booted
//! slot, and runs of chunks to download with one ranged request each.

use std::ops::Range;

/// Where chunk `i` of the new image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkSource {
    /// Already in the inactive slot and re-verified.
    Present,
    /// Copied from this byte offset of the booted slot (and verified first).
    Local {
        /// Offset in the booted slot.
        offset: u64,
    },
    /// Downloaded.
    Remote,
}

/// The plan for every chunk, in order.
pub fn plan(
    count: u64,
    present: impl Fn(u64) -> bool,
    local: impl Fn(u64) -> Option<u64>,
) -> Vec<ChunkSource> {
    (0..count)
        .map(|i| {
            if present(i) {
                ChunkSource::Present
            } else if let Some(offset) = local(i) {
                ChunkSource::Local { offset }
            } else {
                ChunkSource::Remote
            }
        })
        .collect()
}

/// Maximal runs of consecutive remote chunks (chunk-index ranges).
pub fn remote_runs(plan: &[ChunkSource]) -> Vec<Range<u64>> {
    let mut runs: Vec<Range<u64>> = Vec::new();
    for (i, s) in (0u64..).zip(plan) {
        if *s != ChunkSource::Remote {
            continue;
        }
        match runs.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_beats_local_beats_remote_and_runs_are_maximal() {
        let p = plan(6, |i| i == 0, |i| (i == 2 || i == 0).then_some(i * 10));
        assert_eq!(
            p,
            vec![
                ChunkSource::Present,
                ChunkSource::Remote,
                ChunkSource::Local { offset: 20 },
                ChunkSource::Remote,
                ChunkSource::Remote,
                ChunkSource::Remote,
            ]
        );
        assert_eq!(remote_runs(&p), vec![1..2, 3..6]);
    }
}
