"""Building and auditing a mirror of a zoo (`mirror.py sync` and `verify`): the plan of what a
mirror should hold (pure: a descriptor's files and IR alike), the sync and audit pipeline (one
per-file routine and one audit for both kinds), what each kind says (voice.py), and IR in mirrors
(`sync --ir`: converted and quantized through the converter's and quantizer's own cached paths,
then published by that same routine).

May import: everything below it (ground, transport, store, download, mirror, convert). Only the
command lines import it.
"""
