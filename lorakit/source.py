"""Short excerpts of installed source code, found by pattern with `inspect`, never pasted.

A chapter that walks through a library's code shows lines pulled from the installed copy at run
time. Lines are chosen by regular expressions, not line numbers, so that when the library changes
the excerpt either follows the code or fails loudly with a ValueError naming the missing pattern.
"""
from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# A span is one pattern (that line alone) or a (start, end) pair of patterns (both lines included).
Span = str | tuple[str, str]
ELLIPSIS = "..."  # shown where an excerpt skips lines between two spans


@dataclass(frozen=True)
class Excerpt:
    """Lines of one function, class or module, as installed; `qualname` is where it is defined."""

    qualname: str  # module + qualified name of the definition, e.g. peft.tuners.lora.layer.Linear.forward
    path: str  # file path relative to the directory holding the top-level package: peft/tuners/...
    line_numbers: tuple[int, ...]  # 1-based line number in `path` of each line below
    lines: tuple[str, ...]  # the selected lines, common indentation removed

    @property
    def first_line(self) -> int:
        return self.line_numbers[0]

    @property
    def short_name(self) -> str:
        """The qualified name inside its module, e.g. Linear.forward."""
        module = module_of(self.path)
        return self.qualname[len(module) + 1:] if self.qualname.startswith(module + ".") else self.qualname

    def __str__(self) -> str:
        width = len(str(self.line_numbers[-1]))
        out = [f"{self.path}:{self.first_line}  {self.short_name}"]
        previous = None
        for number, line in zip(self.line_numbers, self.lines):
            if previous is not None and number > previous + 1:
                out.append(f"{'':>{width}}  {ELLIPSIS}")
            out.append(f"{number:>{width}}  {line}".rstrip())
            previous = number
        return "\n".join(out)

    __repr__ = __str__


def module_of(path: str) -> str:
    """The dotted module name of a package-relative path: peft/tuners/lora/layer.py -> peft.tuners.lora.layer."""
    parts = list(Path(path).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(dotted: str) -> object:
    """Import the longest importable module prefix of `dotted`, then follow attributes."""
    if not isinstance(dotted, str) or not dotted:
        raise ValueError(f"expected a dotted name like 'peft.tuners.lora.layer.Linear', got {dotted!r}")
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for j, attr in enumerate(parts[i:], start=i):
            try:
                obj = inspect.getattr_static(obj, attr) if inspect.isclass(obj) else getattr(obj, attr)
            except AttributeError:
                raise ValueError(f"{'.'.join(parts[:j])} has no attribute {attr!r} (resolving {dotted!r})") from None
        return _unwrap(obj)
    raise ValueError(f"no importable module at the start of {dotted!r}")


def _unwrap(obj: object) -> object:
    """The function behind a staticmethod, classmethod, property or decorator."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    elif isinstance(obj, property):
        obj = obj.fget
    return inspect.unwrap(obj) if callable(obj) else obj


def defined_name(obj: object) -> str:
    """Where obj is defined: its module and qualified name, e.g. peft.tuners.tuners_utils.BaseTuner.inject_adapter."""
    obj = _unwrap(obj)
    if isinstance(obj, ModuleType):
        return obj.__name__
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module is None or qualname is None:
        raise ValueError(f"{obj!r} has no __module__/__qualname__: not a function, class or module")
    return f"{module}.{qualname}"


def relative_path(obj: object) -> str:
    """The source file of obj relative to the directory holding its top-level package (no machine prefix)."""
    file = inspect.getsourcefile(_unwrap(obj))
    if file is None:
        raise ValueError(f"no source file for {obj!r}")
    top = defined_name(obj).split(".")[0]
    package = sys.modules[top]
    # a package's __init__.py sits one level below the root; a plain module sits at the root
    root = Path(package.__file__).resolve().parent
    if Path(package.__file__).name == "__init__.py":
        root = root.parent
    return Path(file).resolve().relative_to(root).as_posix()


def _find(lines: Sequence[str], pattern: str, start: int, where: str) -> int:
    """Index of the first line at or after `start` that re.search(pattern) finds."""
    regex = re.compile(pattern)
    for i in range(start, len(lines)):
        if regex.search(lines[i]):
            return i
    raise ValueError(f"pattern {pattern!r} not found in {where} (from its line {start + 1} on)")


def excerpt(target: str | object, *spans: Span, max_lines: int = 20) -> Excerpt:
    """The lines of `target` (a dotted name or an object) that the spans select, in order.

    Args:
        spans: each a regex (that one line) or a (start, end) pair of regexes (start line through
            the first line at or after it that matches end). Each span is searched after the
            previous one. No spans: the whole definition.
        max_lines: a ValueError if the excerpt grows longer: excerpts stay short.
    """
    obj = resolve(target) if isinstance(target, str) else _unwrap(target)
    source, first = inspect.getsourcelines(obj)
    first = max(first, 1)  # a module's source starts at line 0 in inspect's count
    source = [line.rstrip("\n") for line in source]
    name = defined_name(obj)
    chosen: list[int] = [] if spans else list(range(len(source)))  # no spans: the whole definition
    cursor = 0
    for span in spans:
        start, end = (span, None) if isinstance(span, str) else span
        i = _find(source, start, cursor, name)
        j = i if end is None else _find(source, end, i, name)
        chosen.extend(range(i, j + 1))
        cursor = j + 1
    if len(chosen) > max_lines:
        raise ValueError(f"excerpt of {name} has {len(chosen)} lines, more than max_lines={max_lines}")
    picked = [source[k] for k in chosen]
    indent = min((len(s) - len(s.lstrip()) for s in picked if s.strip()), default=0)
    return Excerpt(
        qualname=name,
        path=relative_path(obj),
        line_numbers=tuple(first + k for k in chosen),
        lines=tuple(s[indent:] for s in picked),
    )


@dataclass(frozen=True)
class ExcerptSpec:
    """What a chapter shows of one definition: where it should be defined and which lines."""

    qualname: str  # where the definition must live, e.g. peft.tuners.lora.layer.LoraLayer.update_layer
    spans: tuple[Span, ...]

    def excerpt(self) -> Excerpt:
        """Pull the lines from the installed source; ValueError if the definition moved."""
        found = defined_name(resolve(self.qualname))
        if found != self.qualname:
            raise ValueError(f"{self.qualname} is now defined as {found}")
        return excerpt(self.qualname, *self.spans)


_L, _T = "peft.tuners.lora", "peft.tuners.tuners_utils"

# The stops of the "Inside peft" chapter, in the order the call to get_peft_model meets them.
PEFT_LORA_TOUR: dict[str, ExcerptSpec] = {
    "get_peft_model": ExcerptSpec("peft.mapping_func.get_peft_model", (
        (r"if peft_config\.task_type not in MODEL_TYPE", r"^\s+\)$"),)),
    "PeftModel.__init__": ExcerptSpec("peft.peft_model.PeftModel.__init__", (
        (r"cls = PEFT_TYPE_TO_TUNER_MAPPING\[", r"self\.base_model = cls\("),)),
    "LoraModel": ExcerptSpec(f"{_L}.model.LoraModel", (
        r"^class LoraModel\(BaseTuner\)", r'prefix: str = "lora_"')),
    "BaseTuner.__init__": ExcerptSpec(f"{_T}.BaseTuner.__init__", (
        r"self\.model = model$", r"self\.inject_adapter\(", r"self\.model\.peft_config = self\.peft_config")),
    "BaseTuner.inject_adapter": ExcerptSpec(f"{_T}.BaseTuner.inject_adapter", (
        r"peft_config = _maybe_include_all_linear_layers\(",
        (r"for key, module in named_modules:", r"if not key:"),
        (r"result = self\._check_target_module_exists\(peft_config, key\)", r"result = "),
        (r"if isinstance\(result, _ExcludedModule\)", r"parent, target, target_name = _get_submodules"),
        (r"self\._create_and_replace\(", r"\)$"),
        r"self\._mark_only_adapters_as_trainable\(model\)")),
    "check_target_module_exists": ExcerptSpec(f"{_T}.check_target_module_exists", (
        (r"if isinstance\(config\.target_modules, str\)", r"target_module_found = any\(key\.endswith"),)),
    "match_target_against_key": ExcerptSpec("peft.utils.other.match_target_against_key", (
        r"return re\.fullmatch\(",)),
    "_maybe_include_all_linear_layers": ExcerptSpec(f"{_T}._maybe_include_all_linear_layers", (
        (r"linear_classes = \(", r"linear_module_names\.add\(name\)"),
        (r"if isinstance\(model, PreTrainedModel\)", r"module_names_to_exclude\.add\(last_module_name\)"))),
    "inject_adapter: no match": ExcerptSpec(f"{_T}.BaseTuner.inject_adapter", (
        (r"elif not excluded_modules and unmatched_modules:", r"raise NoMatchingPeftModuleError"),)),
    "LoraModel._create_and_replace": ExcerptSpec(f"{_L}.model.LoraModel._create_and_replace", (
        (r"r_key = get_pattern_key\(", r"alpha = lora_config\.alpha_pattern\.get\("),
        (r"if is_existing_lora_layer:", r"target\.update_layer\("),
        r"^\s+else:$",
        (r"new_module = self\._create_new_module\(", r"self\._replace_module\(parent, target_name, new_module"))),
    "get_pattern_key": ExcerptSpec("peft.utils.other.get_pattern_key", (
        (r"for key in pattern_keys:", r"return key_to_match"),)),
    "inject_adapter: pattern warning": ExcerptSpec(f"{_T}.BaseTuner.inject_adapter", (
        (r'for pattern_attr in \("rank_pattern", "alpha_pattern"\)', r"unmatched = sorted"),)),
    "LoraModel._create_new_module": ExcerptSpec(f"{_L}.model.LoraModel._create_new_module", (
        (r"for dispatcher in dispatchers:", r"break"),)),
    "dispatch_default": ExcerptSpec(f"{_L}.layer.dispatch_default", (
        (r"elif isinstance\(target_base_layer, torch\.nn\.Linear\)", r"new_module = Linear\(target"),)),
    "LoraModel._replace_module": ExcerptSpec(f"{_L}.model.LoraModel._replace_module", (
        r"setattr\(parent, child_name, new_module\)",
        (r'if hasattr\(child, "base_layer"\)', r"child = child\.base_layer"))),
    "Linear.__init__": ExcerptSpec(f"{_L}.layer.Linear.__init__", (
        (r"LoraLayer\.__init__\(self, base_layer", r"^\s+\)$"),)),
    "lora.Linear": ExcerptSpec(f"{_L}.layer.Linear", (r"^class Linear\(nn\.Module, LoraLayer\)",)),
    "LoraLayer.__init__": ExcerptSpec(f"{_L}.layer.LoraLayer.__init__", (
        (r"self\.base_layer = base_layer", r"self\.lora_B = nn\.ModuleDict"),)),
    "LoraLayer.update_layer": ExcerptSpec(f"{_L}.layer.LoraLayer.update_layer", (
        (r"self\.r\[adapter_name\] = r", r"self\.lora_B\[adapter_name\] = nn\.Linear"),
        (r"if use_rslora:", r"self\.scaling\[adapter_name\] = lora_alpha / r$"),
        (r"elif init_lora_weights:", r"self\.reset_lora_parameters\("))),
    "LoraLayer.reset_lora_parameters": ExcerptSpec(f"{_L}.layer.LoraLayer.reset_lora_parameters", (
        (r"if init_lora_weights is True:", r"nn\.init\.zeros_\(self\.lora_B\[adapter_name\]\.weight\)"),)),
    "BaseTuner._mark_only_adapters_as_trainable": ExcerptSpec(
        f"{_T}.BaseTuner._mark_only_adapters_as_trainable", (
            (r"for n, p in model\.named_parameters\(\):", r"p\.requires_grad = False"),)),
    "Linear.forward": ExcerptSpec(f"{_L}.layer.Linear.forward", (
        (r"if self\.disable_adapters:", r"result = self\.base_layer\("),
        (r"elif self\.merged:", r"result = self\.base_layer\(x"),
        (r"^\s+else:$", r"result = self\.base_layer\(x"),
        r"for active_adapter in self\.active_adapters:",
        (r"lora_A = self\.lora_A\[active_adapter\]", r"scaling = self\.scaling\[active_adapter\]"),
        (r"if active_adapter not in self\.lora_variant:", r"result = result \+ lora_B\(lora_A\(dropout\(x\)\)\) \* scaling"))),
    "Linear.get_delta_weight": ExcerptSpec(f"{_L}.layer.Linear.get_delta_weight", (
        (r"weight_A = self\.lora_A\[adapter\]\.weight", r"weight_B = self\.lora_B\[adapter\]\.weight"),
        r"output_tensor = transpose\(weight_B @ weight_A, self\.fan_in_fan_out\) \* self\.scaling\[adapter\]")),
    "Linear.merge": ExcerptSpec(f"{_L}.layer.Linear.merge", (
        r"for active_adapter in adapter_names:",
        r"if safe_merge:",
        r"orig_weight = base_layer\.weight\.data\.clone\(\)",
        r"orig_weight \+= delta_weight",
        r"base_layer\.weight\.data = orig_weight",
        r"^\s+else:$",
        (r"if active_adapter not in self\.lora_variant:", r"base_layer\.weight\.data \+= delta_weight"),
        r"self\.merged_adapters\.append\(active_adapter\)")),
    "Linear.unmerge": ExcerptSpec(f"{_L}.layer.Linear.unmerge", (
        (r"while len\(self\.merged_adapters\) > 0:", r"active_adapter = self\.merged_adapters\.pop\(\)"),
        (r"delta_weight = self\.get_delta_weight\(active_adapter\)", r"weight\.data -= delta_weight"))),
    "BaseTuner._unload_and_optionally_merge": ExcerptSpec(f"{_T}.BaseTuner._unload_and_optionally_merge", (
        (r'elif hasattr\(target, "base_layer"\):', r"self\._replace_module\(parent, target_name, target\.get_base_layer"),
        r"return self\.model$")),
    "checkpoint names": ExcerptSpec("peft.utils.constants", (
        r'^WEIGHTS_NAME = "', r'^SAFETENSORS_WEIGHTS_NAME = "', r'^CONFIG_NAME = "')),
}


def peft_excerpt(key: str) -> Excerpt:
    """The excerpt PEFT_LORA_TOUR[key] selects, pulled from the installed peft."""
    if key not in PEFT_LORA_TOUR:
        raise ValueError(f"no tour stop {key!r}; the stops are {list(PEFT_LORA_TOUR)}")
    return PEFT_LORA_TOUR[key].excerpt()


# peft 0.2.0's own target test (src/peft/tuners/lora.py, LoraModel._find_and_replace, tag v0.2.0);
# the peft 0.2.0 blog walkthrough quotes only its re.fullmatch branch.
PEFT_020_TARGET_TEST = (
    "if isinstance(self.peft_config.target_modules, str):\n"
    "    target_module_found = re.fullmatch(self.peft_config.target_modules, key)\n"
    "else:\n"
    "    target_module_found = any(key.endswith(target_key) for target_key in self.peft_config.target_modules)"
)
