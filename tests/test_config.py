"""The one configuration place, read in fresh interpreters so the
environment variables take effect as they would for a student."""
import os
import subprocess
import sys

from conftest import REPO


def run_python(code, **env):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **env}, cwd=REPO)
    return result


def test_defaults_and_overrides(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATDOG_")}
    code = "from catdog_lib import config; print(config.PROFILE, config.SEED, config.DATA_DIR)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO).stdout.split()
    assert out == ["quick", "1", str(REPO / "data")]
    out = run_python(code, CATDOG_PROFILE="full", CATDOG_SEED="7",
                     CATDOG_DATA_DIR=str(tmp_path)).stdout.split()
    assert out == ["full", "7", str(tmp_path)]


def test_unknown_profile_is_a_clear_error():
    result = run_python("import catdog_lib", CATDOG_PROFILE="fast")
    assert result.returncode != 0
    assert "CATDOG_PROFILE='fast' is not a profile" in result.stderr


def test_tensorflow_log_noise_is_silenced_before_import():
    code = ("import os; from catdog_lib import data; import tensorflow as tf; "
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL']); tf.constant(1) + 1")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=REPO)
    assert result.stdout.strip() == "3"
    assert "cpu_feature_guard" not in result.stderr and "oneDNN" not in result.stderr
