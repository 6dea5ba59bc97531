"""The partitioned export on a dask.distributed cluster (`--dask tcp://host:8786`): one task
per partition, a bounded number in flight (twice the workers' threads), results as they come.
The `dask` extra provides the library; workers need CareVault and the data folder."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from carevault.deid.fhir.job import PartitionJob, PartitionSummary, run_partition
from carevault.errors import Invalid


def run_on_cluster(scheduler: str, jobs: Iterator[PartitionJob]) -> Iterator[PartitionSummary]:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - the extra is missing
        raise Invalid("--dask needs the dask extra: pip install 'carevault[dask]'") from None
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        threads = sum(client.nthreads().values()) or 1
        queued: Any = as_completed(  # type: ignore[no-untyped-call]
            [client.submit(run_partition, job, pure=False) for job in islice(jobs, 2 * threads)]
        )
        for future in queued:
            summary: PartitionSummary = future.result()
            for job in islice(jobs, 1):
                queued.add(client.submit(run_partition, job, pure=False))
            yield summary
