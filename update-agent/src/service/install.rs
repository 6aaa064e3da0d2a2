//! The install service (DESIGN §3 steps 1–7): choose and verify a release,
//! clear the inactive slot, stream the image, read it back, arm. It is built
//! from what its caller holds — the disk handle, the repository transport,
//! the time — and owns no state: [`run`] hands each step to the state's
//! owner as an [`Event`] (the daemon, or the `install` CLI adapter), which
//! persists and reports it.

use std::path::Path;
use std::time::SystemTime;

use moho_core::slot_table::SlotName;
use moho_core::transitions::{arm_inactive, cancel_armed, clear_inactive};
use moho_release::{
    ChunkIndex, NodeContext, VerifiedChunkIndex, VerifiedRelease, VerifiedRepository,
};
use semver::Version;
use serde::Serialize;

use super::disk::NodeDisk;
use crate::denylist::DenyList;
use crate::install::choose::{self, InstallRequest};
use crate::install::error::{InstallError, Refusal};
use crate::install::journal::{self, Journal};
use crate::install::local_map;
use crate::install::plan::{self, ChunkSource};
use crate::install::progress::Progress;
use crate::install::readback;
use crate::install::slot_io::{self, ALIGN, SlotIo};
use crate::install::stream::{self, RetryPolicy, StreamJob, StreamStats};
use crate::repo_client::RepoClient;
use crate::state::{AgentState, Event, Staged};

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

impl std::fmt::Display for InstallOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NothingToInstall { booted_version } => write!(
                f,
                "nothing to install: no release newer than {} for this node",
                booted_version.as_deref().unwrap_or("(unknown)")
            ),
            Self::AlreadyStaged { version, slot } => write!(
                f,
                "{version} is already installed in slot {slot} and armed; reboot to try it"
            ),
            Self::Installed(r) => write!(
                f,
                "installed {} ({}) into slot {}, armed with {} tries; reboot to try it\n  \
                 {} bytes: {} downloaded, {} copied from the booted slot, {} already in place",
                r.version,
                r.target,
                r.slot,
                r.tries,
                r.image_bytes,
                r.downloaded_bytes,
                r.reused_bytes,
                r.resumed_bytes
            ),
        }
    }
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

/// Everything one install works with, handed in by its caller.
pub struct InstallService<'a> {
    /// The node's board.
    pub board: &'a str,
    /// The node's channel.
    pub channel: &'a str,
    /// Boot attempts for the new slot.
    pub tries: u8,
    /// The repository (through the caller's transport).
    pub repo: RepoClient<'a>,
    /// The disk, opened by the caller.
    pub disk: &'a mut NodeDisk,
    /// The booted slot.
    pub booted: SlotName,
    /// The booted version.
    pub booted_version: Option<Version>,
    /// The state directory (journal, deny list).
    pub state_dir: &'a Path,
    /// Progress display.
    pub progress: &'a dyn Progress,
    /// Download retries.
    pub retry: RetryPolicy,
    /// The time, for metadata expiry (from the caller's clock).
    pub now: SystemTime,
}

impl std::fmt::Debug for InstallService<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallService")
            .field("board", &self.board)
            .field("channel", &self.channel)
            .field("disk", &self.disk.path())
            .field("booted", &self.booted)
            .finish_non_exhaustive()
    }
}

/// What [`InstallService::choose`] found.
#[derive(Debug)]
pub enum Choice {
    /// Nothing newer for this node.
    Nothing,
    /// The release is the one already staged and armed.
    AlreadyStaged(Staged),
    /// This release is to be written.
    Install(Box<Chosen>),
}

/// A verified release, its chunk index, and where it goes.
#[derive(Debug)]
pub struct Chosen {
    /// What is installed where.
    pub staged: Staged,
    repo: VerifiedRepository,
    release: VerifiedRelease,
    index: VerifiedChunkIndex,
}

/// Receives each step of the install: the state's owner.
pub type Owner<'o> = dyn FnMut(Event) -> Result<(), InstallError> + 'o;

/// Runs DESIGN §3 steps 1–7 once from `state` (the owner's current state),
/// handing every step to `owner`.
///
/// With an update staged (`updated-need-reboot`), the same release again is
/// [`InstallOutcome::AlreadyStaged`] and changes nothing; another release
/// replaces it: the staged one is cancelled first (its slot cleared and the
/// cancel reported), then the new one is installed.
pub fn run(
    svc: &mut InstallService<'_>,
    request: &InstallRequest,
    state: &AgentState,
    owner: &mut Owner<'_>,
) -> Result<InstallOutcome, InstallError> {
    let chosen = if let AgentState::UpdatedNeedReboot(w) = state {
        match svc.choose(request, Some(&w.staged))? {
            Choice::AlreadyStaged(s) => {
                return Ok(InstallOutcome::AlreadyStaged {
                    version: s.version,
                    slot: s.slot,
                });
            }
            Choice::Nothing => {
                return Ok(InstallOutcome::NothingToInstall {
                    booted_version: svc.booted_version.as_ref().map(Version::to_string),
                });
            }
            Choice::Install(chosen) => {
                svc.cancel_staged()?;
                owner(Event::Cancelled {
                    reason: format!("replaced by {}", chosen.staged.version),
                })?;
                owner(Event::CheckStarted)?;
                Some(chosen)
            }
        }
    } else {
        owner(Event::CheckStarted)?;
        None
    };
    let result = steps(svc, request, chosen, owner);
    if let Err(e) = &result {
        let message = moho_core::report::render_chain(e);
        // Record the failure; a failure to record it must not hide it.
        if owner(Event::Failed { message }).is_err() {
            tracing::warn!("could not record the failure in the agent state");
        }
    }
    result
}

fn steps(
    svc: &mut InstallService<'_>,
    request: &InstallRequest,
    chosen: Option<Box<Chosen>>,
    owner: &mut Owner<'_>,
) -> Result<InstallOutcome, InstallError> {
    let chosen = match chosen {
        Some(c) => c,
        None => match svc.choose(request, None)? {
            Choice::Nothing => {
                owner(Event::NothingToInstall)?;
                return Ok(InstallOutcome::NothingToInstall {
                    booted_version: svc.booted_version.as_ref().map(Version::to_string),
                });
            }
            Choice::AlreadyStaged(s) => {
                owner(Event::StillStaged(s.clone()))?;
                return Ok(InstallOutcome::AlreadyStaged {
                    version: s.version,
                    slot: s.slot,
                });
            }
            Choice::Install(c) => c,
        },
    };
    owner(Event::UpdateChosen(chosen.staged.clone()))?;
    let stats = svc.write(&chosen)?;
    owner(Event::Downloaded)?;
    svc.verify(&chosen, &stats)?;
    owner(Event::Verified)?;
    svc.arm()?;
    owner(Event::Armed)?;
    journal::remove(svc.state_dir)?;
    svc.progress.finish();
    Ok(InstallOutcome::Installed(InstallReport {
        target: chosen.staged.target.clone(),
        version: chosen.staged.version.clone(),
        slot: chosen.staged.slot,
        image_bytes: chosen.release.image().length(),
        downloaded_bytes: stats.downloaded,
        reused_bytes: stats.reused,
        resumed_bytes: stats.present,
        tries: svc.tries,
    }))
}

impl InstallService<'_> {
    fn disk_name(&self) -> String {
        self.disk.path().display().to_string()
    }

    fn refuse(&self, refusal: Refusal) -> InstallError {
        InstallError::Refused {
            disk: self.disk_name(),
            refusal,
        }
    }

    /// Steps 1–3: the booted slot is blessed, the repository verifies, and
    /// the release to install is chosen (with its signed chunk index) and
    /// fits the slot. Writes nothing.
    pub fn choose(
        &mut self,
        request: &InstallRequest,
        staged: Option<&Staged>,
    ) -> Result<Choice, InstallError> {
        let inactive = self.booted.other();
        // §3.1: never touch the fallback while the booted slot is unblessed.
        let table = self.disk.table().read_slots()?;
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
            Ok(None) => return Ok(Choice::Nothing),
            Err(refusal) => return Err(self.refuse(refusal)),
        };
        let armed_now = table.attrs(inactive);
        if let Some(s) = staged
            && s.target == release.image().name()
            && s.slot == inactive
            && armed_now.priority() > 0
            && armed_now.tries() > 0
            && !armed_now.successful()
        {
            return Ok(Choice::AlreadyStaged(s.clone()));
        }
        let index_bytes = self.repo.fetch_small_target(release.chunk_index())?;
        let index = release.verify_chunk_index(&index_bytes)?;
        let image_len = release.image().length();
        let extent = self.disk.table().slot_extent(inactive)?;
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
        Ok(Choice::Install(Box::new(Chosen {
            staged,
            repo,
            release,
            index,
        })))
    }

    /// Withdraws the update staged in the inactive slot (before another
    /// replaces it).
    pub fn cancel_staged(&mut self) -> Result<(), InstallError> {
        let table = self.disk.table().read_slots()?;
        let next = cancel_armed(&table, self.booted)?;
        self.disk.table().commit_slots(&table, &next)?;
        Ok(())
    }

    /// Steps 4–5: clear the inactive slot (flushed, before the first image
    /// byte) unless the journal proves an interrupted run of the same image,
    /// then stream the image into it chunk by chunk.
    pub fn write(&mut self, chosen: &Chosen) -> Result<StreamStats, InstallError> {
        let inactive = chosen.staged.slot;
        let index = &chosen.index;
        let release = &chosen.release;
        let journal = Journal {
            target: chosen.staged.target.clone(),
            image_sha256: release.image().sha256().to_string(),
            chunk_size: index.index().chunk_size(),
            slot: inactive,
            slot_partuuid: self.disk.table().read_slots()?.get(inactive).partuuid,
        };
        let table = self.disk.table().read_slots()?;
        let attrs = table.attrs(inactive);
        let cleared = attrs.priority() == 0 && attrs.tries() == 0 && !attrs.successful();
        let resume = cleared && journal::load(self.state_dir)?.as_ref() == Some(&journal);
        if !resume {
            // §3.4: clear, written and flushed, before the first image byte.
            let next = clear_inactive(&table, self.booted)?;
            self.disk.table().commit_slots(&table, &next)?;
            journal::save(self.state_dir, &journal)?;
        }
        let dest = self.slot_io(inactive)?;
        let booted_io = self.slot_io(self.booted)?;
        let present = if resume {
            self.progress.phase("re-verifying");
            scan_present(&dest, index)?
        } else {
            vec![false; usize::try_from(index.index().chunk_count()).unwrap_or(0)]
        };
        let local = self.local_map(&chosen.repo, release, &booted_io)?;
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
        self.progress.start(release.image().length(), present_bytes);
        let stats = stream::stream(&StreamJob {
            plan: &chunk_plan,
            index,
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
        Ok(stats)
    }

    /// Step 6: flush, then check the whole slot against the signed image
    /// hash (read back behind the writer with direct I/O, else now).
    pub fn verify(&mut self, chosen: &Chosen, stats: &StreamStats) -> Result<(), InstallError> {
        let inactive = chosen.staged.slot;
        let image = chosen.release.image();
        let dest = self.slot_io(inactive)?;
        dest.sync()?;
        self.progress.phase("verifying");
        let checked = match stats.read_back {
            Some(actual) => readback::compare(image.length(), image.sha256(), actual),
            None => readback::verify_slot(&dest, image.length(), image.sha256()),
        };
        checked.map_err(|source| InstallError::ReadBack {
            slot: inactive,
            source,
        })
    }

    /// Step 7: arm the verified slot.
    pub fn arm(&mut self) -> Result<(), InstallError> {
        self.progress.phase("arming");
        let table = self.disk.table().read_slots()?;
        let armed = arm_inactive(&table, self.booted, self.tries)?;
        self.disk.table().commit_slots(&table, &armed)?;
        Ok(())
    }

    fn slot_io(&mut self, slot: SlotName) -> Result<SlotIo, InstallError> {
        self.disk.slot_io(slot).map_err(InstallError::from)
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
