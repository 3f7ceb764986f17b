"""Measuring a converted model as its card does (Open Model Zoo's accuracy checker's semantics):
config (accuracy-check.yml), dataset (COCO folders, ImageNet's val.txt, Pascal VOC's XML and
masks), preprocessing, adapter, postprocessing, metric (pycocotools, VOC map, mean IoU),
evaluate (the pipeline on OpenVINO).

May import: the ground modules (errors, events, fsio, descriptor, catalog). The quantizer
(convert) and the command lines import it; it imports no pipeline.
"""
