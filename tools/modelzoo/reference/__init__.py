"""A RetinaNet built here (retinanet-tf's architecture, random or trained weights), its
post-processing in numpy, and a reference zoo around it: the stand-in behind the offline demo
and the tests, since the real weights cannot be fetched here. Imports TensorFlow lazily.
"""
