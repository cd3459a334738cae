"""ViT config: presets, derived shapes, JSON/YAML loading and one-line validation errors."""

import json

import pytest

from hgpipe.errors import ConfigError
from hgpipe.model import PRESETS, ViTConfig, load_config, preset
from hgpipe.model.config import config_from_mapping


def test_presets_have_deit_shapes():
    for name, (d, depth, heads) in {"deit-tiny": (192, 12, 3), "deit-small": (384, 12, 6),
                                    "deit-base": (768, 12, 12)}.items():
        c = preset(name)
        assert (c.embed_dim, c.depth, c.num_heads) == (d, depth, heads)
        assert (c.image_size, c.patch_size, c.num_classes) == (224, 16, 1000)
        assert c.num_tokens == 197 and c.head_dim == 64 and c.mlp_hidden == 4 * d
    assert preset("hgpipe-deit-tiny").num_tokens == 196
    assert all(isinstance(c, ViTConfig) for c in PRESETS.values())


@pytest.mark.parametrize("fields, message", [
    ({"num_heads": 5}, "num_heads=5: must divide embed_dim=192"),
    ({"patch_size": 15}, "patch_size=15: must divide image_size=224"),
    ({"embed_dim": 0}, "embed_dim=0: expected a positive integer"),
    ({"depth": -1}, "depth=-1: expected a positive integer"),
    ({"image_size": 22.5}, "image_size=22.5: expected a positive integer"),
    ({"in_chans": "3"}, "in_chans='3': expected a positive integer"),
    ({"num_classes": True}, "num_classes=True: expected a positive integer"),
    ({"mlp_ratio": 0}, "mlp_ratio=0: expected a positive number"),
    ({"mlp_ratio": 1.001}, "mlp_ratio=1.001: embed_dim*mlp_ratio="),
    ({"qkv_bias": "yes"}, "qkv_bias='yes': expected true or false"),
    ({"class_token": "none"}, "class_token='none': expected one of extra, replace"),
    ({"layer_norm_eps": 0}, "layer_norm_eps=0: expected a positive number"),
    ({"image_size": 16, "patch_size": 16, "class_token": "replace"},
     "class_token='replace' needs at least 2 patches"),
    ({"heads": 3}, "unknown key 'heads': expected one of image_size"),
])
def test_bad_configs_fail_with_one_line(fields, message):
    with pytest.raises(ConfigError) as e:
        config_from_mapping(fields)
    text = str(e.value)
    assert message in text
    assert "\n" not in text


def test_missing_keys_take_deit_defaults_and_json_yaml_load(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"embed_dim": 96, "num_heads": 2, "depth": 2}))
    (tmp_path / "b.yaml").write_text("embed_dim: 96\nnum_heads: 2\ndepth: 2\n")
    a, b = load_config(tmp_path / "a.json"), load_config(tmp_path / "b.yaml")
    assert a == b == ViTConfig(embed_dim=96, num_heads=2, depth=2)
    assert a.image_size == 224 and a.num_classes == 1000


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")
    (tmp_path / "c.txt").write_text("{}")
    with pytest.raises(ConfigError, match="expected a .json, .yaml or .yml suffix"):
        load_config(tmp_path / "c.txt")
    (tmp_path / "d.json").write_text("{embed_dim: ")
    with pytest.raises(ConfigError, match="is not valid json"):
        load_config(tmp_path / "d.json")
    (tmp_path / "e.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "e.yaml")
    (tmp_path / "f.yaml").write_text("num_heads: 7\n")
    with pytest.raises(ConfigError, match="num_heads=7: must divide embed_dim=192"):
        load_config(tmp_path / "f.yaml")
    with pytest.raises(ConfigError, match="expected one of deit-tiny"):
        preset("deit-huge")
