"Packing and splitting: EOS between documents, no document on both sides of the split."
from stylefit.clean import split_documents
from stylefit.model import load_model
from stylefit.pack import pack_blocks, tokenize_documents
from stylefit.sources import read_jekyll

def test_blocks_carry_eos_between_documents(tiny_blog, tiny_model):
    _, tok = load_model(tiny_model)
    docs = read_jekyll(tiny_blog)[0]
    ids = tokenize_documents(docs, tok)
    stream = [t for b in pack_blocks(ids, 32, drop_last=False) for t in b]
    assert stream == [t for x in ids for t in x]                 # nothing lost or reordered
    assert stream.count(tok.eos_token_id) == len(docs)           # one EOS after every document
    ends = [i for i, t in enumerate(stream) if t == tok.eos_token_id]
    assert tok.decode(stream[ends[0] + 1:ends[1]]) == docs[1].text

def test_split_is_leak_free_and_reproducible(tiny_blog):
    docs = read_jekyll(tiny_blog)[0]
    train, val = split_documents(docs, 0.1, seed=3)
    assert {d.source for d in train}.isdisjoint(d.source for d in val)
    assert {d.text for d in train}.isdisjoint(d.text for d in val)
    assert len(train) + len(val) == len(docs) and len(val) == 2
    assert split_documents(list(reversed(docs)), 0.1, seed=3) == (train, val)
