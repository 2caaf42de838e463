"""The search box's ranking by meaning, for the window: the project's word index
(`core.tagging.word_ranking.ProjectWords`) built and refreshed on the job queue, queries answered
on the I/O pool. Neither the text encoder's load nor a query ever runs on the GUI thread; a
newer query supersedes an older one's answer."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMainWindow

from core.progress import CancelToken, Job
from core.store.database import ProjectStore
from core.tagging.word_ranking import ProjectWords, RefreshOutcome
from core.tagging.word_search import best_first
from gui import errors
from gui.jobs_controller import JobsController
from gui.worker import JobHandle, run_io

log = logging.getLogger(__name__)

# photos ranked per query: a partial sort keeps a million photos under a second; past these,
# photos follow in the gallery's order (nobody scrolls 20,000 photos of a search)
RANKED_LIMIT = 20_000


def ranked_ids(image_ids: np.ndarray, scores: np.ndarray) -> list[int]:
    """The best `RANKED_LIMIT` image ids, best first."""
    rows, _ = best_first(scores[:, None], np.ones(1, np.float32), RANKED_LIMIT)
    return image_ids[rows].tolist()  # type: ignore[no-any-return]


def refresh_job(words: ProjectWords, cancel: CancelToken) -> Job[RefreshOutcome]:
    return (yield from words.refresh(cancel))


class WordSearch(QObject):
    ranked = Signal(str, object)  # the words, image ids best first
    _answered = Signal(int, str, object)  # ticket, words, image ids (or the exception)
    guessed = Signal(object)  # {new label: image ids, best guess first}
    _guesses_answered = Signal(int, object)

    def __init__(self, jobs: JobsController, window: QMainWindow) -> None:
        super().__init__(window)
        self.jobs, self.window = jobs, window
        self.words: ProjectWords | None = None
        self.building: JobHandle | None = None
        self._stale = True  # photos may have come or changed since the last refresh
        self._wanted = ""  # the words the box asks for now
        self._ticket = 0
        self._answered.connect(self._on_answered)
        self._prompts: dict[str, list[str]] = {}  # new label -> its prompts
        self._guess_ticket = 0
        self._guesses_answered.connect(self._on_guesses)

    def set_project(self, store: ProjectStore | None, prefer_gpu: bool = False) -> None:
        self.words = ProjectWords(store, prefer_gpu=prefer_gpu) if store is not None else None
        self.building, self._stale, self._wanted, self._prompts = None, True, "", {}
        self._ticket += 1
        self._guess_ticket += 1

    def mark_stale(self, *_args: object) -> None:
        """New or changed photos: the next search refreshes the index first (only those photos)."""
        self._stale = True

    def search(self, words: str) -> None:
        """Rank the photos by `words`; `ranked` brings the answer (after the index is built, the
        first time)."""
        self._wanted = words
        self._ticket += 1
        if not words or self.words is None:
            return
        if self._stale and self.building is None:
            self._build()
        if self.words.ready:
            self._query(words)

    def guess(self, prompts: dict[str, list[str]]) -> None:
        """Rank the photos for labels no model knows, by their prompts; `guessed` brings them."""
        self._prompts = prompts
        self._guess_ticket += 1
        if not prompts or self.words is None:
            self.guessed.emit({})
            return
        if self._stale and self.building is None:
            self._build()
        if self.words.ready:
            self._run_guesses()

    def _run_guesses(self) -> None:
        self._guess_ticket += 1
        ticket, project_words, prompts = self._guess_ticket, self.words, dict(self._prompts)
        assert project_words is not None

        def task() -> None:
            try:
                answer: object = {name: ranked_ids(*project_words.scores(texts)) for name, texts in prompts.items()}
            except Exception as exc:  # reported like a failed query
                answer = exc
            self._guesses_answered.emit(ticket, answer)

        run_io(task)

    def _on_guesses(self, ticket: int, answer: object) -> None:
        if ticket != self._guess_ticket:
            return
        if isinstance(answer, Exception):
            log.warning("guesses for new labels failed: %s", answer)
            return
        self.guessed.emit(answer)

    def _build(self) -> None:
        assert self.words is not None
        self._stale = False
        handle = self.jobs.submit("indexing for search", partial(refresh_job, self.words))
        self.building = handle
        handle.succeeded.connect(self._on_built)
        handle.finished.connect(lambda: setattr(self, "building", None) if self.building is handle else None)
        handle.cancelled.connect(self.mark_stale)
        handle.failed.connect(self._on_build_failed)

    def _on_build_failed(self, exc: object) -> None:
        """Said where the person looks (a missing or mismatched alignment would otherwise leave the
        box waiting for a ranking that never comes); the next search tries again."""
        self.mark_stale()
        log.warning("indexing for search failed: %s", exc)
        if self._wanted or self._prompts:
            self.window.statusBar().showMessage(f"Search by meaning is unavailable: {exc}", 15000)

    def _on_built(self, outcome: RefreshOutcome) -> None:
        if outcome.failures:
            errors.show_failures(self.window, "Indexing for search", outcome.failures)
        if self._wanted and self.words is not None and self.words.ready:
            self._query(self._wanted)
        if self._prompts and self.words is not None and self.words.ready:
            self._run_guesses()

    def _query(self, words: str) -> None:
        self._ticket += 1
        ticket, project_words = self._ticket, self.words
        assert project_words is not None

        def task() -> None:
            try:
                answer: object = project_words.rank(words, RANKED_LIMIT)
            except Exception as exc:  # an encoder failure reaches the window, never kills the pool
                answer = exc
            self._answered.emit(ticket, words, answer)

        run_io(task)

    def _on_answered(self, ticket: int, words: str, answer: object) -> None:
        if ticket != self._ticket:
            return  # the box asked for other words since
        if isinstance(answer, Exception):
            log.warning("search by words failed: %s", answer)
            self.window.statusBar().showMessage(f"Search by meaning failed: {answer}", 8000)
            return
        self.ranked.emit(words, answer)
