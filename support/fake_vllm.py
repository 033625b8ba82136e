"""A stand-in for `vllm serve` on loopback: its `/health` and OpenAI-compatible `/v1/completions`, answered
by the checkpoint itself run with transformers, so the scores are the model's own.

`delay_s` makes every completion wait first: a vLLM that is up but too slow (overloaded, swapping).
`status` makes every completion answer that HTTP status instead of scores: 503 for a vLLM that sheds load,
400 for one that rejects the request. Cutting it off entirely is the job of a ToggleProxy in front of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException

from services.api.local import serve_in_thread
from services.ranker.llm.scorer import TransformersScorer
from services.ranker.llm.vllm import TOKEN_ID_PREFIX


class FakeVLLM:
    def __init__(self, model_dir: Path) -> None:
        self._scorer = TransformersScorer(model_dir)
        self.delay_s = 0.0
        self.status = 200
        self.requests = 0  # completion requests received, however they were answered
        self.completions = 0  # those answered with scores

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        def health() -> dict[str, str]:
            return {}

        @app.post("/v1/completions")
        def completions(body: dict[str, Any]) -> dict[str, Any]:  # a thread of the pool: sleeping is fine
            self.requests += 1
            time.sleep(self.delay_s)
            if self.status != 200:
                raise HTTPException(self.status, detail=f"fake vLLM set to answer {self.status}")
            prompts, letters = body["prompt"], body["logprob_token_ids"]
            scores = self._scorer.score(prompts, [len(letters)] * len(prompts))
            self.completions += 1
            return {
                "object": "text_completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": index,
                        "text": f"{TOKEN_ID_PREFIX}{letters[int(row.argmax())]}",
                        "logprobs": {
                            "top_logprobs": [
                                {f"{TOKEN_ID_PREFIX}{letter}": float(v) for letter, v in zip(letters, row, strict=True)}
                            ]
                        },
                        "finish_reason": "length",
                    }
                    for index, row in enumerate(scores)
                ],
            }

        return app

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Yield its base URL while it serves."""
        with serve_in_thread(self.app()) as url:
            yield url
