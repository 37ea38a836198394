"""The byte and BPE tokenizers encode as titans-ts's, read and write the same tokenizer.json,
and the BPE trainer learns titans-ts's merges."""

import json

import pytest

from titans_torch.tokenizer import TokenizerFormatError, byte_tokenizer, tokenizer_from_json, train_bpe


def test_bpe_trained_by_titans_ts_encodes_the_same(vectors):
    tok = tokenizer_from_json(json.loads((vectors / "bpe" / "tokenizer.json").read_text()))
    assert tok.kind == "bpe" and tok.vocab_size == 340
    for case in json.loads((vectors / "bpe" / "encodings.json").read_text())["encodings"]:
        assert tok.encode(case["text"]) == case["ids"], case["text"]
        assert tok.decode(case["ids"]) == case["text"]


def test_bpe_trainer_learns_the_same_merges(vectors):
    theirs = json.loads((vectors / "bpe" / "tokenizer.json").read_text())
    trained_on = json.loads((vectors / "bpe" / "encodings.json").read_text())["trainedOn"]
    ours = train_bpe(trained_on, 340).to_json()
    assert ours["model"]["merges"] == theirs["model"]["merges"]
    assert ours["model"]["vocab"] == theirs["model"]["vocab"]
    assert ours == theirs  # the whole file, field for field


def test_byte_tokenizer_is_utf8():
    tok = byte_tokenizer()
    assert tok.encode("A€") == [65, 226, 130, 172]
    assert tok.decode(tok.encode("héllo 🙂")) == "héllo 🙂"
    assert tok.decode([0xE2, 0x82]) == "\ufffd"  # invalid UTF-8 decodes, never raises
    with pytest.raises(ValueError, match="id -1 at position 1 is not in the vocabulary"):
        tok.decode([65, -1])
    assert tokenizer_from_json(tok.to_json()).encode("A€") == [65, 226, 130, 172]


def test_bad_tokenizer_files_are_named():
    good = byte_tokenizer().to_json()
    bad = json.loads(json.dumps(good))
    bad["model"]["type"] = "WordPiece"
    with pytest.raises(TokenizerFormatError, match='run/tokenizer.json: model.type must be "BPE"'):
        tokenizer_from_json(bad, "run/tokenizer.json")
    bad = json.loads(json.dumps(good))
    del bad["model"]["vocab"]["Ġ"]
    with pytest.raises(TokenizerFormatError, match="lacks the token for byte 0x20"):
        tokenizer_from_json(bad)
    bad = json.loads(json.dumps(good))
    bad["added_tokens"] = [{"id": 0}]
    with pytest.raises(TokenizerFormatError, match="added_tokens must be empty"):
        tokenizer_from_json(bad)
