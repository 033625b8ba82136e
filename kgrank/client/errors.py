"""What a kgrank client call raises: every failure is a `KgrankClientError`, never an httpx exception."""

from __future__ import annotations


class KgrankClientError(Exception):
    """A call got no usable answer (also raised as such for a success body that is not the documented model)."""


class KgrankConnectionError(KgrankClientError):
    """No answer at all: the server refused the connection, could not be resolved or did not answer in time."""


class KgrankAPIError(KgrankClientError):
    """The server answered with an error status. `detail` is its error body's `error`; `item_ids` names the ids
    at fault (422 for unknown, duplicate or extra candidates); `retry_after_s` is set where the server asked the
    caller to come back later (429, 503)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        endpoint: str,
        item_ids: list[str] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        retry = "" if retry_after_s is None else f" (retry after {retry_after_s:g} s)"
        super().__init__(f"{endpoint} answered {status}: {detail}{retry}")
        self.status = status
        self.detail = detail
        self.endpoint = endpoint
        self.item_ids = item_ids
        self.retry_after_s = retry_after_s
