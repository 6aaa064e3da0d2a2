//! An in-memory repository for tests: serves files by URL, records every
//! request, and can be told to corrupt or cut off a file.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::ops::Range;
use std::sync::Mutex;

use url::Url;

use super::{Body, FetchError, Transport};

/// A request the fake served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The URL.
    pub url: String,
    /// The range asked for.
    pub range: Option<Range<u64>>,
    /// Bytes actually returned.
    pub bytes: u64,
}

/// What to do to a file when serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Flip the byte at this offset.
    FlipByte(u64),
    /// Serve only the first this many bytes of the file.
    TruncateAt(u64),
}

/// Files held in memory.
#[derive(Debug, Default)]
pub struct FakeTransport {
    files: BTreeMap<String, Vec<u8>>,
    faults: BTreeMap<String, Fault>,
    served: Mutex<Vec<Served>>,
}

impl FakeTransport {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `bytes` at `url`.
    pub fn insert(&mut self, url: &str, bytes: Vec<u8>) {
        self.files.insert(url.to_owned(), bytes);
    }

    /// Applies `fault` whenever `url` is served.
    pub fn set_fault(&mut self, url: &str, fault: Fault) {
        self.faults.insert(url.to_owned(), fault);
    }

    /// Every request so far.
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Total bytes served for URLs ending with `suffix`.
    pub fn bytes_served(&self, suffix: &str) -> u64 {
        self.served()
            .iter()
            .filter(|s| s.url.ends_with(suffix))
            .map(|s| s.bytes)
            .sum()
    }
}

impl Transport for FakeTransport {
    fn get(&self, url: &Url, range: Option<Range<u64>>) -> Result<Option<Body>, FetchError> {
        let key = url.as_str();
        let Some(file) = self.files.get(key) else {
            return Ok(None);
        };
        let mut data = file.clone();
        match self.faults.get(key) {
            Some(Fault::FlipByte(at)) => {
                if let Some(b) = usize::try_from(*at).ok().and_then(|i| data.get_mut(i)) {
                    *b ^= 0xff;
                }
            }
            Some(Fault::TruncateAt(n)) => data.truncate(usize::try_from(*n).unwrap_or(usize::MAX)),
            None => {}
        }
        let len = data.len() as u64;
        let (start, end) = match &range {
            Some(r) => (r.start.min(len), r.end.min(len)),
            None => (0, len),
        };
        let slice =
            data[usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0)].to_vec();
        if let Ok(mut served) = self.served.lock() {
            served.push(Served {
                url: key.to_owned(),
                range,
                bytes: slice.len() as u64,
            });
        }
        Ok(Some(Box::new(Cursor::new(slice))))
    }
}
