#!/usr/bin/python3
"""Trains the example app's model: torchvision's MobileNetV2, adapted to small grayscale inputs,
on scikit-learn's bundled handwritten digits (8x8 images, 1,797 samples), and exports it to ONNX.

    /usr/bin/python3 train.py --out DIR [--epochs-v1 2] [--epochs-v2 12] [--threads 2]

Writes DIR/v1.onnx (trained briefly: 2 epochs) and DIR/v2.onnx (the same run continued to 12
epochs), DIR/heldout.csv (the
held-out split the app measures accuracy on: label then 64 pixel values 0..16 per line),
DIR/accuracy.json and a few held-out digits as PNGs (DIR/samples/digit-N.png) to classify with
curl. Seeded: the same machine gives the same models. Debian packages only: python3-torch,
python3-torchvision, python3-sklearn (and python3-pil, which torchvision depends on).

Input of the exported model: "input", float32 [N, 1, 32, 32], the 8x8 image scaled to 0..1 and
enlarged 4x by pixel replication (what the app does with cv::resize INTER_NEAREST). Output:
"logits", [N, 10].
"""
import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def prepare(images: np.ndarray) -> torch.Tensor:
    """8x8 digits (0..16) -> [N, 1, 32, 32] in 0..1, each pixel replicated 4x4."""
    x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    return x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)


def make_model() -> nn.Module:
    model = torchvision.models.mobilenet_v2(num_classes=10)
    # Small inputs: one grayscale channel and no stride in the stem, so 32x32 keeps enough
    # resolution through MobileNetV2's downsampling (32 -> 2x2 at the last stage).
    model.features[0][0] = nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1, bias=False)
    return model


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def train(model: nn.Module, opt, g, epochs: int, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    return model.eval()


def export(model: nn.Module, path: str) -> None:
    # Opset 10: its Clip (MobileNetV2's ReLU6) takes min/max as attributes, which is what
    # OpenCV 4.6's ONNX importer (Debian 12) reads; opset 11's Clip with tensor inputs is refused.
    dummy = torch.zeros(1, 1, 32, 32)
    torch.onnx.export(model, dummy, path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=10, do_constant_folding=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--epochs-v1", type=int, default=2)
    p.add_argument("--epochs-v2", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    random.seed(0)
    np.random.seed(0)
    os.makedirs(os.path.join(a.out, "samples"), exist_ok=True)

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    xt, yt = prepare(x_train), torch.tensor(y_train)
    xh, yh = prepare(x_test), torch.tensor(y_test)

    with open(os.path.join(a.out, "heldout.csv"), "w") as f:
        for label, pixels in zip(y_test, x_test):
            f.write(",".join([str(int(label))] + [str(int(v)) for v in pixels]) + "\n")
    from PIL import Image  # torchvision's dependency (python3-pil)
    for label in range(10):
        i = int(np.where(y_test == label)[0][0])
        img = (255 - x_test[i].reshape(8, 8) * 255 / 16).astype(np.uint8)  # dark ink on white
        Image.fromarray(img).resize((64, 64), Image.NEAREST).save(
            os.path.join(a.out, "samples", f"digit-{label}.png"))

    # v2 continues where v1 stopped: one training run, exported twice.
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    result = {}
    done = 0
    for version, epochs in (("v1", a.epochs_v1), ("v2", a.epochs_v2)):
        t0 = time.time()
        train(model, opt, g, epochs - done, xt, yt)
        done = epochs
        acc = accuracy(model, xh, yh)
        export(model, os.path.join(a.out, f"{version}.onnx"))
        result[version] = {"epochs": epochs, "heldoutAccuracy": round(acc, 4),
                           "trainSeconds": round(time.time() - t0, 1)}
        print(f"{version}: {epochs} epoch(s), held-out accuracy {acc:.4f} "
              f"({len(yh)} digits), {time.time() - t0:.1f} s")
    with open(os.path.join(a.out, "accuracy.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
