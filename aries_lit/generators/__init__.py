"""Candidate generators (``SR`` sequential self-refinement, ``PS`` parallel sampling,
``oracle_feedback`` refinement told which instructions the previous answer breaks) and backends.

::

    from aries_lit.generators import GENERATORS, load_groups

    gen = GENERATORS.build("sequential_refinement", num_candidates=4, backend="vllm")
    out = gen.run(prompts, model="path/to/model", out_dir="runs/iter1/candidates")
    groups = load_groups(out, prompts)  # selector input

Prompts are ``{"id", "prompt", "answer"?, ...}`` records; candidates land in
``out_dir/candidates.jsonl`` (see :mod:`aries_lit.generators.store`), and a rerun resumes.
"""

from aries_lit.generators.backends import (
    BACKENDS,
    Backend,
    Completion,
    EngineError,
    SamplingSettings,
    TransformersBackend,
    VLLMBackend,
    engine_log_dir,
)
from aries_lit.generators.base import GENERATORS, Generator
from aries_lit.generators.oracle_feedback import OracleFeedbackRefinement
from aries_lit.generators.parallel_sampling import ParallelSampling
from aries_lit.generators.sequential_refinement import SequentialRefinement
from aries_lit.generators.store import (
    CandidateStore,
    check_prompts,
    load_groups,
    read_candidates,
    read_manifest,
)

__all__ = [
    "BACKENDS",
    "GENERATORS",
    "Backend",
    "CandidateStore",
    "Completion",
    "EngineError",
    "Generator",
    "OracleFeedbackRefinement",
    "ParallelSampling",
    "SamplingSettings",
    "SequentialRefinement",
    "TransformersBackend",
    "VLLMBackend",
    "check_prompts",
    "engine_log_dir",
    "load_groups",
    "read_candidates",
    "read_manifest",
]
