"""Writes this folder's checkpoint: a per-layer-width (``tailored_llama``) pruned tiny LLaMA, as the
plugin saved it at commit f78b63e, the last one before the package moved into stage folders.

tests/test_layout.py loads it with and without the plugin installed and checks the logits it stored.
Rerunning this script at a later commit writes what that commit writes, which is not the point of
the fixture; it is kept to show how the fixture was made:

    git checkout f78b63e && PYTHONPATH=.:tests python tests/data/pre_layout_checkpoint/make.py
"""

import json
import subprocess
from pathlib import Path

import torch

from prune_helpers import calibration_batch, logits, probe, tiny_llama
from tailored_harness.prune import PruneSpec, checkpoint, prune_model

HERE = Path(__file__).resolve().parent

model = tiny_llama("gqa")
pruned, plan, _ = prune_model(model, PruneSpec(ratio=0.5, layers="1-2", importance="param_first"),
                              calibration_batch(), progress=False)
folder = checkpoint.save(pruned, None, HERE / "checkpoint", {"fingerprint": "pre-layout", "plan": plan.to_dict()})
torch.save({"ids": probe(), "logits": logits(pruned)}, HERE / "expected.pt")
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
(HERE / "written_by.json").write_text(json.dumps({"commit": commit, "torch": torch.__version__}, indent=1) + "\n")
