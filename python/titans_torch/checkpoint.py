"""Checkpoint directories that titans-ts and the twin both read and write (src/io/):

    config.json          the resolved config (+ "model_type": "titans", "architectures": [...])
    model.safetensors    the parameters named by titans-ts's dotted paths; metadata `format`,
                         `variant` and one `sha256.<tensor name>` per tensor
    tokenizer.json       HuggingFace `tokenizers` format (when a tokenizer is saved)
    optimizer.safetensors, trainer.json   AdamW moments `m.<name>`, `v.<name>` and the trainer's
                         record (step, rng, history…): resume here or in `titans train --resume`
    manifest.json        written last: {"format": "titans-checkpoint", "version": 1,
                         "files": {name: {"bytes": N, "sha256": hex}}} for every other file

A directory is replaced atomically, with the names titans-ts uses (`<dir>.tmp-<pid>-<hex>` filled,
then the old one moved to `<dir>.old-<ms>-<pid>-<hex>`), so a crash leaves the previous
checkpoint, and either side's loader repairs an interrupted swap.

    model, config, tokenizer = load_checkpoint("runs/mag/checkpoint")
    save_checkpoint(model, config, tokenizer, "runs/twin/checkpoint")
"""

import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

import torch

from . import safetensors_io
from .config import ConfigError, config_for_file, resolve_config
from .model import TitansModel
from .tokenizer import TokenizerFormatError, tokenizer_from_json

CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"
OPTIMIZER_FILE, TRAINER_FILE, MANIFEST_FILE = "optimizer.safetensors", "trainer.json", "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or written; the message starts with the file concerned."""


def _suffix():
    return f"{os.getpid()}-{secrets.token_hex(6)}"


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_file_atomic(path, data):
    """Writes bytes (or text, as UTF-8) to `path` through a fsynced temp file and a rename."""
    path = Path(path)
    temp = path.with_name(f"{path.name}.tmp-{_suffix()}")
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        with open(temp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def replace_directory_atomic(directory, files):
    """Replaces `directory` by one holding `files` (name -> bytes, written in order)."""
    target = Path(directory).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(f"{target}.tmp-{_suffix()}")
    temp.mkdir()
    try:
        for name, data in files.items():
            write_file_atomic(temp / name, data)
        _fsync_dir(temp)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    old = Path(f"{target}.old-{int(time.time() * 1000)}-{_suffix()}")
    moved = False
    try:
        if target.exists():
            os.rename(target, old)
            moved = True
        os.rename(temp, target)
    except BaseException:
        if moved:
            os.rename(old, target)
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    if moved:
        shutil.rmtree(old, ignore_errors=True)


def recover_directory(directory):
    """Repairs what an interrupted replace can leave next to `directory` (titans-ts's
    recoverDirectory): the newest `.old-` copy moved back when the directory is missing, other
    `.old-` copies and `.tmp-` copies of dead processes removed."""
    target = Path(directory).resolve()
    if not target.parent.is_dir():
        return
    olds = sorted(target.parent.glob(f"{target.name}.old-*"), key=_old_time, reverse=True)
    if olds and not target.exists():
        os.rename(olds.pop(0), target)
    for path in olds:
        shutil.rmtree(path, ignore_errors=True)
    for path in target.parent.glob(f"{target.name}.tmp-*"):
        pid = path.name[len(target.name) + 5 :].split("-")[0]
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


def _old_time(path):
    stamp = path.name.split(".old-", 1)[1].split("-")[0]
    return int(stamp) if stamp.isdigit() else path.stat().st_mtime * 1000


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
        return True
    except PermissionError:
        return True
    except OSError:
        return False


def checkpoint_dir(path):
    """A checkpoint directory, or a run folder holding one in `checkpoint/` (as `titans` accepts)."""
    path = Path(path)
    if not (path / CONFIG_FILE).exists() and (path / "checkpoint" / CONFIG_FILE).exists():
        return path / "checkpoint"
    return path


def _json_text(value):
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def save_checkpoint(model, config, tokenizer, path, dtype=None):
    """Writes what `titans generate --checkpoint` reads: config.json, model.safetensors (with the
    sha256 metadata), tokenizer.json (unless `tokenizer` is None), manifest.json, atomically.
    `config` None takes the model's. `dtype` of the stored weights: float32 unless the parameters
    are float64 (the default)."""
    write_checkpoint(dict(model.named_parameters()), config if config is not None else model.config, tokenizer, path, dtype=dtype)


def write_checkpoint(params, config, tokenizer, path, optimizer=None, trainer=None, dtype=None):
    """save_checkpoint for named tensors; given `optimizer` tensors (m.<name>, v.<name>) and a
    `trainer` record it also writes optimizer.safetensors and trainer.json, what `titans train
    --resume` (and the twin's --resume) continue from."""
    if tokenizer is not None and tokenizer.vocab_size > config["vocabSize"]:
        raise CheckpointError(f"{path}: the tokenizer has {tokenizer.vocab_size} tokens but the model's vocabSize is {config['vocabSize']}")
    params = {name: p.detach() for name, p in params.items()}
    if dtype is None:
        dtype = torch.float64 if all(p.dtype == torch.float64 for p in params.values()) else torch.float32
    weights = {name: p.to(dtype) for name, p in params.items()}
    files = {
        CONFIG_FILE: _json_text(config_for_file(config)).encode(),
        MODEL_FILE: safetensors_io.serialize(weights, {"format": "titans-ts", "variant": config["variant"]}),
    }
    if tokenizer is not None:
        files[TOKENIZER_FILE] = _json_text(tokenizer.to_json()).encode()
    if optimizer is not None:
        files[OPTIMIZER_FILE] = safetensors_io.serialize({n: t.detach().to(dtype) for n, t in optimizer.items()})
    if trainer is not None:
        files[TRAINER_FILE] = _json_text(trainer).encode()
    manifest = {"format": "titans-checkpoint", "version": 1, "files": {
        name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()
    }}
    files[MANIFEST_FILE] = _json_text(manifest).encode()  # written last
    replace_directory_atomic(path, files)


def _read(path):
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file is missing from the checkpoint") from None


def _verify_manifest(directory):
    path = directory / MANIFEST_FILE
    if not path.exists():
        return
    try:
        manifest = json.loads(_read(path))
        files = manifest["files"]
        assert manifest.get("format") == "titans-checkpoint" and isinstance(files, dict)
    except Exception:
        raise CheckpointError(f"{path}: not a titans-checkpoint manifest") from None
    for name, want in files.items():
        data = _read(directory / name)
        if len(data) != want.get("bytes") or hashlib.sha256(data).hexdigest() != want.get("sha256"):
            raise CheckpointError(f"{directory / name}: does not match {MANIFEST_FILE} (size or sha256): corrupt or partly written")


def _read_json(path):
    try:
        return json.loads(_read(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def read_checkpoint(path):
    """The raw parts of a checkpoint: (directory, config, model tensors, tokenizer or None,
    optimizer tensors or None, trainer record or {}), all checked; errors name the file."""
    directory = checkpoint_dir(path)
    recover_directory(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory does not exist")
    _verify_manifest(directory)
    config_path = directory / CONFIG_FILE
    try:
        config = resolve_config(_read_json(config_path))
    except ConfigError as e:
        raise CheckpointError(f"{config_path}: {e}") from None
    try:
        tensors, _ = safetensors_io.read(directory / MODEL_FILE)
    except FileNotFoundError:
        raise CheckpointError(f"{directory / MODEL_FILE}: file is missing from the checkpoint") from None
    except safetensors_io.SafetensorsError as e:
        raise CheckpointError(str(e)) from None
    tokenizer = None
    if (directory / TOKENIZER_FILE).exists():
        try:
            tokenizer = tokenizer_from_json(_read_json(directory / TOKENIZER_FILE), str(directory / TOKENIZER_FILE))
        except TokenizerFormatError as e:
            raise CheckpointError(str(e)) from None
        if tokenizer.vocab_size > config["vocabSize"]:
            raise CheckpointError(f"{directory / TOKENIZER_FILE}: the tokenizer has {tokenizer.vocab_size} tokens but the model's vocabSize is {config['vocabSize']}")
    optimizer = None
    if (directory / OPTIMIZER_FILE).exists():
        optimizer, _ = safetensors_io.read(directory / OPTIMIZER_FILE)
    trainer = _read_json(directory / TRAINER_FILE) if (directory / TRAINER_FILE).exists() else {}
    return directory, config, tensors, tokenizer, optimizer, trainer


def load_weights(model, tensors, source):
    """Copies named tensors into the model; every parameter must be there with its shape, and no
    other tensor may be (errors list every difference, naming `source`)."""
    own = dict(model.named_parameters())
    problems = []
    for name, p in own.items():
        if name not in tensors:
            problems.append(f'tensor "{name}" is missing (expected shape {list(p.shape)})')
        elif tuple(tensors[name].shape) != tuple(p.shape):
            problems.append(f'tensor "{name}" has shape {list(tensors[name].shape)}, expected {list(p.shape)}')
    problems += [f'unexpected tensor "{name}"' for name in tensors if name not in own]
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))
    with torch.no_grad():
        for name, p in own.items():
            p.copy_(tensors[name].to(p.dtype))


def load_checkpoint(path, dtype=torch.float32, device="cpu"):
    """(model, config, tokenizer) from a checkpoint directory (or a run folder holding
    `checkpoint/`) written by titans-ts or by the twin. tokenizer is None when the checkpoint has
    none (titans-ts then uses the byte tokenizer)."""
    directory, config, tensors, tokenizer, _, _ = read_checkpoint(path)
    model = TitansModel(config).to(dtype)
    load_weights(model, tensors, str(directory / MODEL_FILE))
    return model.to(device), config, tokenizer
