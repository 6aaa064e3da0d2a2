//! Conventions every Moho binary follows where a user meets it first: logs on
//! stderr (coloured only on a terminal and never with `NO_COLOR`, or JSON
//! lines for log shippers: [`logging`]), and output on stdout that ends the
//! program quietly when its reader has gone away (`... | head -1`:
//! [`stdout`]), and a `--help` that explains every command and argument
//! ([`help`], run by each binary's tests). Binaries only; the library crates
//! never print.

pub mod help;
pub mod logging;
pub mod stdout;

pub use logging::{LogArgs, LogFormat};
pub use stdout::StdoutError;
