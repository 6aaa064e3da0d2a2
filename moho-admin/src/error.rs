//! What can go wrong in a `moho-admin` command, and the exit code each
//! failure maps to (documented in `docs/cli.md`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the server failed (5xx) or answered something unreadable; a local file could not be read |
//! | 2 | bad arguments or configuration (nothing was sent) |
//! | 3 | the server could not be reached (connection, TLS, timeout) |
//! | 4 | not allowed: no, unknown, revoked or expired token (401), or a viewer token for a change (403) |
//! | 5 | no such object (404) |
//! | 6 | refused: invalid value (400), conflict with the current state (409), unprocessable (422), too large (413) |

use std::path::PathBuf;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or configuration.
    #[error("{0}")]
    Usage(String),
    /// A configuration file that cannot be read or parsed.
    #[error("config file {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What was wrong, naming the key and value.
        message: String,
    },
    /// A local file (policy, CA certificate, token file).
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The server could not be reached.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Cause (the whole chain).
        message: String,
    },
    /// The server answered with an error.
    #[error("{method} {path}: {status} {code}: {message}")]
    Api {
        /// HTTP method.
        method: String,
        /// Path asked.
        path: String,
        /// HTTP status.
        status: u16,
        /// The server's stable error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// An answer that is not what the API documents.
    #[error("{method} {path}: unreadable answer ({status}): {message}")]
    BadAnswer {
        /// HTTP method.
        method: String,
        /// Path asked.
        path: String,
        /// HTTP status.
        status: u16,
        /// What did not parse.
        message: String,
    },
}

/// Exit status of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 1: server failure, unreadable answer, local file.
    Failure = 1,
    /// 2: bad arguments or configuration.
    Usage = 2,
    /// 3: server unreachable.
    Unreachable = 3,
    /// 4: not allowed.
    NotAllowed = 4,
    /// 5: no such object.
    NotFound = 5,
    /// 6: refused.
    Refused = 6,
}

impl CliError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) | CliError::Config { .. } => ExitCode::Usage,
            CliError::File { .. } | CliError::BadAnswer { .. } => ExitCode::Failure,
            CliError::Unreachable { .. } => ExitCode::Unreachable,
            CliError::Api { status, .. } => match status {
                401 | 403 => ExitCode::NotAllowed,
                404 => ExitCode::NotFound,
                400 | 409 | 413 | 422 => ExitCode::Refused,
                _ => ExitCode::Failure,
            },
        }
    }

    /// The stable code of the failure, for `--json` output.
    pub fn code(&self) -> &str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::Config { .. } => "bad_config",
            CliError::File { .. } => "file_error",
            CliError::Unreachable { .. } => "unreachable",
            CliError::Api { code, .. } => code,
            CliError::BadAnswer { .. } => "bad_answer",
        }
    }

    /// The failure as a JSON document (`--json`):
    /// `{"error": {"code", "message", "status"?, "exit_code"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut e = serde_json::json!({
            "code": self.code(),
            "message": self.to_string(),
            "exit_code": self.exit_code() as i32,
        });
        if let CliError::Api { status, .. } | CliError::BadAnswer { status, .. } = self {
            e["status"] = serde_json::json!(status);
        }
        serde_json::json!({ "error": e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> CliError {
        CliError::Api {
            method: "GET".into(),
            path: "/x".into(),
            status,
            code: "c".into(),
            message: "m".into(),
        }
    }

    #[test]
    fn statuses_map_to_the_documented_exit_codes() {
        assert_eq!(api(401).exit_code() as i32, 4);
        assert_eq!(api(403).exit_code() as i32, 4);
        assert_eq!(api(404).exit_code() as i32, 5);
        for s in [400, 409, 413, 422] {
            assert_eq!(api(s).exit_code() as i32, 6, "{s}");
        }
        assert_eq!(api(500).exit_code() as i32, 1);
        assert_eq!(CliError::Usage("x".into()).exit_code() as i32, 2);
        let j = api(404).to_json();
        assert_eq!(j["error"]["status"], 404);
        assert_eq!(j["error"]["exit_code"], 5);
        assert_eq!(j["error"]["code"], "c");
    }
}
