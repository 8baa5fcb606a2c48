"""catdog_lib: the small helper package behind the catdog notebooks.

Import it by topic, as the notebooks do::

    from catdog_lib import data, plots

Importing it first sets ``TF_CPP_MIN_LOG_LEVEL`` (in ``config``) and imports
TensorFlow without its C++ start-up lines (``startup``), so those never
reach a notebook; import ``catdog_lib`` before ``keras`` or ``tensorflow``.
"""
from . import config, startup

startup.import_tensorflow()
