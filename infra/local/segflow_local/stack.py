"""The embedded local default: moto in server mode, provisioned from template.yaml.

boto3 reaches moto through AWS_ENDPOINT_URL, exactly as the handlers reach AWS when deployed. Resources
are created through the service APIs from the translated template (moto's CloudFormation lacks some
types and mis-resolves a Ref to an event bus inside a rule). IAM, KMS policies, log groups and layers are
recorded but not enforced: moto does not evaluate IAM, and the template tests check them instead.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import boto3

from segflow_local.template import ACCOUNT_ID, Resolver, code_path, dependencies, load_template, translate

REGION = "us-east-1"
NOT_EMULATED = {
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::Logs::LogGroup",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Permission",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::Topic",
    "AWS::SNS::TopicPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::Scheduler::ScheduleGroup",
}


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int


@dataclass
class QueueSource:
    """An SQS event source mapping: which queue feeds which function, and how."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    visibility_timeout: int
    max_receive_count: int | None
    dead_letter_arn: str | None


@dataclass
class RuleSource:
    """An EventBridge rule with a Lambda target; locally its matches go through a shadow queue."""

    rule: str
    function: str
    queue_url: str
    max_attempts: int  # Lambda's asynchronous invocation: the first try plus two retries by default
    dead_letter_arn: str | None


@dataclass
class ScheduleSource:
    name: str
    function: str
    expression: str
    input: dict[str, Any] | None


@dataclass
class Deployment:
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    queue_sources: list[QueueSource] = field(default_factory=list)
    rule_sources: list[RuleSource] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)
    # function logical id -> (attempts, on-failure SQS ARN) from EventInvokeConfig
    invoke_configs: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    physical: dict[str, Any] = field(default_factory=dict)  # logical id -> Ref value
    skipped: dict[str, str] = field(default_factory=dict)  # logical id -> type not emulated


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """moto in server mode, in its own process: it then works on the other core instead of competing
    with the handlers for this process's GIL."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> "MotoServer":
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
                urllib.request.urlopen(request, timeout=2)
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on port {self.port}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()


def aws_environment(endpoint: str, region: str = REGION) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


class StackDeployer:
    """Creates the translated template's resources in moto through the service APIs."""

    def __init__(self, repo_root: Path, stack_name: str, parameters: dict[str, str], region: str = REGION) -> None:
        self.repo_root = repo_root
        self.stack_name = stack_name
        self.region = region
        self.parameters = parameters
        self.session = boto3.session.Session(region_name=region)

    def deploy(self, template_path: Path) -> Deployment:
        source = load_template(template_path)
        cfn = translate(source, self.region)
        params = {name: spec.get("Default") for name, spec in cfn.get("Parameters", {}).items()}
        params.update(self.parameters)
        resolver = Resolver(
            params,
            cfn.get("Conditions", {}),
            {
                "AWS::StackName": self.stack_name,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Region": self.region,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
        )
        resources = cfn["Resources"]
        graph = {
            name: (dependencies(res.get("Properties", {})) | set(_as_list(res.get("DependsOn"))))
            & set(resources)
            for name, res in resources.items()
        }
        deployment = Deployment()
        for name in TopologicalSorter(graph).static_order():
            resource = resources[name]
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue
            kind = resource["Type"]
            create = getattr(self, "_create_" + kind.replace("::", "_"), None)
            if create is None:
                deployment.skipped[name] = kind
                resolver.refs[name] = f"{self.stack_name}-{name}"
                resolver.attrs[name] = {"Arn": f"arn:aws:local:::{self.stack_name}-{name}"}
                continue
            props = resolver.resolve(resource.get("Properties", {}))
            create(name, props, resolver, deployment)
            deployment.physical[name] = resolver.refs.get(name)
        deployment.outputs = {
            key: resolver.resolve(out["Value"]) for key, out in cfn.get("Outputs", {}).items()
        }
        return deployment

    # ---- resource types --------------------------------------------------------------------
    def _create_AWS_KMS_Key(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        key = self.session.client("kms").create_key(Description=props.get("Description", name))["KeyMetadata"]
        resolver.refs[name] = key["KeyId"]
        resolver.attrs[name] = {"Arn": key["Arn"], "KeyId": key["KeyId"]}

    def _create_AWS_S3_Bucket(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        s3 = self.session.client("s3")
        bucket = props.get("BucketName") or f"{self.stack_name}-{name}".lower()
        s3.create_bucket(Bucket=bucket)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        resolver.refs[name] = bucket
        resolver.attrs[name] = {"Arn": f"arn:aws:s3:::{bucket}", "DomainName": f"{bucket}.s3.amazonaws.com"}
        queues = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if queues:
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "QueueArn": q["Queue"],
                            "Events": [q["Event"]],
                            **({"Filter": _s3_filter(q["Filter"])} if "Filter" in q else {}),
                        }
                        for q in queues
                    ]
                },
            )

    def _create_AWS_DynamoDB_Table(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        ddb = self.session.client("dynamodb")
        table = props.get("TableName") or f"{self.stack_name}-{name}"
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                kwargs[key] = props[key]
        description = ddb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
        resolver.refs[name] = table
        resolver.attrs[name] = {"Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn")}

    def _create_AWS_SQS_Queue(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        sqs = self.session.client("sqs")
        queue = props.get("QueueName") or f"{self.stack_name}-{name}"
        attributes = {
            key: (json.dumps(value) if isinstance(value, dict) else str(value))
            for key, value in props.items()
            if key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "RedrivePolicy",
                       "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication")
        }
        url = sqs.create_queue(QueueName=queue, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolver.refs[name] = url
        resolver.attrs[name] = {"Arn": arn, "QueueName": queue, "QueueUrl": url}

    def _create_AWS_Events_EventBus(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        arn = self.session.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        resolver.refs[name] = props["Name"]
        resolver.attrs[name] = {"Arn": arn, "Name": props["Name"]}

    def _create_AWS_Lambda_Function(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        folder = code_path(props.get("Code", {}))
        if folder is None:
            raise ValueError(f"{name}: only local CodeUri folders can run locally")
        function_name = props.get("FunctionName") or f"{self.stack_name}-{name}"
        env = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        dep.functions[name] = FunctionSpec(
            logical_id=name,
            name=function_name,
            code_dir=self.repo_root / folder,
            handler=props["Handler"],
            environment=env,
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
        )
        resolver.refs[name] = function_name
        resolver.attrs[name] = {"Arn": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{function_name}"}

    def _create_AWS_Lambda_EventSourceMapping(
        self, name: str, props: dict, resolver: Resolver, dep: Deployment
    ) -> None:
        source_arn = props["EventSourceArn"]
        if ":sqs:" not in source_arn:
            dep.skipped[name] = "AWS::Lambda::EventSourceMapping (non-SQS)"
            return
        sqs = self.session.client("sqs")
        queue_name = source_arn.rsplit(":", 1)[1]
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"]) if "RedrivePolicy" in attrs else {}
        function = next(f for f in dep.functions.values() if f.name == props["FunctionName"])
        dep.queue_sources.append(
            QueueSource(
                function=function.logical_id,
                queue_url=url,
                queue_arn=source_arn,
                batch_size=int(props.get("BatchSize", 10)),
                report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                visibility_timeout=int(attrs.get("VisibilityTimeout", 30)),
                max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
                dead_letter_arn=redrive.get("deadLetterTargetArn"),
            )
        )
        resolver.refs[name] = f"{self.stack_name}-{name}"


    def _create_AWS_SecretsManager_Secret(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        import secrets as token_source

        secret_name = props.get("Name") or f"{self.stack_name}-{name}"
        kwargs: dict[str, Any] = {"Name": secret_name, "Description": props.get("Description", "")}
        if "SecretString" in props:
            kwargs["SecretString"] = props["SecretString"]
        elif "GenerateSecretString" in props:
            kwargs["SecretString"] = token_source.token_urlsafe(int(props["GenerateSecretString"].get("PasswordLength", 32)))
        arn = self.session.client("secretsmanager").create_secret(**kwargs)["ARN"]
        resolver.refs[name] = arn
        resolver.attrs[name] = {"Id": arn}

    def _create_AWS_Lambda_EventInvokeConfig(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        function = next(f for f in dep.functions.values() if f.name == props["FunctionName"])
        on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        dep.invoke_configs[function.logical_id] = (1 + int(props.get("MaximumRetryAttempts", 2)), on_failure)
        resolver.refs[name] = f"{self.stack_name}-{name}"

    def _lambda_target(self, dep: Deployment, arn: str) -> FunctionSpec | None:
        return next((f for f in dep.functions.values() if arn.endswith(f":function:{f.name}")), None)

    def _create_AWS_Events_Rule(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        events = self.session.client("events")
        bus = props.get("EventBusName", "default")
        bus = bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus
        rule = props.get("Name") or f"{self.stack_name}-{name}"[:64]
        resolver.refs[name] = rule
        resolver.attrs[name] = {"Arn": f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{bus}/{rule}"}
        if "ScheduleExpression" in props:
            for target in props.get("Targets", []):
                function = self._lambda_target(dep, target["Arn"])
                if function:
                    payload = json.loads(target["Input"]) if "Input" in target else None
                    dep.schedules.append(ScheduleSource(rule, function.logical_id, props["ScheduleExpression"], payload))
            return
        events.put_rule(
            Name=rule,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
        )
        sqs = self.session.client("sqs")
        for index, target in enumerate(props.get("Targets", [])):
            function = self._lambda_target(dep, target["Arn"])
            if function is None:
                events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": target["Id"], "Arn": target["Arn"]}])
                continue
            shadow = f"{rule}-to-{function.logical_id}"[:80]
            url = sqs.create_queue(QueueName=shadow)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": f"local{index}", "Arn": arn}])
            retry = target.get("RetryPolicy", {})
            dep.rule_sources.append(
                RuleSource(
                    rule=rule,
                    function=function.logical_id,
                    queue_url=url,
                    max_attempts=1 + int(retry.get("MaximumRetryAttempts", 2)),
                    dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
                )
            )

    def _create_AWS_Scheduler_Schedule(self, name: str, props: dict, resolver: Resolver, dep: Deployment) -> None:
        # moto cannot run EventBridge Scheduler; the router fires schedules on demand instead.
        target = props["Target"]
        function = self._lambda_target(dep, target["Arn"])
        if function:
            payload = json.loads(target["Input"]) if "Input" in target else None
            dep.schedules.append(ScheduleSource(name, function.logical_id, props["ScheduleExpression"], payload))
        resolver.refs[name] = f"{self.stack_name}-{name}"
        resolver.attrs[name] = {"Arn": f"arn:aws:scheduler:{self.region}:{ACCOUNT_ID}:schedule/default/{name}"}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _s3_filter(filter_: dict[str, Any]) -> dict[str, Any]:
    rules = filter_.get("S3Key", {}).get("Rules", [])
    return {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}


def set_aws_environment(endpoint: str) -> dict[str, str | None]:
    """Points this process's boto3 at moto; returns the previous values to restore."""
    env = aws_environment(endpoint)
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return previous
