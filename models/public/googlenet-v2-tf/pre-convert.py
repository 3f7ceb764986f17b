#!/usr/bin/env python3
"""TF-Slim's inception_v2 with the downloaded checkpoint, frozen into a GraphDef.

modelzoo's copy of Open Model Zoo's script. From TensorFlow 2.16 on, `tf.compat.v1.layers` (which
tf_slim's layers use) are loaded from the `tf_keras` package under `tf_keras.legacy_tf_layers`;
tf_keras 2.17 keeps them at `tf_keras.src.legacy_tf_layers`, so without the alias below the
first convolution fails (`No module named 'tf_keras'`, or `'tf_keras.legacy_tf_layers'` with
tf_keras installed). Needs TensorFlow and tf_keras (the `[mo]` extra has both).
Usage: pre-convert.py DOWNLOAD_DIR CONVERSION_DIR
"""

import argparse
import importlib
import sys
from pathlib import Path

import tensorflow.compat.v1 as tf

NETWORK_NAME = "inception_v2"


def alias_legacy_layers() -> None:
    """Make `tf_keras.legacy_tf_layers` importable where tf_keras keeps it under `src`."""
    try:
        importlib.import_module("tf_keras.legacy_tf_layers")
    except ModuleNotFoundError:
        try:
            sys.modules["tf_keras.legacy_tf_layers"] = importlib.import_module("tf_keras.src.legacy_tf_layers")
        except ModuleNotFoundError:
            pass  # an older TensorFlow (its own layers) or no tf_keras: TensorFlow says which


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args()

    alias_legacy_layers()
    sys.path.append(str(args.input_dir / "models/research/slim"))
    nets_factory = importlib.import_module("nets.nets_factory")
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as session:
        network_fn = nets_factory.get_network_fn(NETWORK_NAME, num_classes=1001)
        size = network_fn.default_image_size
        _, end_points = network_fn(tf.placeholder(name="input", dtype=tf.float32, shape=(1, size, size, 3)))
        tf.train.Saver().restore(session, str(args.input_dir / (NETWORK_NAME + ".ckpt")))
        frozen = tf.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), [end_points["Predictions"].op.name])
    tf.io.write_graph(frozen, str(args.output_dir), NETWORK_NAME + ".frozen.pb", as_text=False)


if __name__ == "__main__":
    main()
