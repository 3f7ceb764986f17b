#!/usr/bin/env python3
"""The W-net of "hybrid-cs-model-mri" with the downloaded weights, written as a TensorFlow SavedModel.

modelzoo's copy of Open Model Zoo's script. Keras 3 (TensorFlow 2.16 on, whatever the backend)
writes only its own `.keras` archive from `model.save`, so the zoo's `model.save(<dir>/saved_model)`
fails there. `tf.saved_model.save` with a serving signature of our own writes the SavedModel that
the descriptor's `--saved_model_dir` names with Keras 2 and 3 alike, and names its input `input_1`
as the descriptor's `input_info` does (Keras 2 called the unnamed input so; Keras 3 calls it
`keras_tensor`, and `model.export` would keep that). Usage: pre-convert.py DOWNLOAD_DIR CONVERSION_DIR
"""

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

UNDER_RATE = "20"  # the 20 % sampling mask the descriptor downloads
INPUT_NAME = "input_1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args()

    sys.path.append(str(args.input_dir))
    network = importlib.import_module("frequency_spatial_network")
    stats = np.load(args.input_dir / f"stats_fs_unet_norm_{UNDER_RATE}.npy")
    model = network.wnet(stats[0], stats[1], stats[2], stats[3], kshape=(5, 5), kshape2=(3, 3))
    model.load_weights(str(args.input_dir / f"wnet_{UNDER_RATE}.hdf5"))
    spec = tf.TensorSpec(model.inputs[0].shape, tf.float32, name=INPUT_NAME)
    serve = tf.function(lambda image: model(image, training=False), input_signature=[spec])
    tf.saved_model.save(model, str(args.output_dir / "saved_model"), signatures={"serving_default": serve})


if __name__ == "__main__":
    main()
