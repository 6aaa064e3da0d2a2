//! `file://` URLs: a repository on local disk or removable media
//! (air-gapped installs), with the same range semantics as HTTP.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;

use url::Url;

use super::{Body, FetchError, Transport};

/// Reads `file://` URLs.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileTransport;

impl Transport for FileTransport {
    fn get(&self, url: &Url, range: Option<Range<u64>>) -> Result<Option<Body>, FetchError> {
        let path = url
            .to_file_path()
            .map_err(|()| FetchError::Scheme(url.clone()))?;
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FetchError::Io {
                    url: url.clone(),
                    source,
                });
            }
        };
        match range {
            None => Ok(Some(Box::new(f))),
            Some(r) => {
                f.seek(SeekFrom::Start(r.start))
                    .map_err(|source| FetchError::Io {
                        url: url.clone(),
                        source,
                    })?;
                Ok(Some(Box::new(f.take(r.end - r.start))))
            }
        }
    }
}
