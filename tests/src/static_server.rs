//! A plain static web server over a directory — Debian's nginx, as an
//! operator would put a repository on any web server or CDN — on a
//! loopback port. One process (`master_process off`, so it reads what the
//! test's user reads), stopped on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx serving a directory.
#[derive(Debug)]
pub struct StaticServer {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Its error log.
    pub log: PathBuf,
}

impl StaticServer {
    /// Serves `root` at `http://127.0.0.1:PORT/`, with its files under `work`.
    pub fn start(root: &Path, work: &Path) -> Self {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .expect("nginx is not installed (scripts/packages/test.txt lists it)");
        std::fs::create_dir_all(work.join("tmp")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let w = work.display();
        let log = work.join("error.log");
        let conf = work.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\npid {w}/nginx.pid;\nerror_log {w}/error.log warn;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  default_type application/octet-stream;\n\
                 client_body_temp_path {w}/tmp/body;\n  proxy_temp_path {w}/tmp/proxy;\n\
                 fastcgi_temp_path {w}/tmp/fastcgi;\n  uwsgi_temp_path {w}/tmp/uwsgi;\n\
                 scgi_temp_path {w}/tmp/scgi;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
                root = root.display(),
            ),
        )
        .unwrap();
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(work)
            .arg("-e")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, log }
    }

    /// Its base URL, `http://127.0.0.1:PORT/`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
