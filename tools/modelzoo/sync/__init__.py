"""Building and auditing a mirror of a zoo (`mirror.py sync` and `verify`): the plan of what a
mirror should hold (pure), the sync and audit pipeline for model files, and IR in mirrors
(`sync --ir`: converted and quantized through the converter's and quantizer's own cached paths).

May import: everything below it (ground, transport, store, download, mirror, convert). Only the
command lines import it.
"""
