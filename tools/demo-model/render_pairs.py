#!/usr/bin/env python3
"""Renders a paired image/caption set from the demo model's training distribution (train.py's
render_scene and caption), for clip-geometry's example: OUT/NNN.png and OUT/captions.tsv
(`file<TAB>caption`, one pair a line). Like train.py it is never needed to build or test clip.

    python3 tools/demo-model/render_pairs.py --out examples/geometry-pairs --count 320 --seed 15
"""
import argparse
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402  (render_scene, caption: the training generator itself)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=320)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    nprng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    lines = []
    for i in range(args.count):
        side = rng.randint(64, 96)
        image, obj, bg_name = train.render_scene(rng, nprng, side, side)
        name = f"{i:03d}.png"
        image.save(os.path.join(args.out, name), optimize=True)
        lines.append(f"{name}\t{train.caption(rng, obj, bg_name)}")
    with open(os.path.join(args.out, "captions.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
