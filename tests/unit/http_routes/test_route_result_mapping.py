"""A sync job's result as a response."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.responses import result_response


def _job(result: Any, success: bool = True) -> dict[str, Any]:
    return {"result": result, "success": success}


def test_a_plain_result_is_json_200_and_a_failure_422() -> None:
    ok = result_response(_job({"a": 1}))
    failed = result_response(_job({"error": {"message": "x"}}, success=False))

    assert (ok.status_code, ok.body) == (200, b'{"a":1}')
    assert failed.status_code == 422


def test_a_null_result_is_204_without_a_body() -> None:
    response = result_response(_job(None))

    assert (response.status_code, response.body) == (204, b"")


def test_windmill_keys_win_over_wm_keys() -> None:
    response = result_response(
        _job({"windmill_status_code": 201, "wm_status_code": 500, "result": 1})
    )

    assert response.status_code == 201


def test_a_content_type_sends_a_string_result_as_is() -> None:
    response = result_response(_job({"wm_content_type": "text/html", "result": "<p>hi</p>"}))

    assert response.body == b"<p>hi</p>"
    assert response.headers["content-type"] == "text/html"


def test_a_failed_job_with_special_keys_and_no_status_is_422() -> None:
    response = result_response(_job({"windmill_headers": {"x": "1"}, "result": 1}, success=False))

    assert response.status_code == 422


def test_204_carries_no_body_even_with_a_result() -> None:
    response = result_response(_job({"windmill_status_code": 204, "result": "dropped"}))

    assert (response.status_code, response.body) == (204, b"")


@pytest.mark.parametrize(
    "result",
    [
        {"windmill_status_code": "200"},
        {"windmill_status_code": True},
        {"windmill_status_code": 99},
        {"windmill_headers": ["x"]},
        {"windmill_headers": {"bad name": "v"}},
        {"windmill_headers": {"x": "line\r\nbreak"}},
        {"windmill_headers": {"x": 1}},
        {"windmill_content_type": "text/plain\n", "result": "x"},
    ],
)
def test_what_a_job_cannot_legally_set_is_a_500(result: dict[str, Any]) -> None:
    with pytest.raises(RequestRefused) as refused:
        result_response(_job(result))

    assert refused.value.status == 500
