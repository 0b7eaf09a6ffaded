"""The data-parallel group a run was launched in, for ``--model tailored`` on any device.

lm-eval shards requests over ``lm.rank``/``lm.world_size`` and gathers through ``all_gather``,
``gather_object`` and ``barrier``. Its ``hf`` model takes them from ``accelerate`` only when each
process has a GPU; on CPUs every process scores everything (and ``accelerate launch --cpu`` starts one
process unless MPI is set up). Under a launcher that sets ``WORLD_SIZE`` > 1 (``torchrun
--nproc_per_node N -m lm_eval ...``; ``accelerate launch`` on GPUs) this module joins the group with
``torch.distributed`` (gloo on CPUs, NCCL on GPUs) when the wrapped model did not, so the plugin shards
and gathers on either. Pruning and adapter training are not sharded: every rank asks the cache for
the same entries and one builds each while the others wait for it
(:func:`tailored_harness.core.cache.building`), then every rank loads what was built.
"""

from __future__ import annotations

import datetime
import os
from typing import Any


def launched_world_size() -> int:
    """Processes the launcher started (``WORLD_SIZE``, set by ``torchrun`` and ``accelerate launch``)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


class Ranks:
    """This process's place in the launcher's group: ``rank``, ``world_size`` and the collectives lm-eval calls."""

    def __init__(self) -> None:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            # waiting for another rank's pruning or training happens outside collectives; the long
            # timeout covers a rank that reaches the next collective while another still builds
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo",
                                    timeout=datetime.timedelta(weeks=52))
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    def all_gather(self, tensor):
        """Every rank's ``tensor`` concatenated along the first dimension (a 0-d tensor counts as one element)."""
        import torch
        import torch.distributed as dist

        flat = tensor.reshape(1) if tensor.dim() == 0 else tensor
        parts = [torch.empty_like(flat) for _ in range(self.world_size)]
        dist.all_gather(parts, flat)
        return torch.cat(parts)

    def gather_object(self, obj: Any, dst: int = 0) -> list | None:
        import torch.distributed as dist

        result = [None] * self.world_size if self.rank == dst else None
        dist.gather_object(obj, object_gather_list=result, dst=dst)
        return result

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()
