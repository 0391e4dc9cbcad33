"""Train the K-Means customer clusters and export them as a JSON artifact (training side: sklearn/scipy).

Robust scaling, k chosen by silhouette on a sample, centroid-derived labels, and label stability across
retrains: new centroids are matched to the previous model's (Hungarian assignment) and a matched cluster
keeps its id and label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import RobustScaler
from threadpoolctl import threadpool_limits

from segflow.scoring.artifact import SCHEMA_VERSION, fingerprint, model_version, plain
from segflow.scoring.cluster_features import CORE_FEATURES, ENGAGEMENT_FEATURES, inverse, transform
from segflow.scoring.cluster_inference import CLUSTER_KIND, nearest_centroid
from segflow.scoring.cluster_naming import describe, feature_levels, unique_labels

SILHOUETTE_SAMPLE = 5_000
MAX_LABEL_SHIFT = 1.0  # robust-scaled units a matched centroid may move and still keep its label


def train_clusters(
    features: pd.DataFrame,
    k_range: tuple[int, int] = (3, 8),
    random_state: int = 0,
    previous_model: Mapping[str, Any] | None = None,
    *,
    max_train_rows: int = 200_000,
    max_label_shift: float = MAX_LABEL_SHIFT,
    n_threads: int | None = 1,
    return_estimators: bool = False,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    """Fit scaler + K-Means (k in k_range inclusive, best silhouette) and return the JSON artifact.

    Single-threaded by default: the same centroids whatever the machine, no OpenMP spin-waiting on
    busy hosts, and Lambda below 1,769 MB has one vCPU anyway.
    With ``return_estimators`` also returns {"scaler", "kmeans", "id_of_label"} (sklearn objects)
    so tests can compare numpy inference with scikit-learn's own predict.
    """
    with threadpool_limits(limits=n_threads):
        return _train(
            features,
            k_range,
            random_state,
            previous_model,
            max_train_rows,
            max_label_shift,
            return_estimators,
        )


def _train(
    features: pd.DataFrame,
    k_range: tuple[int, int],
    random_state: int,
    previous_model: Mapping[str, Any] | None,
    max_train_rows: int,
    max_label_shift: float,
    return_estimators: bool,
) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
    spec = _feature_spec(features)
    values = transform(features, spec)
    complete = ~np.isnan(values).any(axis=1)
    values = values[complete]
    if len(values) < 2:
        raise ValueError("need at least 2 customers with complete features to train clusters")
    rng = np.random.default_rng(random_state)
    fit_rows = (
        values
        if len(values) <= max_train_rows
        else values[rng.choice(len(values), max_train_rows, replace=False)]
    )

    scaler = RobustScaler().fit(fit_rows)
    scaled = scaler.transform(fit_rows)
    kmeans, silhouettes = _select_k(scaled, k_range, random_state)
    centroids = kmeans.cluster_centers_
    assigned = nearest_centroid(scaler.transform(values), centroids)
    sizes = np.bincount(assigned, minlength=len(centroids))

    names = [item["name"] for item in spec]
    centroid_units = inverse(scaler.inverse_transform(centroids), spec)
    levels = [feature_levels(names, z, u) for z, u in zip(centroids, centroid_units, strict=True)]
    ids, labels, matching = _stable_identity(centroids, scaler, spec, levels, previous_model, max_label_shift)

    clusters = [
        {
            "id": int(ids[c]),
            "label": labels[c],
            "description": describe(names, centroids[c], centroid_units[c], sizes[c] / max(len(values), 1)),
            "centroid": centroids[c],
            "centroid_features": dict(zip(names, centroid_units[c], strict=True)),
            "size": int(sizes[c]),
            "levels": levels[c],
        }
        for c in np.argsort(ids)
    ]
    data_fingerprint = fingerprint(features, names)
    as_of = features.attrs.get("as_of")
    artifact = plain(
        {
            "kind": CLUSTER_KIND,
            "schema_version": SCHEMA_VERSION,
            "version": model_version("clusters", data_fingerprint, as_of),
            "as_of": as_of,
            "features": spec,
            "scaler": {"center": scaler.center_, "scale": scaler.scale_},
            "clusters": clusters,
            "metrics": {
                "k": len(centroids),
                "silhouette": silhouettes[len(centroids)],
                "silhouette_by_k": {str(k): s for k, s in silhouettes.items()},
                "sizes": {str(ids[c]): int(sizes[c]) for c in range(len(centroids))},
                "inertia": float(kmeans.inertia_),
                "n_customers": int(len(values)),
                "n_train_rows": int(len(fit_rows)),
                "matched_to_previous": matching,
            },
            "training": {
                "k_range": list(k_range),
                "random_state": random_state,
                "fingerprint": data_fingerprint,
            },
        }
    )
    if return_estimators:
        return artifact, {"scaler": scaler, "kmeans": kmeans, "id_of_label": np.asarray(ids)}
    return artifact


def _feature_spec(features: pd.DataFrame) -> list[dict[str, str]]:
    spec = [{"name": name, "transform": how} for name, how in CORE_FEATURES]
    for name, how in ENGAGEMENT_FEATURES:
        if name in features.columns and features[name].nunique(dropna=True) > 1:
            spec.append({"name": name, "transform": how})
    return spec


def _select_k(
    scaled: np.ndarray, k_range: tuple[int, int], random_state: int
) -> tuple[KMeans, dict[int, float]]:
    k_min, k_max = k_range
    if k_min < 2 or k_max < k_min:
        raise ValueError(f"k_range must satisfy 2 <= k_min <= k_max, got {k_range}")
    distinct = len(np.unique(scaled, axis=0))
    candidates = [k for k in range(k_min, k_max + 1) if k < distinct] or [max(min(k_min, distinct), 1)]
    sample = scaled
    if len(scaled) > SILHOUETTE_SAMPLE:
        sample_rows = np.random.default_rng(random_state).choice(
            len(scaled), SILHOUETTE_SAMPLE, replace=False
        )
        sample = scaled[sample_rows]
    best: tuple[float, KMeans] | None = None
    silhouettes: dict[int, float] = {}
    for k in candidates:
        model = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(scaled)
        labels = model.predict(sample)
        score = float(silhouette_score(sample, labels)) if 1 < len(np.unique(labels)) < len(sample) else -1.0
        silhouettes[k] = score
        if best is None or score > best[0]:  # ties keep the smaller k
            best = (score, model)
    assert best is not None
    return best[1], silhouettes


def _stable_identity(
    centroids: np.ndarray,
    scaler: RobustScaler,
    spec: list[dict[str, str]],
    levels: list[dict[str, str]],
    previous: Mapping[str, Any] | None,
    max_shift: float,
) -> tuple[list[int], list[str], list[dict[str, Any]]]:
    """Cluster ids and labels; clusters matched to the previous model inherit its id and label."""
    k = len(centroids)
    ids: list[int | None] = [None] * k
    labels: list[str | None] = [None] * k
    matching: list[dict[str, Any]] = []
    shared = [j for j, item in enumerate(spec) if previous is not None and item in previous["features"]]
    if previous is not None and shared:
        prev_spec = previous["features"]
        prev_clusters = previous["clusters"]
        # Previous centroids back to feature units, then through the new scaler: one common space.
        prev_center = np.asarray(previous["scaler"]["center"])
        prev_scale = np.asarray(previous["scaler"]["scale"])
        prev_units = np.asarray([c["centroid"] for c in prev_clusters]) * prev_scale + prev_center
        column_of = {item["name"]: j for j, item in enumerate(prev_spec)}
        cols = [column_of[spec[j]["name"]] for j in shared]
        prev_in_new = (prev_units[:, cols] - scaler.center_[shared]) / scaler.scale_[shared]
        cost = np.linalg.norm(centroids[:, shared][:, None, :] - prev_in_new[None, :, :], axis=2)
        for new_c, prev_c in zip(*linear_sum_assignment(cost), strict=True):
            distance = float(cost[new_c, prev_c])
            keep = distance <= max_shift
            ids[new_c] = int(prev_clusters[prev_c]["id"])
            if keep:
                labels[new_c] = prev_clusters[prev_c]["label"]
            matching.append({"id": ids[new_c], "distance": distance, "label_kept": keep})
    next_id = max([i for i in ids if i is not None], default=-1) + 1
    for c in range(k):
        if ids[c] is None:
            ids[c] = next_id
            next_id += 1
    fresh = [c for c in range(k) if labels[c] is None]
    taken = [label for label in labels if label is not None]
    for c, label in zip(fresh, unique_labels([levels[c] for c in fresh], taken), strict=True):
        labels[c] = label
    return [int(i) for i in ids], [str(label) for label in labels], matching
