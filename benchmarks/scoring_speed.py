"""One-pass letter scoring vs generating the ranked list, on the same model and the same real prompts,
and the one pass against this machine's compute bound.

    .venv/bin/python -m benchmarks.scoring_speed --data DATA --retriever RUN --model MODEL_DIR [--name NAME]
Writes benchmarks/results/ml-latest-small/scoring_speed[-NAME].{json,md}.

The compute bound of a forward pass is 2 × parameters × prompt tokens floating-point operations (a
multiply and an add per weight and token; attention adds a little more), divided by the FLOP/s this
machine reaches on a large fp32 matrix product, measured in the same run.

One pass reads 20 letter log-probabilities at the last position. Generating the ranked list is timed
twice, with a KV cache and greedy decoding: as letters ("A, B, …": 40 tokens, the shortest possible
list) and as titles, the way generative recommenders write it (as many tokens as the prompt's
candidate list). Lengths are forced so that the timing measures the cost of writing a full ranking,
whatever a model trained to answer one letter would choose to write.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, markdown_table, matmul_flops
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.sequences import user_sequences
from services.ranker.candidates import CandidateSet
from services.ranker.context import RANKING_PATHS, GraphContext
from services.ranker.graphs import open_path_source
from services.ranker.llm.scorer import TransformersScorer, left_padded
from services.ranker.pipeline import PipelineRanker, RankingPipeline
from training.examples import validation_examples

PROMPTS = 40
LETTER_LIST_TOKENS = 40
CANDIDATES_MARK = "Candidate pool: "


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--retriever", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--name", default="", help="suffix of the result files, e.g. smollm2")
    parser.add_argument("--generate", type=int, default=10, help="prompts timed for generation (0: skip)")
    args = parser.parse_args()
    dataset = ProcessedDataset.load(args.data)
    scorer = TransformersScorer(args.model, batch_size=8)
    candidate_set = CandidateSet.load(args.retriever / "candidates-val.npz")
    tasks = [e.task for e in validation_examples(dataset, user_sequences(dataset), candidate_set)][:PROMPTS]
    with open_path_source(
        Settings(neo4j_uri=None),
        dataset=dataset.name,
        data_hash=dataset.manifest.data_hash,
        schema=dataset.schema,
        embedded_path=args.data / "graph.sqlite",
        config=RANKING_PATHS,
    ) as source:
        pipeline = RankingPipeline.from_checkpoint(args.model, scorer=scorer, tokenizer=scorer.tokenizer, fused=False)
        prompts = [r.prompt.text for r in PipelineRanker(GraphContext(dataset, source), pipeline).rankings(tasks)]
    scorer.score(prompts[:2], [20, 20])  # warm-up

    def one_pass(batch: int) -> float:
        scorer.batch_size = batch
        started = time.perf_counter()
        scorer.score(prompts, [20] * len(prompts))
        return (time.perf_counter() - started) / len(prompts)

    single, batched = one_pass(1), one_pass(8)
    model, tokenizer = scorer.model, scorer.tokenizer
    title_list_tokens = int(
        statistics.median(
            len(tokenizer(p.split(CANDIDATES_MARK)[-1].split("\n\n###")[0], add_special_tokens=False)["input_ids"])
            for p in prompts
        )
    )

    @torch.inference_mode()
    def generate(length: int) -> float:
        seconds = []
        for prompt in prompts[: args.generate]:
            ids, mask, _ = left_padded(tokenizer, [prompt])
            started = time.perf_counter()
            output = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=length,
                min_new_tokens=length,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            seconds.append(time.perf_counter() - started)
            assert output.shape[1] == ids.shape[1] + length
        return statistics.median(seconds)

    letters, titles = (generate(LETTER_LIST_TOKENS), generate(title_list_tokens)) if args.generate else (0.0, 0.0)
    tokens = statistics.median(len(tokenizer(p)["input_ids"]) for p in prompts)
    parameters = sum(p.numel() for p in model.parameters())
    flops = matmul_flops()
    bound = 2 * parameters * tokens / flops
    payload = {
        "benchmark": "scoring_speed",
        "command": f".venv/bin/python -m benchmarks.scoring_speed --data {args.data} --retriever {args.retriever} "
        f"--model {args.model}",
        "model": str(args.model),
        "prompts": len(prompts),
        "median_prompt_tokens": tokens,
        "threads": torch.get_num_threads(),
        "parameters": parameters,
        "matmul_gflops": round(flops / 1e9, 1),
        "compute_bound_s_per_prompt": round(bound, 4),
        "one_pass_over_bound": {"batch_1": round(single / bound, 2), "batch_8": round(batched / bound, 2)},
        "one_pass_s_per_prompt": {"batch_1": round(single, 4), "batch_8": round(batched, 4)},
        "generate_letter_list_s_per_prompt": {"tokens": LETTER_LIST_TOKENS, "seconds": round(letters, 4)},
        "generate_title_list_s_per_prompt": {"tokens": title_list_tokens, "seconds": round(titles, 4)},
        "speedup_vs_letter_list": round(letters / single, 1) if args.generate else None,
        "speedup_vs_title_list": round(titles / single, 1) if args.generate else None,
        "throughput_prompts_per_s": {"batch_1": round(1 / single, 2), "batch_8": round(1 / batched, 2)},
        "target_speedup_min": 20,
    }
    if args.name:
        payload["command"] += f" --name {args.name}"
    out = RESULTS / "ml-latest-small"
    out.mkdir(parents=True, exist_ok=True)
    stem = "scoring_speed" + (f"-{args.name}" if args.name else "")
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    rows = [
        ["one pass, letter log-probabilities (batch 1)", f"{single:.4f}", f"{1 / single:.1f}"],
        ["one pass, letter log-probabilities (batch 8)", f"{batched:.4f}", f"{1 / batched:.1f}"],
        [f"compute bound (2 × {parameters:,} × {tokens:.0f} tokens ÷ {flops / 1e9:.0f} GFLOP/s)", f"{bound:.4f}", ""],
    ]
    if args.generate:
        rows += [
            [f"generate the list as letters ({LETTER_LIST_TOKENS} tokens)", f"{letters:.4f}", f"{1 / letters:.1f}"],
            [f"generate the list as titles ({title_list_tokens} tokens)", f"{titles:.4f}", f"{1 / titles:.1f}"],
        ]
    table = markdown_table(["method", "seconds per prompt", "prompts per second"], rows)
    generation = (
        f"**One pass is {payload['speedup_vs_letter_list']}× faster than writing the list as letters and "
        f"{payload['speedup_vs_title_list']}× faster than writing it as titles** (target ≥ 20×). "
        if args.generate
        else ""
    )
    (out / f"{stem}.md").write_text(
        f"# One-pass scoring vs generation\n\n`{payload['command']}`, {torch.get_num_threads()} CPU threads, "
        f"{len(prompts)} real validation prompts (median {tokens:.0f} tokens), {parameters:,} parameters.\n\n"
        f"{table}\n\n{generation}One pass takes {single / bound:.2f}× its compute bound at batch 1 and "
        f"{batched / bound:.2f}× at batch 8 (target ≤ 1.3×).\n"
    )
    print((out / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
