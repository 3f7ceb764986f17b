"""How bytes travel: HTTP(S), file:// and s3:// sources, offline mode, retries, parallel pieces.

Owns: fetch (the scheme table and the Fetcher that verifies while it streams), segments (one
file in several connections), retry, offline (the switch every network source obeys), s3 (the S3
client and the s3:// opener). May import: the ground modules of modelzoo (errors, events, fsio,
verify). Knows nothing of caches, mirrors, descriptors' pipelines or OpenVINO.
"""
