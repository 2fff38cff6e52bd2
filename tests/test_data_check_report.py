"""``ferkit data check`` text report: the verdict names what failed, and no line above contradicts it."""

from ferkit.cli.main import main
from ferkit.data import synthetic


def _check(capsys, root) -> tuple[int, list[str]]:
    code = main(["data", "check", "folder", str(root), "--workers", "0"])
    return code, capsys.readouterr().out.splitlines()


def test_verdict_names_the_failing_kinds(tmp_path, capsys):
    synthetic.write_class_folders(tmp_path, {"train": {"happiness": 2, "sadness": 2}})
    code, lines = _check(capsys, tmp_path)
    assert code == 0 and lines[-1] == "OK" and "label and layout problems: none" in lines
    for bad in sorted((tmp_path / "train" / "sadness").iterdir()):
        bad.write_bytes(b"garbage")
    code, lines = _check(capsys, tmp_path)
    assert code == 1 and lines[-1] == "PROBLEMS FOUND: 2 unreadable files"
    assert "unreadable files: 2" in lines and "label and layout problems: none" in lines
    assert not any(line.startswith("problems:") for line in lines)  # "problems: none" above "PROBLEMS FOUND"
