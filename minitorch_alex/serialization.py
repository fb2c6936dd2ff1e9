"""Saving and loading arrays without pickle: ``mt.save`` / ``mt.load`` and the safe ``.npz`` reader
that checkpoints use.

    mt.save(model.state_dict(), "weights.npz")     # or a Tensor, an ndarray, a dict of them
    model.load_state_dict(mt.load("weights.npz"))

A file is a ZIP archive of ``.npy`` entries (what ``np.savez`` writes, so NumPy reads it too) plus
a ``__minitorch_alex__`` entry saying what was saved. Nothing is ever pickled or unpickled.

Reading is safe on hostile files. Every entry's ZIP record and ``.npy`` header are read and checked
(names, dtypes, shapes, byte counts) before any array data is decompressed, so a zip bomb or a
header claiming 10^12 elements is refused without allocating anything; data is then read in
chunks into arrays of the declared size and checked against the ZIP CRC. Every failure is a
``ValueError`` (or ``FileNotFoundError``) whose message names the file.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
import zipfile

import numpy as np

KIND_ENTRY = "__minitorch_alex__"
FORMAT = "minitorch_alex/save-v1"
MAX_HEADER = 10000  # bytes of a .npy header dict; NumPy's own default limit
CHUNK = 1 << 22  # bytes read (and checked) at a time


# ----- writing ------------------------------------------------------------------------------------

def fsync_path(path) -> None:
    """Flush a file's (or a folder's entries') data to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file: 0o666 less the process's umask (0o644
    typically). ``tempfile.mkstemp`` makes 0o600 files; atomic writes set this mode on theirs, so
    checkpoints, saved arrays and ONNX files are readable as every other file is."""
    try:
        with open("/proc/self/status") as f:  # reads the umask without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting (briefly process-wide)
    os.umask(mask)
    return 0o666 & ~mask


def _host(array):
    array = getattr(array, "data", array) if not isinstance(array, np.ndarray) else array
    return array.get() if hasattr(array, "get") else np.asarray(array)


def npz_bytes(arrays: dict) -> int:
    """An upper bound of the size of the archive ``write_npz`` makes of ``arrays``."""
    return sum(np.asarray(a).nbytes + 2 * len(name) + 4096 for name, a in arrays.items()) + 4096


def allocate(fd, path, nbytes):
    """Reserve ``nbytes`` for ``fd`` so a full disk fails here, with the path, not half-way."""
    if not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
            return  # the filesystem cannot preallocate; the write itself will report ENOSPC
        raise


def no_space(path, nbytes, exc, kept=None) -> OSError:
    """The OSError for a full disk: names the file and the bytes needed (and what was kept)."""
    free = ""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
        free = f" vs {st.f_bavail * st.f_frsize} bytes free"
    except OSError:
        pass
    keep = f"; {kept} is kept unchanged" if kept else ""
    return OSError(errno.ENOSPC, f"no space left on device writing {path} (needs {nbytes} bytes{free}){keep}",
                   str(path))


@contextlib.contextmanager
def atomic_file(path, nbytes=None, kept=None):
    """The one atomic-write path of the package: yields a binary file to write ``path``'s new
    content into. It is a temporary ``.tmp-<name>*`` created exclusively (``mkstemp``: O_EXCL,
    so never through a symlink) in the same folder, preallocated to ``nbytes`` when given, cut
    to what was written, fsynced, then renamed over ``path``, which replaces a symlink there
    rather than following it. A crash leaves the old file or the new one; any failure removes
    the temporary; a full disk raises ``OSError(ENOSPC)`` naming ``path`` (and ``kept``, or the
    old file, as left unchanged)."""
    path = os.fspath(path)
    folder, fd, tmp = _temporary(path)
    try:
        try:
            if hasattr(os, "fchmod"):  # the mode open() would give (mkstemp's is 0600: a store others read)
                os.fchmod(fd, file_mode())
            if nbytes is not None:
                allocate(fd, tmp, nbytes)
            with os.fdopen(fd, "wb") as f:
                fd = None
                yield f
                f.truncate(f.tell())  # give back what the preallocation reserved beyond the end
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise no_space(path, nbytes if nbytes is not None else os.path.getsize(tmp), exc,
                               kept or (path if os.path.lexists(path) else None)) from None
            raise
        os.replace(tmp, path)
        fsync_path(folder)
    except BaseException:
        if fd is not None:
            os.close(fd)
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


TEMP = ".tmp-"  # every temporary of an atomic write: .tmp-<name>.<pid>.<random>, beside <name>


def _temporary(path):
    """``(folder, fd, tmp)``: a new temporary for ``path``, in its folder (a rename stays on one
    filesystem), created exclusively (``mkstemp``: O_EXCL, never through a symlink), named by the
    one rule (``TEMP``, the name, the writer's pid for ``remove_dead_temps``); the dead writers'
    temporaries of ``path`` are removed first."""
    remove_dead_temps(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP}{os.path.basename(path)}.{os.getpid()}.", dir=folder)
    return folder, fd, tmp


def remove_temps(folder) -> list[str]:
    """Remove every temporary (``.tmp-*``) in ``folder``, of live writers too: for a folder whose
    other writers the caller has excluded (it holds the folder's lock). Returns their names."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            if name.startswith(TEMP):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))
                    removed.append(name)
    return removed


def link_atomic(src, dst) -> None:
    """Make ``dst`` hold what ``src`` holds now, atomically: a hard link (no copy) where the
    filesystem allows, else a copy through ``atomic_file``; ``src`` being replaced later leaves
    ``dst`` alone."""
    dst = os.fspath(dst)
    folder, fd, tmp = _temporary(dst)
    os.close(fd)
    os.unlink(tmp)  # os.link makes the name anew, and refuses if anything took it meanwhile
    try:
        os.link(src, tmp)  # the same data as src, which its own write fsynced
    except OSError:  # no hard links here (or the name was taken): a copy, written as every file is
        with open(src, "rb") as f, atomic_file(dst) as out:
            shutil.copyfileobj(f, out)
        return
    try:
        os.replace(tmp, dst)
        fsync_path(folder)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def remove_dead_temps(path) -> list[str]:
    """Remove the temporaries that writers of ``path`` killed mid-write (SIGKILL, a power cut) left
    beside it: ``.tmp-<name>.<pid>.*`` of a pid that no longer runs on this machine. A live
    writer's (another process exporting the same file now) is left alone. Returns the names."""
    folder, base = os.path.split(os.path.abspath(os.fspath(path)))
    start, removed = f"{TEMP}{base}.", []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(start)]
    except OSError:
        return removed
    for name in names:
        pid = name[len(start):].split(".", 1)[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, name))
            removed.append(name)
    return removed


def _running(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):  # another user's, or not ours to ask: keep it
        return True
    return True


def write_atomic(path, data: bytes, kept=None) -> None:
    """``path`` holds ``data`` afterwards, written through ``atomic_file``."""
    with atomic_file(path, kept=kept) as f:
        f.write(data)


def write_npz(path, arrays: dict, kept=None) -> None:
    """Write ``arrays`` (name -> array) to ``path`` as an uncompressed .npz, atomically.

    The data go to ``.tmp-<name>*`` in the same folder, preallocated, fsynced, then renamed over
    ``path``: a crash leaves the old file or the new one. A full disk raises ``OSError(ENOSPC)``
    naming ``path`` and the bytes needed; the old file is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    arrays = {name: np.asarray(_host(a), order="C") for name, a in arrays.items()}  # keeps 0-d arrays 0-d
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise ValueError(f"{path}: entry {name!r} has dtype {a.dtype}; only plain (non-object) arrays are saved")
    with atomic_file(path, npz_bytes(arrays), kept) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, a in arrays.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, a, allow_pickle=False)


# ----- reading ------------------------------------------------------------------------------------

class Spec:
    """What an entry must be: ``shape`` (tuple, or None for any), ``dtype`` (a NumPy dtype, or a
    kind string such as 'f' for any floating type, 'U' for text), ``finite`` (refuse NaN/inf)."""

    __slots__ = ("shape", "dtype", "finite")

    def __init__(self, shape=None, dtype=None, finite=False):
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        self.dtype, self.finite = dtype, finite

    def describe(self):
        dt = {"f": "floating", "U": "unicode"}.get(self.dtype, str(self.dtype)) if isinstance(self.dtype, str) \
            else str(np.dtype(self.dtype)) if self.dtype is not None else "any dtype"
        return f"{dt} {self.shape if self.shape is not None else 'any shape'}"


class _Entry:
    __slots__ = ("name", "info", "shape", "dtype", "fortran", "offset")


def _bad(path, what):
    return ValueError(f"{os.fspath(path)}: {what}")


def _read_header(path, zf, info):
    """(shape, fortran_order, dtype, header bytes) of one .npy entry, reading only its header."""
    with zf.open(info) as f:
        head = f.read(10)
        if len(head) < 10 or head[:6] != b"\x93NUMPY":
            raise _bad(path, f"entry {info.filename!r} is not a .npy array (expected the NUMPY magic)")
        major = head[6]
        if major == 1:
            hlen, start = int.from_bytes(head[8:10], "little"), 10
        elif major in (2, 3):
            more = f.read(2)
            hlen, start = int.from_bytes(head[8:10] + more, "little"), 12
        else:
            raise _bad(path, f"entry {info.filename!r}: unknown .npy version {major} (expected 1, 2 or 3)")
        if hlen > MAX_HEADER:
            raise _bad(path, f"entry {info.filename!r}: .npy header of {hlen} bytes (expected <= {MAX_HEADER})")
        text = f.read(hlen)
    if len(text) != hlen:
        raise _bad(path, f"entry {info.filename!r} is truncated inside its .npy header")
    if major == 3:
        raise _bad(path, f"entry {info.filename!r}: .npy version 3 (expected 1 or 2)")
    reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    prefix = hlen.to_bytes(2 if major == 1 else 4, "little")
    try:
        header = reader(io.BytesIO(prefix + text), max_header_size=MAX_HEADER)
    except Exception as exc:  # noqa: BLE001 (a hostile header can make NumPy's parser raise anything)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise _bad(path, f"entry {info.filename!r}: unreadable .npy header ({type(exc).__name__}: {first[:200]})") \
            from None
    shape, fortran, dtype = header
    if any(d < 0 for d in shape):
        raise _bad(path, f"entry {info.filename!r} has a negative dimension in shape {shape}")
    return shape, fortran, dtype, start + hlen


def _dtype_ok(dtype, want):
    if want is None:
        return not dtype.hasobject and dtype.kind in "biufcUSV?" and dtype.names is None
    if isinstance(want, str):
        return dtype.kind in want and not dtype.hasobject and dtype.names is None
    return dtype == np.dtype(want)


def read_npz(path, specs=None, required=None, max_bytes: int | None = None, read=None) -> dict:
    """Read ``path`` (.npz) into ``{name: ndarray}``, checking everything before reading data.

    ``specs``: name -> ``Spec``, a dict or a function returning None for a name that is not
    allowed; an entry not allowed is refused (``specs=None``: any plain array is read).
    ``required``: names that must be present (default: every key of a ``specs`` dict).
    ``read``: the names whose data to read (default: all); the others are only checked to be
    allowed names and are never decompressed. ``max_bytes``: a cap on the total decompressed
    array bytes (default: the sum the specs allow, or 4 x the file's size + 1 MiB without shapes).
    Raises ``FileNotFoundError`` or ``ValueError`` naming ``path``; nothing else."""
    path = os.fspath(path)
    try:
        disk = os.stat(path).st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    except OSError as exc:
        raise _bad(path, f"unreadable ({exc.strerror})") from None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, OverflowError) as exc:
        raise _bad(path, f"not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    try:
        with zf:
            return _read_all(path, zf, disk, specs, required, max_bytes, read)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, OverflowError, RuntimeError,
            zlib_error()) as exc:
        raise _bad(path, f"damaged archive ({type(exc).__name__}: {exc})") from None


def zlib_error():
    import zlib

    return zlib.error


def _fixed_bytes(spec):
    """The exact data bytes a spec allows, or None when its shape or dtype is open."""
    if spec.shape is None or spec.dtype is None or isinstance(spec.dtype, str):
        return None
    return int(np.prod(spec.shape, dtype=object)) * np.dtype(spec.dtype).itemsize


def _read_all(path, zf, disk, specs, required, max_bytes, read):
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise _bad(path, "duplicate entry names in the archive")
    entries = []
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise _bad(path, f"unexpected entry {info.filename!r} (expected only .npy arrays)")
        name = info.filename[:-4]
        spec = Spec() if specs is None else specs(name) if callable(specs) else specs.get(name)
        if spec is None:
            raise _bad(path, f"unexpected entry {name!r}")
        if info.flag_bits & 0x1:
            raise _bad(path, f"entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad(path, f"entry {name!r} uses compression method {info.compress_type} "
                             "(expected stored or deflated)")
        e = _Entry()
        e.name, e.info = name, info
        entries.append((e, spec))
    want = set(specs) if required is None and isinstance(specs, dict) else set(required or ())
    missing = sorted(want - {e.name for e, _ in entries})
    if missing:
        raise _bad(path, f"missing entries {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
    if read is not None:
        entries = [(e, spec) for e, spec in entries if e.name in read]
    if max_bytes is None:
        fixed = [_fixed_bytes(spec) for _, spec in entries]
        max_bytes = sum(fixed) if None not in fixed else 4 * disk + (1 << 20)
    # 1. The ZIP records: declared sizes, before inflating a byte.
    total = 0
    for e, spec in entries:
        fixed = _fixed_bytes(spec)
        limit = MAX_HEADER + 128 + (fixed if fixed is not None else max_bytes)
        if e.info.file_size > limit:
            raise _bad(path, f"entry {e.name!r} declares {e.info.file_size} bytes "
                             f"(expected at most {limit} for {spec.describe()})")
        total += e.info.file_size
    if total > max_bytes + len(entries) * (MAX_HEADER + 128):
        raise _bad(path, f"arrays of {total} bytes in all (expected at most {max_bytes})")
    # 2. The .npy headers: names, dtypes, shapes, byte counts.
    for e, spec in entries:
        shape, fortran, dtype, offset = _read_header(path, zf, e.info)
        if not _dtype_ok(dtype, spec.dtype):
            raise _bad(path, f"entry {e.name!r} has dtype {dtype} (expected {spec.describe()})")
        if spec.shape is not None and tuple(shape) != spec.shape:
            raise _bad(path, f"entry {e.name!r} has shape {tuple(shape)} (expected {spec.shape})")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if offset + nbytes != e.info.file_size:
            raise _bad(path, f"entry {e.name!r}: its header says {nbytes} bytes of data but the archive "
                             f"holds {e.info.file_size - offset} (expected equal sizes)")
        e.shape, e.dtype, e.fortran, e.offset = tuple(shape), dtype, fortran, offset
    # 3. The data, in chunks, into arrays of the checked size; the CRC is checked at the end.
    out = {}
    for e, spec in entries:
        array = np.empty(e.shape[::-1] if e.fortran else e.shape, dtype=e.dtype)
        flat = array.reshape(-1).view(np.uint8) if array.size else np.empty(0, np.uint8)
        with zf.open(e.info) as f:
            f.read(e.offset)
            done, step = 0, max(CHUNK // max(e.dtype.itemsize, 1), 1) * max(e.dtype.itemsize, 1)
            while done < flat.size:
                got = f.readinto(flat[done:done + step]) if hasattr(f, "readinto") else None
                if not got:
                    raise _bad(path, f"entry {e.name!r} is truncated ({done} of {flat.size} bytes)")
                if spec.finite and e.dtype.kind in "fc":
                    lo = done - done % e.dtype.itemsize
                    chunk = flat[lo:done + got - (done + got) % e.dtype.itemsize].view(e.dtype)
                    if not np.isfinite(chunk).all():
                        raise _bad(path, f"entry {e.name!r} holds NaN or infinite values (expected finite numbers)")
                done += got
            if f.read(1):
                raise _bad(path, f"entry {e.name!r} has data past its declared size")
        out[e.name] = array.T if e.fortran else array
    return out


# ----- the public mt.save / mt.load -----------------------------------------------------------------

def _is_array(value):
    from .tensor import Tensor

    return isinstance(value, (Tensor, np.ndarray)) or hasattr(value, "__cuda_array_interface__")


MAX_DEPTH = 64  # nesting of a saved tree (dicts and lists)


def _tree(value, arrays, where, depth=0):
    """``value`` (dicts, lists, arrays, plain numbers) as a JSON node; its arrays go to ``arrays``
    under generated names (``a0``, ``a1``, ...: no key of the user's becomes an entry name)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"mt.save: nested more than {MAX_DEPTH} levels deep at {where}")
    if _is_array(value):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"array": name}
    if isinstance(value, np.generic) and not value.dtype.hasobject:
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return {"value": value}
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"mt.save: {where} is {value} (expected a finite number, or an array for NaN or inf)")
        return {"value": value}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mt.save: expected string keys, got {key!r} in {where}")
            items.append([key, _tree(item, arrays, f"{where}[{key!r}]", depth + 1)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        return {"list": [_tree(item, arrays, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]}
    raise TypeError(f"mt.save: expected Tensors, arrays, numbers, strings, None, dicts or lists, got "
                    f"{type(value).__name__} at {where}")


def _untree(path, node, arrays, used):
    """The value a ``_tree`` node stands for; every array referenced once."""
    if not isinstance(node, dict) or len(node) != 1:
        raise _bad(path, f"entry {KIND_ENTRY!r}: a node of the saved tree is not an object with one key")
    (kind, value), = node.items()
    if kind == "array":
        if value not in arrays or value in used:
            raise _bad(path, f"entry {KIND_ENTRY!r} refers to {value!r}, which is missing or referred to twice")
        used.add(value)
        return arrays[value]
    if kind == "value" and (value is None or isinstance(value, (bool, int, float, str))):
        return value
    if kind == "dict" and isinstance(value, list) and all(isinstance(i, list) and len(i) == 2 and
                                                           isinstance(i[0], str) for i in value):
        return {key: _untree(path, item, arrays, used) for key, item in value}
    if kind == "list" and isinstance(value, list):
        return [_untree(path, item, arrays, used) for item in value]
    raise _bad(path, f"entry {KIND_ENTRY!r}: a node of the saved tree is not an array, value, dict or list")


def save(obj, path) -> None:
    """Save a Tensor, an ndarray, a dict of them (e.g. ``model.state_dict()``), or nested dicts and
    lists of Tensors, arrays and plain values (as ``torch.save`` users write ``{"epoch": 3, "model":
    sd, "optim": ...}``) to ``path``: an .npz archive, written atomically, without pickle (the
    nesting and plain values are JSON). Keys must be strings; arrays keep their dtype and shape
    (CUDA arrays are copied to the host); tuples come back as lists, Tensors in dicts as arrays."""
    from .tensor import Tensor

    if _is_array(obj):
        kind, arrays = "tensor" if isinstance(obj, Tensor) else "ndarray", {"value": obj}
        record = {"format": FORMAT, "kind": kind, "keys": ["value"]}
    elif isinstance(obj, dict) and all(_is_array(v) for v in obj.values()):
        kind, arrays = "dict", {}
        for key, value in obj.items():
            if not isinstance(key, str) or not key or key == KIND_ENTRY:
                raise TypeError(f"mt.save: expected string keys, got {key!r}")
            arrays[key] = value
        record = {"format": FORMAT, "kind": kind, "keys": list(arrays)}
    elif isinstance(obj, dict):
        arrays = {}
        record = {"format": FORMAT, "kind": "tree", "tree": _tree(obj, arrays, "the saved dict")}
    else:
        raise TypeError(f"mt.save: expected a Tensor, an ndarray or a dict of them, got {type(obj).__name__}")
    arrays[KIND_ENTRY] = np.array(json.dumps(record, allow_nan=False))
    write_npz(path, arrays)


MODEL_PREFIX = "model/"  # a training checkpoint's weights (minitorch_alex.checkpoint)


class _Prefixed:
    """The entry names that start with ``prefix`` (a ``read=`` set of ``read_npz``)."""

    def __init__(self, prefix):
        self.prefix = prefix

    def __contains__(self, name):
        return name.startswith(self.prefix)


def load(path, max_bytes: int | None = None, state_dict: bool = False):
    """Load what ``save`` wrote: a Tensor, an ndarray, or a dict of ndarrays (in the saved order;
    ``model.load_state_dict`` takes it). A plain ``np.savez`` archive loads as a dict. Arrays
    over ``max_bytes`` in total (default 4 x the file size + 1 MiB, so a zip bomb is refused)
    are refused. Raises ``FileNotFoundError``/``ValueError`` naming the file.

    ``state_dict=True``: the model's state dict, for ``model.load_state_dict``: from a training
    checkpoint (``runs/alexnet/best.npz``) its ``model/...`` entries without the prefix (nothing
    else of it is read), from a saved ``{"model": state_dict, ...}`` its ``"model"``, from a saved
    dict of arrays the dict itself."""
    if state_dict:
        weights = read_npz(path, max_bytes=max_bytes, read=_Prefixed(MODEL_PREFIX))
        if weights:
            return {name[len(MODEL_PREFIX):]: array for name, array in weights.items()}
        obj = load(path, max_bytes)
        model = obj.get("model") if isinstance(obj, dict) else None
        if isinstance(model, dict) and model and all(isinstance(v, np.ndarray) for v in model.values()):
            return model  # a saved {"epoch": 3, "model": state_dict, ...}
        if not isinstance(obj, dict):
            raise _bad(path, f"holds a {type(obj).__name__}, not a state dict (expected a dict of arrays or a "
                             "training checkpoint)")
        return obj
    arrays = read_npz(path, max_bytes=max_bytes)
    info = arrays.pop(KIND_ENTRY, None)
    if info is None:
        return arrays
    try:
        meta = json.loads(str(info[()])) if info.dtype.kind == "U" and info.shape == () else None
    except (ValueError, RecursionError):
        meta = None
    if isinstance(meta, dict) and meta.get("format") == FORMAT and meta.get("kind") == "tree":
        used = set()
        try:
            value = _untree(path, meta.get("tree"), arrays, used)
        except RecursionError:
            raise _bad(path, f"entry {KIND_ENTRY!r} is nested too deep") from None
        if used != set(arrays):
            raise _bad(path, f"entries {sorted(set(arrays) - used)[:5]} are not in the saved tree")
        return value
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("keys"), list):
        raise _bad(path, f"entry {KIND_ENTRY!r} is not a minitorch_alex save record")
    if sorted(map(str, meta["keys"])) != sorted(arrays):
        raise _bad(path, f"entries {sorted(arrays)[:5]} do not match the record's keys {meta['keys'][:5]}")
    if meta.get("kind") == "tensor":
        from .tensor import Tensor

        return Tensor(arrays["value"])
    if meta.get("kind") == "ndarray":
        return arrays["value"]
    return {k: arrays[k] for k in meta["keys"]}
