"""One configuration for every model (SPEC §3-§4), read and written as the same `config.json` as
titans-ts (src/models/config.ts, src/memory/layer.ts). Keys stay camelCase, exactly as in the file.

`resolve_config` fills the same defaults as titans-ts's `resolveConfig` and rejects a bad or unknown
field by name; python/tests/test_config.py checks the two agree on every preset and on inputs
chosen to exercise each default.

    config = resolve_config({"variant": "mag", "vocabSize": 256, "dModel": 64})
    config["memory"]["thetaMax"]  # 0.02: min(0.1, 0.32 / chunkSize)
"""

import copy
import math

MODEL_VARIANTS = ("mac", "mag", "mal", "lmm", "transformer", "swa", "deltanet", "gated-deltanet")

# The agreed Hugging Face-style markers written into config.json (BRIEF: "formats agreed between
# branches"); readers accept and ignore them.
MODEL_TYPE = "titans"
ARCHITECTURES = ["TitansForCausalLM"]
MARKER_FIELDS = ("model_type", "architectures")

KNOWN_FIELDS = (
    "variant", "vocabSize", "dModel", "layers", "heads", "mlpHidden", "window", "segmentSize",
    "persistentTokens", "memoryLayers", "memory", "tieEmbeddings", "ropeBase", "normEps", "initStd",
)
MEMORY_FIELDS = (
    "heads", "headDim", "depth", "expansion", "activation", "residual", "chunkSize", "convKernel",
    "momentum", "forgetting", "thetaMax", "etaMax", "gateBias", "normalizeValues",
)


class ConfigError(ValueError):
    """A config that titans-ts would reject too; the message names the field."""


def js_round(x):
    """JavaScript's Math.round: halves go up (Python's round() goes to the even neighbour)."""
    return math.floor(x + 0.5)


def default_memory_layer_config(d_model, overrides=None):
    """src/memory/layer.ts defaultMemoryLayerConfig: the memory layer's defaults, then `overrides`."""
    o = dict(overrides or {})
    chunk = o.get("chunkSize", 16)
    config = {
        "heads": 4,  # paper-style multi-head memory
        "headDim": max(1, d_model // o.get("heads", 4)),
        "depth": 2,  # SPEC default L_M = 2
        "expansion": 4,
        "activation": "silu",
        "residual": False,
        "chunkSize": 16,
        "convKernel": 4,  # SPEC default K = 4
        "momentum": True,
        "forgetting": True,
        # b * thetaMax * 2 / (1 - etaMax) <= 1.28: the inner descent stays stable (layer.ts explains)
        "thetaMax": min(0.1, 0.32 / chunk) if _is_number(chunk) and chunk > 0 else 0.02,
        "etaMax": 0.5,
        "gateBias": {"alpha": -7, "eta": 0, "theta": 0},  # alpha ~ 0.0009: a write's half-life ~ 770 tokens
        "normalizeValues": True,  # safeguard beyond SPEC: unit-norm targets keep the inner descent stable
    }
    config.update(o)
    validate_memory_layer_config(config, d_model)
    return config


def _baseline_memory(variant):
    """SPEC §4: DeltaNet-like L_M = 1, eta = 0, alpha = 0 (gated: learned alpha)."""
    if variant == "deltanet":
        return {"depth": 1, "momentum": False, "forgetting": False}
    if variant == "gated-deltanet":
        return {"depth": 1, "momentum": False, "forgetting": True}
    return {}


def resolve_config(raw):
    """Fills every default and validates, like titans-ts's resolveConfig. The markers `model_type`
    and `architectures` are accepted and dropped. Raises ConfigError naming the first bad field."""
    if not isinstance(raw, dict):
        raise ConfigError("config: expected an object")
    given = {k: v for k, v in raw.items() if k not in MARKER_FIELDS}
    for key in given:
        if key not in KNOWN_FIELDS:
            raise ConfigError(f"config: unknown field '{key}'")
    memory_in = given.get("memory") or {}
    if not isinstance(memory_in, dict):
        raise ConfigError("config: memory must be an object")
    for key in memory_in:
        if key not in MEMORY_FIELDS:
            raise ConfigError(f"config: unknown field 'memory.{key}'")
    if "variant" not in given:
        raise ConfigError("config: variant is missing")
    variant = given["variant"]
    d_model = given.get("dModel", 64)
    heads = given.get("heads", 4)
    memory_heads = memory_in.get("heads", heads)
    for name, value in (("dModel", d_model), ("heads", heads), ("memory.heads", memory_heads)):
        _int(name, value, 1)
    memory = {"heads": memory_heads, "headDim": max(1, d_model // memory_heads)}
    memory.update(copy.deepcopy(memory_in))
    memory.update(_baseline_memory(variant))
    memory = default_memory_layer_config(d_model, memory)
    config = {
        "variant": variant,
        "vocabSize": given.get("vocabSize"),
        "dModel": d_model,
        "layers": given.get("layers", 2),
        "heads": heads,
        # the multiple of 8 nearest to 8d/3: the parameters of a 4d GELU MLP
        "mlpHidden": given.get("mlpHidden", max(8, js_round(8 * d_model / 3 / 8) * 8)),
        "window": given.get("window", 64),
        "segmentSize": given.get("segmentSize", 64),
        "persistentTokens": given.get("persistentTokens", 4),
        "memoryLayers": copy.deepcopy(given.get("memoryLayers", "all")),
        "memory": memory,
        "tieEmbeddings": given.get("tieEmbeddings", True),
        "ropeBase": given.get("ropeBase", 10000),
        "normEps": given.get("normEps", 1e-6),
        "initStd": given.get("initStd", 0.02),
    }
    validate_config(config)
    return config


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(name, v, minimum, where="config"):
    if not (_is_number(v) and float(v).is_integer() and v >= minimum):
        raise ConfigError(f"{where}: {name} must be an integer ≥ {minimum}, got {v!r}")


def validate_config(c):
    """Raises ConfigError naming the first bad field of a complete config."""
    for key in c:
        if key not in KNOWN_FIELDS:
            raise ConfigError(f"config: unknown field '{key}'")
    if c.get("variant") not in MODEL_VARIANTS:
        raise ConfigError(f"config: variant must be one of {', '.join(MODEL_VARIANTS)}, got {c.get('variant')!r}")
    _int("vocabSize", c["vocabSize"], 2)
    for name in ("dModel", "layers", "heads", "mlpHidden", "window", "segmentSize"):
        _int(name, c[name], 1)
    _int("persistentTokens", c["persistentTokens"], 0)
    if c["dModel"] % c["heads"] != 0:
        raise ConfigError(f"config: dModel ({c['dModel']}) must be divisible by heads ({c['heads']})")
    if (c["dModel"] // c["heads"]) % 2 != 0:
        raise ConfigError(f"config: the attention head width dModel/heads = {c['dModel'] // c['heads']} must be even (RoPE)")
    layers = c["memoryLayers"]
    if layers != "all":
        if not isinstance(layers, list):
            raise ConfigError("config: memoryLayers must be 'all' or an array of layer indices")
        for i in layers:
            if not (_is_number(i) and float(i).is_integer() and 0 <= i < c["layers"]):
                raise ConfigError(f"config: memoryLayers has {i!r}, not a layer index in [0, {c['layers']})")
    if not isinstance(c["tieEmbeddings"], bool):
        raise ConfigError("config: tieEmbeddings must be true or false")
    for name in ("ropeBase", "normEps", "initStd"):
        v = c[name]
        if not (_is_number(v) and v > 0 and math.isfinite(v)):
            raise ConfigError(f"config: {name} must be a positive number, got {v!r}")
    if not isinstance(c["memory"], dict):
        raise ConfigError("config: memory must be an object")
    validate_memory_layer_config(c["memory"], c["dModel"], "config.memory")


def validate_memory_layer_config(m, d_model, where="memory layer config"):
    """src/memory/layer.ts validateMemoryLayerConfig."""
    _int("dModel", d_model, 1, where)
    for name in ("heads", "headDim", "depth", "expansion", "chunkSize"):
        _int(name, m[name], 1, where)
    _int("convKernel", m["convKernel"], 0, where)
    if m["activation"] not in ("silu", "gelu"):
        raise ConfigError(f"{where}: activation must be 'silu' or 'gelu', got {m['activation']!r}")
    if not (_is_number(m["thetaMax"]) and m["thetaMax"] > 0 and math.isfinite(m["thetaMax"])):
        raise ConfigError(f"{where}: thetaMax must be > 0, got {m['thetaMax']!r}")
    if not (_is_number(m["etaMax"]) and 0 <= m["etaMax"] <= 1):
        raise ConfigError(f"{where}: etaMax must be in [0, 1], got {m['etaMax']!r}")
    if not isinstance(m["normalizeValues"], bool):
        raise ConfigError(f"{where}: normalizeValues must be true or false, got {m['normalizeValues']!r}")
    if not isinstance(m["gateBias"], dict):
        raise ConfigError(f"{where}: gateBias must be an object")
    for key, v in m["gateBias"].items():
        if not (_is_number(v) and math.isfinite(v)):
            raise ConfigError(f"{where}: gateBias.{key} must be finite, got {v!r}")


def is_titans(variant):
    """MAC, MAG, MAL and LMM: they have persistent memory (eq. 19)."""
    return variant in ("mac", "mag", "mal", "lmm")


def uses_memory(variant):
    return variant not in ("transformer", "swa")


def layer_has_memory(config, index):
    if not uses_memory(config["variant"]):
        return False
    return config["memoryLayers"] == "all" or index in config["memoryLayers"]


def block_kind(config, index):
    """'attention' | 'memory' | 'mag' | 'mal' | 'mac' (src/models/model.ts blockKind); a layer
    without memory in a Titans model is an SWA block."""
    if not layer_has_memory(config, index):
        return "attention"
    if config["variant"] in ("mac", "mag", "mal"):
        return config["variant"]
    return "memory"  # lmm, deltanet, gated-deltanet


def config_for_file(config):
    """The dict written as config.json: the resolved config plus the agreed markers."""
    return {**copy.deepcopy(config), "model_type": MODEL_TYPE, "architectures": list(ARCHITECTURES)}
