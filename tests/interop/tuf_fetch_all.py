"""An independent TUF client (python-tuf's ngclient) against a Moho repository.

Refreshes the metadata from METADATA_URL trusting ROOT (a root.json file),
then downloads and verifies every target listed in the top-level targets
metadata from TARGETS_URL, the way any conforming client does: with
consistent snapshots, target `dir/file` is fetched from `dir/HASH.file`.
Prints one JSON line per target ({"name", "length", "sha256"}) and exits 0
only if every one verified. Used by tests/tests/repo_layout.rs.

usage: tuf_fetch_all.py ROOT METADATA_URL TARGETS_URL WORK_DIR
"""

import hashlib
import json
import os
import shutil
import sys

from tuf.api.metadata import Metadata, Targets
from tuf.ngclient import Updater


def main() -> int:
    root, metadata_url, targets_url, work = sys.argv[1:5]
    metadata_dir = os.path.join(work, "metadata")
    target_dir = os.path.join(work, "downloads")
    os.makedirs(metadata_dir, exist_ok=True)
    os.makedirs(target_dir, exist_ok=True)
    shutil.copyfile(root, os.path.join(metadata_dir, "root.json"))
    updater = Updater(
        metadata_dir=metadata_dir,
        metadata_base_url=metadata_url,
        target_base_url=targets_url,
        target_dir=target_dir,
    )
    updater.refresh()
    # ngclient keeps the verified top-level targets metadata in metadata_dir.
    targets = Metadata[Targets].from_file(os.path.join(metadata_dir, "targets.json"))
    names = sorted(targets.signed.targets)
    if not names:
        print("the repository lists no targets", file=sys.stderr)
        return 1
    for name in names:
        info = updater.get_targetinfo(name)
        if info is None:
            print(f"{name}: not found by the client", file=sys.stderr)
            return 1
        path = updater.download_target(
            info, filepath=os.path.join(target_dir, hashlib.sha256(name.encode()).hexdigest())
        )
        with open(path, "rb") as f:
            data = f.read()
        print(
            json.dumps(
                {"name": name, "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
