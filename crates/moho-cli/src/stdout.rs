//! Writing a command's output to stdout without `println!`'s panic when the
//! reader has gone away (`update-agent slots | head -1`): every write is
//! checked and flushed, a closed pipe becomes [`StdoutError::Closed`], and
//! `main` ends quietly with success when it finds that error in a chain
//! ([`closed_in_chain`]). Only stdout's own broken pipe counts: a broken
//! pipe to a child process is an ordinary failure.

use std::error::Error;
use std::fmt;
use std::io::{self, Write};

/// Writing to stdout failed.
#[derive(Debug, thiserror::Error)]
pub enum StdoutError {
    /// The reader closed the pipe: the program should end quietly.
    #[error("stdout was closed by its reader")]
    Closed,
    /// Any other write failure (a full disk behind a redirection, ...).
    #[error("cannot write to stdout: {0}")]
    Write(#[source] io::Error),
}

impl From<io::Error> for StdoutError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            StdoutError::Closed
        } else {
            StdoutError::Write(e)
        }
    }
}

/// Writes `args` to `out` and flushes it.
pub fn write_to(out: &mut dyn Write, args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    out.write_fmt(args)?;
    out.flush()?;
    Ok(())
}

/// Writes `args` to stdout and flushes it.
pub fn write(args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    write_to(&mut io::stdout().lock(), args)
}

/// Writes `args` and a newline to stdout and flushes it.
pub fn write_line(args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    write_to(&mut out, format_args!("{args}\n"))
}

/// Whether an error, or any error in its source chain, is stdout closed by
/// its reader.
pub fn closed_in_chain(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if matches!(e.downcast_ref::<StdoutError>(), Some(StdoutError::Closed)) {
            return true;
        }
        next = e.source();
    }
    false
}

/// `println!` that returns a [`StdoutError`] instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write_line(::std::format_args!($($arg)*))
    };
}

/// `print!` that returns a [`StdoutError`] instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(::std::format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone away.
    struct ClosedPipe;
    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer on a full disk.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::StorageFull.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("printing the table")]
    struct Outer(#[source] StdoutError);

    #[test]
    fn a_closed_pipe_is_found_through_the_chain() {
        let err = write_to(&mut ClosedPipe, format_args!("x")).unwrap_err();
        assert!(matches!(err, StdoutError::Closed));
        assert!(closed_in_chain(&Outer(err)));
    }

    #[test]
    fn other_write_failures_are_errors() {
        let err = write_to(&mut Full, format_args!("x")).unwrap_err();
        assert!(matches!(err, StdoutError::Write(_)));
        assert!(!closed_in_chain(&Outer(err)));
        let child_pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(!closed_in_chain(&child_pipe));
    }

    #[test]
    fn writes_reach_the_writer() {
        let mut buf = Vec::new();
        write_to(&mut buf, format_args!("a {}\n", 1)).unwrap();
        assert_eq!(buf, b"a 1\n");
    }
}
