//! A dashboard client over plain HTTP for tests: logs in through the login
//! form (double-submit cookie), keeps the session cookie, reads the CSRF
//! secret from a page, and posts forms; redirects are not followed so tests
//! see them. Plus small readers of the rendered HTML.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use reqwest::redirect::Policy;

use super::TestServer;

/// An answer: status, `Location`, body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

/// A browser-like HTTP client with its cookies.
pub struct Dash {
    pub base: String,
    http: reqwest::Client,
    pub cookies: Vec<(String, String)>,
}

fn set_cookies(resp: &reqwest::Response, jar: &mut Vec<(String, String)>) {
    for v in resp.headers().get_all("set-cookie") {
        let v = v.to_str().unwrap();
        let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
        let (k, val) = kv.split_once('=').unwrap();
        jar.retain(|(n, _)| n != k);
        if !attrs.contains("Max-Age=0") {
            jar.push((k.to_owned(), val.to_owned()));
        }
    }
}

impl Dash {
    pub fn new(s: &TestServer) -> Self {
        Self {
            base: s.base.clone(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        set_cookies(&resp, &mut self.cookies);
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            headers: resp.headers().clone(),
            html: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(form))
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    /// Logs in with `token`; returns the answer to the form post.
    pub async fn login(&mut self, token: &str) -> Page {
        let form = self.get("/ui/login").await;
        assert_eq!(form.status, 200, "{}", form.html);
        let csrf = csrf(&form.html);
        self.post("/ui/login", &[("token", token), ("csrf", &csrf)])
            .await
    }

    /// The CSRF secret of the current session, read from the overview.
    pub async fn csrf(&mut self) -> String {
        let p = self.get("/ui/").await;
        assert_eq!(p.status, 200, "{}", p.html);
        csrf(&p.html)
    }
}

/// A form body.
pub fn urlencoded(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The first `name="csrf" value="..."` of a page.
pub fn csrf(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The number in the first `data-figure="key"` element after `anchor`.
pub fn figure(html: &str, anchor: &str, key: &str) -> u64 {
    let from = html
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} not in page"));
    let needle = format!(r#"data-figure="{key}">"#);
    let at = html[from..]
        .find(&needle)
        .unwrap_or_else(|| panic!("figure {key} not after {anchor}"))
        + from
        + needle.len();
    let text = &html[at..at + html[at..].find('<').unwrap()];
    text.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("figure {key} is {text:?}"))
}
