"""Ready-made study parts for the shipped models: subjects, methods, metrics, studies.

Every name here can be given in a study config file
(``"captum_multimodal.studies.zoo:shipped_study"``); :func:`method` and :func:`metric`
look parts up by name.
"""

from captum_multimodal.studies.zoo.methods import (
    ATTENTION_METHODS,
    CLIP_METHODS,
    METHOD_TABLES,
    MLB_METHODS,
    method,
)
from captum_multimodal.studies.zoo.metrics import METRICS, TOLERANCE, metric
from captum_multimodal.studies.zoo.shipped import SHIPPED, ShippedModel, shipped_study
from captum_multimodal.studies.zoo.subjects import (
    ClipSubject,
    GridTokenSubject,
    LxmertSubject,
    MLBSubject,
    VisualBertSubject,
)

__all__ = [
    "ATTENTION_METHODS",
    "CLIP_METHODS",
    "METHOD_TABLES",
    "METRICS",
    "MLB_METHODS",
    "SHIPPED",
    "TOLERANCE",
    "ClipSubject",
    "GridTokenSubject",
    "LxmertSubject",
    "MLBSubject",
    "ShippedModel",
    "VisualBertSubject",
    "method",
    "metric",
    "shipped_study",
]
