"""python3 jobs in fresh processes: arguments, results and the shapes of their errors."""

from __future__ import annotations

from datetime import UTC

from executor_testkit import CollectedLog, job

from gateway.executor.process import run_fresh


async def test_main_gets_its_arguments_and_its_return_value_is_the_result() -> None:
    log = CollectedLog()
    script = (
        "def main(name: str, count: int = 1):\n"
        "    print('greeting', name)\n"
        "    return {'greeting': 'hello ' + name, 'count': count}\n"
    )

    outcome = await run_fresh(job(script, args={"name": "ada", "count": 3}), log)

    assert outcome.success
    assert outcome.result == {"greeting": "hello ada", "count": 3}
    assert "greeting ada" in log.text
    assert outcome.started_at.tzinfo is UTC
    assert outcome.memory_peak_kb is not None and outcome.memory_peak_kb > 0


async def test_async_main_is_awaited() -> None:
    script = (
        "import asyncio\nasync def main(x: int):\n    await asyncio.sleep(0)\n    return x * 2\n"
    )

    outcome = await run_fresh(job(script, args={"x": 21}), CollectedLog())

    assert outcome.success
    assert outcome.result == 42


async def test_what_the_preprocessor_returns_becomes_the_arguments_of_main() -> None:
    script = (
        "def preprocessor(event: dict):\n"
        "    return {'topic': event['topic'], 'size': len(event['payload'])}\n"
        "def main(topic: str, size: int):\n"
        "    return f'{topic}:{size}'\n"
    )
    request = job(
        script, args={"event": {"topic": "orders", "payload": "abcd"}}, run_preprocessor=True
    )

    outcome = await run_fresh(request, CollectedLog())

    assert outcome.success
    assert outcome.result == "orders:4"


async def test_a_preprocessor_that_returns_no_dict_fails_the_job() -> None:
    script = "def preprocessor(event):\n    return [event]\ndef main(x):\n    return x\n"

    outcome = await run_fresh(job(script, args={"event": 1}, run_preprocessor=True), CollectedLog())

    assert not outcome.success
    assert outcome.result["error"]["name"] == "PreprocessorError"
    assert "got list" in outcome.result["error"]["message"]


async def test_a_missing_required_argument_fails_naming_the_parameter() -> None:
    script = "def main(name: str, greeting: str = 'hi'):\n    return greeting + name\n"

    outcome = await run_fresh(job(script, args={"greeting": "yo"}), CollectedLog())

    assert not outcome.success
    assert outcome.result == {
        "error": {
            "name": "MissingArgument",
            "message": "main() is missing required argument 'name'",
        }
    }


async def test_arguments_main_does_not_take_are_dropped() -> None:
    script = "def main(a: int):\n    return a\n"

    outcome = await run_fresh(job(script, args={"a": 1, "unexpected": 2}), CollectedLog())

    assert outcome.success
    assert outcome.result == 1


async def test_main_with_kwargs_receives_every_argument() -> None:
    script = "def main(a, **rest):\n    return sorted(rest)\n"

    outcome = await run_fresh(job(script, args={"a": 1, "b": 2, "c": 3}), CollectedLog())

    assert outcome.result == ["b", "c"]


async def test_a_syntax_error_fails_the_job_with_its_line() -> None:
    script = "import os\n\ndef main(:\n    return 1\n"

    outcome = await run_fresh(job(script), CollectedLog())

    assert not outcome.success
    error = outcome.result["error"]
    assert error["name"] == "SyntaxError"
    assert "line 3" in error["message"]


async def test_an_exception_fails_the_job_with_the_traceback_of_the_script() -> None:
    script = (
        "def check(value):\n"
        "    raise ValueError(f'bad value {value}')\n"
        "def main(value: int):\n"
        "    check(value)\n"
    )

    outcome = await run_fresh(job(script, args={"value": 7}), CollectedLog())

    assert not outcome.success
    error = outcome.result["error"]
    assert error["name"] == "ValueError"
    assert error["message"] == "bad value 7"
    assert "in check" in error["stack"]
    assert "ValueError: bad value 7" in error["stack"]
    assert "python3_wrapper" not in error["stack"]


async def test_a_result_that_is_not_json_fails_naming_its_type() -> None:
    script = "def main():\n    return {'tags': {1, 2}}\n"

    outcome = await run_fresh(job(script), CollectedLog())

    assert not outcome.success
    error = outcome.result["error"]
    assert error["name"] == "SerializationError"
    assert "Object of type set is not JSON serializable" in error["message"]


async def test_a_result_over_the_limit_fails_with_its_size() -> None:
    script = "def main():\n    return 'x' * 2000\n"

    outcome = await run_fresh(job(script, max_result_bytes=1000), CollectedLog())

    assert not outcome.success
    assert outcome.result == {
        "error": {
            "name": "ResultTooLarge",
            "message": "result is 2002 bytes, the limit is 1000 bytes",
        }
    }


async def test_a_script_without_main_fails_the_job() -> None:
    outcome = await run_fresh(job("x = 1\n"), CollectedLog())

    assert not outcome.success
    assert outcome.result["error"]["name"] == "MainNotFound"


async def test_sys_exit_in_main_is_the_jobs_error_not_a_crash() -> None:
    script = "import sys\ndef main():\n    sys.exit(3)\n"

    outcome = await run_fresh(job(script), CollectedLog())

    assert not outcome.success
    assert outcome.result["error"]["name"] == "SystemExit"
    assert outcome.result["error"]["message"] == "3"


async def test_an_unknown_language_is_a_failed_outcome_naming_it() -> None:
    outcome = await run_fresh(job("package main", language="go"), CollectedLog())

    assert not outcome.success
    assert outcome.result["error"]["name"] == "ExecutionErr"
    assert "'go'" in outcome.result["error"]["message"]
