//! The body of a repository download: one byte range of a file, read in
//! large positioned reads (`pread`) on the blocking pool, one read ahead of
//! the one being sent, and handed to hyper as whole buffers.
//!
//! Why it looks like this (issue 15): `tokio::fs::File` behind
//! `ReaderStream` read 4 KiB at a time and handed every read to the blocking
//! pool — 262,144 hand-offs per GiB, which cost more CPU than TLS itself.
//! Here each hand-off moves [`READ_SIZE`] bytes, memory per download is at
//! most two reads whatever the file size, the disk reads of all downloads
//! together are bounded by [`MAX_CONCURRENT_READS`] (so a crowd of
//! downloads cannot take the blocking pool or the disk from everything
//! else), and the stream yields to the scheduler after every buffer, so a
//! check-in waiting for a worker thread is served between two buffers of a
//! download instead of after a whole socket's worth of them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Bytes per read and per buffer handed to the HTTP stack.
pub const READ_SIZE: usize = 256 * 1024;

/// Disk reads in flight at once over all downloads.
pub const MAX_CONCURRENT_READS: usize = 4;

static READS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_READS);

/// A body streaming bytes `start..start + len` of `file`.
pub fn file_range_body(file: File, start: u64, len: u64) -> Body {
    let state = Reader {
        file: Arc::new(file),
        next: start,
        end: start.saturating_add(len),
        ahead: None,
    };
    Body::from_stream(futures_util::stream::unfold(state, Reader::step))
}

/// Where a download is: the next offset to read and the read already
/// started for the buffer after the one being sent.
struct Reader {
    file: Arc<File>,
    next: u64,
    end: u64,
    ahead: Option<JoinHandle<io::Result<Bytes>>>,
}

impl Reader {
    /// Produces the next buffer, starting the read of the one after it
    /// first so that the disk works while this one is sent.
    async fn step(mut self) -> Option<(io::Result<Bytes>, Self)> {
        let current = match self.ahead.take() {
            Some(read) => read,
            None => self.start_read().await?,
        };
        self.ahead = self.start_read().await;
        let buf = match current.await {
            Ok(result) => result,
            Err(join) => Err(io::Error::other(join)),
        };
        // Let whatever else waits for this worker thread (a check-in) run
        // before the next buffer is encrypted and written.
        tokio::task::yield_now().await;
        Some((buf, self))
    }

    /// Starts reading the next buffer (once a read slot is free); `None`
    /// when the range is done.
    async fn start_read(&mut self) -> Option<JoinHandle<io::Result<Bytes>>> {
        if self.next >= self.end {
            return None;
        }
        let at = self.next;
        let len = usize::try_from(self.end - at).map_or(READ_SIZE, |left| left.min(READ_SIZE));
        self.next += len as u64;
        let file = self.file.clone();
        let permit = READS.acquire().await;
        Some(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, at)?;
            Ok(Bytes::from(buf))
        }))
    }
}
