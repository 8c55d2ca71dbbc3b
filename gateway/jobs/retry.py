"""A trigger's retry policy: Windmill's ``retry`` JSON, validated, and the decisions it makes.

The JSON shape (every part optional)::

    {"constant":    {"attempts": 2, "seconds": 5},
     "exponential": {"attempts": 3, "multiplier": 2, "seconds": 3, "random_factor": 10},
     "retry_if":    {"expr": "error && error.name !== 'PERMANENT_FAILURE'"}}

The first ``constant.attempts`` retries wait ``constant.seconds``; the next ``exponential.attempts``
wait ``multiplier * seconds ** (n + 1)``, where ``n`` counts every retry already made, constant
ones included, optionally jittered by up to ``random_factor`` percent. The example above waits
5 s, 5 s, 54 s, 162 s and 486 s (before jitter). No delay is longer than 6 h.

Errors: RetryPolicyError (a ValueError) from ``RetryPolicy.parse``, one line per offending field,
such as ``retry.exponential.seconds: must be greater than 0 when attempts > 0``. Validating the
model directly (for example as a field of a trigger body) raises pydantic's ValidationError with
the same locations and messages.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from functools import cached_property
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from gateway.jobs.retry_condition import ConditionSyntaxError, ConditionTypeError, RetryCondition

logger = logging.getLogger(__name__)

MAX_RETRIES: Final = 1000
MAX_DELAY_SECONDS: Final = 6 * 60 * 60

U16 = Annotated[int, Field(strict=True, ge=0, le=0xFFFF)]
U32 = Annotated[int, Field(strict=True, ge=0, le=0xFFFF_FFFF)]
Percent = Annotated[int, Field(strict=True, ge=0, le=100)]

_JITTER_RNG: Final = random.Random()


class RetryPolicyError(ValueError):
    """A ``retry`` value that is not a valid policy; each problem names its field."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class ConstantBackoff(BaseModel):
    """The first ``attempts`` retries, each after ``seconds``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: U32 = 0
    seconds: U16 = 0

    @field_validator("seconds")
    @classmethod
    def _at_most_six_hours(cls, seconds: int, info: ValidationInfo) -> int:
        if info.data.get("attempts", 0) > 0 and seconds > MAX_DELAY_SECONDS:
            raise PydanticCustomError(
                "retry_delay_too_long",
                "must be at most {limit} (6 h) when attempts > 0",
                {"limit": MAX_DELAY_SECONDS},
            )
        return seconds


class ExponentialBackoff(BaseModel):
    """The next ``attempts`` retries, after ``multiplier * seconds ** (n + 1)`` plus jitter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: U32 = 0
    multiplier: U16 = 1
    seconds: U16 = Field(default=0, validate_default=True)
    random_factor: Percent | None = None

    @field_validator("seconds")
    @classmethod
    def _positive_when_used(cls, seconds: int, info: ValidationInfo) -> int:
        # A base of 0 would make every exponential retry immediate.
        if info.data.get("attempts", 0) > 0 and seconds == 0:
            raise PydanticCustomError(
                "retry_seconds_zero", "must be greater than 0 when attempts > 0"
            )
        return seconds


class RetryIf(BaseModel):
    """Retry only while ``expr`` (a JavaScript expression, see retry_condition) is truthy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expr: Annotated[str, Field(strict=True)]

    @field_validator("expr")
    @classmethod
    def _supported(cls, expr: str) -> str:
        try:
            RetryCondition.parse(expr)
        except ConditionSyntaxError as error:
            raise PydanticCustomError("retry_if_unsupported", str(error)) from error
        return expr

    @cached_property
    def condition(self) -> RetryCondition:
        """The parsed expression."""
        return RetryCondition.parse(self.expr)


class RetryPolicy(BaseModel):
    """Windmill's retry JSON: how often a failed job is run again, and after how long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    constant: ConstantBackoff = Field(default_factory=ConstantBackoff)
    exponential: ExponentialBackoff = Field(default_factory=ExponentialBackoff)
    retry_if: RetryIf | None = None

    @model_validator(mode="after")
    def _within_limits(self) -> RetryPolicy:
        retries = self.constant.attempts + self.exponential.attempts
        if retries > MAX_RETRIES:
            raise PydanticCustomError(
                "retry_too_many_attempts",
                "constant.attempts + exponential.attempts must be at most {limit}, got {retries}",
                {"limit": MAX_RETRIES, "retries": retries},
            )
        if self.exponential.attempts > 0:
            # The exponential delays grow, so the one before the last attempt is the longest;
            # that retry has n = retries - 1, hence the exponent n + 1.
            exponent = retries
            last = self.exponential.multiplier * self.exponential.seconds**exponent
            if last > MAX_DELAY_SECONDS:
                raise PydanticCustomError(
                    "retry_delay_too_long",
                    "the delay before the last attempt, exponential.multiplier * "
                    "exponential.seconds ** {exponent} = {delay} s, "
                    "must be at most {limit} s (6 h)",
                    {"exponent": exponent, "delay": last, "limit": MAX_DELAY_SECONDS},
                )
        return self

    @classmethod
    def parse(cls, value: object) -> RetryPolicy | None:
        """The policy in a trigger row's ``retry`` JSON; None when the row has none (null or {})."""
        if value is None or value == {}:
            return None
        try:
            return cls.model_validate(value)
        except ValidationError as error:
            raise RetryPolicyError([_describe(problem) for problem in error.errors()]) from error

    @property
    def max_attempts(self) -> int:
        """How many times a job may run in all: the first run plus every retry."""
        return 1 + self.constant.attempts + self.exponential.attempts

    def delay_for(self, failed_attempts: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before the next retry, or None when no retry is left.

        ``failed_attempts`` is the count Windmill calls ``n``: the retries already made, so 0 when
        the first run has just failed. ``rng`` draws the jitter (a private generator when None).
        """
        if not self._has_retry_left(failed_attempts):
            return None
        if failed_attempts < self.constant.attempts:
            return float(min(self.constant.seconds, MAX_DELAY_SECONDS))
        exponential = self.exponential
        delay = exponential.multiplier * exponential.seconds ** (failed_attempts + 1)
        if exponential.random_factor:
            draw = rng if rng is not None else _JITTER_RNG
            jitter = delay * draw.randrange(exponential.random_factor) // 100
            # jitter < delay since random_factor <= 100, so subtracting never goes below 0.
            delay = delay + jitter if draw.random() < 0.5 else delay - jitter
        return float(min(delay, MAX_DELAY_SECONDS))

    def should_retry(self, failed_attempts: int, error_result: Any, flow_input: Any) -> bool:
        """Whether the failed job runs again: a retry is left and ``retry_if`` (if any) holds.

        ``error_result`` is the failed run's result, normally ``{"error": {"name", "message",
        ...}}``; the condition sees it as ``result``, its ``error`` field as ``error``, and
        ``flow_input`` as given. A condition that fails to evaluate (reading a field of null,
        say) counts as false, so the failure goes on to the error handler.
        """
        if not self._has_retry_left(failed_attempts):
            return False
        if self.retry_if is None:
            return True
        scope = {"result": error_result, "flow_input": flow_input}
        if isinstance(error_result, dict) and "error" in error_result:
            scope["error"] = error_result["error"]
        try:
            return self.retry_if.condition.holds(scope)
        except ConditionTypeError as error:
            logger.warning(
                "retry_if %r failed to evaluate, not retrying: %s",
                self.retry_if.expr,
                error,
                extra={"action": "retry_if_failed"},
            )
            return False

    def _has_retry_left(self, failed_attempts: int) -> bool:
        if failed_attempts < 0:
            raise ValueError(f"failed_attempts must be >= 0, got {failed_attempts}")
        retries = self.constant.attempts + self.exponential.attempts
        return failed_attempts <= MAX_RETRIES and failed_attempts < retries

    def to_json(self) -> dict[str, Any]:
        """The policy as Windmill's JSON; ``retry_if`` is left out when absent."""
        return self.model_dump(exclude={"retry_if"} if self.retry_if is None else None)


def _describe(problem: ErrorDetails) -> str:
    location = ".".join(str(part) for part in problem["loc"])
    return f"retry.{location}: {problem['msg']}" if location else f"retry: {problem['msg']}"
