"""catdog_lib: the small helper package behind the catdog notebooks.

Import it by topic, as the notebooks do::

    from catdog_lib import data, plots

``config`` is imported first so TensorFlow's C++ log noise is silenced
before any module imports TensorFlow.
"""
from . import config  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
