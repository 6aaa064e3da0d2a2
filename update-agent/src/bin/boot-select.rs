//! `boot-select`: the `/init` of Moho's initramfs. Everything is in
//! [`update_agent::boot`]; this only refuses to run as anything but process 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::process::id() != 1 {
        eprintln!(
            "boot-select: this is the /init of a Moho initramfs and runs only as process 1 \
             (build one with `image-tools initramfs`)"
        );
        return ExitCode::from(2);
    }
    update_agent::boot::run_as_init(std::env::args().skip(1).collect())
}
