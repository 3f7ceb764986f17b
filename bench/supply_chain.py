#!/usr/bin/env python3
"""Supply-chain benchmarks (issue 28): `modelzoo-lock` of a zoo of Open Model Zoo's shape, signing
and verifying a mirror manifest of that zoo, and what `--locked` adds to a warm-cache download.

    python bench/supply_chain.py [--repeat 7] [--json results.json]

Needs the 'sign' extra (model-signing, pyopenssl). The zoo has the 1,215 files of openvino-dev
2024.6's descriptors when omz_tools can be imported, else 1,215 files in 263 generated models
(the lock reads descriptors only: file sizes do not matter). The manifest is that zoo's, one entry
a file (as `mirror.py sync` writes it). The warm path is bench/download.py's case 3: 200 files of
1 MiB from a warm cache into a fresh output folder, -j 8, with and without --locked, taking turns.
Targets: lock < 1 s; signing a manifest < 1 s; --locked adds < 5 % to the warm path. Prints the
numbers; asserts nothing (results: docs/performance.md).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO, Timing, dump_json, interleaved, median_time, ours, report, warm_cache, write_descriptor,
)

sys.path.insert(0, str(REPO / "tools"))


def zoo_files() -> dict[str, list[tuple[str, int]]]:
    try:
        from cache import omz_files

        return omz_files()
    except ImportError:
        out: dict[str, list[tuple[str, int]]] = {}
        for i in range(1215):
            out.setdefault(f"model-{i % 263:03}", []).append((f"file-{i:04}.bin", 1000 + i))
        return out


def build_zoo(zoo: Path) -> tuple[int, dict]:
    """The descriptors, and the manifest a sync of them would write."""
    files, entries = 0, {}
    for name, fs in zoo_files().items():
        rows = []
        for fname, size in fs:
            sha = hashlib.sha384(f"{name}/{fname}".encode()).hexdigest()
            rows.append((fname, size, sha, f"https://example.com/{name}/{fname}"))
            entries[f"public/{name}/{fname}"] = {"model": name, "size": size, "sha384": sha, "stamp": "1-2-3",
                                                 "source": rows[-1][3], "verified": "2026-12-07T00:00:00Z",
                                                 "descriptor": f"public/{name}/model.yml",
                                                 "descriptor_sha384": "0" * 96}
            files += 1
        if rows:
            write_descriptor(zoo, name, rows)
    return files, {"format": "modelzoo-mirror/1", "updated": "2026-12-07T00:00:00Z", "files": entries}


def signing(work: Path, manifest: dict, repeat: int) -> list[tuple[str, str]]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from modelzoo.mirror.manifest import encode_manifest
    from modelzoo.mirror.stores import FolderStore
    from modelzoo.trust.publish import after_sync
    from modelzoo.trust.signing import load_private_key, load_public_keys, verify_mirror

    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = work / "key.pem", work / "key.pub.pem"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    dest = work / "mirror"
    dest.mkdir()
    raw = encode_manifest(manifest)
    (dest / "modelzoo-mirror.json").write_bytes(raw)
    store, signer, trusted = FolderStore(dest), load_private_key(priv), load_public_keys([pub])
    sign_times, verify_times = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        after_sync(store, [], work, signer, False, [], [], lambda text: None)
        sign_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        verify_mirror(str(dest), trusted)
        verify_times.append(time.perf_counter() - t)
    cli = median_time([[sys.executable, "-m", "model_signing", "sign", "key", str(dest / "modelzoo-mirror.json"),
                        "--signature", str(work / "cli.sig"), "--private_key", str(priv)]], repeat)[0]
    size = f"{len(manifest['files']):,} entries, {len(raw) / 1e6:.2f} MB"
    return [("sign a manifest (in-process, after_sync)", f"{Timing(sign_times)}  ({size})"),
            ("verify it (in-process, verify_mirror)", str(Timing(verify_times))),
            ("model_signing sign key (its CLI)", str(cli))]


def warm_locked(work: Path, repeat: int) -> list[tuple[str, str]]:
    zoo, cache, out = work / "zoo-warm", work / "cache-warm", work / "out-warm"
    warm_cache(zoo, cache)
    lock = work / "warm.lock"
    median_time([[*ours("lock"), "--models_dir", str(zoo), "--all", "-o", str(lock)]], 1)
    args = ["--models_dir", str(zoo), "--all", "-j", "8", "-o", str(out), "--cache_dir", str(cache)]
    cmds = {"plain": [*ours("downloader"), *args], "--locked": [*ours("downloader"), *args, "--locked", str(lock)]}

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)
        os.sync()

    times = interleaved(cmds, repeat, clean)
    # what --locked adds, alone and in-process (the whole runs above are noisy on a shared machine):
    # read the lock, check every selected model against it (trust/policy.start), and list the
    # files the run would fetch for the HEAD requests (Downloader.to_fetch: none from a warm cache)
    from types import SimpleNamespace

    from modelzoo.catalog import Catalog
    from modelzoo.download.pipeline import DownloadOptions, Downloader
    from modelzoo.events import Reporter
    from modelzoo.trust.policy import start

    catalog = Catalog(zoo)
    models = catalog.all()
    own = []
    shutil.rmtree(out, ignore_errors=True)
    for _ in range(repeat):
        t = time.perf_counter()
        policy = start(SimpleNamespace(locked=lock), models, zoo, [], [], print)
        check = policy.before_fetch(60.0, 8)
        downloader = Downloader(DownloadOptions(out, cache_dir=cache, before_fetch=check), Reporter("text", bars=False))
        wanted = downloader.to_fetch(models)
        check(wanted)
        own.append(time.perf_counter() - t)
    assert not wanted, "a warm cache: nothing to fetch, no HEAD request"
    return [("warm path (200 x 1 MiB, -j 8)", f"plain: {times['plain']}   --locked: {times['--locked']}   "
                                              f"ratio {times['--locked'] / times['plain']:.3f}"),
            ("--locked's own work (in-process, 200 models: check, files to fetch)", f"{Timing(own)}  = "
                                                              f"{Timing(own) / times['plain'] * 100:.1f} % of plain")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="modelzoo-bench-supply-") as tmp:
        work = Path(tmp)
        files, manifest = build_zoo(work / "zoo")
        lock = work / "zoo.lock"
        cmd = [*ours("lock"), "--models_dir", str(work / "zoo"), "--all", "-o", str(lock)]
        t, rss = median_time([cmd], args.repeat)
        rows.append((f"lock --all ({files:,} files)", f"{t}  peak {rss:.0f} MB"))
        t, _ = median_time([[*ours("lock"), "--models_dir", str(work / "zoo"), "--check", "-o", str(lock)]],
                           args.repeat)
        rows.append(("lock --check", str(t)))
        rows += signing(work, manifest, args.repeat)
        rows += warm_locked(work, args.repeat)
    report("supply chain", rows)
    if args.json:
        dump_json(args.json, dict(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
