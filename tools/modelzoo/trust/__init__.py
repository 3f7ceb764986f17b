"""What a zoo's users can trust beyond each descriptor's SHA-384 (issue 28): the lock file
(``lock.py``: a selection pinned to its descriptors, files and IR, checked by ``--locked``;
``ir_lock.py``: the IR it pins, from the IR cache or mirrors, verified),
signed mirror manifests and per-IR signatures (``signing.py``: OpenSSF model signing in key mode,
fully offline), and a mirror's CycloneDX ML-BOM (``sbom.py``).

May import: everything below it (ground, transport, store, download, mirror, accuracy, convert,
sync). Only the command lines import it; lower layers that must honour a verified manifest
(mirror/ir_share.py) read the pins it leaves in the environment, never this package.
"""
