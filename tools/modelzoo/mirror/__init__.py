"""What a mirror is and how it is read: the manifest (format and codec), the stores a mirror
lives in (a folder, an S3 prefix), and the read side of converted IR in mirrors (ir_share: the
one place the converter and the quantizer take IR from a mirror).

May import: the ground modules, transport, store and download (its worker pool and transport).
Building and auditing a mirror is the sync package's.
"""
