"""Predictors: the one protocol every model implements, and the registry that finds them."""

from reasonseg_x.predictors.protocol import MISSING, Output, Predictor, Query

__all__ = ["MISSING", "Output", "Predictor", "Query"]
