import pytest

from causalcl.train.config import Config, load_yaml, parse_assignment, save_yaml


def test_set_and_coerce():
    c = Config()
    c.set("optim.lr", 1)
    assert c.optim.lr == 1.0 and isinstance(c.optim.lr, float)
    c.set("augment.scale", [0.3, 1.0])
    assert c.augment.scale == (0.3, 1.0)
    c.set("method.temperature", 0.2)
    assert c.method == {"name": "simclr", "temperature": 0.2}
    c.set("data.options.rho", 0.8)
    assert c.data.options == {"rho": 0.8}


def test_unknown_key_names_nearest():
    with pytest.raises(ValueError, match="did you mean 'optim.lr'"):
        Config().set("optim.lrr", 0.1)
    with pytest.raises(ValueError, match="does not exist"):
        Config().set("nosuch.key", 1)


def test_parse_assignment_reads_yaml_values():
    assert parse_assignment("train.steps=20") == ("train.steps", 20)
    assert parse_assignment("method.loss=dcl") == ("method.loss", "dcl")
    assert parse_assignment("augment.scale=[0.1, 1.0]") == ("augment.scale", [0.1, 1.0])
    with pytest.raises(ValueError, match="key=value"):
        parse_assignment("train.steps")


def test_yaml_round_trip(tmp_path):
    c = Config()
    c.set("train.steps", 7)
    c.set("method.loss", "dcl")
    save_yaml(c, tmp_path / "config.yaml")
    again = Config.from_dict(load_yaml(tmp_path / "config.yaml"))
    assert again.to_dict() == c.to_dict()


def test_yaml_unknown_key_and_missing_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("train:\n  stepz: 3\n")
    with pytest.raises(ValueError, match="train.steps"):
        Config.from_dict(load_yaml(tmp_path / "bad.yaml"))
    with pytest.raises(FileNotFoundError):
        load_yaml(tmp_path / "missing.yaml")


def test_yaml_is_safe_loaded(tmp_path):
    (tmp_path / "evil.yaml").write_text("train: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(Exception, match="(?i)could not determine a constructor|constructor"):
        load_yaml(tmp_path / "evil.yaml")
