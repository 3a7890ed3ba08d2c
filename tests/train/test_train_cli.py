"""Bad input is one line and exit 2: missing or malformed config, unknown keys, bad values, missing or empty data."""
import pytest

from qimage.cli import main


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("qimage: error:") and "Traceback" not in err
    return err


def test_missing_config(capsys, tmp_path):
    assert "does not exist" in _err(capsys, ["train", "pretrain", "--config", str(tmp_path / "none.yaml")])
    assert "does not exist" in _err(capsys, ["train", "vae", "--config", str(tmp_path / "none.yaml")])


def test_invalid_yaml(capsys, tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("stages: [unclosed\n")
    assert "not valid YAML" in _err(capsys, ["train", "pretrain", "--config", str(p)])


@pytest.mark.parametrize("edit,needle", [
    ({"lerning_rate": 1}, "unknown key 'lerning_rate'"),
    ({"optim": {"lr": 1e-3, "warmup": 3}}, "unknown key 'optim.warmup' (did you mean 'warmup_steps'?)"),
    ({"optim": {"lr": "fast"}}, "optim.lr: expected float"),
    ({"optim": {"lr": -1.0}}, "optim.lr must be positive"),
    ({"stages": []}, "`stages` is empty"),
    ({"stages": [{"steps": 0}]}, "stages[0].steps must be positive"),
    ({"stages": [{"steps": 2, "mixture": {"nope": 1}}]}, "unknown source 'nope'"),
    ({"stages": [{"steps": 2, "buckets": ["64by64"]}]}, "size must look like 128x64"),
    ({"caption_dropout": 1.5}, "caption_dropout must be in [0, 1)"),
    ({"loss": {"object_weight": 0.0}}, "loss.object_weight must be positive"),
    ({"loss": {"text_weigth": 2.0}}, "unknown key 'loss.text_weigth' (did you mean 'text_weight'?)"),
    ({"batch_size": True}, "batch_size: expected int"),
    ({"model": {"dir": ""}}, "model.dir is missing"),
])
def test_bad_config_values_name_the_key(capsys, write_config, pretrain_config, synth_dirs, tmp_path, edit, needle):
    cfg = pretrain_config({"text": synth_dirs["pure"]}, tmp_path / "out")
    cfg.update(edit)
    err = _err(capsys, ["train", "pretrain", "--config", str(write_config(cfg))])
    assert needle in err


def test_missing_and_empty_data_dirs(capsys, write_config, pretrain_config, tmp_path):
    cfg = pretrain_config({"text": tmp_path / "missing"}, tmp_path / "out")
    assert "does not exist" in _err(capsys, ["train", "pretrain", "--config", str(write_config(cfg))])
    (tmp_path / "empty").mkdir()
    cfg = pretrain_config({"text": tmp_path / "empty"}, tmp_path / "out")
    assert "holds no samples" in _err(capsys, ["train", "pretrain", "--config", str(write_config(cfg))])


def test_resume_without_a_run_and_rerun_over_a_run(capsys, write_config, pretrain_config, synth_dirs, tmp_path):
    cfg = pretrain_config({"text": synth_dirs["pure"]}, tmp_path / "out")
    path = str(write_config(cfg))
    assert "no trainer_state" in _err(capsys, ["train", "pretrain", "--config", path, "--resume"])
    assert "--stop-at must be at least 1" in _err(capsys, ["train", "pretrain", "--config", path, "--stop-at", "0"])
    assert "--max-minutes must be positive" in _err(capsys, ["train", "pretrain", "--config", path, "--max-minutes", "0"])


def test_vae_and_eval_bad_input(capsys, write_config, tmp_path, tiny_model_dir):
    p = write_config({"model": {"dir": str(tiny_model_dir)}, "sources": {"x": {"path": str(tmp_path)}}, "size": "64"})
    assert "size must look like" in _err(capsys, ["train", "vae", "--config", str(p)])
    assert "does not exist" in _err(capsys, ["eval", "--model", str(tmp_path / "nomodel")])
    assert "--words must be >= 0" in _err(capsys, ["eval", "--words", "-1"])
    assert "nothing to evaluate" in _err(capsys, ["eval", "--words", "0", "--nonwords", "0", "--scenes", "0"])
    assert "--nonwords must be >= 0" in _err(capsys, ["eval", "--nonwords", "-1"])
