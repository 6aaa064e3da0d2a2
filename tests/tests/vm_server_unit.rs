//! The shipped `update-server.service` under a real systemd (issue 16
//! acceptance), in a qemu guest of the systemd test OS: the binary and the
//! files of `systemd/` installed as `docs/operators-server.md` says (unit,
//! sysusers, tmpfiles; the system user made at image build time, as image
//! builders apply sysusers to a read-only root), an environment file with the
//! listener, certificate and repository, nothing else.
//! - `systemctl start` returns once the server said READY=1 (`Type=notify`),
//!   and the unit runs as `moho-server`;
//! - a TLS client on the host trusts the first CA and not the second;
//! - with a download in flight the guest swaps the certificate on disk and runs
//!   `systemctl reload` (SIGHUP): a new connection gets the new certificate
//!   (the first CA no longer verifies it), the open download keeps going;
//! - still with that download in flight, `systemctl stop` (SIGTERM): the
//!   download completes, every byte as the repository has it, and the unit
//!   ends `success` with exit status 0 after the drain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use moho_e2e::vm::image::{
    Behaviour, Flavour, SCENARIO_FW_CFG, TestOs, TestRelease, install_program,
};
use moho_e2e::vm::qemu::{Vm, VmSpec};
use moho_e2e::vm::server::ServerTls;
use moho_e2e::vm::story::BOOT;
use moho_e2e::{bin, ok};

/// The guest's listener.
const GUEST_PORT: u16 = 8443;
/// Where the guest reaches the host's gate (`10.0.2.100:7000`).
const GUEST_GATE_PORT: u16 = 7000;
/// How much of the release image the host downloads, slowly: long enough
/// that the reload and the stop both happen while it is in flight.
const DOWNLOAD_BYTES: usize = 4 << 20;
/// The host reads this much every [`READ_PAUSE`] (at most 320 KiB/s: the
/// guest's one emulated CPU must have time left for the other connections).
const READ_STEP: usize = 32 << 10;
const READ_PAUSE: Duration = Duration::from_millis(100);

/// The server's settings, as an operator writes them
/// (`/etc/moho/update-server.env`). The certificate lives under `/run`: the
/// test OS's root is read-only and the scenario replaces it.
const SERVER_ENV: &str = "UPDATE_SERVER_ARGS=--listen 0.0.0.0:8443 \
--tls-cert /run/moho-test/tls/server.pem --tls-key /run/moho-test/tls/server.key \
--repo /mnt/repo --trusted-root /usr/lib/moho/root.json --drain-timeout 90s\n";

/// What the guest does, step by step; `gate` waits until the host says go
/// (a line on a connection to the host's gate, through qemu's user network).
const SCENARIO: &str = r#"
fw() { cat "/sys/firmware/qemu_fw_cfg/by_name/opt/moho/$1/raw"; }
gate() { bash -c 'exec 3<>/dev/tcp/10.0.2.100/7000 && read -r line <&3'; }
conns() { awk '$2 ~ /:20FB$/ && $4 == "01" { n++ } END { print n + 0 }' /proc/net/tcp; }
mkdir -p /run/moho-test/tls
fw cert1 > /run/moho-test/tls/server.pem
fw key1 > /run/moho-test/tls/server.key
chown moho-server /run/moho-test/tls/server.key
chmod 0400 /run/moho-test/tls/server.key
echo "moho-test: server unit $(systemctl is-active update-server.service) before start"
systemctl start update-server.service
pid=$(systemctl show -p MainPID --value update-server.service)
echo "moho-test: server started: $(systemctl is-active update-server.service) user=$(systemctl show -p User --value update-server.service) pid-user=$(stat -c %U /proc/$pid)"
gate
fw cert2 > /run/moho-test/tls/server.pem.new
fw key2 > /run/moho-test/tls/server.key.new
chown moho-server /run/moho-test/tls/server.key.new
chmod 0400 /run/moho-test/tls/server.key.new
mv /run/moho-test/tls/server.pem.new /run/moho-test/tls/server.pem
mv /run/moho-test/tls/server.key.new /run/moho-test/tls/server.key
systemctl reload update-server.service
# `systemctl reload` returns once the signal is sent; the server says when the
# new certificate is in use.
i=0
until journalctl -b -u update-server.service -o cat --no-pager | grep -q "SIGHUP: "; do
  i=$((i + 1)); [ "$i" -gt 120 ] && break
  sleep 0.5
done
echo "moho-test: server reloaded: $(systemctl is-active update-server.service) pid=$(systemctl show -p MainPID --value update-server.service)/$pid connections=$(conns) $(journalctl -b -u update-server.service -o cat --no-pager | grep "SIGHUP: " | tail -n1)"
gate
echo "moho-test: server stopping: connections=$(conns)"
systemctl stop update-server.service
echo "moho-test: server stopped: $(systemctl show -p Result,ExecMainStatus update-server.service | tr '\n' ' ')"
journalctl -b -u update-server.service -o cat --no-pager | sed 's/^/moho-test: journal: /'
sleep 600
"#;

fn console_log(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{test}.log"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client that trusts only `ca_pem`, on a fresh connection.
fn client(ca_pem: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

/// Whether a new connection trusting `ca_pem` gets `/healthz` answered.
fn verifies(ca_pem: &str, port: u16) -> Result<(), String> {
    let url = format!("https://127.0.0.1:{port}/healthz");
    match client(ca_pem).get(&url).send() {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{url}: {}", r.status())),
        Err(e) => Err(format!("{url}: {e:?}")),
    }
}

/// The largest file under `dir` (the release image among the targets).
fn largest_file(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if best.as_ref().is_none_or(|(n, _)| meta.len() > *n) {
                best = Some((meta.len(), e.path()));
            }
        }
    }
    best.expect("a target file").1
}

/// The test OS release with the server installed as an operator would.
fn server_release(os: &TestOs) -> PathBuf {
    let release = TestRelease {
        version: "1.0.0".into(),
        behaviour: Behaviour::Agent,
        flavour: Flavour::Systemd,
        payload_mib: 0,
    };
    let tree = os.tree(&release);
    install_program(&bin("update-server"), &tree, "usr/bin/update-server", false);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    for (from, to) in [
        (
            "update-server.service",
            "usr/lib/systemd/system/update-server.service",
        ),
        (
            "update-server.sysusers",
            "usr/lib/sysusers.d/moho-server.conf",
        ),
        (
            "update-server.tmpfiles",
            "usr/lib/tmpfiles.d/moho-server.conf",
        ),
    ] {
        std::fs::create_dir_all(tree.join(to).parent().unwrap()).unwrap();
        std::fs::copy(shipped.join(from), tree.join(to)).unwrap();
    }
    std::fs::create_dir_all(tree.join("etc/moho")).unwrap();
    std::fs::write(tree.join("etc/moho/update-server.env"), SERVER_ENV).unwrap();
    // The root is read-only at run time: its users and its /etc directories
    // are made when the image is built.
    ok(
        "systemd-sysusers",
        [
            format!("--root={}", tree.display()),
            tree.join("usr/lib/sysusers.d/moho-server.conf")
                .display()
                .to_string(),
        ],
    );
    ok(
        "systemd-tmpfiles",
        [
            format!("--root={}", tree.display()),
            "--create".to_owned(),
            tree.join("usr/lib/tmpfiles.d/moho-server.conf")
                .display()
                .to_string(),
        ],
    );
    let image = os.build_tree(&tree, &release);
    os.repo.add(&image, &["stable"]);
    image
}

#[test]
fn the_shipped_unit_runs_the_server_under_systemd() {
    moho_e2e::require_root("the systemd VM test");
    let dir = tempfile::tempdir().unwrap();
    let mut os = TestOs::new(dir.path());
    os.slot_mib = 256;
    let image = server_release(&os);
    let repo_disk = os.repo_disk();
    let disk = os.disk("disk.img", &image, false, "raw");
    let target = largest_file(&os.repo.repo.join("targets"));
    let target_path = target
        .strip_prefix(&os.repo.repo)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let expected = std::fs::read(&target).unwrap();
    assert!(
        expected.len() >= DOWNLOAD_BYTES,
        "the release image {} is smaller than the download ({} bytes)",
        target.display(),
        expected.len()
    );

    let tls1 = ServerTls::create(&dir.path().join("tls1"));
    let tls2 = ServerTls::create(&dir.path().join("tls2"));
    let scenario = dir.path().join("scenario.sh");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let port = free_port();
    let gate = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut spec = VmSpec::direct(&disk, &os.kernel.vmlinuz, &os.initramfs);
    spec.extra_disks.push(repo_disk);
    spec.host_forwards.push((port, GUEST_PORT));
    spec.guest_forwards
        .push((GUEST_GATE_PORT, gate.local_addr().unwrap().port()));
    spec.fw_cfg.push((SCENARIO_FW_CFG.into(), scenario));
    for (name, tls) in [("1", &tls1), ("2", &tls2)] {
        spec.fw_cfg
            .push((format!("opt/moho/cert{name}"), tls.cert_path().to_owned()));
        spec.fw_cfg
            .push((format!("opt/moho/key{name}"), tls.key_path().to_owned()));
    }
    let vm = Vm::start(&spec, &console_log("server_unit"));
    let line = |at: usize| vm.lines()[at].clone();

    let inactive = vm.wait_for("moho-test: server unit ", BOOT * 2);
    assert!(
        line(inactive).contains("inactive before start"),
        "{}",
        line(inactive)
    );
    let started = vm.wait_for("moho-test: server started: ", BOOT);
    assert!(
        line(started).contains("started: active user=moho-server pid-user=moho-server"),
        "Type=notify: `systemctl start` returned with the unit active, as moho-server: {}",
        line(started)
    );
    verifies(&tls1.ca_pem, port).unwrap();
    assert!(
        verifies(&tls2.ca_pem, port).is_err(),
        "the second CA must not verify the first certificate"
    );

    // The slow download the reload and the stop happen under.
    let url = format!("https://127.0.0.1:{port}/repo/{target_path}");
    let progress = Arc::new(AtomicUsize::new(0));
    let download = {
        let (url, ca, progress) = (url.clone(), tls1.ca_pem.clone(), progress.clone());
        std::thread::spawn(move || slow_download(&url, &ca, &progress))
    };
    while progress.load(Ordering::SeqCst) == 0 {
        assert!(
            !download.is_finished(),
            "the download ended before its first bytes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    open_gate(&gate);

    let reloaded = vm.wait_for("moho-test: server reloaded: ", BOOT);
    let text = line(reloaded);
    let pid = text
        .split("pid=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_default();
    let (now, before) = pid.split_once('/').unwrap_or_default();
    assert!(
        text.contains("reloaded: active") && now == before && !now.is_empty(),
        "reloaded in place, same process: {text}"
    );
    assert!(
        text.contains("SIGHUP: reloaded TLS certificate /run/moho-test/tls/server.pem"),
        "{text}"
    );
    // A new connection gets the new certificate; the open one goes on.
    verifies(&tls2.ca_pem, port).unwrap_or_else(|e| panic!("after `systemctl reload`: {e}"));
    assert!(
        verifies(&tls1.ca_pem, port).is_err(),
        "after `systemctl reload` a new connection still got the first certificate"
    );
    let before_stop = progress.load(Ordering::SeqCst);
    assert!(
        !download.is_finished() && before_stop < DOWNLOAD_BYTES,
        "the download must still be in flight at the stop ({before_stop} of {DOWNLOAD_BYTES} bytes)"
    );
    open_gate(&gate);

    let stopping = vm.wait_for("moho-test: server stopping: ", BOOT);
    let stop_seen = Instant::now();
    let at_stop = progress.load(Ordering::SeqCst);
    assert!(
        !line(stopping).contains("connections=0"),
        "the download's connection is open when `systemctl stop` runs: {}",
        line(stopping)
    );
    let got = download.join().expect("the download thread");
    let stopped = vm.wait_for("moho-test: server stopped: ", BOOT);
    vm.wait_for("moho-test: journal: ", BOOT);
    std::thread::sleep(Duration::from_secs(2));
    let journal: Vec<String> = vm
        .lines()
        .into_iter()
        .filter(|l| l.contains("moho-test: journal: "))
        .collect();
    let story = format!(
        "{} of {DOWNLOAD_BYTES} bytes when `systemctl stop` ran, {} when the download ended {:?} later ({}); {}; journal: {journal:#?}",
        at_stop,
        got.bytes.len(),
        got.ended.saturating_duration_since(stop_seen),
        got.error.as_deref().unwrap_or("no error"),
        line(stopped)
    );
    assert!(
        got.error.is_none() && got.bytes.len() == DOWNLOAD_BYTES,
        "the drained download is whole: {story}"
    );
    assert!(
        got.bytes == expected[..DOWNLOAD_BYTES],
        "the drained download has the repository's bytes"
    );
    assert!(
        line(stopped).contains("Result=success ExecMainStatus=0"),
        "SIGTERM drains and exits 0: {story}"
    );
    assert!(
        journal
            .iter()
            .any(|l| l.contains("answering the requests in flight")),
        "the journal shows the drain: {story}"
    );
}

/// Lets the guest's next `gate` go on.
fn open_gate(gate: &TcpListener) {
    let (mut conn, _) = gate.accept().expect("the guest at the gate");
    conn.write_all(b"go\n").unwrap();
}

/// How the slow download ended.
struct Downloaded {
    bytes: Vec<u8>,
    error: Option<String>,
    ended: Instant,
}

/// Reads the first [`DOWNLOAD_BYTES`] of `url` slowly, counting them in
/// `progress`.
fn slow_download(url: &str, ca_pem: &str, progress: &AtomicUsize) -> Downloaded {
    let mut response = client(ca_pem)
        .get(url)
        .header("Range", format!("bytes=0-{}", DOWNLOAD_BYTES - 1))
        .timeout(Duration::from_secs(900))
        .send()
        .unwrap();
    assert_eq!(response.status(), 206, "{url}");
    let mut bytes = Vec::with_capacity(DOWNLOAD_BYTES);
    let mut buf = vec![0u8; READ_STEP];
    loop {
        let error = match response.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                progress.store(bytes.len(), Ordering::SeqCst);
                std::thread::sleep(READ_PAUSE);
                continue;
            }
            Err(e) => Some(format!("{e:?}")),
        };
        return Downloaded {
            bytes,
            error,
            ended: Instant::now(),
        };
    }
}
