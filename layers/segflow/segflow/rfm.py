"""RFM scoring (alias of segflow.scoring.rfm, kept for the architecture's module map)."""

from segflow.scoring.rfm import compute_rfm, rfm_thresholds, score_one

__all__ = ["compute_rfm", "rfm_thresholds", "score_one"]
