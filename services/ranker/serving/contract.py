"""The HTTP contract (design.md): request and response bodies of every endpoint."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.core.ids import ID_RULE, Id
from services.ranker.prompt import MAX_CANDIDATES

API_KEY_HEADER_NAME = "X-API-Key"  # the header that carries the API key, for the server and its clients
_ID = f"{ID_RULE} (anything else is answered 422)"
MAX_NAMES_PER_LABEL = 50  # names of one attribute label on an item written through PUT /items


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RankRequest(_Body):
    user_id: Id = Field(description=f"the user: {_ID}")
    # More than 20 is answered with a 422 naming the extra ids; beyond this bound the body is nonsense.
    candidates: list[Id] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description=f"1..{MAX_CANDIDATES} unique item ids, e.g. the retriever's top 20; omitted: the served "
        f"retriever picks its top {MAX_CANDIDATES} from the user's live history, items the user has seen left out",
    )
    top_k: int | None = Field(default=None, ge=1, le=MAX_CANDIDATES, description="return only the best k")
    explain: bool = Field(default=True, description="attach the graph paths behind each item")


class NodeElement(BaseModel):
    kind: Literal["node"] = "node"
    label: str
    key: str
    title: str | None


class RelationshipElement(BaseModel):
    kind: Literal["relationship"] = "relationship"
    type: str
    direction: Literal["forward", "backward"]  # forward: points from the element before to the one after


class ExplanationOut(BaseModel):
    text: str
    path: list[NodeElement | RelationshipElement]
    cypher: str = Field(description="paste into Neo4j Browser to draw exactly this path")
    score: float
    shown_to_model: bool


class RankedItemOut(BaseModel):
    item_id: str
    title: str
    score: float = Field(
        description="what orders the ranking: the ranker's score, or the fused one (model.fusion_weight)"
    )
    ranker_score: float = Field(description="the LLM's letter log-probability, or the preference module's score")
    retriever_score: float | None = Field(
        default=None,
        description="the retriever's score, when serving has the retriever (it fuses, or orders the fallback)",
    )
    rank: int
    explanations: list[ExplanationOut]


RankedBy = Literal["llm", "preference module", "retriever", "request order"]


class ModelInfo(BaseModel):
    version: str
    dataset: str
    data_hash: str
    graph_version: str | None
    base_model: str
    path_strategy: str
    scorer: str
    ranked_by: RankedBy
    fusion_weight: float | None = Field(
        default=None, description="the retriever's share of the fused score (chosen on val); null: not fused"
    )
    retriever: str | None = Field(default=None, description="the retriever whose scores are fused (name, version)")


DegradedReason = Literal["graph", "cache", "scorer"]


class RankResponse(BaseModel):
    user_id: str
    known_user: bool
    cold_start: bool = Field(description="no history to rank from: the answer leans on the candidates alone")
    history_length: int
    user_version: int | None = Field(
        description="the user's live events this answer reflects (null when the graph could not be asked)"
    )
    candidates_from: Literal["request", "retriever"] = Field(
        description="who chose the candidates: the request, or the retriever (a request without candidates)"
    )
    ranking: list[RankedItemOut]
    model: ModelInfo
    prompt_tokens: int = Field(description="tokens of the prompt the LLM read (or would have, when it was out)")
    cached: bool
    degraded: list[DegradedReason]
    timings_ms: dict[str, float]


class InteractionRequest(_Body):
    event_id: Id | None = Field(
        default=None,
        description=f"the client's id for this event: a retry with the same id is recorded once; {_ID}. "
        "Default: a new id per request (a retry then counts twice)",
    )
    user_id: Id = Field(description=f"the user (a new id creates the user): {_ID}")
    item_id: Id = Field(description="an item of the served dataset")
    rating: float | None = Field(default=None, ge=0, le=10)
    timestamp: int | None = Field(default=None, ge=0, le=2**53, description="unix seconds; default: now")


class InteractionResponse(BaseModel):
    event_id: str
    user_id: str
    item_id: str
    rating: float | None
    timestamp: int
    duplicate: bool = Field(description="the event id was recorded before: this retry changed nothing")
    user_version: int = Field(
        description="the user's live events so far; rankings cached before this version are never served again"
    )


class ItemRequest(_Body):
    title: str = Field(min_length=1, max_length=500, description="shown to the ranker and in explanations")
    attributes: dict[str, list[Annotated[str, Field(min_length=1, max_length=200)]]] = Field(
        default_factory=dict,
        description="attribute label of the served dataset's schema (e.g. Genre, Year, Director, Actor, Brand, "
        f"Category) -> names, at most {MAX_NAMES_PER_LABEL} per label; the item's graph paths run through them",
    )


class ItemResponse(BaseModel):
    item_id: str
    title: str
    attributes: dict[str, list[str]]
    created: bool = Field(description="false: an item created through the API before was replaced")


class ReloadRequest(_Body):
    model_dir: str | None = Field(
        default=None,
        description="a `train ranker` / `train bundle` checkpoint folder on the server; default: the served one",
    )
    retriever_dir: str | None = Field(
        default=None, description="its retriever run on the server; default: the served one"
    )


class ReloadResponse(BaseModel):
    version: str = Field(description="the models' version now served (cache keys carry it)")
    previous_version: str
    model_dir: str
    retriever_dir: str | None
    seconds: float = Field(description="how long loading took (requests were answered by the old models meanwhile)")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]  # dependency -> "ok" or what is wrong
    degraded: list[DegradedReason]


class ErrorBody(BaseModel):
    error: str
    item_ids: list[str] | None = None
