"""The dataset step loses nothing: it deletes only what it made, one run at
a time writes a destination, a killed run leaves a whole dataset, and one
bad or huge source file is rejected on its own. Real files, real zips, real
processes (and a real kill -9)."""
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

import pytest
from PIL import Image

from catdog_lib import cli, data, toy
from conftest import REPO, SMALL_SIZES, tree_hashes

GIB = 2**30


def prepare(src, dest, **kw):
    return data.prepare_small_dataset(src, dest, sizes=SMALL_SIZES, **kw)


@pytest.fixture
def other_source(kaggle_dir, tmp_path):
    """The fixture's photos with cat.0.jpg replaced: another dataset."""
    folder = shutil.copytree(kaggle_dir, tmp_path / "other" / "train")
    Image.new("RGB", (50, 40), (10, 200, 90)).save(folder / "cat.0.jpg")
    return folder


# ------------------------------------------------------------- real zips

def deflated(raw):
    """A zip member's (compressed bytes, crc32, size) for ``raw``."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(raw) + packer.flush(), zlib.crc32(raw), len(raw)


def deflated_zeros(size):
    """A deflate stream of ``size`` zero bytes, made in milliseconds: after a
    full flush every MiB of zeros compresses to the same bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = packer.compress(bytes(2**20)) + packer.flush(zlib.Z_FULL_FLUSH)
    return mib * (size // 2**20) + packer.flush()


def write_zip(path, members):
    """A zip whose headers say what ``members`` say, true or not:
    ``{name: (compressed bytes, crc32, declared size)}``."""
    body, directory = bytearray(), bytearray()
    for name, (packed, crc, size) in members.items():
        name = name.encode()
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc,
                                 len(packed), size, len(name), 0, 0, 0, 0, 0, len(body)) + name
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(packed),
                            size, len(name), 0) + name + packed
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                      len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path


def zip_of(folder, path, replace=None):
    """The photos of ``folder`` as ``train/...`` in a zip, some replaced."""
    members = {f"train/{p.name}": deflated(p.read_bytes()) for p in sorted(folder.glob("*.jpg"))}
    for name, member in (replace or {}).items():
        members.pop(f"train/{name.rsplit('.', 1)[0]}.jpg", None)
        members[f"train/{name}"] = member
    return write_zip(path, members)


def png_header(width, height):
    """A small PNG whose header declares ``width`` x ``height`` pixels."""
    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))


# ------------------------------------------------------------- real processes

CHILD = """
import os, sys, time, types
# Preparing data needs no TensorFlow: skip the package's import of it (6 s).
package = types.ModuleType("catdog_lib")
package.__path__ = [{package!r}]
sys.modules["catdog_lib"] = package
from catdog_lib import data

def pause(*args):
    print("PAUSED", flush=True)
    time.sleep(60)

{setup}
data.prepare_small_dataset({source!r}, {dest!r}, sizes={sizes!r}, overwrite={overwrite!r})
# Peak resident memory since exec; ru_maxrss would include the pytest
# process's (with TensorFlow) that this child was forked from.
status = open("/proc/self/status").read()
print("peak memory MiB", int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


@pytest.fixture
def start(tmp_path):
    """Start ``prepare_small_dataset`` in a child process; ``setup`` is code
    run first there. Children still running at the end are killed."""
    children = []

    def start(source, dest, overwrite=False, setup=""):
        code = CHILD.format(package=str(REPO / "catdog_lib"), setup=setup, source=str(source),
                            dest=str(dest), sizes=SMALL_SIZES, overwrite=overwrite)
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, cwd=tmp_path)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()


def read_until(child, marker, seconds=30):
    """The child's output up to ``marker``, which must come within ``seconds``."""
    out, deadline = b"", time.monotonic() + seconds
    while marker.encode() not in out:
        ready = select.select([child.stdout], [], [], max(0, deadline - time.monotonic()))[0]
        chunk = os.read(child.stdout.fileno(), 4096) if ready else b""
        assert chunk, f"no {marker!r} from the child; it said: {out.decode()}"
        out += chunk
    return out.decode()


def finish(child):
    out = child.communicate(timeout=60)[0].decode()
    assert child.returncode == 0, out
    return out


def kill_9(child):
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


# ------------------------------------------------------------- deleting only what it made

def kaggle_train_folder(dest, kaggle_dir):
    (dest / "train").mkdir(parents=True)
    for path in sorted(kaggle_dir.glob("*.jpg"))[:10]:
        shutil.copy(path, dest / "train")
    (dest / "train" / "NOTES.txt").write_text("where these came from")


def prepared_without(name):
    def make(dest, kaggle_dir):
        prepare(kaggle_dir, dest)
        (dest / name).unlink()
    return make


def prepared_with_garbage_manifest(dest, kaggle_dir):
    prepare(kaggle_dir, dest)
    (dest / "manifest.csv").write_bytes(b"\xff\xfe\x00garbage")


def prepared_with_my_photo(dest, kaggle_dir):
    prepare(kaggle_dir, dest)
    (dest / "train" / "cats" / "my_cat.jpg").write_bytes(b"mine")


@pytest.mark.parametrize("make, named", [
    (kaggle_train_folder, "train/"),
    (prepared_without("source.json"), "manifest.csv"),
    (prepared_without("manifest.csv"), "source.json"),
    (prepared_with_garbage_manifest, "manifest.csv"),
    (prepared_with_my_photo, "train/cats/my_cat.jpg"),
], ids=["unzipped Kaggle train", "no source.json", "no manifest.csv", "unreadable manifest",
        "a photo of mine inside"])
def test_overwrite_replaces_only_what_this_program_prepared(make, named, kaggle_dir,
                                                             other_source, tmp_path):
    dest = tmp_path / "out"
    make(dest, kaggle_dir)
    before = tree_hashes(dest)
    with pytest.raises(data.DatasetError, match=f"{named}.*nothing was changed"):
        prepare(other_source, dest, overwrite=True)
    assert tree_hashes(dest) == before


def test_a_file_saved_into_the_dataset_while_it_is_replaced_is_kept(kaggle_dir, other_source,
                                                                    tmp_path, monkeypatch, capsys):
    dest = tmp_path / "out"
    prepare(kaggle_dir, dest)

    def student_saves_a_photo_then_swap(a, b, real=data._exchange):
        # The new split is written and checked; the swap has not happened yet.
        (dest / "train" / "cats" / "my_own_cat.jpg").write_bytes(b"mine")
        return real(a, b)

    monkeypatch.setattr(data, "_exchange", student_saves_a_photo_then_swap)
    assert prepare(other_source, dest, overwrite=True).copied == 24
    kept = [p for p in tmp_path.rglob("my_own_cat.jpg")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"mine"
    folder = kept[0].parents[2]
    assert folder.name.startswith("out.kept-") and folder.name in capsys.readouterr().out
    # Kept for the user: a later run never lists it as a work folder safe to delete.
    prepare(other_source, dest)
    assert "safe to delete" not in capsys.readouterr().out


def test_a_file_as_destination_is_left_alone(kaggle_dir, tmp_path):
    dest = tmp_path / "out"
    dest.write_text("my file")
    with pytest.raises(data.DatasetError, match="is a file"):
        prepare(kaggle_dir, dest, overwrite=True)
    assert dest.read_text() == "my file"


def test_work_folders_it_did_not_make_are_left_alone(kaggle_dir, other_source, tmp_path, capsys):
    dest = tmp_path / "small"
    look_alikes = [".small.partial", ".small.old", ".small.partial-1-abcdef"]
    for name in look_alikes:
        (tmp_path / name).mkdir()
        (tmp_path / name / "keep.txt").write_text(name)
    prepare(kaggle_dir, dest)
    assert prepare(other_source, dest, overwrite=True).copied == 24
    for name in look_alikes:
        assert (tmp_path / name / "keep.txt").read_text() == name
    # Its own work folders are gone: only the dataset and its lock are new.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*look_alikes, ".small.lock", "kaggle", "other", "small"])
    assert "safe to delete: .small.partial-1-abcdef" in capsys.readouterr().out


# ------------------------------------------------------------- one writer at a time

def test_two_runs_at_once_leave_one_whole_dataset(kaggle_dir, tmp_path, start):
    for attempt in range(4):
        dest = tmp_path / f"out{attempt}"
        # Both children sleep until the same moment, so their runs overlap.
        at_once = f"time.sleep(max(0, {time.time() + 1.5} - time.time()))"
        outputs = [finish(child) for child in [start(kaggle_dir, dest, setup=at_once)
                                               for _ in range(2)]]
        assert sorted("Copied 24 images" in out for out in outputs) == [False, True], outputs
        assert any("already prepared and verified" in out for out in outputs), outputs
        assert prepare(kaggle_dir, dest).copied == 0  # whole and verified


def test_a_toy_set_drawn_again_by_another_process_is_always_whole(tmp_path):
    """Two notebooks started together on a fresh machine both draw the toy
    set. While one draws it again over the files, the other must only ever
    see whole images, or the dataset step would reject some as damaged."""
    folder = toy.make_toy_set(tmp_path / "train", per_class=150, workers=1)
    whole = {p.name: p.read_bytes() for p in folder.glob("*.jpg")}
    (folder / "toy.json").unlink()  # as after an interrupted run: drawn again
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from catdog_lib import toy; "
            f"toy.make_toy_set({str(folder)!r}, per_class=150, workers=1)")
    child = subprocess.Popen([sys.executable, "-c", code])
    reads = 0
    try:
        while child.poll() is None:
            for name, expected in whole.items():
                assert (folder / name).read_bytes() == expected, f"{name} was read half-written"
                reads += 1
    finally:
        if child.poll() is None:
            child.kill()
    assert child.wait() == 0 and reads > len(whole)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*whole, "toy.json"])


def test_without_file_locks_the_run_says_so_and_writes_nothing(kaggle_dir, tmp_path, start):
    """As on Windows, where Python has no fcntl."""
    child = start(kaggle_dir, tmp_path / "small", setup="sys.modules['fcntl'] = None")
    out = child.communicate(timeout=60)[0].decode()
    assert child.returncode != 0
    assert "small: preparing a dataset needs file locks (Python's fcntl" in out, out
    assert "use WSL, Colab or Binder" in out
    assert not list(tmp_path.glob("*small*")) and not list(tmp_path.glob(".small*"))


def test_a_second_run_waits_and_a_killed_run_loses_nothing(kaggle_dir, other_source, tmp_path,
                                                            start, capsys):
    dest = tmp_path / "small"
    prepare(kaggle_dir, dest)
    before = tree_hashes(dest)
    first = start(other_source, dest, overwrite=True, setup="data._exchange = pause")
    read_until(first, "PAUSED")  # its new split is written, not yet swapped in
    second = start(other_source, dest, overwrite=True)
    read_until(second, f"Waiting for another catdog process (pid {first.pid})")
    kill_9(first)
    assert "Copied 24 images" in finish(second)
    assert tree_hashes(dest) != before
    capsys.readouterr()
    assert prepare(other_source, dest).copied == 0
    assert f".small.partial-{first.pid}-" in capsys.readouterr().out  # named, not deleted


def test_kill_9_before_the_swap_keeps_the_previous_dataset(kaggle_dir, other_source, tmp_path,
                                                            start):
    dest = tmp_path / "small"
    prepare(kaggle_dir, dest)
    before = tree_hashes(dest)
    child = start(other_source, dest, overwrite=True, setup="data._exchange = pause")
    read_until(child, "PAUSED")
    kill_9(child)
    assert tree_hashes(dest) == before
    assert prepare(kaggle_dir, dest).copied == 0


BETWEEN_TWO_RENAMES = """
data._exchange = lambda a, b: False   # as where renameat2 is missing
def rename(a, b, real=os.rename):
    real(a, b)
    if ".old-" in str(b):
        pause()
os.rename = rename
"""


def test_kill_9_between_two_renames_is_undone_by_the_next_run(kaggle_dir, other_source,
                                                               tmp_path, start, capsys):
    dest = tmp_path / "small"
    prepare(kaggle_dir, dest)
    before = tree_hashes(dest)
    child = start(other_source, dest, overwrite=True, setup=BETWEEN_TWO_RENAMES)
    read_until(child, "PAUSED")
    kill_9(child)
    assert not dest.exists()  # the moment the fallback cannot avoid
    capsys.readouterr()
    assert prepare(kaggle_dir, dest).copied == 0
    assert "Restored" in capsys.readouterr().out
    assert tree_hashes(dest) == before


def test_a_notebook_after_a_cut_swap_gets_the_previous_photos_back(kaggle_dir, other_source,
                                                                   data_root, start, monkeypatch,
                                                                   capsys):
    # Not the toy split beside it: the next notebook restores the real one first.
    monkeypatch.setenv("CATDOG_PROFILE", "quick")
    dest = data.default_dest("kaggle")
    prepare(kaggle_dir, dest)
    prepare(kaggle_dir, data.default_dest("toy"))  # a split where the toy one goes (seconds, not a minute)
    before = tree_hashes(dest)
    child = start(other_source, dest, overwrite=True, setup=BETWEEN_TWO_RENAMES)
    read_until(child, "PAUSED")
    kill_9(child)
    assert not dest.exists()
    capsys.readouterr()
    assert data.ensure_prepared() == dest
    assert "Restored" in capsys.readouterr().out
    assert tree_hashes(dest) == before


# ------------------------------------------------------------- every file judged alone

def test_two_files_for_one_name_stop_the_run(kaggle_dir, tmp_path):
    Image.new("RGB", (30, 30)).save(kaggle_dir / "cat.6.png")
    with pytest.raises(data.DatasetError, match=r"cat\.6\.jpg and .*cat\.6\.png would both"):
        prepare(kaggle_dir, tmp_path / "small")
    assert not (tmp_path / "small").exists()


def break_validation_cats(folder):
    for i in (6, 7, 8):
        (folder / f"cat.{i}.jpg").write_bytes(b"")
    return SMALL_SIZES


@pytest.mark.parametrize("make_sizes, empty", [
    (break_validation_cats, "validation/cats"),
    (lambda folder: {"train": 11, "validation": 3, "test": 3}, "validation/cats, validation/dogs"),
], ids=["all rejected", "none left over"])
def test_a_split_it_cannot_train_on_stops_the_run(make_sizes, empty, kaggle_dir, tmp_path):
    sizes = make_sizes(kaggle_dir)
    with pytest.raises(data.DatasetError, match=f"no usable images for {empty}"):
        data.prepare_small_dataset(kaggle_dir, tmp_path / "small", sizes=sizes)
    assert not (tmp_path / "small").exists()


def folder_with(make):
    def source(kaggle_dir, tmp_path):
        (kaggle_dir / "cat.3.jpg").unlink()
        return kaggle_dir, make(kaggle_dir)
    return source


def zip_with(name, member):
    def source(kaggle_dir, tmp_path):
        return zip_of(kaggle_dir, tmp_path / "train.zip", {name: member(kaggle_dir)}), name
    return source


def broken_link(folder):
    (folder / "cat.3.jpg").symlink_to(folder / "gone.jpg")
    return "cat.3.jpg"


def named_pipe(folder):
    os.mkfifo(folder / "cat.3.jpg")
    return "cat.3.jpg"


def too_big_file(folder):
    with open(folder / "cat.3.jpg", "wb") as f:
        f.truncate(data.MAX_FILE_BYTES + 1)  # sparse: takes no disk
    return "cat.3.jpg"


def bad_crc(folder):
    packed, crc, size = deflated((folder / "cat.3.jpg").read_bytes())
    return packed, crc ^ 1, size


@pytest.mark.parametrize("make_source, reason", [
    (zip_with("cat.3.jpg", bad_crc), "Bad CRC-32"),
    (zip_with("cat.3.png", lambda folder: deflated(png_header(20000, 20000))),
     "more than the limit of 64,000,000 pixels"),
    (zip_with("cat.3.png", lambda folder: deflated(png_header(9000, 9000))),
     "9000x9000 pixels, more than the limit of 64,000,000"),
    (zip_with("cat.3.jpg", lambda folder: (b"", 0, 3 * GIB // 2)),
     "unpacked, more than the limit"),
    (folder_with(broken_link), "cannot be read: No such file"),
    (folder_with(named_pipe), "not a regular file"),
    (folder_with(too_big_file), "67,108,865 bytes, more than the limit of 67,108,864"),
], ids=["zip member with a bad CRC", "20000x20000 pixels", "9000x9000 pixels",
        "zip member declaring 1.5 GiB", "broken link", "named pipe", "file over 64 MiB"])
def test_one_bad_file_is_rejected_and_the_run_goes_on(make_source, reason, kaggle_dir, tmp_path,
                                                      capsys):
    source, bad = make_source(kaggle_dir, tmp_path)
    result = prepare(source, tmp_path / "small")
    assert [origin.rsplit("/", 1)[-1] for origin, _ in result.problems] == [bad]
    assert reason in result.problems[0][1]
    assert result.copied == 23 and result.counts["train"] == {"cats": 5, "dogs": 6}
    assert "Kept: train 5 cats, 6 dogs" in capsys.readouterr().out
    assert reason in (tmp_path / "small" / "report.txt").read_text()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_rejected(kaggle_dir, tmp_path):
    (kaggle_dir / "cat.3.jpg").chmod(0)
    result = prepare(kaggle_dir, tmp_path / "small")
    assert result.problems == [(str(kaggle_dir / "cat.3.jpg"),
                                "cannot be read: Permission denied")]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory read from /proc")
def test_zip_bombs_are_rejected_in_little_memory(kaggle_dir, tmp_path, start):
    bomb = deflated_zeros(3 * GIB // 2)  # 1.5 MB that inflates to 1.5 GiB
    crc = 0
    for _ in range(3 * 2**9):
        crc = zlib.crc32(bytes(2**20), crc)
    archive = zip_of(kaggle_dir, tmp_path / "train.zip", {
        "cat.3.jpg": (bomb, crc, 3 * GIB // 2),  # says what it holds
        "dog.3.jpg": (bomb, crc, 5000),          # lies about it
    })
    out = finish(start(archive, tmp_path / "small"))
    assert "Copied 22 images" in out
    assert "cat.3.jpg: 1,610,612,736 bytes unpacked, more than the limit" in out
    assert "dog.3.jpg: cannot be read from the archive" in out
    peak = int(out.rsplit("peak memory MiB", 1)[1])
    assert peak < 100, out  # MiB: no member is ever inflated whole


# ------------------------------------------------------------- the command

def test_an_unusable_data_folder_stops_before_any_decoding(kaggle_dir, tmp_path, monkeypatch,
                                                           capsys):
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("CATDOG_DATA_DIR", str(tmp_path / "a file"))
    assert cli.main(["prepare-data", "--source", str(kaggle_dir)]) == 1
    printed = capsys.readouterr()
    assert printed.err.startswith("error: CATDOG_DATA_DIR") and "Traceback" not in printed.err
    assert "Source:" not in printed.out
