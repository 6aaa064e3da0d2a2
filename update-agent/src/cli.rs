//! The `update-agent` command line: clap definitions and the dispatch from a
//! parsed command line to the module that implements it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use moho_core::slot_table::SlotName;

use crate::dbus::client::Method;
use crate::system::LiveSystem;

/// The Moho node agent.
#[derive(Debug, Parser)]
#[command(name = "update-agent", version, about, after_help = crate::exit::HELP)]
pub struct Cli {
    /// Treat this slot as the booted one instead of detecting it (tests,
    /// rescue shells).
    #[arg(long, global = true, env = "MOHO_BOOTED_SLOT", value_name = "A|B")]
    pub booted: Option<SlotName>,
    /// Read configuration drop-ins from these directories instead of
    /// /usr/lib/moho/agent.d, /etc/moho/agent.d, /run/moho/agent.d (repeat
    /// the flag, or separate with ':' in the environment variable).
    #[arg(
        long = "config-dir",
        global = true,
        env = "MOHO_CONFIG_DIRS",
        value_delimiter = ':',
        value_name = "DIR"
    )]
    pub config_dirs: Vec<PathBuf>,
    /// Logging flags (`--log-format`).
    #[command(flatten)]
    pub log: moho_cli::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show or change the A/B slot table.
    Slots(SlotsArgs),
    /// Install an update into the inactive slot once: verify the signed
    /// release, stream it chunk by chunk (resuming an interrupted run, copying
    /// chunks the booted slot already has), read it back, and arm the slot.
    /// Without --version or --target, installs the newest release signed for
    /// this node's board and channel that is newer than the booted version.
    Install {
        /// The disk holding the slots (default: node.disk, else discovered).
        #[arg(long, env = "MOHO_DISK")]
        disk: Option<PathBuf>,
        /// Install this version (semver) of this node's board.
        #[arg(long, conflicts_with = "target")]
        version: Option<semver::Version>,
        /// Install this target (`<board>/<version>/<file>`).
        #[arg(long)]
        target: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the resolved configuration and which file set each key.
    Config {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the update daemon: check in on schedule, install, reboot per
    /// the strategy, report every step; serves org.moho.Agent1 on the
    /// system bus.
    Daemon {
        /// The disk holding the slots (default: node.disk, else discovered).
        #[arg(long, env = "MOHO_DISK")]
        disk: Option<PathBuf>,
    },
    /// Show the daemon's state (over D-Bus).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Keep printing on every change.
        #[arg(long)]
        follow: bool,
    },
    /// Ask the daemon to check for an update now.
    Check,
    /// Ask the daemon to reboot into the staged update now (windows and
    /// strategy "off" are overridden; users, inhibitors and the FleetLock
    /// still count).
    Reboot,
    /// Ask the daemon to boot the previous slot (it must be marked
    /// successful), rebooting per the strategy.
    Rollback,
    /// Ask the daemon to withdraw the staged update: its slot is cleared
    /// and never boots (on a trial boot: the trial is abandoned and the
    /// node reboots into the previous release).
    Cancel,
    /// Mark the booted slot good (run after boot-complete.target); through
    /// the daemon when it runs, else directly on the disk.
    MarkGood {
        /// The disk holding the slots (default: node.disk, else discovered).
        #[arg(long, env = "MOHO_DISK")]
        disk: Option<PathBuf>,
    },
    /// Grow STATE to the end of the disk: its partition (one GPT commit,
    /// the backup GPT moved to the end), then its mounted ext4 online with
    /// resize2fs. Does nothing when STATE already fills the disk; run at
    /// every boot by moho-grow-state.service.
    GrowState {
        /// The disk holding STATE (default: the disk of the running root
        /// filesystem, or the only disk with Moho slots).
        #[arg(long, env = "MOHO_DISK")]
        disk: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply the first-boot provision document: the one accepted on an
    /// earlier boot, else the first found on the kernel command line, in
    /// the systemd credential moho.provision, on a config drive (cidata,
    /// config-2), in moho/provision.toml on the ESP or in the user data of
    /// an EC2-style metadata service; writes the agent
    /// drop-in, SSH keys and host name under the run directory. Run at every
    /// boot by moho-provision.service, before the agent.
    Provision {
        /// The disk holding the ESP (default: discovered as for `slots`).
        #[arg(long, env = "MOHO_DISK")]
        disk: Option<PathBuf>,
        /// Where the accepted document is kept.
        #[arg(long, default_value = "/var/lib/moho")]
        state_dir: PathBuf,
        /// Where the derived files go (its agent.d is read by the agent).
        #[arg(long, default_value = "/run/moho")]
        run_dir: PathBuf,
        /// The EC2-style metadata service asked last (its
        /// /latest/api/token and /latest/user-data).
        #[arg(long, default_value = crate::provision::metadata::DEFAULT_BASE)]
        metadata_url: String,
    },
    /// Show or edit the versions this node will not install again.
    Denylist {
        /// Remove this version from the list.
        #[arg(long, value_name = "VERSION")]
        clear: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `update-agent slots [--disk PATH] [--json] [COMMAND]`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = false)]
pub struct SlotsArgs {
    /// The disk holding the slots (image file or block device). Default:
    /// the disk of the running root filesystem, or the only disk with slots.
    #[arg(long, global = true, env = "MOHO_DISK")]
    pub disk: Option<PathBuf>,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
    /// Without a command: show the table.
    #[command(subcommand)]
    pub command: Option<SlotsCommand>,
}

/// `update-agent slots <command>`
#[derive(Debug, Subcommand)]
pub enum SlotsCommand {
    /// Print the slot the boot selector would choose (writes nothing).
    Next,
    /// Do what the boot selector does at boot: choose a slot, use up one of
    /// its tries, write the table, print the slot.
    Boot,
    /// Mark a slot as having booted successfully (default: the booted slot).
    MarkGood {
        /// The slot to mark; a non-booted slot must be armed (priority > 0).
        #[arg(long)]
        slot: Option<SlotName>,
    },
    /// Make the other slot boot next; it must be marked successful.
    Rollback,
    /// Set raw attribute fields of one slot.
    Set {
        /// The slot.
        slot: SlotName,
        /// Priority, 0 (never boot) to 15.
        #[arg(long)]
        priority: Option<u8>,
        /// Tries left, 0 to 15.
        #[arg(long)]
        tries: Option<u8>,
        /// Successful bit.
        #[arg(long, action = clap::ArgAction::Set, value_name = "true|false")]
        successful: Option<bool>,
        /// Allow changing the other slot while the booted one is not marked
        /// successful (it is the only known-good fallback then).
        #[arg(long)]
        force: bool,
    },
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Slots(args) => crate::slots_cmd::run(cli.booted, args, &LiveSystem),
        Command::Install {
            disk,
            version,
            target,
            json,
        } => {
            let dirs = crate::config::dirs_or_default(&cli.config_dirs);
            let (config, _) = crate::config::load(&dirs)?;
            let progress = crate::install::progress::for_stderr();
            let outcome = crate::install_cmd::run(
                &config,
                &crate::install_cmd::InstallArgs {
                    disk,
                    target,
                    version,
                },
                &LiveSystem,
                cli.booted,
                progress.as_ref(),
            )?;
            if json {
                moho_cli::outln!("{}", serde_json::to_string_pretty(&outcome)?)?;
            } else {
                moho_cli::outln!("{outcome}")?;
            }
            Ok(())
        }
        Command::Daemon { disk } => {
            let dirs = crate::config::dirs_or_default(&cli.config_dirs);
            let (config, _) = crate::config::load(&dirs)?;
            crate::daemon_cmd::run(
                config,
                &crate::daemon_cmd::DaemonArgs {
                    disk,
                    booted: cli.booted,
                },
            )
        }
        Command::Status { json, follow } => crate::agent_cmds::status(json, follow),
        Command::Check => crate::agent_cmds::call(Method::Check),
        Command::Reboot => crate::agent_cmds::call(Method::Reboot),
        Command::Rollback => crate::agent_cmds::call(Method::Rollback),
        Command::Cancel => crate::agent_cmds::call(Method::Cancel),
        Command::MarkGood { disk } => {
            let path =
                || crate::slots_cmd::mark_good_disk(disk.as_deref(), &cli.config_dirs, &LiveSystem);
            crate::agent_cmds::mark_good(
                || crate::slots_cmd::already_good(&path()?, &LiveSystem, cli.booted),
                || crate::slots_cmd::mark_good_local(&path()?, &LiveSystem, cli.booted),
            )
        }
        Command::Denylist { clear, json } => {
            let dirs = crate::config::dirs_or_default(&cli.config_dirs);
            let (config, _) = crate::config::load(&dirs)?;
            crate::agent_cmds::denylist(&config.state_dir, clear.as_deref(), json)
        }
        Command::GrowState { disk, json } => {
            let path = crate::disk_locate::locate_disk(disk.as_deref(), &LiveSystem)?;
            // Each step on stderr as it starts (the unit puts it on the console).
            let report =
                crate::grow_state::grow_state(&path, &crate::grow_state::Resize2fs, &mut |step| {
                    eprintln!("update-agent: grow-state: {step}");
                })?;
            if json {
                moho_cli::outln!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                moho_cli::outln!("{report}")?;
            }
            Ok(())
        }
        Command::Provision {
            disk,
            state_dir,
            run_dir,
            metadata_url,
        } => {
            let said = crate::provision_cmd::run(
                &crate::provision_cmd::ProvisionArgs {
                    disk,
                    state_dir,
                    run_dir,
                    config_dirs: crate::config::dirs_or_default(&cli.config_dirs),
                    metadata_url,
                },
                &LiveSystem,
            )?;
            moho_cli::outln!("{said}")?;
            Ok(())
        }
        Command::Config { json } => {
            let dirs = crate::config::dirs_or_default(&cli.config_dirs);
            let view = crate::config_cmd::describe(&dirs)?;
            if json {
                moho_cli::outln!("{}", serde_json::to_string_pretty(&view)?)?;
            } else {
                moho_cli::out!("{}", crate::config_cmd::render_text(&view)?)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory as _;

    #[test]
    fn help_explains_every_command_and_argument() {
        moho_cli::help::assert_complete(super::Cli::command());
    }
}
