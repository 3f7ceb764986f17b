"""Where verified bytes are kept on this machine: the download cache (content-addressed blobs),
the IR cache (conversion and quantization results by key), and their administration (ls, prune,
verify, repair).

May import: the ground modules and transport. Nothing here runs a pipeline.
"""
