//! GPT read/commit/repair on disk images: both copies stay valid, damaged
//! copies are repaired, foreign bits survive, and a commit cut off after any
//! sector leaves a readable table that is either the old or the new one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use moho_core::SlotName;
use moho_core::layout::{LayoutRequest, plan_disk};
use moho_core::slot_attrs::SlotAttributes;
use moho_core::state_growth::StateGrowth;
use moho_core::transitions::{arm_inactive, clear_inactive};
use moho_disk::create::{DiskGuids, InitialSlots, create_layout, write_table};
use moho_disk::device::BlockIo;
use moho_disk::gpt_commit::{commit_attributes, commit_state_growth};
use moho_disk::gpt_read::read_gpt;
use moho_disk::{CopyHealth, DiskError, GptSlotDisk, SlotDisk};
use proptest::prelude::*;

const MIB: u64 = 1024 * 1024;
const DISK: u64 = 256 * MIB;

fn plan() -> moho_core::layout::DiskPlan {
    plan_disk(LayoutRequest {
        disk_size: DISK,
        esp_size: 40 * MIB,
        slot_size: 64 * MIB,
        sector_size: 512,
    })
    .unwrap()
}

fn initial() -> InitialSlots {
    InitialSlots {
        a: SlotAttributes::default().with_fields(1, 0, true).unwrap(),
        b: SlotAttributes::default(),
    }
}

fn new_disk_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("disk.img");
    std::fs::File::create(&path).unwrap().set_len(DISK).unwrap();
    create_layout(&path, &plan(), initial(), DiskGuids::random()).unwrap();
    path
}

fn smash(path: &Path, offset: u64, len: usize) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&vec![0xA5; len]).unwrap();
}

#[test]
fn a_new_disk_has_both_copies_valid_and_the_initial_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    let mut disk = GptSlotDisk::open(&path, false).unwrap();
    let t = disk.read_slots().unwrap();
    assert_eq!((t.a.partition, t.b.partition), (2, 3));
    assert_eq!(
        (t.a.label.as_str(), t.b.label.as_str()),
        ("ROOT-A", "ROOT-B")
    );
    assert_eq!(t.a.attrs.priority(), 1);
    assert!(t.a.attrs.successful());
    assert_eq!(t.b.attrs.priority(), 0);
    assert!(!disk.health().needs_repair(), "{}", disk.health());
}

#[test]
fn commit_writes_both_copies_and_keeps_foreign_bits() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    let mut disk = GptSlotDisk::open(&path, true).unwrap();
    let t = disk.read_slots().unwrap();
    // A foreign tool set the UEFI "required" bit and a high bit on B.
    let mut foreign = t.clone();
    foreign.b.attrs = SlotAttributes::from_raw(t.b.attrs.raw() | 1 | (1 << 62));
    disk.commit_slots(&t, &foreign).unwrap();

    let cleared = clear_inactive(&foreign, SlotName::A).unwrap();
    disk.commit_slots(&foreign, &cleared).unwrap();
    let armed = arm_inactive(&cleared, SlotName::A, 1).unwrap();
    disk.commit_slots(&cleared, &armed).unwrap();

    let mut fresh = GptSlotDisk::open(&path, false).unwrap();
    let back = fresh.read_slots().unwrap();
    assert_eq!(back, armed);
    assert_eq!(back.b.attrs.foreign_bits(), 1 | (1 << 62));
    assert!(!fresh.health().needs_repair());
}

#[test]
fn a_stale_expected_table_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    let mut disk = GptSlotDisk::open(&path, true).unwrap();
    let t = disk.read_slots().unwrap();
    let cleared = clear_inactive(&t, SlotName::A).unwrap();
    let mut stale = t.clone();
    stale.a.attrs = stale.a.attrs.with_tries(3).unwrap();
    let err = disk.commit_slots(&stale, &cleared).unwrap_err();
    assert!(matches!(err, DiskError::ConcurrentChange { .. }), "{err}");
    assert_eq!(disk.read_slots().unwrap(), t);
}

#[test]
fn damaged_primary_header_is_read_from_backup_and_repaired_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    smash(&path, 512 + 24, 8); // current_lba field of the primary header
    let mut disk = GptSlotDisk::open(&path, true).unwrap();
    let t = disk.read_slots().unwrap();
    let h = disk.health();
    assert!(matches!(h.primary, CopyHealth::Damaged(_)), "{h}");
    assert_eq!(h.backup, CopyHealth::Valid);
    assert_eq!(t.a.attrs.priority(), 1);

    let next = clear_inactive(&t, SlotName::A).unwrap();
    disk.commit_slots(&t, &next).unwrap();
    let mut fresh = GptSlotDisk::open(&path, false).unwrap();
    assert_eq!(fresh.read_slots().unwrap(), next);
    assert!(!fresh.health().needs_repair(), "{}", fresh.health());
}

#[test]
fn damaged_primary_entry_array_is_detected_by_its_crc() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    // Entry 2 (slot A) attributes in the primary array at LBA 2.
    smash(&path, 1024 + 128 + 48, 8);
    let mut disk = GptSlotDisk::open(&path, true).unwrap();
    let t = disk.read_slots().unwrap();
    let h = disk.health();
    assert!(
        matches!(&h.primary, CopyHealth::Damaged(why) if why.contains("entry array CRC")),
        "{h}"
    );
    assert_eq!(t.a.attrs.priority(), 1, "attributes come from the backup");
    // Even an unchanged table is rewritten when a copy needs repair.
    disk.commit_slots(&t, &t).unwrap();
    let fresh = GptSlotDisk::open(&path, false).unwrap();
    assert!(!fresh.health().needs_repair(), "{}", fresh.health());
}

#[test]
fn damaged_backup_is_repaired_from_primary() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    smash(&path, DISK - 512, 92);
    let mut disk = GptSlotDisk::open(&path, true).unwrap();
    let t = disk.read_slots().unwrap();
    assert!(matches!(disk.health().backup, CopyHealth::Damaged(_)));
    disk.commit_slots(&t, &t).unwrap();
    assert!(
        !GptSlotDisk::open(&path, false)
            .unwrap()
            .health()
            .needs_repair()
    );
}

#[test]
fn both_copies_damaged_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    smash(&path, 512, 92);
    smash(&path, DISK - 512, 92);
    let err = GptSlotDisk::open(&path, false).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no valid GPT"), "{msg}");
    assert!(msg.contains("disk.img"), "{msg}");
}

#[test]
fn a_disk_without_slots_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.img");
    std::fs::File::create(&path).unwrap().set_len(DISK).unwrap();
    let err = GptSlotDisk::open(&path, false).unwrap_err();
    assert!(err.to_string().contains("no valid GPT"), "{err}");
}

/// A sparse in-memory disk: only sectors ever written are stored. It can
/// be told to lose every sector written after `budget` ones (a power cut).
#[derive(Debug, Clone)]
struct MemDisk {
    sectors: BTreeMap<u64, [u8; 512]>,
    len: u64,
    pos: u64,
    budget: usize,
    written: usize,
}

impl MemDisk {
    fn new(len: u64) -> Self {
        Self {
            sectors: BTreeMap::new(),
            len,
            pos: 0,
            budget: usize::MAX,
            written: 0,
        }
    }

    fn torn_after(&self, budget: usize) -> Self {
        Self {
            pos: 0,
            budget,
            written: 0,
            ..self.clone()
        }
    }
}

impl Read for MemDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.len.saturating_sub(self.pos)).unwrap());
        let mut off = 0;
        while off < n {
            let abs = self.pos + off as u64;
            let (sector, within) = (abs / 512, usize::try_from(abs % 512).unwrap());
            let take = (512 - within).min(n - off);
            match self.sectors.get(&sector) {
                Some(s) => buf[off..off + take].copy_from_slice(&s[within..within + take]),
                None => buf[off..off + take].fill(0),
            }
            off += take;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for MemDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Sectors are atomic; a write spanning several may be cut between them.
        let mut off = 0;
        while off < buf.len() {
            let abs = self.pos + off as u64;
            let (sector, within) = (abs / 512, usize::try_from(abs % 512).unwrap());
            let take = (512 - within).min(buf.len() - off);
            if self.written < self.budget {
                let s = self.sectors.entry(sector).or_insert([0; 512]);
                s[within..within + take].copy_from_slice(&buf[off..off + take]);
                self.written += 1;
            }
            off += take;
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for MemDisk {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

impl BlockIo for MemDisk {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn mem_image() -> MemDisk {
    let mut disk = MemDisk::new(DISK);
    write_table(
        &mut disk,
        Path::new("mem"),
        &plan(),
        initial(),
        DiskGuids::random(),
    )
    .unwrap();
    disk
}

fn flip(disk: &mut MemDisk, offset: u64) {
    disk.sectors.entry(offset / 512).or_insert([0; 512])[usize::try_from(offset % 512).unwrap()] ^=
        0xff;
}

fn attrs_of(disk: &MemDisk) -> Result<(u64, u64), DiskError> {
    let mut d = disk.clone();
    let snap = read_gpt(&mut d, Path::new("mem"), 512, DISK)?;
    Ok((snap.partitions[&2].flags, snap.partitions[&3].flags))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Cut the commit after `budget` sectors, for every budget from nothing
    /// to everything, starting from a healthy disk, one with a damaged copy,
    /// or one whose copies diverged in an earlier interrupted commit.
    #[test]
    fn a_torn_commit_leaves_old_or_new(damage in 0u8..4, new_b in any::<u64>()) {
        let mut base = mem_image();
        match damage {
            1 => flip(&mut base, 512 + 30),             // primary header
            2 => flip(&mut base, 1024 + 128 * 2 + 50),  // primary array, entry 3
            3 => flip(&mut base, DISK - 512 + 30),      // backup header
            _ => {}
        }
        let old = attrs_of(&base).unwrap();
        let change: BTreeMap<u32, u64> = [(3u32, new_b)].into();
        let snap = read_gpt(&mut base.clone(), Path::new("mem"), 512, DISK).unwrap();
        for budget in 0.. {
            let mut dev = base.torn_after(budget);
            commit_attributes(&mut dev, Path::new("mem"), &snap, &change).unwrap();
            let got = attrs_of(&dev)
                .map_err(|e| TestCaseError::fail(format!("cut after {budget} sectors: {e}")))?;
            prop_assert!(got == old || got == (old.0, new_b), "cut after {} sectors: {:?}", budget, got);
            if dev.written < budget {
                // Nothing was cut: the commit must have landed and healed the disk.
                prop_assert_eq!(got, (old.0, new_b));
                let healed = read_gpt(&mut dev.clone(), Path::new("mem"), 512, DISK).unwrap();
                prop_assert!(!healed.health().needs_repair(), "{}", healed.health());
                break;
            }
        }
    }
}

const SMALL: u64 = 128 * MIB;
const GROWN: u64 = 4 * SMALL;

/// A disk image made for `SMALL` bytes, then grown to four times that (an image
/// written to a bigger disk, a grown cloud volume).
fn grown_mem_image() -> MemDisk {
    let small = plan_disk(LayoutRequest {
        disk_size: SMALL,
        esp_size: 40 * MIB,
        slot_size: 32 * MIB,
        sector_size: 512,
    })
    .unwrap();
    let mut disk = MemDisk::new(SMALL);
    write_table(
        &mut disk,
        Path::new("mem"),
        &small,
        initial(),
        DiskGuids::random(),
    )
    .unwrap();
    disk.len = GROWN;
    disk
}

#[test]
fn a_grown_disk_is_read_from_its_primary_and_says_why_the_backup_is_missing() {
    let mut disk = grown_mem_image();
    let snap = read_gpt(&mut disk, Path::new("mem"), 512, GROWN).unwrap();
    let h = snap.health();
    assert_eq!(h.primary, CopyHealth::Valid);
    assert!(
        matches!(&h.backup, CopyHealth::Damaged(why)
            if why.contains("not at the end of the disk")
            && why.contains(&format!("ending at LBA {}", SMALL / 512 - 1))
            && why.contains(&format!("ends at LBA {}", GROWN / 512 - 1))),
        "{h}"
    );
    assert!(h.needs_repair());
}

#[test]
fn a_commit_on_a_grown_disk_moves_the_backup_to_the_end() {
    let base = grown_mem_image();
    let mut dev = base.clone();
    let snap = read_gpt(&mut dev, Path::new("mem"), 512, GROWN).unwrap();
    let before = snap.trusted_copy().clone();
    commit_attributes(
        &mut dev,
        Path::new("mem"),
        &snap,
        &[(3u32, 7u64 << 48)].into(),
    )
    .unwrap();
    let after = read_gpt(&mut dev, Path::new("mem"), 512, GROWN).unwrap();
    assert!(!after.health().needs_repair(), "{}", after.health());
    let (p, b) = (
        after.primary.as_ref().unwrap(),
        after.backup.as_ref().unwrap(),
    );
    assert_eq!(p.header.backup_lba, GROWN / 512 - 1);
    assert_eq!(b.header.current_lba, GROWN / 512 - 1);
    assert_eq!(b.header.part_start, GROWN / 512 - 33);
    assert_eq!(p.header.last_usable, GROWN / 512 - 34);
    assert_eq!(p.header.disk_guid, before.header.disk_guid);
    assert_eq!(after.partitions[&3].flags, 7 << 48);
    // The partitions themselves are where they were.
    for (n, part) in &snap.partitions {
        let moved = &after.partitions[n];
        assert_eq!(
            (moved.first_lba, moved.last_lba, &moved.name),
            (part.first_lba, part.last_lba, &part.name)
        );
    }
}

#[test]
fn a_grown_disk_file_takes_slot_changes_and_ends_with_both_copies_at_its_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4 * DISK)
        .unwrap();
    let mut disk = GptSlotDisk::open(&path, true).unwrap();
    assert!(disk.health().needs_repair(), "{}", disk.health());
    let t = disk.read_slots().unwrap();
    let cleared = clear_inactive(&t, SlotName::A).unwrap();
    disk.commit_slots(&t, &cleared).unwrap();
    let mut fresh = GptSlotDisk::open(&path, false).unwrap();
    assert_eq!(fresh.read_slots().unwrap(), cleared);
    assert!(!fresh.health().needs_repair(), "{}", fresh.health());
    assert_eq!(
        fresh.snapshot().primary.as_ref().unwrap().header.backup_lba,
        4 * DISK / 512 - 1
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Cut the commit that moves the backup of a grown disk after any
    /// sector: the table read afterwards is the old or the new one, its
    /// partitions are unchanged, and the next commit finishes the move.
    #[test]
    fn a_torn_relocation_leaves_old_or_new_and_the_next_commit_finishes_it(new_b in any::<u64>()) {
        let base = grown_mem_image();
        let old = attrs_of(&base).unwrap();
        let snap = read_gpt(&mut base.clone(), Path::new("mem"), 512, GROWN).unwrap();
        let change: BTreeMap<u32, u64> = [(3u32, new_b)].into();
        for budget in 0.. {
            let mut dev = base.torn_after(budget);
            commit_attributes(&mut dev, Path::new("mem"), &snap, &change).unwrap();
            let torn = read_gpt(&mut dev.clone(), Path::new("mem"), 512, GROWN)
                .map_err(|e| TestCaseError::fail(format!("cut after {budget} sectors: {e}")))?;
            let got = (torn.partitions[&2].flags, torn.partitions[&3].flags);
            prop_assert!(got == old || got == (old.0, new_b), "cut after {} sectors: {:?}", budget, got);
            for (n, part) in &snap.partitions {
                prop_assert_eq!(torn.partitions[n].first_lba, part.first_lba);
                prop_assert_eq!(torn.partitions[n].last_lba, part.last_lba);
            }
            // Whatever was cut, one more commit (the next boot's) heals it.
            let mut healed = dev.clone();
            healed.budget = usize::MAX;
            let attrs: BTreeMap<u32, u64> = [(3u32, got.1)].into();
            commit_attributes(&mut healed, Path::new("mem"), &torn, &attrs).unwrap();
            let done = read_gpt(&mut healed, Path::new("mem"), 512, GROWN).unwrap();
            prop_assert!(!done.health().needs_repair(), "after cut {}: {}", budget, done.health());
            prop_assert_eq!(done.primary.as_ref().unwrap().header.backup_lba, GROWN / 512 - 1);
            if dev.written < budget {
                prop_assert_eq!(got, (old.0, new_b));
                break;
            }
        }
    }
}

/// STATE's (first, last) LBA and both slots' attributes, as the trusted
/// copy says.
/// `((first, last) LBA of STATE, (slot A, slot B) attributes)`.
type StateAndSlots = ((u64, u64), (u64, u64));

fn state_and_slots(disk: &MemDisk, len: u64) -> Result<StateAndSlots, DiskError> {
    let snap = read_gpt(&mut disk.clone(), Path::new("mem"), 512, len)?;
    let s = &snap.partitions[&4];
    Ok((
        (s.first_lba, s.last_lba),
        (snap.partitions[&2].flags, snap.partitions[&3].flags),
    ))
}

#[test]
fn state_grows_to_the_end_of_a_grown_disk_in_one_commit_and_only_once() {
    let base = grown_mem_image();
    let (old_state, slots) = state_and_slots(&base, GROWN).unwrap();
    let mut dev = base.clone();
    let snap = read_gpt(&mut dev, Path::new("mem"), 512, GROWN).unwrap();
    let growth = commit_state_growth(&mut dev, Path::new("mem"), &snap).unwrap();
    assert_eq!(
        growth,
        StateGrowth::Grow {
            number: 4,
            first_lba: old_state.0,
            from_last_lba: SMALL / 512 - 34,
            to_last_lba: GROWN / 512 - 34,
        }
    );
    let after = read_gpt(&mut dev, Path::new("mem"), 512, GROWN).unwrap();
    assert!(!after.health().needs_repair(), "{}", after.health());
    assert_eq!(
        after.primary.as_ref().unwrap().header.backup_lba,
        GROWN / 512 - 1
    );
    assert_eq!(
        state_and_slots(&dev, GROWN).unwrap(),
        ((old_state.0, GROWN / 512 - 34), slots)
    );
    for n in 1..=3 {
        assert_eq!(
            (
                after.partitions[&n].first_lba,
                after.partitions[&n].last_lba
            ),
            (snap.partitions[&n].first_lba, snap.partitions[&n].last_lba)
        );
    }
    // The next boot finds STATE full and writes nothing.
    let mut again = dev.torn_after(usize::MAX);
    let growth = commit_state_growth(&mut again, Path::new("mem"), &after).unwrap();
    assert_eq!(
        growth,
        StateGrowth::AlreadyFull {
            number: 4,
            last_lba: GROWN / 512 - 34
        }
    );
    assert_eq!(again.written, 0);
}

#[test]
fn state_grows_after_the_selector_already_moved_the_backup() {
    let mut dev = grown_mem_image();
    let snap = read_gpt(&mut dev, Path::new("mem"), 512, GROWN).unwrap();
    let attrs: BTreeMap<u32, u64> = [(3u32, snap.partitions[&3].flags)].into();
    commit_attributes(&mut dev, Path::new("mem"), &snap, &attrs).unwrap();
    let moved = read_gpt(&mut dev, Path::new("mem"), 512, GROWN).unwrap();
    assert!(!moved.health().needs_repair());
    assert_eq!(moved.partitions[&4].last_lba, SMALL / 512 - 34);
    let growth = commit_state_growth(&mut dev, Path::new("mem"), &moved).unwrap();
    assert_eq!(growth.final_last_lba(), GROWN / 512 - 34);
    let done = read_gpt(&mut dev, Path::new("mem"), 512, GROWN).unwrap();
    assert!(!done.health().needs_repair(), "{}", done.health());
    assert_eq!(done.partitions[&4].last_lba, GROWN / 512 - 34);
}

#[test]
fn a_disk_of_its_own_size_has_nothing_to_grow() {
    let mut dev = mem_image();
    let snap = read_gpt(&mut dev, Path::new("mem"), 512, DISK).unwrap();
    let mut probe = dev.torn_after(usize::MAX);
    assert!(matches!(
        commit_state_growth(&mut probe, Path::new("mem"), &snap).unwrap(),
        StateGrowth::AlreadyFull { number: 4, .. }
    ));
    assert_eq!(probe.written, 0);
}

/// A power cut after any sector of the growth's commit leaves the old table
/// or the new one (STATE's start, the other partitions and the slots never
/// change), and running the growth again, as the next boot does, ends with
/// STATE filling the disk and both copies valid at its ends.
#[test]
fn a_torn_state_growth_leaves_old_or_new_and_the_next_boot_finishes_it() {
    let base = grown_mem_image();
    let (old_state, slots) = state_and_slots(&base, GROWN).unwrap();
    let new_state = (old_state.0, GROWN / 512 - 34);
    let snap = read_gpt(&mut base.clone(), Path::new("mem"), 512, GROWN).unwrap();
    for budget in 0.. {
        let mut dev = base.torn_after(budget);
        commit_state_growth(&mut dev, Path::new("mem"), &snap).unwrap();
        let (state, got_slots) = state_and_slots(&dev, GROWN)
            .unwrap_or_else(|e| panic!("cut after {budget} sectors: {e}"));
        assert!(
            state == old_state || state == new_state,
            "cut after {budget} sectors: STATE {state:?}"
        );
        assert_eq!(got_slots, slots, "cut after {budget} sectors");
        let mut next_boot = dev.clone();
        next_boot.budget = usize::MAX;
        let torn = read_gpt(&mut next_boot.clone(), Path::new("mem"), 512, GROWN).unwrap();
        commit_state_growth(&mut next_boot, Path::new("mem"), &torn).unwrap();
        let done = read_gpt(&mut next_boot.clone(), Path::new("mem"), 512, GROWN).unwrap();
        assert!(
            !done.health().needs_repair(),
            "cut after {budget}: {}",
            done.health()
        );
        assert_eq!(
            state_and_slots(&next_boot, GROWN).unwrap(),
            (new_state, slots)
        );
        if dev.written < budget {
            assert_eq!(state, new_state);
            break;
        }
    }
}

#[test]
fn a_grown_disk_file_grows_state_and_keeps_its_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_disk_file(dir.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4 * DISK)
        .unwrap();
    let mut disk = GptSlotDisk::open(&path, true).unwrap();
    let slots = disk.read_slots().unwrap();
    let growth = disk.grow_state().unwrap();
    assert_eq!(growth.final_last_lba(), 4 * DISK / 512 - 34);
    assert!(matches!(growth, StateGrowth::Grow { .. }));
    let mut fresh = GptSlotDisk::open(&path, false).unwrap();
    assert_eq!(fresh.read_slots().unwrap(), slots);
    assert!(!fresh.health().needs_repair(), "{}", fresh.health());
    assert!(matches!(
        GptSlotDisk::open(&path, true)
            .unwrap()
            .grow_state()
            .unwrap(),
        StateGrowth::AlreadyFull { .. }
    ));
}
