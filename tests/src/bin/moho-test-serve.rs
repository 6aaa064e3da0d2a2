//! `moho-test-serve --root DIR --ca-out FILE`: the end-to-end tests' HTTPS
//! file server as a program, for benchmarks and manual runs. Prints the base
//! URL on stdout and serves until killed.

use std::path::PathBuf;

fn main() {
    let mut root = None;
    let mut ca_out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "--ca-out" => ca_out = args.next().map(PathBuf::from),
            other => {
                eprintln!("moho-test-serve: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let (Some(root), Some(ca_out)) = (root, ca_out) else {
        eprintln!("usage: moho-test-serve --root DIR --ca-out FILE");
        std::process::exit(2);
    };
    let server = moho_e2e::https_server::HttpsServer::start(&root);
    if let Err(e) = std::fs::write(&ca_out, &server.ca_pem) {
        eprintln!("moho-test-serve: {}: {e}", ca_out.display());
        std::process::exit(1);
    }
    println!("{}", server.base);
    loop {
        std::thread::park();
    }
}
