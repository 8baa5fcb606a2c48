"""The download source, against a real HTTP server on 127.0.0.1."""
import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from catdog_lib import config, data


class Handler(http.server.BaseHTTPRequestHandler):
    files = {}
    release = threading.Event()  # a "/held" download sends its second half once this is set

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        cut = self.path.startswith("/cut")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.startswith("/held"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.release.wait(timeout=120)
            self.wfile.write(body[len(body) // 2:])
            return
        if self.path.startswith("/slow"):  # about 2 seconds, for a download to kill
            step = len(body) // 20 + 1
            for start in range(0, len(body), step):
                self.wfile.write(body[start:start + step])
                self.wfile.flush()
                time.sleep(0.1)
            return
        # A cut connection: promise the whole file, send half, hang up.
        self.wfile.write(body[: len(body) // 2] if cut else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def filtered_zip(kaggle_dir, tmp_path, monkeypatch):
    """A zip laid out like Google's: train/ holds 0-7, validation/ holds 20-23."""
    path = tmp_path / "filtered.zip"
    table = ["file\tsha256"]
    with zipfile.ZipFile(path, "w") as zf:
        for label, kind in (("cats", "cat"), ("dogs", "dog")):
            for i in range(12):
                split, number = ("train", i) if i < 8 else ("validation", 12 + i)
                raw = (kaggle_dir / f"{kind}.{i}.jpg").read_bytes()
                zf.writestr(f"cats_and_dogs_filtered/{split}/{label}/{kind}.{number}.jpg", raw)
                table.append(f"{kind}.{number}.jpg\t{hashlib.sha256(raw).hexdigest()}")
    canonical = tmp_path / "canonical.tsv"
    canonical.write_text("\n".join(table) + "\n")
    monkeypatch.setattr(config, "CANONICAL_TABLE", canonical)
    return path.read_bytes()


def serve(server, monkeypatch, name, body, size=None):
    Handler.files = {f"/{name}": body}
    monkeypatch.setattr(config, "FILTERED_URL", f"{server}/{name}")
    monkeypatch.setattr(config, "FILTERED_SIZE", len(body) if size is None else size)


def downloads(root):
    """Every file in the downloads folder but the lock that serializes downloads."""
    folder = root / "downloads"
    lock = ".cats_and_dogs_filtered.zip.lock"
    return sorted(p.name for p in folder.iterdir() if p.name != lock) if folder.exists() else []


def download_in_a_process(data_root):
    """``data.download_filtered()`` in a fresh Python, with this test's URL and size."""
    code = ("import sys; from catdog_lib import config, data; "
            "config.FILTERED_URL, config.FILTERED_SIZE = sys.argv[1], int(sys.argv[2]); "
            "print(data.download_filtered())")
    return subprocess.Popen(
        [sys.executable, "-c", code, config.FILTERED_URL, str(config.FILTERED_SIZE)],
        env={**os.environ, "CATDOG_DATA_DIR": str(data_root)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


SIZES = {"train": 8, "validation": 4, "test": 4}


def test_download_builds_all_three_splits(server, data_root, filtered_zip, monkeypatch, tmp_path,
                                          capsys):
    serve(server, monkeypatch, "ok.zip", filtered_zip)
    result = data.prepare_small_dataset("download", tmp_path / "small", sizes=SIZES)
    assert downloads(data_root) == ["cats_and_dogs_filtered.zip"]
    assert result.counts == {"train": {"cats": 8, "dogs": 8}, "validation": {"cats": 2, "dogs": 2},
                             "test": {"cats": 2, "dogs": 2}}
    assert result.canonical == 24
    assert "2000-2499" in capsys.readouterr().out  # it says its validation numbers differ
    assert sorted(p.name for p in (tmp_path / "small" / "test" / "cats").iterdir()) == \
        ["cat.22.jpg", "cat.23.jpg"]
    # Cached: a second call works with the server gone.
    Handler.files = {}
    assert data.prepare_small_dataset("download", tmp_path / "small", sizes=SIZES).copied == 0


def test_wrong_size_is_an_error_and_leaves_nothing(server, data_root, filtered_zip, monkeypatch):
    serve(server, monkeypatch, "ok.zip", filtered_zip, size=len(filtered_zip) + 1)
    with pytest.raises(data.DatasetError, match=r"download has [\d,]+ bytes but the archive is"):
        data.download_filtered()
    assert downloads(data_root) == []


def test_corrupt_archive_is_an_error_and_leaves_nothing(server, data_root, filtered_zip,
                                                        monkeypatch):
    body = bytearray(filtered_zip)
    body[len(body) // 3] ^= 0xFF  # one flipped byte inside an image
    serve(server, monkeypatch, "bad.zip", bytes(body))
    with pytest.raises(data.DatasetError, match="corrupt"):
        data.download_filtered()
    assert downloads(data_root) == []


def test_cut_connection_is_an_error_and_leaves_nothing(server, data_root, filtered_zip,
                                                       monkeypatch):
    serve(server, monkeypatch, "cut.zip", filtered_zip)
    with pytest.raises(data.DatasetError, match="download of .* failed"):
        data.download_filtered()
    assert downloads(data_root) == []


def test_altered_images_in_the_archive_are_caught(server, data_root, filtered_zip, monkeypatch,
                                                  tmp_path):
    config.CANONICAL_TABLE.write_text(config.CANONICAL_TABLE.read_text().replace("\tf", "\t0"))
    serve(server, monkeypatch, "ok.zip", filtered_zip)
    with pytest.raises(data.DatasetError, match="match the Kaggle originals"):
        data.prepare_small_dataset("download", tmp_path / "small", sizes=SIZES)


def test_unreachable_download_falls_back_to_the_toy_set(data_root, monkeypatch, tmp_path):
    monkeypatch.setenv("CATDOG_PROFILE", "quick")
    monkeypatch.delenv("CATDOG_KAGGLE_TRAIN", raising=False)
    monkeypatch.setattr(config, "FILTERED_URL", "http://127.0.0.1:9/none.zip")
    toy_src = tmp_path / "toy"
    monkeypatch.setattr(data.toy, "make_toy_set",
                        lambda real=data.toy.make_toy_set: real(toy_src, per_class=12, workers=1))
    result = data.prepare_small_dataset(sizes={"train": 6, "validation": 3, "test": 3})
    assert result.source == "toy"
    assert result.dest == data_root / "cats_and_dogs_small_toy"
    assert data.describe(result.dest).startswith("GENERATED toy images")


def wait_for_partial_data(data_root, child):
    """Until ``child`` has written some of the archive under its work name."""
    folder, deadline = data_root / "downloads", time.monotonic() + 60
    while not any(p.name.startswith(".cats_and_dogs_filtered.zip.partial-") and p.stat().st_size
                  for p in folder.glob(".*")):
        assert time.monotonic() < deadline and child.poll() is None, "no download started"
        time.sleep(0.05)


def test_two_downloads_at_once_both_end_with_the_whole_archive(server, data_root, filtered_zip,
                                                               monkeypatch):
    # Two notebooks started together: the second waits for the first's download.
    serve(server, monkeypatch, "held.zip", filtered_zip)
    Handler.release.clear()
    first = download_in_a_process(data_root)
    children = [first]
    try:
        wait_for_partial_data(data_root, first)  # half the archive is in; the rest is held
        second = download_in_a_process(data_root)
        children.append(second)
        waiting = second.stdout.readline()
        Handler.release.set()
        outputs = [p.communicate(timeout=120)[0] for p in children]
    finally:
        Handler.release.set()
        for child in children:
            if child.poll() is None:
                child.kill()
    assert waiting.startswith("Waiting for another catdog process (pid "), waiting
    assert [p.returncode for p in children] == [0, 0], outputs
    assert downloads(data_root) == ["cats_and_dogs_filtered.zip"]
    assert (data_root / "downloads" / "cats_and_dogs_filtered.zip").read_bytes() == filtered_zip


def test_a_killed_download_leaves_no_archive_and_the_next_one_works(server, data_root,
                                                                   filtered_zip, monkeypatch,
                                                                   capsys):
    serve(server, monkeypatch, "slow.zip", filtered_zip)
    killed = download_in_a_process(data_root)
    try:
        wait_for_partial_data(data_root, killed)
    finally:
        killed.send_signal(signal.SIGKILL)  # a kernel restart: no Python clean-up runs
    killed.wait()
    left = [name for name in downloads(data_root) if name != "cats_and_dogs_filtered.zip"]
    assert len(left) == 1 and "cats_and_dogs_filtered.zip" not in downloads(data_root)

    path = data.download_filtered()
    assert path.read_bytes() == filtered_zip
    assert left[0] in capsys.readouterr().out  # named for the user, who may delete it
    assert downloads(data_root) == sorted(["cats_and_dogs_filtered.zip", left[0]])


def test_a_damaged_archive_under_the_name_is_kept_aside_and_downloaded_again(
        server, data_root, filtered_zip, monkeypatch, capsys):
    # As an older catdog's cut download left it: half the archive under the final name.
    (data_root / "downloads").mkdir()
    (data_root / "downloads" / "cats_and_dogs_filtered.zip").write_bytes(filtered_zip[:1000])
    serve(server, monkeypatch, "ok.zip", filtered_zip)
    path = data.download_filtered()
    assert path.read_bytes() == filtered_zip
    out = capsys.readouterr().out
    assert "was not a whole archive (has 1,000 bytes" in out
    aside = [n for n in downloads(data_root) if n.startswith("cats_and_dogs_filtered.zip.damaged-")]
    assert len(aside) == 1 and aside[0] in out
    assert (data_root / "downloads" / aside[0]).read_bytes() == filtered_zip[:1000]
    # Kept for the user: never listed among the work files that are safe to delete.
    data._mention_leftovers(path)
    assert capsys.readouterr().out == ""
