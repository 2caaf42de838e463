"""`--out` writes to what the person named: a link's file, a device, a read pipe; a folder, a
disk device or a pipe nobody reads is refused; nothing a name stands for is ever replaced."""

from __future__ import annotations

import os
import select
import stat
import threading
from pathlib import Path

import pytest

from core.cli import EXIT_ERROR, EXIT_OK, main
from core.errors import TaglineError
from core.formats.exporting import atomic_write_text
from core.formats.output_paths import output_target
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder


def _scanned(folder: Path) -> Path:
    with ProjectStore(folder) as store:
        run_to_end(sync_folder(store))
    return folder


def test_a_link_is_followed_and_its_file_gets_the_new_content(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    real.chmod(0o600)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    atomic_write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600  # the person's permissions are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]  # no temporary file left


def test_a_dangling_link_gets_its_file_created(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "out" / "made.csv")
    atomic_write_text(link, "x\n")
    assert link.is_symlink() and (tmp_path / "out" / "made.csv").read_text() == "x\n"


def test_a_hard_linked_file_gets_a_new_file_and_its_other_name_keeps_the_old_content(sample_folder: Path,
                                                                                     tmp_path: Path) -> None:
    """A second name of a photo (or of the command's input) outside the folder cannot be told
    by its path: writing in place would write over the photo. The named path gets the export."""
    photo = sample_folder / "rocket.jpg"
    before = photo.read_bytes()
    second = tmp_path / "out.csv"
    os.link(photo, second)
    atomic_write_text(second, "ImageID,Labels\n")
    assert second.read_text() == "ImageID,Labels\n" and photo.read_bytes() == before
    assert photo.stat().st_ino != second.stat().st_ino


def test_a_character_device_is_written_not_replaced(tmp_path: Path) -> None:
    before = os.stat("/dev/null")
    atomic_write_text(Path("/dev/null"), "ImageID,Labels\n")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert not list(Path("/dev").glob(".null.*.tmp"))


def test_a_link_to_a_device_is_written_through(tmp_path: Path) -> None:
    link = tmp_path / "sink.csv"
    link.symlink_to("/dev/null")
    atomic_write_text(link, "x\n")
    assert link.is_symlink() and os.readlink(link) == "/dev/null" and stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_pipe_with_a_reader_gets_the_text_and_one_without_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(TaglineError, match="no program is reading"):
        atomic_write_text(fifo, "nobody listens\n")  # refused, not hung
    got: list[bytes] = []
    reader_ready = threading.Event()

    def read() -> None:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        reader_ready.set()
        # wait for the writer before a blocking read: read with no writer yet is an immediate EOF,
        # and the reader would close before the writer looked for it (a flaky race under load)
        select.select([fd], [], [], 10)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as handle:
            got.append(handle.read())

    thread = threading.Thread(target=read)
    thread.start()
    assert reader_ready.wait(5)
    atomic_write_text(fifo, "a,b\n" * 50_000)  # more than a pipe's buffer
    thread.join(10)
    assert not thread.is_alive() and got == [b"a,b\n" * 50_000]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(TaglineError, match="is a folder; name a file inside it"):
        atomic_write_text(folder, "x")
    link = tmp_path / "to-folder"
    link.symlink_to(folder)
    with pytest.raises(TaglineError, match="is a folder"):
        atomic_write_text(link, "x")
    assert (folder / "keep.txt").read_text() == "mine" and link.is_symlink()


def test_a_link_loop_and_a_missing_folder_are_refused_with_a_message(tmp_path: Path) -> None:
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    with pytest.raises(TaglineError, match="loop"):
        atomic_write_text(loop, "x")
    with pytest.raises(TaglineError, match="does not exist; create it first"):
        atomic_write_text(tmp_path / "nowhere" / "out.csv", "x")


def test_a_device_that_is_not_a_sink_or_terminal_is_refused(tmp_path: Path) -> None:
    """/dev/mem, /dev/port, /dev/kmsg...: writing a CSV there does harm. A device node of one is
    made here (root may; it is opened only to ask whether it is a terminal, never written)."""
    node = tmp_path / "mem"
    try:
        os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(1, 1))
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here")
    with pytest.raises(TaglineError, match="is a device; Tagline writes only to files, pipes, terminals and /dev/null"):
        output_target(node)
    full = tmp_path / "full"
    os.mknod(full, 0o600 | stat.S_IFCHR, os.makedev(1, 7))  # /dev/full's numbers: a sink, written, says so
    with pytest.raises(TaglineError, match="the disk is full"):
        atomic_write_text(full, "x\n")


def test_a_disk_device_or_socket_is_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(TaglineError, match="is a socket"):
            output_target(path)
    disks = [p for p in Path("/dev").iterdir() if p.exists() and stat.S_ISBLK(os.stat(p).st_mode)]
    if disks:  # only the path's kind is looked at: nothing is opened
        with pytest.raises(TaglineError, match="is a disk device"):
            output_target(disks[0])


@pytest.mark.parametrize("verb", [["export"], ["suggest", "-n", "2"]])
def test_cli_out_through_a_link_and_to_a_folder(verb: list[str], sample_folder: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _scanned(sample_folder)
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert main([verb[0], str(sample_folder), *verb[1:], "--out", str(link)]) == EXIT_OK
    assert link.is_symlink() and real.read_text().startswith("ImageID,")
    assert main([verb[0], str(sample_folder), *verb[1:], "--out", str(tmp_path)]) == EXIT_ERROR
    assert "is a folder" in capsys.readouterr().err
    assert main([verb[0], str(sample_folder), *verb[1:], "--out", "/dev/null"]) == EXIT_OK
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_sidecars_are_never_written_through_a_link_and_a_failure_half_way_says_what_was_written(
        sample_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from core.formats.exporting import collect_rows, export_sidecars

    outside = tmp_path / "outside.txt"
    outside.write_text("not the folder's\n")
    with ProjectStore(sample_folder) as store:
        run_to_end(sync_folder(store))
        images = store.images()
        for record in images:
            store.set_caption(record.id, f"caption of {record.relpath}", "typed")
        first = sample_folder / Path(images[0].relpath).with_suffix(".txt")
        first.symlink_to(outside)
        report = export_sidecars(store, collect_rows(store, "no model"), overwrite=True)
        assert outside.read_text() == "not the folder's\n" and first.is_symlink()
        assert report.written == len(images) - 1 and report.not_files == [first.name]
        assert "links, folders or pipes" in report.summary()
        calls = {"n": 0}
        real_fsync = os.fsync

        def full_on_the_third(fd: int) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", full_on_the_third)
        with pytest.raises(TaglineError) as caught:
            export_sidecars(store, collect_rows(store, "no model"), overwrite=True)
        message = str(caught.value)
        assert "the disk is full" in message and "2 caption files before it were written whole" in message
        assert "this change was not saved" not in message
