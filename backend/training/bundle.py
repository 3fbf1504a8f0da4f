"""The model bundle of one window: model.zip, obs_stats.npz, vecnormalize.pkl, metadata.json.

metadata.json is written last and holds the SHA-256 of the other files, so a bundle with
metadata is complete. Loading never unpickles anything from a bundle (threat model in
docs/integrity.md):

* the agent is rebuilt from the config and the env's spaces, and only its weights are read
  (tensors with ``torch.load(weights_only=True)`` for SB3 archives, msgpack for SBX — see
  :mod:`backend.training.algorithms`);
* the normalisation statistics are read from ``obs_stats.npz`` with ``allow_pickle=False``;
  ``vecnormalize.pkl`` is written beside it for plain SB3 users and never loaded here;
* before anything is read, the files' SHA-256 must match the metadata (and, inside a run
  folder, the hashes the run's summary recorded), the metadata must list every file its own
  compatibility fields require, the compatibility fields must match the config and data being
  replayed, and the test span must start after the bundle's own train span (+ embargo).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from backend.config.algorithms import AUTO, BACKENDS
from backend.config.models import Config
from backend.core.errors import EvaluationError, InputError
from backend.core.jsonio import atomic_path, load_json
from backend.features.specs import nonbuiltin_identity
from backend.training.auto_backend import choice, concrete
from backend.training.pth_scan import scan_model_zip

MODEL_FILE = "model.zip"
STATS_FILE = "obs_stats.npz"
SB3_STATS_FILE = "vecnormalize.pkl"  # for plain SB3 users; never loaded by the harness
METADATA_FILE = "metadata.json"
BUNDLE_SCHEMA = 2


MAX_FILE_BYTES = 2 << 30  # hard cap for any bundle file, checked before reading (a SAC net is a few MiB)
MAX_UNZIPPED_BYTES = 1 << 30  # hard cap for model.zip's members together, from the zip directory, before inflating
MAX_RATIO = 200  # a member inflating more than this (and past 1 MiB) is a zip bomb, not a tensor file


def sha256_file(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """SHA-256 of a regular file, streamed, reading at most ``limit`` bytes (an endless file is refused)."""
    h, total = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            total += len(chunk)
            if total > limit:
                raise EvaluationError(f"{path}: larger than {limit} bytes; refusing the bundle")
            h.update(chunk)
    return h.hexdigest()


def check_member(bundle_dir: Path, name: str, size: Any = None) -> Path:
    """A bundle file that is safe to open: a regular file inside the bundle folder, within its size limits."""
    path = bundle_dir / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise EvaluationError(
            f"{path}: missing from the bundle; retrain the window (--resume) or restore the file"
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise EvaluationError(f"{path}: is a symlink (to {os.readlink(path)!r}); a bundle holds plain files only")
    if not stat.S_ISREG(st.st_mode):
        raise EvaluationError(f"{path}: not a regular file (a device, FIFO or folder); refusing the bundle")
    if st.st_size > MAX_FILE_BYTES:
        raise EvaluationError(f"{path}: {st.st_size} bytes, over the cap of {MAX_FILE_BYTES}; refusing the bundle")
    if isinstance(size, int) and st.st_size != size:
        raise EvaluationError(f"{path}: {st.st_size} bytes, the metadata says {size}; refusing the bundle")
    return path


MAX_ENTRIES = 64  # model.zip: SB3 writes 8-9 entries (SBX one more); more is not a bundle this harness wrote
MAX_NPZ_ENTRIES = 8  # obs_stats.npz: feature_mean, feature_var, clip_obs, count
MAX_CRITICS, MAX_HEAD = 10, 64  # upper bounds for the size formula: critics (with targets), outputs per critic/actor


def _mlp_params(n_in: int, arch: list[int], n_out: int) -> int:
    sizes = [n_in, *arch, n_out]
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def member_bound(meta: dict[str, Any]) -> int:
    """Most bytes one model.zip member may inflate to, from the network the bundle's metadata records.

    ``P = mlp(obs, net_arch, 64) + 2 * 10 * mlp(obs + 1, net_arch, 64)`` parameters (an actor and up to ten
    critics with their targets, generous heads); a member holds at most the weights plus two Adam moments:
    ``bound = 3 * 4 * P + 1 MiB`` (and at most :data:`MAX_UNZIPPED_BYTES`). A SAC [8] net on 19 inputs gets
    about 1.2 MiB; a [256, 256] net on 100 inputs about 29 MiB. Metadata without a usable net_arch /
    observation_shape gets the bound of a [1024, 1024] net on 1,000 inputs.
    """
    raw = meta.get("compatibility")
    comp: dict[str, Any] = raw if isinstance(raw, dict) else {}
    arch, shape = comp.get("net_arch"), comp.get("observation_shape")
    ok_arch = (
        isinstance(arch, list) and 0 < len(arch) <= 16 and all(isinstance(a, int) and 0 < a <= 65536 for a in arch)
    )
    ok_shape = isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int) and 0 < shape[0] <= 1 << 20
    layers: list[int] = list(arch) if ok_arch and isinstance(arch, list) else [1024, 1024]
    obs = int(shape[0]) if ok_shape and isinstance(shape, list) else 1000
    params = _mlp_params(obs, layers, MAX_HEAD) + 2 * MAX_CRITICS * _mlp_params(obs + 1, layers, MAX_HEAD)
    return min(12 * params + (1 << 20), MAX_UNZIPPED_BYTES)


def _zip_entry_count(path: Path) -> int:
    """Entries a zip declares in its end-of-central-directory record (zip64 too), read without parsing it all."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - (1 << 16) - 22))
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            raise EvaluationError(f"{path}: not a readable zip archive (no end record); retrain the window")
        count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
        loc = tail[at - 20 : at] if at >= 20 else b""
        if count == 0xFFFF and loc[:4] == b"PK\x06\x07":
            fh.seek(struct.unpack("<Q", loc[8:16])[0])
            record = fh.read(56)
            if record[:4] == b"PK\x06\x06" and len(record) == 56:
                count = struct.unpack("<Q", record[32:40])[0]
    return count


def _zip_infos(path: Path, max_entries: int) -> list[Any]:
    count = _zip_entry_count(path)
    if count > max_entries:
        raise EvaluationError(
            f"{path}: {count} entries, over the cap of {max_entries} (the harness writes fewer than 10); "
            "refusing the bundle"
        )
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise EvaluationError(f"{path}: not a readable zip archive ({e}); retrain the window") from e
    if len(infos) > max_entries:
        raise EvaluationError(f"{path}: {len(infos)} entries, over the cap of {max_entries}; refusing the bundle")
    return infos


def check_zip(path: Path, bound: int = MAX_UNZIPPED_BYTES, max_entries: int = MAX_ENTRIES) -> None:
    """A zip's directory, read before anything is inflated: entry count, plain relative names, bounded sizes.

    ``bound``: the most one member may inflate to (:func:`member_bound` for model.zip).
    """
    total, infos = 0, _zip_infos(path, max_entries)
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in Path(name).parts or (len(name) > 1 and name[1] == ":"):
            raise EvaluationError(f"{path}: member {name!r} is an absolute or '..' path; refusing the bundle")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1 << 20 and ratio > MAX_RATIO:
            raise EvaluationError(
                f"{path}: member {name!r} inflates {info.compress_size} -> {info.file_size} bytes "
                f"(ratio {ratio:.0f} > {MAX_RATIO}); refusing the bundle (zip bomb)"
            )
        if info.file_size > bound:
            raise EvaluationError(
                f"{path}: member {name!r} declares {info.file_size} bytes unpacked, more than the {bound} bytes the "
                "network in the bundle's metadata can hold (docs/errors.md, bundle size bound); refusing the bundle"
            )
    if total > MAX_UNZIPPED_BYTES:
        raise EvaluationError(
            f"{path}: members total {total} bytes unpacked, over the cap of {MAX_UNZIPPED_BYTES}; refusing the bundle"
        )
    if max_entries == MAX_ENTRIES and not any(i.filename.endswith((".pth", ".msgpack")) for i in infos):
        raise EvaluationError(f"{path}: holds no weights (.pth or .msgpack entries); retrain the window")


def stats_bound(meta: dict[str, Any]) -> tuple[int | None, int]:
    """obs_stats.npz: the feature count the metadata records (None if absent) and the most bytes one entry
    may hold: ``8 * n_features + 4 KiB`` (an .npy header and float64 values)."""
    raw = meta.get("compatibility")
    comp: dict[str, Any] = raw if isinstance(raw, dict) else {}
    names = comp.get("feature_names")
    n = len(names) if isinstance(names, list) else None
    return n, 8 * (n if n is not None else 10_000) + 4096


def compatibility_fields(cfg: Config, n_features: int, state_size: int) -> dict[str, Any]:
    """What a saved agent depends on; replay compares these one by one."""
    env = cfg.env
    return {
        "algorithm": cfg.agent.algorithm,
        **backend_fields(cfg, env.lookback * n_features + state_size),
        "net_arch": list(cfg.sac.net_arch),
        "feature_names": list(env.features),
        "lookback": env.lookback,
        "observation_shape": [env.lookback * n_features + state_size],
        "interval": cfg.data.interval,
        "reward": env.reward,
        "costs": env.costs.model_dump(mode="json"),
        "max_position": env.max_position,
        "allow_short": env.allow_short,
        "rebalance_threshold": env.rebalance_threshold,
        "forced_exit_minutes": env.forced_exit_minutes,
        "normalize_obs": cfg.training.normalize_obs,
        **feature_identity_field(cfg),
    }


def backend_fields(cfg: Config, obs_dim: int) -> dict[str, Any]:
    """``backend``: the one that trains; for ``agent.backend: auto`` also ``backend_choice`` (requested, chosen,
    measured steps/s; replay compares only ``backend``, and uses it: :func:`replay_config`)."""
    if cfg.agent.backend != AUTO:
        return {"backend": cfg.agent.backend}
    record = choice(cfg, obs_dim)  # the same record build_model used (cached in the process)
    keep = ("requested", "chosen", "steps_per_second", "measured_at", "measure_seconds", "cached")
    return {"backend": record["chosen"], "backend_choice": {k: record.get(k) for k in keep}}


def replay_config(cfg: Config, meta: dict[str, Any], bundle_dir: Path) -> Config:
    """``cfg`` on the backend that trained the bundle when ``cfg`` asks for ``auto`` (never re-measured)."""
    if cfg.agent.backend != AUTO:
        return cfg
    recorded = (meta.get("compatibility") or {}).get("backend")
    if recorded not in BACKENDS:
        raise EvaluationError(
            f"{bundle_dir / METADATA_FILE}: compatibility.backend is {recorded!r}, not one of {', '.join(BACKENDS)}; "
            "the config asks for agent.backend=auto, which replays with the backend that trained — set "
            "agent.backend explicitly or retrain the window"
        )
    return concrete(cfg, recorded)


def backend_record(bundle_dir: Path) -> dict[str, Any]:
    """``{"backend": ...}`` (and ``backend_choice`` for auto) of a bundle just written, for the run's summary."""
    saved = read_metadata(bundle_dir).get("compatibility") or {}
    return {k: saved[k] for k in ("backend", "backend_choice") if k in saved}


def feature_identity_field(cfg: Config) -> dict[str, Any]:
    """``feature_identity`` (spec -> parameters, user-module source hash, ta-lib version) when the config uses
    features beyond the package's built-ins; absent otherwise, so older bundles stay comparable."""
    identity = nonbuiltin_identity(list(cfg.env.features))
    return {"feature_identity": identity} if identity else {}


def required_files(compatibility: dict[str, Any]) -> list[str]:
    """Files a bundle must list, given its own compatibility fields."""
    return [MODEL_FILE] + ([STATS_FILE] if compatibility.get("normalize_obs") else [])


def read_metadata(bundle_dir: Path) -> dict[str, Any]:
    path = bundle_dir / METADATA_FILE
    if not path.exists():
        raise EvaluationError(
            f"{path}: bundle metadata missing; the window did not finish training (rerun with --resume)"
        )
    try:
        meta = load_json(path, "bundle metadata")
    except InputError as e:
        raise EvaluationError(str(e)) from e
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
        raise EvaluationError(
            f"{path}: not a bundle metadata object (expected an object with 'files' and 'compatibility'); "
            "retrain the window or restore the file"
        )
    return meta


def verify_files(bundle_dir: Path, meta: dict[str, Any], expected: dict[str, str] | None = None) -> None:
    """Required files listed, present, and matching their SHA-256 (and the run summary's), before loading."""
    files = meta["files"]
    meta_path = bundle_dir / METADATA_FILE
    for name in required_files(meta.get("compatibility") or {}):
        if name not in files:
            raise EvaluationError(
                f"{meta_path}: lists no {name}, which its own compatibility fields require "
                f"(normalize_obs: {(meta.get('compatibility') or {}).get('normalize_obs')}); the bundle is incomplete "
                "or was edited — retrain the window"
            )
    if expected is not None and expected != files:
        changed = sorted(k for k in set(expected) | set(files) if expected.get(k) != files.get(k))
        raise EvaluationError(
            f"{meta_path}: file hashes differ from those the run's summary.json recorded ({', '.join(changed)}); "
            "the bundle was changed after the run — retrain the window or restore the original files"
        )
    for name, want in files.items():
        if Path(name).name != name:
            raise EvaluationError(f"{meta_path}: file entry {name!r} is not a plain file name; refusing the bundle")
        path = check_member(bundle_dir, name, (meta.get("sizes") or {}).get(name))
        if name == MODEL_FILE:
            check_zip(path, member_bound(meta))
            scan_model_zip(path)
        elif name == STATS_FILE:
            check_zip(path, stats_bound(meta)[1], MAX_NPZ_ENTRIES)
        got = sha256_file(path)
        if got != want:
            raise EvaluationError(
                f"{path}: SHA-256 {got[:12]}… does not match the metadata ({str(want)[:12]}…); the file was changed "
                "or truncated and will not be loaded; retrain the window or restore the original file"
            )


def check_compatible(meta: dict[str, Any], expected: dict[str, Any], bundle_dir: Path) -> None:
    """One error naming every field that differs, with both values and the fix."""
    saved = meta.get("compatibility") or {}
    diffs = [
        f"{key}: bundle {saved.get(key)!r} vs now {want!r}"
        for key, want in expected.items()
        if saved.get(key) != want and key != "feature_identity"
    ]
    diffs += _feature_diffs(saved.get("feature_identity") or {}, expected.get("feature_identity") or {})
    if diffs:
        raise EvaluationError(
            f"{bundle_dir}: the bundle does not match this config/data — {'; '.join(diffs)}. Fix: replay with the "
            "config the model was trained with (config.resolved.json in the run folder), or retrain"
        )


def _feature_diffs(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """One entry per feature whose identity changed (a user module edited, other ta-lib, other parameters)."""
    return [
        f"feature '{name}' changed since training (bundle {saved.get(name)!r} vs now {now.get(name)!r})"
        for name in sorted(set(saved) | set(now))
        if saved.get(name) != now.get(name)
    ]


def latest(a: str, b: str | None) -> str:
    """The later of two ISO timestamps (b may be None)."""
    import pandas as pd  # lazy: wf eval's preflight reads bundles without pandas

    return a if b is None or pd.Timestamp(a) >= pd.Timestamp(b) else b


def data_end(meta: dict[str, Any]) -> str | None:
    """The latest bar a bundle's weights have seen: its train span's end, or a warm start's later data."""
    return meta.get("data_end") or (meta.get("window") or {}).get("train_end")


def check_time_order(meta: dict[str, Any], window: Any, timestamps: np.ndarray, tz: str, bundle_dir: Path) -> None:
    """A bundle replays only on a test span that starts after everything its weights saw (+ embargo).

    That is its own train span and the data of the model it warm-started from (``data_end``).
    """
    import pandas as pd  # lazy: wf eval's preflight reads bundles without pandas

    saved = meta.get("window") or {}
    try:
        train_end = pd.Timestamp(data_end(meta))
        train_start = pd.Timestamp(saved["train_start"])
    except (KeyError, TypeError, ValueError) as e:
        raise EvaluationError(
            f"{bundle_dir / METADATA_FILE}: no valid 'window.train_end'; cannot place the bundle"
        ) from e
    embargo = int(meta.get("embargo_bars") or 0)
    last_train = int(np.searchsorted(timestamps, train_end.as_unit("ns").value, side="right")) - 1
    if window.test_start <= last_train + embargo:
        test_start = pd.Timestamp(int(timestamps[window.test_start]), tz="UTC").tz_convert(tz)
        test_end = pd.Timestamp(int(timestamps[window.test_end - 1]), tz="UTC").tz_convert(tz)
        raise EvaluationError(
            f"{bundle_dir}: the model was trained on {train_start.isoformat()} -> {train_end.isoformat()} "
            "(its train span, or the data of the model it warm-started from) "
            f"(embargo {embargo} bars) and cannot be evaluated on the test span {test_start.isoformat()} -> "
            f"{test_end.isoformat()} of window {window.id}, which does not start after it; replay it on a later "
            "window (--window)"
        )


def write_statistics(path: Path, mean: np.ndarray, var: np.ndarray, clip_obs: float, count: int) -> None:
    """Per-feature normalisation statistics in a plain format (npz, no pickle)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                feature_mean=np.asarray(mean, np.float64),
                feature_var=np.asarray(var, np.float64),
                clip_obs=np.float64(clip_obs),
                count=np.int64(count),
            )


def read_statistics(path: Path, n_features: int | None = None) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """feature_mean / feature_var (float64, ``(n_features,)`` when given) and clip_obs; anything else is exit 5."""
    check_zip(path, 8 * (n_features if n_features is not None else 10_000) + 4096, MAX_NPZ_ENTRIES)
    try:
        with np.load(path, allow_pickle=False) as z:
            mean, var, clip = z["feature_mean"].copy(), z["feature_var"].copy(), z["clip_obs"]
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise EvaluationError(f"{path}: cannot read the normalisation statistics ({e}); retrain the window") from e
    want = (n_features,) if n_features is not None else mean.shape
    for key, arr in (("feature_mean", mean), ("feature_var", var)):
        if arr.dtype != np.float64 or arr.ndim != 1 or arr.shape != want:
            raise EvaluationError(
                f"{path}: {key} is {arr.dtype} {arr.shape}, expected float64 {want} (one value per feature); "
                "refusing the bundle — retrain the window"
            )
    if clip.shape != () or clip.dtype.kind not in "fiu":
        raise EvaluationError(f"{path}: clip_obs is {clip.dtype} {clip.shape}, expected one number; retrain the window")
    return (mean, var), float(clip)


def preflight(bundle_dir: Path, expected_hashes: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything about a bundle that needs neither data nor torch: metadata, files, hashes, zip directories,
    the statistics file's shapes. Run before the data are loaded, so a hostile bundle is refused at once."""
    meta = read_metadata(bundle_dir)
    verify_files(bundle_dir, meta, expected_hashes)
    if (meta.get("compatibility") or {}).get("normalize_obs"):
        read_statistics(bundle_dir / STATS_FILE, stats_bound(meta)[0])
    return meta


def load_agent(
    bundle_dir: Path,
    cfg: Config,
    market: Any,
    features: np.ndarray,
    window: Any,
    expected_hashes: dict[str, str] | None = None,
):
    """Verify the bundle, then rebuild the agent and load its weights and statistics without unpickling.

    Returns (agent, normalisation, clip_obs, metadata); ``agent`` offers ``policy(deterministic)``.
    """
    from backend.envs.intraday_env import STATE_NAMES  # heavy: gymnasium
    from backend.training import agents  # heavy: gymnasium

    meta = read_metadata(bundle_dir)
    cfg = replay_config(cfg, meta, bundle_dir)
    verify_files(bundle_dir, meta, expected_hashes)
    check_compatible(meta, compatibility_fields(cfg, features.shape[1], len(STATE_NAMES)), bundle_dir)
    check_time_order(meta, window, market.timestamps, cfg.data.timezone, bundle_dir)
    norm, clip_obs = None, 10.0
    if meta["compatibility"].get("normalize_obs"):
        norm, clip_obs = read_statistics(bundle_dir / STATS_FILE, stats_bound(meta)[0])
    try:
        agent = agents.load_for_replay(cfg, bundle_dir / MODEL_FILE, features.shape[1])
    except EvaluationError:
        raise
    except Exception as e:
        raise EvaluationError(
            f"{bundle_dir / MODEL_FILE}: cannot load the model weights: {type(e).__name__}: {e}"
        ) from e
    return agent, norm, clip_obs, meta
