"""Image-to-image accuracy (issue 26): the `super_resolution` and `image_processing` adapters,
the `super_resolution_x4` / `text_super_resolution_x3` / `LIVE_1` data sets, `psnr` and `ssim`,
on generated pictures in the definitions' layouts and small IRs with each model's input names and
layout (two inputs for single-image-super-resolution-1032), with the models' own
accuracy-check.yml entries, against Open Model Zoo's accuracy_check (one peer run for all)."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools.peer_accuracy import peer_definitions_by_name, peer_entry, run_peer_many

# the models' accuracy-check.yml entries as Open Model Zoo ships them
YMLS = {
    "single-image-super-resolution-1032": """models:
  - name: single-image-super-resolution-1032

    launchers:
      - framework: openvino
        adapter:
          type: super_resolution
          reverse_channels: True
        inputs:
          - name: "0"
            type: INPUT
            value: ".*lr_x4*.png"
          - name: "1"
            type: INPUT
            value: ".*upsample_x4*.png"

    datasets:
      - name: super_resolution_x4
        metrics:
          - type: psnr
            scale_border: 4
            presenter: print_vector
            reference:
              mean: 29.29
""",
    "text-image-super-resolution-0001": """models:
  - name: text-image-super-resolution-0001

    launchers:
      - framework: openvino
        adapter:
          type: super_resolution

    datasets:
      - name: text_super_resolution_x3
        metrics:
          - type: psnr
            scale_border: 4
            presenter: print_vector
            reference:
              mean: 20.318
              std: 0.73
""",
    "fbcnn": """models:
  - name: fbcnn

    launchers:
      - framework: openvino
        adapter:
          type: image_processing
          reverse_channels: True
        allow_reshape_input: True

    datasets:
      - name: LIVE_1
        preprocessing:
          - type: jpeg_compression
            quality_factor: 40
          - type: padding
            stride: 8
            pad_type: right_bottom
            use_numpy: True
            numpy_pad_mode: symmetric
        postprocessing:
          - type: corner_crop_image
            apply_to: prediction
        metrics:
          - type: psnr
            scale_border: 0
            presenter: print_vector
            reference:
              mean: 34.34
          - type: ssim
            presenter: print_vector
            reference:
              mean: 0.99
""",
    "colorization-v2": """models:
  - name: colorization-v2
    launchers:
      - framework: openvino
        adapter:
          type: image_processing
          std: 1
          cast_to_uint8: false
    datasets:
      - name: imagenet_colorization
        subsample_size: 2000
        shuffle: False
        preprocessing:
          - type: resize
            size: 256
          - type: bgr_to_lab
          - type: select_channel
            channel: 0
        postprocessing:
          - type: colorization_recovery
          - type: resize
            apply_to: prediction
        metrics:
          - type: psnr
            presenter: print_vector
            reference:
              mean: 26.99
          - type: ssim
            presenter: print_vector
            reference:
              mean: 0.9
""",
    "fast-neural-style-mosaic-onnx": """models:
  - name: fast-neural-style-mosaic-onnx
    launchers:
      - framework: onnx_runtime
        model: fast-neural-style-mosaic-onnx.onnx
        adapter:
          type: style_transfer

      - framework: openvino
        adapter:
          type: style_transfer

    datasets:
      - name: ms_coco_style_transfer
        preprocessing:
          - type: resize
            size: 224
        postprocessing:
          - type: resize_style_transfer
            dst_width: 224
            dst_height: 224
        metrics:
          - type: psnr
            scale_border: 0
            presenter: print_vector
            reference:
              mean: 12.03
          - type: ssim
            presenter: print_vector
            reference:
              mean: 0.496712
              std: 0.137477
""",
    "gmcnn-places2-tf": """models:
  - name: gmcnn-places2-tf
    launchers:
      - framework: tf
        model: frozen_model.pb
        adapter: inpainting
        inputs:
          - name: "Placeholder"
            type: INPUT
            value: '.*image'
          - name: "Placeholder_1"
            type: INPUT
            value: '.*mask'

    datasets:
      - name: inpainting_rect_masks

        metrics:
          - type: psnr
            scale_border: 0
            presenter: print_vector
            reference:
              mean: 33.41
              std: 4.47
          - type: ssim
            presenter: print_vector
            reference:
              mean: 0.991
              std: 0.0079

  - name: gmcnn-places2-tf

    launchers:
      - framework: openvino
        adapter: inpainting
        inputs:
          - name: "Placeholder"
            type: INPUT
            value: '.*image'
          - name: "Placeholder_1"
            type: INPUT
            value: '.*mask'

    datasets:
      - name: inpainting_rect_masks

        metrics:
          - type: psnr
            scale_border: 0
            presenter: print_vector
            reference:
              mean: 33.41
              std: 4.47
          - type: ssim
            presenter: print_vector
            reference:
              mean: 0.991
              std: 0.0079
""",
}
FOLDER = {"single-image-super-resolution-1032": "super_resolution", "text-image-super-resolution-0001":
          "super_resolution", "fbcnn": "LIVE_1", "colorization-v2": "ImageNet",
          "fast-neural-style-mosaic-onnx": "val2017", "gmcnn-places2-tf": "VOCdevkit/VOC2012/JPEGImages"}
LR = (24, 32)  # the tiny 1032's low-resolution input (HxW); its other input is 4 times it


def _save(path: Path, pixels: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth picture with some edges (upscaling and JPEG move it by a few dB, not 0 nor 40)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * x + c) * np.cos(5 * y - c) for c in range(3)], axis=-1) * 90 + 128
    for _ in range(4):
        y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
        base[y0:y0 + h // 4, x0:x0 + w // 5] = rng.integers(0, 256, 3)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def write_pictures(root: Path) -> None:
    """super_resolution/ (x4 pairs with their bicubic upscaling, x3 text pairs with a grey target;
    one pair of another size than the networks' inputs) and LIVE_1/ (.bmp, sides not multiples of 8)."""
    import cv2

    rng = np.random.default_rng(7)
    sr = root / "super_resolution"
    for i, (h, w) in enumerate([LR, LR, (20, 36)]):
        hr = _scene(rng, 4 * h, 4 * w)
        lr = cv2.resize(hr, (w, h), interpolation=cv2.INTER_AREA)
        _save(sr / f"{i:03d}_lr_x4.png", lr)
        _save(sr / f"{i:03d}_upsample_x4.png", cv2.resize(lr, (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC))
        _save(sr / f"{i:03d}_hr.png", hr)
    for i, (h, w) in enumerate([(16, 40), (16, 40), (18, 30)]):
        hr = cv2.cvtColor(_scene(rng, 3 * h, 3 * w), cv2.COLOR_BGR2GRAY)
        _save(sr / f"t{i:03d}_lr_x3.png", cv2.cvtColor(cv2.resize(hr, (w, h), interpolation=cv2.INTER_AREA),
                                                      cv2.COLOR_GRAY2BGR))
        _save(sr / f"t{i:03d}_hr_gray.png", hr)
    for i, (h, w) in enumerate([(45, 61), (64, 48), (33, 70)]):
        _save(root / "LIVE_1" / f"picture{i}.bmp", _scene(rng, h, w))
    for i, (h, w) in enumerate([(300, 400), (256, 256), (180, 333)], start=1):
        _save(root / "ImageNet" / f"ILSVRC2012_val_{i:08d}.JPEG", _scene(rng, h, w))
    for i, (h, w) in enumerate([(200, 260), (160, 192), (150, 300)], start=1):
        _save(root / "VOCdevkit/VOC2012/JPEGImages" / f"2012_{i:06d}.jpg", _scene(rng, h, w))
    for i, (h, w) in enumerate([(240, 320), (224, 224), (300, 200)], start=1):
        _save(root / "val2017" / f"{i:012d}.{'png' if i == 2 else 'jpg'}", _scene(rng, h, w))


def _ir(xml: Path, inputs: list[tuple[str, list]], body, output: str) -> Path:
    import openvino as ov

    import openvino.opset8 as ops

    params = [ops.parameter(shape, np.float32, name=name) for name, shape in inputs]
    for p, (name, _) in zip(params, inputs):
        p.output(0).get_tensor().set_names({name})
    out = body(ops, *params)
    out.output(0).get_tensor().set_names({output})
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([out], params, xml.stem), str(xml), compress_to_fp16=False)
    return xml


def write_irs(ir: Path) -> dict[str, Path]:
    """1032's two inputs ("0" the low-res picture, "1" the bicubic one, NCHW): the upscaled picture
    nudged by the low-res one's mean colour, scaled to 0..1; text-0001's grey input made three
    times larger (nearest); fbcnn (64x64, reshaped to each picture by allow_reshape_input): a
    slight blur of its input, over 255; colorization-v2: a and b from the lightness."""
    h, w = LR

    def sr(ops, low, up):
        mean = ops.reduce_mean(low, np.array([2, 3]), True)
        return ops.multiply(ops.add(ops.multiply(up, np.float32(0.97)), ops.multiply(mean, np.float32(0.03))),
                            np.float32(1 / 255))

    def text(ops, low):
        import openvino.opset11 as ops11

        big = ops11.interpolate(low, np.array([3 * 16, 3 * 40], dtype=np.int64), "nearest", "sizes", axes=
                                np.array([2, 3], np.int64))
        return ops.multiply(big, np.float32(1 / 255))

    def colorization(ops, lightness):  # (a, b) from the lightness and its neighbours
        kernel = np.stack([np.full((1, 3, 3), 0.05, np.float32), np.full((1, 3, 3), -0.04, np.float32)])
        ab = ops.convolution(lightness, kernel, [1, 1], [1, 1], [1, 1], [1, 1])
        return ops.add(ab, np.array([-20.0, 15.0], np.float32).reshape(1, 2, 1, 1))

    def mosaic(ops, picture):  # (a "style": the colours turned and darkened)
        turned = ops.concat([ops.split(picture, np.int64(1), 3).output(i) for i in (2, 0, 1)], 1)
        return ops.add(ops.multiply(turned, np.float32(0.8)), np.float32(30.0))

    def gmcnn(ops, image, mask):  # (NHWC: the painted rectangle filled with a grey, the rest kept)
        kept = ops.multiply(image, ops.subtract(np.float32(1), mask))
        return ops.add(kept, ops.multiply(mask, np.float32(100.0)))

    def fbcnn(ops, picture):
        kernel = np.full((3, 1, 1, 3, 3), 1 / 16, np.float32)
        kernel[:, :, :, 1, 1] = 0.5
        blurred = ops.group_convolution(picture, kernel, [1, 1], [1, 1], [1, 1], [1, 1])
        return ops.multiply(blurred, np.float32(1 / 255))

    path = {n: ir / "public" / n / "FP32" / f"{n}.xml" for n in YMLS}
    return {"single-image-super-resolution-1032": _ir(path["single-image-super-resolution-1032"],
                                                      [("0", [1, 3, h, w]), ("1", [1, 3, 4 * h, 4 * w])], sr, "90"),
            "text-image-super-resolution-0001": _ir(path["text-image-super-resolution-0001"],
                                                    [("0", [1, 1, 16, 40])], text, "2179"),
            "fbcnn": _ir(path["fbcnn"], [("image_lq", [1, 3, 64, 64])], fbcnn, "image_result"),
            "colorization-v2": _ir(path["colorization-v2"], [("data_l", [1, 1, 256, 256])], colorization,
                                   "color_ab"),
            "fast-neural-style-mosaic-onnx": _ir(path["fast-neural-style-mosaic-onnx"],
                                                 [("input1", [1, 3, 224, 224])], mosaic, "output1"),
            "gmcnn-places2-tf": _ir(path["gmcnn-places2-tf"], [("Placeholder", [1, 160, 192, 3]),
                                                               ("Placeholder_1", [1, 160, 192, 1])], gmcnn,
                                    "Minimum_6")}


@functools.cache
def image_zoo() -> dict:
    root = _workdir() / "image-quality"
    zoo, ir = root / "zoo", root / "ir"
    ymls = {}
    for name, text in YMLS.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")]).parent
        (folder / "accuracy-check.yml").write_text(text)
        ymls[name] = folder / "accuracy-check.yml"
    write_pictures(root / "data")
    return {"zoo": zoo, "ir": ir, "xml": write_irs(ir), "yml": ymls, "data": root / "data"}


def measure(case: dict, name: str, json_out: Path, *args) -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", name, "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", json_out, *args)
    assert result.returncode == 0, result.stderr
    return {r["metric"]: r["value"] for r in json.loads(json_out.read_text())}


def test_psnr_and_ssim_equal_accuracy_check(peer_accuracy_check, tmp_path):
    case = image_zoo()
    ours = {name: measure(case, name, tmp_path / f"{name}.json", "--dataset", case["data"]) for name in YMLS}
    definitions = peer_definitions_by_name(peer_accuracy_check)  # (as accuracy_check -d merges them)
    entries = []
    for name in YMLS:
        definition = definitions[__import__("yaml").safe_load(YMLS[name])["models"][0]["datasets"][0]["name"]]
        folder = case["data"] / FOLDER[name]
        where = {"data_dir" if definition["annotation_conversion"]["converter"] in ("super_resolution",
                                                                                    "image_processing")
                 else "images_dir": str(folder)}
        entry = peer_entry(case["yml"][name], name, case["xml"][name], folder, where, name, definition=definition)
        assert entry["datasets"][0]["annotation_conversion"] == {**definition["annotation_conversion"], **where}
        entries.append(entry)
    theirs, _, _ = run_peer_many(peer_accuracy_check, entries)
    for name in YMLS:
        for metric, value in ours[name].items():
            peer = theirs[name].get(f"{metric}@mean", theirs[name].get(metric))
            assert peer is not None, (name, theirs[name])
            if metric == "psnr":
                assert 15 < value < 45, (name, value)  # a number that can move
                assert abs(value - peer) <= 0.1, (name, metric, value, theirs[name])
            else:
                assert 0.3 < value < 0.9999, (name, value)
                assert abs(value - peer) <= 0.001, (name, metric, value, theirs[name])


def test_psnr_and_ssim_equal_numpy_on_synthetic_pictures():
    from modelzoo.accuracy.metric import psnr, ssim

    rng = np.random.default_rng(11)
    truth = rng.integers(0, 256, (40, 56, 3)).astype(np.uint8)
    predicted = np.clip(truth.astype(int) + rng.integers(-20, 21, truth.shape), 0, 255).astype(np.uint8)
    t, p = truth.astype(np.float64), predicted.astype(np.float64)
    for border in (0, 4):
        inner = (slice(border, 40 - border), slice(border, 56 - border))
        d = (p - t)[inner] / 255
        for order, (r, g, b) in (("RGB", (0, 1, 2)), ("BGR", (2, 1, 0))):  # luma weights over 256
            luma = (65.738 * d[..., r] + 129.057 * d[..., g] + 25.064 * d[..., b]) / 256
            assert abs(psnr(truth, predicted, border, order) - 10 * np.log10(1 / np.mean(luma ** 2))) <= 1e-9
        assert abs(psnr(truth, predicted, border, unweighted_average=True) - 10 * np.log10(1 / np.mean(d ** 2))) <= 1e-9
        assert abs(psnr(t / 255, p / 255, border, normalized_images=True, unweighted_average=True)
                   - 10 * np.log10(1 / np.mean(d ** 2))) <= 1e-9
    grey = truth[..., 1]  # a grey prediction against a colour target: the target made grey (OpenCV's)
    expected = (0.299 * t[..., 0] + 0.587 * t[..., 1] + 0.114 * t[..., 2])[4:36, 4:52]
    got = psnr(truth, grey, 4)
    assert abs(got - 10 * np.log10(1 / np.mean(((grey.astype(float)[4:36, 4:52] - expected) / 255) ** 2))) <= 1e-3
    assert math.isinf(psnr(truth, truth, 0))
    # one window over the whole picture, 8-bit constants
    mx, my = p.mean(), t.mean()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    cov = np.mean((p - mx) * (t - my))
    want = (2 * mx * my + c1) * (2 * cov + c2) / ((mx ** 2 + my ** 2 + c1) * (p.var() + t.var() + c2))
    assert abs(ssim(truth, predicted) - want) <= 1e-9
    assert abs(ssim(truth, truth) - 1) <= 1e-9


def _copy(case: dict, tmp_path: Path, folder: str) -> Path:
    import shutil

    shutil.copytree(case["data"] / folder, tmp_path / folder)
    return tmp_path / folder


def test_a_target_of_the_wrong_size_a_missing_one_or_an_unmatched_input_is_one_line_naming_it(tmp_path):
    import cv2

    case = image_zoo()
    folder = _copy(case, tmp_path, "super_resolution")
    hr = folder / "001_hr.png"
    cv2.imwrite(str(hr), cv2.imread(str(hr))[:, :-2])  # 2 columns short of 4 x 32
    args = ("accuracy_check", "--models_dir", case["zoo"], "--name", "single-image-super-resolution-1032",
            "--ir_dir", case["ir"], "--precisions", "FP32", "--dataset", tmp_path, "--json", tmp_path / "r.json")
    result = run_tool(*args)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert f"{hr}: 126x96, not 4 times its low-resolution picture 001_lr_x4.png (32x24 -> 128x96)" in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()
    hr.unlink()
    (folder / "000_upsample_x4.png").unlink()
    result = run_tool(*args)
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{folder / '000_lr_x4.png'}: no upscaled picture 000_upsample_x4.png beside it" in line, line
    assert not (tmp_path / "r.json").exists()
    jpg = tmp_path / "jpg" / "super_resolution"  # a complete set, but of .jpg files: the yml's patterns say .png
    jpg.mkdir(parents=True)
    for stem in ("000_hr", "000_lr_x4", "000_upsample_x4"):
        cv2.imwrite(str(jpg / f"{stem}.jpg"), cv2.imread(str(case["data"] / "super_resolution" / f"{stem}.png")))
    result = run_tool(*args[:-4], "--dataset", jpg.parent, "--json", tmp_path / "r.json")
    assert result.returncode != 0
    line = one_error_line(result)
    assert f"{jpg / '000_lr_x4.jpg'}: no picture of it (000_lr_x4.jpg, 000_upsample_x4.jpg) matches " \
           "'.*lr_x4*.png', the pattern of input 0" in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def test_subsample_size_measures_the_first_pictures_by_name(tmp_path):
    """colorization-v2's subsample_size (2000 of ImageNet), here 2 of the 3 pictures: the first two
    by name, the same number as --subset 2 gives."""
    case = image_zoo()
    name = "colorization-v2"
    folder = write_model(tmp_path / "zoo", name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                                  for ext in ("xml", "bin")]).parent
    (folder / "accuracy-check.yml").write_text(YMLS[name].replace("subsample_size: 2000", "subsample_size: 2"))
    args = ("--name", name, "--ir_dir", case["ir"], "--precisions", "FP32", "--dataset", case["data"])
    records = []
    for zoo, extra in ((tmp_path / "zoo", ()), (case["zoo"], ("--subset", "2"))):
        result = run_tool("accuracy_check", "--models_dir", zoo, *args, *extra, "--json", tmp_path / "r.json")
        assert result.returncode == 0, result.stderr
        records.append(json.loads((tmp_path / "r.json").read_text()))
    assert [r["images"] for r in records[0]] == [2, 2]
    assert [(r["metric"], r["value"]) for r in records[0]] == [(r["metric"], r["value"]) for r in records[1]]


def test_two_picture_inputs_and_a_const_input_are_fed_together(tmp_path):
    """1032's two picture INPUTs beside a CONST_INPUT (the launcher's other inputs, as a detector's
    image_info): an IR that takes its 0.97 and 0.03 from that input measures what the one with
    them built in does, and a CONST_INPUT the IR lacks is one line naming it."""
    case = image_zoo()
    name = "single-image-super-resolution-1032"
    h, w = LR

    def sr(ops, low, up, weights):
        mean = ops.reduce_mean(low, np.array([2, 3]), True)
        weight, rest = ops.split(weights, np.int64(0), 2).outputs()
        return ops.multiply(ops.add(ops.multiply(up, weight), ops.multiply(mean, rest)), np.float32(1 / 255))

    ir = tmp_path / "ir"
    _ir(ir / "public" / name / "FP32" / f"{name}.xml",
        [("0", [1, 3, h, w]), ("1", [1, 3, 4 * h, 4 * w]), ("weight", [2])], sr, "90")
    folder = write_model(tmp_path / "zoo", name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                                  for ext in ("xml", "bin")]).parent
    const = '            value: ".*upsample_x4*.png"\n          - name: weight\n            type: CONST_INPUT\n' \
            '            value: [0.97, 0.03]\n'
    yml = YMLS[name].replace('            value: ".*upsample_x4*.png"\n', const)
    (folder / "accuracy-check.yml").write_text(yml)
    args = ("--name", name, "--precisions", "FP32", "--dataset", case["data"], "--json", tmp_path / "r.json")
    result = run_tool("accuracy_check", "--models_dir", tmp_path / "zoo", "--ir_dir", ir, *args)
    assert result.returncode == 0, result.stderr
    fed = {r["metric"]: r["value"] for r in json.loads((tmp_path / "r.json").read_text())}
    built_in = measure(case, name, tmp_path / "built-in.json", "--dataset", case["data"])
    assert fed.keys() == built_in.keys() and all(abs(fed[k] - built_in[k]) < 1e-9 for k in fed), (fed, built_in)

    (folder / "accuracy-check.yml").write_text(yml.replace("- name: weight", "- name: gain"))
    result = run_tool("accuracy_check", "--models_dir", tmp_path / "zoo", "--ir_dir", ir, *args)
    line = one_error_line(result)
    assert "CONST_INPUT 'gain' is not an input of" in line, line
