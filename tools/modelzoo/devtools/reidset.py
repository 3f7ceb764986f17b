"""A re-identification set made here (no download), in Market-1501's layout (`query/`,
`bounding_box_test/`, names `PPPP_cCsS_FFFFFF_NN.jpg`) or VeRi-776's (`image_query/`,
`image_test/`, names `PPPP_cCCC_FFFFFFFF_N.jpg`), and a small embedding IR built with OpenVINO's
Python API, for proving the `reid` adapter, `cmc` and `reid_map` against Open Model Zoo's own
accuracy_check.

Each identity is a picture of its own (a scene of coloured blocks); its pictures are that one
with noise of the identity's own strength, so the queries of quiet identities find their own
first and the noisy ones do not: rank@1, rank@5 and mAP are numbers that can move. The gallery
has, as Market-1501's has, pictures of a query's identity from the query's own camera (never
counted), distractors (identity 0) and junk (identity -1, left out), and one query whose identity
the gallery has only from its own camera (a query that is not counted). An image-retrieval set
(Open Model Zoo's textile_crops layout) is made of the same kind of pictures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..reference.scene import make_scene

HEIGHT, WIDTH = 128, 64  # Market-1501's pictures
IDENTITIES = 14
LAYOUTS = {"market1501": ("query", "bounding_box_test"), "veri776": ("image_query", "image_test")}


def file_name(kind: str, identity: int, camera: int, frame: int) -> str:
    """A picture's name as the set's own say identity and camera."""
    if kind == "market1501":
        return f"{identity:04d}_c{camera}s1_{frame:06d}_00.jpg" if identity >= 0 else \
            f"-1_c{camera}s1_{frame:06d}_00.jpg"
    return f"{identity:04d}_c{camera:03d}_{frame:08d}_0.jpg"


def _noisy(base: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """The picture moved a little, with a colour cast per 32x32 patch (which no pooling averages
    away) of about ``strength``, and some pixel noise."""
    shifted = np.roll(base, int(rng.integers(-3, 4)), axis=0).astype(np.float32)
    cast = np.kron(rng.normal(0, strength, (HEIGHT // 32, WIDTH // 32, 3)), np.ones((32, 32, 1)))
    return np.clip(shifted + cast + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def write_reid_folder(root: Path, kind: str = "market1501", seed: int = 0) -> Path:
    """root/<query>/ and root/<gallery>/ with JPEG pictures; returns root."""
    import cv2

    rng = np.random.default_rng(seed)
    query_dir, gallery_dir = (root / d for d in LAYOUTS[kind])
    query_dir.mkdir(parents=True, exist_ok=True)
    gallery_dir.mkdir(parents=True, exist_ok=True)
    frame = 0

    def write(folder: Path, picture: np.ndarray, identity: int, camera: int) -> None:
        nonlocal frame
        frame += 1
        cv2.imwrite(str(folder / file_name(kind, identity, camera, frame)), picture, [cv2.IMWRITE_JPEG_QUALITY, 95])

    for identity in range(1, IDENTITIES + 1):
        base = make_scene(HEIGHT, WIDTH, seed=seed * 100 + identity)
        strength = (4.0, 30.0, 90.0)[identity % 3]  # quiet, middling, noisy
        query_camera = 1 + identity % 6
        write(query_dir, _noisy(base, strength, rng), identity, query_camera)
        write(gallery_dir, _noisy(base, 2.0, rng), identity, query_camera)  # its own camera: never counted
        if identity != IDENTITIES:  # (the last one's gallery is all from its query's camera)
            for k in range(2):
                write(gallery_dir, _noisy(base, strength, rng), identity, 1 + (query_camera + k) % 6)
    for k in range(3):  # distractors and junk
        write(gallery_dir, make_scene(HEIGHT, WIDTH, seed=seed * 100 + 90 + k), 0, 1 + k)
        write(gallery_dir, make_scene(HEIGHT, WIDTH, seed=seed * 100 + 95 + k), -1, 1 + k)
    return root


def embedding_ir(xml: Path, height: int = 256, width: int = 128, size: int = 16, seed: int = 0) -> Path:
    """A [1,3,H,W] f32 network whose [1, size, 1, 1] output is a linear map of the picture's
    average colour in a 4x2 grid, minus its mean (not normalised: the adapter's grn_workaround
    does that)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, height, width], np.float32, name="data")
    pooled = ops.avg_pool(picture, [height // 4, width // 2], [0, 0], [0, 0], [height // 4, width // 2],
                          exclude_pad=True)
    flat = ops.reshape(pooled, ops.constant(np.array([1, 24], np.int64)), special_zero=False)
    centred = ops.subtract(flat, ops.constant(np.full((1, 24), 110.0, np.float32)))
    weights = ops.constant(rng.normal(0, 1, (24, size)).astype(np.float32))
    embedding = ops.reshape(ops.matmul(centred, weights, False, False),
                            ops.constant(np.array([1, size, 1, 1], np.int64)), special_zero=False)
    embedding.output(0).get_tensor().set_names({"embedding"})
    model = ov.Model([embedding], [picture], "tiny-reid")
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def write_retrieval_folder(root: Path, seed: int = 0) -> Path:
    """An image-retrieval set as Open Model Zoo's textile_crops: root/gallery/ with gallery.txt,
    root/queries/ with quieries.txt (its spelling), `FILE ID` a line; pictures of several sizes
    (PNG), ids as words; one query's id is in no gallery line."""
    import cv2

    rng = np.random.default_rng(seed)
    lines: dict[str, list[str]] = {"gallery": [], "queries": []}
    for side in lines:
        (root / side).mkdir(parents=True, exist_ok=True)
    sizes = ((160, 120), (224, 224), (300, 200), (128, 256))
    for identity in range(1, IDENTITIES + 1):
        base = make_scene(HEIGHT, WIDTH, seed=seed * 100 + identity)
        strength = (4.0, 30.0, 90.0)[identity % 3]
        copies = {"gallery": 0 if identity == IDENTITIES else 2, "queries": 1}
        for side, count in copies.items():
            for k in range(count):
                h, w = sizes[(identity + k + len(side)) % len(sizes)]
                name = f"{side[0]}{identity:03d}_{k}.png"
                cv2.imwrite(str(root / side / name), cv2.resize(_noisy(base, strength, rng), (w, h)))
                lines[side].append(f"{name} item{identity:03d}\n")
    (root / "gallery" / "gallery.txt").write_text("".join(lines["gallery"]))
    (root / "queries" / "quieries.txt").write_text("".join(lines["queries"]))
    return root


LFW_SIDE = 250  # LFW's pictures
PEOPLE = 20


def write_lfw_folder(root: Path, seed: int = 0, mtcnn: bool = False) -> Path:
    """root/lfw/PERSON/PERSON_NNNN.jpg, root/annotation/pairs.txt and lfw_landmark.txt, as LFW's:
    twenty people of two or three pictures each, each picture its person's with noise of the
    person's own strength; the landmarks near the reference places, moved a few pixels. With
    ``mtcnn``, as lfw_mtcnn_align's: 160x160 PNG pictures."""
    import cv2

    from ..accuracy.preprocessing import REFERENCE_LANDMARKS

    rng = np.random.default_rng(seed)
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    counts, landmarks = {}, []
    for k in range(PEOPLE):
        person = f"Person_{chr(65 + k)}"
        (root / "lfw" / person).mkdir(parents=True, exist_ok=True)
        base = make_scene(LFW_SIDE, LFW_SIDE, seed=seed * 100 + k)
        counts[person] = 2 + k % 2
        for n in range(1, counts[person] + 1):
            picture = _noisy(cv2.resize(base, (WIDTH, HEIGHT)), (6.0, 25.0, 60.0)[k % 3], rng)
            side = 160 if mtcnn else LFW_SIDE
            cv2.imwrite(str(root / "lfw" / person / f"{person}_{n:04d}.{'png' if mtcnn else 'jpg'}"),
                        cv2.resize(picture, (side, side)), [] if mtcnn else [cv2.IMWRITE_JPEG_QUALITY, 95])
            points = REFERENCE_LANDMARKS * LFW_SIDE * 0.6 + LFW_SIDE * 0.2 + rng.integers(-6, 7, (5, 2))
            landmarks.append("\t".join([f"{person}/{person}_{n:04d}.jpg"] + [str(int(v)) for v in points.ravel()]))
    people = list(counts)
    same = [f"{p}\t1\t{counts[p]}" for p in people] + [f"{p}\t1\t2" for p in people[::3]]
    other = [f"{people[i]}\t{1 + i % 2}\t{people[(i * 7 + 3) % PEOPLE]}\t1" for i in range(PEOPLE)]
    (root / "annotation" / "pairs.txt").write_text(f"1\t{len(same)}\n" + "\n".join(same + other) + "\n")
    (root / "annotation" / "lfw_landmark.txt").write_text("\n".join(landmarks) + "\n")
    return root


def write_lfw_bin(root: Path, seed: int = 0, pairs: int = 30) -> Path:
    """root/lfw.bin as insightface packs LFW (Open Model Zoo's lfw_bin): a pickle of (the
    pictures as JPEG bytes, one "same person" flag per two pictures), 112x112 faces; half the
    pairs one person's, half two people's. Returns the file."""
    import pickle

    import cv2

    rng = np.random.default_rng(seed)
    bases = [make_scene(HEIGHT, WIDTH, seed=seed * 100 + k) for k in range(PEOPLE)]
    bins, same = [], []
    for k in range(pairs):
        first = k % PEOPLE
        second = first if k % 2 == 0 else (first + 1 + k % (PEOPLE - 1)) % PEOPLE
        for person in (first, second):
            picture = cv2.resize(_noisy(bases[person], (6.0, 25.0, 60.0)[person % 3], rng), (112, 112))
            bins.append(cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
        same.append(first == second)
    root.mkdir(parents=True, exist_ok=True)
    (root / "lfw.bin").write_bytes(pickle.dumps((bins, same), protocol=2))
    return root / "lfw.bin"


PLACES = 12


def write_pitts_folder(root: Path, seed: int = 0) -> Path:
    """A Pittsburgh-style folder (Open Model Zoo's pitts30k_val): root/datasets/pitts30k_val.mat (a
    MATLAB dbStruct written by scipy), database pictures in root/000/, queries in
    root/queries_real/000/; twelve places 100 m apart, two database pictures and a query at each
    (within 10 m of it), with noise of the place's own strength. Returns root."""
    import cv2
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    for folder in ("datasets", "000", "queries_real/000"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names: dict[str, list[str]] = {"db": [], "q": []}
    utm: dict[str, list[list[float]]] = {"db": [], "q": []}
    for place in range(PLACES):
        base = make_scene(HEIGHT, WIDTH, seed=seed * 100 + place)
        centre = np.array([585000.0 + 100 * place, 4477000.0 + 37 * place])
        for side, count in (("db", 2), ("q", 1)):
            for k in range(count):
                name = f"000/{place:06d}_{side}{k}.jpg"
                picture = cv2.resize(_noisy(base, (4.0, 30.0, 90.0)[place % 3], rng), (640, 480))
                cv2.imwrite(str(root / ("queries_real" if side == "q" else "") / name), picture,
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
                names[side].append(name)
                utm[side].append(list(centre + rng.uniform(-7, 7, 2)))

    def cell(values: list[str]) -> np.ndarray:
        out = np.empty((len(values), 1), dtype=object)
        for i, v in enumerate(values):
            out[i, 0] = v
        return out

    savemat(str(root / "datasets/pitts30k_val.mat"), {"dbStruct": {
        "whichSet": "val", "dbImageFns": cell(names["db"]), "utmDb": np.array(utm["db"]).T,
        "qImageFns": cell(names["q"]), "utmQ": np.array(utm["q"]).T, "numImages": len(names["db"]),
        "numQueries": len(names["q"]), "posDistThr": 25.0}})
    return root
