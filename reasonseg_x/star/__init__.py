"""StAR (Segment Anything Reasoner): the reference model of ReasonSeg-X.

The pure parts (prompts, answer parser, coordinate frames) import nothing heavy; the model parts
(VLM loading, SAM segmenters, the predictor) import torch inside their own modules.
"""
