"""The limits table: how large a study, a job or a message may be, checked before any work.

A node runs unattended and the coordinator may send anything, so every count that makes a
node (or the coordinator) allocate, loop or log is bounded here, once, and checked where a
study file is read and where a job arrives off the wire, before anything is built from it or
logged. Values are generous for real studies (the README's examples and benchmarks use a
few analyses, 3 to 50 sites, grids of 10^4 points); each says why. The README's **Limits**
table lists the same rows (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import Any

from securecalc.errors import ConfigError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limit:
    """At most ``value`` of ``unit`` (e.g. 64 probabilities), for the reason ``why``."""

    what: str
    value: int
    unit: str
    why: str

    def check(self, count: int, field: str | None = None, *, path: str | None = None,
              hint: str = "") -> None:
        """ConfigError naming the field, the count and this limit when ``count`` exceeds it;
        ``hint`` says what to do instead."""
        if count > self.value:
            raise ConfigError(f"{self.message(count)}{'; ' + hint if hint else ''}",
                              path=path, field=field)

    def check_length(self, items: Any, field: str | None = None, *,
                     path: str | None = None) -> None:
        """:meth:`check` on ``len(items)`` for a list (anything else is left to the parser)."""
        if isinstance(items, Sized) and not isinstance(items, str | bytes):
            self.check(len(items), field, path=path)

    def message(self, count: int) -> str:
        """``100000 probabilities; the limit is 64 (limits table in the README)``."""
        return f"{count} {self.unit}; the limit is {self.value} (limits table in the README)"


STUDY_FILE = Limit(
    "study file size", 2 * MiB, "bytes",
    "read before TOML parsing; a real study is a few KiB, and a 100000-point grid fits")
ANALYSES = Limit(
    "analyses per study", 256, "analyses",
    "each analysis is computed, audited and released separately; studies use a handful")
PARTIES = Limit(
    "parties per study", 256, "parties",
    "MPC studies of 20 hospitals and CKKS studies of 200 sites are planned")
SCHEMA_COLUMNS = Limit(
    "columns per schema", 512, "columns",
    "a study declares the columns its analyses read; catalogues offer tens")
LEVELS = Limit(
    "levels per category column", 1024, "levels",
    "every level becomes a count, an indicator or a table row; ICD chapters or sites fit")
PROBS = Limit(
    "probabilities per order statistic", 64, "probabilities",
    "on MPC each adds up to 64 secure comparisons per search round; deciles and tails fit")
EDGES = Limit(
    "histogram edges", 1024, "edges",
    "one secure count per bin; 1023 bins is finer than any released histogram needs")
SURVIVAL_POINTS = Limit(
    "survival time points", 100_000, "time points",
    "an int time column's whole range (days over 270 years) or an explicit grid")
COUNT_CELLS = Limit(
    "counts per crosstab or survival analysis", 262_144, "counts",
    "crosstab cells, or survival groups x time points (two groups over 100000 points); "
    "a survival analysis this size sums 524288 values, 128 ciphertexts on CKKS")
STUDY_COUNTS = Limit(
    "counts per study, over all its analyses", 1_048_576, "counts",
    "four survival analyses at the limit above; at most 512 ciphertexts of them on CKKS")
CKKS_GRID_POINTS = Limit(
    "CKKS order-statistic grid points", 65_536, "grid points",
    "the pooled histogram a CKKS quantile decrypts: 16 ciphertexts; MPC searches any grid")
PREDICTORS = Limit(
    "regression predictors", 128, "predictor terms",
    "terms after each category expands to its levels; the pooled cross-products then "
    "number 8515")
CORRELATION_COLUMNS = Limit(
    "correlation or covariance columns", 64, "columns",
    "the released matrix has 2080 entries at this size")
NAME_CHARS = Limit(
    "names and ids (study, job, party, address, analysis, column, level)", 256, "characters",
    "they are logged and echoed in errors; party names are DNS labels of at most 63")
WHERE_CHARS = Limit(
    "where-expression length", 4096, "characters",
    "a filter of tens of comparisons is a few hundred characters")
WHERE_DEPTH = Limit(
    "where-expression nesting depth", 50, "levels of nesting",
    "the parser and evaluator recurse once per parenthesis or 'not'")
WHERE_COMPARISONS = Limit(
    "comparisons per where-expression", 256, "comparisons",
    "each comparison is one pass over a site's rows")
NOTE_CHARS = Limit(
    "a release note the coordinator reports to a node", 1024, "characters",
    "notes name a rule and a few analysis ids or probabilities; the node audits them")
REFUSALS_PER_HOUR = Limit(
    "refused jobs a node records per coordinator and hour", 120, "refusals",
    "each refusal is one short record; beyond this only their number is recorded")
CALLS_PER_CALLER = Limit(
    "calls one party may have in progress at a node or the compute node", 64, "calls",
    "a quarter of the server's threads (256): one party cannot hold all of them; a "
    "coordinator running 64 studies at once fits")
OPEN_JOBS_PER_COORDINATOR = Limit(
    "open CKKS jobs per coordinator at the compute node", 16, "jobs",
    "a study has one job open at a time; one coordinator cannot fill the table of 64")
IN_LIST = Limit(
    "values in an 'in [...]' list", 1024, "values",
    "as many as a category column has levels")
GRPC_MESSAGE = Limit(
    "gRPC message size (send and receive, every server and channel)", 8 * MiB, "bytes",
    "a job of a 2 MiB study fits with room; ciphertexts and contexts travel in 1 MiB chunks")
CKKS_CONTEXT = Limit(
    "CKKS public context, reassembled from chunks", 256 * MiB, "bytes",
    "a context with Galois keys is 35 MB at N=8192 and 179 MB at N=16384")
CKKS_CIPHERTEXT = Limit(
    "one CKKS ciphertext, reassembled from chunks", 4 * MiB, "bytes",
    "a fresh ciphertext is 332 KB at N=8192 and about 1.3 MB at N=16384")
CKKS_CIPHERTEXTS = Limit(
    "CKKS ciphertexts per job", 512, "ciphertexts",
    "2 million packed values at N=8192, 170 MB from each site; bounds the compute node's "
    "buffers")
CKKS_SUM = Limit(
    "CKKS sum fetched by the coordinator, reassembled from chunks", 256 * MiB, "bytes",
    "the sum of a job at the ciphertext limit and N=8192 (512 x 332 KB is 170 MB)")

LIMITS: tuple[Limit, ...] = (
    STUDY_FILE, ANALYSES, PARTIES, SCHEMA_COLUMNS, LEVELS, PROBS, EDGES, SURVIVAL_POINTS,
    COUNT_CELLS, STUDY_COUNTS, CKKS_GRID_POINTS, PREDICTORS, CORRELATION_COLUMNS, NAME_CHARS,
    WHERE_CHARS, WHERE_DEPTH, WHERE_COMPARISONS, NOTE_CHARS, REFUSALS_PER_HOUR, CALLS_PER_CALLER,
    OPEN_JOBS_PER_COORDINATOR, IN_LIST, GRPC_MESSAGE, CKKS_CONTEXT,
    CKKS_CIPHERTEXT, CKKS_CIPHERTEXTS, CKKS_SUM)


def markdown_table() -> str:
    """The README's Limits table, generated from :data:`LIMITS`."""
    rows = ["| limit | value | why |", "|---|---|---|"]
    rows += [f"| {limit.what} | {limit.value} {limit.unit} | {limit.why} |" for limit in LIMITS]
    return "\n".join(rows)


__all__ = [
    "ANALYSES", "CALLS_PER_CALLER", "CKKS_CIPHERTEXT", "CKKS_CIPHERTEXTS", "CKKS_CONTEXT",
    "CKKS_GRID_POINTS", "CKKS_SUM", "CORRELATION_COLUMNS", "COUNT_CELLS", "EDGES",
    "GRPC_MESSAGE", "IN_LIST", "LEVELS", "LIMITS", "NAME_CHARS", "OPEN_JOBS_PER_COORDINATOR",
    "PARTIES", "PREDICTORS", "PROBS", "REFUSALS_PER_HOUR", "SCHEMA_COLUMNS", "STUDY_COUNTS",
    "STUDY_FILE", "SURVIVAL_POINTS", "WHERE_CHARS", "WHERE_COMPARISONS", "WHERE_DEPTH", "Limit",
    "markdown_table",
]
