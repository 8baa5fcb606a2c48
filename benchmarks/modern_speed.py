"""Training cost per image of each ablation row's network, side by side in one run.

For every row of ``catdog_lib.modern.ABLATION`` (rows that share a network
are timed once) it builds the network, trains it on in-memory batches of 32
random 150x150 images (the arithmetic does not depend on what the pixels
show), and times ``--steps`` training steps after two warm-up steps. Rounds
are interleaved (book, batch_norm, ..., book, batch_norm, ...) so that a
busy moment of a shared machine hits every network alike, and each round's
time is divided by the book network's time in the same round.

    python benchmarks/modern_speed.py --steps 10 --rounds 3

Writes ``benchmarks/results/modern_speed_<machine>.json``: FLOPs per
training image (counted, as ``speed.py`` counts them), seconds per image,
and both as ratios to the book's network.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from catdog_lib import config, models, modern, train

# The distinct networks: the other rows change only the optimizer or the data.
ROWS = ("book", "batch_norm", "global_pooling", "residual", "separable", "wider", "deeper")


def seconds_per_image(model, images, labels, steps):
    for _ in range(2):  # trace and warm the caches
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return (time.perf_counter() - started) / (steps * len(images))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (config.BATCH_SIZE, *config.IMAGE_SIZE, 3)).astype("uint8")
    labels = (np.arange(config.BATCH_SIZE) % 2).astype("float32")[:, None]
    nets = {row: modern.ablation_convnet(row, decay_steps=1000) for row in ROWS}
    rounds = []
    for _ in range(args.rounds):
        rounds.append({row: seconds_per_image(net, images, labels, args.steps)
                       for row, net in nets.items()})
    book_flops = models.flops_per_image(nets["book"])["training"]
    result = {
        "command": f"python benchmarks/modern_speed.py --steps {args.steps} --rounds {args.rounds}",
        "machine": {"cpu": train.cpu(), "precision": models.compute_policy()},
        "rows": {row: {
            "parameters": net.count_params(),
            "training_flops_per_image": models.flops_per_image(net)["training"],
            "flops_over_book": models.flops_per_image(net)["training"] / book_flops,
            "seconds_per_image": [r[row] for r in rounds],
            "seconds_over_book": statistics.median(r[row] / r["book"] for r in rounds),
            "seconds_over_book_range": [min(r[row] / r["book"] for r in rounds),
                                        max(r[row] / r["book"] for r in rounds)],
        } for row, net in nets.items()},
    }
    out = Path(__file__).resolve().parent / "results" / f"modern_speed_{train.cpu()['tag']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for row, r in result["rows"].items():
        print(f"{row:16s} FLOPs x{r['flops_over_book']:.2f}  time x{r['seconds_over_book']:.2f} "
              f"({r['seconds_over_book_range'][0]:.2f}-{r['seconds_over_book_range'][1]:.2f})")
    print(out)


if __name__ == "__main__":
    main()
