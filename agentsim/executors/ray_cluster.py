"""The ``ray`` executor: conversations run on Ray workers, on this machine or a cluster.

Each worker is a Ray actor (one CPU) holding its own model client, built from the run's options
as the driver builds its own; the workers call the models, the driver writes the log
(:mod:`agentsim.executors.remote`). Rate limits are a per-worker share: every actor gets an equal
part of each model's rpm, tpm and calls in flight (no shared limiter actor, so a call never waits
on a round trip to one); the executor starts no more actors than the tightest ``max_in_flight``.

``address``: ``None`` starts a private Ray on this machine for the run (stopped at the end);
``auto`` joins the Ray already running here; ``ray://host:10001`` a remote cluster's client
server. A Ray already initialised in this process (a notebook, the tests) is used as it is. An
actor that dies (its node lost, its process killed) fails the conversations of its batches and
is replaced. Needs the ``agentsim[ray]`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentsim.errors import InputError
from agentsim.executors.remote import RemoteExecutor
from agentsim.executors.worker import Batch, BatchResult, Worker, WorkerSpec
from agentsim.registry import executor

NICENESS = "RAY_worker_niceness"  # Ray's setting, read from the environment of ray.init
INSTALL_HINT = "the ray executor needs Ray: pip install 'agentsim[ray]'"


def import_ray() -> Any:
    """The ray module, or an InputError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT, source="--executor") from None
    return ray


@contextmanager
def _worker_niceness(address: str | None) -> Iterator[None]:
    """A Ray started here for the run runs its workers at the driver's priority (Ray's default
    niceness of 15 would let any other load on the machine starve the run's own workers)."""
    if address is not None or NICENESS in os.environ:
        yield
        return
    os.environ[NICENESS] = "0"
    try:
        yield
    finally:
        os.environ.pop(NICENESS, None)


class RayWorker:
    """The actor's class: a :class:`~agentsim.executors.worker.Worker` behind Ray."""

    def __init__(self, spec: WorkerSpec, index: int) -> None:
        self.worker = Worker(spec, index)

    def run(self, batch: Batch) -> BatchResult:
        return self.worker.run(batch)

    def pid(self) -> int:
        """The actor's process id."""
        return os.getpid()


class RayPool:
    """``slots`` actors; each runs its batches one after the other."""

    def __init__(self, ray: Any, spec: WorkerSpec, slots: int, num_cpus: float,
                 started: bool) -> None:
        self.ray, self.slots, self.started = ray, slots, started
        self.actor_class = ray.remote(num_cpus=num_cpus, max_restarts=0)(RayWorker)
        self.spec_ref = ray.put(spec)
        self.actors = [self._actor(index) for index in range(slots)]
        self.busy = [0] * slots  # batches queued on each actor
        self.slot_of: dict[Any, int] = {}

    def _actor(self, index: int) -> Any:
        return self.actor_class.remote(self.spec_ref, index)

    def submit(self, batch: Batch) -> Any:
        index = min(range(self.slots), key=lambda i: self.busy[i])
        handle = self.actors[index].run.remote(batch)
        self.busy[index] += 1
        self.slot_of[handle] = index
        return handle

    def wait(self, handles: Sequence[Any]) -> list[tuple[Any, Any]]:
        ray = self.ray
        ready, _ = ray.wait(list(handles), num_returns=1)
        out = []
        for handle in ready:
            index = self.slot_of.pop(handle)
            self.busy[index] -= 1
            try:
                out.append((handle, ray.get(handle)))
            except ray.exceptions.RayTaskError as error:  # the batch raised: the actor lives
                out.append((handle, error))
            except ray.exceptions.RayError as error:  # the actor (or its node) is gone
                out.append((handle, error))
                self._replace(index)
        return out

    def _replace(self, index: int) -> None:
        with suppress(Exception):  # it may be dead already
            self.ray.kill(self.actors[index])
        self.actors[index] = self._actor(index)

    def close(self, abort: bool = False) -> None:
        ray = self.ray
        for handle in list(self.slot_of):
            with suppress(Exception):  # done or gone already
                ray.cancel(handle, force=True)
        for actor in self.actors:
            with suppress(Exception):
                ray.kill(actor)
        if self.started:
            ray.shutdown()


@executor("ray")
class RayExecutor(RemoteExecutor):
    """Conversations on Ray workers, on this machine or a cluster; the driver writes the log.

    ``workers`` actors (default: the cluster's CPUs / ``num_cpus``), ``concurrency``
    conversations in flight in all together, ``batch_size`` per batch, ``address`` the Ray to
    join (see the module).
    """

    class Options(BaseModel):
        """Options of the ray executor."""

        model_config = ConfigDict(extra="forbid")

        concurrency: int = Field(default=4, ge=1, description="Conversations in flight, all "
                                 "workers together.")
        address: str | None = Field(default=None, description="Ray to join: None starts one "
                                    "here, 'auto' the local one, 'ray://host:10001' a cluster.")
        workers: int | None = Field(default=None, ge=1, description="Actors (default: the "
                                    "cluster's CPUs).")
        batch_size: int | None = Field(default=None, ge=1, description="Conversations per "
                                       "batch (default: at most 16, four batches per worker).")
        num_cpus: float = Field(default=1.0, gt=0, description="CPUs each actor reserves.")

    def __init__(self, concurrency: int = 4, address: str | None = None,
                 workers: int | None = None, batch_size: int | None = None,
                 num_cpus: float = 1.0) -> None:
        super().__init__(concurrency, workers, batch_size)
        self.address = address
        self.num_cpus = num_cpus
        self._ray: Any = None
        self._started = False

    def check(self) -> None:
        """Ray is installed (an InputError saying how to install it, otherwise)."""
        import_ray()

    def _connect(self) -> Any:
        if self._ray is None:
            ray = import_ray()
            if not ray.is_initialized():
                try:
                    with _worker_niceness(self.address):
                        ray.init(address=self.address, include_dashboard=False,
                                 log_to_driver=False, configure_logging=False)
                except ConnectionError as error:
                    raise InputError(f"cannot reach Ray at {self.address}: {error}",
                                     source="--ray-address") from None
                self._started = True
            self._ray = ray
        return self._ray

    def default_workers(self) -> int:
        ray = self._connect()
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.num_cpus))

    def open_pool(self, spec: WorkerSpec, slots: int) -> RayPool:
        pool = RayPool(self._connect(), spec, slots, self.num_cpus, self._started)
        self._ray, self._started = None, False  # the pool shuts down a Ray it started
        return pool
