//! The live event stream as server-sent events (`GET /api/v1/events/live`,
//! issue 16): filters are applied on the server (a subscriber for one
//! group's failures gets only those, while an unfiltered one gets every
//! event), a reconnecting client resumes after the last id it saw, and a
//! subscriber that does not read is told how many events it missed while
//! the server and the other subscribers go on (its buffer is the server's
//! bounded ring, not a queue of its own). On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestNode, TestServer, backends, start};
use moho_protocol::node::{EventKind, MAX_EVENTS_PER_REPORT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One server-sent event: its name, id and data.
#[derive(Debug, Clone)]
struct Message {
    event: String,
    id: Option<String>,
    data: String,
}

fn parse(block: &str) -> Option<Message> {
    let mut m = Message {
        event: "message".into(),
        id: None,
        data: String::new(),
    };
    let mut any = false;
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            m.event = v.trim().to_owned();
            any = true;
        } else if let Some(v) = line.strip_prefix("id:") {
            m.id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            m.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            any = true;
        }
    }
    any.then_some(m)
}

/// A subscriber reading the stream through reqwest.
struct Subscriber {
    resp: reqwest::Response,
    buf: String,
}

impl Subscriber {
    async fn open(s: &TestServer, query: &str, last_event_id: Option<&str>) -> Self {
        let mut req = s
            .http
            .get(format!("{}/api/v1/events/live?{query}", s.base))
            .bearer_auth(&s.viewer);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next message (a hang guard, not a timing assertion: 30 s).
    async fn next(&mut self) -> Message {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(m) = parse(&block) {
                    return m;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("no server-sent event within 30 s")
                .unwrap()
                .expect("the stream ended");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `event` message's JSON.
    async fn next_event(&mut self) -> (String, serde_json::Value) {
        let m = self.next().await;
        assert_eq!(m.event, "event", "{m:?}");
        (m.id.unwrap(), serde_json::from_str(&m.data).unwrap())
    }
}

fn error(code: &str) -> EventKind {
    EventKind::Error {
        version: None,
        code: code.into(),
        message: format!("{code} happened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_are_applied_on_the_server_and_a_client_resumes_after_its_last_id() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let a = s
            .admin("POST", "/groups", Some(serde_json::json!({"name": "db"})))
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        let mut web = TestNode::new("web-1");
        let mut db = TestNode::new("db-1");
        db.group = "db".into();
        for n in [&mut web, &mut db] {
            assert_eq!(n.check_in(&s).await.status, 200);
        }
        let bad = s
            .http
            .get(format!(
                "{}/api/v1/events/live?group=Not%20A%20Name",
                s.base
            ))
            .bearer_auth(&s.viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400, "{backend}: a bad filter is refused");
        let anonymous = s
            .http
            .get(format!("{}/api/v1/events/live", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);

        let mut db_failures = Subscriber::open(&s, "group=db&severity=error", None).await;
        let mut everything = Subscriber::open(&s, "", None).await;
        assert_eq!(web.report(&s, vec![error("web_down")]).await.status, 200);
        assert_eq!(
            db.report(
                &s,
                vec![EventKind::Installed {
                    version: "1.1.0".into()
                }]
            )
            .await
            .status,
            200
        );
        assert_eq!(db.report(&s, vec![error("disk_full")]).await.status, 200);

        let (_, e) = db_failures.next_event().await;
        assert_eq!(
            (
                e["node_id"].as_str(),
                e["kind"].as_str(),
                e["group"].as_str()
            ),
            (Some("db-1"), Some("error"), Some("db")),
            "{backend}: the filtered subscriber gets db's failure first: {e}"
        );
        assert_eq!(e["event"]["code"], "disk_full");
        let mut seen = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (id, e) = everything.next_event().await;
            ids.push(id);
            seen.push(format!(
                "{}:{}",
                e["node_id"].as_str().unwrap(),
                e["kind"].as_str().unwrap()
            ));
        }
        assert_eq!(
            seen,
            ["web-1:error", "db-1:installed", "db-1:error"],
            "{backend}: the unfiltered subscriber gets every event, in order"
        );

        // Reconnecting with the id of the first event it saw, a client gets
        // the two after it from the store, then the live ones.
        drop(everything);
        let mut again = Subscriber::open(&s, "", Some(&ids[0])).await;
        assert_eq!(again.next_event().await.0, ids[1]);
        assert_eq!(again.next_event().await.0, ids[2]);
        assert_eq!(
            web.report(&s, vec![error("web_down_again")]).await.status,
            200
        );
        let (_, e) = again.next_event().await;
        assert_eq!(e["event"]["code"], "web_down_again", "{backend}");
        assert_eq!(
            db.report(&s, vec![error("disk_full_again")]).await.status,
            200
        );
        let (_, e) = db_failures.next_event().await;
        assert_eq!(
            e["event"]["code"], "disk_full_again",
            "{backend}: web's second failure is not db's"
        );
    }
}

/// Reads what the raw connection `c` has until `needle`, at most `cap`
/// bytes; the text read.
async fn read_until(c: &mut tokio::net::TcpStream, needle: &str, cap: usize) -> String {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), c.read(&mut buf))
            .await
            .expect("nothing to read within 30 s")
            .unwrap();
        assert!(n > 0, "the stream ended before {needle:?}");
        all.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&all);
        if text.contains(needle) {
            return text.into_owned();
        }
        assert!(all.len() < cap, "{needle:?} not in the first {cap} bytes");
    }
}

async fn missed_total(s: &TestServer) -> u64 {
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("moho_live_events_missed_total "))
        .expect("moho_live_events_missed_total in /metrics")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_told_what_it_missed() {
    let (backend, url) = backends().await.remove(0);
    let s = start(&backend, &url, |c| c.live_events_buffer = 16).await;
    let mut node = TestNode::new("chatty-1");
    assert_eq!(node.check_in(&s).await.status, 200);

    // A client with a small receive buffer that asks for the stream and
    // then reads nothing.
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    slow.write_all(
        format!(
            "GET /api/v1/events/live HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\r\n",
            s.viewer
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let head = read_until(&mut slow, "\r\n\r\n", 64 * 1024).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Reports of many events until the server counts events that passed
    // the slow client by (its socket buffers fill first).
    let installed = || EventKind::Installed {
        version: "1.1.0".into(),
    };
    let mut reports = 0;
    while missed_total(&s).await == 0 {
        assert!(
            reports < 2_000,
            "{reports} reports of {MAX_EVENTS_PER_REPORT} events and no subscriber missed any"
        );
        for _ in 0..10 {
            let kinds = (0..MAX_EVENTS_PER_REPORT).map(|_| installed()).collect();
            assert_eq!(node.report(&s, kinds).await.status, 200);
            reports += 1;
        }
    }
    // The slow client, read at last, finds the notice with the count.
    let text = read_until(&mut slow, "event: missed", 1 << 30).await;
    let notice = &text[text.find("event: missed").unwrap()..];
    let data = notice
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("the notice's data");
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert!(
        data["missed"].as_u64().is_some_and(|n| n > 0),
        "the notice says how many: {data}"
    );
    assert!(
        data["reason"].as_str().unwrap().contains("too slowly"),
        "{data}"
    );
    // The server goes on: a new event still reaches a new subscriber.
    let mut fresh = Subscriber::open(&s, "severity=error", None).await;
    assert_eq!(node.report(&s, vec![error("still_here")]).await.status, 200);
    // (It may first be told that it missed some of the chatty node's
    // events, which the server is still handing out.)
    let e = loop {
        let m = fresh.next().await;
        match m.event.as_str() {
            "missed" => continue,
            "event" => break serde_json::from_str::<serde_json::Value>(&m.data).unwrap(),
            other => panic!("unexpected {other}: {m:?}"),
        }
    };
    assert_eq!(e["event"]["code"], "still_here");
}
