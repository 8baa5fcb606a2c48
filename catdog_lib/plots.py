"""Figures for the notebooks. Every figure has a title that says what it shows."""
import matplotlib.pyplot as plt
from PIL import Image

from . import data


def sample_grid(dest=None, per_class=3, seed=None):
    """Show a few images of each class from every split, with their labels.

    Parameters
    ----------
    dest : path, optional
        A prepared split (default: ``data.prepared_dir()``).
    per_class : int
        Images per class and split.
    seed : int, optional
        Which images; defaults to ``config.SEED``.

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> from catdog_lib import plots
    >>> fig = plots.sample_grid()  # doctest: +SKIP
    """
    samples = data.sample_files(dest, per_class, seed)
    n_cols = 2 * per_class
    fig, axes = plt.subplots(len(samples), n_cols, figsize=(1.6 * n_cols, 1.9 * len(samples)),
                             squeeze=False)
    for row, (split, picks) in zip(axes, samples.items()):
        for ax, (path, label) in zip(row, picks):
            with Image.open(path) as img:
                ax.imshow(img)
            ax.set_title(f"{split}: {label[:-1]}", fontsize=8)
            ax.axis("off")
    fig.suptitle(f"Samples from each split: {data.describe(dest)}", fontsize=10)
    fig.tight_layout()
    return fig
