"""Measuring a converted model as its card does (Open Model Zoo's accuracy checker's semantics):
config (accuracy-check.yml), dataset (COCO folders), preprocessing, adapter, postprocessing,
metric (pycocotools), evaluate (the pipeline on OpenVINO)."""
