//! The final check (DESIGN §3 step 6): after a flush, the whole image is
//! read back from the slot, bypassing the cache, and its SHA-256 and length
//! compared with the signed target. Reading (direct I/O) and hashing run on
//! two threads so the check costs about one pass of the slower of the two.

use std::sync::mpsc;
use std::thread;

use moho_release::Sha256Digest;
use moho_release::digest::Sha256Hasher;

use super::slot_io::{AlignedBuf, SlotIo, SlotIoError};

/// The slot does not hold the signed image.
#[derive(Debug, thiserror::Error)]
pub enum ReadBackError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] SlotIoError),
    /// The bytes differ.
    #[error("read back {length} bytes with SHA-256 {actual}, but the signed image has {expected}")]
    Mismatch {
        /// Bytes read.
        length: u64,
        /// Signed hash.
        expected: Sha256Digest,
        /// Hash of what the slot holds.
        actual: Sha256Digest,
    },
    /// The reader thread died.
    #[error("the read-back thread stopped unexpectedly")]
    ReaderGone,
}

const BLOCK: usize = 4 * 1024 * 1024;

/// Reads `length` bytes from the start of `slot` and checks their hash.
pub fn verify_slot(
    slot: &SlotIo,
    length: u64,
    expected: Sha256Digest,
) -> Result<(), ReadBackError> {
    let (to_hasher, filled) = mpsc::sync_channel::<(AlignedBuf, usize)>(1);
    let (to_reader, empty) = mpsc::channel::<AlignedBuf>();
    for _ in 0..2 {
        let _ = to_reader.send(AlignedBuf::new(BLOCK));
    }
    let actual = thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<(), SlotIoError> {
            let mut at = 0u64;
            while at < length {
                let Ok(mut buf) = empty.recv() else { break };
                let n = usize::try_from((length - at).min(BLOCK as u64)).unwrap_or(BLOCK);
                slot.read_at(at, &mut buf, n)?;
                at += n as u64;
                if to_hasher.send((buf, n)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let mut hasher = Sha256Hasher::new();
        for (buf, n) in filled {
            hasher.update(&buf.as_slice()[..n]);
            let _ = to_reader.send(buf);
        }
        reader.join().map_err(|_| ReadBackError::ReaderGone)??;
        Ok::<_, ReadBackError>(hasher.finish())
    })?;
    compare(length, expected, actual)
}

/// The read-back verdict for an image of `length` bytes.
pub fn compare(
    length: u64,
    expected: Sha256Digest,
    actual: Sha256Digest,
) -> Result<(), ReadBackError> {
    if actual == expected {
        Ok(())
    } else {
        Err(ReadBackError::Mismatch {
            length,
            expected,
            actual,
        })
    }
}
