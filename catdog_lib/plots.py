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
    fig.suptitle("Each 3x3 kernel, slid over the whole photo, gives one feature map", fontsize=11)
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
    _show_map(axes[1], maps[1], f"photo moved {dy} px down, {dx} px right")
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


def augmented_grid(image, augmentation, n=7, title=None):
    """One training image, then ``n`` random draws of an augmentation, as in the book.

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
    # The original first, so each draw can be compared with it.
    panels = [(np.asarray(image), "original")] + [(out[i], f"random draw {i + 1}") for i in range(n)]
    fig, axes = _grid(n + 1, 2.4, 2.5)
    for ax, (pixels, label) in zip(axes.flat, panels):
        ax.imshow(np.clip(pixels, 0, 255).astype("uint8"))
        ax.set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title or "One training image and random augmentations of it", fontsize=10)
    fig.tight_layout()
    return fig


def _curves(ax, history, metric, colour, label, faded=False, size=1.0):
    """Training as dots and validation as a line, as in the book, one point per
    epoch, placed at the weight updates made by then: runs with different
    epoch lengths (or a short run and a long one) share one axis. ``size``
    scales the markers."""
    updates = history["updates"]
    alpha, zorder = (0.35, 1) if faded else (1.0, 3)
    ax.plot(updates, history[metric], "o", color=colour, alpha=alpha, markersize=3.5 * size,
            zorder=zorder, label=f"{label}: training")
    # Another marker, so a one-epoch run's validation point is told from its training point.
    ax.plot(updates, history["val_" + metric], "s-", color=colour, alpha=alpha,
            markersize=3 * size, zorder=zorder, label=f"{label}: validation")
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
        ax.set_title(f"{metric}: training (dots) and validation (squares, line)")
        ax.set_ylabel(metric)
    # One legend below both plots: inside either it would hide the curves.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
               fontsize=8)
    fig.suptitle(title)
    return fig


def compare(histories, metric="accuracy", log_updates=False, references=None,
            title="Run against run"):
    """Training and validation curves of several runs on one plot (e.g. 03 against 04).

    Parameters
    ----------
    histories : dict
        ``{label: history}`` of this session's runs; a None history is skipped.
        Each run's markers are smaller than the one's before, so where two
        runs score the same the later one shows inside the earlier one.
    log_updates : bool
        A logarithmic axis of updates, so a short run beside long ones is
        not squeezed into the left edge.
    references : dict, optional
        ``{label: reference run}``, each as ``train.reference_history``
        returns it, keyed as in ``histories``: each is drawn faded, behind
        every run, in the colour of the run with the same label. A None
        reference (none committed) is skipped.
    title : str
        The first line of the title, e.g. which data your runs saw.

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> from catdog_lib import plots, train
    >>> run = {"accuracy": [0.6, 0.7], "val_accuracy": [0.6, 0.65], "updates": [100, 200]}
    >>> fig = plots.compare({"03 baseline": run},
    ...                     references={"03 baseline": train.reference_history("baseline")})
    >>> len(fig.axes[0].get_lines())  # the reference's two curves, then the run's
    4
    """
    references = references or {}
    fig, ax = plt.subplots(figsize=(9.5, 5), layout="constrained")
    labels = list(dict.fromkeys([*histories, *references]))
    colours = dict(zip(labels, plt.cm.tab10.colors))
    for label, reference in references.items():  # every reference first: behind every run
        if reference:
            hist = reference["history"]
            _curves(ax, hist, metric, colours[label],
                    f"{label}, reference ({len(hist['loss'])} epochs, real photos)", faded=True)
    runs = {label: hist for label, hist in histories.items() if hist}
    for k, (label, hist) in enumerate(runs.items()):
        _curves(ax, hist, metric, colours[label], f"{label}, your run",
                size=1 + 0.7 * (len(runs) - 1 - k))
    ax.set_title(f"{title}\n{metric}: training (dots) and validation (squares, line)")
    ax.set_ylabel(metric)
    if log_updates:
        ax.set_xscale("log")
        ax.set_xlabel("weight updates, logarithmic scale (one point per epoch)")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)  # below the plot, off the curves
    return fig


def confusion(matrix, title=None):
    """The 2x2 confusion matrix from ``train.evaluate``, with counts in the cells.

    Parameters
    ----------
    matrix : array-like
        ``[[cats called cats, cats called dogs], [dogs called cats, dogs called dogs]]``.
    title : str, optional
        By default it says how many test images the counts cover.

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> from catdog_lib import plots
    >>> plots.confusion([[30, 2], [5, 27]]).axes[0].get_title()
    'Test set (64 images): true class against predicted class'
    """
    matrix = np.asarray(matrix)
    if title is None:
        title = f"Test set ({matrix.sum():,} images): true class against predicted class"
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


def activation_grid(maps, n=8):
    """The first ``n`` channels of each layer's activation, a row per layer.

    Parameters
    ----------
    maps : list of (layer, array (h, w, channels))
        As ``explain.activations`` returns them.
    n : int
        Channels shown per layer.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(len(maps), n, figsize=(1.35 * n, 1.55 * len(maps)), squeeze=False)
    for row, (layer, fmap) in zip(axes, maps):
        for channel, ax in enumerate(row):
            ax.imshow(fmap[..., channel], cmap="viridis", vmin=0)
            ax.set_xticks([])
            ax.set_yticks([])
        h, w, c = fmap.shape
        row[0].set_ylabel(f"{layer.name}\n{h}x{w}x{c}", fontsize=8)
    for channel, ax in enumerate(axes[0]):
        ax.set_title(f"channel {channel}", fontsize=8)
    fig.suptitle(f"Channels 0-{n - 1} of every Conv2D and MaxPooling2D layer, for one photo: each "
                 "panel scaled from 0 to its own maximum, uniformly dark = silent", fontsize=10)
    fig.tight_layout()
    return fig


def _rgb_kernel(kernel):
    """A 3x3x3 kernel as a picture: its weights spread over 0..1, 0.5 for zero."""
    return np.clip(0.5 + kernel / (2 * np.abs(kernel).max() + 1e-12), 0, 1)


def first_layer_kernels(kernels, classic=("sobel x (vertical edges)", "blur")):
    """The first Conv2D layer's kernels as 3x3 RGB patches, each above its sum
    over the colours (what it does to brightness), beside notebook 01's kernels.

    Parameters
    ----------
    kernels : array (3, 3, 3, filters)
        The layer's weights, e.g. ``model.layers[1].get_weights()[0]``.
    classic : tuple of str
        Keys of ``conv.KERNELS``, drawn in grey.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n, cols = kernels.shape[-1], 8
    groups = -(-n // cols)
    fig, axes = plt.subplots(2 * groups, cols + 2, figsize=(1.05 * (cols + 1.3), 1.05 * 2 * groups),
                             squeeze=False, gridspec_kw={"width_ratios": [1, 0.3] + [1] * cols})
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for i in range(n):
        colour, grey = axes[2 * (i // cols), 2 + i % cols], axes[2 * (i // cols) + 1, 2 + i % cols]
        colour.imshow(_rgb_kernel(kernels[..., i]), interpolation="nearest")
        colour.set_title(str(i), fontsize=7)
        brightness = kernels[..., i].sum(axis=-1)
        limit = np.abs(brightness).max() + 1e-12
        grey.imshow(brightness, cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
    for ax, name in zip(axes[::2, 0], classic):  # beside the colour rows, not above a sum
        k = conv.kernel(name)
        ax.imshow(k, cmap="gray", vmin=-np.abs(k).max(), vmax=np.abs(k).max(), interpolation="nearest")
        ax.set_frame_on(True)  # the blur kernel is all bright: the frame shows where it is
        same = "\nall 9 equal: all white" if np.ptp(k) == 0 else ""
        ax.set_title(f"{name.split(' (')[0]} (notebook 01){same}", fontsize=7)
    fig.suptitle(f"The trained network's {n} first-layer kernels, 3x3 pixels: each pixel's red, "
                 "green and blue show its three weights (mid-grey: all 0)\nbelow each, its sum "
                 "over the colours (grey 0, bright positive, dark negative)", fontsize=9)
    fig.tight_layout()
    return fig


def _visible(image):
    """Gradient-ascent output made viewable, as the book does: centred,
    spread to a standard deviation of 0.1 of the range, clipped."""
    image = np.asarray(image, "float32")
    return np.clip(0.5 + 0.1 * (image - image.mean()) / (image.std() + 1e-5), 0, 1)


def filter_patterns(rows):
    """The images that excite chosen channels, a row per layer.

    Parameters
    ----------
    rows : list of (layer name, channels, images, before, after)
        ``images, before, after`` as ``explain.filter_patterns`` returns
        them for ``channels``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = max(len(channels) for _, channels, _, _, _ in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.7 * n, 1.95 * len(rows)), squeeze=False)
    for ax_row, (name, channels, images, before, after) in zip(axes, rows):
        for i, ax in enumerate(ax_row):
            ax.set_xticks([])
            ax.set_yticks([])
            if i >= len(channels):
                ax.set_frame_on(False)
                continue
            ax.imshow(_visible(images[i]))
            ax.set_title(f"ch {channels[i]}: {before[i]:.2f}->{after[i]:.2f}", fontsize=7)
        ax_row[0].set_ylabel(name, fontsize=8)
    fig.suptitle("What excites each channel: grey noise changed step by step to raise the channel's "
                 "mean activation (before->after)", fontsize=9)
    fig.tight_layout()
    return fig


def overlay(ax, image, heatmap):
    """Draw ``image`` in grey with ``heatmap`` (any resolution, 0..1) in colour over it.

    Grey, so that the photo's own colours are not mistaken for heat."""
    image = np.asarray(image, "float32")
    ax.imshow(image.mean(axis=-1), cmap="gray", vmin=0, vmax=255)
    ax.imshow(heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear",
              extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
    ax.set_xticks([])
    ax.set_yticks([])


def heatmaps(items, title):
    """Photos, each above its Grad-CAM heatmap.

    Parameters
    ----------
    items : list of (image, true label, p_dog, heatmap)
        ``true label`` 0 for a cat, 1 for a dog.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = max(len(items), 1)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n + 0.8, 5.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for (top, bottom), (image, label, p_dog, heatmap) in zip(axes.T, items):
        top.imshow(np.asarray(image).astype("uint8"))
        answer = "dog" if p_dog > 0.5 else "cat"
        top.set_title(f"true {'dog' if label else 'cat'}, says {answer}\nP(dog) = {p_dog:.2f}",
                      fontsize=9)
        overlay(bottom, image, heatmap)
    colours = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1))
    # Beside both rows, so the heatmaps stay as wide as the photos above them.
    bar = fig.colorbar(colours, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, shrink=0.45,
                       anchor=(0.0, 0.05))
    bar.set_ticks([0, 1], labels=["no evidence", "strongest in this photo"], fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def channel_spread(named, channels=16):
    """Each channel's values as a box, for a few stages of a network (notebook 06's batch norm).

    Parameters
    ----------
    named : dict
        ``{title: activations}``, each a batch of feature maps ``(N, H, W, C)``.
    channels : int
        How many channels to show.

    Returns
    -------
    matplotlib.figure.Figure
    """
    # One vertical scale for all, so the spreads can be compared by eye.
    fig, axes = plt.subplots(1, len(named), figsize=(5.5 * len(named), 3.8), layout="constrained",
                             sharey=True)
    for ax, (title, values) in zip(np.atleast_1d(axes), named.items()):
        values = np.asarray(values, "float32")
        per_channel = values.reshape(-1, values.shape[-1])[:, :channels].T
        ax.boxplot(list(per_channel), showfliers=False, whis=(5, 95))
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("channel")
    np.atleast_1d(axes)[0].set_ylabel("value (box: middle half; whiskers: 5-95%)")
    fig.suptitle("What each channel's values look like, over a batch of photos")
    return fig


def gradient_norms(named):
    """The size of each layer's weight gradient, layer by layer, for several networks.

    Parameters
    ----------
    named : dict
        ``{label: norms}``, norms from ``modern.gradient_norms``, first layer first.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    for label, norms in named.items():
        ax.semilogy(range(1, len(norms) + 1), norms, "o-", label=label)
    ax.set_xlabel("conv layer (1 = nearest the photo)")
    ax.set_ylabel("norm of the weight gradient (log scale)")
    ax.set_title("Size of each layer's weight gradient for one batch, before training")
    ax.legend()
    return fig


def side_by_side(counts, title):
    """Horizontal bars with their numbers, e.g. weights of Conv2D against SeparableConv2D.

    Parameters
    ----------
    counts : dict
        ``{label: number}``.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.5 * len(counts)), layout="constrained")
    labels, values = list(counts)[::-1], list(counts.values())[::-1]
    ax.barh(labels, values, color="tab:blue")
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:,}", va="center", fontsize=9)
    ax.set_xlim(0, max(values) * 1.25)
    ax.set_title(title, fontsize=10)
    return fig


def learning_rate(schedule, updates, micro_batches=1):
    """The learning rate each weight update of a run is made with.

    Keras steps a schedule at every batch, and with gradient accumulation
    it updates the weights at the last of each group of ``micro_batches``
    batches, with the rate of that batch.

    Parameters
    ----------
    schedule : keras.optimizers.schedules.LearningRateSchedule
    updates : int
    micro_batches : int
        Batches per update.

    Returns
    -------
    matplotlib.figure.Figure

    Example
    -------
    >>> import keras
    >>> from catdog_lib import plots
    >>> schedule = keras.optimizers.schedules.CosineDecay(1e-3, 10)
    >>> fig = plots.learning_rate(schedule, 5, micro_batches=2)
    >>> [round(float(rate), 6) for rate in fig.axes[0].lines[0].get_ydata()[:2]]
    [0.000976, 0.000794]
    """
    steps = np.arange(1, updates + 1)
    fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
    ax.plot(steps, [float(schedule(int(s * micro_batches - 1))) for s in steps], ".-",
            label="this run's schedule")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.axhline(1e-4, color="grey", linestyle="--", label="the book's RMSprop: 1e-4 throughout")
    ax.set_xlabel("weight update")
    ax.set_ylabel("learning rate")
    ax.set_title(f"The learning rate of each of this run's {updates} updates")
    ax.legend(fontsize=8)
    return fig
