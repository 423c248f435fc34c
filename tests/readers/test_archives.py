"""Zip extraction refuses what could escape, explode or hide, and extracts everything else."""
import io
import stat
import zipfile

import pytest

from multimodal.errors import UserInputError
from multimodal.readers.archives import zip_extract_safely

LIMITS = dict(max_entries=100, max_total_bytes=50 * 1024 * 1024, max_entry_bytes=20 * 1024 * 1024, max_ratio=100)


def _zip(tmp_path, members, name="upload.zip"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def _extract(tmp_path, path, **limits):
    return zip_extract_safely(path, tmp_path / "out", **{**LIMITS, **limits})


def test_regular_files_extract_with_their_folders_and_litter_is_skipped(tmp_path):
    path = _zip(tmp_path, {"photos/a.png": b"a", "notes/b.txt": b"bb", "__MACOSX/photos/._a.png": b"x",
                           ".DS_Store": b"x", "photos/": b""})
    entries, failures = _extract(tmp_path, path)
    assert failures == []
    assert {(entry.name, entry.path.read_bytes(), entry.size) for entry in entries} == {
        ("photos/a.png", b"a", 1), ("notes/b.txt", b"bb", 2)}


def test_escaping_and_absolute_paths_fail_alone_and_write_nothing_outside(tmp_path):
    path = _zip(tmp_path, {"../evil.png": b"evil", "/abs.png": b"abs", "a/../../up.txt": b"up", "ok.txt": b"ok"})
    entries, failures = _extract(tmp_path, path)
    assert [entry.name for entry in entries] == ["ok.txt"]
    reasons = {failure.name: failure.reason for failure in failures}
    assert set(reasons) == {"../evil.png", "/abs.png", "a/../../up.txt"}
    assert "escapes" in reasons["../evil.png"] and "absolute" in reasons["/abs.png"]
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "up.txt").exists()


def test_symlinks_are_not_extracted(tmp_path):
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _zip(tmp_path, {link: "/etc/passwd", "ok.txt": b"ok"})
    entries, failures = _extract(tmp_path, path)
    assert [entry.name for entry in entries] == ["ok.txt"]
    assert failures[0].name == "link.png" and "symbolic link" in failures[0].reason


def test_a_highly_compressed_member_is_refused_as_a_zip_bomb(tmp_path):
    path = _zip(tmp_path, {"bomb.txt": b"\0" * (8 * 1024 * 1024), "ok.txt": b"ok"})
    entries, failures = _extract(tmp_path, path)
    assert [entry.name for entry in entries] == ["ok.txt"]
    assert "zip bomb" in failures[0].reason
    assert not (tmp_path / "out" / "bomb.txt").exists()


def test_a_member_over_the_per_file_limit_fails_alone(tmp_path):
    path = _zip(tmp_path, {"big.bin": b"x" * 3000, "ok.txt": b"ok"})
    entries, failures = _extract(tmp_path, path, max_entry_bytes=1000)
    assert [entry.name for entry in entries] == ["ok.txt"]
    assert failures[0].name == "big.bin" and "limit" in failures[0].reason


def test_archive_wide_limits_refuse_the_whole_archive(tmp_path):
    many = _zip(tmp_path, {f"{index}.txt": b"x" for index in range(5)}, name="many.zip")
    with pytest.raises(UserInputError, match="many.zip: has 5 files; the limit is 3"):
        _extract(tmp_path, many, max_entries=3)
    large = _zip(tmp_path, {f"{index}.bin": bytes(range(256)) * 8 for index in range(4)}, name="large.zip")
    with pytest.raises(UserInputError, match="large.zip: expands to more than"):
        _extract(tmp_path, large, max_total_bytes=5000)


def test_not_a_zip_and_a_corrupt_member_get_named_reasons(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"this is not a zip")
    with pytest.raises(UserInputError, match="fake.zip: not a valid zip archive"):
        _extract(tmp_path, fake)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("a.txt", b"AAAAAAAAAAAAAAAA")
        archive.writestr("b.txt", b"fine")
    data = bytearray(buffer.getvalue())
    offset = data.index(b"AAAAAAAA")
    data[offset:offset + 4] = b"BBBB"  # the stored CRC no longer matches
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(data))
    entries, failures = _extract(tmp_path, corrupt)
    assert [entry.name for entry in entries] == ["b.txt"]
    assert failures[0].name == "a.txt" and "corrupt" in failures[0].reason
