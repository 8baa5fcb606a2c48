"""Import TensorFlow without its C++ start-up lines.

TensorFlow's C++ library logs a few lines while it loads and finds its
devices ("Could not find cuda drivers", "oneDNN custom operations are on",
which CPU instructions it could use). ``TF_CPP_MIN_LOG_LEVEL=3`` hides them
on some machines, but lines logged before abseil's logging is initialised
ignore it, and which lines appear depends on the CPU. They are noise to a
student, so they are caught at the file-descriptor level, where C++ writes,
and only lines that are not TensorFlow's log lines are passed on.
"""
import os
import re
import sys
import tempfile

# "I0000 00:00:1700000000.000000  123 cpu_feature_guard.cc:210] ...",
# "2024-01-01 12:00:00.000000: I tensorflow/core/util/port.cc:113] ...",
# abseil's "WARNING: All log messages before absl::InitializeLog() ...", and
# the second line of cpu_feature_guard's message.
TF_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\)"
    r"|To enable the following instructions:)")


def without_tf_log_lines(text):
    """``text`` less TensorFlow's C++ log lines.

    Example
    -------
    >>> from catdog_lib import startup
    >>> startup.without_tf_log_lines(
    ...     "I0000 00:00:1795973736.851660    3473 cudart_stub.cc:31] Could not find cuda drivers\\n"
    ...     "UserWarning: kept\\n")
    'UserWarning: kept\\n'
    """
    return "".join(line for line in text.splitlines(keepends=True)
                   if not TF_LOG_LINE.match(line))


def import_tensorflow():
    """Import TensorFlow and list its devices with standard error caught;
    pass on what was not a TensorFlow log line. Does nothing the second time."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_logical_devices()  # device set-up logs its own lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            sys.stderr.write(without_tf_log_lines(caught.read()))
