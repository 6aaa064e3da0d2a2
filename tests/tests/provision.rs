//! `update-agent provision` on loop devices (DESIGN §8, issue 14): a
//! document in `moho/provision.toml` on the Moho disk's ESP, and one on a
//! config drive labelled `cidata` (which comes first), become the agent's
//! drop-in, SSH keys and host name; the accepted one is stored and used at
//! every later boot; a bad document and an Ignition config are refused with
//! their messages, nothing stored and nothing left in the run directory.
//! Each run is in its own UTS namespace so that the host keeps its name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use moho_e2e::{LoopDevice, bin, make_disk, ok, require_root, run};

/// The node's directories: the image's config, /var/lib/moho, /run/moho.
struct Node {
    image_dir: PathBuf,
    state: PathBuf,
    run: PathBuf,
}

impl Node {
    fn new(dir: &Path) -> Self {
        let image_dir = dir.join("usr-lib-moho-agent.d");
        std::fs::create_dir_all(&image_dir).unwrap();
        std::fs::write(
            image_dir.join("50-image.toml"),
            "[node]\nboard = \"amd64-generic\"\nchannel = \"stable\"\n\
             [repository]\nroot = \"/usr/lib/moho/root.json\"\n",
        )
        .unwrap();
        Self {
            image_dir,
            state: dir.join("var-lib-moho"),
            run: dir.join("run-moho"),
        }
    }

    /// `update-agent provision` in a fresh UTS namespace; then `hostname`.
    fn provision(&self, disk: &Path) -> (Output, String) {
        let script = format!(
            "{agent} --config-dir {image} --config-dir {run}/agent.d provision --disk {disk} \
             --state-dir {state} --run-dir {run}; rc=$?; echo \"hostname=$(hostname)\" >&2; exit $rc",
            agent = bin("update-agent").display(),
            image = self.image_dir.display(),
            run = self.run.display(),
            disk = disk.display(),
            state = self.state.display(),
        );
        let out = Command::new("unshare")
            .args(["--uts", "sh", "-c", &script])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let host = err
            .lines()
            .find_map(|l| l.strip_prefix("hostname="))
            .unwrap_or_default()
            .to_owned();
        (out, host)
    }

    /// The agent's resolved configuration (`update-agent config --json`).
    fn config(&self) -> serde_json::Value {
        serde_json::from_str(&ok(
            bin("update-agent"),
            [
                OsStr::new("--config-dir"),
                self.image_dir.as_os_str(),
                OsStr::new("--config-dir"),
                self.run.join("agent.d").as_os_str(),
                OsStr::new("config"),
                OsStr::new("--json"),
            ],
        ))
        .unwrap()
    }
}

fn doc(host: &str, channel: &str, key: &str) -> String {
    format!(
        "version = 1\nhostname = \"{host}\"\n[server]\nurl = \"https://updates.example.com/\"\n\
         ca = \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"\n\
         [node]\nchannel = \"{channel}\"\ngroup = \"edge\"\n\
         [[users]]\nname = \"core\"\nssh_authorized_keys = [\"{key}\"]\n"
    )
}

/// Writes `text` as `moho/provision.toml` on the ESP (partition 1, vfat).
fn put_on_esp(esp: &Path, text: &str, dir: &Path) {
    let file = dir.join("esp-provision.toml");
    std::fs::write(&file, text).unwrap();
    let target = format!("{}", esp.display());
    let _ = run("mmd", ["-i", &target, "::moho"]);
    ok(
        "mcopy",
        [
            OsStr::new("-o"),
            OsStr::new("-i"),
            OsStr::new(&target),
            file.as_os_str(),
            OsStr::new("::moho/provision.toml"),
        ],
    );
}

/// A vfat config drive labelled CIDATA holding `user-data`, on a loop device.
fn config_drive(dir: &Path, user_data: &str) -> LoopDevice {
    let img = dir.join("cidata.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    ok(
        "mkfs.vfat",
        [OsStr::new("-n"), OsStr::new("CIDATA"), img.as_os_str()],
    );
    let ud = dir.join("user-data");
    std::fs::write(&ud, user_data).unwrap();
    let target = img.display().to_string();
    ok(
        "mcopy",
        [
            OsStr::new("-i"),
            OsStr::new(&target),
            ud.as_os_str(),
            OsStr::new("::user-data"),
        ],
    );
    LoopDevice::attach(&img)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn esp_file_and_config_drive_documents_provision_the_node_once_and_bad_ones_are_refused() {
    require_root("loop devices and mounts");
    let dir = tempfile::tempdir().unwrap();
    let file = make_disk(dir.path(), "disk.img", "256M", "64M");
    let lo = LoopDevice::attach(&file);
    let _ = run("partx", [OsStr::new("-a"), lo.path.as_os_str()]);
    let esp = lo.partition(1);
    assert!(esp.exists(), "{} missing after partx -a", esp.display());

    // A bad document on the ESP: refused, naming source, key and value.
    let node = Node::new(&dir.path().join("bad"));
    put_on_esp(&esp, "version = 1\n[node]\nchanel = \"beta\"\n", dir.path());
    let (out, _) = node.provision(&lo.path);
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "moho/provision.toml on the ESP ({})",
            esp.display()
        )) && err.contains("unknown key node.chanel = \"beta\""),
        "{err}"
    );
    assert!(!node.state.join("provision.toml").exists());
    assert!(!node.run.join("agent.d/40-provision.toml").exists());

    // An Ignition config: refused by name.
    put_on_esp(&esp, r#"{"ignition": {"version": "3.4.0"}}"#, dir.path());
    let (out, _) = node.provision(&lo.path);
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    assert!(
        stderr(&out).contains("this is an Ignition config (ignition.version 3.4.0)"),
        "{out:?}"
    );

    // A good one on the ESP: applied and stored.
    let node = Node::new(&dir.path().join("esp"));
    put_on_esp(
        &esp,
        &doc("edge-esp", "beta", "ssh-ed25519 AAAAesp esp@x"),
        dir.path(),
    );
    let (out, host) = node.provision(&lo.path);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("provisioned from moho/provision.toml on the ESP"),
        "{said}"
    );
    assert_eq!(host, "edge-esp");
    let config = node.config()["config"].clone();
    assert_eq!(config["node"]["channel"], "beta", "{config}");
    assert_eq!(config["node"]["group"], "edge", "{config}");
    assert_eq!(
        config["repository"]["metadata_url"], "https://updates.example.com/repo/metadata/",
        "{config}"
    );
    assert_eq!(
        config["server"]["url"], "https://updates.example.com/",
        "{config}"
    );
    let ca = node.run.join("provision/server-ca.pem");
    assert_eq!(
        config["server"]["ca_cert"],
        ca.display().to_string(),
        "{config}"
    );
    assert!(std::fs::read_to_string(&ca).unwrap().contains("MIIB"));
    assert_eq!(
        std::fs::read_to_string(node.run.join("ssh/authorized_keys/core")).unwrap(),
        "ssh-ed25519 AAAAesp esp@x\n"
    );

    // The next boot: /run is empty, the ESP holds another document; the
    // stored one is applied again, the ESP is not read.
    std::fs::remove_dir_all(&node.run).unwrap();
    put_on_esp(
        &esp,
        &doc("other", "alpha", "ssh-ed25519 AAAAother o@x"),
        dir.path(),
    );
    let (out, host) = node.provision(&lo.path);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("provisioned from stored provision document"),
        "{out:?}"
    );
    assert_eq!(host, "edge-esp");
    assert_eq!(node.config()["config"]["node"]["channel"], "beta");

    // A config drive comes before the ESP.
    let drive = config_drive(
        dir.path(),
        &doc("edge-cidata", "stable", "ssh-ed25519 AAAAcd cd@x"),
    );
    let node = Node::new(&dir.path().join("cidata"));
    let (out, host) = node.provision(&lo.path);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "provisioned from config drive cidata ({})",
            drive.path.display()
        )),
        "{said}"
    );
    assert_eq!(host, "edge-cidata");
    assert_eq!(
        std::fs::read_to_string(node.run.join("ssh/authorized_keys/core")).unwrap(),
        "ssh-ed25519 AAAAcd cd@x\n"
    );
    assert_eq!(
        std::fs::read_to_string(node.state.join("provision.toml")).unwrap(),
        doc("edge-cidata", "stable", "ssh-ed25519 AAAAcd cd@x")
    );
}
