"""The download pipeline: obtain one file (cache, mirrors, upstream; decide, then fetch), the
Downloader over models, post-download steps (unpack_archive, regex_replace) and the free-space
check every writing pipeline asks first.

May import: the ground modules, transport and store.
"""
