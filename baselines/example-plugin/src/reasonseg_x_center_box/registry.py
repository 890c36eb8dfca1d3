"""What the entry point names: a light description of the model (no heavy imports here)."""

from reasonseg_x.predictors.registry import PredictorArg, PredictorSpec

CENTER_BOX = PredictorSpec(
    name="center-box",  # the entry point's name wins; kept equal for readability
    factory="reasonseg_x_center_box.model:CenterBoxPredictor",
    description="A centred box covering a fraction of the image (example plugin).",
    args=(PredictorArg("fraction", "float", 0.5, "share of the width and height the box covers"),),
)
