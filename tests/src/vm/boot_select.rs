//! `boot-select` as the initramfs needs it: statically linked (glibc with
//! `-C target-feature=+crt-static`; only the final program gets the flag, so
//! the rest of the build is shared with the ordinary one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A static `boot-select`, built once per test process and copied out of
/// the target directory (where an ordinary build would replace it).
pub fn static_boot_select() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out_dir = tempfile::Builder::new()
            .prefix("moho-boot-select")
            .tempdir()
            .expect("temp dir")
            .keep();
        let copy = out_dir.join("boot-select");
        for _ in 0..3 {
            let exe = build();
            std::fs::copy(&exe, &copy).expect("copying boot-select");
            if is_static(&copy) {
                return copy;
            }
            // Another build replaced it with the dynamic one in between.
        }
        panic!("could not get a static boot-select from cargo rustc");
    })
}

fn build() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let exe = std::env::current_exe().expect("test executable");
    let release = exe
        .parent()
        .and_then(Path::parent)
        .is_some_and(|p| p.ends_with("release"));
    let mut cmd = Command::new(cargo);
    cmd.args([
        "rustc",
        "--quiet",
        "-p",
        "update-agent",
        "--bin",
        "boot-select",
        "--message-format=json",
    ]);
    if release {
        cmd.arg("--release");
    }
    cmd.args([
        "--",
        "-C",
        "target-feature=+crt-static",
        "-C",
        "strip=debuginfo",
    ]);
    let out = cmd.output().expect("running cargo rustc");
    assert!(
        out.status.success(),
        "cargo rustc for a static boot-select failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == "boot-select")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the boot-select executable")
}

/// Whether an ELF program has no `PT_INTERP` (needs no dynamic loader).
pub fn is_static(path: &Path) -> bool {
    let Ok(elf) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return false;
    }
    let phoff = usize::try_from(u64::from_le_bytes(elf[32..40].try_into().unwrap())).unwrap();
    let (entsize, num) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
    (0..num).all(|i| {
        let at = phoff + i * entsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) != 3
    })
}
