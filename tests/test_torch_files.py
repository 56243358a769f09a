"""smart.torch_files.read_torch_file: the one exists -> load -> error guard of the torch-file readers."""

from __future__ import annotations

import pytest
import torch

from smart.models.encoder_io import load_encoder
from smart.torch_files import MissingFileError, read_torch_file
from smart.train.checkpoint import load_checkpoint


def test_reads_a_weights_only_file(tmp_path):
    torch.save({"a": torch.arange(3)}, tmp_path / "x.pt")
    assert torch.equal(read_torch_file(tmp_path / "x.pt", "thing")["a"], torch.arange(3))


def test_missing_and_unreadable_files_name_the_file_in_one_format(tmp_path):
    with pytest.raises(MissingFileError) as err:
        read_torch_file(tmp_path / "gone.pt", "weights file", hint="pass 'none' to train from scratch")
    assert str(err.value) == f"weights file {tmp_path / 'gone.pt'} does not exist (pass 'none' to train from scratch)"
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'bad.pt'}: not a readable checkpoint \("):
        read_torch_file(tmp_path / "bad.pt", "checkpoint")


@pytest.mark.parametrize("reader, what", [(load_checkpoint, "checkpoint"), (lambda p: load_encoder(p), "encoder file")])
def test_every_reader_uses_it(tmp_path, reader, what):
    with pytest.raises(ValueError, match=rf"^{what} {tmp_path / 'none.pt'} does not exist$"):
        reader(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match=rf"not a readable {what} \("):
        reader(tmp_path / "bad.pt")
