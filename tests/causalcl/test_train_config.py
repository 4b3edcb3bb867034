import pytest

from causalcl.train.config import Config, check_values, load_yaml, parse_assignment, save_yaml
from causalcl.train.resume import run_differences


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


@pytest.mark.parametrize(("key", "text", "expected"), [
    ("optim.lr", "1e-3", 1e-3), ("optim.lr", "2E-4", 2e-4), ("optim.lr", "1", 1.0), ("train.steps", "1e2", 100),
    ("train.steps", "100.0", 100), ("train.tensorboard", "true", True), ("train.tensorboard", "False", False),
    ("augment.scale", "[1e-1, 1]", (0.1, 1.0)), ("augment.intervene_on", "bg_texture,fg_hue", ["bg_texture", "fg_hue"]),
    ("optim.grad_clip", "null", None), ("optim.grad_clip", "1e1", 10.0), ("train.epochs", "none", None),
    ("data.root", "2024", "2024"), ("method.temperature", "5e-1", 0.5),
])
def test_values_are_parsed_to_their_declared_type(key, text, expected):
    c = Config()
    c.set(*parse_assignment(f"{key}={text}"))
    value = c.to_dict()
    for part in key.split("."):
        value = value[part]
    assert value == (list(expected) if isinstance(expected, tuple) else expected)
    assert type(value) is type(list(expected) if isinstance(expected, tuple) else expected)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("optim.lr", "abc", "optim.lr: expected a number, got 'abc'"),
    ("optim.lr", [1], r"optim.lr: expected a number, got \[1\]"),
    ("optim.lr", float("nan"), "optim.lr: expected a finite number, got nan"),
    ("train.steps", 1.5, "train.steps: expected an integer, got 1.5"),
    ("train.steps", True, "train.steps: expected an integer, got True"),
    ("train.steps", None, "train.steps: expected an integer, got None"),
    ("train.tensorboard", "maybe", "train.tensorboard: expected true or false, got 'maybe'"),
    ("augment.scale", 0.5, "augment.scale: expected a list of 2 numbers, got 0.5"),
    ("augment.scale", ["a", 1], r"augment.scale\[0\]: expected a number, got 'a'"),
    ("data.options", 3, "data.options: expected a mapping"),
    ("train.device", ["cpu"], "train.device: expected a string"),
    ("train.steps.x", 1, "is a value, not a section"),
])
def test_values_of_the_wrong_type_name_the_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        Config().set(key, value)


def test_yaml_files_read_exponents_as_numbers(tmp_path):
    (tmp_path / "c.yaml").write_text("optim:\n  lr: 1e-3\n  weight_decay: 5E-4\ntrain:\n  steps: 1e2\n")
    c = Config.from_dict(load_yaml(tmp_path / "c.yaml"))
    assert c.optim.lr == 1e-3 and c.optim.weight_decay == 5e-4 and c.train.steps == 100
    assert type(c.train.steps) is int


def test_yaml_errors_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "broken.yaml").write_text("optim: [1,\n")
    with pytest.raises(ValueError, match=r"config file '.*broken.yaml' is not valid YAML: .* at line 2") as info:
        load_yaml(tmp_path / "broken.yaml")
    assert "\n" not in str(info.value)
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml(tmp_path / "empty.yaml") == {}
    with pytest.raises(ValueError, match="is empty"):
        load_yaml(tmp_path / "empty.yaml", allow_empty=False)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="expected a mapping at the top level"):
        load_yaml(tmp_path / "list.yaml")
    with pytest.raises(ValueError, match=r"--set optim.lr: the value .* is not valid YAML"):
        parse_assignment("optim.lr=[1,")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("train.log_every", 0, "train.log_every: expected an integer >= 1, got 0"),
    ("train.steps", -5, "train.steps: expected an integer >= 1, got -5"),
    ("train.batch_size", 1, "train.batch_size: expected an integer >= 2"),
    ("train.epochs", 0, "train.epochs: expected a number > 0"),
    ("train.amp", "fp8", "train.amp: expected one of none, bf16, fp16"),
    ("optim.lr", 0, "optim.lr: expected a number > 0"),
    ("optim.momentum", 1.5, r"optim.momentum: expected a number in \[0, 1\)"),
    ("augment.flip_p", 2, r"augment.flip_p: expected a probability in \[0, 1\]"),
    ("eval.knn_k", 0, "eval.knn_k: expected an integer >= 1"),
])
def test_values_out_of_range_name_the_key(key, value, message):
    c = Config()
    c.set(key, value)
    with pytest.raises(ValueError, match=message):
        check_values(c)


def test_save_yaml_is_atomic(tmp_path, monkeypatch):
    save_yaml(Config(), tmp_path / "config.yaml")
    before = (tmp_path / "config.yaml").read_bytes()

    def fail(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("causalcl.train.files.os.fsync", fail)
    c = Config()
    c.set("train.steps", 7)
    with pytest.raises(OSError, match="cannot write .*config.yaml.*No space left"):
        save_yaml(c, tmp_path / "config.yaml")
    assert (tmp_path / "config.yaml").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_resume_differences_list_run_keys_only():
    saved = Config().to_dict()
    c = Config()
    for key, value in (("optim.lr", 0.05), ("train.steps", 900), ("train.device", "cuda"), ("eval.knn_k", 5),
                       ("data.root", "/elsewhere"), ("method.temperature", 0.5), ("data.options.n", 100)):
        c.set(key, value)
    diffs = run_differences(saved, c.to_dict(), {"temperature": 0.5})
    assert diffs == ["optim.lr: 0.002 → 0.05", "data.options.n: (unset) → 100"]
