//! Rendering an error and its causes as one line for people.
//!
//! Library errors here carry their cause both as text and as `source()`;
//! printing the chain naively repeats it. [`render_chain`] joins the chain
//! with `": "`, leaving out a cause whose text is already in the message.

use std::error::Error;

/// `err` and its causes, each cause shown once.
pub fn render_chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("opening /dev/x: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("while booting")]
    struct Wrapper(#[source] Outer);

    #[test]
    fn repeated_causes_are_shown_once() {
        let e = Wrapper(Outer {
            source: std::io::Error::other("no such device"),
        });
        assert_eq!(
            render_chain(&e),
            "while booting: opening /dev/x: no such device"
        );
    }
}
