"""Predictors: the one protocol every model implements, and the registry that finds them."""

from reasonseg_x.predictors.protocol import Output, Predictor, Query

__all__ = ["Output", "Predictor", "Query"]
