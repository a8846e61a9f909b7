"""Retries with exponential backoff and jitter for uploads (tenacity), with a log of each failure.

Transient failures (connection errors, timeouts, 5xx, throttling, local I/O errors) are retried;
permanent ones (bad credentials, missing bucket, access denied, 4xx) fail at once so that the
status endpoint can say what to fix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

T = TypeVar("T")

PERMANENT_S3_CODES = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "AuthorizationHeaderMalformed",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "InvalidToken",
        "NoSuchBucket",
        "PermanentRedirect",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    }
)
RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    initial_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 1.0


@dataclass(slots=True)
class AttemptLog:
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


class RetriesExhaustedError(Exception):
    def __init__(self, message: str, *, log: AttemptLog, permanent: bool) -> None:
        super().__init__(message)
        self.log = log
        self.permanent = permanent


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    for item in _chain(exc):
        if isinstance(item, NoCredentialsError | PartialCredentialsError | PermissionError):
            return False
        if isinstance(item, ClientError):
            error = item.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(item.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in PERMANENT_S3_CODES:
                return False
            if status >= 500 or status in RETRYABLE_STATUS or status == 0:
                return True
            return code in {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}
        if isinstance(item, BotoConnectionError | HTTPClientError):
            return True
    # Anything else from the chain's root: local I/O errors are worth another try.
    return isinstance(exc, OSError | TimeoutError)


def describe_error(exc: BaseException) -> str:
    for item in _chain(exc):
        if isinstance(item, ClientError):
            error = item.response.get("Error", {})
            return f"{error.get('Code', 'ClientError')}: {error.get('Message', str(item))}"
    return f"{type(exc).__name__}: {exc}"


async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    log: AttemptLog | None = None,
    retryable: Callable[[BaseException], bool] = is_transient,
) -> tuple[T, AttemptLog]:
    """Run ``operation`` until it succeeds or ``policy.attempts`` are used.

    Every failed attempt's error lands in the returned log; on final failure
    :class:`RetriesExhaustedError` carries the log and whether the error was permanent.
    """
    attempt_log = log if log is not None else AttemptLog()
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential_jitter(
            multiplier=policy.initial_delay, max=policy.max_delay, jitter=policy.jitter
        ),
        retry=retry_if_exception(retryable),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempt_log.attempts += 1
                try:
                    result = await operation()
                except Exception as exc:
                    attempt_log.errors.append(describe_error(exc))
                    raise
                return result, attempt_log
    except Exception as exc:
        raise RetriesExhaustedError(
            describe_error(exc), log=attempt_log, permanent=not retryable(exc)
        ) from exc
    raise AssertionError("unreachable: tenacity stops by returning or raising")
