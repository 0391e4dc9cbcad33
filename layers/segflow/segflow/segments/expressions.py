"""CEL expressions through cel-python: parse once, check against the field catalogue, evaluate safely.

cel-python parses with a Lark grammar and interprets the tree: no Python eval/exec of rule text. Its
InterpretedRunner is used (the CompiledRunner transpiles to Python, fails on some valid expressions in
0.5.0 and shares module globals between threads).

Checking a rule at load time:
- syntax: the parser's own error, with line and column;
- unknown names: free identifiers of the tree (macro variables such as `p` in `xs.exists(p, ...)` excluded)
  must be catalogue fields; called functions must be CEL functions;
- types: cel-python 0.5 has no static checker, so every operator, call and `&&`/`||`/`?:` operand of the
  tree is evaluated on its own against a typed sample (one value per declared kind). Evaluating the
  sub-expressions one by one means short-circuits cannot hide a mismatch in an untaken branch;
- result: a rule must produce a bool.

At run time an evaluation error (a missing value compared with `<`, a missing map key) means "no match".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from difflib import get_close_matches
from functools import lru_cache
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import Activation, CELEvalError, Evaluator, base_functions

from segflow.segments.fields import CATALOGUE, Field, Kind

MACROS = frozenset({"exists", "all", "exists_one", "map", "filter"})
# Functions and methods a rule may call: CEL's standard library plus the `has` macro.
KNOWN_FUNCTIONS = frozenset({name for name in base_functions if name[0].isalpha()} | MACROS | {"has"})
_SAMPLE_BY_KIND: dict[str, Any] = {
    "string": celtypes.StringType("x"),
    "int": celtypes.IntType(1),
    "double": celtypes.DoubleType(1.5),
    "bool": celtypes.BoolType(True),
    "list": celtypes.ListType([celtypes.StringType("x")]),
    "map": celtypes.MapType({}),
}
# Nodes whose value is an operation worth type-checking on its own (they have 2+ children then).
_OPERATION_NODES = frozenset(
    {"relation", "addition", "multiplication", "unary", "conditionaland", "conditionalor"}
)
_CALL_NODES = frozenset({"member_dot_arg", "ident_arg", "member_index"})

_environment: celpy.Environment | None = None
logger = logging.getLogger(__name__)


class ExpressionError(ValueError):
    """A problem with one expression; `kind` is syntax, unknown_field, unknown_function or type."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CheckedExpression:
    text: str
    fields: tuple[str, ...]  # catalogue fields the expression reads, sorted
    runner: celpy.Runner


def environment() -> celpy.Environment:
    # Building the Lark parser takes ~0.4 s: once per process, on first use.
    global _environment
    if _environment is None:
        _environment = celpy.Environment(runner_class=celpy.InterpretedRunner)
    return _environment


@lru_cache(maxsize=1024)
def parse(text: str) -> lark.Tree:
    try:
        return environment().compile(text)
    except celpy.CELParseError as error:
        detail = " ".join(str(error.args[0]).split()) if error.args else "invalid expression"
        where = f" at line {error.line}, column {error.column}" if getattr(error, "line", None) else ""
        raise ExpressionError("syntax", f"syntax error{where}: {detail}") from None
    except (lark.exceptions.LarkError, RecursionError) as error:
        raise ExpressionError("syntax", f"syntax error: {type(error).__name__}") from None


def free_identifiers(tree: lark.Tree) -> set[str]:
    """Variable names the expression reads from its context (macro-bound variables excluded)."""
    return _identifiers(tree) - _macro_variables(tree)


def called_functions(tree: lark.Tree) -> set[str]:
    names = set()
    for node in tree.iter_subtrees():
        if node.data == "ident_arg":
            names.add(str(node.children[0]))
        elif node.data == "member_dot_arg":
            names.add(str(node.children[1]))
    return names


def _identifiers(tree: lark.Tree) -> set[str]:
    return {
        str(child)
        for node in tree.iter_subtrees()
        if node.data == "ident"
        for child in node.children
        if isinstance(child, lark.Token)
    }


def _macro_variables(tree: lark.Tree) -> set[str]:
    bound = set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg" and str(node.children[1]) in MACROS and len(node.children) > 2:
            arguments = node.children[2]
            if isinstance(arguments, lark.Tree) and arguments.children:
                first = arguments.children[0]
                if isinstance(first, lark.Tree):
                    bound |= _identifiers(first)
    return bound


def check(
    text: str, catalogue: Mapping[str, Field] = CATALOGUE, expect_bool: bool = True
) -> CheckedExpression:
    """Parse and check one expression; raises ExpressionError naming the first problem found."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("syntax", "expression is empty")
    tree = parse(text)
    names = free_identifiers(tree)
    unknown = sorted(names - catalogue.keys())
    if unknown:
        raise ExpressionError(
            "unknown_field", "unknown field " + ", ".join(_suggest(n, catalogue) for n in unknown)
        )
    functions = sorted(called_functions(tree) - KNOWN_FUNCTIONS)
    if functions:
        raise ExpressionError(
            "unknown_function", "unknown function " + ", ".join(f"'{f}'" for f in functions)
        )
    sample = Activation(vars={name: _SAMPLE_BY_KIND[catalogue[name].kind] for name in names})
    _check_types(text, tree, sample)
    if expect_bool:
        result = _evaluate_tree(tree, sample)
        if _is_type_error(result):
            raise ExpressionError("type", f"type mismatch: {_reason(result)}")
        if not isinstance(result, (celtypes.BoolType, CELEvalError)):
            raise ExpressionError("type", f"rule must be true or false, but it gives a {_type_name(result)}")
    runner = environment().program(tree)
    return CheckedExpression(text=text, fields=tuple(sorted(names)), runner=runner)


def _check_types(text: str, tree: lark.Tree, sample: Activation) -> None:
    bound = _macro_variables(tree)
    for node in tree.iter_subtrees():  # bottom-up: the innermost mismatch is reported
        is_operation = node.data in _OPERATION_NODES and len(node.children) > 1
        is_call = node.data == "member" and any(
            isinstance(c, lark.Tree) and c.data in _CALL_NODES for c in node.children
        )
        is_ternary = node.data == "expr" and len(node.children) == 3
        if not (is_operation or is_call or is_ternary) or (bound and _identifiers(node) & bound):
            continue
        if is_ternary:
            _check_branches(text, node, sample)
            continue
        result = _evaluate_tree(node, sample)
        if _is_type_error(result):
            raise ExpressionError("type", f"type mismatch in '{_snippet(text, node)}': {_reason(result)}")
        if node.data in ("conditionaland", "conditionalor"):
            for operand in node.children:
                value = _evaluate_tree(operand, sample)
                if not isinstance(value, (celtypes.BoolType, CELEvalError)) and not (
                    bound and _identifiers(operand) & bound
                ):
                    op = "&&" if node.data == "conditionaland" else "||"
                    raise ExpressionError(
                        "type",
                        f"type mismatch: '{_snippet(text, operand)}' is a {_type_name(value)}, "
                        f"{op} needs true/false",
                    )


def _check_branches(text: str, node: lark.Tree, sample: Activation) -> None:
    condition, *branches = node.children
    if not isinstance(_evaluate_tree(condition, sample), (celtypes.BoolType, CELEvalError)):
        raise ExpressionError(
            "type", f"type mismatch: the condition '{_snippet(text, condition)}' is not true/false"
        )
    kinds = {
        _type_name(v)
        for v in (_evaluate_tree(b, sample) for b in branches)
        if not isinstance(v, CELEvalError)
    }
    if len(kinds) > 1:
        raise ExpressionError(
            "type", f"type mismatch in '{_snippet(text, node)}': branches give {' and '.join(sorted(kinds))}"
        )


def _evaluate_tree(tree: lark.Tree, activation: Activation) -> Any:
    try:
        return Evaluator(tree, activation).evaluate()
    except CELEvalError as error:
        return error
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as error:
        return CELEvalError(str(error), type(error), None)


def _is_type_error(result: Any) -> bool:
    return isinstance(result, CELEvalError) and len(result.args) > 1 and result.args[1] is TypeError


def _reason(error: CELEvalError) -> str:
    detail = error.args[2] if len(error.args) > 2 and error.args[2] else error.args[0]
    text = str(detail[0] if isinstance(detail, tuple) and detail else detail)
    kinds = [
        k
        for k in ("StringType", "IntType", "DoubleType", "BoolType", "ListType", "MapType", "NoneType")
        if k in text
    ]
    if kinds:
        names = ", ".join(dict.fromkeys(_KIND_NAMES[k] for k in kinds))
        hint = " (CEL keeps int and double apart: write 30 for an int field, 30.0 for a double one)"
        return f"operands of incompatible types ({names})" + (
            hint if "int" in names and "double" in names else ""
        )
    return "operands of incompatible types"


_KIND_NAMES = {
    "StringType": "string",
    "IntType": "int",
    "DoubleType": "double",
    "BoolType": "bool",
    "ListType": "list",
    "MapType": "map",
    "NoneType": "null",
}


def _type_name(value: Any) -> str:
    for cel_type, name in (
        (celtypes.BoolType, "bool"),
        (celtypes.IntType, "int"),
        (celtypes.StringType, "string"),
    ):
        if isinstance(value, cel_type):
            return name
    if isinstance(value, float):
        return "double"
    if isinstance(value, (celtypes.ListType, list)):
        return "list"
    if isinstance(value, (celtypes.MapType, dict)):
        return "map"
    return type(value).__name__


def _snippet(text: str, node: lark.Tree) -> str:
    meta = getattr(node, "meta", None)
    if meta is not None and not meta.empty:
        return text[meta.start_pos : meta.end_pos].strip()
    return text


def _suggest(name: str, catalogue: Iterable[str]) -> str:
    close = get_close_matches(name, list(catalogue), n=1, cutoff=0.75)
    return f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else "")


# -- run time ----------------------------------------------------------------------------------------------


def plain_value(value: Any, kind: Kind) -> Any:
    """A hashable plain value of the declared kind, or None when absent or not convertible."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if kind == "string":
        if isinstance(value, str):
            return value
        return str(value) if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else None
    if kind == "int":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, (float, Decimal)) and value == int(value):
            return int(value)
        return None
    if kind == "double":
        return (
            float(value) if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) else None
        )
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind == "list":
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
            return tuple(str(v) if isinstance(v, Decimal) else v for v in items)
        return None
    if kind == "map":
        return _frozen(value) if isinstance(value, Mapping) else None
    return None


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("__list__", tuple(_frozen(v) for v in value))
    if isinstance(value, Decimal):
        return int(value) if value == int(value) else float(value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == "__list__":
            return [_thawed(v) for v in value[1]]
        return {k: _thawed(v) for k, v in value}
    return value


def cel_value(value: Any, kind: Kind) -> Any:
    """CEL value for a plain value from `plain_value` (None stays null)."""
    if value is None:
        return None
    if kind == "string":
        return celtypes.StringType(value)
    if kind == "int":
        return celtypes.IntType(value)
    if kind == "double":
        return celtypes.DoubleType(value)
    if kind == "bool":
        return celtypes.BoolType(value)
    if kind == "list":
        return json_to_cel(list(value))
    return json_to_cel(_thawed(value))


def run(
    expression: CheckedExpression, plain_values: tuple[Any, ...], catalogue: Mapping[str, Field] = CATALOGUE
) -> Any:
    """Evaluate with the plain values of `expression.fields` (same order); a CEL error gives None."""
    context = {
        name: cel_value(value, catalogue[name].kind)
        for name, value in zip(expression.fields, plain_values, strict=True)
    }
    try:
        return expression.runner.evaluate(context)
    except CELEvalError:
        return None
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as error:
        # cel-python lets a few Python errors escape; a rule that cannot be evaluated does not match.
        logger.debug("expression raised %s", type(error).__name__)
        return None


def to_python(value: Any) -> Any:
    """CEL result -> plain Python (for merge-field expressions)."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (celtypes.ListType, list)):
        return [to_python(v) for v in value]
    if isinstance(value, (celtypes.MapType, dict)):
        return {str(k): to_python(v) for k, v in value.items()}
    return value
