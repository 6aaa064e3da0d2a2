//! Tests of [`super::http::check_partial`]: a `206` answer is judged on its
//! headers, before the body is read, so a server that sends other bytes of
//! the file than the chunk asked for is refused by name instead of having
//! them hashed as that chunk.

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderMap, HeaderValue};
use url::Url;

use super::FetchError;
use super::http::check_partial;

fn headers(range: Option<&'static str>, length: Option<&'static str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(r) = range {
        h.insert(CONTENT_RANGE, HeaderValue::from_static(r));
    }
    if let Some(l) = length {
        h.insert(CONTENT_LENGTH, HeaderValue::from_static(l));
    }
    h
}

fn url() -> Url {
    "https://repo.example/targets/amd64/1.1.0/abc.root.img"
        .parse()
        .unwrap()
}

#[test]
fn the_chunk_asked_for_passes() {
    let h = headers(Some("bytes 1048576-2097151/8388608"), Some("1048576"));
    assert!(check_partial(&url(), &(1_048_576..2_097_152), &h).is_ok());
}

#[test]
fn another_chunk_a_missing_range_or_a_wrong_length_is_refused_naming_the_url() {
    let asked = 1_048_576..2_097_152;
    for (h, needle) in [
        (
            headers(Some("bytes 0-1048575/8388608"), Some("1048576")),
            "does not match the bytes asked for, 1048576-2097151",
        ),
        (headers(None, Some("1048576")), "without a Content-Range"),
        (
            headers(Some("bytes 1048576-2097151/8388608"), Some("10")),
            "Content-Length 10",
        ),
        (headers(Some("bytes 1048576-2097151"), None), "is not"),
    ] {
        let err = check_partial(&url(), &asked, &h).unwrap_err();
        assert!(matches!(err, FetchError::BadPartialContent { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(needle) && msg.starts_with(url().as_str()),
            "{msg}"
        );
    }
}
