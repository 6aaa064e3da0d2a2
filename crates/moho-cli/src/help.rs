//! A check every binary's tests run on its command line: clap's own
//! consistency rules (`Command::debug_assert`), and a help text for every
//! command and every argument, so that `--help` never shows a bare name
//! that the reader has to guess at.

/// What `cmd`'s help leaves unexplained: each command or argument without
/// help text, as `path` or `path --flag` / `path <ARG>`.
pub fn gaps(cmd: clap::Command) -> Vec<String> {
    let mut cmd = cmd;
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, cmd.get_name(), true, &mut out);
    out
}

fn walk(cmd: &clap::Command, path: &str, top: bool, out: &mut Vec<String>) {
    if !top && cmd.get_about().is_none() && cmd.get_long_about().is_none() {
        out.push(path.to_owned());
    }
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") || arg.is_hide_set() {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            let shown = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("<{id}>"),
            };
            out.push(format!("{path} {shown}"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" || sub.is_hide_set() {
            continue;
        }
        walk(sub, &format!("{path} {}", sub.get_name()), false, out);
    }
}

/// Panics naming every gap of [`gaps`], after clap's own checks.
pub fn assert_complete(cmd: clap::Command) {
    cmd.clone().debug_assert();
    let gaps = gaps(cmd);
    assert!(
        gaps.is_empty(),
        "--help explains nothing for: {}",
        gaps.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_or_argument_without_help_is_named() {
        let cmd = clap::Command::new("tool")
            .about("A tool")
            .arg(clap::Arg::new("quiet").long("quiet").help("Say less"))
            .arg(clap::Arg::new("loud").long("loud"))
            .subcommand(
                clap::Command::new("run")
                    .about("Run it")
                    .arg(clap::Arg::new("what")),
            )
            .subcommand(clap::Command::new("stop"));
        assert_eq!(gaps(cmd), ["tool --loud", "tool run <what>", "tool stop"]);
    }
}
