"""Every endpoint the clients call, described once for the sync and the async client alike: how its request
is built (through the API's own request models, so arguments that break the API's rules raise pydantic's
ValidationError before anything is sent) and how its answer is read (into the API's own response models,
errors into `KgrankAPIError`). The two client classes only send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from kgrank.client.errors import KgrankAPIError, KgrankClientError, KgrankConnectionError
from services.core.ids import Id
from services.ranker.serving.contract import (
    API_KEY_HEADER_NAME,
    ErrorBody,
    Health,
    InteractionRequest,
    InteractionResponse,
    ItemRequest,
    ItemResponse,
    RankRequest,
    RankResponse,
    Readiness,
)

Answer = TypeVar("Answer", bound=BaseModel)
_ITEM_ID: TypeAdapter[str] = TypeAdapter(Id)


class HttpOptions(TypedDict):
    base_url: str
    headers: dict[str, str]
    timeout: float


def http_options(base_url: str, *, api_key: str | None, timeout_s: float) -> HttpOptions:
    """What either kind of httpx client is made with. The key goes with every request: a server with a key
    wants it for ranking too, and /readyz says what is wrong only to callers that show it."""
    return HttpOptions(
        base_url=base_url, headers={} if api_key is None else {API_KEY_HEADER_NAME: api_key}, timeout=timeout_s
    )


@dataclass(frozen=True)
class Call(Generic[Answer]):
    """One request to the API and the model its success answer is read into."""

    method: str
    path: str
    answer: type[Answer]
    body: BaseModel | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        body = None if self.body is None else self.body.model_dump(mode="json")
        return http.build_request(self.method, self.path, json=body)

    def read(self, response: httpx.Response) -> Answer:
        if not response.is_success:
            raise _api_error(self.endpoint, response)
        try:
            return self.answer.model_validate_json(response.content)
        except ValidationError as e:
            raise KgrankClientError(
                f"{self.endpoint} answered {response.status_code} with a body that is not a "
                f"{self.answer.__name__} (is the client older or newer than the server?): {e}"
            ) from e

    def unanswered(self, request: httpx.Request, error: httpx.TransportError) -> KgrankConnectionError:
        reason = str(error) or type(error).__name__  # httpx's timeouts can come without a message
        return KgrankConnectionError(f"{self.endpoint}: no answer from {request.url}: {reason}")


def _api_error(endpoint: str, response: httpx.Response) -> KgrankAPIError:
    try:
        body = ErrorBody.model_validate_json(response.content)
        detail, item_ids = body.error, body.item_ids
    except ValidationError:
        # Not kgrank's error body: something in front of it (a proxy, a load balancer) answered.
        detail, item_ids = response.text.strip()[:200] or response.reason_phrase, None
    return KgrankAPIError(
        response.status_code, detail, endpoint=endpoint, item_ids=item_ids, retry_after_s=_retry_after_s(response)
    )


def _retry_after_s(response: httpx.Response) -> float | None:
    # kgrank sends whole seconds; the HTTP-date form, which only something in front of it could send, is not read.
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def rank(
    user_id: str, candidates: Sequence[str] | None = None, *, top_k: int | None = None, explain: bool = True
) -> Call[RankResponse]:
    request = RankRequest(
        user_id=user_id,
        candidates=None if candidates is None else list(candidates),
        top_k=top_k,
        explain=explain,
    )
    return Call("POST", "/rank", RankResponse, request)


def record_interaction(
    user_id: str,
    item_id: str,
    *,
    rating: float | None = None,
    timestamp: int | None = None,
    event_id: str | None = None,
) -> Call[InteractionResponse]:
    request = InteractionRequest(
        event_id=event_id, user_id=user_id, item_id=item_id, rating=rating, timestamp=timestamp
    )
    return Call("POST", "/interactions", InteractionResponse, request)


def put_item(item_id: str, title: str, attributes: Mapping[str, Sequence[str]] | None = None) -> Call[ItemResponse]:
    request = ItemRequest(title=title, attributes={label: list(names) for label, names in (attributes or {}).items()})
    # The id goes in the path: checked against the id rule like the body's ids, and escaped.
    path = "/items/" + quote(_ITEM_ID.validate_python(item_id), safe="")
    return Call("PUT", path, ItemResponse, request)


HEALTHZ = Call("GET", "/healthz", Health)
READYZ = Call("GET", "/readyz", Readiness)
