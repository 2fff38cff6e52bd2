"""Reading and writing checkpoint files safely.

* Reading never unpickles arbitrary objects unless the caller opts in (``trust=True``, CLI ``--trust-checkpoint``):
  ``torch.load(weights_only=True)`` or safetensors.
* Writing is atomic: a temporary file in the target folder is fsynced and renamed over the target. Temporaries are
  named ``.<target>.<pid>.<random>.tmp``; one left behind by a killed writer is removed by the next checkpoint save
  of the same target (:func:`remove_stale_temps`). :func:`atomic_write_bytes` / :func:`atomic_path` and
  :func:`sha256_file` are ferkit's only atomic-write and file-hash helpers.
* Loading into a model is strict (:func:`load_state_dict_strict`, :func:`check_state_dict`): every missing or
  unexpected key and shape mismatch is named in one ``CheckpointError``.

ferkit's own format is a ``weights_only``-loadable dict (or a safetensors file whose metadata holds the same keys)::

    {"format": "ferkit.checkpoint/1", "model": str, "model_args": dict, "label_names": list[str],
     "state_dict": dict[str, Tensor], "meta": dict}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ferkit.errors import CheckpointError

log = logging.getLogger(__name__)

FORMAT = "ferkit.checkpoint/1"
TRUST_HINT = ("pass trust_checkpoint=True (CLI: --trust-checkpoint) only if you trust the file's origin: "
              "full unpickling can run arbitrary code")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def state_dict_sha256(state: Mapping[str, Any] | torch.nn.Module) -> str:
    """Hex SHA-256 of a state dict (or a module's): every tensor's name, dtype, shape and values (in contiguous
    layout, so channels-last and contiguous copies agree); non-tensor entries by their ``repr``."""
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    h = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        h.update(name.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            t = t.int_repr() if t.is_quantized else t
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


#: A temporary without a process id in its name (written before ids were added) counts as stale after this long.
STALE_TEMP_SECONDS = 3600.0


def file_mode() -> int:
    """Permission bits of a new file under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask(0) would briefly affect other threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):
        return True  # exists (another user's process: PermissionError) or cannot be checked: keep the file
    return True


def remove_stale_temps(path: str | os.PathLike, *, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temporaries of ``path`` left by writers that were killed (``kill -9``, power loss) and return them.

    A ``.<name>.<pid>.<random>.<suffix>`` file is stale when process ``pid`` no longer exists; a
    ``.<name>.<random>.<suffix>`` file (no process id) when it is older than ``max_age`` seconds. Temporaries of other
    targets and of live writers are left alone.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)\.)?[a-z0-9_]+\.(?:tmp|onnx)$")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        found = pattern.match(entry.name)
        if found is None or not entry.is_file(follow_symlinks=False) or not _is_stale(entry, found.group(1), max_age):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
            log.info("removed %s, a temporary file left by an interrupted save", entry.path)
    return removed


def _is_stale(entry: os.DirEntry, pid: str | None, max_age: float) -> bool:
    if pid is not None:
        return not _pid_alive(int(pid))
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime > max_age
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a new empty temporary file next to ``path`` for the caller to fill; on success give it the umask's
    permissions and rename it over ``path``, on failure delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, write_fn) -> None:
    """Call ``write_fn(fileobj)`` on a temporary file next to ``path``, fsync it, then rename it over ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write_fn(f)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(obj: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Atomically write ``obj`` (a dict of tensors and plain values) with ``torch.save``, or as safetensors when
    ``path`` ends in ``.safetensors`` (``obj['state_dict']`` holds the tensors; the rest goes to JSON metadata).
    Temporaries of ``path`` left by killed writers are removed first."""
    path = Path(path)
    remove_stale_temps(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save

        tensors = {k: v.detach().contiguous().cpu() for k, v in obj["state_dict"].items()}
        meta = {k: v for k, v in obj.items() if k != "state_dict"}
        data = save(tensors, metadata={"ferkit": json.dumps(meta)})
        atomic_write_bytes(path, lambda f: f.write(data))
    else:
        atomic_write_bytes(path, lambda f: torch.save(dict(obj), f))
    return path


class _StubObject:
    """Stand-in for a class a trusted legacy pickle references but ferkit lacks (``__main__.RecorderMeter``)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state


class _StubUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (AttributeError, ModuleNotFoundError, ImportError):
            log.warning("checkpoint references %s.%s, which is not importable; replaced by a stub", module, name)
            return type(name, (_StubObject,), {"__module__": module})


class _StubPickleModule:
    """``pickle_module`` for ``torch.load`` that stubs unknown classes (trusted legacy files only)."""

    Unpickler = _StubUnpickler
    load = staticmethod(lambda f, **kw: _StubUnpickler(f, **kw).load())
    __name__ = "ferkit_stub_pickle"


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < (1 << 28) and head[8:9] == b"{"


def _is_torch_pickle(head: bytes) -> bool:
    """``torch.save``'s legacy (non-zip) format: a pickle of protocol 2 or later, or a very old tar archive."""
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head[257:262] == b"ustar"


def _describe_head(head: bytes) -> str:
    """What a file that is not a checkpoint seems to be, from its first bytes."""
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the file itself (fetch it with `git lfs pull`)"
    text = head.lstrip()
    if text[:1] == b"<" and b"html" in text[:256].lower():
        return "an HTML page (a download that returned a web page instead of the file?)"
    text = _as_text(head)
    if text is None:
        return f"binary data starting with {head[:8].hex(' ')}"
    return f"text starting with {text.strip().splitlines()[0][:60]!r}" if text.strip() else "blank text"


def _as_text(head: bytes) -> str | None:
    """``head`` as UTF-8 text (a character cut at the end is dropped), or None for binary data."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:
            return None
        text = head[: e.start].decode("utf-8")
    return None if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text) else text


def read_checkpoint(path: str | os.PathLike, *, trust: bool = False) -> dict[str, Any]:
    """Read a checkpoint into a dict without executing code (unless ``trust``).

    Accepts torch zip and legacy files, TorchScript archives (their ``state_dict()``) and safetensors.

    Raises:
        FileNotFoundError: the path does not exist.
        CheckpointError: the file is empty, truncated or corrupt, is not a checkpoint, or needs full unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(512)
    if _is_safetensors(head):
        return _read_safetensors(path)
    is_zip = head[:2] == b"PK"
    if not (is_zip or _is_torch_pickle(head)):
        raise CheckpointError(f"{path} is not a checkpoint: neither a PyTorch file (zip archive or pickle) nor "
                              f"safetensors; it holds {_describe_head(head)}")
    if is_zip:
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({size} bytes): {e}") from e
        if bad is not None:
            raise CheckpointError(f"checkpoint {path} is corrupt: member {bad!r} fails its CRC check")
        if any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names):
            return _read_torchscript(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" not in str(e).lower():
            raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({size} bytes): {_first_line(e)}") from e
        if not trust:
            found = re.search(r"GLOBAL (\S+)", str(e))
            what = f"e.g. {found.group(1)}" if found else _first_line(e)
            raise CheckpointError(f"checkpoint {path} contains pickled Python objects, not only tensors and plain "
                                  f"containers ({what}). Refused by default; {TRUST_HINT}") from e
        obj = _load_trusted(path)
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({size} bytes): {_first_line(e)}") from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict / state dict")
    return dict(obj)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def _load_trusted(path: Path) -> Any:
    log.warning("fully unpickling %s (trusted by the caller)", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_StubPickleModule)
    except Exception as e:  # noqa: BLE001 - any failure here means the file is unusable
        raise CheckpointError(f"checkpoint {path} could not be unpickled even in trusted mode: {e}") from e


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = path.read_bytes()
        tensors = load(data)
        meta = _safetensors_metadata(data)
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"safetensors file {path} is truncated or corrupt: {e}") from e
    if "ferkit" in meta:
        out = json.loads(meta["ferkit"])
        out["state_dict"] = tensors
        return out
    return dict(tensors)


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    return header.get("__metadata__", {}) or {}


def _read_torchscript(path: Path) -> dict[str, Any]:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as e:
        raise CheckpointError(f"TorchScript archive {path} cannot be loaded: {str(e).splitlines()[0]}") from e
    return dict(module.state_dict())


def unwrap_state_dict(ckpt: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Return the tensor mapping of a checkpoint: ``ckpt['state_dict']`` / ``['model']`` / ``['model_state']`` or the
    mapping itself, with one leading ``module.`` / ``_orig_mod.`` stripped from every key that has it."""
    sd: Any = ckpt
    for key in ("state_dict", "model_state", "model"):
        if isinstance(sd, Mapping) and isinstance(sd.get(key), Mapping):
            sd = sd[key]
            break
    out = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            continue
        for prefix in ("module.", "_orig_mod."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


#: state-dict entries that may be absent from a file (BatchNorm's counter does not affect the outputs)
OPTIONAL_KEYS = ("num_batches_tracked",)


def check_state_dict(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], *, what: str = "checkpoint",
                     ignore_missing: tuple[str, ...] = (), optional: tuple[str, ...] = OPTIONAL_KEYS,
                     hint: str = "", error: type[CheckpointError] = CheckpointError) -> None:
    """Compare ``state`` with the model's ``own`` state dict; raise one error naming every problem.

    Args:
        own: what the model expects (``module.state_dict()`` or any name -> tensor mapping).
        state: what the file holds.
        what: the file, for the message (``"checkpoint"``, ``"CLIP weights <path>"``, ...).
        ignore_missing: key prefixes that may be absent (e.g. ``"head."`` when the head is re-initialised).
        optional: key suffixes that may be absent (default: ``num_batches_tracked``).
        hint: appended in parentheses (what to check, e.g. the model options).
        error: the exception class (``CheckpointError`` or a subclass).

    Raises:
        CheckpointError: shape mismatches, missing keys and unexpected keys, each listed by name (the first ones).
    """
    missing = [k for k in own if k not in state and not k.endswith(optional) and not k.startswith(ignore_missing)]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return
    found = (("shape mismatch(es)", shapes, "; ", 8), ("missing key(s)", missing, ", ", 12),
             ("unexpected key(s)", unexpected, ", ", 12))
    parts = [f"{len(items)} {name}: " + sep.join(items[:limit]) + (" ..." if len(items) > limit else "")
             for name, items, sep, limit in found if items]
    raise error(f"{what} does not fit the model{f' ({hint})' if hint else ''}: " + " | ".join(parts))


def load_state_dict_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, what: str = "checkpoint",
                           ignore_missing: tuple[str, ...] = (), optional: tuple[str, ...] = OPTIONAL_KEYS,
                           hint: str = "", error: type[CheckpointError] = CheckpointError) -> dict[str, Any]:
    """Load ``state`` into ``module`` strictly, after :func:`check_state_dict` has named every missing / unexpected
    key and shape mismatch in one error. Tensors are cast to the module's dtypes; keys allowed to be absent keep
    the module's values.

    Returns:
        ``{"loaded": number of tensors, "per_part": {first key component: count}}``.

    Raises:
        CheckpointError: ``state`` does not fit ``module`` (see :func:`check_state_dict`).
    """
    own = module.state_dict()
    check_state_dict(own, state, what=what, ignore_missing=ignore_missing, optional=optional, hint=hint, error=error)
    full = dict(own)
    full.update({k: v.to(own[k].dtype) for k, v in state.items()})
    module.load_state_dict(full, strict=True)
    per_part: dict[str, int] = {}
    for k in state:
        per_part[k.split(".", 1)[0]] = per_part.get(k.split(".", 1)[0], 0) + 1
    return {"loaded": len(state), "per_part": per_part}
