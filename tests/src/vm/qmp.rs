//! A minimal QEMU machine protocol client: JSON lines over the VM's Unix
//! socket, used to throttle a disk while the guest writes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A QMP session in command mode.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects (retrying while qemu creates the socket) and negotiates.
    pub fn connect(socket: &Path) -> Self {
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("QMP socket {}: {e}", socket.display()),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("QMP timeout");
        let writer = stream.try_clone().expect("QMP socket clone");
        let mut q = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.read();
        assert!(greeting.get("QMP").is_some(), "no QMP greeting: {greeting}");
        q.execute("qmp_capabilities", json!({}));
        q
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reading QMP");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("QMP sent {line:?}: {e}"))
    }

    /// Runs a command; returns its `return` value, panics on `error`.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Value {
        let msg = json!({"execute": command, "arguments": arguments});
        writeln!(self.writer, "{msg}").expect("writing QMP");
        loop {
            let v = self.read();
            if let Some(r) = v.get("return") {
                return r.clone();
            }
            if let Some(e) = v.get("error") {
                panic!("QMP {command} failed: {e}");
            }
            // An asynchronous event: skip it.
        }
    }

    /// Limits writes to the drive `id` to `iops` per second (0: unlimited).
    pub fn throttle_writes(&mut self, drive: &str, iops: u64) {
        self.execute(
            "block_set_io_throttle",
            json!({
                "device": drive,
                "bps": 0, "bps_rd": 0, "bps_wr": 0,
                "iops": 0, "iops_rd": 0, "iops_wr": iops,
            }),
        );
    }
}
