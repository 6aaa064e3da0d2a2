//! The real sources: the kernel command line, the systemd credential, a
//! config drive (vfat or ISO 9660 labelled `cidata`/`config-2`, as NoCloud
//! and OpenStack write them) and `moho/provision.toml` on the ESP. FAT is
//! read in-process (the `fatfs` crate, over a device opened read-only: no
//! mount, no vfat module, nothing written); an ISO 9660 config drive is
//! mounted read-only (no exec, no devices, no set-uid) under a private
//! directory, read and unmounted.

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::source::{Found, Source, SourceError, SourceName, read_if_present};

/// The credential's name.
pub const CREDENTIAL: &str = "moho.provision";

/// Gets the bytes at a URL (the seam for tests).
pub trait UrlFetch {
    /// One GET; the body, or why not.
    fn get(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// Largest document fetched.
pub const MAX_DOCUMENT: u64 = 1024 * 1024;

/// HTTP(S) with reqwest: the system roots for HTTPS (the pinned hash is what
/// makes the document trusted), 10 s per attempt, a few attempts while the
/// network comes up, at most [`MAX_DOCUMENT`] bytes.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    /// Attempts before giving up.
    pub attempts: u32,
    /// Pause between attempts.
    pub pause: std::time::Duration,
}

impl Default for HttpFetch {
    fn default() -> Self {
        Self {
            attempts: 6,
            pause: std::time::Duration::from_secs(5),
        }
    }
}

impl UrlFetch for HttpFetch {
    fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let client = crate::fetch::http::client_builder(None)
            .map_err(|e| e.to_string())?
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut last = String::new();
        for attempt in 1..=self.attempts.max(1) {
            match client
                .get(url)
                .send()
                .and_then(reqwest::blocking::Response::error_for_status)
            {
                Ok(resp) => {
                    let mut body = Vec::new();
                    resp.take(MAX_DOCUMENT + 1)
                        .read_to_end(&mut body)
                        .map_err(|e| format!("reading the body: {e}"))?;
                    if body.len() as u64 > MAX_DOCUMENT {
                        return Err(format!("larger than {MAX_DOCUMENT} bytes"));
                    }
                    return Ok(body);
                }
                Err(e) => {
                    last = moho_core::report::render_chain(&e);
                    if e.status().is_some() {
                        break; // the server answered: no point asking again
                    }
                    tracing::info!(url, attempt, "fetching the provision document: {last}");
                    if attempt < self.attempts {
                        std::thread::sleep(self.pause);
                    }
                }
            }
        }
        Err(format!("unreachable: {last}"))
    }
}

/// `moho.provision=URL` with `moho.provision.sha256=HEX` on the kernel
/// command line: fetched once (HTTP or HTTPS), accepted only if it hashes
/// to the pinned value.
pub struct KernelCmdline<'f> {
    /// The command line.
    pub cmdline: String,
    /// How URLs are fetched.
    pub fetch: &'f dyn UrlFetch,
}

impl std::fmt::Debug for KernelCmdline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelCmdline")
            .field("cmdline", &self.cmdline)
            .finish()
    }
}

impl Source for KernelCmdline<'_> {
    fn kind(&self) -> &'static str {
        "kernel command line"
    }

    fn probe(&mut self) -> Result<Option<Found>, SourceError> {
        let word = |prefix: &str| {
            self.cmdline
                .split_whitespace()
                .rev()
                .find_map(|w| w.strip_prefix(prefix))
                .map(str::to_owned)
        };
        let Some(url) = word("moho.provision=") else {
            return Ok(None);
        };
        let origin = SourceName::KernelCmdline(url.clone());
        let read = |detail: String| SourceError::Read {
            origin: origin.clone(),
            detail,
        };
        let Some(pinned) = word("moho.provision.sha256=") else {
            return Err(read(
                "moho.provision.sha256= is missing: a document fetched from a URL must be \
                 pinned by its SHA-256 on the same command line"
                    .into(),
            ));
        };
        let pinned = pinned.to_ascii_lowercase();
        if pinned.len() != 64 || !pinned.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(read(format!(
                "moho.provision.sha256={pinned} is not 64 hexadecimal digits"
            )));
        }
        match url::Url::parse(&url).map(|u| u.scheme().to_owned()) {
            Ok(s) if s == "http" || s == "https" => {}
            Ok(s) => return Err(read(format!("scheme {s} (https or http only)"))),
            Err(e) => return Err(read(format!("not a URL: {e}"))),
        }
        let bytes = self.fetch.get(&url).map_err(read)?;
        let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if actual != pinned {
            return Err(SourceError::HashMismatch {
                origin,
                pinned,
                actual,
            });
        }
        Ok(Some(Found { origin, bytes }))
    }
}

/// The systemd credential `moho.provision`: in the unit's
/// `$CREDENTIALS_DIRECTORY` (`LoadCredential=`), else among the system
/// credentials PID 1 imported (qemu fw_cfg, SMBIOS, the kernel command
/// line), else straight from qemu's fw_cfg where systemd puts no system
/// credentials of its own there (the same transport, read by us).
#[derive(Debug, Clone)]
pub struct Credential {
    /// Files to try, in order.
    pub files: Vec<PathBuf>,
}

/// Where qemu's `-fw_cfg name=opt/io.systemd.credentials/moho.provision`
/// shows up.
pub const FW_CFG_CREDENTIAL: &str =
    "/sys/firmware/qemu_fw_cfg/by_name/opt/io.systemd.credentials/moho.provision/raw";

impl Credential {
    /// `$CREDENTIALS_DIRECTORY/moho.provision` if set, then
    /// `/run/credentials/@system/moho.provision`, then the fw_cfg file.
    pub fn from_env() -> Self {
        let mut files: Vec<PathBuf> = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|d| PathBuf::from(d).join(CREDENTIAL))
            .into_iter()
            .collect();
        files.push(Path::new("/run/credentials/@system").join(CREDENTIAL));
        files.push(FW_CFG_CREDENTIAL.into());
        Self { files }
    }
}

impl Source for Credential {
    fn kind(&self) -> &'static str {
        "systemd credential"
    }

    fn probe(&mut self) -> Result<Option<Found>, SourceError> {
        for path in &self.files {
            let path = path.clone();
            if let Some(bytes) = read_if_present(&path, || SourceName::Credential(path.clone()))? {
                return Ok(Some(Found {
                    origin: SourceName::Credential(path),
                    bytes,
                }));
            }
        }
        Ok(None)
    }
}

/// Labels of config drives, and the file each kind keeps user data in.
const DRIVES: [(&str, &str); 4] = [
    ("cidata", "user-data"),
    ("CIDATA", "user-data"),
    ("config-2", "openstack/latest/user_data"),
    ("CONFIG-2", "openstack/latest/user_data"),
];

/// A config drive found by its filesystem label (`blkid`).
#[derive(Debug, Clone)]
pub struct ConfigDrive {
    /// Where drives are mounted while they are read.
    pub mount_dir: PathBuf,
}

impl Source for ConfigDrive {
    fn kind(&self) -> &'static str {
        "config drive"
    }

    fn probe(&mut self) -> Result<Option<Found>, SourceError> {
        for (label, file) in DRIVES {
            let Some(device) = device_with_label(label) else {
                continue;
            };
            let source = SourceName::ConfigDrive {
                label: label.to_lowercase(),
                device: device.clone(),
                file,
            };
            let bytes = read_from_drive(&device, &self.mount_dir, file)
                .map_err(|detail| SourceError::Read {
                    origin: source.clone(),
                    detail,
                })?
                .ok_or_else(|| SourceError::Read {
                    origin: source.clone(),
                    detail: format!("the drive has no {file}"),
                })?;
            return Ok(Some(Found {
                origin: source,
                bytes,
            }));
        }
        Ok(None)
    }
}

/// `moho/provision.toml` on the ESP (the Moho disk's `EFI-SYSTEM`
/// partition), which an operator can write before the first boot.
#[derive(Debug, Clone)]
pub struct EspFile {
    /// The ESP's partition device, if the disk has one the kernel shows.
    pub device: Option<PathBuf>,
    /// Where it is mounted while it is read.
    pub mount_dir: PathBuf,
}

/// The file on the ESP.
pub const ESP_FILE: &str = "moho/provision.toml";

impl Source for EspFile {
    fn kind(&self) -> &'static str {
        "ESP file"
    }

    fn probe(&mut self) -> Result<Option<Found>, SourceError> {
        let Some(device) = &self.device else {
            return Ok(None);
        };
        let source = SourceName::EspFile(device.clone());
        let bytes = read_fat_file(device, ESP_FILE).map_err(|detail| SourceError::Read {
            origin: source.clone(),
            detail,
        })?;
        Ok(bytes.map(|bytes| Found {
            origin: source,
            bytes,
        }))
    }
}

/// The device whose filesystem label is exactly `label`.
fn device_with_label(label: &str) -> Option<PathBuf> {
    let out = Command::new("blkid")
        .args(["-c", "/dev/null", "-o", "device", "-t"])
        .arg(format!("LABEL={label}"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(PathBuf::from)
}

/// A device opened read-only, for `fatfs` (which wants `Write` too: any
/// write is refused).
struct ReadOnly(std::fs::File);

impl std::io::Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl std::io::Seek for ReadOnly {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(to)
    }
}

impl std::io::Write for ReadOnly {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "opened read-only",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `device` starts like a FAT boot sector.
fn looks_fat(device: &Path) -> bool {
    use std::io::Read;
    let mut sector = [0u8; 512];
    std::fs::File::open(device)
        .and_then(|mut f| f.read_exact(&mut sector))
        .is_ok()
        && sector[510..512] == [0x55, 0xaa]
        && (sector[54..59] == *b"FAT12"
            || sector[54..59] == *b"FAT16"
            || sector[82..87] == *b"FAT32")
}

/// `file` (`/`-separated) from the FAT filesystem on `device`, or None if
/// it is not there.
fn read_fat_file(device: &Path, file: &str) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let dev =
        std::fs::File::open(device).map_err(|e| format!("opening {}: {e}", device.display()))?;
    let fs = fatfs::FileSystem::new(ReadOnly(dev), fatfs::FsOptions::new())
        .map_err(|e| format!("reading the FAT filesystem on {}: {e}", device.display()))?;
    let mut f = match fs.root_dir().open_file(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("opening {file}: {e}")),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| format!("reading {file}: {e}"))?;
    Ok(Some(bytes))
}

/// `file` from a config drive: FAT in-process, else (ISO 9660) mounted
/// read-only on `mount_dir`, read, unmounted.
fn read_from_drive(device: &Path, mount_dir: &Path, file: &str) -> Result<Option<Vec<u8>>, String> {
    if looks_fat(device) {
        return read_fat_file(device, file);
    }
    std::fs::create_dir_all(mount_dir)
        .map_err(|e| format!("creating {}: {e}", mount_dir.display()))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some(device),
        mount_dir,
        Some("iso9660"),
        flags,
        None::<&str>,
    )
    .map_err(|e| format!("not FAT, and it cannot be mounted read-only as iso9660: {e}"))?;
    let path = mount_dir.join(file);
    let read = match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {file}: {e}")),
    };
    if let Err(e) = umount2(mount_dir, MntFlags::MNT_DETACH) {
        tracing::warn!(dir = %mount_dir.display(), "unmounting: {e}");
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeFetch(Result<Vec<u8>, String>, std::cell::Cell<u32>);

    impl UrlFetch for FakeFetch {
        fn get(&self, _url: &str) -> Result<Vec<u8>, String> {
            self.1.set(self.1.get() + 1);
            self.0.clone()
        }
    }

    fn sha(b: &[u8]) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
    }

    #[test]
    fn a_url_on_the_command_line_is_fetched_and_checked_against_its_pinned_hash() {
        let doc = b"version = 1\n".to_vec();
        let fetch = FakeFetch(Ok(doc.clone()), std::cell::Cell::new(0));
        let mut none = KernelCmdline {
            cmdline: "ro console=ttyS0 moho.slot=A".into(),
            fetch: &fetch,
        };
        assert_eq!(none.probe(), Ok(None));
        assert_eq!(fetch.1.get(), 0);
        let url = "http://10.0.2.2/p.toml";
        let mut good = KernelCmdline {
            cmdline: format!(
                "ro moho.provision={url} moho.provision.sha256={}",
                sha(&doc).to_uppercase()
            ),
            fetch: &fetch,
        };
        let found = good.probe().unwrap().unwrap();
        assert_eq!(found.origin, SourceName::KernelCmdline(url.into()));
        assert_eq!(found.bytes, doc);

        let mut wrong = KernelCmdline {
            cmdline: format!(
                "moho.provision={url} moho.provision.sha256={}",
                sha(b"other")
            ),
            fetch: &fetch,
        };
        let e = wrong.probe().unwrap_err();
        assert!(matches!(e, SourceError::HashMismatch { .. }), "{e}");
        assert!(e.to_string().contains("does not match the pinned"), "{e}");

        for (cmdline, needle) in [
            (
                format!("moho.provision={url}"),
                "moho.provision.sha256= is missing",
            ),
            (
                format!("moho.provision={url} moho.provision.sha256=abc"),
                "not 64 hexadecimal digits",
            ),
            (
                format!(
                    "moho.provision=ftp://x/ moho.provision.sha256={}",
                    sha(&doc)
                ),
                "scheme ftp",
            ),
        ] {
            let mut src = KernelCmdline {
                cmdline,
                fetch: &fetch,
            };
            let e = src.probe().unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains("kernel command line moho.provision="),
                "{e}"
            );
        }
        let down = FakeFetch(
            Err("unreachable: connection refused".into()),
            std::cell::Cell::new(0),
        );
        let mut src = KernelCmdline {
            cmdline: format!("moho.provision={url} moho.provision.sha256={}", sha(&doc)),
            fetch: &down,
        };
        let e = src.probe().unwrap_err().to_string();
        assert!(e.contains("connection refused") && e.contains(url), "{e}");
    }

    #[test]
    fn the_real_fetcher_gets_a_document_from_a_loopback_server_and_names_a_refusal() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for (status, body) in [("200 OK", "version = 1\n"), ("404 Not Found", "")] {
                let (mut c, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).unwrap();
                write!(
                    c,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        let fetch = HttpFetch {
            attempts: 2,
            pause: std::time::Duration::from_millis(10),
        };
        let url = format!("http://127.0.0.1:{port}/p.toml");
        assert_eq!(fetch.get(&url).unwrap(), b"version = 1\n");
        let e = fetch.get(&url).unwrap_err();
        assert!(e.contains("404"), "{e}");
        server.join().unwrap();
        let refused = fetch
            .get(&format!("http://127.0.0.1:{port}/gone"))
            .unwrap_err();
        assert!(refused.starts_with("unreachable"), "{refused}");
    }

    #[test]
    fn the_credential_is_read_from_the_first_directory_that_has_it() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let mut src = Credential {
            files: vec![a.path().join(CREDENTIAL), b.path().join(CREDENTIAL)],
        };
        assert_eq!(src.probe(), Ok(None));
        std::fs::write(b.path().join(CREDENTIAL), b"version = 1\n").unwrap();
        let found = src.probe().unwrap().unwrap();
        assert_eq!(
            found.origin,
            SourceName::Credential(b.path().join(CREDENTIAL))
        );
        assert_eq!(found.bytes, b"version = 1\n");
    }

    #[test]
    fn a_file_on_a_fat_image_is_read_without_mounting_it() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("esp.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(34 << 20)
            .unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&img)
            .unwrap();
        fatfs::format_volume(
            f,
            fatfs::FormatVolumeOptions::new().fat_type(fatfs::FatType::Fat32),
        )
        .unwrap();
        assert!(looks_fat(&img));
        assert_eq!(read_fat_file(&img, ESP_FILE), Ok(None));
        {
            use std::io::Write;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&img)
                .unwrap();
            let fs = fatfs::FileSystem::new(f, fatfs::FsOptions::new()).unwrap();
            fs.root_dir().create_dir("moho").unwrap();
            let mut out = fs.root_dir().create_file(ESP_FILE).unwrap();
            out.write_all(b"version = 1\n").unwrap();
        }
        let before = std::fs::read(&img).unwrap();
        assert_eq!(
            read_fat_file(&img, ESP_FILE),
            Ok(Some(b"version = 1\n".to_vec()))
        );
        assert!(
            std::fs::read(&img).unwrap() == before,
            "reading wrote to the image"
        );
        let mut src = EspFile {
            device: Some(img.clone()),
            mount_dir: dir.path().join("mnt"),
        };
        assert_eq!(src.probe().unwrap().unwrap().bytes, b"version = 1\n");
        // Not FAT: a clear error naming the device.
        let junk = dir.path().join("junk.img");
        std::fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
        let e = read_fat_file(&junk, ESP_FILE).unwrap_err();
        assert!(e.contains("junk.img"), "{e}");
    }

    #[test]
    fn no_esp_device_means_no_esp_document() {
        let mut src = EspFile {
            device: None,
            mount_dir: "/nonexistent".into(),
        };
        assert_eq!(src.probe(), Ok(None));
    }
}
