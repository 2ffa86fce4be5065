"""Read and verify a model pair, and build its Predictor when it has a folded form.

A model pair is a joblib file and the ``model.json`` beside it. Nothing is unpickled
here: the joblib file's sha256 is checked against the metadata, and a folded model is
served from plain numbers (``cookbook.lifecycle.artifacts`` unpickles the others, and
only there does the scikit-learn version that made the pickle matter).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cookbook.core.errors import ModelError
from cookbook.core.files import sha256_file
from cookbook.core.layout import (
    SideFile,
    entry_model,
    metadata_path,
    registry_root,
    version_of,
)
from cookbook.core.linear import ClassifierForm, LinearForm, folded_form_of
from cookbook.core.prediction import Predictor
from cookbook.core.schema import Schema

IMPORTED = "import"  # ``origin.kind`` of a model fitted elsewhere

# A model.json without "schema" is of format 1, which no model of this version was saved in.
REQUIRED_FIELDS = ("model_version", "model_sha256", "libraries", "schema")


def read_metadata(model_file: Path | str) -> dict[str, Any]:
    """Return the parsed ``model.json`` beside *model_file*, or raise ``ModelError``."""
    meta_file = metadata_path(model_file)
    try:
        metadata = json.loads(Path(meta_file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"Model metadata {meta_file} is missing: retrain with `python utilscli.py retrain`."
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"Model metadata {meta_file} is unreadable ({exc}): retrain.") from None
    if not isinstance(metadata, dict) or any(key not in metadata for key in REQUIRED_FIELDS):
        raise ModelError(f"Model metadata {meta_file} lacks required fields: retrain.")
    return metadata


def verify_model_file(model_file: Path | str, metadata: Mapping[str, Any]) -> None:
    """Raise ``ModelError`` unless *model_file*'s sha256 is the one ``model.json`` records."""
    try:
        digest = sha256_file(model_file)
    except FileNotFoundError:
        raise ModelError(f"Model file {model_file} is missing: retrain.") from None
    except IsADirectoryError:
        raise ModelError(f"Model file {model_file} is a directory, not a model file.") from None
    except OSError as exc:
        raise ModelError(f"Model file {model_file} is unreadable ({exc.strerror}).") from None
    if digest != metadata["model_sha256"]:
        raise ModelError(
            f"Model file {model_file} does not match its metadata (sha256 {digest[:12]}, "
            f"expected {str(metadata['model_sha256'])[:12]}): refusing to load it; "
            "restore both files together or retrain."
        )


def verified_metadata(model_file: Path | str) -> dict[str, Any]:
    """Return the metadata that belongs to *model_file*'s bytes, verified, or raise ModelError.

    Promoting a model replaces ``model.joblib`` and then ``model.json``: two renames,
    so a crash between them leaves the new joblib beside the old json. The registry
    beside the served file keeps every version's metadata, so a mismatch is recovered
    from the entry whose sha256 is the joblib's own; anything else that does not match
    (a tampered file) is still refused.
    """
    path = Path(model_file)
    metadata = read_metadata(path)
    try:
        verify_model_file(path, metadata)
    except ModelError as mismatch:
        recovered = _registry_metadata(path, metadata)
        if recovered is None:
            raise mismatch from None
        verify_model_file(path, recovered)
        return recovered
    return metadata


def read_side_file(
    side: SideFile, metadata: Mapping[str, Any], model_file: Path | str
) -> bytes | None:
    """Return the bytes of *model_file*'s *side* file once they match ``model.json``'s sha256.

    None when the metadata records no such file, or the file is missing (a copy that carried
    only the joblib and json: the model is then served, or explained, without it). A file
    that does not match is refused with ``ModelError``.
    """
    if not side.is_recorded(metadata):
        return None
    file = side.path(model_file)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelError(f"{side.description} {file} is unreadable ({exc.strerror}).") from None
    digest, expected = hashlib.sha256(data).hexdigest(), str(metadata[side.key].get("sha256"))
    if digest != expected:
        raise ModelError(
            f"{side.description} {file} does not match its metadata (sha256 {digest[:12]}, "
            f"expected {expected[:12]}): refusing to load it; restore it or retrain."
        )
    return data


def _registry_metadata(path: Path, metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        digest = sha256_file(path)
    except OSError:
        return None
    if digest == metadata["model_sha256"]:
        return None  # the pair matches: the refusal is about something else
    try:
        entry = read_metadata(entry_model(registry_root(path), version_of(digest)))
    except ModelError:
        return None
    return entry if entry.get("model_sha256") == digest else None


def check_sklearn_version(metadata: Mapping[str, Any]) -> None:
    """Raise ``ModelError`` when the model was trained with another scikit-learn minor.

    Call it before unpickling the estimator, and only then: a pickle of another minor may
    load and predict differently, while a folded form is plain numbers.
    """
    trained_with = str(metadata["libraries"].get("scikit-learn", ""))
    installed = installed_version("scikit-learn")
    if installed is None:
        return  # nothing here could unpickle it differently
    if trained_with.split(".")[:2] != installed.split(".")[:2]:
        raise ModelError(
            f"Model was trained with scikit-learn {trained_with} but {installed} is installed: "
            "retrain with `python utilscli.py retrain`."
        )


def installed_version(distribution: str) -> str | None:
    """Return the installed version of *distribution*, or None when it is not installed.

    Reads the ``<name>-<version>.dist-info`` folder name on ``sys.path`` (the wheel
    standard) because ``importlib.metadata`` costs about 60 ms to import, most of the
    CLI's start-up budget.
    """
    prefix = distribution.replace("-", "_").lower() + "-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and name.lower().startswith(prefix):
                return name[len(prefix) : -len(".dist-info")]
    return None


def schema_of(metadata: Mapping[str, Any]) -> Schema:
    """Return the model's schema, or raise ``ModelError``."""
    return Schema.from_dict(metadata["schema"])


def is_imported(metadata: Mapping[str, Any]) -> bool:
    """Return whether the model was fitted elsewhere and imported (``models import``)."""
    return (metadata.get("origin") or {}).get("kind") == IMPORTED


def linear_form_of(metadata: Mapping[str, Any]) -> LinearForm | ClassifierForm | None:
    """Return the model's folded form (a classifier's: logits and a link), or None."""
    folded = metadata.get("folded")
    if not folded:
        return None
    try:
        return folded_form_of(folded)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"model.json's folded form is malformed ({exc!r}): retrain.") from None


def folded_predictor(metadata: Mapping[str, Any], path: Path | str) -> Predictor | None:
    """Return the Predictor of a verified model's folded form, or None when it has none."""
    linear = linear_form_of(metadata)
    if linear is None:
        return None
    return Predictor(metadata, Path(path), schema_of(metadata), linear)
