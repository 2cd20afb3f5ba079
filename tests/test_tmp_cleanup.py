"""The suite's disk guard (tests/conftest.py): failed tests keep logs, not large weights."""

from tests.conftest import remove_large_checkpoints


def test_only_large_checkpoints_are_removed(tmp_path):
    nested = tmp_path / "run" / "0101"
    nested.mkdir(parents=True)
    big, small, log = nested / "last.pth", nested / "tiny.pth", nested / "train.log"
    big.write_bytes(b"\0" * 2048)
    small.write_bytes(b"\0" * 16)
    log.write_bytes(b"\0" * 4096)

    removed = remove_large_checkpoints(tmp_path, limit=1024)

    assert removed == [big]
    assert not big.exists() and small.exists() and log.exists()
