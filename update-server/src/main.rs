//! `update-server`: not implemented yet (issue 5). Exits with an error
//! saying so rather than pretending to serve anything.

fn main() -> std::process::ExitCode {
    eprintln!("update-server: not implemented yet (see issue 5)");
    std::process::ExitCode::FAILURE
}
