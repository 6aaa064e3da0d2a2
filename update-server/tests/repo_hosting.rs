//! Repository hosting: TUF files under /repo with exact lengths, ETag,
//! conditional requests and byte ranges so agents resume downloads; nothing
//! outside metadata/ and targets/ is reachable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_served_with_ranges_and_etags() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let s = start("sqlite", &url, |_| {}).await;
    let image: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(s.repo_dir.join("targets/amd64-generic/1.1.0")).unwrap();
    std::fs::create_dir_all(s.repo_dir.join("metadata")).unwrap();
    std::fs::write(
        s.repo_dir.join("targets/amd64-generic/1.1.0/image.raw"),
        &image,
    )
    .unwrap();
    std::fs::write(s.repo_dir.join("metadata/timestamp.json"), b"{}").unwrap();
    std::fs::write(s.repo_dir.join("secret.pem"), b"key").unwrap();
    let file = format!("{}/repo/targets/amd64-generic/1.1.0/image.raw", s.base);

    let full = s.http.get(&file).send().await.unwrap();
    assert_eq!(full.status().as_u16(), 200);
    assert_eq!(full.headers()["content-length"], "100000");
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(full.bytes().await.unwrap().as_ref(), image.as_slice());

    // Resume from byte 60,000.
    let part = s
        .http
        .get(&file)
        .header("range", "bytes=60000-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 60000-99999/100000");
    assert_eq!(part.headers()["content-length"], "40000");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &image[60_000..]);

    // A stale If-Range gets the whole (changed) file instead.
    let stale = s
        .http
        .get(&file)
        .header("range", "bytes=60000-")
        .header("if-range", "\"old\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 200);

    let suffix = s
        .http
        .get(&file)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(suffix.bytes().await.unwrap().as_ref(), &image[99_990..]);

    let unsat = s
        .http
        .get(&file)
        .header("range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(unsat.status().as_u16(), 416);
    assert_eq!(unsat.headers()["content-range"], "bytes */100000");

    let cached = s
        .http
        .get(&file)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status().as_u16(), 304);

    let head = s.http.head(&file).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], "100000");

    let meta = s
        .http
        .get(format!("{}/repo/metadata/timestamp.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(meta.headers()["content-type"], "application/json");

    for bad in [
        "/repo/secret.pem",
        "/repo/targets/../secret.pem",
        "/repo/targets/%2e%2e/secret.pem",
        "/repo/targets/none",
    ] {
        let r = s.http.get(format!("{}{bad}", s.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{bad}");
    }
}

/// A file of several read buffers (256 KiB each) plus a ragged end: whole,
/// in ranges that start and end inside buffers and across their edges, and
/// by 40 downloads at once (more than the server reads at a time), always
/// with exact bytes and lengths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_come_back_exact_whole_in_ranges_and_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let s = start("sqlite", &url, |_| {}).await;
    let len = 3 * 256 * 1024 + 12_345;
    let image: Vec<u8> = (0u32..)
        .take(len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::create_dir_all(s.repo_dir.join("targets/amd64-generic/2.0.0")).unwrap();
    std::fs::write(
        s.repo_dir.join("targets/amd64-generic/2.0.0/root.img"),
        &image,
    )
    .unwrap();
    let file = format!("{}/repo/targets/amd64-generic/2.0.0/root.img", s.base);

    let full = s.http.get(&file).send().await.unwrap();
    assert_eq!(full.status().as_u16(), 200);
    assert_eq!(full.headers()["content-length"], len.to_string().as_str());
    assert!(full.bytes().await.unwrap().as_ref() == image.as_slice());

    let edge = 256 * 1024;
    for (a, b) in [
        (0, 0),
        (edge - 1, edge),
        (edge - 7, 2 * edge + 9),
        (edge, 3 * edge - 1),
        (3 * edge, len - 1),
        (len - 1, len - 1),
        (123, len - 1),
    ] {
        let part = s
            .http
            .get(&file)
            .header("range", format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        assert_eq!(part.status().as_u16(), 206, "{a}-{b}");
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes {a}-{b}/{len}").as_str()
        );
        assert_eq!(
            part.headers()["content-length"],
            (b - a + 1).to_string().as_str()
        );
        assert!(
            part.bytes().await.unwrap().as_ref() == &image[a..=b],
            "bytes {a}-{b}"
        );
    }

    let downloads = (0..40).map(|i| {
        let http = s.http.clone();
        let file = file.clone();
        async move {
            let from = i * 10_007;
            let r = http
                .get(&file)
                .header("range", format!("bytes={from}-"))
                .send()
                .await
                .unwrap();
            (from, r.bytes().await.unwrap())
        }
    });
    for (from, body) in futures_util::future::join_all(downloads).await {
        assert!(body.as_ref() == &image[from..], "download from {from}");
    }
}
