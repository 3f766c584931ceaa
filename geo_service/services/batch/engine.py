"""The compute engines: a list of tasks in, their results out, in-process or on a cluster.

Computations describe their work as ``Task`` s (a function and its arguments, possibly other
tasks) and never touch Dask; this module turns them into one Dask graph when an engine
starts. ``local`` computes the graph with Dask's threaded scheduler in this process, ``dask``
on a ``distributed`` cluster (a scheduler address, or a LocalCluster of worker processes when
none is given). Dask is imported here and only when an engine starts, so the API process,
which only reads stored runs, never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message, gettext

ENGINES = ("local", "dask")
TaskProgress = Callable[[int, int], None]  # tasks done, tasks in this step


@dataclass(frozen=True, eq=False)
class Task:
    """One call to run on an engine; arguments that are tasks are computed first, once,
    however many tasks share them (a grid index built once per run, not once per file)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def task(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
    """``fn(*args, **kwargs)`` as a task."""
    return Task(fn, args, kwargs)


Compute = Callable[[list[Task]], list[Any]]


def quiet(done: int, total: int) -> None:
    """A progress callback that reports nothing."""
    return None


def _graph(tasks: list[Task]) -> list[Any]:
    """The tasks as Dask delayed objects, a shared argument task becoming one node."""
    import dask

    made: dict[int, Any] = {}

    def node(value: Any) -> Any:
        if not isinstance(value, Task):
            return value
        if id(value) not in made:
            args = [node(a) for a in value.args]
            kwargs = {k: node(v) for k, v in value.kwargs.items()}
            made[id(value)] = dask.delayed(value.fn)(*args, **kwargs)
        return made[id(value)]

    return [node(t) for t in tasks]


@contextmanager
def compute_engine(
    engine: str,
    scheduler: str | None = None,
    workers: int = 2,
    progress: TaskProgress = quiet,
) -> Iterator[Compute]:
    """A function that computes a list of tasks: in-process, or on a cluster."""
    if engine not in ENGINES:
        raise InvalidInputError(
            format_message("engine must be one of {values}", values=", ".join(ENGINES))
        )
    if not 1 <= workers <= 256:
        raise InvalidInputError(gettext("workers must be 1..256"))  # none would wait forever
    if engine == "local":
        yield _local(progress)
        return
    from distributed import Client, LocalCluster, as_completed

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InvalidInputError(
                format_message(
                    "cannot reach the Dask scheduler at {scheduler}: {exc}",
                    scheduler=scheduler,
                    exc=exc,
                )
            ) from None
        cluster = None
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)

    def distributed(tasks: list[Task]) -> list[Any]:
        futures = client.compute(_graph(tasks))
        for done, _ in enumerate(as_completed(futures), start=1):
            progress(done, len(futures))
        return list(client.gather(futures))

    try:
        yield distributed
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _local(progress: TaskProgress) -> Compute:
    """Dask's threaded scheduler in this process, counting finished tasks."""
    import dask
    from dask.callbacks import Callback

    class _Count(Callback):  # type: ignore[misc]
        def _start_state(self, dsk: Any, state: Any) -> None:
            self.total, self.done = len(state["ready"]) + len(state["waiting"]), 0

        def _posttask(self, *args: Any) -> None:
            self.done += 1
            progress(self.done, self.total)

    def local(tasks: list[Task]) -> list[Any]:
        with _Count():
            return list(dask.compute(*_graph(tasks), scheduler="threads"))

    return local
