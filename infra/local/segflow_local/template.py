"""Reads template.yaml the way CloudFormation would: SAM transform, then intrinsic functions.

The local stack creates exactly what the translated template describes, so a wiring mistake in the
template (a wrong prefix, a wrong queue) breaks the local run just as it would break the deployed one.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Callable

import yaml

ACCOUNT_ID = "123456789012"
PLACEHOLDER_BUCKET = "segflow-local-code"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns short-form tags (!Ref, !Sub, !GetAtt ...) into long-form dicts."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(Path(path).read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def translate(template: dict[str, Any], region: str) -> dict[str, Any]:
    """SAM -> CloudFormation. CodeUri/ContentUri become placeholder S3 URIs the translator accepts."""
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://{PLACEHOLDER_BUCKET}/{props[key].rstrip('/')}"

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        return transform(template, {}, _NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def code_path(code: dict[str, Any]) -> str | None:
    """The repository folder a translated function's Code points to."""
    if isinstance(code, dict) and code.get("S3Bucket") == PLACEHOLDER_BUCKET:
        return code["S3Key"]
    return None


class Resolver:
    """Evaluates Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Equals, Fn::Join, Fn::Select, Fn::Not."""

    def __init__(self, parameters: dict[str, Any], conditions: dict[str, Any], pseudo: dict[str, str]) -> None:
        self.parameters = parameters
        self.pseudo = pseudo
        self.refs: dict[str, Any] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self._conditions_src = conditions
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self._conditions_src[name]))
        return self.conditions[name]

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"unresolved Ref {name}")

    def get_att(self, name: str, attribute: str) -> Any:
        try:
            return self.attrs[name][attribute]
        except KeyError as err:
            raise KeyError(f"unresolved GetAtt {name}.{attribute}") from err

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            handler: Callable[[Any], Any] | None = getattr(self, "_fn_" + key.replace("::", "_"), None)
            if handler is not None:
                return handler(arg)
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not _NO_VALUE}

    def _fn_Fn_GetAtt(self, arg: Any) -> Any:
        name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        return self.get_att(name, self.resolve(attribute))

    def _fn_Fn_Sub(self, arg: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in local:
                return str(local[token])
            if "." in token:
                name, attribute = token.split(".", 1)
                return str(self.get_att(name, attribute))
            return str(self.ref(token))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)

    def _fn_Fn_If(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_Fn_Equals(self, arg: list[Any]) -> bool:
        left, right = (self.resolve(a) for a in arg)
        return str(left) == str(right)

    def _fn_Fn_Not(self, arg: list[Any]) -> bool:
        return not self.resolve(arg[0])

    def _fn_Fn_And(self, arg: list[Any]) -> bool:
        return all(self.resolve(a) for a in arg)

    def _fn_Fn_Or(self, arg: list[Any]) -> bool:
        return any(self.resolve(a) for a in arg)

    def _fn_Fn_Join(self, arg: list[Any]) -> str:
        separator, items = arg
        return separator.join(str(i) for i in self.resolve(items))

    def _fn_Fn_Select(self, arg: list[Any]) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


def dependencies(value: Any) -> set[str]:
    """Logical ids a resource's properties refer to."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str) and not arg.startswith("AWS::"):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                for token in re.findall(r"\$\{([^}!]+)\}", text):
                    name = token.split(".", 1)[0]
                    if not name.startswith("AWS::"):
                        found.add(name)
                if not isinstance(arg, str):
                    found |= dependencies(arg[1])
            else:
                found |= dependencies(arg)
    elif isinstance(value, list):
        for item in value:
            found |= dependencies(item)
    return found
