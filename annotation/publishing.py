"""Publishing comparisons: the one place that writes prompts, responses and comparisons, and
the batch they arrive in. The import (:mod:`annotation.importing`) publishes a file's records,
generation (:mod:`training.generation`) a policy's sampled candidates; both hand over
:class:`~annotation.comparison_specs.PromptComparisons` and get the same guarantees:

- one transaction: a failure anywhere leaves nothing;
- identity by content: prompts keyed by external id (or named by id: those must exist),
  responses by (prompt, content hash) — a stored response is reused as it is —, comparisons
  by their canonical pair (the smaller response id is A), so nothing is created twice;
- gold pairs are gold items (``is_gold``, :data:`GOLD_TARGET_VOTES`), the others ask for the
  project's k votes;
- publications into one project are serialized (an advisory lock on PostgreSQL).

PostgreSQL takes the ``COPY`` fast path (:mod:`annotation.publish_sql`); other databases (SQLite)
the ORM path below, with the same semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from annotation.comparison_specs import PromptComparisons, PublishCounts, canonical_pairs
from annotation.models import (
    GOLD_TARGET_VOTES,
    Batch,
    BatchSource,
    Comparison,
    Project,
    Prompt,
    Response,
)
from annotation.publish_sql import (
    lock_project_publishing,
    prepare_chunk_postgres,
    supports_fast_path,
)
from preflab.db_chunks import chunk_size, chunked
from preflab.errors import ConflictError

# Batch.name's column: a longer name is cut to fit
BATCH_NAME_CHARS: int = Batch._meta.get_field("name").max_length or 200


class PromptsGone(ConflictError):
    """A prompt named by id was deleted (or is another project's); ``extra["prompt_ids"]``."""

    code = "prompts_gone"

    def __init__(self, gone: list[int]) -> None:
        super().__init__(
            f"{len(gone)} prompt(s) no longer exist; nothing was published.",
            extra={"prompt_ids": gone[:20]},
        )
        self.count = len(gone)


@dataclass
class Publication:
    """The batch that was published and what it created. ``response_ids`` maps (prompt id,
    content hash) to the response id of every published candidate — only when asked for
    (``keep_response_ids``): an import of millions of rows does not keep them."""

    batch: Batch
    prompts_created: int = 0
    responses_created: int = 0
    responses_existing: int = 0
    comparisons_created: int = 0
    comparisons_existing: int = 0
    response_ids: dict[tuple[int, int], int] = field(default_factory=dict)


@transaction.atomic
def publish_comparisons(
    *,
    project: Project,
    source: BatchSource,
    name: str,
    chunks: Iterable[Sequence[PromptComparisons]],
    created_by: Any | None = None,
    metadata: dict[str, Any] | None = None,
    keep_response_ids: bool = False,
) -> Publication:
    """Create a batch of ``project`` and publish ``chunks`` into it, chunk by chunk (a
    streamed import hands over a generator: one chunk in memory at a time).

    Raises :class:`PromptsGone` when an item names a prompt that no longer exists. Callers
    that find the result wanting (nothing new, a bad line) raise inside their own
    transaction, and this one is rolled back with it.
    """
    if supports_fast_path():
        lock_project_publishing(project)
    batch = Batch.objects.create(
        project=project,
        name=name[:BATCH_NAME_CHARS],
        source=source,
        created_by=created_by,
        metadata=metadata or {},
    )
    published = Publication(batch=batch)
    if supports_fast_path():
        # An import's ids are distinct (a repeated id is a bad line), and the lock keeps other
        # publications out: into a project without prompts, every keyed prompt is new.
        keys_new = source == BatchSource.IMPORT and not project.prompts.exists()
        _publish_pipelined(project, batch, chunks, published, keep_response_ids, keys_new)
    else:
        for items in chunks:
            if items:
                _lock_named_prompts(project, items)
                _accumulate(published, _write_chunk_orm(project, batch, items), keep_response_ids)
    batch.comparison_count = published.comparisons_created
    batch.save(update_fields=["comparison_count"])
    return published


def _accumulate(published: Publication, counts: PublishCounts, keep_response_ids: bool) -> None:
    published.prompts_created += counts.prompts_created
    published.responses_created += counts.responses_created
    published.responses_existing += counts.responses_existing
    published.comparisons_created += counts.comparisons_created
    published.comparisons_existing += counts.comparisons_existing
    if keep_response_ids:
        published.response_ids.update(counts.response_ids)


class _WritesInFlight:
    """One chunk's writes at a time, run on a worker thread while the caller's ``chunks``
    produce the next chunk (for an import: while the next lines are parsed), so that
    PostgreSQL ingests one chunk as Python reads the next. It is the same connection and the
    same transaction throughout, and at most one chunk in flight: memory stays one chunk.

    Anything that queries through Django's connection meanwhile (this module's next lookups,
    or a caller's code run by ``chunks``) first waits for the writes in flight
    (:meth:`wait_first` is installed as an execute wrapper), so that the connection serves
    one thing at a time and every query sees the chunks before it."""

    def __init__(self, published: Publication, keep_response_ids: bool) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish")
        self._future: Future[PublishCounts] | None = None
        self._published = published
        self._keep_response_ids = keep_response_ids

    def submit(self, write: Callable[[], PublishCounts]) -> None:
        self.finish()
        self._future = self._pool.submit(write)

    def finish(self) -> None:
        """Wait for the writes in flight and count them; their error is raised here."""
        future, self._future = self._future, None
        if future is not None:
            _accumulate(self._published, future.result(), self._keep_response_ids)

    def wait_first(
        self, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any
    ) -> Any:
        self.finish()
        return execute(sql, params, many, context)

    def close(self) -> None:
        """Wait for the worker (after an error elsewhere, its result no longer matters)."""
        future, self._future = self._future, None
        if future is not None:
            wait([future])
        self._pool.shutdown()


def _publish_pipelined(
    project: Project,
    batch: Batch,
    chunks: Iterable[Sequence[PromptComparisons]],
    published: Publication,
    keep_response_ids: bool,
    keys_new: bool,
) -> None:
    """The PostgreSQL path: each chunk's lookups here, its writes in flight (above)."""
    writes = _WritesInFlight(published, keep_response_ids)
    try:
        with connection.execute_wrapper(writes.wait_first):
            for items in chunks:
                if not items:
                    continue
                writes.finish()
                _lock_named_prompts(project, items)
                writes.submit(
                    prepare_chunk_postgres(
                        project,
                        batch,
                        items,
                        keep_response_ids=keep_response_ids,
                        keys_new=keys_new,
                    )
                )
            writes.finish()
    finally:
        writes.close()


@transaction.atomic
def record_batch_metadata(*, batch: Batch, metadata: dict[str, Any]) -> Batch:
    """Add ``metadata`` keys to a published batch (what is known only once it is written)."""
    batch.metadata = {**batch.metadata, **metadata}
    batch.save(update_fields=["metadata"])
    return batch


def _lock_named_prompts(project: Project, items: Sequence[PromptComparisons]) -> None:
    """Lock the prompts the items name by id, and check that each still exists in the
    project (a prompt deleted meanwhile would leave responses pointing nowhere)."""
    ids = [item.prompt_id for item in items if item.prompt_id is not None]
    if not ids:
        return
    alive: set[int] = set()
    for chunk in chunked(ids):
        alive.update(
            Prompt.objects.select_for_update()
            .filter(project=project, pk__in=chunk)
            .values_list("pk", flat=True)
        )
    gone = [pid for pid in ids if pid not in alive]
    if gone:
        raise PromptsGone(gone)


def _write_chunk_orm(
    project: Project, batch: Batch, items: Sequence[PromptComparisons]
) -> PublishCounts:
    """The ORM path (SQLite): bulk inserts that ignore conflicts, then reads of the ids.
    Queries go by chunks of what one statement may carry."""
    counts = PublishCounts()
    # 1. Prompts, keyed by external id (existing prompts are reused as they are).
    keyed = [item for item in items if item.prompt_id is None]
    prompt_ids: dict[str, int] = {}
    if keyed:
        ids = [item.external_id for item in keyed]
        before = sum(
            Prompt.objects.filter(project=project, external_id__in=chunk).count()
            for chunk in chunked(ids)
        )
        Prompt.objects.bulk_create(
            [
                Prompt(
                    project=project,
                    external_id=item.external_id,
                    messages=item.messages,
                    metadata=item.metadata,
                )
                for item in keyed
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        for chunk in chunked(ids):
            prompt_ids.update(
                Prompt.objects.filter(project=project, external_id__in=chunk).values_list(
                    "external_id", "id"
                )
            )
        counts.prompts_created = len(prompt_ids) - before

    def prompt_of(item: PromptComparisons) -> int:
        return item.prompt_id if item.prompt_id is not None else prompt_ids[item.external_id]

    # 2. Responses, keyed by (prompt, content hash); an existing row is kept as it is.
    wanted: dict[tuple[int, int], Response] = {}
    for item in items:
        pid = prompt_of(item)
        for spec in item.responses:
            wanted.setdefault(
                (pid, spec.content_hash),
                Response(
                    prompt_id=pid,
                    content=spec.content,
                    content_hash=spec.content_hash,
                    source=spec.source,
                    model_artifact_id=spec.model_artifact_id,
                    round_number=spec.round_number,
                    metadata=spec.metadata,
                ),
            )
    # (prompt, hash) keys in chunks: one statement names each chunk's prompts and hashes
    key_chunks = list(chunked(wanted, chunk_size(lists=2)))

    def stored() -> Iterator[tuple[int, int, int]]:
        for keys in key_chunks:
            yield from Response.objects.filter(
                prompt_id__in={pid for pid, _ in keys}, content_hash__in={sha for _, sha in keys}
            ).values_list("id", "prompt_id", "content_hash")

    before = len({(pid, sha) for _, pid, sha in stored() if (pid, sha) in wanted})
    Response.objects.bulk_create(list(wanted.values()), ignore_conflicts=True, batch_size=1000)
    response_ids = {(pid, sha): rid for rid, pid, sha in stored() if (pid, sha) in wanted}
    counts.responses_created = len(response_ids) - before
    counts.responses_existing = before
    counts.response_ids = response_ids

    # 3. Comparisons in canonical order (smaller response id is A).
    pairs = canonical_pairs(
        (pid, item, [response_ids[(pid, spec.content_hash)] for spec in item.responses])
        for item in items
        for pid in (prompt_of(item),)
    )
    comparisons = [
        Comparison(
            project=project,
            batch=batch,
            prompt_id=pid,
            response_a_id=a,
            response_b_id=b,
            gold_choice=gold,
            is_gold=bool(gold),
            target_votes=GOLD_TARGET_VOTES if gold else project.overlap_k,
        )
        for pid, a, b, gold in pairs
    ]
    before = Comparison.objects.filter(batch=batch).count()
    Comparison.objects.bulk_create(comparisons, ignore_conflicts=True, batch_size=1000)
    created = Comparison.objects.filter(batch=batch).count() - before
    counts.comparisons_created = created
    counts.comparisons_existing = len(comparisons) - created
    return counts
