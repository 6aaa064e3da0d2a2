//! One qemu VM under software emulation (or KVM where asked): its command
//! line, its serial console collected line by line (and written to a log
//! file for the post-mortem), waiting for what it prints, and cutting its power
//! (SIGKILL: no flush, no shutdown, exactly a power cut for the guest).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the VM starts.
#[derive(Debug, Clone)]
pub enum Boot {
    /// qemu loads the boot selector kernel and initramfs itself (the
    /// firmware's stand-in); a reset starts them again.
    Direct {
        /// The kernel.
        kernel: PathBuf,
        /// The initramfs.
        initrd: PathBuf,
        /// Its command line.
        append: String,
    },
    /// OVMF firmware boots the disk's ESP (systemd-boot).
    Ovmf {
        /// A writable copy of the firmware variables.
        vars: PathBuf,
    },
}

/// What to start.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// The Moho disk (first virtio disk, `/dev/vda`).
    pub disk: PathBuf,
    /// `raw` or `qcow2`.
    pub disk_format: &'static str,
    /// Extra `-drive` options for the Moho disk (e.g. `throttling.iops-write=4`).
    pub disk_options: String,
    /// Further read-only raw disks (`/dev/vdb`, ...).
    pub extra_disks: Vec<PathBuf>,
    /// Extra `-drive` options for each of them (e.g. `throttling.bps-read=4194304`).
    pub extra_disk_options: String,
    /// How it boots.
    pub boot: Boot,
    /// Files the guest reads from `/sys/firmware/qemu_fw_cfg/by_name/<name>/raw`.
    pub fw_cfg: Vec<(String, PathBuf)>,
    /// Memory, MiB.
    pub memory_mib: u32,
    /// Exit instead of resetting when the guest reboots.
    pub no_reboot: bool,
    /// A user-mode network: guest address `10.0.2.100:<port>` reaches
    /// `127.0.0.1:<host port>` (nothing else is reachable).
    pub guest_forwards: Vec<(u16, u16)>,
    /// On the same user-mode network: `127.0.0.1:<host port>` on the host
    /// reaches the guest's `<guest port>` (`(host, guest)`).
    pub host_forwards: Vec<(u16, u16)>,
    /// A second user-mode network card (MAC [`METADATA_MAC`]) on
    /// `169.254.169.0/24`, where an EC2-style metadata service is: the
    /// guest's `169.254.169.254:80` reaches `127.0.0.1:<this port>`.
    pub metadata_forward: Option<u16>,
    /// qemu's accelerator: `tcg` (software emulation, what the tests use
    /// everywhere) or `kvm` (the demo, where [`kvm_works`]).
    pub accel: &'static str,
    /// An emulated hardware watchdog (`-device i6300esb`, `-watchdog-action
    /// reset`): once armed and not fed, it resets the machine like a
    /// server's watchdog would, whatever the guest's kernel is doing.
    pub hardware_watchdog: bool,
}

/// Whether this machine can run KVM guests: `/dev/kvm` opens read-write and
/// a probe VM (OVMF, no disk) runs under `-accel kvm` for a few seconds
/// without a KVM error. An openable `/dev/kvm` is not enough: under some
/// nested hypervisors the first firmware instructions already fail with
/// "KVM internal error ... emulation failure", and the VM then hangs paused.
pub fn kvm_works() -> bool {
    let opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    opens && kvm_probe_runs(Duration::from_secs(4))
}

/// Runs OVMF under KVM for `run_for`; true when qemu neither exited nor
/// reported a KVM error in that time.
fn kvm_probe_runs(run_for: Duration) -> bool {
    let dir = std::env::temp_dir().join(format!("moho-kvm-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let vars = dir.join("OVMF_VARS.fd");
    let stderr_path = dir.join("stderr");
    let works = (|| {
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).ok()?;
        let stderr = std::fs::File::create(&stderr_path).ok()?;
        let mut child = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "kvm",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-serial",
                "none",
                "-monitor",
                "none",
                "-m",
                "128",
                "-drive",
                "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                "-drive",
            ])
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .ok()?;
        let deadline = Instant::now() + run_for;
        let mut exited = false;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        let errors = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        Some(
            !exited
                && !errors.contains("KVM internal error")
                && !errors.contains("emulation failure"),
        )
    })()
    .unwrap_or(false);
    let _ = std::fs::remove_dir_all(&dir);
    works
}

/// The MAC address of the metadata network card ([`VmSpec::metadata_forward`]);
/// the guest's network configuration gives it [`METADATA_GUEST_ADDRESS`].
pub const METADATA_MAC: &str = "52:54:00:a9:fe:01";
/// The guest's address on the metadata network.
pub const METADATA_GUEST_ADDRESS: &str = "169.254.169.15/24";

impl VmSpec {
    /// A VM booting `disk` directly with `kernel` and `initrd`.
    pub fn direct(disk: &Path, kernel: &Path, initrd: &Path) -> Self {
        Self {
            disk: disk.to_owned(),
            disk_format: "raw",
            disk_options: String::new(),
            extra_disks: Vec::new(),
            extra_disk_options: String::new(),
            boot: Boot::Direct {
                kernel: kernel.to_owned(),
                initrd: initrd.to_owned(),
                append: "console=ttyS0 moho.wait=20 moho.retry=2".into(),
            },
            fw_cfg: Vec::new(),
            memory_mib: 512,
            no_reboot: false,
            guest_forwards: Vec::new(),
            host_forwards: Vec::new(),
            metadata_forward: None,
            accel: "tcg",
            hardware_watchdog: false,
        }
    }
}

#[derive(Debug, Default)]
struct Console {
    lines: Vec<String>,
    closed: bool,
}

/// A running VM; killed on drop.
#[derive(Debug)]
pub struct Vm {
    child: Child,
    console: Arc<(Mutex<Console>, Condvar)>,
    /// The console log.
    pub log: PathBuf,
}

fn opts(extra: &str) -> String {
    if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    }
}

/// Drops terminal escape sequences and carriage returns from a console line.
pub fn clean_line(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ ... final byte in @..~
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

impl Vm {
    /// Starts qemu; its console goes to `log` and to [`Vm::lines`].
    pub fn start(spec: &VmSpec, log: &Path) -> Self {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-accel",
            spec.accel,
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-m",
        ])
        .arg(spec.memory_mib.to_string())
        .arg("-drive")
        .arg(format!(
            "id=disk0,file={},format={},if=virtio,cache=writeback{}",
            spec.disk.display(),
            spec.disk_format,
            opts(&spec.disk_options)
        ));
        for (i, d) in spec.extra_disks.iter().enumerate() {
            cmd.arg("-drive").arg(format!(
                "id=extra{i},file={},format=raw,if=virtio,readonly=on{}",
                d.display(),
                opts(&spec.extra_disk_options)
            ));
        }
        match &spec.boot {
            Boot::Direct {
                kernel,
                initrd,
                append,
            } => {
                cmd.arg("-kernel")
                    .arg(kernel)
                    .arg("-initrd")
                    .arg(initrd)
                    .arg("-append")
                    .arg(append);
            }
            Boot::Ovmf { vars } => {
                cmd.arg("-drive")
                    .arg(
                        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                    )
                    .arg("-drive")
                    .arg(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
            }
        }
        for (name, file) in &spec.fw_cfg {
            cmd.arg("-fw_cfg")
                .arg(format!("name={name},file={}", file.display()));
        }
        if !spec.guest_forwards.is_empty() || !spec.host_forwards.is_empty() {
            let mut net = String::from("user,id=net0,restrict=on");
            for (host, guest) in &spec.host_forwards {
                net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
            }
            for (guest, host) in &spec.guest_forwards {
                // One socat per connection: a `tcp:` chardev would carry
                // only the first connection.
                net.push_str(&format!(
                    ",guestfwd=tcp:10.0.2.100:{guest}-cmd:socat - TCP:127.0.0.1:{host}"
                ));
            }
            cmd.arg("-netdev")
                .arg(net)
                .arg("-device")
                .arg("virtio-net-pci,netdev=net0");
        }
        if let Some(port) = spec.metadata_forward {
            cmd.arg("-netdev")
                .arg(format!(
                    "user,id=net1,restrict=on,net=169.254.169.0/24,\
                     guestfwd=tcp:169.254.169.254:80-cmd:socat - TCP:127.0.0.1:{port}"
                ))
                .arg("-device")
                .arg(format!("virtio-net-pci,netdev=net1,mac={METADATA_MAC}"));
        }
        // Entropy for the guest's getrandom() from the first second on.
        cmd.arg("-device").arg("virtio-rng-pci");
        if spec.hardware_watchdog {
            cmd.args(["-device", "i6300esb", "-watchdog-action", "reset"]);
        }
        if spec.no_reboot {
            cmd.arg("-no-reboot");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("starting qemu-system-x86_64 (Debian package qemu-system-x86)");
        let console = Arc::new((Mutex::new(Console::default()), Condvar::new()));
        let mut logf = std::fs::File::create(log).expect("console log file");
        let stdout = child.stdout.take().expect("qemu stdout");
        let stderr = child.stderr.take().expect("qemu stderr");
        let shared = console.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = clean_line(&buf);
                        let line = line.trim_end_matches('\n').to_owned();
                        let _ = writeln!(logf, "{line}");
                        let (m, cv) = &*shared;
                        m.lock().unwrap().lines.push(line);
                        cv.notify_all();
                    }
                }
            }
            let (m, cv) = &*shared;
            m.lock().unwrap().closed = true;
            cv.notify_all();
        });
        let shared = console.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let (m, cv) = &*shared;
                m.lock().unwrap().lines.push(format!("qemu: {line}"));
                cv.notify_all();
            }
        });
        Self {
            child,
            console,
            log: log.to_owned(),
        }
    }

    /// Every console line so far.
    pub fn lines(&self) -> Vec<String> {
        self.console.0.lock().unwrap().lines.clone()
    }

    /// Waits until a line at index `from` or later contains `needle`;
    /// returns its index. Panics with the console's tail on timeout or if
    /// qemu exits first.
    pub fn wait_for_from(&self, from: usize, needle: &str, timeout: Duration) -> usize {
        self.wait_any_from(from, &[needle], timeout).0
    }

    /// Like [`Vm::wait_for_from`] from the start.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> usize {
        self.wait_for_from(0, needle, timeout)
    }

    /// Waits for the first line from `from` on containing any of `needles`;
    /// returns its index and which needle.
    pub fn wait_any_from(
        &self,
        from: usize,
        needles: &[&str],
        timeout: Duration,
    ) -> (usize, usize) {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.console;
        let mut c = m.lock().unwrap();
        loop {
            for (i, line) in c.lines.iter().enumerate().skip(from) {
                if let Some(n) = needles.iter().position(|n| line.contains(n)) {
                    return (i, n);
                }
            }
            let now = Instant::now();
            if c.closed || now >= deadline {
                let tail: Vec<&String> = c.lines.iter().rev().take(60).collect();
                let tail: Vec<&str> = tail.into_iter().rev().map(String::as_str).collect();
                let message = format!(
                    "{} waiting for {needles:?} (console log {}):\n{}",
                    if c.closed { "qemu exited" } else { "timed out" },
                    self.log.display(),
                    tail.join("\n")
                );
                // Not while holding the console: the reader thread would
                // find it poisoned and hide this message under its own.
                drop(c);
                panic!("{message}");
            }
            c = cv.wait_timeout(c, deadline - now).unwrap().0;
        }
    }

    /// Cuts the power: SIGKILL, then waits for the process.
    pub fn power_cut(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for qemu to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("qemu status") {
                // Let the reader drain the last lines.
                let (m, cv) = &*self.console;
                let c = m.lock().unwrap();
                let _ = cv.wait_timeout_while(c, Duration::from_secs(2), |c| !c.closed);
                return s;
            }
            if Instant::now() >= deadline {
                let tail = self.lines();
                let start = tail.len().saturating_sub(40);
                panic!(
                    "qemu did not exit within {timeout:?} (log {}):\n{}",
                    self.log.display(),
                    tail[start..].join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
