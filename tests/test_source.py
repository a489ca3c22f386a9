"""lorakit.source: excerpts pulled from installed source, checked against the files themselves."""
import inspect
from pathlib import Path

import pytest
from torch import nn

import lorakit
from lorakit.layers import LoRALinear
from lorakit.source import Excerpt, ExcerptSpec, defined_name, excerpt, relative_path, resolve

LAYERS_PY = Path(lorakit.layers.__file__)


def file_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def line_number_of(path: Path, text: str) -> int:
    """1-based number of the first line of the file containing text (the independent reference)."""
    return next(i for i, line in enumerate(file_lines(path), start=1) if text in line)


def test_resolve_follows_modules_classes_and_staticmethods():
    assert resolve("lorakit.layers.LoRALinear.merge") is inspect.unwrap(LoRALinear.merge)
    assert resolve("lorakit.layers") is lorakit.layers
    assert resolve("torch.nn.Linear") is nn.Linear
    from peft.tuners.lora.model import LoraModel
    assert resolve("peft.tuners.lora.model.LoraModel._create_new_module") is LoraModel._create_new_module


@pytest.mark.parametrize("name", ["lorakit.layers.NoSuchThing", "lorakit.layers.LoRALinear.nope", "no_such_pkg.x", "", 3])
def test_resolve_bad_names(name):
    with pytest.raises(ValueError):
        resolve(name)


def test_defined_name_reports_the_defining_class():
    # LoraModel inherits inject_adapter: the excerpt must say where it really lives
    assert defined_name(resolve("peft.tuners.lora.model.LoraModel.inject_adapter")) == \
        "peft.tuners.tuners_utils.BaseTuner.inject_adapter"
    assert defined_name(LoRALinear) == "lorakit.layers.LoRALinear"


def test_relative_path_has_no_machine_prefix():
    assert relative_path(LoRALinear) == "lorakit/layers.py"
    assert relative_path(resolve("peft.tuners.lora.layer.Linear.forward")) == "peft/tuners/lora/layer.py"
    assert relative_path(lorakit.layers) == "lorakit/layers.py"


def test_line_numbers_and_text_match_the_file():
    ex = excerpt("lorakit.layers.LoRALinear.merge", (r"if self\.merged:", r"raise RuntimeError"), r"self\.merged = True")
    assert isinstance(ex, Excerpt) and ex.qualname == "lorakit.layers.LoRALinear.merge"
    lines = file_lines(LAYERS_PY)
    for number, text in zip(ex.line_numbers, ex.lines):
        assert lines[number - 1].strip() == text.strip()
    # the first match inside merge(), not the one in forward() above it
    merge_def = line_number_of(LAYERS_PY, "def merge(self)")
    expected = next(i for i in range(merge_def, len(lines) + 1) if "if self.merged:" in lines[i - 1])
    assert ex.first_line == expected > line_number_of(LAYERS_PY, "if self.merged:")
    assert ex.line_numbers[:2] == (ex.first_line, ex.first_line + 1)  # start..end span is contiguous
    assert ex.lines[-1] == "self.merged = True"


def test_dedent_keeps_relative_indentation():
    ex = excerpt("lorakit.layers.LoRALinear.forward", (r"if self\.merged:", r"return out$"))
    assert ex.lines == ("if self.merged:  # the update already sits inside base.weight", "    return out")


def test_gaps_are_shown_and_spans_are_ordered():
    ex = excerpt("lorakit.layers.add_lora", r"check_rank\(r\)", r"model\.requires_grad_\(False\)")
    text = str(ex)
    assert text.splitlines()[0] == f"lorakit/layers.py:{ex.first_line}  add_lora"
    assert "..." in text and ex.line_numbers[1] > ex.line_numbers[0] + 1
    with pytest.raises(ValueError, match="not found"):  # the second span is searched after the first
        excerpt("lorakit.layers.add_lora", r"model\.requires_grad_\(False\)", r"check_rank\(r\)")


def test_missing_pattern_and_long_excerpt_fail_loudly():
    with pytest.raises(ValueError, match=r"pattern 'no such line' not found in lorakit\.layers\.add_lora"):
        excerpt("lorakit.layers.add_lora", "no such line")
    with pytest.raises(ValueError, match="more than max_lines=3"):
        excerpt("lorakit.layers.add_lora", (r"check_rank", r"return model"), max_lines=3)


def test_whole_definition_and_module_source():
    ex = excerpt(lorakit.layers.check_rank, max_lines=100)
    source, first = inspect.getsourcelines(lorakit.layers.check_rank)
    assert ex.first_line == first and len(ex.lines) == len(source)
    mod = excerpt("lorakit.layers", r"^def matches\(")
    assert mod.first_line == line_number_of(LAYERS_PY, "def matches(")


def test_spec_checks_where_the_definition_lives():
    ok = ExcerptSpec("peft.tuners.tuners_utils.BaseTuner.inject_adapter", (r"def inject_adapter",))
    assert ok.excerpt().qualname == ok.qualname
    moved = ExcerptSpec("peft.tuners.lora.model.LoraModel.inject_adapter", (r"def inject_adapter",))
    with pytest.raises(ValueError, match="now defined as peft.tuners.tuners_utils.BaseTuner.inject_adapter"):
        moved.excerpt()


def test_excerpt_is_frozen():
    ex = excerpt("lorakit.layers.check_rank", r"def check_rank")
    with pytest.raises(AttributeError):
        ex.lines = ()


def test_parameter_table_against_named_parameters():
    model = lorakit.add_lora(lorakit.SimpleMLP(), ["fc1"], r=2)
    table = lorakit.parameter_table(model)
    expected = [(n, tuple(p.shape), p.requires_grad) for n, p in model.named_parameters()]
    assert [(r.name, r.shape, r.trainable) for r in table.rows] == expected
    assert table.names(trainable=True) == ["fc1.lora_A.weight", "fc1.lora_B.weight"]
    assert sum(r.numel for r in table.rows if r.trainable) == lorakit.count_parameters(model).trainable
    assert repr(table).splitlines()[0].split() == ["name", "shape", "trainable"]
    assert list(table.to_frame().columns) == ["name", "shape", "numel", "trainable"]
    with pytest.raises(ValueError, match="nn.Module"):
        lorakit.parameter_table("not a model")
