"""The one HTTP layer: retries, backoff, rate limit and the mapping of failures by exception type."""

import pytest
import requests

from anomalymatch_astro.archives import RETRY_STATUS, ArchiveClient, HTTPClient, network_errors
from anomalymatch_astro.archives._http import _Retryable, map_error
from anomalymatch_astro.utils.exceptions import ArchiveError, InvalidInputError, ServiceError

pyvo = pytest.importorskip("pyvo")


def _http(**kwargs):
    kwargs = {"retries": 2, "backoff": 0, "rate_limit": 0, **kwargs}
    return HTTPClient(**kwargs)


def _failing(errors, result="ok"):
    """An attempt that raises ``errors`` one after the other, then returns ``result``."""
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return attempt, calls


def test_archive_client_is_the_http_layer():
    assert issubclass(ArchiveClient, HTTPClient)
    assert {429, 500, 503} <= RETRY_STATUS and 404 not in RETRY_STATUS
    assert requests.ConnectTimeout in network_errors() or issubclass(requests.ConnectTimeout, network_errors())


def test_bad_settings():
    with pytest.raises(InvalidInputError, match="retries"):
        HTTPClient(retries=-1)
    with pytest.raises(InvalidInputError, match="timeout"):
        HTTPClient(timeout=0)


@pytest.mark.parametrize(
    "error",
    [
        requests.ConnectionError("refused"),
        requests.ReadTimeout("slow"),
        requests.exceptions.ChunkedEncodingError("cut"),
        TimeoutError("slow"),
    ],
)
def test_network_errors_are_retried(error):
    attempt, calls = _failing([error, error])
    assert _http().call(attempt, what="query") == "ok"
    assert len(calls) == 3


def test_retries_run_out():
    attempt, calls = _failing([requests.ConnectionError("refused")] * 5)
    with pytest.raises(ArchiveError, match="query failed after 2 attempt.*try later") as info:
        _http(retries=1).call(attempt, what="query", hint="try later")
    assert len(calls) == 2
    assert not isinstance(info.value, ServiceError)


def test_backoff_doubles(monkeypatch):
    import anomalymatch_astro.archives._http as mod

    sleeps = []
    monkeypatch.setattr(mod.time, "sleep", sleeps.append)
    attempt, _ = _failing([requests.ConnectionError("refused")] * 4)
    with pytest.raises(ArchiveError, match="4 attempt"):
        _http(retries=3, backoff=0.5).call(attempt, what="query")
    assert sleeps == [0.5, 1.0, 2.0]


def _dal_service_error(code):
    return pyvo.dal.DALServiceError(f"HTTP {code}", code=code)


def test_pyvo_errors_by_type():
    assert isinstance(map_error(_dal_service_error(503), what="q"), _Retryable)
    assert isinstance(map_error(_dal_service_error(429), what="q"), _Retryable)
    mapped = map_error(_dal_service_error(404), what="q")
    assert isinstance(mapped, ServiceError) and "HTTP 404" in str(mapped)
    mapped = map_error(pyvo.dal.DALQueryError("Could not locate table 'x'"), what="q")
    assert isinstance(mapped, ServiceError) and "Could not locate table" in str(mapped)
    assert isinstance(map_error(pyvo.dal.DALFormatError("bad"), what="q"), ServiceError)
    # the wrapped network error decides, whatever the message says
    try:
        try:
            raise requests.ConnectionError("something")
        except requests.ConnectionError as exc:
            raise pyvo.dal.DALServiceError("no words about connections here") from exc
    except pyvo.dal.DALServiceError as exc:
        assert isinstance(map_error(exc, what="q"), _Retryable)
    assert map_error(KeyError("not a network failure"), what="q") is None


def test_http_errors_by_status():
    def http_error(code):
        response = requests.Response()
        response.status_code = code
        return requests.HTTPError(f"{code} error", response=response)

    assert isinstance(map_error(http_error(502), what="q"), _Retryable)
    assert isinstance(map_error(http_error(400), what="q"), ServiceError)


def test_service_errors_are_not_retried():
    attempt, calls = _failing([_dal_service_error(400)] * 3)
    with pytest.raises(ServiceError, match="HTTP 400"):
        _http().call(attempt, what="query")
    assert len(calls) == 1


def test_503_then_success():
    attempt, calls = _failing([_dal_service_error(503)], result=42)
    assert _http().call(attempt, what="query") == 42
    assert len(calls) == 2


def test_other_errors_pass_through():
    attempt, calls = _failing([KeyError("bug")])
    with pytest.raises(KeyError):
        _http().call(attempt, what="query")
    assert len(calls) == 1


def test_throttle_counts_attempts_of_other_sessions():
    http = _http()
    http.call(lambda: None, what="q")
    assert http.n_requests == 0  # its own session counts each request instead
    http.call(lambda: None, what="q", throttle=True)
    assert http.n_requests == 1
    other = _http(session=requests.Session())
    other.call(lambda: None, what="q")
    assert other.n_requests == 1
