"""The "Inside peft" chapter walks through peft's source: fail loudly if what it walks through moves.

Each stop in lorakit.PEFT_LORA_TOUR names where a definition must live and which lines the chapter
shows. These tests resolve every name against the installed peft, check it is defined there (not
inherited from somewhere new), that every pattern is still found, and that the excerpt's lines are
the file's own lines. They also check the structural facts the chapter states in prose.
"""
import inspect
from pathlib import Path

import peft
import pytest
from torch import nn

from lorakit import PEFT_LORA_TOUR, peft_excerpt
from lorakit.source import defined_name, resolve

SITE = Path(peft.__file__).resolve().parent.parent  # the folder that holds the peft package


@pytest.mark.parametrize("key", list(PEFT_LORA_TOUR))
def test_stop_resolves_where_expected(key):
    spec = PEFT_LORA_TOUR[key]
    obj = resolve(spec.qualname)
    assert defined_name(obj) == spec.qualname
    module = inspect.getmodule(obj)
    assert spec.qualname.startswith(module.__name__)


@pytest.mark.parametrize("key", list(PEFT_LORA_TOUR))
def test_excerpt_patterns_found_and_lines_are_the_files(key):
    ex = peft_excerpt(key)  # raises ValueError if a pattern is gone or the excerpt grew past 20 lines
    assert 1 <= len(ex.lines) <= 20
    assert not Path(ex.path).is_absolute() and ex.path.startswith("peft/")
    text = (SITE / ex.path).read_text().splitlines()
    for number, line in zip(ex.line_numbers, ex.lines):
        assert text[number - 1].strip() == line.strip()
    assert list(ex.line_numbers) == sorted(set(ex.line_numbers))


def test_unknown_stop():
    with pytest.raises(ValueError, match="no tour stop"):
        peft_excerpt("LoraModel._find_and_replace")  # peft 0.2.0's name, gone


def test_structure_the_chapter_describes():
    from peft.tuners.lora import Linear, LoraLayer, LoraModel
    from peft.tuners.tuners_utils import BaseTuner

    assert LoraModel.prefix == "lora_" and issubclass(LoraModel, BaseTuner)
    assert LoraModel.inject_adapter is BaseTuner.inject_adapter  # inherited, not overridden
    assert Linear.__mro__[1:3] == (nn.Module, LoraLayer) and not issubclass(Linear, nn.Linear)
    assert Linear.train is nn.Module.train  # no merging hidden in train()/eval() any more
    assert not hasattr(LoraModel, "_find_and_replace")  # peft 0.2.0's entry point


def test_matching_rules_the_chapter_states():
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists
    from peft.utils.other import get_pattern_key

    as_list = LoraConfig(target_modules=["fc1"])
    assert check_target_module_exists(as_list, "fc1") and check_target_module_exists(as_list, "block.fc1")
    assert not check_target_module_exists(as_list, "block.xfc1")
    as_regex = LoraConfig(target_modules="fc1")
    assert check_target_module_exists(as_regex, "fc1") and not check_target_module_exists(as_regex, "block.fc1")
    assert get_pattern_key(["fc.", "fc2"], "fc2") == "fc."  # first matching key wins
    assert get_pattern_key(["fc"], "fc1") == "fc1"  # no key matched: the name itself, so the default r


# Other peft names the chapter calls (not excerpted), and where each must be defined.
CHAPTER_API = [
    "peft.mapping_func.get_peft_model",
    "peft.peft_model.PeftModel.get_nb_trainable_parameters",
    "peft.peft_model.PeftModel.save_pretrained",
    "peft.peft_model.PeftModel.from_pretrained",
    "peft.peft_model.PeftModel.add_adapter",
    "peft.peft_model.PeftModel.set_adapter",
    "peft.peft_model.PeftModel.disable_adapter",
    "peft.tuners.tuners_utils.BaseTuner.merge_and_unload",
    "peft.tuners.tuners_utils.check_target_module_exists",
    "peft.utils.other.get_pattern_key",
    "peft.utils.error.NoMatchingPeftModuleError",
    "peft.tuners.lora.config.LoraConfig",
]


@pytest.mark.parametrize("qualname", CHAPTER_API)
def test_chapter_api_defined_where_expected(qualname):
    assert defined_name(resolve(qualname)) == qualname


def test_public_shortcuts_point_at_the_same_objects():
    from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
    from peft.tuners.lora import LoraModel

    assert peft.get_peft_model is resolve("peft.mapping_func.get_peft_model")
    assert peft.LoraConfig is resolve("peft.tuners.lora.config.LoraConfig")
    assert PEFT_TYPE_TO_TUNER_MAPPING["LORA"] is LoraModel


def test_config_fields_the_chapter_tabulates():
    import dataclasses

    names = {f.name for f in dataclasses.fields(peft.LoraConfig)}
    table = {"r", "lora_alpha", "lora_dropout", "target_modules", "bias", "modules_to_save", "fan_in_fan_out",
             "use_rslora", "use_dora", "init_lora_weights", "rank_pattern", "alpha_pattern", "exclude_modules",
             "layers_to_transform"}
    assert table <= names and "dropout_pattern" not in names
