"""Delivers events to handlers the way AWS would, from what the template wired.

SQS event sources honour batch size, ReportBatchItemFailures, maxReceiveCount and the dead-letter
queue (moto moves a message to the DLQ once its receive count passes maxReceiveCount). Handlers run
in this process with the function's environment variables and a Lambda context object. Failed messages
are made visible again at once instead of after the visibility timeout: local time is compressed.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

import boto3

from segflow_local.stack import REGION, Deployment, FunctionSpec, QueueSource, RuleSource


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass
class Invocation:
    function: str
    records: int
    failed: int
    error: str | None
    seconds: float


@contextlib.contextmanager
def function_environment(spec: FunctionSpec, extra: dict[str, str]) -> Iterator[None]:
    env = {
        **spec.environment,
        **extra,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
    }
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _reset_cached_settings()
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _reset_cached_settings() -> None:
    config = sys.modules.get("segflow.config")
    if config is not None:
        config.get_settings.cache_clear()


class Router:
    def __init__(self, deployment: Deployment, extra_env: dict[str, str] | None = None) -> None:
        self.deployment = deployment
        self.extra_env = extra_env or {}
        self.sqs = boto3.client("sqs", region_name=REGION)
        self._modules: dict[str, ModuleType] = {}
        self.invocations: list[Invocation] = []
        self.delivered: list[tuple[str, dict[str, Any]]] = []  # (function, event) as handed over

    def handler(self, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        spec = self.deployment.functions[logical_id]
        module_name, attribute = spec.handler.rsplit(".", 1)
        if logical_id not in self._modules:
            path = spec.code_dir / (module_name.replace(".", "/") + ".py")
            unique = "segflow_fn_" + hashlib.sha1(str(path).encode()).hexdigest()[:8]
            module_spec = importlib.util.spec_from_file_location(unique, path)
            assert module_spec and module_spec.loader, f"cannot load {path}"
            module = importlib.util.module_from_spec(module_spec)
            with function_environment(spec, self.extra_env):
                module_spec.loader.exec_module(module)
            self._modules[logical_id] = module
        return getattr(self._modules[logical_id], attribute)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        spec = self.deployment.functions[logical_id]
        handler = self.handler(logical_id)
        context = LambdaContext(
            function_name=spec.name,
            memory_limit_in_mb=spec.memory,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{spec.name}",
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=spec.timeout,
        )
        with function_environment(spec, self.extra_env):
            return handler(event, context)

    def poll_queue(self, source: QueueSource) -> int:
        """One receive + one invocation for an event source mapping; returns messages handled."""
        response = self.sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=min(source.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=source.visibility_timeout,
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [_sqs_record(m, source.queue_arn) for m in messages]}
        self.delivered.append((source.function, event))
        started = time.monotonic()
        failed_ids: set[str] = set()
        error = None
        try:
            result = self.invoke(source.function, event)
            if source.report_failures and isinstance(result, dict):
                failed_ids = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:  # noqa: BLE001 - a failed invocation fails its whole batch, as in Lambda
            error = traceback.format_exc(limit=5)
            failed_ids = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed_ids:
                self.sqs.change_message_visibility(
                    QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.invocations.append(
            Invocation(source.function, len(messages), len(failed_ids), error, time.monotonic() - started)
        )
        return len(messages)

    def poll_rule(self, source: RuleSource) -> int:
        """Rule matches reach the function as the EventBridge event itself (asynchronous invocation)."""
        messages = self.sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            self.delivered.append((source.function, event))
            attempts, on_failure = self.deployment.invoke_configs.get(source.function, (3, None))
            self._invoke_async(source.function, event, attempts, on_failure or source.dead_letter_arn)
            self.sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _invoke_async(self, function: str, event: dict[str, Any], attempts: int, dead_letter_arn: str | None) -> None:
        started = time.monotonic()
        error = None
        for _ in range(attempts):
            try:
                self.invoke(function, event)
                error = None
                break
            except Exception:  # noqa: BLE001 - Lambda retries an async invocation that raised
                error = traceback.format_exc(limit=5)
        if error and dead_letter_arn:
            queue_url = self.sqs.get_queue_url(QueueName=dead_letter_arn.rsplit(":", 1)[1])["QueueUrl"]
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
        self.invocations.append(Invocation(function, 1, 1 if error else 0, error, time.monotonic() - started))

    def fire_schedules(self, names: list[str] | None = None) -> int:
        """Runs scheduled functions once now (the nightly and weekly work), with the scheduled event shape."""
        fired = 0
        for schedule in self.deployment.schedules:
            if names is not None and schedule.name not in names and schedule.function not in names:
                continue
            event = schedule.input or {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": REGION, "resources": [schedule.name], "detail": {},
            }
            self.delivered.append((schedule.function, event))
            attempts, on_failure = self.deployment.invoke_configs.get(schedule.function, (3, None))
            self._invoke_async(schedule.function, event, attempts, on_failure)
            fired += 1
        return fired

    def run_until_idle(
        self,
        idle_rounds: int = 3,
        pause: float = 0.05,
        max_rounds: int = 100_000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Pump every queue until nothing arrives for a few rounds (S3 notifications are asynchronous)."""
        handled = quiet = 0
        for _ in range(max_rounds):
            round_handled = sum(self.poll_queue(s) for s in self.deployment.queue_sources)
            round_handled += sum(self.poll_rule(r) for r in self.deployment.rule_sources)
            handled += round_handled
            if progress is not None and round_handled:
                progress(round_handled)
            quiet = 0 if round_handled else quiet + 1
            if quiet >= idle_rounds:
                return handled
            if not round_handled:
                time.sleep(pause)
        raise RuntimeError("event flow did not settle")


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
