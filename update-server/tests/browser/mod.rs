//! Headless Chromium for the dashboard tests: starts Debian's chromedriver
//! on a free loopback port in its own process group, opens a WebDriver
//! session (fantoccini) on `chromium --headless --no-sandbox` with a fresh
//! profile, and saves screenshots under the test's output directory
//! (`$CARGO_TARGET_TMPDIR/dashboard/<test>/`). Without chromedriver the
//! tests are skipped loudly, unless `MOHO_REQUIRE_BROWSER=1` (set by
//! `scripts/test.sh`) turns that into a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// Where Debian's `chromium-driver` installs the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running browser.
pub struct Browser {
    pub client: Client,
    pub out: PathBuf,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and the browsers it started share its process group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a browser session for `test`; `None` when
    /// the driver is missing and not required.
    pub async fn start(test: &str) -> Option<Browser> {
        let driver_path =
            std::env::var("MOHO_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.to_owned());
        if !Path::new(&driver_path).exists() {
            assert!(
                std::env::var("MOHO_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "MOHO_REQUIRE_BROWSER=1 but {driver_path} is missing: install chromium and chromium-driver"
            );
            eprintln!(
                "!!! SKIPPING browser test {test}: {driver_path} not found (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("dashboard")
            .join(test);
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let port = free_port();
        let log = std::fs::File::create(out.join("chromedriver.log")).unwrap();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(&driver_path)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {driver_path}: {e}"))
        };
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1400,1800".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.push("--lang=en-US".to_owned());
        let mut chrome = serde_json::json!({"args": args});
        if Path::new("/usr/bin/chromium").exists() {
            chrome["binary"] = "/usr/bin/chromium".into();
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".to_owned(), chrome);
        let url = format!("http://127.0.0.1:{port}");
        // The driver needs a moment to listen; a new session takes a few
        // seconds on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("waiting for chromedriver: {e}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!(
                    "no WebDriver session from {driver_path} (log: {}): {e}",
                    out.join("chromedriver.log").display()
                ),
            }
        };
        Some(Browser {
            client,
            out,
            driver,
            _profile: profile,
        })
    }

    /// Saves a screenshot of the window as `<name>.png`.
    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.out.join(format!("{name}.png")), png).unwrap();
    }

    /// Opens `url` and waits for the page's `<main>`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
        self.wait_for("main").await;
    }

    /// Waits (at most 30 s) for an element.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// The text of the first element matching `css`. The dashboard's live
    /// refresh may replace the element between finding and reading it (a
    /// stale element): then it is found again.
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..20 {
            match self.wait_for(css).await.text().await {
                Ok(t) => return t,
                Err(e) if e.is_stale_element_reference() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("reading {css}: {e}"),
            }
        }
        panic!("{css} was replaced by the live refresh 20 times in a row")
    }

    /// The number shown by the first element matching `css`.
    pub async fn number(&self, css: &str) -> u64 {
        let t = self.text(css).await;
        t.replace(',', "")
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{css} shows {t:?}, not a number"))
    }

    /// Clicks the first element matching `css` and waits for the next page:
    /// the old document must be gone (its `<html>` element stale) before the
    /// new page's `<main>` counts, else a slow navigation under load would
    /// let the caller read the page it just left.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            let old_page = self.wait_for("html").await;
            match self.wait_for(css).await.click().await {
                Ok(()) => {
                    self.wait_until_gone(&old_page, css).await;
                    self.wait_for("main").await;
                    return;
                }
                Err(e) if e.is_stale_element_reference() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
        panic!("{css} was replaced by the live refresh 20 times in a row")
    }

    /// How many elements match `css` once the page shows `expected` of them
    /// (polled for at most 30 s, so a page still loading after a form was
    /// submitted is not counted); the last count if it never does.
    pub async fn count(&self, css: &str, expected: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = self
                .client
                .find_all(Locator::Css(css))
                .await
                .map_or(0, |v| v.len());
            if n == expected || Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element matching `css` that acts within the page (a
    /// script's button: no new page is loaded), finding it again when the
    /// live refresh replaced it.
    pub async fn press(&self, css: &str) {
        for _ in 0..20 {
            match self.wait_for(css).await.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
        panic!("{css} was replaced by the live refresh 20 times in a row")
    }

    /// Waits (at most 30 s) until `old_page` no longer belongs to the
    /// current document, i.e. the click on `css` loaded a new page.
    async fn wait_until_gone(&self, old_page: &fantoccini::elements::Element, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match old_page.tag_name().await {
                Err(e) if e.is_stale_element_reference() => return,
                // Chromium's answer when the element's document was replaced
                // while the call was under way.
                Err(e) if e.to_string().contains("does not belong to the document") => return,
                Err(e) => panic!("after clicking {css}: {e}"),
                Ok(_) => {
                    assert!(
                        Instant::now() < deadline,
                        "clicking {css} did not load a new page within 30 s"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The path of the current page.
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// Whether an alert dialog is open (a script ran).
    pub async fn alert_open(&self) -> bool {
        self.client.get_alert_text().await.is_ok()
    }

    /// Ends the session.
    pub async fn close(self) {
        let client = self.client.clone();
        client.close().await.unwrap();
    }
}
