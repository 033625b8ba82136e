"""A typed Python client for the kgrank HTTP API, sync (`KgrankClient`) and async (`AsyncKgrankClient`).

Answers are the API's own response models (services/ranker/serving/contract.py), so client and server cannot
disagree on a field. It imports no HTTP server code (services/api, fastapi, uvicorn) and no model code."""

from kgrank.client.clients import AsyncKgrankClient, KgrankClient
from kgrank.client.errors import KgrankAPIError, KgrankClientError, KgrankConnectionError
from services.ranker.serving.contract import Health, InteractionResponse, ItemResponse, RankResponse, Readiness

__all__ = [
    "AsyncKgrankClient",
    "Health",
    "InteractionResponse",
    "ItemResponse",
    "KgrankAPIError",
    "KgrankClient",
    "KgrankClientError",
    "KgrankConnectionError",
    "RankResponse",
    "Readiness",
]
