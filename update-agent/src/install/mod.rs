//! The install path (DESIGN §3 steps 1–7): check, verify, clear, stream,
//! read back, arm; once, resumable, with every invariant enforced here or
//! in the pure code it calls.
//!
//! - [`choose`]: which release to install (pure).
//! - [`plan`]: where each chunk comes from (pure).
//! - [`local_map`]: chunks the booted slot already holds.
//! - [`stream`]: download/copy, verify, write, chunk by chunk.
//! - [`readback`]: the whole-image check after the flush.
//! - [`slot_io`]: aligned direct I/O on a slot.
//! - [`journal`]: what is being installed, for resuming after a crash.
//! - [`progress`]: progress bar or log lines.
//! - [`error`]: refusals and failures.

pub mod choose;
pub mod error;
pub mod journal;
pub mod local_map;
pub mod plan;
pub mod progress;
pub mod readback;
pub mod slot_io;
pub mod stream;

use std::path::Path;
use std::time::SystemTime;

use moho_core::slot_table::SlotName;
use moho_core::transitions::{arm_inactive, clear_inactive};
use moho_disk::SlotDisk;
use moho_release::{
    ChunkIndex, NodeContext, VerifiedChunkIndex, VerifiedRelease, VerifiedRepository,
};
use semver::Version;
use serde::Serialize;

use crate::denylist::DenyList;
use crate::repo_client::RepoClient;
use crate::state::machine::{Action, Report};
use crate::state::store::StateStore;
use crate::state::{AgentState, Event, Staged};

pub use choose::InstallRequest;
pub use error::{InstallError, Refusal};
use journal::Journal;
use plan::ChunkSource;
use progress::Progress;
use slot_io::{ALIGN, SlotIo};
use stream::{RetryPolicy, StreamJob, StreamStats};

/// What an install run did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum InstallOutcome {
    /// Nothing newer is available for this node.
    NothingToInstall {
        /// The booted version.
        booted_version: Option<String>,
    },
    /// A release was written, verified and armed.
    Installed(InstallReport),
    /// The release chosen is already written, verified and armed.
    AlreadyStaged {
        /// Its version.
        version: String,
        /// The slot it is armed in.
        slot: SlotName,
    },
}

/// Figures of a completed install.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// Image target.
    pub target: String,
    /// Version.
    pub version: String,
    /// The slot now armed.
    pub slot: SlotName,
    /// Image length.
    pub image_bytes: u64,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Bytes copied from the booted slot.
    pub reused_bytes: u64,
    /// Bytes already in place from an interrupted run (re-verified).
    pub resumed_bytes: u64,
    /// Tries the slot was armed with.
    pub tries: u8,
}

/// Everything one install run works with.
pub struct Installer<'a> {
    /// The node's board.
    pub board: &'a str,
    /// The node's channel.
    pub channel: &'a str,
    /// Boot attempts for the new slot.
    pub tries: u8,
    /// The repository.
    pub repo: RepoClient<'a>,
    /// The disk.
    pub disk: &'a mut dyn SlotDisk,
    /// The booted slot.
    pub booted: SlotName,
    /// The booted version.
    pub booted_version: Option<Version>,
    /// The state directory.
    pub state_dir: &'a Path,
    /// Progress display.
    pub progress: &'a dyn Progress,
    /// Download retries.
    pub retry: RetryPolicy,
    /// The time, for metadata expiry.
    pub now: SystemTime,
    /// Called with each step worth telling the server about.
    pub report: &'a dyn Fn(&Report),
}

impl std::fmt::Debug for Installer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installer")
            .field("board", &self.board)
            .field("channel", &self.channel)
            .field("disk", &self.disk.path())
            .field("booted", &self.booted)
            .finish()
    }
}

/// Applies events to the persisted state.
struct Tracker<'r> {
    store: StateStore,
    state: AgentState,
    report: &'r dyn Fn(&Report),
}

impl Tracker<'_> {
    fn on(&mut self, event: Event) -> Result<(), InstallError> {
        let (next, actions) = self.state.on(event)?;
        for a in actions {
            match a {
                Action::Persist => self.store.save(&next)?,
                Action::Report(r) => {
                    tracing::info!(report = ?r, "install step");
                    (self.report)(&r);
                }
                // The install path never denies, reboots or holds a lock.
                Action::Deny { .. } | Action::ReleaseLock | Action::Reboot => {}
            }
        }
        self.state = next;
        Ok(())
    }
}

impl Installer<'_> {
    fn disk_name(&self) -> String {
        self.disk.path().display().to_string()
    }

    fn refuse(&self, refusal: Refusal) -> InstallError {
        InstallError::Refused {
            disk: self.disk_name(),
            refusal,
        }
    }

    /// Runs DESIGN §3 steps 1–7 once.
    pub fn run(&mut self, request: &InstallRequest) -> Result<InstallOutcome, InstallError> {
        let store = StateStore::new(self.state_dir);
        let state = store.load()?;
        let staged_before = match &state {
            AgentState::UpdatedNeedReboot(s) => Some(s.clone()),
            _ => None,
        };
        let mut t = Tracker {
            store,
            state,
            report: self.report,
        };
        t.on(Event::CheckStarted)?;
        let result = self.run_checked(request, staged_before.as_ref(), &mut t);
        if let Err(e) = &result {
            let message = moho_core::report::render_chain(e);
            // Record the failure; a failure to record it must not hide it.
            if t.on(Event::Failed { message }).is_err() {
                tracing::warn!("could not record the failure in the agent state");
            }
        }
        result
    }

    fn run_checked(
        &mut self,
        request: &InstallRequest,
        staged_before: Option<&Staged>,
        t: &mut Tracker<'_>,
    ) -> Result<InstallOutcome, InstallError> {
        let inactive = self.booted.other();
        // §3.1: never touch the fallback while the booted slot is unblessed.
        let table = self.disk.read_slots()?;
        if !table.attrs(self.booted).successful() {
            return Err(self.refuse(Refusal::BootedNotSuccessful {
                booted: self.booted,
                inactive,
            }));
        }
        // §3.3: verify the signed metadata before writing a byte.
        let repo = self.repo.load(self.now)?;
        let deny = DenyList::load(self.state_dir)?;
        let node = NodeContext {
            board: self.board.to_owned(),
            channel: self.channel.to_owned(),
            current_version: self.booted_version.clone(),
        };
        let release = match choose::choose(&repo, request, &node, &deny) {
            Ok(Some(r)) => r,
            Ok(None) => {
                t.on(Event::NothingToInstall)?;
                return Ok(InstallOutcome::NothingToInstall {
                    booted_version: self.booted_version.as_ref().map(Version::to_string),
                });
            }
            Err(refusal) => return Err(self.refuse(refusal)),
        };
        let armed_now = table.attrs(inactive);
        if let Some(s) = staged_before
            && s.target == release.image().name()
            && s.slot == inactive
            && armed_now.priority() > 0
            && armed_now.tries() > 0
            && !armed_now.successful()
        {
            t.on(Event::StillStaged(s.clone()))?;
            return Ok(InstallOutcome::AlreadyStaged {
                version: s.version.clone(),
                slot: inactive,
            });
        }
        let index_bytes = self.repo.fetch_small_target(release.chunk_index())?;
        let index = release.verify_chunk_index(&index_bytes)?;
        let image_len = release.image().length();
        let extent = self.disk.slot_extent(inactive)?;
        let padded = image_len.div_ceil(ALIGN as u64) * ALIGN as u64;
        if padded > extent.length {
            return Err(self.refuse(Refusal::SlotTooSmall {
                target: release.image().name().to_owned(),
                image: image_len,
                slot: inactive,
                slot_len: extent.length,
            }));
        }

        let staged = Staged {
            target: release.image().name().to_owned(),
            version: release.version().to_string(),
            slot: inactive,
            revert: false,
        };
        t.on(Event::UpdateChosen(staged.clone()))?;
        let journal = Journal {
            target: staged.target.clone(),
            image_sha256: release.image().sha256().to_string(),
            chunk_size: index.index().chunk_size(),
            slot: inactive,
            slot_partuuid: table.get(inactive).partuuid,
        };
        let table = self.disk.read_slots()?;
        let attrs = table.attrs(inactive);
        let cleared = attrs.priority() == 0 && attrs.tries() == 0 && !attrs.successful();
        let resume = cleared && journal::load(self.state_dir)?.as_ref() == Some(&journal);
        if !resume {
            // §3.4: clear, written and flushed, before the first image byte.
            let next = clear_inactive(&table, self.booted)?;
            self.disk.commit_slots(&table, &next)?;
            journal::save(self.state_dir, &journal)?;
        }

        let dest = SlotIo::open(&extent, true)?;
        let booted_io = SlotIo::open(&self.disk.slot_extent(self.booted)?, false)?;
        let present = if resume {
            self.progress.phase("re-verifying");
            scan_present(&dest, &index)?
        } else {
            vec![false; usize::try_from(index.index().chunk_count()).unwrap_or(0)]
        };
        let local = self.local_map(&repo, &release, &booted_io)?;
        let chunk_plan = plan::plan(
            index.index().chunk_count(),
            |i| {
                present
                    .get(usize::try_from(i).unwrap_or(usize::MAX))
                    .copied()
                    .unwrap_or(false)
            },
            |i| {
                index
                    .index()
                    .chunk_sha256(i)
                    .and_then(|h| local.get(&h).copied())
            },
        );
        let url = self.repo.target_url(release.image())?;
        let present_bytes: u64 = (0u64..)
            .zip(&chunk_plan)
            .filter(|(_, s)| **s == ChunkSource::Present)
            .map(|(i, _)| index.chunk_range(i).map(|r| r.end - r.start).unwrap_or(0))
            .sum();
        self.progress.phase("writing");
        self.progress.start(image_len, present_bytes);
        let stats: StreamStats = stream::stream(&StreamJob {
            plan: &chunk_plan,
            index: &index,
            url: &url,
            transport: self.repo.transport,
            booted: Some(&booted_io),
            dest: &dest,
            progress: self.progress,
            retry: self.retry,
        })
        .map_err(|source| InstallError::Stream {
            slot: inactive,
            source,
        })?;
        t.on(Event::Downloaded)?;

        // §3.6: flush, read the whole slot back, check the signed hash. With
        // direct I/O the stream read every chunk back behind the writer.
        dest.sync()?;
        self.progress.phase("verifying");
        let checked = match stats.read_back {
            Some(actual) => readback::compare(image_len, release.image().sha256(), actual),
            None => readback::verify_slot(&dest, image_len, release.image().sha256()),
        };
        checked.map_err(|source| InstallError::ReadBack {
            slot: inactive,
            source,
        })?;
        t.on(Event::Verified)?;

        // §3.7: arm.
        self.progress.phase("arming");
        let table = self.disk.read_slots()?;
        let armed = arm_inactive(&table, self.booted, self.tries)?;
        self.disk.commit_slots(&table, &armed)?;
        t.on(Event::Armed)?;
        journal::remove(self.state_dir)?;
        self.progress.finish();
        Ok(InstallOutcome::Installed(InstallReport {
            target: staged.target,
            version: staged.version,
            slot: inactive,
            image_bytes: image_len,
            downloaded_bytes: stats.downloaded,
            reused_bytes: stats.reused,
            resumed_bytes: stats.present,
            tries: self.tries,
        }))
    }

    /// Chunks of the booted slot, from the booted release's signed index if
    /// the repository has it, else by hashing the slot.
    fn local_map(
        &self,
        repo: &VerifiedRepository,
        release: &VerifiedRelease,
        booted: &SlotIo,
    ) -> Result<local_map::LocalMap, InstallError> {
        let chunk_size = release.chunk_size();
        if let Some(v) = &self.booted_version
            && let Some(booted_release) = repo
                .releases()
                .find(|r| r.version() == v && r.custom().board == self.board)
            && let Ok(info) = repo.target(&booted_release.custom().chunk_index)
            && let Ok(bytes) = self.repo.fetch_small_target(info)
            && let Ok(index) = ChunkIndex::parse(&bytes)
            && let Some(map) = local_map::from_index(&index, chunk_size)
        {
            return Ok(map);
        }
        self.progress.phase("indexing");
        Ok(local_map::by_hashing(booted, chunk_size, booted.len())?)
    }
}

/// Which chunks of the image the slot already holds (each re-verified).
fn scan_present(dest: &SlotIo, index: &VerifiedChunkIndex) -> Result<Vec<bool>, InstallError> {
    let size = usize::try_from(index.index().chunk_size()).unwrap_or(usize::MAX);
    let mut buf = slot_io::AlignedBuf::new(size);
    let mut present = Vec::new();
    for i in 0..index.index().chunk_count() {
        let r = index.chunk_range(i).unwrap_or_default();
        let len = usize::try_from(r.end - r.start).unwrap_or(0);
        dest.read_at(r.start, &mut buf, len)?;
        present.push(index.verify_chunk(i, &buf.as_slice()[..len]).is_ok());
    }
    Ok(present)
}
