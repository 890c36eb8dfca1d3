"""Reference predictors: sanity baselines (oracle, empty, full, replay of a file) and model adapters.

The sanity baselines are numpy-only; model adapters (VisionReasoner, Seg-Zero, gt-box-sam) import
torch inside their constructors. Import a baseline module directly, or load it by name through
:func:`reasonseg_x.predictors.registry.load_predictor`.
"""
