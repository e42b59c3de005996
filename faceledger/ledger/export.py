"""Export the ledger as a self-checking bundle an auditor can verify without faceledger.

The bundle holds every entry (erased payloads as null), the signed checkpoints, the public
key, a manifest and `verify.py` (a copy of standalone_verify.py, standard library plus
`cryptography` only). The head is checkpointed first, so cutting entries off the end of
the bundle is detected too.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from faceledger.config import Settings
from faceledger.errors import BadInput
from faceledger.ledger import keys, standalone_verify
from faceledger.ledger.checkpoints import maybe_checkpoint
from faceledger.ledger.verify import checkpoint_records, iter_records

FORMAT = standalone_verify.FORMAT
FORMAT_VERSION = standalone_verify.FORMAT_VERSION
VERIFIER = Path(standalone_verify.__file__)
BUNDLE_FILES = ("entries.jsonl", "checkpoints.json", "public_key.pem", "manifest.json", "verify.py")


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    entries: int
    checkpoints: int
    erased: int
    head_seq: int
    head_hash: str | None
    key_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "erased": self.erased,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "key_id": self.key_id,
        }


def _json_line(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False).encode() + b"\n"


class TargetExists(BadInput):
    """The bundle's directory exists and is not empty (a usage error: name another)."""

    code = "exists"


def check_target(directory: Path) -> None:
    """Refuse a directory that exists and is not empty: a bundle is never merged or overwritten."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise TargetExists(f"{directory} exists and is not an empty directory")


def export_bundle(session: Session, settings: Settings, directory: Path) -> ExportSummary:
    """Write the bundle into DIRECTORY (new or empty), as the ledger stands in this session.

    The caller records the export in the ledger first (same transaction) and commits after,
    so the bundle contains the entry that records its own export. The head is signed here
    when the chain is whole; a broken chain is still exported, for its verifier to name.
    """
    check_target(directory)
    maybe_checkpoint(session, settings, every=1)
    public_key = keys.signing_key(settings).public_key()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return _write(session, directory, public_key)
    except BaseException:
        remove_bundle(directory)
        raise


def remove_bundle(directory: Path) -> None:
    """Undo a failed export: remove the bundle's files, and the directory if left empty."""
    for name in BUNDLE_FILES:
        (directory / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


def _write(session: Session, directory: Path, public_key: Ed25519PublicKey) -> ExportSummary:
    entries = erased = head_seq = 0
    head_hash: str | None = None
    with (directory / "entries.jsonl").open("wb") as handle:
        for record in iter_records(session):
            handle.write(_json_line(record))
            entries += 1
            erased += record["erased"]
            head_seq, head_hash = record["seq"], record["entry_hash"]
    checkpoints = checkpoint_records(session)
    (directory / "checkpoints.json").write_text(
        json.dumps(checkpoints, indent=1) + "\n", encoding="utf-8"
    )
    (directory / "public_key.pem").write_bytes(keys.public_key_pem(public_key))
    shutil.copyfile(VERIFIER, directory / "verify.py")
    summary = ExportSummary(
        directory=directory,
        entries=entries,
        checkpoints=len(checkpoints),
        erased=erased,
        head_seq=head_seq,
        head_hash=head_hash,
        key_id=keys.key_id(public_key),
    )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in summary.as_dict().items() if k != "directory"},
        "files": list(BUNDLE_FILES),
        "verify": "python verify.py .  (needs Python 3 and the 'cryptography' package)",
    }
    (directory / "manifest.json").write_text(
        json.dumps(manifest, indent=1) + "\n", encoding="utf-8"
    )
    return summary
