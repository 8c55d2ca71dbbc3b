"""A safe evaluator for the JavaScript subset accepted in a retry policy's ``retry_if.expr``.

Windmill evaluates ``retry_if.expr`` as JavaScript with ``error``, ``result`` and ``flow_input`` in
scope and retries only while it is truthy. The gateway runs no JavaScript: it understands the
subset such conditions are written in, and rejects anything else when the policy is validated, so
an expression never silently means something other than what it says.

Supported:

* the names ``error``, ``result``, ``flow_input``;
* string, number, ``true``, ``false``, ``null`` and ``undefined`` literals (a ``-`` written right
  before a number literal makes it negative);
* member access ``a.b`` and ``a["b"]`` (plus ``length`` and indices of strings and arrays);
* ``===``, ``!==``, ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` with JavaScript's coercion rules;
* ``&&``, ``||`` (which yield an operand, as in JavaScript), ``!`` and parentheses;
* the methods ``.includes(x)`` (strings and arrays), ``.startsWith(x)`` and ``.endsWith(x)``.

Truthiness is JavaScript's: ``false``, ``0``, ``NaN``, ``""``, ``null`` and ``undefined`` are
falsy, every object and array (even empty) is truthy.

Errors::

    ValueError
     └── ConditionSyntaxError   the text is not in the subset (raised by RetryCondition.parse)
    TypeError
     └── ConditionTypeError     what JavaScript would throw while evaluating, e.g. null.name
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

NAMES: Final = frozenset({"error", "result", "flow_input"})
METHODS: Final = frozenset({"includes", "startsWith", "endsWith"})
MAX_LENGTH: Final = 1000
MAX_NESTING: Final = 32


class ConditionSyntaxError(ValueError):
    """The expression is malformed or uses JavaScript outside the supported subset."""


class ConditionTypeError(TypeError):
    """Evaluation hit what JavaScript reports as a TypeError, such as reading a field of null."""


class _Undefined:
    """JavaScript's ``undefined``: a missing field or name, distinct from JSON ``null``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED: Final = _Undefined()


# --- JavaScript values and coercions -------------------------------------------------------------
# Values are decoded JSON (dict, list, str, int, float, bool, None) plus _UNDEFINED.

_JS_WHITESPACE: Final = (
    " \t\n\v\f\r\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL_LITERAL: Final = re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_RADIX_LITERAL: Final = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")
_ARRAY_INDEX: Final = re.compile(r"0|[1-9]\d*")


def _js_type(value: Any) -> str:
    if value is _UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _truthy(value: Any) -> bool:
    kind = _js_type(value)
    if kind in ("undefined", "null"):
        return False
    if kind == "number":
        number = _as_float(value)
        return number != 0 and not math.isnan(number)
    if kind in ("boolean", "string"):
        return bool(value)
    return True


def _as_float(number: float) -> float:
    """A JSON number as the double JavaScript holds; integers beyond its range become infinite."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def _to_primitive(value: Any) -> Any:
    if isinstance(value, list):
        return ",".join(
            "" if item is None or item is _UNDEFINED else _to_string(item) for item in value
        )
    if isinstance(value, dict):
        return "[object Object]"
    return value


def _number_to_string(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # repr gives the shortest digits that round-trip, as JavaScript does; only the layout differs.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = int(exponent) + k
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n > 0 else '-'}{abs(n - 1)}"
    return sign + text


def _to_string(value: Any) -> str:
    kind = _js_type(value)
    if kind == "string":
        return str(value)
    if kind == "number":
        return _number_to_string(_as_float(value))
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "object":
        return _to_string(_to_primitive(value))
    return kind


def _to_number(value: Any) -> float:
    kind = _js_type(value)
    if kind == "undefined":
        return math.nan
    if kind in ("null", "boolean", "number"):
        return _as_float(value or 0)
    if kind == "object":
        return _to_number(_to_primitive(value))
    text = str(value).strip(_JS_WHITESPACE)
    if not text:
        return 0.0
    if _RADIX_LITERAL.fullmatch(text):
        return float(int(text, 0))
    if _DECIMAL_LITERAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    return math.nan


def _strictly_equal(left: Any, right: Any) -> bool:
    kind = _js_type(left)
    if kind != _js_type(right):
        return False
    if kind == "object":
        return left is right
    if kind == "number":
        return _as_float(left) == _as_float(right)
    return bool(left == right)


def _loosely_equal(left: Any, right: Any) -> bool:
    left_kind, right_kind = _js_type(left), _js_type(right)
    if left_kind == right_kind:
        return _strictly_equal(left, right)
    if {left_kind, right_kind} == {"null", "undefined"}:
        return True
    if left_kind == "boolean":
        return _loosely_equal(_to_number(left), right)
    if right_kind == "boolean":
        return _loosely_equal(left, _to_number(right))
    if {left_kind, right_kind} == {"number", "string"}:
        return _to_number(left) == _to_number(right)
    if left_kind == "object" and right_kind in ("number", "string"):
        return _loosely_equal(_to_primitive(left), right)
    if right_kind == "object" and left_kind in ("number", "string"):
        return _loosely_equal(left, _to_primitive(right))
    return False


def _relation(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def relate(left: Any, right: Any) -> bool:
        left, right = _to_primitive(left), _to_primitive(right)
        if isinstance(left, str) and isinstance(right, str):
            # JavaScript orders strings by UTF-16 code units.
            return compare(
                left.encode("utf-16-be", "surrogatepass"),
                right.encode("utf-16-be", "surrogatepass"),
            )
        return compare(_to_number(left), _to_number(right))

    return relate


_COMPARISONS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "===": _strictly_equal,
    "!==": lambda left, right: not _strictly_equal(left, right),
    "==": _loosely_equal,
    "!=": lambda left, right: not _loosely_equal(left, right),
    "<": _relation(operator.lt),
    "<=": _relation(operator.le),
    ">": _relation(operator.gt),
    ">=": _relation(operator.ge),
}


def _read_property(target: Any, key: str) -> Any:
    if target is None or target is _UNDEFINED:
        raise ConditionTypeError(f"cannot read property {key!r} of {_to_string(target)}")
    if isinstance(target, dict):
        return target.get(key, _UNDEFINED)
    if isinstance(target, str):
        # JavaScript strings are sequences of UTF-16 code units.
        units = target.encode("utf-16-le", "surrogatepass")
        if key == "length":
            return len(units) // 2
        if _ARRAY_INDEX.fullmatch(key) and int(key) < len(units) // 2:
            start = 2 * int(key)
            return units[start : start + 2].decode("utf-16-le", "surrogatepass")
    if isinstance(target, list):
        if key == "length":
            return len(target)
        if _ARRAY_INDEX.fullmatch(key) and int(key) < len(target):
            return target[int(key)]
    return _UNDEFINED


def _call_method(target: Any, method: str, argument: Any) -> bool:
    if target is None or target is _UNDEFINED:
        raise ConditionTypeError(f"cannot read property {method!r} of {_to_string(target)}")
    if isinstance(target, str):
        needle = _to_string(argument)
        if method == "startsWith":
            return target.startswith(needle)
        if method == "endsWith":
            return target.endswith(needle)
        return needle in target
    if isinstance(target, list) and method == "includes":
        # Array.prototype.includes compares with SameValueZero: strict equality, NaN equals NaN.
        return any(
            _strictly_equal(item, argument) or (_is_nan(item) and _is_nan(argument))
            for item in target
        )
    raise ConditionTypeError(f"a value of type {_js_type(target)} has no method .{method}()")


def _is_nan(value: Any) -> bool:
    return _js_type(value) == "number" and math.isnan(_as_float(value))


# --- Syntax tree ---------------------------------------------------------------------------------

Scope = Mapping[str, Any]


class _Node(Protocol):
    def evaluate(self, scope: Scope) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any

    def evaluate(self, scope: Scope) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class _Name:
    name: str

    def evaluate(self, scope: Scope) -> Any:
        return scope.get(self.name, _UNDEFINED)


@dataclass(frozen=True, slots=True)
class _Member:
    target: _Node
    key: _Node

    def evaluate(self, scope: Scope) -> Any:
        target = self.target.evaluate(scope)
        return _read_property(target, _to_string(self.key.evaluate(scope)))


@dataclass(frozen=True, slots=True)
class _MethodCall:
    target: _Node
    method: str
    argument: _Node

    def evaluate(self, scope: Scope) -> Any:
        target = self.target.evaluate(scope)
        return _call_method(target, self.method, self.argument.evaluate(scope))


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node

    def evaluate(self, scope: Scope) -> Any:
        return not _truthy(self.operand.evaluate(scope))


@dataclass(frozen=True, slots=True)
class _Comparison:
    symbol: str
    left: _Node
    right: _Node

    def evaluate(self, scope: Scope) -> Any:
        left = self.left.evaluate(scope)
        return _COMPARISONS[self.symbol](left, self.right.evaluate(scope))


@dataclass(frozen=True, slots=True)
class _Logical:
    symbol: Literal["&&", "||"]
    operands: tuple[_Node, ...]

    def evaluate(self, scope: Scope) -> Any:
        stop_when_truthy = self.symbol == "||"
        for operand in self.operands[:-1]:
            value = operand.evaluate(scope)
            if _truthy(value) == stop_when_truthy:
                return value
        return self.operands[-1].evaluate(scope)


# --- Tokenizer -----------------------------------------------------------------------------------

_SUPPORTED_PUNCTUATORS: Final = frozenset(
    {"===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ".", ","}
)
_UNSUPPORTED_PUNCTUATORS: Final = frozenset(
    {">>>=", "...", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=", "?.", "??", "=>", "**", "<<"}
    | {">>", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "+", "-", "*", "/", "%"}
    | {"&", "|", "^", "~", "?", ":", "=", "{", "}", ";"}
)
_PUNCTUATORS_LONGEST_FIRST: Final = sorted(
    _SUPPORTED_PUNCTUATORS | _UNSUPPORTED_PUNCTUATORS, key=len, reverse=True
)
_NUMBER: Final = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_WORD_TAIL: Final = re.compile(r"[A-Za-z0-9_$]*")
_SPACE: Final = re.compile(r"\s+")
_SIMPLE_ESCAPES: Final = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}
_HEX_ESCAPE: Final = re.compile(r"x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|u\{([0-9a-fA-F]{1,6})\}")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["number", "string", "name", "punct", "end"]
    text: str
    value: Any
    column: int


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        if space := _SPACE.match(source, position):
            position = space.end()
            continue
        column = position + 1
        char = source[position]
        previous_ends_value = bool(tokens) and (
            tokens[-1].kind != "punct" or tokens[-1].text in (")", "]")
        )
        number = _NUMBER.match(source, position)
        if number and not (char == "-" and previous_ends_value):
            tokens.append(_number_token(source, number, column))
            position = number.end()
        elif name := _NAME.match(source, position):
            tokens.append(_Token("name", name.group(), name.group(), column))
            position = name.end()
        elif char in "'\"":
            value, end = _read_string(source, position)
            tokens.append(_Token("string", source[position:end], value, column))
            position = end
        elif punctuator := next(
            (p for p in _PUNCTUATORS_LONGEST_FIRST if source.startswith(p, position)), None
        ):
            if punctuator in _UNSUPPORTED_PUNCTUATORS:
                raise ConditionSyntaxError(
                    f"unsupported operator {punctuator!r} at column {column}"
                )
            tokens.append(_Token("punct", punctuator, punctuator, column))
            position += len(punctuator)
        elif char == "`":
            raise ConditionSyntaxError(f"template literals are not supported (column {column})")
        else:
            raise ConditionSyntaxError(f"unexpected character {char!r} at column {column}")
    tokens.append(_Token("end", "", None, len(source) + 1))
    return tokens


def _number_token(source: str, match: re.Match[str], column: int) -> _Token:
    text = match.group()
    digits = text.removeprefix("-")
    tail = _WORD_TAIL.match(source, match.end())
    legacy_octal = len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()
    if legacy_octal or (tail and tail.group()):
        literal = text + (tail.group() if tail else "")
        raise ConditionSyntaxError(f"unsupported number literal {literal!r} at column {column}")
    return _Token("number", text, float(text), column)


def _read_string(source: str, start: int) -> tuple[str, int]:
    quote = source[start]
    chars: list[str] = []
    position = start + 1
    while position < len(source):
        char = source[position]
        if char == quote:
            return "".join(chars), position + 1
        if char in "\n\r":
            break
        if char != "\\":
            chars.append(char)
            position += 1
            continue
        escape = source[position + 1 : position + 2]
        if not escape:
            break
        if escape in "xu":
            decoded, position = _read_hex_escape(source, position + 1)
            chars.append(decoded)
            continue
        if escape in "\n\r\u2028\u2029":
            raise ConditionSyntaxError(
                f"line continuations are not supported (string at column {start + 1})"
            )
        if escape in "123456789" or (
            escape == "0" and source[position + 2 : position + 3].isdigit()
        ):
            raise ConditionSyntaxError(
                f"octal escapes are not supported (string at column {start + 1})"
            )
        chars.append(_SIMPLE_ESCAPES.get(escape, escape))
        position += 2
    raise ConditionSyntaxError(f"unterminated string starting at column {start + 1}")


def _read_hex_escape(source: str, position: int) -> tuple[str, int]:
    """Decode ``xHH``, ``uHHHH`` or ``u{H...}`` at ``position``; return the text and the end."""
    match = _HEX_ESCAPE.match(source, position)
    if match:
        code = int(next(group for group in match.groups() if group), 16)
        if code <= 0x10FFFF:
            return chr(code), match.end()
    raise ConditionSyntaxError(f"invalid escape sequence at column {position}")


# --- Parser --------------------------------------------------------------------------------------

_EQUALITY: Final = frozenset({"===", "!==", "==", "!="})
_RELATIONAL: Final = frozenset({"<", "<=", ">", ">="})
_KEYWORD_VALUES: Final[Mapping[str, Any]] = {
    "true": True,
    "false": False,
    "null": None,
    "undefined": _UNDEFINED,
}


class _Parser:
    """Recursive descent over the token list, one method per precedence level."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._nesting = 0

    def parse(self) -> _Node:
        node = self._or()
        token = self._peek()
        if token.kind != "end":
            raise ConditionSyntaxError(f"unexpected {_describe(token)} at column {token.column}")
        return node

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _advance(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _accept(self, *punctuators: str) -> _Token | None:
        token = self._peek()
        if token.kind == "punct" and token.text in punctuators:
            return self._advance()
        return None

    def _expect(self, punctuator: str) -> None:
        if self._accept(punctuator) is None:
            token = self._peek()
            raise ConditionSyntaxError(
                f"expected {punctuator!r} but found {_describe(token)} at column {token.column}"
            )

    def _or(self) -> _Node:
        operands = [self._and()]
        while self._accept("||"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else _Logical("||", tuple(operands))

    def _and(self) -> _Node:
        operands = [self._equality()]
        while self._accept("&&"):
            operands.append(self._equality())
        return operands[0] if len(operands) == 1 else _Logical("&&", tuple(operands))

    def _equality(self) -> _Node:
        node = self._relational()
        while token := self._accept(*_EQUALITY):
            node = _Comparison(token.text, node, self._relational())
        return node

    def _relational(self) -> _Node:
        node = self._unary()
        while token := self._accept(*_RELATIONAL):
            node = _Comparison(token.text, node, self._unary())
        return node

    def _unary(self) -> _Node:
        if self._accept("!"):
            with self._nested():
                return _Not(self._unary())
        return self._postfix()

    def _postfix(self) -> _Node:
        node = self._primary()
        while token := self._accept(".", "[", "("):
            if token.text == "[":
                with self._nested():
                    node = _Member(node, self._or())
                self._expect("]")
                continue
            if token.text == "(":
                raise ConditionSyntaxError(
                    f"only .includes(), .startsWith() and .endsWith() can be called "
                    f"(column {token.column})"
                )
            name = self._advance()
            if name.kind != "name":
                raise ConditionSyntaxError(
                    f"expected a property name after '.' but found {_describe(name)} "
                    f"at column {name.column}"
                )
            if self._accept("("):
                node = self._method_call(node, name)
            else:
                node = _Member(node, _Literal(name.text))
        return node

    def _method_call(self, target: _Node, name: _Token) -> _Node:
        if name.text not in METHODS:
            raise ConditionSyntaxError(
                f"unsupported method .{name.text}() at column {name.column}; "
                f"only .includes(), .startsWith() and .endsWith() are available"
            )
        with self._nested():
            argument = self._or()
        if self._accept(","):
            raise ConditionSyntaxError(
                f".{name.text}() takes exactly one argument here (column {name.column})"
            )
        self._expect(")")
        return _MethodCall(target, name.text, argument)

    def _primary(self) -> _Node:
        token = self._advance()
        if token.kind in ("number", "string"):
            return _Literal(token.value)
        if token.kind == "name":
            if token.text in _KEYWORD_VALUES:
                return _Literal(_KEYWORD_VALUES[token.text])
            if token.text in NAMES:
                return _Name(token.text)
            raise ConditionSyntaxError(
                f"unsupported identifier {token.text!r} at column {token.column}; "
                f"available: {', '.join(sorted(NAMES))}"
            )
        if token.kind == "punct" and token.text == "(":
            with self._nested():
                node = self._or()
            self._expect(")")
            return node
        if token.kind == "punct" and token.text == "[":
            raise ConditionSyntaxError(f"array literals are not supported (column {token.column})")
        raise ConditionSyntaxError(f"unexpected {_describe(token)} at column {token.column}")

    @contextmanager
    def _nested(self) -> Iterator[None]:
        self._nesting += 1
        if self._nesting > MAX_NESTING:
            raise ConditionSyntaxError(f"expression nests deeper than {MAX_NESTING} levels")
        try:
            yield
        finally:
            self._nesting -= 1


def _describe(token: _Token) -> str:
    return "the end of the expression" if token.kind == "end" else repr(token.text)


# --- Public surface ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryCondition:
    """A parsed ``retry_if`` expression, ready to evaluate against a failed attempt."""

    source: str
    root: _Node

    @classmethod
    def parse(cls, source: str) -> RetryCondition:
        """Parse ``source``; raise ConditionSyntaxError naming what is malformed or unsupported."""
        if len(source) > MAX_LENGTH:
            raise ConditionSyntaxError(f"expression is longer than {MAX_LENGTH} characters")
        if not source.strip():
            raise ConditionSyntaxError("expression is empty")
        return cls(source, _Parser(_tokenize(source)).parse())

    def holds(self, scope: Scope) -> bool:
        """JavaScript truthiness of the expression; names absent from ``scope`` are undefined."""
        return _truthy(self.root.evaluate(scope))
