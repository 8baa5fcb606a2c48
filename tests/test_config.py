"""The one configuration place: settings are read when used, checked where
they are read, and relative paths start at the project root."""
import os
import subprocess
import sys

import pytest

from catdog_lib import config, startup
from conftest import REPO


def run_python(code, cwd=REPO, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CATDOG_")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**clean, **env}, cwd=cwd)


def test_defaults_and_overrides(tmp_path):
    code = ("from catdog_lib import config; print(config.profile()['name'], config.seed(), "
            "config.data_dir(), config.runs_dir(), config.precision(), config.deterministic())")
    assert run_python(code).stdout.split() == ["quick", "1", str(REPO / "data"),
                                               str(REPO / "runs"), "auto", "False"]
    out = run_python(code, CATDOG_PROFILE="full", CATDOG_SEED="7", CATDOG_DATA_DIR=str(tmp_path),
                     CATDOG_RUNS_DIR="elsewhere/runs", CATDOG_PRECISION="mixed_float16",
                     CATDOG_DETERMINISTIC="1").stdout.split()
    assert out == ["full", "7", str(tmp_path), str(REPO / "elsewhere" / "runs"), "mixed_float16",
                   "True"]


def test_settings_are_read_when_used_not_at_import(monkeypatch):
    monkeypatch.setenv("CATDOG_PROFILE", "quick")
    monkeypatch.delenv("CATDOG_UNATTENDED", raising=False)
    assert not config.unattended()
    monkeypatch.setenv("CATDOG_PROFILE", "smoke")
    assert config.profile()["name"] == "smoke" and config.unattended()
    monkeypatch.setenv("CATDOG_SEED", "5")
    assert config.seed() == 5


def test_relative_paths_start_at_the_project_root_from_any_folder(tmp_path):
    code = "from catdog_lib import config; print(config.data_dir())"
    out = run_python(code, cwd=tmp_path, CATDOG_DATA_DIR="my-data").stdout.strip()
    assert out == str(REPO / "my-data")


@pytest.mark.parametrize("variable, value, message", [
    ("CATDOG_PROFILE", "fast", "CATDOG_PROFILE='fast' is not allowed; choose one of smoke, quick, full"),
    ("CATDOG_SEED", "abc", "CATDOG_SEED='abc' is not allowed; give a whole number"),
    ("CATDOG_SEED", "-3", "CATDOG_SEED='-3' is not allowed"),
    ("CATDOG_SEED", "\u00b2", "CATDOG_SEED='\u00b2' is not allowed; give a whole number"),
    ("CATDOG_DATA_DIR", "~no-such-user-here/data", "CATDOG_DATA_DIR='~no-such-user-here/data': "),
    ("CATDOG_KAGGLE_TRAIN", "~no-such-user-here/train",
     "CATDOG_KAGGLE_TRAIN='~no-such-user-here/train': "),
    ("CATDOG_PRECISION", "fp16", "CATDOG_PRECISION='fp16' is not allowed; choose one of auto, "
     "float32, mixed_bfloat16, mixed_float16"),
    ("CATDOG_DETERMINISTIC", "yes", "CATDOG_DETERMINISTIC='yes' is not allowed; choose one of 0, 1"),
    ("CATDOG_UNATTENDED", "true", "CATDOG_UNATTENDED='true' is not allowed; choose one of 0, 1"),
])
def test_a_bad_value_names_the_variable_the_value_and_what_is_allowed(monkeypatch, variable,
                                                                       value, message):
    monkeypatch.setenv(variable, value)
    reader = {"CATDOG_PROFILE": config.profile, "CATDOG_SEED": config.seed,
              "CATDOG_PRECISION": config.precision, "CATDOG_DETERMINISTIC": config.deterministic,
              "CATDOG_UNATTENDED": config.unattended, "CATDOG_DATA_DIR": config.data_dir,
              "CATDOG_KAGGLE_TRAIN": config.kaggle_train}[variable]
    with pytest.raises(config.SettingError) as err:
        reader()
    assert message in str(err.value)


def test_a_data_dir_that_is_a_file_or_unwritable_is_named(tmp_path, monkeypatch):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    monkeypatch.setenv("CATDOG_DATA_DIR", str(a_file))
    with pytest.raises(config.SettingError, match="CATDOG_DATA_DIR=.*notes.txt.*is a file, not a folder"):
        config.data_dir()
    monkeypatch.setenv("CATDOG_RUNS_DIR", str(a_file / "runs"))  # cannot be made, even by root
    with pytest.raises(config.SettingError, match="CATDOG_RUNS_DIR: cannot create .*notes.txt/runs"):
        config.writable_dir("CATDOG_RUNS_DIR")


def test_the_command_line_says_what_is_wrong_without_a_traceback(tmp_path):
    result = run_python("from catdog_lib.cli import main; raise SystemExit(main(['prepare-data']))",
                        CATDOG_SEED="abc", CATDOG_DATA_DIR=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: CATDOG_SEED='abc' is not allowed; "
                                     "give a whole number from 0 to 4294967295")


@pytest.mark.parametrize("arguments, environment, message", [
    (["run", "03", "--out", "OUT"], {"CATDOG_PROFILE": "bogus"},
     "error: CATDOG_PROFILE='bogus' is not allowed; choose one of smoke, quick, full"),
    (["refresh-notebooks"], {"CATDOG_PROFILE": "bogus"},
     "error: CATDOG_PROFILE='bogus' is not allowed; choose one of smoke, quick, full"),
    (["run", "1.5", "--out", "OUT"], {}, "argument NUMBER: '1.5' is not a notebook number such as 03"),
])
def test_every_command_names_a_bad_setting_or_argument_without_a_traceback(
        tmp_path, arguments, environment, message):
    arguments = [str(tmp_path / "build") if a == "OUT" else a for a in arguments]
    result = run_python(f"from catdog_lib.cli import main; raise SystemExit(main({arguments!r}))",
                        CATDOG_DATA_DIR=str(tmp_path), CATDOG_RUNS_DIR=str(tmp_path), **environment)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "build").exists()  # stopped before writing anything


def test_tensorflow_start_up_lines_never_reach_the_output():
    # Level 0 makes TensorFlow log its start-up lines on every CPU (this one
    # included), as some CPUs do whatever the level: none may get through.
    code = ("from catdog_lib import models; import tensorflow as tf, numpy as np\n"
            "model = models.baseline_convnet()\n"
            "model.train_on_batch(np.zeros((2, 150, 150, 3), 'uint8'), np.zeros((2, 1)))\n"
            "print(float(tf.constant(1.0) + 1))")
    result = run_python(code, TF_CPP_MIN_LOG_LEVEL="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2.0"
    assert startup.without_tf_log_lines(result.stderr) == result.stderr, result.stderr
    assert "cpu_feature_guard" not in result.stderr and "oneDNN" not in result.stderr
    assert "cuda" not in result.stderr.lower(), result.stderr


def test_micro_batches_must_split_an_update_evenly():
    assert [config.micro_batch_size(m) for m in (1, 2, 4)] == [32, 16, 8]
    for bad in (3, 0, -2, 64, 2.0, True, "2"):
        with pytest.raises(ValueError, match=r"MICRO_BATCHES = .* parameters cell"):
            config.micro_batch_size(bad)
