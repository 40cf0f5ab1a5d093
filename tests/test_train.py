"Training and perplexity, on the tiny model."
import json, math
import pytest
from stylefit.core import ConfigError
from stylefit.model import load_model
from stylefit.pack import pack_blocks, tokenize_documents
from stylefit.sources import read_jekyll
from stylefit.train import TrainConfig, evaluate_loss, prepare_run_dir, train
from stylefit.evaluate import perplexity

@pytest.fixture
def blocks(tiny_blog, tiny_model):
    model, tok = load_model(tiny_model)
    docs = read_jekyll(tiny_blog)[0]
    return model, pack_blocks(tokenize_documents(docs[:20], tok), 48), pack_blocks(tokenize_documents(docs[20:], tok), 48, drop_last=False)

def test_a_few_steps_lower_validation_loss(blocks, tmp_path):
    model, tr, va = blocks
    before = evaluate_loss(model, va)
    res = train(model, tr, va, TrainConfig(out_dir=str(tmp_path/'run'), block_size=48, max_steps=20, learning_rate=3e-3, eval_interval=10), log=lambda s: None)
    assert res['history'][-1]['val_loss'] < before - 1.0
    lines = [json.loads(l) for l in (tmp_path/'run'/'metrics.jsonl').read_text().splitlines()]
    assert [l['step'] for l in lines] == list(range(1, 21)) and 'val_loss' in lines[9] and 'val_loss' not in lines[8]

def test_perplexity_is_exp_of_mean_token_nll(blocks):
    model, _, va = blocks
    import torch, torch.nn.functional as F
    nll, n = 0.0, 0
    with torch.no_grad():
        for b in va:
            x = torch.tensor([b])
            logp = F.log_softmax(model(input_ids=x).logits[0, :-1], -1)
            nll -= logp[torch.arange(len(b) - 1), x[0, 1:]].sum().item(); n += len(b) - 1
    assert perplexity(model, va) == pytest.approx(math.exp(nll / n), rel=1e-5)
    assert perplexity(model, va, batch_size=1) == pytest.approx(perplexity(model, va, batch_size=16), rel=1e-5)

def test_a_folder_holding_another_run_is_refused_before_work(tmp_path):
    (tmp_path/'run').mkdir(); (tmp_path/'run'/'config.json').write_text('{}')
    with pytest.raises(ConfigError, match='already holds a run'):
        prepare_run_dir(TrainConfig(out_dir=str(tmp_path/'run')))
