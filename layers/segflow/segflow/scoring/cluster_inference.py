"""Assign customers to clusters from a JSON cluster artifact with numpy alone (no scikit-learn/scipy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from segflow.scoring.artifact import require_kind
from segflow.scoring.cluster_features import transform

CLUSTER_KIND = "segflow.clusters"


def scaled_matrix(artifact: Mapping[str, Any], features: pd.DataFrame) -> np.ndarray:
    """Transformed, robust-scaled feature matrix; missing values take the training median."""
    spec = artifact["features"]
    center = np.asarray(artifact["scaler"]["center"], dtype=np.float64)
    scale = np.asarray(artifact["scaler"]["scale"], dtype=np.float64)
    values = transform(features, spec)
    values = np.where(np.isnan(values), center, values)
    return (values - center) / scale


def nearest_centroid(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the closest centroid, computed like scikit-learn's KMeans.predict.

    ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2 and ||x||^2 does not change the argmin, so (like
    scikit-learn) only -2 x.c + ||c||^2 is compared; ties go to the lowest index in both.
    """
    if len(points) == 0:
        return np.empty(0, dtype=np.int64)
    distances = (centroids**2).sum(axis=1)[None, :] - 2.0 * points @ centroids.T
    return distances.argmin(axis=1)


def assign_clusters(artifact: Mapping[str, Any], features: pd.DataFrame) -> pd.Series:
    """Cluster id per customer (indexed like ``features``)."""
    require_kind(artifact, CLUSTER_KIND)
    clusters = artifact["clusters"]
    centroids = np.asarray([c["centroid"] for c in clusters], dtype=np.float64)
    ids = np.asarray([c["id"] for c in clusters], dtype=np.int64)
    nearest = nearest_centroid(scaled_matrix(artifact, features), centroids)
    return pd.Series(ids[nearest], index=features.index, name="cluster_id")


def cluster_labels(artifact: Mapping[str, Any], cluster_ids: pd.Series) -> pd.Series:
    """Human label of each assigned cluster id."""
    names = {c["id"]: c["label"] for c in artifact["clusters"]}
    return cluster_ids.map(names).astype("str").rename("cluster_label")
