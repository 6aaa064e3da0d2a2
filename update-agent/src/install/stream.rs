//! Writing the image into the inactive slot, chunk by chunk, in one pass:
//! each chunk is obtained (copied from the booted slot or downloaded with a
//! ranged request), checked against the signed chunk index, and only then
//! handed to a writer thread. A fixed pool of chunk buffers bounds memory
//! whatever the image size. A dropped connection is retried from the chunk
//! it stopped in; a chunk with the wrong hash stops the install.

use std::io::Read;
use std::ops::Range;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use moho_release::digest::Sha256Hasher;
use moho_release::{Sha256Digest, VerifiedChunkIndex, VerifyError};
use url::Url;

use super::plan::{ChunkSource, remote_runs};
use super::progress::Progress;
use super::slot_io::{AlignedBuf, SlotIo, SlotIoError};
use crate::fetch::{Body, FetchError, Transport};

/// Buffers in flight: one being filled, one queued, one being written.
const BUFFERS: usize = 3;
/// The longest wait between two attempts at a chunk.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How often and how patiently to retry a broken download.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per chunk before giving up.
    pub attempts: u32,
    /// Wait before the first retry; doubled each time, at most a minute.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
        }
    }
}

/// Why streaming stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A chunk did not match the signed index: nothing of it was written.
    #[error("chunk {chunk} of {url} rejected before writing: {source}")]
    Rejected {
        /// The image URL.
        url: Url,
        /// Chunk number.
        chunk: u64,
        /// The mismatch.
        source: VerifyError,
    },
    /// The download kept failing.
    #[error("{url}: chunk {chunk} (bytes {start}-{end}) failed after {attempts} attempts: {last}")]
    Download {
        /// The image URL.
        url: Url,
        /// Chunk number.
        chunk: u64,
        /// Its first byte.
        start: u64,
        /// Its end.
        end: u64,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Reading the booted slot or writing the inactive one failed.
    #[error(transparent)]
    Slot(#[from] SlotIoError),
    /// The writer thread died.
    #[error("the slot writer stopped unexpectedly")]
    WriterGone,
    /// The read-back thread died or saw chunks out of order.
    #[error("the read-back thread stopped unexpectedly")]
    ReaderGone,
}

/// What the stream did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// SHA-256 of the whole image as read back from the slot behind the
    /// writer (direct I/O only; `None` means the caller must read it back).
    pub read_back: Option<Sha256Digest>,
    /// Bytes downloaded and written.
    pub downloaded: u64,
    /// Bytes copied from the booted slot.
    pub reused: u64,
    /// Bytes already present in the inactive slot (resume).
    pub present: u64,
}

/// Everything the stream needs.
pub struct StreamJob<'a> {
    /// Source of each chunk.
    pub plan: &'a [ChunkSource],
    /// The verified chunk index.
    pub index: &'a VerifiedChunkIndex,
    /// Where the image is served.
    pub url: &'a Url,
    /// How to fetch.
    pub transport: &'a dyn Transport,
    /// The booted slot, for local copies.
    pub booted: Option<&'a SlotIo>,
    /// The inactive slot.
    pub dest: &'a SlotIo,
    /// Progress display.
    pub progress: &'a dyn Progress,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for StreamJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamJob")
            .field("url", &self.url.as_str())
            .finish()
    }
}

struct Filled {
    chunk: u64,
    at: u64,
    buf: AlignedBuf,
    len: usize,
    downloaded: bool,
}

/// Runs the stream to the end or the first unrecoverable error.
///
/// With direct I/O, a third thread reads every chunk back from the slot as
/// soon as the writer has put it there (and the chunks already present),
/// hashing the whole image in order: the read-back of DESIGN §3 step 6 then
/// overlaps the download instead of following it. The caller still flushes
/// before comparing the digest and arming. (Reads bypass the cache, so they
/// see what the device returns, flushed or not.)
pub fn stream(job: &StreamJob<'_>) -> Result<StreamStats, StreamError> {
    let chunk_size = usize::try_from(job.index.index().chunk_size()).unwrap_or(usize::MAX);
    let (to_writer, writer_rx) = mpsc::sync_channel::<Filled>(1);
    let (to_pool, pool) = mpsc::channel::<AlignedBuf>();
    let (to_reader, written) = mpsc::channel::<u64>();
    for _ in 0..BUFFERS {
        let _ = to_pool.send(AlignedBuf::new(chunk_size));
    }
    let mut stats = StreamStats::default();
    for (i, s) in (0u64..).zip(job.plan) {
        if *s == ChunkSource::Present {
            stats.present += chunk_len(job.index, i);
        }
    }
    let overlap = job.dest.is_direct();
    let read_back = thread::scope(|scope| {
        let dest = job.dest;
        let progress = job.progress;
        let writer = scope.spawn(move || -> Result<(), SlotIoError> {
            for f in writer_rx {
                dest.write_at(f.at, &f.buf, f.len)?;
                progress.advance(f.len as u64, f.downloaded);
                let _ = to_reader.send(f.chunk);
                let _ = to_pool.send(f.buf);
            }
            Ok(())
        });
        let reader = overlap.then(|| scope.spawn(move || read_behind(job, chunk_size, &written)));
        let produced = produce(job, &pool, &to_writer, &mut stats);
        drop(to_writer);
        let wrote = writer.join().map_err(|_| StreamError::WriterGone)?;
        // A writer error explains a failed send; report it first.
        wrote?;
        produced?;
        match reader {
            Some(r) => r.join().map_err(|_| StreamError::ReaderGone)?.map(Some),
            None => Ok(None),
        }
    })?;
    stats.read_back = read_back;
    Ok(stats)
}

/// Reads the image back in order, waiting for each chunk the writer still
/// has to put on the slot.
fn read_behind(
    job: &StreamJob<'_>,
    chunk_size: usize,
    written: &mpsc::Receiver<u64>,
) -> Result<Sha256Digest, StreamError> {
    let mut buf = AlignedBuf::new(chunk_size);
    let mut hasher = Sha256Hasher::new();
    for (i, source) in (0u64..).zip(job.plan) {
        if *source != ChunkSource::Present {
            // Chunks are written in order; the next one written must be i.
            match written.recv() {
                Ok(k) if k == i => {}
                _ => return Err(StreamError::ReaderGone),
            }
        }
        let range = job.index.chunk_range(i).unwrap_or_default();
        let len = usize::try_from(range.end - range.start).unwrap_or(0);
        job.dest.read_at(range.start, &mut buf, len)?;
        hasher.update(&buf.as_slice()[..len]);
    }
    Ok(hasher.finish())
}

fn chunk_len(index: &VerifiedChunkIndex, i: u64) -> u64 {
    index.chunk_range(i).map(|r| r.end - r.start).unwrap_or(0)
}

fn produce(
    job: &StreamJob<'_>,
    pool: &mpsc::Receiver<AlignedBuf>,
    to_writer: &mpsc::SyncSender<Filled>,
    stats: &mut StreamStats,
) -> Result<(), StreamError> {
    let runs = remote_runs(job.plan);
    let mut run_iter = runs.iter().peekable();
    let mut remote: Option<RemoteRun> = None;
    for (i, source) in (0u64..).zip(job.plan) {
        if *source == ChunkSource::Present {
            continue;
        }
        let range = job.index.chunk_range(i).unwrap_or_default();
        let len = usize::try_from(range.end - range.start).unwrap_or(0);
        let mut buf = pool.recv().map_err(|_| StreamError::WriterGone)?;
        let downloaded = match *source {
            ChunkSource::Present => false,
            ChunkSource::Local { offset } => {
                let ok = match job.booted {
                    Some(booted) => {
                        booted.read_at(offset, &mut buf, len)?;
                        job.index.verify_chunk(i, &buf.as_slice()[..len]).is_ok()
                    }
                    None => false,
                };
                if ok {
                    stats.reused += len as u64;
                    false
                } else {
                    tracing::debug!(chunk = i, "local copy did not verify; downloading it");
                    let mut one = RemoteRun::new(i..i + 1);
                    one.fill(job, i, &range, &mut buf)?;
                    stats.downloaded += len as u64;
                    true
                }
            }
            ChunkSource::Remote => {
                if remote.as_ref().is_none_or(|r| !r.chunks.contains(&i)) {
                    let run = run_iter
                        .find(|r| r.contains(&i))
                        .cloned()
                        .unwrap_or(i..i + 1);
                    remote = Some(RemoteRun::new(run));
                }
                if let Some(r) = remote.as_mut() {
                    r.fill(job, i, &range, &mut buf)?;
                }
                stats.downloaded += len as u64;
                true
            }
        };
        // Zero the padding after a short last chunk: O_DIRECT writes whole blocks.
        buf.as_mut_slice()[len..].fill(0);
        job.index
            .verify_chunk(i, &buf.as_slice()[..len])
            .map_err(|source| StreamError::Rejected {
                url: job.url.clone(),
                chunk: i,
                source,
            })?;
        to_writer
            .send(Filled {
                chunk: i,
                at: range.start,
                buf,
                len,
                downloaded,
            })
            .map_err(|_| StreamError::WriterGone)?;
    }
    Ok(())
}

/// A ranged download of consecutive chunks, reopened where it broke off.
struct RemoteRun {
    chunks: Range<u64>,
    body: Option<Body>,
}

impl RemoteRun {
    fn new(chunks: Range<u64>) -> Self {
        Self { chunks, body: None }
    }

    /// Reads chunk `i` (byte `range` of the image) into `buf`, retrying
    /// from the chunk's start when the connection fails.
    fn fill(
        &mut self,
        job: &StreamJob<'_>,
        i: u64,
        range: &Range<u64>,
        buf: &mut AlignedBuf,
    ) -> Result<(), StreamError> {
        let len = usize::try_from(range.end - range.start).unwrap_or(0);
        let run_end = job
            .index
            .chunk_range(self.chunks.end - 1)
            .map(|r| r.end)
            .unwrap_or(range.end);
        let mut backoff = job.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=job.retry.attempts {
            if self.body.is_none() {
                match job.transport.get(job.url, Some(range.start..run_end)) {
                    Ok(Some(b)) => self.body = Some(b),
                    Ok(None) => last = "not found on the server".into(),
                    Err(e @ FetchError::RangeIgnored { .. }) => {
                        return Err(StreamError::Download {
                            url: job.url.clone(),
                            chunk: i,
                            start: range.start,
                            end: range.end,
                            attempts: attempt,
                            last: e.to_string(),
                        });
                    }
                    Err(e) => last = moho_core::report::render_chain(&e),
                }
            }
            if let Some(body) = self.body.as_mut() {
                match read_full(body, &mut buf.as_mut_slice()[..len]) {
                    Ok(n) if n == len => return Ok(()),
                    Ok(n) => {
                        last = format!(
                            "response ended after {n} of the chunk's {len} bytes (truncated)"
                        );
                    }
                    Err(e) => last = format!("connection failed: {e}"),
                }
                self.body = None;
            }
            if attempt < job.retry.attempts {
                tracing::warn!(chunk = i, attempt, error = %last, "download interrupted; retrying");
                job.progress.retrying(i, attempt, &last);
                thread::sleep(backoff);
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
        Err(StreamError::Download {
            url: job.url.clone(),
            chunk: i,
            start: range.start,
            end: range.end,
            attempts: job.retry.attempts,
            last,
        })
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
