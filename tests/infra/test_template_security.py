"""The security and reliability properties of template.yaml, asserted so a later edit cannot weaken them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from segflow_local.template import load_template

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
LIGHT = {"SegmentFunction", "ConsentFunction", "SyncPlanFunction", "SyncMailchimpFunction", "SyncHubspotFunction"}


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in RESOURCES.items() if v["Type"] == kind}


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function["Properties"].get("Policies", []) for s in policy.get("Statement", [])]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_functions_run_python312_on_arm64_with_encrypted_environment_and_tracing():
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12" and globals_["Architectures"] == ["arm64"]
    assert globals_["KmsKeyArn"] == {"Fn::GetAtt": ["DataKey", "Arn"]} and globals_["Tracing"] == "Active"
    for name, function in FUNCTIONS.items():
        assert function["Metadata"]["BuildMethod"] == "makefile", name
        assert "Runtime" not in function["Properties"] or function["Properties"]["Runtime"] == "python3.12"


def test_no_wildcard_action_or_resource_in_any_function_policy():
    for name, function in FUNCTIONS.items():
        for statement in statements(function):
            actions = as_list(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), (name, statement.get("Sid"))
            assert "*" not in as_list(statement["Resource"]), (name, statement.get("Sid"))


def test_light_functions_carry_only_the_segflow_layer():
    for name in LIGHT:
        assert FUNCTIONS[name]["Properties"]["Layers"] == [{"Ref": "SegflowLayer"}], name
    assert {"Ref": "ScienceLayer"} in FUNCTIONS["TrainFunction"]["Properties"]["Layers"]
    assert not any({"Ref": "ScienceLayer"} in f["Properties"]["Layers"] for n, f in FUNCTIONS.items() if n != "TrainFunction")


def test_data_bucket_is_encrypted_versioned_private_tls_only_logged_and_expires_raw_and_quarantine():
    bucket = RESOURCES["DataBucket"]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] == "aws:kms" and rule["KMSMasterKeyID"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    prefixes = {r.get("Prefix") for r in bucket["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"}
    assert {"raw/", "quarantine/", "sync/"} <= prefixes
    deny = RESOURCES["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert RESOURCES["DataKey"]["Properties"]["EnableKeyRotation"] is True


def test_table_has_point_in_time_recovery_kms_ttl_and_deletion_protection_in_prod():
    table = RESOURCES["ProfilesTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert table["TimeToLiveSpecification"]["Enabled"] is True
    assert table["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}


def test_every_queue_is_encrypted_and_work_queues_redrive_to_a_dead_letter_queue():
    for name, queue in of_type("AWS::SQS::Queue").items():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}, name
    for name in ("IngestQueue", "MailchimpQueue", "HubSpotQueue"):
        redrive = RESOURCES[name]["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] >= 1 and "deadLetterTargetArn" in redrive


def test_sqs_event_sources_report_partial_failures_and_visibility_is_six_times_the_timeout():
    for name, function in FUNCTIONS.items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            props = event["Properties"]
            assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
            queue = props["Queue"]["Fn::GetAtt"][0]
            visibility = RESOURCES[queue]["Properties"]["VisibilityTimeout"]
            assert visibility >= 6 * function["Properties"]["Timeout"], name


def test_sync_workers_have_reserved_concurrency_so_destination_limits_hold():
    for name in ("SyncMailchimpFunction", "SyncHubspotFunction"):
        assert FUNCTIONS[name]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_asynchronous_triggers_retry_and_end_in_a_dead_letter_queue():
    for name, function in FUNCTIONS.items():
        events = function["Properties"].get("Events", {})
        if all(e["Type"] == "SQS" for e in events.values()):
            continue
        on_failure = function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert on_failure["Destination"] == {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]}, name
        for event_name, event in events.items():
            if event["Type"] in ("EventBridgeRule", "ScheduleV2"):
                assert "RetryPolicy" in event["Properties"] and "DeadLetterConfig" in event["Properties"], event_name


def test_every_function_has_an_encrypted_log_group_and_error_and_throttle_alarms():
    groups = {json.dumps(g["Properties"]["LogGroupName"]) for g in of_type("AWS::Logs::LogGroup").values()}
    alarms = of_type("AWS::CloudWatch::Alarm")
    for name in FUNCTIONS:
        assert any(name in g for g in groups), name
        for metric in ("Errors", "Throttles"):
            assert any(a["Properties"].get("MetricName") == metric
                       and a["Properties"]["Dimensions"][0]["Value"] == {"Ref": name} for a in alarms.values()), (name, metric)
    assert all(g["Properties"]["KmsKeyId"] for g in of_type("AWS::Logs::LogGroup").values())
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())
    watched = {json.dumps(a["Properties"].get("Dimensions", "")) for a in alarms.values()}
    for dlq in ("IngestDeadLetterQueue", "AsyncDeadLetterQueue", "MailchimpQueueDeadLetter", "HubSpotQueueDeadLetter"):
        assert any(dlq in w for w in watched), dlq


@pytest.mark.parametrize("secret", ["MailchimpSecret", "HubSpotSecret", "ErasureSaltSecret"])
def test_secrets_are_encrypted_with_the_data_key(secret):
    assert RESOURCES[secret]["Properties"]["KmsKeyId"] == {"Ref": "DataKey"}


def test_sync_plan_hears_checked_contacts_only_from_the_sync_workers_and_holds_no_secret():
    """Workers announce the contacts they checked (ContactsChecked) so sync-plan plans them again; no other
    segflow.sync event (SyncCompleted, the workers' opt-outs meant for consent) may reach the planner, and the
    planner never holds a destination's credentials."""
    events = FUNCTIONS["SyncPlanFunction"]["Properties"]["Events"]
    patterns = [e["Properties"]["Pattern"] for e in events.values() if e["Type"] == "EventBridgeRule"]
    assert {"source": ["segflow.sync"], "detail-type": ["ContactsChecked"]} in patterns
    assert all(p["source"] != ["segflow.sync"] or p["detail-type"] == ["ContactsChecked"] for p in patterns)
    actions = {a for s in statements(FUNCTIONS["SyncPlanFunction"]) for a in as_list(s["Action"])}
    assert not any(a.startswith("secretsmanager:") for a in actions)
    environment = FUNCTIONS["SyncPlanFunction"]["Properties"]["Environment"]["Variables"]
    assert not any("SECRET" in name for name in environment)
