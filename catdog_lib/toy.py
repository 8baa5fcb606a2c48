"""A generated cats-and-dogs set, so every notebook runs offline.

The drawings are cartoons, not photos, but they keep what makes the task a
vision problem: a cat has pointed ears, slit pupils and whiskers; a dog has
floppy or rounded ears, a long muzzle and often a tongue. Everything else
(fur colour and pattern, pose, scale, position, clutter, light, JPEG quality,
image size) varies the same way for both classes, so only shape tells them
apart. Some cats hide their whiskers and some dogs prick their ears, so the
book's convnet learns the set well above chance but not perfectly.

The files use the Kaggle layout and names (``train/cat.0.jpg`` ...), so the
dataset step treats them exactly like the real photos.
"""
import json
import math
import os
import secrets
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from . import config

TOY_VERSION = 2
FUR = [(230, 140, 60), (90, 60, 40), (40, 40, 40), (200, 200, 200), (240, 230, 210),
       (150, 110, 70), (120, 120, 130), (210, 170, 110), (60, 50, 45), (250, 250, 245)]


def _colour(rng, base, spread=25):
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)


def _background(rng, w, h):
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    img = Image.fromarray((top * (1 - t) + bottom * t).repeat(w, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 9)):
        x0, y0 = rng.integers(-w // 4, w), rng.integers(-h // 4, h)
        x1, y1 = x0 + rng.integers(w // 10, w // 2 + 2), y0 + rng.integers(h // 10, h // 2 + 2)
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(3)
        if shape == 0:
            draw.rectangle([x0, y0, x1, y1], fill=fill)
        elif shape == 1:
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        else:
            draw.line([x0, y0, x1, y1], fill=fill, width=int(rng.integers(1, 6)))
    return img


def _fur_pattern(rng, draw, box, fur):
    x0, y0, x1, y1 = box
    kind = rng.choice(["plain", "stripes", "spots"])
    dark = _colour(rng, tuple(c // 2 for c in fur))
    if kind == "stripes":
        for x in np.arange(x0, x1, max(4, (x1 - x0) // 8)):
            draw.line([x, y0, x + (x1 - x0) // 6, y1], fill=dark, width=max(2, (x1 - x0) // 30))
    elif kind == "spots":
        for _ in range(rng.integers(3, 9)):
            cx, cy = rng.integers(x0, x1), rng.integers(y0, y1)
            s = rng.integers(3, max(4, (x1 - x0) // 6))
            draw.ellipse([cx - s, cy - s, cx + s, cy + s], fill=dark)


def _eye(rng, draw, cx, cy, r, slit):
    iris = _colour(rng, (120, 170, 60) if slit else (90, 60, 30), 40)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=iris, outline=(0, 0, 0))
    if slit:
        draw.ellipse([cx - r / 4, cy - r * 0.95, cx + r / 4, cy + r * 0.95], fill=(0, 0, 0))
    else:
        draw.ellipse([cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2], fill=(0, 0, 0))
    draw.ellipse([cx - r / 2, cy - r / 2, cx - r / 5, cy - r / 5], fill=(255, 255, 255))


def _animal(rng, is_cat, r):
    """One head with a hint of body, on a transparent layer of side 4r."""
    side = 4 * r
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    fur = _colour(rng, FUR[rng.integers(len(FUR))])
    ear_fur = _colour(rng, fur, 15)
    cx, cy = side // 2, side // 2
    # Body first, so the head sits in front of it.
    bw, bh = r * rng.uniform(1.1, 1.8), r * rng.uniform(0.8, 1.4)
    draw.ellipse([cx - bw, cy + r * 0.6, cx + bw, cy + r * 0.6 + 2 * bh], fill=fur)

    pointed = is_cat != (rng.random() < 0.08)  # a few dogs prick their ears, a few cats fold them
    if pointed:
        for side_sign in (-1, 1):
            base = cx + side_sign * r * rng.uniform(0.35, 0.75)
            tip = (base + side_sign * r * rng.uniform(0.0, 0.4), cy - r * rng.uniform(1.35, 1.8))
            draw.polygon([(base - r * 0.38, cy - r * 0.5), (base + r * 0.38, cy - r * 0.5), tip], fill=ear_fur)
    elif rng.random() < 0.7:  # floppy ears hang beside the head
        for side_sign in (-1, 1):
            ex = cx + side_sign * r * 0.95
            draw.ellipse([ex - r * 0.32, cy - r * 0.6, ex + r * 0.32, cy + r * rng.uniform(0.4, 0.9)],
                         fill=_colour(rng, tuple(c // 2 + 40 for c in fur)))
    else:  # small rounded ears on top
        for side_sign in (-1, 1):
            ex = cx + side_sign * r * 0.6
            draw.ellipse([ex - r * 0.35, cy - r * 1.25, ex + r * 0.35, cy - r * 0.55], fill=ear_fur)

    head = [cx - r, cy - r * rng.uniform(0.85, 1.0), cx + r, cy + r * rng.uniform(0.85, 1.0)]
    draw.ellipse(head, fill=fur)
    _fur_pattern(rng, draw, [int(v) for v in head], fur)

    eye_r = r * rng.uniform(0.13, 0.2)
    for side_sign in (-1, 1):
        _eye(rng, draw, cx + side_sign * r * 0.4, cy - r * 0.2, eye_r, slit=is_cat)

    muzzle = _colour(rng, tuple(min(255, c + 50) for c in fur))
    if is_cat:
        draw.ellipse([cx - r * 0.35, cy + r * 0.1, cx + r * 0.35, cy + r * 0.5], fill=muzzle)
        draw.polygon([(cx - r * 0.1, cy + r * 0.15), (cx + r * 0.1, cy + r * 0.15), (cx, cy + r * 0.27)],
                     fill=(230, 120, 140))
        if rng.random() < 0.85:
            for side_sign in (-1, 1):
                for k in (-1, 0, 1):
                    draw.line([cx + side_sign * r * 0.2, cy + r * 0.3,
                               cx + side_sign * r * 1.3, cy + r * (0.3 + 0.18 * k)],
                              fill=(250, 250, 250) if sum(fur) < 400 else (30, 30, 30), width=max(1, r // 30))
    else:
        length = r * rng.uniform(0.6, 1.0)
        draw.ellipse([cx - r * 0.45, cy, cx + r * 0.45, cy + length], fill=muzzle)
        draw.ellipse([cx - r * 0.2, cy + r * 0.05, cx + r * 0.2, cy + r * 0.3], fill=(20, 20, 20))
        if rng.random() < 0.7:
            draw.ellipse([cx - r * 0.17, cy + length * 0.8, cx + r * 0.17, cy + length + r * 0.35],
                         fill=_colour(rng, (225, 90, 110), 20))
    return layer


def draw_image(kind, index, seed=None):
    """Draw one toy image.

    Parameters
    ----------
    kind : {"cat", "dog"}
    index : int
        The image number; with the seed it fixes every random choice.
    seed : int, optional
        Defaults to ``config.seed()``.

    Returns
    -------
    PIL.Image.Image
        An RGB image between about 60 and 500 pixels on a side.

    Example
    -------
    >>> from catdog_lib import toy
    >>> toy.draw_image("cat", 0).mode
    'RGB'
    """
    seed = config.seed() if seed is None else seed
    rng = np.random.default_rng([seed, kind == "dog", index])
    w = int(rng.integers(60, 501))
    h = int(np.clip(w * rng.uniform(0.6, 1.3), 60, 500))
    img = _background(rng, w, h)
    r = int(max(8, min(w, h) * rng.uniform(0.22, 0.4)))
    layer = _animal(rng, kind == "cat", r)
    layer = layer.rotate(float(rng.uniform(-30, 30)), resample=Image.BICUBIC)
    if rng.random() < 0.5:
        layer = layer.transpose(Image.FLIP_LEFT_RIGHT)
    x = int(rng.integers(-r, max(-r + 1, w - 3 * r)))
    y = int(rng.integers(-r, max(-r + 1, h - 3 * r)))
    img.paste(layer, (x, y), layer)
    img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.55, 1.35)))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
    return img


def write_whole(path, write):
    """Write through a hidden file beside ``path``, then rename it over ``path``:
    another process drawing the same set at once (two notebooks started together)
    must never read a half-written image, and a full disk or a kill leaves the
    previous file (``train`` writes its run files through it too). The hidden name is not a Kaggle name,
    so the dataset step never takes one left by a kill for an image."""
    partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.part")
    f = open(partial, "xb")
    try:
        with f:
            write(f)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise


def _write_one(args):
    kind, index, seed, folder = args
    quality = int(np.random.default_rng([seed, kind == "dog", index, 1]).integers(40, 96))
    image = draw_image(kind, index, seed)
    write_whole(Path(folder) / f"{kind}.{index}.jpg",
                 lambda f: image.save(f, format="JPEG", quality=quality))


def make_toy_set(dest=None, per_class=2000, seed=None, workers=2):
    """Write the toy set in the Kaggle layout, or reuse it if already there.

    Parameters
    ----------
    dest : path, optional
        The folder to fill (default ``config.data_dir() / "toy" / "train"``).
    per_class : int
        Images per class; 2,000 matches the book's source folder.
    seed : int, optional
        Defaults to ``config.seed()``.
    workers : int
        Processes drawing in parallel.

    Returns
    -------
    pathlib.Path
        The folder holding ``cat.N.jpg`` and ``dog.N.jpg``.

    Example
    -------
    >>> import tempfile
    >>> from catdog_lib import toy
    >>> folder = toy.make_toy_set(tempfile.mkdtemp(), per_class=3)
    >>> sorted(p.name for p in folder.glob("*.jpg"))[:2]
    ['cat.0.jpg', 'cat.1.jpg']
    """
    seed = config.seed() if seed is None else seed
    dest = Path(dest or config.data_dir() / "toy" / "train")
    stamp = dest / "toy.json"
    wanted = {"version": TOY_VERSION, "seed": seed, "per_class": per_class}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    jobs = [(kind, i, seed, str(dest)) for kind in ("cat", "dog") for i in range(per_class)]
    if workers > 1 and len(jobs) > 50:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_one, jobs, chunksize=math.ceil(len(jobs) / (workers * 8))))
    else:
        for job in jobs:
            _write_one(job)
    # Written last, so an interrupted run is redrawn rather than trusted.
    write_whole(stamp, lambda f: f.write(json.dumps(wanted).encode()))
    return dest
