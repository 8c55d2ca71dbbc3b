"""bash jobs: positional arguments, the result from the last line, the error of a failed exit."""

from __future__ import annotations

from executor_testkit import CollectedLog, job

from gateway.executor.process import run_fresh


async def test_arguments_are_positional_in_the_given_order() -> None:
    script = 'first="$1"\nsecond="$2"\necho "second=$second first=$first"\n'
    request = job(
        script,
        language="bash",
        args={"second": "two words", "first": {"k": [1, None]}},
        arg_order=("first", "second"),
    )

    outcome = await run_fresh(request, CollectedLog())

    assert outcome.success
    assert outcome.result == 'second=two words first={"k":[1,null]}'


async def test_a_missing_argument_is_empty_so_its_default_applies() -> None:
    script = 'name="$1"\ncount="${2:-10}"\necho "$name $count"\n'
    request = job(script, language="bash", args={"name": "x"}, arg_order=("name", "count"))

    outcome = await run_fresh(request, CollectedLog())

    assert outcome.result == "x 10"


async def test_the_last_line_of_stdout_is_the_result_parsed_as_json() -> None:
    script = "echo starting\necho 'progress' >&2\necho '{\"rows\": 3, \"ok\": true}'\necho\n"

    outcome = await run_fresh(job(script, language="bash"), CollectedLog())

    assert outcome.success
    assert outcome.result == {"rows": 3, "ok": True}


async def test_a_last_line_that_is_not_json_is_the_result_as_text() -> None:
    log = CollectedLog()

    outcome = await run_fresh(job("echo hello world\n", language="bash"), log)

    assert outcome.result == "hello world"
    assert log.text == "hello world\n"


async def test_a_non_zero_exit_fails_with_the_code_and_the_last_error_line() -> None:
    script = "echo 'copying'\necho 'cp: disk full' >&2\nexit 3\n"

    outcome = await run_fresh(job(script, language="bash"), CollectedLog())

    assert not outcome.success
    assert outcome.result == {
        "error": {"name": "ExecutionErr", "message": "bash exited with code 3: cp: disk full"}
    }


async def test_a_last_line_over_the_limit_fails_with_its_size() -> None:
    script = "printf 'x%.0s' $(seq 1 2000)\n"

    outcome = await run_fresh(job(script, language="bash", max_result_bytes=1000), CollectedLog())

    assert outcome.result == {
        "error": {
            "name": "ResultTooLarge",
            "message": "result is 2000 bytes, the limit is 1000 bytes",
        }
    }
