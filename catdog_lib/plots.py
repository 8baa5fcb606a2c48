"""Figures for the notebooks. Every figure has a title that says what it shows."""
import io

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from . import conv, data


def sample_grid(dest=None, per_class=3, seed=None):
    """Show a few images of each class from every split, with their labels.

    Parameters
    ----------
    dest : path, optional
        A prepared split (default: ``data.prepared_dir()``).
    per_class : int
        Images per class and split.
    seed : int, optional
        Which images; defaults to ``CATDOG_SEED``.

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


def _grid(n, width, height):
    """A figure of ``n`` panels, up to four per row, each ``width`` x ``height`` inches."""
    cols = min(max(n, 1), 4)
    rows = -(-max(n, 1) // cols)
    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)


def _show_map(ax, fmap, title):
    ax.imshow(fmap, cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x (pixels)", fontsize=8)
    ax.set_ylabel("y (pixels)", fontsize=8)
    ax.tick_params(labelsize=7)


def feature_maps(image, kernel_names):
    """The photo and one feature map per named kernel, in a grid.

    Parameters
    ----------
    image : array, (H, W)
        A grayscale image with values in [0, 1].
    kernel_names : list of str
        Keys of ``conv.KERNELS``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(kernel_names) + 1
    fig, axes = _grid(n, 3.2, 3)
    _show_map(axes[0, 0], image, f"input {image.shape[0]}x{image.shape[1]}")
    for ax, name in zip(axes.flat[1:], kernel_names):
        _show_map(ax, conv.conv2d(image, conv.kernel(name)), name)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.suptitle("One 3x3 kernel, slid over the whole photo, gives one feature map", fontsize=11)
    fig.tight_layout()
    return fig


def sliding_window(size=7, k=3, at=(2, 3), stride=1):
    """The picture of a convolution: a k x k window on the input, and the one
    output pixel it produces.

    Returns
    -------
    matplotlib.figure.Figure
    """
    out = conv.output_size(size, k, stride)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4),
                                      gridspec_kw={"width_ratios": [size, out]})
    for ax, n, title in ((left, size, f"input {size}x{size}"),
                         (right, out, f"feature map {out}x{out}")):
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)
        ax.set_xticks(range(n + 1))
        ax.set_yticks(range(n + 1))
        ax.grid(True, color="0.6")
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    row, col = at
    left.add_patch(plt.Rectangle((col * stride, row * stride), k, k, color="tab:orange", alpha=0.5))
    right.add_patch(plt.Rectangle((col, row), 1, 1, color="tab:orange"))
    fig.suptitle(f"The {k}x{k} window at row {row}, column {col} makes one output pixel; "
                 f"the same {k * k} weights are used at every position", fontsize=10)
    fig.tight_layout()
    return fig


def translation(image, kernel_name, dy, dx):
    """Shift the photo: the feature map shifts with it (equivariance), its
    global maximum barely changes (invariance).

    Returns
    -------
    matplotlib.figure.Figure
    """
    k = conv.kernel(kernel_name)
    moved = conv.shift(image, dy, dx)
    maps = [conv.conv2d(image, k), conv.conv2d(moved, k)]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    _show_map(axes[0], maps[0], f"{kernel_name}: original")
    _show_map(axes[1], maps[1], f"photo shifted by ({dy}, {dx}) px")
    _show_map(axes[2], np.abs(maps[1] - conv.shift(maps[0], dy, dx)),
              "|shifted map - map of shifted photo|")
    fig.suptitle(f"Global max: {maps[0].max():.3f} before, {maps[1].max():.3f} after the shift",
                 fontsize=10)
    fig.tight_layout()
    return fig


def conv_figure(image, kernel, stride=1, padding="valid"):
    """Input, kernel (with its numbers) and feature map, side by side.

    Returns
    -------
    matplotlib.figure.Figure
    """
    kernel = np.asarray(kernel, dtype="float32")
    fmap = conv.conv2d(image, kernel, stride, padding)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), gridspec_kw={"width_ratios": [3, 2, 3]})
    _show_map(axes[0], image, f"input {image.shape[0]}x{image.shape[1]}")
    axes[1].imshow(kernel, cmap="coolwarm", vmin=-np.abs(kernel).max(), vmax=np.abs(kernel).max())
    for (i, j), v in np.ndenumerate(kernel):
        axes[1].text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=11)
    axes[1].set_title("kernel (weights)", fontsize=9)
    axes[1].set_xticks(range(kernel.shape[1]))
    axes[1].set_yticks(range(kernel.shape[0]))
    axes[1].set_xlabel("kernel column", fontsize=8)
    axes[1].set_ylabel("kernel row", fontsize=8)
    _show_map(axes[2], fmap, f"feature map {fmap.shape[0]}x{fmap.shape[1]} "
                             f"(stride {stride}, {padding})")
    fig.tight_layout()
    return fig


def to_png(fig):
    """A figure as PNG bytes (and closed, so it is not shown twice)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def augmented_grid(image, augmentation, n=8, title=None):
    """One training image under ``n`` random draws of an augmentation, as in the book.

    Parameters
    ----------
    image : array, (H, W, 3)
        uint8 pixels.
    augmentation : keras.Layer
        E.g. ``augment.book_augmentation()``.
    n : int
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    batch = np.repeat(np.asarray(image, "float32")[None], n, axis=0)
    out = np.asarray(augmentation(batch, training=True))
    fig, axes = _grid(n, 2.4, 2.5)
    for i, ax in enumerate(axes.flat):
        if i < n:
            ax.imshow(np.clip(out[i], 0, 255).astype("uint8"))
            ax.set_title(f"random draw {i + 1}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title or "One training image, augmented at random", fontsize=10)
    fig.tight_layout()
    return fig


def _curves(ax, history, metric, colour, label, faded=False):
    """Training as dots and validation as a line, as in the book, one point per
    epoch, placed at the weight updates made by then: runs with different
    epoch lengths (or a short run and a long one) share one axis."""
    updates = history["updates"]
    alpha = 0.35 if faded else 1.0
    ax.plot(updates, history[metric], "o", color=colour, alpha=alpha, markersize=3.5,
            label=f"{label}: training")
    ax.plot(updates, history["val_" + metric], "-", color=colour, alpha=alpha,
            label=f"{label}: validation")
    ax.set_xlabel("weight updates (one point per epoch)")


def history(hist, title="Training and validation", reference=None):
    """The book's two figures: accuracy and loss per epoch, training against validation.

    Parameters
    ----------
    hist : dict
        From ``train.saved_history``.
    title : str
    reference : dict, optional
        A reference run from ``train.reference_history``; drawn faded behind,
        so a short run can be read against the whole story.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    for ax, metric in zip(axes, ("accuracy", "loss")):
        if reference:
            epochs = len(reference["history"]["loss"])
            _curves(ax, reference["history"], metric, "tab:gray",
                    f"reference ({epochs} epochs, real photos)", faded=True)
        _curves(ax, hist, metric, "tab:blue", "this run")
        if reference:  # a short run is a sliver of the long one: show where it lies
            ax.axvspan(0, hist["updates"][-1], color="tab:blue", alpha=0.08,
                       label=f"this run: {hist['updates'][-1]:,} updates")
        ax.set_title(f"{metric}: training (dots) and validation (line)")
        ax.set_ylabel(metric)
    # One legend below both plots: inside either it would hide the curves.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
               fontsize=8)
    fig.suptitle(title)
    return fig


def compare(histories, metric="accuracy"):
    """Training and validation curves of several runs on one plot (e.g. 03 against 04).

    Parameters
    ----------
    histories : dict
        ``{label: history}``; a None history is skipped.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(9.5, 4), layout="constrained")
    for (label, hist), colour in zip(histories.items(), plt.cm.tab10.colors):
        if hist:
            _curves(ax, hist, metric, colour, label)
    ax.set_title(f"{metric}, run against run: training (dots) and validation (line)")
    ax.set_ylabel(metric)
    fig.legend(loc="outside right upper", fontsize=8)  # beside the plot, off the curves
    return fig


def confusion(matrix, title="Test set: true class against predicted class"):
    """The 2x2 confusion matrix from ``train.evaluate``, with counts in the cells.

    Returns
    -------
    matplotlib.figure.Figure
    """
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, str(n), ha="center", va="center",
                color="white" if n > matrix.max() / 2 else "black", fontsize=13)
    ax.set_xticks([0, 1], ["cat", "dog"])
    ax.set_yticks([0, 1], ["cat", "dog"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def misclassified(wrong, title="The most confidently wrong test images"):
    """Images from ``train.evaluate(...)["wrong"]`` with the model's probability.

    When every probability lies within 0.1 of 0.5 the title says so: such a
    model is unsure of everything, not confidently wrong.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if wrong and all(abs(p_dog - 0.5) < 0.1 for _, _, p_dog in wrong):
        title = "Misclassified test images: uncertain (P(dog) within 0.1 of 0.5), not confidently wrong"
    fig, axes = _grid(len(wrong), 2.6, 2.8)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (image, label, p_dog) in zip(axes.flat, wrong):
        ax.imshow(np.asarray(image).astype("uint8"))
        ax.set_title(f"true {'dog' if label else 'cat'}\nP(dog) = {p_dog:.2f}", fontsize=9)
    fig.suptitle(title if wrong else "No test image was misclassified", fontsize=10)
    fig.tight_layout()
    return fig
