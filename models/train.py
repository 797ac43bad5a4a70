#!/usr/bin/env python3
"""Retrains every shipped example model, deterministically (optional: the .onnx files are
committed, and beacons and its tests use those).

  dose_response.onnx, one_compartment.onnx   train_dose_response.py, train_one_compartment.py (numpy)
  sepsis_risk.onnx, sepsis_risk_flawed.onnx  train_sepsis.py (numpy; data from `beacons synth`)
  cell_type.onnx, cell_image.onnx            train_cells.py (PyTorch; data from `beacons synth`)

Each script documents its data, network, training and the metrics it reached. The scripts
that draw synthetic cohorts call the release binary: build it first (`cargo build --release`).

Usage: python3 models/train.py [--beacons target/release/beacons] [--only NAME ...]
Requires numpy and onnx, and torch for the cell models (`pip install numpy onnx torch`).
Re-running gives byte-identical files for the same numpy / torch versions.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = {
    "dose_response": ["train_dose_response.py"],
    "one_compartment": ["train_one_compartment.py"],
    "sepsis": ["train_sepsis.py", "--force"],
    "cells": ["train_cells.py", "--force"],
}
USES_BEACONS = {"sepsis", "cells"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beacons", default=os.path.join(ROOT, "target/release/beacons"))
    ap.add_argument("--only", nargs="+", choices=sorted(SCRIPTS))
    args = ap.parse_args()
    for name in args.only or list(SCRIPTS):
        script, *rest = SCRIPTS[name]
        cmd = [sys.executable, os.path.join(HERE, script), *rest]
        if name in USES_BEACONS:
            if not os.path.exists(args.beacons):
                raise SystemExit(f"{args.beacons} does not exist: run `cargo build --release` first")
            cmd += ["--beacons", args.beacons]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
