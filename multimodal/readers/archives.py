"""Safe zip extraction for uploads.

The whole archive is refused (UserInputError) only when it cannot be read at all or breaks an
archive-wide limit; one bad entry (a path escaping the archive, a symlink, an encrypted or corrupt
member, a member too large or compressed suspiciously well) fails alone and the rest extract.
Sizes are enforced while streaming, never trusting the sizes the archive declares.

An entry name the archive does not mark as UTF-8 is read as the zip format's default code page
(cp437) by zipfile; here it is read as UTF-8 when it is that (most tools write UTF-8 without the
mark), else in the encoding detected over all the archive's unmarked names (the tool that wrote
them used one code page), and the entry says what was done in its ``note``.
"""
from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import UserInputError
from .tabular import encoding_detect

CHUNK_BYTES = 1024 * 1024
UTF8_NAME_FLAG = 0x800  # general purpose bit 11: the name is UTF-8


@dataclass(frozen=True)
class ArchiveEntry:
    name: str  # the path inside the archive, with "/" separators
    path: Path  # where it was extracted
    size: int
    note: str = ""  # how its name was read when the archive did not say it was UTF-8


@dataclass(frozen=True)
class ArchiveFailure:
    name: str
    reason: str


class _EntryRejected(Exception):
    pass


def zip_extract_safely(zip_path: Path, dest_dir: Path, *, max_entries: int, max_total_bytes: int,
                       max_entry_bytes: int, max_ratio: int) -> tuple[list[ArchiveEntry], list[ArchiveFailure]]:
    """Extract the regular files of `zip_path` under `dest_dir`.

    Returns the extracted entries and one failure per rejected entry. Directories and operating
    system litter (`__MACOSX/`, `._*`, hidden files) are skipped silently.
    """
    label = Path(zip_path).name
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UserInputError(f"{label}: not a valid zip archive ({exc})") from exc
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir() and not _is_litter(info.filename)]
        notes = _names_decode(members)
        if len(members) > max_entries:
            raise UserInputError(f"{label}: has {len(members):,} files; the limit is {max_entries:,}")
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        entries: list[ArchiveEntry] = []
        failures: list[ArchiveFailure] = []
        seen: set[str] = set()
        total = 0
        for info in members:
            try:
                relative = _safe_relative_path(info)
                if relative in seen:
                    raise _EntryRejected("appears twice in the archive")
                seen.add(relative)
                target = dest_dir / relative
                size = _member_extract(archive, info, target, max_entry_bytes=max_entry_bytes, max_ratio=max_ratio,
                                       budget=max_total_bytes - total)
            except _EntryRejected as exc:
                failures.append(ArchiveFailure(info.filename, str(exc)))
                continue
            except _ArchiveTooLarge:
                shutil.rmtree(dest_dir, ignore_errors=True)
                raise UserInputError(f"{label}: expands to more than {max_total_bytes:,} bytes") from None
            total += size
            entries.append(ArchiveEntry(relative, target, size, notes.get(id(info), "")))
        return entries, failures


class _ArchiveTooLarge(Exception):
    pass


def _names_decode(members: list[zipfile.ZipInfo]) -> dict[int, str]:
    """Rename, in place, the members whose names are not marked UTF-8 and are not plain ASCII.

    Returns a note per renamed member (keyed by ``id(info)``) saying how its name was read.
    """
    unmarked = {}
    for info in members:
        if not info.flag_bits & UTF8_NAME_FLAG:
            raw = info.filename.encode("cp437")  # zipfile decoded the raw bytes as cp437: undo it
            if not raw.isascii():
                unmarked[id(info)] = (info, raw)
    foreign = []
    for key, (info, raw) in unmarked.items():
        try:
            info.filename = raw.decode("utf-8")
        except UnicodeDecodeError:
            foreign.append(key)
    if not foreign:
        return {}
    encoding = encoding_detect(b"\n".join(unmarked[key][1] for key in foreign)) or "cp437"
    notes = {}
    for key in foreign:
        info, raw = unmarked[key]
        try:
            info.filename = raw.decode(encoding)
        except UnicodeDecodeError:
            encoding_used = "cp437"  # zipfile's reading: every byte is some character
        else:
            encoding_used = encoding
        notes[key] = f"its name in the archive is not UTF-8: read as {encoding_used}"
    return notes


def _is_litter(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(part == "__MACOSX" for part in parts) or (bool(parts) and parts[-1].startswith("."))


def _safe_relative_path(info: zipfile.ZipInfo) -> str:
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _EntryRejected("symbolic links are not extracted")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _EntryRejected("absolute path in the archive")
    parts = [part for part in PurePosixPath(name).parts if part not in ("", ".")]
    if ".." in parts:
        raise _EntryRejected("path escapes the archive (..)")
    if not parts:
        raise _EntryRejected("empty path in the archive")
    if info.flag_bits & 0x1:
        raise _EntryRejected("encrypted entries are not supported")
    return "/".join(parts)


def _member_extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, *, max_entry_bytes: int,
                    max_ratio: int, budget: int) -> int:
    if info.file_size > max_entry_bytes:
        raise _EntryRejected(f"is {info.file_size:,} bytes; the limit per file is {max_entry_bytes:,}")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    # Small members compress well legitimately (a blank text file); only judge the ratio past 1 MB.
    ratio_floor = max(info.compress_size, 1) * max_ratio
    try:
        with archive.open(info) as source, open(target, "wb") as out:
            while chunk := source.read(CHUNK_BYTES):
                written += len(chunk)
                if written > max_entry_bytes:
                    raise _EntryRejected(f"expands past the limit per file of {max_entry_bytes:,} bytes")
                if written > CHUNK_BYTES and written > ratio_floor:
                    raise _EntryRejected(f"compressed more than {max_ratio}:1, looks like a zip bomb")
                if written > budget:
                    raise _ArchiveTooLarge()
                out.write(chunk)
    except (_EntryRejected, _ArchiveTooLarge):
        target.unlink(missing_ok=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        # RuntimeError: zipfile's "password required"; BadZipFile: CRC mismatch, bad header.
        target.unlink(missing_ok=True)
        raise _EntryRejected(f"corrupt entry ({exc})") from exc
    except NotImplementedError as exc:
        target.unlink(missing_ok=True)
        raise _EntryRejected(f"unsupported compression ({exc})") from exc
    return written
