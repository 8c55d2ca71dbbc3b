"""RetryPolicy: Windmill's retry JSON, its validation and the delays it prescribes."""

import random
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from gateway.jobs.retry import (
    MAX_DELAY_SECONDS,
    ExponentialBackoff,
    RetryPolicy,
    RetryPolicyError,
)

WORKED_EXAMPLE = {
    "constant": {"attempts": 2, "seconds": 5},
    "exponential": {"attempts": 3, "multiplier": 2, "seconds": 3},
}


def policy(value: dict[str, Any]) -> RetryPolicy:
    parsed = RetryPolicy.parse(value)
    assert parsed is not None
    return parsed


def problem(value: object) -> str:
    with pytest.raises(RetryPolicyError) as raised:
        RetryPolicy.parse(value)
    return str(raised.value)


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, {}])
def test_no_policy_in_a_trigger_row_parses_to_none(value: object) -> None:
    assert RetryPolicy.parse(value) is None


def test_missing_parts_take_windmill_defaults() -> None:
    parsed = policy({"exponential": {"attempts": 0}})

    assert parsed.constant.attempts == 0
    assert parsed.constant.seconds == 0
    assert parsed.exponential.multiplier == 1
    assert parsed.exponential.seconds == 0
    assert parsed.exponential.random_factor is None
    assert parsed.retry_if is None


def test_to_json_round_trips_and_leaves_out_an_absent_retry_if() -> None:
    parsed = policy(WORKED_EXAMPLE)

    assert parsed.to_json() == {
        "constant": {"attempts": 2, "seconds": 5},
        "exponential": {"attempts": 3, "multiplier": 2, "seconds": 3, "random_factor": None},
    }
    assert RetryPolicy.parse(parsed.to_json()) == parsed


def test_to_json_keeps_a_present_retry_if() -> None:
    parsed = policy({"retry_if": {"expr": "error.name !== 'Fatal'"}})

    assert parsed.to_json()["retry_if"] == {"expr": "error.name !== 'Fatal'"}


def test_max_attempts_counts_the_first_run_and_every_retry() -> None:
    assert policy(WORKED_EXAMPLE).max_attempts == 6
    assert policy({"constant": {"attempts": 0}}).max_attempts == 1


# --- validation ---------------------------------------------------------------------------------


def test_exponential_seconds_must_be_positive_when_exponential_attempts_are_set() -> None:
    assert problem({"exponential": {"attempts": 1, "seconds": 0}}) == (
        "retry.exponential.seconds: must be greater than 0 when attempts > 0"
    )


def test_exponential_seconds_defaulting_to_zero_is_rejected_too() -> None:
    assert problem({"exponential": {"attempts": 2}}) == (
        "retry.exponential.seconds: must be greater than 0 when attempts > 0"
    )


def test_exponential_seconds_may_be_zero_without_exponential_attempts() -> None:
    assert policy({"exponential": {"attempts": 0, "seconds": 0}}).max_attempts == 1


def test_total_retries_are_limited_to_a_thousand() -> None:
    assert policy({"constant": {"attempts": 600}, "exponential": {"attempts": 400, "seconds": 1}})

    assert problem(
        {"constant": {"attempts": 600}, "exponential": {"attempts": 401, "seconds": 1}}
    ) == ("retry: constant.attempts + exponential.attempts must be at most 1000, got 1001")


def test_the_exponential_delay_before_the_last_attempt_is_limited_to_six_hours() -> None:
    # 1 * 2 ** 14 = 16384 s is fine, 1 * 2 ** 15 = 32768 s is not.
    assert policy({"exponential": {"attempts": 14, "seconds": 2}})

    assert problem({"exponential": {"attempts": 15, "seconds": 2}}) == (
        "retry: the delay before the last attempt, exponential.multiplier * "
        "exponential.seconds ** 15 = 32768 s, must be at most 21600 s (6 h)"
    )


def test_constant_retries_raise_the_exponent_of_the_last_delay() -> None:
    assert problem(
        {"constant": {"attempts": 1, "seconds": 1}, "exponential": {"attempts": 14, "seconds": 2}}
    ).startswith("retry: the delay before the last attempt")


def test_constant_delay_is_limited_to_six_hours() -> None:
    assert policy({"constant": {"attempts": 1, "seconds": MAX_DELAY_SECONDS}})

    assert problem({"constant": {"attempts": 1, "seconds": MAX_DELAY_SECONDS + 1}}) == (
        "retry.constant.seconds: must be at most 21600 (6 h) when attempts > 0"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"constant": {"attempts": -1}},
            "retry.constant.attempts: Input should be greater than or equal to 0",
        ),
        (
            {"constant": {"attempts": 2**32}},
            "retry.constant.attempts: Input should be less than or equal to 4294967295",
        ),
        (
            {"constant": {"attempts": 1, "seconds": 65536}},
            "retry.constant.seconds: Input should be less than or equal to 65535",
        ),
        (
            {"exponential": {"multiplier": 65536}},
            "retry.exponential.multiplier: Input should be less than or equal to 65535",
        ),
        (
            {"exponential": {"attempts": 1, "seconds": 65536}},
            "retry.exponential.seconds: Input should be less than or equal to 65535",
        ),
        (
            {"exponential": {"random_factor": 101}},
            "retry.exponential.random_factor: Input should be less than or equal to 100",
        ),
        (
            {"exponential": {"random_factor": -1}},
            "retry.exponential.random_factor: Input should be greater than or equal to 0",
        ),
        (
            {"constant": {"attempts": "2"}},
            "retry.constant.attempts: Input should be a valid integer",
        ),
        (
            {"constant": {"attempts": True}},
            "retry.constant.attempts: Input should be a valid integer",
        ),
        (
            {"constant": {"attempts": 1.5}},
            "retry.constant.attempts: Input should be a valid integer",
        ),
        ({"exponentail": {}}, "retry.exponentail: Extra inputs are not permitted"),
        ({"retry_if": {"expr": 1}}, "retry.retry_if.expr: Input should be a valid string"),
        ({"retry_if": {}}, "retry.retry_if.expr: Field required"),
        ([], "retry: Input should be a valid dictionary or instance of RetryPolicy"),
    ],
)
def test_invalid_fields_are_named_in_the_error(value: object, message: str) -> None:
    assert problem(value) == message


def test_every_problem_is_reported() -> None:
    with pytest.raises(RetryPolicyError) as raised:
        RetryPolicy.parse(
            {"constant": {"attempts": -1}, "exponential": {"attempts": 1, "seconds": 0}}
        )

    assert raised.value.problems == (
        "retry.constant.attempts: Input should be greater than or equal to 0",
        "retry.exponential.seconds: must be greater than 0 when attempts > 0",
    )


def test_unsupported_retry_if_is_rejected_when_the_policy_is_validated() -> None:
    assert problem({"retry_if": {"expr": "error.message.match(/timeout/)"}}) == (
        "retry.retry_if.expr: unsupported operator '/' at column 21"
    )


def test_validating_as_a_nested_field_reports_the_same_location_and_message() -> None:
    class TriggerBody(BaseModel):
        retry: RetryPolicy | None = None

    with pytest.raises(ValidationError) as raised:
        TriggerBody.model_validate({"retry": {"exponential": {"attempts": 1}}})

    [error] = raised.value.errors()
    assert error["loc"] == ("retry", "exponential", "seconds")
    assert error["msg"] == "must be greater than 0 when attempts > 0"


# --- delays -------------------------------------------------------------------------------------


def test_worked_example_waits_5_5_54_162_486_then_stops() -> None:
    parsed = policy(WORKED_EXAMPLE)

    assert [parsed.delay_for(n) for n in range(6)] == [5, 5, 54, 162, 486, None]


def test_exponential_delay_counts_constant_attempts() -> None:
    without_constant = policy({"exponential": {"attempts": 1, "multiplier": 2, "seconds": 3}})
    after_two_constant = policy(WORKED_EXAMPLE)

    assert without_constant.delay_for(0) == 2 * 3**1
    assert after_two_constant.delay_for(2) == 2 * 3**3


def test_constant_only_policy_stops_after_its_attempts() -> None:
    parsed = policy({"constant": {"attempts": 3, "seconds": 10}})

    assert [parsed.delay_for(n) for n in range(4)] == [10, 10, 10, None]


def test_policy_without_attempts_never_retries() -> None:
    parsed = policy({"constant": {"attempts": 0, "seconds": 10}})

    assert parsed.delay_for(0) is None
    assert not parsed.should_retry(0, {"error": {}}, {})


def test_no_retry_beyond_a_thousand_failures() -> None:
    parsed = policy({"constant": {"attempts": 1000, "seconds": 1}})

    assert parsed.delay_for(999) == 1
    assert parsed.delay_for(1000) is None
    assert parsed.delay_for(1001) is None


def test_a_delay_is_capped_at_six_hours_when_scheduled() -> None:
    # Built without validation, as a policy stored before the limit existed could be.
    parsed = RetryPolicy.model_construct(
        exponential=ExponentialBackoff.model_construct(
            attempts=1, multiplier=10, seconds=60000, random_factor=None
        )
    )

    assert parsed.delay_for(0) == MAX_DELAY_SECONDS


def test_negative_failed_attempts_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match="failed_attempts"):
        policy(WORKED_EXAMPLE).delay_for(-1)


def test_jitter_stays_within_random_factor_percent_for_many_seeds() -> None:
    parsed = policy(
        {"exponential": {"attempts": 3, "multiplier": 1, "seconds": 10, "random_factor": 30}}
    )
    base = 10**3  # third retry: n = 2, exponent 3
    widest = base * 29 // 100  # j is drawn from [0, 30)

    delays = [parsed.delay_for(2, random.Random(seed)) for seed in range(2000)]

    assert all(d is not None and base - widest <= d <= base + widest for d in delays)
    assert all(d is not None and d == int(d) for d in delays)
    assert min(d for d in delays if d is not None) < base < max(d for d in delays if d is not None)


def test_jitter_uses_integer_arithmetic() -> None:
    # base 7, j < 100: 7 * j // 100 is at most 6 and the delay stays a whole number of seconds.
    parsed = policy(
        {"exponential": {"attempts": 1, "multiplier": 7, "seconds": 1, "random_factor": 100}}
    )

    delays = {parsed.delay_for(0, random.Random(seed)) for seed in range(500)}

    assert delays <= {float(7 + k) for k in range(-6, 7)}


def test_zero_random_factor_means_no_jitter() -> None:
    parsed = policy({"exponential": {"attempts": 1, "seconds": 5, "random_factor": 0}})

    assert {parsed.delay_for(0, random.Random(seed)) for seed in range(50)} == {5.0}


def test_jitter_without_an_rng_draws_from_a_private_generator() -> None:
    parsed = policy({"exponential": {"attempts": 1, "seconds": 100, "random_factor": 50}})

    delay = parsed.delay_for(0)

    assert delay is not None
    assert 51 <= delay <= 149


# --- should_retry -------------------------------------------------------------------------------

FAILED = {"error": {"name": "TimeoutError", "message": "upstream timed out", "stack": "..."}}


def test_should_retry_follows_the_attempt_limit_without_retry_if() -> None:
    parsed = policy({"constant": {"attempts": 2, "seconds": 1}})

    assert [parsed.should_retry(n, FAILED, {}) for n in range(3)] == [True, True, False]


def test_retry_if_sees_the_error_of_the_failed_result() -> None:
    parsed = policy(
        {
            "constant": {"attempts": 5, "seconds": 1},
            "retry_if": {"expr": "error && error.name !== 'PERMANENT_FAILURE'"},
        }
    )

    assert parsed.should_retry(0, FAILED, {})
    assert not parsed.should_retry(0, {"error": {"name": "PERMANENT_FAILURE"}}, {})


def test_retry_if_sees_the_whole_result_and_the_flow_input() -> None:
    parsed = policy(
        {
            "constant": {"attempts": 5, "seconds": 1},
            "retry_if": {
                "expr": "result.error.message.includes('timed out') && flow_input.retryable"
            },
        }
    )

    assert parsed.should_retry(0, FAILED, {"retryable": True})
    assert not parsed.should_retry(0, FAILED, {"retryable": False})
    assert not parsed.should_retry(0, FAILED, {})


def test_error_is_undefined_when_the_result_has_no_error_field() -> None:
    parsed = policy(
        {"constant": {"attempts": 1, "seconds": 1}, "retry_if": {"expr": "error === undefined"}}
    )

    assert parsed.should_retry(0, "plain failure text", None)
    assert not parsed.should_retry(0, FAILED, None)


def test_retry_if_never_extends_the_attempt_limit() -> None:
    parsed = policy({"constant": {"attempts": 1, "seconds": 1}, "retry_if": {"expr": "true"}})

    assert parsed.should_retry(0, FAILED, {})
    assert not parsed.should_retry(1, FAILED, {})


def test_retry_if_that_fails_to_evaluate_stops_retrying(caplog: pytest.LogCaptureFixture) -> None:
    parsed = policy(
        {
            "constant": {"attempts": 3, "seconds": 1},
            "retry_if": {"expr": "error.details.code > 500"},
        }
    )

    assert not parsed.should_retry(0, FAILED, {})
    assert "retry_if" in caplog.text
