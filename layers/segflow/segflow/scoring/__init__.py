"""Customer scoring: RFM, BTYD summary, behaviour features, clusters, CLV / churn, tiers, explanations.

Importing this package (or any inference function) never imports scikit-learn or scipy: the training
entry points (train_clusters, train_value_models, train_all) are loaded on first use, so the nightly
score function only pays for numpy and pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

from segflow.scoring.btyd import btyd_summary
from segflow.scoring.cluster_inference import assign_clusters, cluster_labels
from segflow.scoring.features import build_features
from segflow.scoring.pipeline import ScoreResult, score_all
from segflow.scoring.reasons import explain
from segflow.scoring.rfm import compute_rfm, rfm_thresholds, score_one
from segflow.scoring.rfm_segments import DEFAULT_SEGMENTS, SegmentTableError, segment_grid
from segflow.scoring.tiers import assign_tiers, tier_thresholds, tier_with_hysteresis
from segflow.scoring.value_inference import predict_value

_TRAINING = {
    "train_clusters": "segflow.scoring.clustering",
    "train_value_models": "segflow.scoring.prediction",
    "train_all": "segflow.scoring.pipeline",
}

__all__ = [
    "DEFAULT_SEGMENTS",
    "ScoreResult",
    "SegmentTableError",
    "assign_clusters",
    "assign_tiers",
    "btyd_summary",
    "build_features",
    "cluster_labels",
    "compute_rfm",
    "explain",
    "predict_value",
    "rfm_thresholds",
    "score_all",
    "score_one",
    "segment_grid",
    "tier_thresholds",
    "tier_with_hysteresis",
    *_TRAINING,
]


def __getattr__(name: str) -> Any:
    module = _TRAINING.get(name)
    if module is None:
        raise AttributeError(f"module 'segflow.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
