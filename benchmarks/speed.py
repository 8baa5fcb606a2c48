"""Speed on a student's CPU: the book's pipeline against catdog's, side by side.

One run, on the real 2,000 training and 1,000 validation photos of the
book's split, measures the wall time of a full epoch (train, then validate)
after a short warm-up epoch, for

  (a) ``book``: the book's own code (section 5.2) on ``tf_keras``:
      ``ImageDataGenerator.flow_from_directory``, ``fit_generator``,
      ``lr=1e-4``, ``'acc'``, the book's batch sizes and steps;
  (b) ``catdog_float32``: ``data.load_datasets``, ``augment.augment`` and
      ``models.*_convnet`` with ``CATDOG_PRECISION=float32``;
  (c) ``catdog_auto``: the same with ``CATDOG_PRECISION=auto``,

for the baseline and the augmented configuration, interleaved
(a b c a b c ...) so that machine noise hits all three alike. Each
measurement is a fresh process, which also gives its peak memory. The run
also measures the float32 and bfloat16 matmul peaks, training on in-memory
tensors (the compute part alone), and the input-pipeline choices behind
``data.load_datasets`` and ``augment.augment``.

    pip install -e '.[bench]'      # tf_keras and scipy, for the book's code
    python benchmarks/speed.py --source ../shared/data/dogs-vs-cats/train --rounds 2

Writes ``benchmarks/results/speed_<cpu tag>.json``, one file per machine
(``speed.json``: an earlier run that did not record its CPU).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = ("book", "catdog_float32", "catdog_auto")
MODELS = ("baseline", "augmented")
# The book's epochs as written: baseline 100 batches of 20, validation 50 of
# 20; augmented 100 batches of 32, validation 50 of 32 (more than the 63 and
# 32 batches the folders hold: see the notes in the results).
# The warm-up before each measured epoch: a short epoch of 5 training and 2
# validation batches, after catdog has filled its image cache. It traces the
# training and validation functions and warms every cache, as a whole
# warm-up epoch would, in a fraction of the time.
WARM_UP = (5, 2)
BOOK = {"baseline": {"batch": 20, "steps": 100, "val_steps": 50},
        "augmented": {"batch": 32, "steps": 100, "val_steps": 50}}


def conv_flops(model_config="baseline"):
    """Forward and training FLOPs per 150x150 image of the book's network.

    Convolutions and dense layers only (2 FLOPs per multiply-add). Training
    is the forward pass plus two backward products per layer, less the
    gradient of the input image, which nobody needs.
    """
    size, channels, forward, first = 150, 3, 0, None
    for filters in (32, 64, 128, 128):
        size -= 2
        flops = 2 * size * size * 9 * channels * filters
        first = first or flops
        forward += flops
        channels, size = filters, size // 2
    forward += 2 * (size * size * channels * 512 + 512)
    return forward, 3 * forward - first


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def images_in(batches, n, batch):
    """How many images ``batches`` batches hold when they cycle through ``n``
    images in batches of ``batch`` (the last batch of each pass is short)."""
    full, rest = divmod(batches, -(-n // batch))
    return full * n + rest * batch


def _epoch_timer(base):
    """A callback timing an epoch's training and validation phases and
    counting the batches each really ran."""
    class Timer(base):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = {"begin": time.perf_counter()}
            self.batches = {"train": 0, "val": 0}

        def on_train_batch_end(self, batch, logs=None):
            self.batches["train"] += 1

        def on_test_batch_end(self, batch, logs=None):
            self.batches["val"] += 1

        def on_test_begin(self, logs=None):
            self.t["val_begin"] = time.perf_counter()

        def on_test_end(self, logs=None):
            self.t["val_end"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.t["end"] = time.perf_counter()
            self.last = self.t
    return Timer()


def _result(timer, batch, n_train, n_val, **extra):
    t = timer.last
    return {"epoch_seconds": t["end"] - t["begin"], "train_seconds": t["val_begin"] - t["begin"],
            "val_seconds": t["val_end"] - t["val_begin"],
            "train_batches": timer.batches["train"], "val_batches": timer.batches["val"],
            "train_images": images_in(timer.batches["train"], n_train, batch),
            "val_images": images_in(timer.batches["val"], n_val, batch),
            "peak_mb": _peak_mb(), **extra}


def run_book(model_name, dest, steps_limit):
    """The book's listings 5.5-5.8 (baseline) or 5.11-5.14 (augmented), with
    ``keras`` spelled ``tf_keras``: the code a reader of the book would run."""
    from tf_keras import layers, models, optimizers
    from tf_keras.callbacks import Callback
    from tf_keras.preprocessing.image import ImageDataGenerator

    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(150, 150, 3)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(128, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(128, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    if model_name == "augmented":
        model.add(layers.Dropout(0.5))
    model.add(layers.Dense(512, activation='relu'))
    model.add(layers.Dense(1, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer=optimizers.RMSprop(lr=1e-4),
                  metrics=['acc'])

    if model_name == "augmented":
        train_datagen = ImageDataGenerator(rescale=1./255, rotation_range=40,
                                           width_shift_range=0.2, height_shift_range=0.2,
                                           shear_range=0.2, zoom_range=0.2,
                                           horizontal_flip=True)
    else:
        train_datagen = ImageDataGenerator(rescale=1./255)
    test_datagen = ImageDataGenerator(rescale=1./255)
    book = BOOK[model_name]
    train_generator = train_datagen.flow_from_directory(
        str(dest / "train"), target_size=(150, 150), batch_size=book["batch"],
        class_mode='binary')
    validation_generator = test_datagen.flow_from_directory(
        str(dest / "validation"), target_size=(150, 150), batch_size=book["batch"],
        class_mode='binary')
    steps = min(book["steps"], steps_limit or book["steps"])
    val_steps = min(book["val_steps"], steps_limit or book["val_steps"])
    model.fit_generator(train_generator, steps_per_epoch=WARM_UP[0], epochs=1,
                        validation_data=validation_generator, validation_steps=WARM_UP[1],
                        verbose=0)
    timer = _epoch_timer(Callback)
    model.fit_generator(train_generator, steps_per_epoch=steps, epochs=1,
                        validation_data=validation_generator, validation_steps=val_steps,
                        callbacks=[timer], verbose=0)
    return _result(timer, book["batch"], train_generator.n, validation_generator.n,
                   policy="float32")


def run_catdog(model_name, dest, steps_limit):
    """catdog's pipeline and model, as notebooks 03 and 04 train them."""
    import keras

    from catdog_lib import augment, config, data, models

    batch = config.batch_size(model_name)
    train_ds, val_ds, _ = data.load_datasets(dest, batch_size=batch)
    counts = data.count_images(dest)
    n_train, n_val = (sum(counts[split].values()) for split in ("train", "validation"))
    if model_name == "augmented":
        model = models.dropout_convnet()
        steps = config.PROFILES["full"]["augmented_steps"]
        train_ds = augment.augment(train_ds)
    else:
        model = models.baseline_convnet()
        steps = -(-n_train // batch)  # the whole training set once
    val_steps = -(-n_val // batch)
    steps, val_steps = (min(s, steps_limit or s) for s in (steps, val_steps))
    for _ in train_ds:  # fills the decoded-image caches, as a first epoch would
        pass
    for _ in val_ds:
        pass
    model.fit(train_ds.repeat(), validation_data=val_ds, epochs=1, steps_per_epoch=WARM_UP[0],
              validation_steps=WARM_UP[1], verbose=0)
    timer = _epoch_timer(keras.callbacks.Callback)
    model.fit(train_ds.repeat(), validation_data=val_ds, epochs=1, steps_per_epoch=steps,
              validation_steps=val_steps, callbacks=[timer], verbose=0)
    return _result(timer, batch, n_train, n_val,
                   policy=keras.mixed_precision.global_policy().name)


def run_in_memory(dest, steps_limit):
    """The compute part alone: ``train_on_batch`` over batches already in
    memory as tensors, no tf.data at all (float32, baseline model, batches
    of 32)."""
    import tensorflow as tf

    from catdog_lib import config, data, models

    train_ds = data.load_datasets(dest)[0]
    batches = [(tf.constant(x), tf.constant(y)) for x, y in train_ds]
    batches = batches[:steps_limit] if steps_limit else batches
    model = models.baseline_convnet()
    for x, y in batches[:3]:
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for x, y in batches:
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    images = sum(int(x.shape[0]) for x, _ in batches)
    return {"train_seconds": seconds, "train_images": images, "peak_mb": _peak_mb(),
            "policy": model.dtype_policy.name}


def run_matmul():
    """Matrix-multiply peaks in GFLOP/s, float32 at 4096 and bfloat16 at 2048."""
    import tensorflow as tf

    peaks = {}
    for dtype, n, reps in (("float32", 4096, 3), ("bfloat16", 2048, 2)):
        a = tf.random.normal((n, n), dtype=tf.float32)
        a = tf.cast(a, dtype)
        tf.matmul(a, a).numpy()
        best = min(_timed(lambda: tf.matmul(a, a).numpy()) for _ in range(reps))
        peaks[dtype] = 2 * n**3 / best / 1e9
    return peaks


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_pipeline(variant, dest):
    """Images/s and memory of one input-pipeline variant, without a model.

    Two passes over the 2,000 training images (the first fills any cache);
    the second is timed.
    """
    import keras
    import tensorflow as tf

    from catdog_lib import augment, config

    autotune = tf.data.AUTOTUNE
    cache, shuffle, aug = variant.get("cache", "uint8"), variant.get("shuffle", 2000), \
        variant.get("augment")
    ds = keras.utils.image_dataset_from_directory(
        dest / "train", label_mode="binary", class_names=list(config.CLASSES),
        image_size=config.IMAGE_SIZE, batch_size=None, shuffle=True, seed=1)
    if cache == "uint8":
        ds = ds.map(lambda x, y: (tf.cast(tf.round(x), tf.uint8), y), num_parallel_calls=autotune)
    if cache != "none":
        ds = ds.cache()
    ds = ds.shuffle(shuffle, seed=1)
    layer = augment.book_augmentation(seed=1)
    calls = {"autotune": autotune}.get(variant.get("parallel", "autotune"),
                                        variant.get("parallel"))
    if aug == "per_image":
        ds = ds.map(lambda x, y: (layer(x, training=True), y), num_parallel_calls=calls)
    ds = ds.batch(config.BATCH_SIZE)
    if aug == "per_batch":
        ds = ds.map(lambda x, y: (layer(x, training=True), y), num_parallel_calls=calls)
    ds = ds.prefetch(autotune)
    for _ in ds:
        pass
    start = time.perf_counter()
    images = sum(int(x.shape[0]) for x, _ in ds)
    return {"images_per_second": images / (time.perf_counter() - start), "peak_mb": _peak_mb()}


PIPELINE_VARIANTS = [
    # (question, variant, chosen?)
    ("cache", {"cache": "uint8"}, True),
    ("cache", {"cache": "float32"}, False),
    ("cache", {"cache": "none"}, False),
    ("shuffle buffer", {"shuffle": 2000}, True),
    ("shuffle buffer", {"shuffle": 256}, False),
    ("augmentation placement", {"augment": "per_image"}, True),
    ("augmentation placement", {"augment": "per_batch"}, False),
    ("num_parallel_calls", {"augment": "per_image", "parallel": "autotune"}, True),
    ("num_parallel_calls", {"augment": "per_image", "parallel": 2}, False),
    ("num_parallel_calls", {"augment": "per_image", "parallel": 1}, False),
]


def worker(args):
    dest = Path(args.dest)
    if args.worker == "matmul":
        result = run_matmul()
    elif args.worker == "in_memory":
        result = run_in_memory(dest, args.steps)
    elif args.worker == "pipeline":
        result = run_pipeline(json.loads(args.variant), dest)
    elif args.worker == "book":
        result = run_book(args.model, dest, args.steps)
    else:
        result = run_catdog(args.model, dest, args.steps)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(kind, dest, steps=None, model=None, variant=None):
    """Run one measurement in a fresh interpreter and return its result."""
    env = dict(os.environ, CATDOG_UNATTENDED="1", TF_CPP_MIN_LOG_LEVEL="3",
               CATDOG_PRECISION="float32" if kind != "catdog_auto" else "auto")
    cmd = [sys.executable, __file__, "--worker", kind, "--dest", str(dest)]
    cmd += ["--model", model] if model else []
    cmd += ["--steps", str(steps)] if steps else []
    cmd += ["--variant", json.dumps(variant)] if variant else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        sys.exit(f"{kind} {model or ''} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def per_image_ratio(book, catdog):
    """The book's epoch rescaled to catdog's image counts, over catdog's epoch.

    The two epochs can see different numbers of images, so the book's
    training and validation seconds per image are applied to catdog's counts.
    """
    book_equivalent = (book["train_seconds"] / book["train_images"] * catdog["train_images"]
                       + book["val_seconds"] / book["val_images"] * catdog["val_images"])
    return book_equivalent / catdog["epoch_seconds"]


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="Kaggle train folder or zip (default: as prepare-data)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int,
                        help="measure this many batches instead of whole epochs (to try the "
                             "script quickly; the results are then not comparable)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from catdog_lib import data, models, train

    cpu = train.cpu()
    prepared = data.prepare_small_dataset(args.source)
    if prepared.source == "toy" and not args.steps:
        sys.exit("speed.py measures the real photos; give --source or CATDOG_KAGGLE_TRAIN")
    dest = prepared.dest
    matmul = [spawn("matmul", dest)]
    rounds = []
    for i in range(args.rounds):
        row = {"in_memory": spawn("in_memory", dest, args.steps)}
        for model_name in MODELS:
            for kind in CONFIGS:
                row[f"{model_name}/{kind}"] = spawn(kind, dest, args.steps, model=model_name)
                print(f"round {i + 1} {model_name:9} {kind:14} "
                      f"epoch {row[f'{model_name}/{kind}']['epoch_seconds']:6.1f} s", flush=True)
        rounds.append(row)
    matmul.append(spawn("matmul", dest))
    pipeline = []
    for question, variant, chosen in PIPELINE_VARIANTS:
        pipeline.append({"question": question, "variant": variant, "chosen": chosen,
                         **spawn("pipeline", dest, variant=variant)})
        print(f"pipeline {question:24} {json.dumps(variant):45} "
              f"{pipeline[-1]['images_per_second']:7.0f} img/s "
              f"{pipeline[-1]['peak_mb']:6.0f} MB", flush=True)

    forward, training = conv_flops()
    fp32_peak = max(m["float32"] for m in matmul)
    ratios, compute = {}, {}
    for model_name in MODELS:
        get = lambda kind: [r[f"{model_name}/{kind}"] for r in rounds]  # noqa: E731
        book, f32, auto = get("book"), get("catdog_float32"), get("catdog_auto")
        ratios[model_name] = {
            "book_over_catdog_auto_per_image": summarize(
                [per_image_ratio(a, c) for a, c in zip(book, auto)]),
            "book_over_catdog_float32_per_image": summarize(
                [per_image_ratio(a, b) for a, b in zip(book, f32)]),
            "book_over_catdog_auto_raw_epoch": summarize(
                [a["epoch_seconds"] / c["epoch_seconds"] for a, c in zip(book, auto)]),
            "catdog_float32_over_auto_per_image": summarize(
                [per_image_ratio(b, c) for b, c in zip(f32, auto)]),
        }
        compute[model_name] = {
            # how much slower catdog's training phase is than in-memory train_on_batch
            "input_overhead": summarize(
                [(c["train_seconds"] / c["train_images"])
                 / (r["in_memory"]["train_seconds"] / r["in_memory"]["train_images"]) - 1
                 for c, r in zip(f32, rounds)]),
            "catdog_float32_train_gflops": summarize(
                [training * c["train_images"] / c["train_seconds"] / 1e9 for c in f32]),
        }
    in_memory_gflops = [training * r["in_memory"]["train_images"]
                        / r["in_memory"]["train_seconds"] / 1e9 for r in rounds]
    result = {
        "command": "python benchmarks/speed.py " + " ".join(argv or sys.argv[1:]),
        "data": f"real photos, {prepared.note}" if prepared.source != "toy" else "toy set",
        "whole_epochs": not args.steps,
        "machine": {"cpu": cpu, "python": platform.python_version(),
                    "auto_policy": models.compute_policy()},
        "flops_per_image": {"forward": forward, "training": training},
        "matmul_gflops": matmul,
        "compute": {
            "in_memory_train_gflops": summarize(in_memory_gflops),
            "in_memory_fraction_of_float32_peak": summarize(
                [g / fp32_peak for g in in_memory_gflops]),
            **compute,
        },
        "ratios": ratios,
        "pipeline": pipeline,
        "rounds": rounds,
        "notes": [
            "Per-image ratios rescale the book's epoch to catdog's image counts, using the "
            "book's training and validation seconds per image.",
            "Both sides use model.fit (fit_generator for the book) with no checkpoints.",
            "Image counts are counted, not assumed: on tf_keras the book's augmented "
            "fit_generator(steps_per_epoch=100) over its 63-batch DirectoryIterator trains "
            "63 batches (2,000 images), warns 'Your input ran out of data' and stops "
            "training after that epoch, and validation_steps=50 runs the 32 batches there "
            "are; the book's Keras 2.0 looped the generator instead.",
            "Warm-up: catdog first fills its decoded-image cache (one pass over the data, "
            "as its first epoch would), then both sides train one short epoch of "
            f"{WARM_UP[0]} training and {WARM_UP[1]} validation batches before the measured "
            "whole epoch.",
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"speed_{cpu['tag']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for model_name in MODELS:
        r = ratios[model_name]["book_over_catdog_auto_per_image"]
        print(f"{model_name}: catdog (auto) is {r['median']:.2f}x the book's speed per image "
              f"(range {r['min']:.2f}-{r['max']:.2f})")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
