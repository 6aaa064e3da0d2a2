//! What a strict client accepts as the answer to a range request: a
//! `206 Partial Content` whose `Content-Range` (RFC 9110 §14.4,
//! `bytes FIRST-LAST/COMPLETE` or `bytes FIRST-LAST/*`) names exactly the
//! bytes asked for. Checked on the headers, before a byte of the body is
//! read or hashed: a server (or a cache in between) that answers with other
//! bytes of the file would otherwise have them hashed as the chunk asked
//! for, and the chunk refused only after the download.

use std::ops::Range;

/// Why a `206` answer is not the range asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentRangeError {
    /// A `206` without a `Content-Range`.
    #[error("206 Partial Content without a Content-Range header (asked for bytes {}-{})", .asked.start, .asked.end.saturating_sub(1))]
    Missing {
        /// The range asked for (end exclusive).
        asked: Range<u64>,
    },
    /// A `Content-Range` that is not `bytes FIRST-LAST/LENGTH`.
    #[error("Content-Range {value:?} is not \"bytes FIRST-LAST/LENGTH\"")]
    Malformed {
        /// The header as received.
        value: String,
    },
    /// Other bytes than those asked for.
    #[error("Content-Range {value:?} does not match the bytes asked for, {}-{}", .asked.start, .asked.end.saturating_sub(1))]
    Mismatch {
        /// The header as received.
        value: String,
        /// The range asked for (end exclusive).
        asked: Range<u64>,
    },
    /// A body length that is not the range's.
    #[error("Content-Length {length} does not match the {} bytes of Content-Range {value:?}", .asked.end - .asked.start)]
    LengthMismatch {
        /// The `Content-Range` header.
        value: String,
        /// The `Content-Length` header.
        length: u64,
        /// The range asked for (end exclusive).
        asked: Range<u64>,
    },
}

/// Checks the `Content-Range` (and, when given, `Content-Length`) of a
/// `206` answer to a request for bytes `asked` (end exclusive, not empty).
pub fn check_partial_content(
    content_range: Option<&str>,
    content_length: Option<u64>,
    asked: Range<u64>,
) -> Result<(), ContentRangeError> {
    let Some(value) = content_range else {
        return Err(ContentRangeError::Missing { asked });
    };
    let (first, last, complete) = parse(value).ok_or_else(|| ContentRangeError::Malformed {
        value: value.to_owned(),
    })?;
    let consistent = first <= last && complete.is_none_or(|len| last < len);
    if !consistent {
        return Err(ContentRangeError::Malformed {
            value: value.to_owned(),
        });
    }
    if first != asked.start || Some(last) != asked.end.checked_sub(1) {
        return Err(ContentRangeError::Mismatch {
            value: value.to_owned(),
            asked,
        });
    }
    if let Some(length) = content_length
        && length != asked.end - asked.start
    {
        return Err(ContentRangeError::LengthMismatch {
            value: value.to_owned(),
            length,
            asked,
        });
    }
    Ok(())
}

/// `bytes FIRST-LAST/COMPLETE` → `(FIRST, LAST, Some(COMPLETE))`; `/*` → `None`.
fn parse(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, complete) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let complete = match complete {
        "*" => None,
        n => Some(number(n)?),
    };
    Some((number(first)?, number(last)?, complete))
}

/// A decimal number of digits only (no sign, no spaces).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_asked_for_is_accepted() {
        assert_eq!(
            check_partial_content(
                Some("bytes 65536-131071/1048576"),
                Some(65536),
                65536..131072
            ),
            Ok(())
        );
        assert_eq!(
            check_partial_content(Some("bytes 0-0/*"), None, 0..1),
            Ok(())
        );
    }

    #[test]
    fn other_bytes_are_refused_by_what_differs() {
        let asked = 65536..131072;
        for value in [
            "bytes 0-65535/1048576",
            "bytes 65536-131072/1048576",
            "bytes 65537-131071/1048576",
            "bytes 65536-65536/1048576",
        ] {
            assert!(
                matches!(
                    check_partial_content(Some(value), None, asked.clone()),
                    Err(ContentRangeError::Mismatch { .. })
                ),
                "{value}"
            );
        }
        let err = check_partial_content(Some("bytes 0-65535/1048576"), None, asked.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"bytes 0-65535/1048576\"") && err.contains("65536-131071"),
            "{err}"
        );
        assert!(matches!(
            check_partial_content(None, None, asked.clone()),
            Err(ContentRangeError::Missing { .. })
        ));
        assert!(matches!(
            check_partial_content(Some("bytes 65536-131071/*"), Some(10), asked.clone()),
            Err(ContentRangeError::LengthMismatch { length: 10, .. })
        ));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for value in [
            "",
            "bytes",
            "bytes */1048576",
            "items 0-9/10",
            "bytes 0-9",
            "bytes 9-0/10",
            "bytes 0-9/9",
            "bytes -1-9/10",
            "bytes +0-9/10",
            "bytes 0-9/ 10",
            "bytes  0-9/10",
            "bytes 0-99999999999999999999999/*",
        ] {
            assert!(
                matches!(
                    check_partial_content(Some(value), None, 0..10),
                    Err(ContentRangeError::Malformed { .. })
                ),
                "{value:?}"
            );
        }
    }
}
