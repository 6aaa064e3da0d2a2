//! TUF metadata through a [`Transport`]: the adapter the shared verifier
//! (`moho_release::MetadataSource`) reads metadata files with.

use std::io::Read;

use moho_release::{FetchError as VerifyFetchError, MetadataSource};
use url::Url;

use super::Transport;

/// Fetches `<metadata base URL>/<file>`.
pub struct TransportSource<'a> {
    /// The transport.
    pub transport: &'a dyn Transport,
    /// The metadata base URL (ending in `/`).
    pub base: &'a Url,
}

impl std::fmt::Debug for TransportSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportSource")
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl MetadataSource for TransportSource<'_> {
    fn fetch(&self, file: &str, max_len: u64) -> Result<Option<Vec<u8>>, VerifyFetchError> {
        let url = self.base.join(file).map_err(|e| {
            VerifyFetchError::new(format!("{}{file}: not a valid URL: {e}", self.base))
        })?;
        let Some(body) = self
            .transport
            .get(&url, None)
            .map_err(VerifyFetchError::new)?
        else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        body.take(max_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| VerifyFetchError::new(format!("{url}: {e}")))?;
        Ok(Some(bytes))
    }
}
