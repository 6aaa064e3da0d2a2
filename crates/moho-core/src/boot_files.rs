//! What a slot carries for the boot selector, and the kernel command line the
//! selector hands to the slot's kernel (DESIGN §4).
//!
//! A slot image boots by what is in its `/boot`:
//!
//! | file | meaning |
//! |---|---|
//! | `vmlinuz` (or the only `vmlinuz*`/`vmlinux*`/`bzImage*`/`Image*`) | the kernel, loaded with `kexec_file_load` |
//! | `initrd.img` (beside `vmlinuz`), `initrd.img-X` (beside `vmlinuz-X`) | its initramfs, optional |
//! | `cmdline` | the slot's own kernel command line, optional; `#` lines are comments |
//!
//! The command line the slot kernel gets is `ro panic=10`, then the slot's
//! own words (minus any `root=` and `moho.slot=`, which only the selector may
//! set), then the words of the selector's own command line that are meant
//! for the booted system ([`FORWARDED_PREFIXES`]: the provision document's
//! URL and hash, systemd credentials), then `root=PARTUUID=<slot> moho.slot=A|B`. `panic=10` makes a
//! panicking kernel reset the machine so that the selector can fall back;
//! the slot may override it (the last `panic=` wins).
//!
//! Pure: the selector lists the directory and reads the files; this module
//! decides.

use std::fmt;

use uuid::Uuid;

use crate::slot_table::SlotName;

/// The slot's boot directory, relative to its root.
pub const BOOT_DIR: &str = "boot";
/// The slot's own command line, relative to its root.
pub const CMDLINE_FILE: &str = "boot/cmdline";
/// The kernel the selector prefers when a slot has several.
pub const DEFAULT_KERNEL: &str = "vmlinuz";
/// File name prefixes that count as a kernel in `/boot`.
pub const KERNEL_PREFIXES: [&str; 4] = ["vmlinuz", "vmlinux", "bzImage", "Image"];
/// Seconds before a panicking slot kernel resets the machine, unless the
/// slot's own command line says otherwise.
pub const DEFAULT_PANIC_SECONDS: u32 = 10;
/// Longest command line an x86 kernel takes (`COMMAND_LINE_SIZE` less the
/// terminating NUL).
pub const MAX_CMDLINE_LEN: usize = 2047;
/// In a Moho initramfs: the kernel modules to load, one absolute path per
/// line, dependencies first (written by `image-tools initramfs`, read by
/// `boot-select`).
pub const INITRAMFS_MODULES_LIST: &str = "/lib/moho/modules.load";

/// The files to boot a slot from, as names inside its `/boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The kernel.
    pub kernel: String,
    /// The initramfs, if the slot has one for that kernel.
    pub initrd: Option<String>,
}

/// A slot's `/boot` does not say which kernel to boot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootFilesError {
    /// No file looks like a kernel.
    #[error("no kernel in /boot (looked for vmlinuz*, vmlinux*, bzImage*, Image*; found: {})", list(.found))]
    NoKernel {
        /// What `/boot` holds.
        found: Vec<String>,
    },
    /// Several kernels and no `vmlinuz` to say which.
    #[error("several kernels in /boot ({}) and no /boot/vmlinuz naming the one to boot", .kernels.join(", "))]
    Ambiguous {
        /// The candidates.
        kernels: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

/// Picks the kernel and initramfs from the names in a slot's `/boot`.
pub fn pick_boot_files(names: &[String]) -> Result<BootFiles, BootFilesError> {
    let mut kernels: Vec<&String> = names
        .iter()
        .filter(|n| KERNEL_PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    kernels.sort();
    let kernel = if kernels.iter().any(|k| *k == DEFAULT_KERNEL) {
        DEFAULT_KERNEL.to_owned()
    } else {
        match kernels.as_slice() {
            [] => {
                let mut found = names.to_vec();
                found.sort();
                return Err(BootFilesError::NoKernel { found });
            }
            [one] => (*one).clone(),
            _ => {
                return Err(BootFilesError::Ambiguous {
                    kernels: kernels.into_iter().cloned().collect(),
                });
            }
        }
    };
    let suffix = KERNEL_PREFIXES
        .iter()
        .find_map(|p| kernel.strip_prefix(p))
        .unwrap_or_default();
    let initrd = format!("initrd.img{suffix}");
    Ok(BootFiles {
        initrd: names.contains(&initrd).then_some(initrd),
        kernel,
    })
}

/// The words of a `/boot/cmdline` file: lines joined by spaces, `#` comment
/// lines and blank lines dropped.
pub fn parse_cmdline_file(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a kernel command line into words, keeping double-quoted spaces
/// inside their word as the kernel does.
pub fn cmdline_words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in cmdline.chars() {
        if c == '"' {
            quoted = !quoted;
            word.push(c);
        } else if c.is_ascii_whitespace() && !quoted {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Words of the selector's command line (the ESP loader entry's options,
/// or what the firmware or qemu passed) that are for the booted system and
/// so are handed on through the `kexec`: first-boot provisioning
/// (`moho.provision=URL`, `moho.provision.sha256=HEX`) and systemd
/// credentials (`systemd.set_credential=`, `systemd.set_credential_binary=`).
pub const FORWARDED_PREFIXES: [&str; 4] = [
    "moho.provision=",
    "moho.provision.sha256=",
    "systemd.set_credential=",
    "systemd.set_credential_binary=",
];

/// The words of `selector_cmdline` to hand on to the slot kernel.
pub fn forwarded_words(selector_cmdline: &str) -> Vec<String> {
    cmdline_words(selector_cmdline)
        .into_iter()
        .filter(|w| FORWARDED_PREFIXES.iter().any(|p| w.starts_with(p)))
        .collect()
}

/// The composed command line is longer than the kernel accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CmdlineTooLong {
    /// Its length.
    pub len: usize,
}

impl fmt::Display for CmdlineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernel command line is {} bytes, the kernel takes at most {MAX_CMDLINE_LEN}",
            self.len
        )
    }
}

/// The command line for booting `slot` (partition GUID `partuuid`) with the
/// slot's own words `own`. For a trial boot, `watchdog` is the hardware
/// watchdog timeout the selector armed: `moho.watchdog=N` tells the slot's
/// initramfs to arm it again once its own drivers are loaded. `forwarded`
/// ([`forwarded_words`]) come after the slot's own words. Only the
/// selector sets `root=`, `moho.slot=` and `moho.watchdog=`.
pub fn slot_cmdline(
    own: &str,
    forwarded: &[String],
    slot: SlotName,
    partuuid: Uuid,
    watchdog: Option<u32>,
) -> Result<String, CmdlineTooLong> {
    let mut words = vec!["ro".to_owned(), format!("panic={DEFAULT_PANIC_SECONDS}")];
    words.extend(cmdline_words(own).into_iter().filter(|w| {
        !w.starts_with("root=") && !w.starts_with("moho.slot=") && !w.starts_with("moho.watchdog=")
    }));
    words.extend(forwarded.iter().cloned());
    words.push(format!("root=PARTUUID={partuuid}"));
    words.push(format!("moho.slot={slot}"));
    if let Some(secs) = watchdog {
        words.push(format!("moho.watchdog={secs}"));
    }
    let line = words.join(" ");
    if line.len() > MAX_CMDLINE_LEN {
        return Err(CmdlineTooLong { len: line.len() });
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::parse_boot_hints;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn prefers_vmlinuz_and_its_initrd() {
        let f = pick_boot_files(&names(&[
            "vmlinuz-6.1.0-56-cloud-amd64",
            "vmlinuz",
            "initrd.img",
            "initrd.img-6.1.0-56-cloud-amd64",
            "config-6.1.0-56-cloud-amd64",
        ]))
        .unwrap();
        assert_eq!(f.kernel, "vmlinuz");
        assert_eq!(f.initrd.as_deref(), Some("initrd.img"));
    }

    #[test]
    fn a_single_versioned_kernel_takes_its_own_initrd() {
        let f =
            pick_boot_files(&names(&["vmlinuz-6.1", "initrd.img-6.2", "initrd.img-6.1"])).unwrap();
        assert_eq!(f.kernel, "vmlinuz-6.1");
        assert_eq!(f.initrd.as_deref(), Some("initrd.img-6.1"));
        let f = pick_boot_files(&names(&["bzImage"])).unwrap();
        assert_eq!((f.kernel.as_str(), f.initrd), ("bzImage", None));
    }

    #[test]
    fn no_kernel_or_several_are_named() {
        let e = pick_boot_files(&names(&["cmdline", "initrd.img"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no kernel in /boot (looked for vmlinuz*, vmlinux*, bzImage*, Image*; found: cmdline, initrd.img)"
        );
        let e = pick_boot_files(&names(&["vmlinuz-6.2", "vmlinuz-6.1"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "several kernels in /boot (vmlinuz-6.1, vmlinuz-6.2) and no /boot/vmlinuz naming the one to boot"
        );
        assert!(
            pick_boot_files(&[])
                .unwrap_err()
                .to_string()
                .ends_with("found: nothing)")
        );
    }

    #[test]
    fn the_selector_owns_root_and_slot_and_puts_them_last() {
        let id = Uuid::from_u128(0x7130_c94a_213a_4e5a_8e26_6cce_9662_f132);
        let own = parse_cmdline_file(
            "# serial console\nconsole=ttyS0,115200\n\nroot=/dev/sda1 moho.slot=A quiet panic=1\n",
        );
        let line = slot_cmdline(&own, &[], SlotName::B, id, None).unwrap();
        assert_eq!(
            line,
            "ro panic=10 console=ttyS0,115200 quiet panic=1 \
             root=PARTUUID=7130c94a-213a-4e5a-8e26-6cce9662f132 moho.slot=B"
        );
        // What the booted system reads back from it.
        let hints = parse_boot_hints(&line).unwrap();
        assert_eq!(
            (hints.slot, hints.root_partuuid),
            (Some(SlotName::B), Some(id))
        );
        // A trial boot carries the armed watchdog's timeout; a slot cannot set it.
        let own = parse_cmdline_file("moho.watchdog=1 quiet\n");
        assert_eq!(
            slot_cmdline(&own, &[], SlotName::B, id, Some(60)).unwrap(),
            "ro panic=10 quiet root=PARTUUID=7130c94a-213a-4e5a-8e26-6cce9662f132 moho.slot=B \
             moho.watchdog=60"
        );
        assert!(
            !slot_cmdline(&own, &[], SlotName::B, id, None)
                .unwrap()
                .contains("watchdog")
        );
    }

    #[test]
    fn quoted_words_stay_whole_and_length_is_capped() {
        assert_eq!(
            cmdline_words(r#"a  dyndbg="file x.c +p" b"#),
            ["a", r#"dyndbg="file x.c +p""#, "b"]
        );
        let long = "x".repeat(MAX_CMDLINE_LEN);
        let e = slot_cmdline(&long, &[], SlotName::A, Uuid::nil(), None).unwrap_err();
        assert!(e.len > MAX_CMDLINE_LEN, "{e}");
        assert!(e.to_string().contains("at most 2047"));
    }

    #[test]
    fn provisioning_words_and_credentials_of_the_selector_reach_the_slot_kernel() {
        let selector = "console=ttyS0 moho.wait=20 moho.provision=http://10.0.2.2:8080/p.toml \
                        moho.provision.sha256=ab12 systemd.set_credential=moho.provision:version=1 \
                        root=/dev/sda9 moho.slot=B quiet";
        let fwd = forwarded_words(selector);
        assert_eq!(
            fwd,
            [
                "moho.provision=http://10.0.2.2:8080/p.toml",
                "moho.provision.sha256=ab12",
                "systemd.set_credential=moho.provision:version=1",
            ]
        );
        let id = Uuid::from_u128(7);
        let line = slot_cmdline("console=ttyS0", &fwd, SlotName::A, id, None).unwrap();
        assert_eq!(
            line,
            format!(
                "ro panic=10 console=ttyS0 moho.provision=http://10.0.2.2:8080/p.toml \
                 moho.provision.sha256=ab12 systemd.set_credential=moho.provision:version=1 \
                 root=PARTUUID={id} moho.slot=A"
            )
        );
        assert!(forwarded_words("console=ttyS0 moho.disk=/dev/vda").is_empty());
    }
}
