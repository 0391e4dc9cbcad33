"""K-Means clusters: artifact, numpy inference, labels and stability across retrains."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from segflow.scoring import assign_clusters, build_features, cluster_labels, train_clusters
from segflow.scoring.cluster_features import transform
from segflow.scoring.cluster_naming import base_label, unique_labels

ARCHETYPES = {  # (recency_days, frequency, monetary, avg_order_value, tenure_days), share of customers
    "Frequent High Spenders": ((10, 15, 2000, 130, 700), 0.1),
    "Lapsed Big Spenders": ((420, 4, 1600, 400, 800), 0.1),
    "New Customers": ((8, 1, 60, 60, 12), 0.2),
    "Occasional Low Spenders": ((60, 1, 25, 25, 300), 0.3),
    "Frequent Buyers": ((90, 2, 150, 75, 300), 0.3),  # 2 orders is above this population's median
}


def archetype_features(n: int, seed: int, prefix: str = "c") -> pd.DataFrame:
    """Well separated customer groups, multiplicative noise, as build_features would return them."""
    rng = np.random.default_rng(seed)
    rows = []
    for centre, share in ARCHETYPES.values():
        per_group = round(n * share)
        noise = rng.lognormal(0, 0.12, (per_group, 5))
        block = np.asarray(centre, dtype=float) * noise
        block[:, 1] = np.maximum(np.round(block[:, 1]), 1)
        rows.append(block)
    values = np.vstack(rows)
    index = pd.Index([f"{prefix}{i:05d}" for i in range(len(values))], name="customer_id")
    return pd.DataFrame(
        values,
        columns=["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"],
        index=index,
    )


@pytest.fixture(scope="module")
def archetypes() -> pd.DataFrame:
    return archetype_features(600, seed=1)


@pytest.fixture(scope="module")
def archetype_model(archetypes: pd.DataFrame) -> dict:
    return train_clusters(archetypes, k_range=(3, 6), random_state=0)


def test_k_is_chosen_by_silhouette_and_labels_follow_the_centroids(archetype_model: dict) -> None:
    metrics = archetype_model["metrics"]
    assert metrics["k"] == 5
    assert metrics["silhouette"] == max(metrics["silhouette_by_k"].values())
    assert set(metrics["silhouette_by_k"]) == {"3", "4", "5", "6"}
    assert sorted(c["label"] for c in archetype_model["clusters"]) == sorted(ARCHETYPES)
    assert sum(metrics["sizes"].values()) == 600
    shares = {c["label"]: c["size"] / 600 for c in archetype_model["clusters"]}
    assert shares == {label: share for label, (_, share) in ARCHETYPES.items()}
    for cluster in archetype_model["clusters"]:
        assert cluster["description"].startswith(f"{cluster['size'] / 600:.0%} of customers; typically")


def test_artifact_is_plain_json(archetype_model: dict) -> None:
    text = json.dumps(archetype_model, allow_nan=False)
    restored = json.loads(text)
    assert restored == archetype_model
    assert restored["kind"] == "segflow.clusters" and restored["schema_version"] == 1
    assert len(restored["training"]["fingerprint"]) == 64
    assert {"center", "scale"} <= set(restored["scaler"])


def test_numpy_inference_equals_sklearn_predict(shop: tuple, shop_as_of: pd.Timestamp) -> None:
    orders, events = shop
    features = build_features(orders, events, shop_as_of)
    artifact, estimators = train_clusters(features, k_range=(3, 5), random_state=0, return_estimators=True)
    artifact = json.loads(json.dumps(artifact))
    ours = assign_clusters(artifact, features)
    matrix = estimators["scaler"].transform(transform(features, artifact["features"]))
    theirs = estimators["id_of_label"][estimators["kmeans"].predict(matrix)]
    assert len(ours) == len(features) > 1000
    np.testing.assert_array_equal(ours.to_numpy(), theirs)
    assert [f["name"] for f in artifact["features"]][-3:] == ["email_opens", "email_clicks", "page_views"]
    labels = cluster_labels(artifact, ours)
    assert labels.notna().all() and labels.nunique() == artifact["metrics"]["k"]


def test_retrain_keeps_ids_and_labels_of_unchanged_customers(
    archetypes: pd.DataFrame, archetype_model: dict
) -> None:
    newcomers = archetype_features(60, seed=9, prefix="n")
    grown = pd.concat([archetypes, newcomers])
    before = cluster_labels(archetype_model, assign_clusters(archetype_model, archetypes))
    for seed in (1, 2, 3):
        retrained = train_clusters(grown, k_range=(3, 6), random_state=seed, previous_model=archetype_model)
        after = cluster_labels(retrained, assign_clusters(retrained, archetypes))
        pd.testing.assert_series_equal(after, before)
        assert all(m["label_kept"] for m in retrained["metrics"]["matched_to_previous"])
        assert {c["id"]: c["label"] for c in retrained["clusters"]} == {
            c["id"]: c["label"] for c in archetype_model["clusters"]
        }


def test_without_previous_model_ids_follow_kmeans_order(
    archetypes: pd.DataFrame, archetype_model: dict
) -> None:
    """The matching is what keeps ids: fresh models number clusters in their own order."""
    id_maps = []
    for seed in range(6):
        fresh = train_clusters(archetypes, k_range=(5, 5), random_state=seed)
        id_maps.append(tuple(sorted((c["label"], c["id"]) for c in fresh["clusters"])))
    assert len(set(id_maps)) > 1


def test_moved_centroids_get_fresh_labels(archetypes: pd.DataFrame, archetype_model: dict) -> None:
    shifted = archetypes.assign(recency_days=archetypes["recency_days"] + 2000)
    retrained = train_clusters(shifted, k_range=(5, 5), random_state=0, previous_model=archetype_model)
    assert not any(m["label_kept"] for m in retrained["metrics"]["matched_to_previous"])
    labels = [c["label"] for c in retrained["clusters"]]
    assert len(set(labels)) == len(labels)


def test_k_range_is_validated(archetypes: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="k_range"):
        train_clusters(archetypes, k_range=(5, 3))


def test_base_labels_for_classic_profiles() -> None:
    typical = {"engagement": "typical", "avg_order_value": "typical"}
    assert (
        base_label(
            {**typical, "recency_days": "low", "frequency": "high", "monetary": "high", "tenure_days": "high"}
        )[0]
        == "Frequent High Spenders"
    )
    assert (
        base_label(
            {
                **typical,
                "recency_days": "high",
                "frequency": "typical",
                "monetary": "high",
                "tenure_days": "high",
            }
        )[0]
        == "Lapsed Big Spenders"
    )
    assert (
        base_label(
            {**typical, "recency_days": "low", "frequency": "low", "monetary": "low", "tenure_days": "low"}
        )[0]
        == "New Customers"
    )
    assert (
        base_label(
            {
                **typical,
                "recency_days": "typical",
                "frequency": "low",
                "monetary": "low",
                "tenure_days": "typical",
            }
        )[0]
        == "Occasional Low Spenders"
    )


def test_unique_labels_use_the_first_differing_dimension_then_numbers() -> None:
    common = {
        "recency_days": "low",
        "frequency": "high",
        "monetary": "high",
        "tenure_days": "high",
        "engagement": "typical",
    }
    levels = [
        {**common, "avg_order_value": "typical"},
        {**common, "avg_order_value": "high"},
        {**common, "avg_order_value": "typical"},
    ]
    labels = unique_labels(levels)
    assert labels == ["Frequent High Spenders", "Premium Frequent High Spenders", "Frequent High Spenders 2"]
    # a fresh cluster clashing with an inherited label is told apart like a same-model twin
    assert unique_labels([levels[0]], taken=["Frequent High Spenders"]) == ["Recent Frequent High Spenders"]
    identical = {**common, "recency_days": "typical", "tenure_days": "typical", "avg_order_value": "typical"}
    assert unique_labels([identical], taken=["Frequent High Spenders"]) == ["Frequent High Spenders 2"]


def test_inference_paths_do_not_import_sklearn_or_scipy() -> None:
    code = (
        "import sys\n"
        "from segflow.scoring import assign_clusters, predict_value, compute_rfm, btyd_summary\n"
        "from segflow.scoring import build_features\n"
        "from segflow.scoring import assign_tiers, explain, score_all\n"
        "import segflow.rfm\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
