#!/usr/bin/env python3
"""Keras MobileNetV3Small with the downloaded weights, written as a TensorFlow SavedModel.

modelzoo's copy of Open Model Zoo's script. Keras 3 (TensorFlow 2.16 on, whatever the backend)
writes only its own `.keras` archive from `model.save`, so the zoo's
`model.save(filepath=<dir>.savedmodel)` fails there; `model.export` writes the SavedModel the
descriptor's `--saved_model_dir` names (Keras 2 has no `export`, `tf.saved_model.save` then).
The input is called `input_1`, as the descriptor's `input_info` says (Keras 3 would call it
`keras_tensor`). Usage: pre-convert.py DOWNLOAD_DIR CONVERSION_DIR
"""

import argparse
from pathlib import Path

import tensorflow as tf

WEIGHTS = "weights_mobilenet_v3_small_224_1.0_float.h5"
SAVED_MODEL = "mobilenet_v3_small_224_1.0_float.savedmodel"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args()

    tf.keras.backend.set_image_data_format("channels_last")
    image = tf.keras.Input(shape=(224, 224, 3), name="input_1")
    model = tf.keras.applications.MobileNetV3Small(input_tensor=image, weights=str(args.input_dir / WEIGHTS))
    target = str(args.output_dir / SAVED_MODEL)
    if hasattr(model, "export"):
        model.export(target)
    else:
        tf.saved_model.save(model, target)


if __name__ == "__main__":
    main()
